//! A fake of the GitHub REST API reads the approvals check makes, answering with the bodies
//! GitHub documents ("Pulls", "Pull request reviews", "Issues" in the REST reference):
//! `GET /repos/{owner}/{repo}/pulls/{n}`, `GET .../pulls/{n}/reviews` (paged by `per_page`, at
//! most 100, default 30, and `page`, with a `Link` header as GitHub sends it) and
//! `GET .../issues/{n}`; and the issue calls of the nightly reports ("Issues" in the REST
//! reference, https://docs.github.com/en/rest/issues/issues): `GET .../issues?state=&labels=`
//! (paged; pull requests are listed too, with a `pull_request` key), `POST .../issues`
//! (201 with the new issue; numbers are shared with pull requests) and `PATCH .../issues/{n}`
//! (title, body, state, labels). As GitHub does: a request without a `User-Agent` is 403, a
//! wrong token 401 `Bad credentials`, anything unknown 404 `Not Found`, a create without a
//! title 422. Faults: every distinct request answered once with 502 (GitHub's front end
//! answers 502 and 503 under load).

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::requests::{bearer_is, json_answer as answer, lock, request_log_handle, serve, RequestLog};
use super::server::{ConnectionKiller, Request, Server};

request_log_handle!(
    GitHubEmulator,
    "`pulls.get`, `reviews.list`, `issues.get`, `issues.list`, `issues.create`, `issues.update`"
);

/// GitHub's largest page.
const MAX_PER_PAGE: usize = 100;
const DEFAULT_PER_PAGE: usize = 30;

/// A running fake GitHub API for one repository; dropping it stops the server.
pub struct GitHubEmulator {
    server: Server,
    shared: Arc<Shared>,
}

/// A pull request as seeded: who opened it, its head and body.
#[derive(Debug, Clone)]
pub struct PullSeed {
    pub author: String,
    /// `User` or `Bot`.
    pub author_type: String,
    pub head_sha: String,
    pub body: String,
}

/// An issue as the emulator keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueState {
    pub author: String,
    pub title: String,
    pub body: String,
    /// `open` or `closed`.
    pub state: String,
    pub labels: Vec<String>,
}

#[derive(Default)]
struct State {
    pulls: BTreeMap<u64, PullSeed>,
    /// Per pull request, oldest first: (reviewer, state, commit).
    reviews: BTreeMap<u64, Vec<(String, String, String)>>,
    issues: BTreeMap<u64, IssueState>,
}

impl State {
    /// GitHub numbers issues and pull requests from one sequence.
    fn next_number(&self) -> u64 {
        let last = |keys: Option<&u64>| keys.copied().unwrap_or(0);
        last(self.pulls.keys().next_back()).max(last(self.issues.keys().next_back())) + 1
    }
}

/// The login the token's issues are created by (GitHub Actions' own bot).
const TOKEN_LOGIN: &str = "github-actions[bot]";

struct Shared {
    repo: String,
    token: String,
    state: Mutex<State>,
    requests: RequestLog,
}

impl GitHubEmulator {
    /// Serves repository `repo` (`owner/name`) on a free loopback port; requests need `token`.
    pub fn start(repo: &str, token: &str) -> io::Result<GitHubEmulator> {
        let shared = Arc::new(Shared {
            repo: repo.to_owned(),
            token: token.to_owned(),
            state: Mutex::new(State::default()),
            requests: RequestLog::default(),
        });
        let server = serve(0, "github-emulator", &shared, handle)?;
        Ok(GitHubEmulator { server, shared })
    }

    pub fn insert_pull(&self, number: u64, pull: PullSeed) {
        lock(&self.shared.state).pulls.insert(number, pull);
    }

    /// A pull request moves to a new head (a push).
    pub fn push(&self, number: u64, head_sha: &str) {
        if let Some(pull) = lock(&self.shared.state).pulls.get_mut(&number) {
            pull.head_sha = head_sha.to_owned();
        }
    }

    /// A review submitted on `commit`; `state` as GitHub reports it (`APPROVED`,
    /// `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED`).
    pub fn add_review(&self, number: u64, reviewer: &str, state: &str, commit: &str) {
        let mut guard = lock(&self.shared.state);
        guard.reviews.entry(number).or_default().push((reviewer.to_owned(), state.to_owned(), commit.to_owned()));
    }

    /// Dismissing a review turns its state into `DISMISSED`, in place (GitHub keeps its place).
    pub fn dismiss_reviews_of(&self, number: u64, reviewer: &str) {
        let mut guard = lock(&self.shared.state);
        for review in guard.reviews.entry(number).or_default().iter_mut().filter(|r| r.0 == reviewer) {
            review.1 = "DISMISSED".to_owned();
        }
    }

    pub fn insert_issue(&self, number: u64, author: &str) {
        let issue = IssueState {
            author: author.to_owned(),
            title: "Access request".to_owned(),
            body: String::new(),
            state: "open".to_owned(),
            labels: vec!["access-request".to_owned()],
        };
        lock(&self.shared.state).issues.insert(number, issue);
    }

    /// An issue as someone opened it (e.g. by hand, with a label the tool uses).
    pub fn insert_full_issue(&self, number: u64, issue: IssueState) {
        lock(&self.shared.state).issues.insert(number, issue);
    }

    /// Every issue, by number.
    pub fn issues(&self) -> BTreeMap<u64, IssueState> {
        lock(&self.shared.state).issues.clone()
    }
}

fn issue_json(repo: &str, number: u64, issue: &IssueState) -> Value {
    json!({
        "url": format!("https://api.github.com/repos/{repo}/issues/{number}"),
        "html_url": format!("https://github.com/{repo}/issues/{number}"),
        "number": number,
        "state": issue.state,
        "title": issue.title,
        "body": issue.body,
        "user": user(&issue.author, if issue.author.ends_with("[bot]") { "Bot" } else { "User" }),
        "labels": issue.labels.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
    })
}

fn pull_as_issue_json(repo: &str, number: u64, pull: &PullSeed) -> Value {
    json!({
        "number": number,
        "state": "open",
        "title": "Access request",
        "body": pull.body,
        "user": user(&pull.author, &pull.author_type),
        "labels": [],
        "pull_request": {"url": format!("https://api.github.com/repos/{repo}/pulls/{number}")},
    })
}

fn unprocessable(message: &str) -> Response {
    answer(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "missing_field", "message": message}], "status": "422"}),
    )
}

fn user(login: &str, kind: &str) -> Value {
    json!({"login": login, "id": login.len() as u64 * 7919, "node_id": format!("U_{login}"), "type": kind, "site_admin": false})
}

fn not_found() -> Response {
    answer(
        StatusCode::NOT_FOUND,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
    )
}

async fn handle(shared: Arc<Shared>, request: Request, _killer: ConnectionKiller) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(axum::body::Body::new(body), 1 << 20).await else {
        return answer(StatusCode::BAD_REQUEST, json!({"message": "Problems parsing JSON"}));
    };
    let request = axum::http::Request::from_parts(parts, ());
    let path = request.uri().path().to_owned();
    let query: BTreeMap<String, String> = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let prefix = format!("repos/{}/", shared.repo);
    let rest = path.trim_matches('/').strip_prefix(&prefix).unwrap_or("").to_owned();
    let segments: Vec<&str> = rest.split('/').collect();
    let call = match (request.method(), segments.as_slice()) {
        (&Method::GET, ["pulls", _]) => "pulls.get",
        (&Method::GET, ["pulls", _, "reviews"]) => "reviews.list",
        (&Method::GET, ["issues", _]) => "issues.get",
        (&Method::GET, ["issues"]) => "issues.list",
        (&Method::POST, ["issues"]) => "issues.create",
        (&Method::PATCH, ["issues", _]) => "issues.update",
        _ => "unknown",
    };
    shared.requests.count(call);
    if !request.headers().contains_key(header::USER_AGENT) {
        // GitHub: "Request forbidden by administrative rules. Please make sure your request has
        // a User-Agent header."
        return answer(StatusCode::FORBIDDEN, json!({"message": "Request forbidden by administrative rules."}));
    }
    if !bearer_is(&request, &shared.token) {
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        );
    }
    if shared.requests.should_fault(&format!("{}?{:?}", path, query)) {
        return answer(StatusCode::BAD_GATEWAY, json!({"message": "Server Error"}));
    }
    let number = |i: usize| segments.get(i).and_then(|s| s.parse::<u64>().ok());
    let mut state = lock(&shared.state);
    let sent: Value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
    match call {
        "issues.list" => return list_issues(&shared.repo, &state, &query),
        "issues.create" => {
            let Some(title) = sent.get("title").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
                return unprocessable("title is missing");
            };
            let issue = IssueState {
                author: TOKEN_LOGIN.to_owned(),
                title: title.to_owned(),
                body: sent.get("body").and_then(Value::as_str).unwrap_or_default().to_owned(),
                state: "open".to_owned(),
                labels: string_list(sent.get("labels")),
            };
            let number = state.next_number();
            let created = issue_json(&shared.repo, number, &issue);
            state.issues.insert(number, issue);
            return answer(StatusCode::CREATED, created);
        }
        "issues.update" => {
            let Some(issue) = number(1).and_then(|n| state.issues.get_mut(&n)) else { return not_found() };
            if let Some(title) = sent.get("title").and_then(Value::as_str) {
                issue.title = title.to_owned();
            }
            if let Some(body) = sent.get("body").and_then(Value::as_str) {
                issue.body = body.to_owned();
            }
            match sent.get("state").and_then(Value::as_str) {
                Some(new @ ("open" | "closed")) => issue.state = new.to_owned(),
                Some(_) => return unprocessable("state is not open or closed"),
                None => {}
            }
            if sent.get("labels").is_some() {
                issue.labels = string_list(sent.get("labels"));
            }
            let updated = issue_json(&shared.repo, number(1).unwrap_or_default(), issue);
            return answer(StatusCode::OK, updated);
        }
        _ => {}
    }
    match (call, number(1)) {
        ("pulls.get", Some(n)) => match state.pulls.get(&n) {
            Some(pull) => answer(
                StatusCode::OK,
                json!({
                    "url": format!("https://api.github.com/repos/{}/pulls/{n}", shared.repo),
                    "number": n,
                    "state": "open",
                    "title": "Access request",
                    "user": user(&pull.author, &pull.author_type),
                    "body": pull.body,
                    "head": {"ref": format!("access-request/{n}"), "sha": pull.head_sha, "label": "branch"},
                    "base": {"ref": "main", "sha": "0".repeat(40), "label": "main"},
                    "draft": false,
                    "merged": false,
                }),
            ),
            None => not_found(),
        },
        ("reviews.list", Some(n)) if state.pulls.contains_key(&n) => {
            let per_page = query
                .get("per_page")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(DEFAULT_PER_PAGE)
                .clamp(1, MAX_PER_PAGE);
            let page = query.get("page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).max(1);
            let all = state.reviews.get(&n).cloned().unwrap_or_default();
            let body: Vec<Value> = all
                .iter()
                .enumerate()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|(i, (reviewer, review_state, commit))| {
                    json!({
                        "id": 80 + i as u64,
                        "node_id": format!("PRR_{i}"),
                        "user": user(reviewer, "User"),
                        "body": "",
                        "state": review_state,
                        "html_url": format!("https://github.com/{}/pull/{n}#pullrequestreview-{}", shared.repo, 80 + i),
                        "pull_request_url": format!("https://api.github.com/repos/{}/pulls/{n}", shared.repo),
                        "author_association": "MEMBER",
                        "submitted_at": format!("2026-11-{:02}T10:00:00Z", 1 + i % 28),
                        "commit_id": commit,
                    })
                })
                .collect();
            let mut response = answer(StatusCode::OK, Value::Array(body));
            let pages = all.len().div_ceil(per_page).max(1);
            if page < pages {
                let link = format!(
                    "<https://api.github.com/repos/{}/pulls/{n}/reviews?per_page={per_page}&page={}>; rel=\"next\"",
                    shared.repo,
                    page + 1
                );
                if let Ok(value) = HeaderValue::from_str(&link) {
                    response.headers_mut().insert(header::LINK, value);
                }
            }
            response
        }
        ("issues.get", Some(n)) => match state.issues.get(&n) {
            Some(issue) => answer(StatusCode::OK, issue_json(&shared.repo, n, issue)),
            None => not_found(),
        },
        _ => not_found(),
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// `GET /repos/{owner}/{repo}/issues`: `state` (default `open`), `labels` (comma-separated,
/// all must match), newest first as GitHub's default `sort=created&direction=desc`; pull
/// requests are issues too and are listed.
fn list_issues(repo: &str, state: &State, query: &BTreeMap<String, String>) -> Response {
    let wanted_state = query.get("state").map_or("open", String::as_str);
    let labels: Vec<String> = query
        .get("labels")
        .map(|l| percent_decode(l).split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let per_page =
        query.get("per_page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE);
    let page = query.get("page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).max(1);
    let mut all: Vec<(u64, Value)> = state
        .issues
        .iter()
        .filter(|(_, issue)| wanted_state == "all" || issue.state == wanted_state)
        .filter(|(_, issue)| labels.iter().all(|label| issue.labels.contains(label)))
        .map(|(n, issue)| (*n, issue_json(repo, *n, issue)))
        .collect();
    if labels.is_empty() && wanted_state != "closed" {
        all.extend(state.pulls.iter().map(|(n, pull)| (*n, pull_as_issue_json(repo, *n, pull))));
    }
    all.sort_by_key(|issue| std::cmp::Reverse(issue.0));
    let body: Vec<Value> = all.into_iter().skip((page - 1) * per_page).take(per_page).map(|(_, v)| v).collect();
    answer(StatusCode::OK, Value::Array(body))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
