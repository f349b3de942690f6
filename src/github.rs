//! The few GitHub REST API calls the tool makes: for the approvals check, a pull request, its
//! reviews, and the issue a bot-made pull request closes; for the nightly reports, the issues
//! it keeps current (found by label and a marker in the body, created, updated, closed).
//! Through `http_api::ApiClient`, so the endpoint rules (HTTPS, plain HTTP only on loopback)
//! and error mapping are the other clients'.

use hyper::Method;
use serde::Deserialize;

use crate::directory::{DirectoryError, GoogleAuth};
use crate::http_api::ApiClient;
use crate::policy::Review;

/// GitHub's own API; GitHub Actions sets `GITHUB_API_URL` (GitHub Enterprise, or a test's).
pub const PRODUCTION_ENDPOINT: &str = "https://api.github.com/";

/// Reviews come 100 to a page (GitHub's maximum); a short page is the last.
const PAGE_SIZE: usize = 100;

/// Retries of a read that failed with a server error or a rate limit.
const MAX_RETRIES: u32 = 3;

/// The headers GitHub asks every client to send (it refuses requests without a user agent).
const HEADERS: &[(&str, &str)] = &[
    ("accept", "application/vnd.github+json"),
    ("x-github-api-version", "2022-11-28"),
    ("user-agent", "cpg-infra"),
    ("content-type", "application/json"),
];

/// What the approvals check reads of a pull request.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub author: String,
    pub author_is_bot: bool,
    pub head_sha: String,
    pub body: String,
}

pub struct GitHub {
    client: ApiClient,
    repo: String,
}

#[derive(Deserialize)]
struct User {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct PullBody {
    user: User,
    head: Head,
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
struct Head {
    sha: String,
}

#[derive(Deserialize)]
struct ReviewBody {
    /// A deleted account's reviews have no user.
    user: Option<User>,
    state: String,
    #[serde(default)]
    commit_id: Option<String>,
}

#[derive(Deserialize)]
struct IssueBody {
    user: User,
}

/// An issue as listed: the issues list also holds pull requests, which have `pull_request`.
#[derive(Deserialize)]
struct ListedIssue {
    number: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct CreatedIssue {
    number: u64,
}

/// What `keep_issue` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueAction {
    Opened(u64),
    Updated(u64),
    /// The open issue already says this.
    Unchanged(u64),
    Closed(u64),
    /// Nothing to report and no issue open.
    None,
}

impl std::fmt::Display for IssueAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IssueAction::Opened(n) => write!(f, "opened issue #{n}"),
            IssueAction::Updated(n) => write!(f, "updated issue #{n}"),
            IssueAction::Unchanged(n) => write!(f, "issue #{n} is current"),
            IssueAction::Closed(n) => write!(f, "closed issue #{n}"),
            IssueAction::None => f.write_str("no issue needed"),
        }
    }
}

/// One issue the tool keeps: found again by `marker` (an HTML comment, invisible on GitHub,
/// that the body starts with) among the open issues labelled `label`.
pub struct KeptIssue<'a> {
    pub marker: &'a str,
    pub label: &'a str,
    pub title: &'a str,
    /// The body (after the marker); `None`: nothing to report, so an open issue is closed.
    pub body: Option<&'a str>,
}

impl GitHub {
    /// `repo` is `OWNER/NAME`.
    pub fn connect(endpoint: &str, token: &str, repo: &str) -> Result<GitHub, DirectoryError> {
        let valid = |part: &str| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match repo.split_once('/') {
            Some((owner, name)) if valid(owner) && valid(name) && name != "." && name != ".." => {}
            _ => return Err(DirectoryError::Rejected(format!("`{repo}` is not a repository name OWNER/NAME"))),
        }
        let client = ApiClient::connect(endpoint, &GoogleAuth::AccessToken(token.to_owned()))?;
        Ok(GitHub { client, repo: repo.to_owned() })
    }

    /// One read; GitHub's 502/503 and rate limits are retried a few times, briefly (the check
    /// runs again on the next push or review anyway).
    fn get<T: for<'de> Deserialize<'de>>(&self, path: &str, call: &str) -> Result<T, DirectoryError> {
        let mut attempt = 0;
        let (status, body) = loop {
            match self.client.send_with(Method::GET, path, Vec::new(), call, HEADERS) {
                Err(DirectoryError::Unavailable(_) | DirectoryError::Throttled { .. }) if attempt < MAX_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(200 << attempt));
                }
                other => break other?,
            }
        };
        if status.as_u16() == 404 {
            return Err(DirectoryError::Rejected(format!("{call}: not found (or the token cannot read it)")));
        }
        serde_json::from_slice(&body).map_err(|e| DirectoryError::Storage(format!("{call}: unexpected answer: {e}")))
    }

    pub fn pull_request(&self, number: u64) -> Result<PullRequest, DirectoryError> {
        let call = format!("reading pull request #{number}");
        let pull: PullBody = self.get(&format!("repos/{}/pulls/{number}", self.repo), &call)?;
        Ok(PullRequest {
            author_is_bot: pull.user.kind == "Bot" || pull.user.login.ends_with("[bot]"),
            author: pull.user.login,
            head_sha: pull.head.sha,
            body: pull.body.unwrap_or_default(),
        })
    }

    /// Every review, oldest first, across all pages.
    pub fn reviews(&self, number: u64) -> Result<Vec<Review>, DirectoryError> {
        let mut reviews = Vec::new();
        for page in 1.. {
            let call = format!("reading the reviews of pull request #{number} (page {page})");
            let path = format!("repos/{}/pulls/{number}/reviews?per_page={PAGE_SIZE}&page={page}", self.repo);
            let batch: Vec<ReviewBody> = self.get(&path, &call)?;
            let last = batch.len() < PAGE_SIZE;
            reviews.extend(batch.into_iter().filter_map(|r| {
                Some(Review { reviewer: r.user?.login, state: r.state, commit: r.commit_id.unwrap_or_default() })
            }));
            if last {
                break;
            }
        }
        Ok(reviews)
    }

    pub fn issue_author(&self, number: u64) -> Result<String, DirectoryError> {
        let call = format!("reading issue #{number}");
        let issue: IssueBody = self.get(&format!("repos/{}/issues/{number}", self.repo), &call)?;
        Ok(issue.user.login)
    }

    /// Open issues labelled `label` (pull requests left out), across all pages.
    fn open_issues(&self, label: &str) -> Result<Vec<ListedIssue>, DirectoryError> {
        let mut issues = Vec::new();
        for page in 1.. {
            let call = format!("listing the open issues labelled {label} (page {page})");
            let path = format!(
                "repos/{}/issues?state=open&labels={}&per_page={PAGE_SIZE}&page={page}",
                self.repo,
                percent_encode(label)
            );
            let batch: Vec<ListedIssue> = self.get(&path, &call)?;
            let last = batch.len() < PAGE_SIZE;
            issues.extend(batch.into_iter().filter(|issue| issue.pull_request.is_none()));
            if last {
                break;
            }
        }
        Ok(issues)
    }

    /// A write, sent once: creating an issue twice would be worse than failing.
    fn write(
        &self,
        method: Method,
        path: &str,
        body: serde_json::Value,
        call: &str,
    ) -> Result<Vec<u8>, DirectoryError> {
        let (status, answer) = self.client.send_with(method, path, body.to_string().into_bytes(), call, HEADERS)?;
        if !status.is_success() {
            return Err(DirectoryError::Rejected(format!("{call}: GitHub answered {status}")));
        }
        Ok(answer.to_vec())
    }

    /// Opens, updates or closes the one issue `kept` describes; never a second one.
    pub fn keep_issue(&self, kept: &KeptIssue) -> Result<IssueAction, DirectoryError> {
        let existing = self
            .open_issues(kept.label)?
            .into_iter()
            .filter(|issue| issue.body.as_deref().unwrap_or_default().starts_with(kept.marker))
            .min_by_key(|issue| issue.number);
        let full_body = kept.body.map(|body| format!("{}\n{body}", kept.marker));
        match (existing, full_body) {
            (None, None) => Ok(IssueAction::None),
            (Some(issue), None) => {
                let path = format!("repos/{}/issues/{}", self.repo, issue.number);
                let call = format!("closing issue #{}", issue.number);
                self.write(
                    Method::PATCH,
                    &path,
                    serde_json::json!({"state": "closed", "state_reason": "completed"}),
                    &call,
                )?;
                Ok(IssueAction::Closed(issue.number))
            }
            (Some(issue), Some(body)) if issue.body.as_deref() == Some(body.as_str()) => {
                Ok(IssueAction::Unchanged(issue.number))
            }
            (Some(issue), Some(body)) => {
                let path = format!("repos/{}/issues/{}", self.repo, issue.number);
                let call = format!("updating issue #{}", issue.number);
                self.write(Method::PATCH, &path, serde_json::json!({"title": kept.title, "body": body}), &call)?;
                Ok(IssueAction::Updated(issue.number))
            }
            (None, Some(body)) => {
                let path = format!("repos/{}/issues", self.repo);
                let request = serde_json::json!({"title": kept.title, "body": body, "labels": [kept.label]});
                let answer = self.write(Method::POST, &path, request, "opening an issue")?;
                let created: CreatedIssue = serde_json::from_slice(&answer)
                    .map_err(|e| DirectoryError::Storage(format!("opening an issue: unexpected answer: {e}")))?;
                Ok(IssueAction::Opened(created.number))
            }
        }
    }

    pub fn calls(&self) -> u64 {
        self.client.calls()
    }
}

/// A label in a query string: labels may hold spaces and other characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The issue a pull request body closes (`Closes #12`), as the access-request form writes it.
pub fn closed_issue(body: &str) -> Option<u64> {
    body.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("Closes #")?;
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    })
}
