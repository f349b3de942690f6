//! A fake of the GitHub REST API reads the approvals check makes, answering with the bodies
//! GitHub documents ("Pulls", "Pull request reviews", "Issues" in the REST reference):
//! `GET /repos/{owner}/{repo}/pulls/{n}`, `GET .../pulls/{n}/reviews` (paged by `per_page`, at
//! most 100, default 30, and `page`, with a `Link` header as GitHub sends it) and
//! `GET .../issues/{n}`. As GitHub does: a request without a `User-Agent` is 403, a wrong token
//! 401 `Bad credentials`, anything unknown 404 `Not Found`. Faults: every distinct request
//! answered once with 502 (GitHub's front end answers 502 and 503 under load).

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::requests::{bearer_is, json_answer as answer, lock, request_log_handle, serve, RequestLog};
use super::server::{ConnectionKiller, Request, Server};

request_log_handle!(GitHubEmulator, "`pulls.get`, `reviews.list`, `issues.get`");

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

#[derive(Default)]
struct State {
    pulls: BTreeMap<u64, PullSeed>,
    /// Per pull request, oldest first: (reviewer, state, commit).
    reviews: BTreeMap<u64, Vec<(String, String, String)>>,
    issues: BTreeMap<u64, String>,
}

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
        lock(&self.shared.state).issues.insert(number, author.to_owned());
    }
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
    let state = lock(&shared.state);
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
            Some(author) => answer(
                StatusCode::OK,
                json!({"number": n, "state": "open", "title": "Access request", "user": user(author, "User"), "labels": [{"name": "access-request"}]}),
            ),
            None => not_found(),
        },
        _ => not_found(),
    }
}
