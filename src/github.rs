//! The few GitHub REST API reads the approvals check needs: a pull request, its reviews, and
//! the issue a bot-made pull request closes. Through `http_api::ApiClient`, so the endpoint
//! rules (HTTPS, plain HTTP only on loopback) and error mapping are the other clients'.

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

    pub fn calls(&self) -> u64 {
        self.client.calls()
    }
}

/// The issue a pull request body closes (`Closes #12`), as the access-request form writes it.
pub fn closed_issue(body: &str) -> Option<u64> {
    body.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("Closes #")?;
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    })
}
