//! Rules for names and emails that both directories accept.

/// Components a dataset may list; roles may require one of them.
pub const KNOWN_COMPONENTS: &[&str] = &[
    "storage",
    "test-storage",
    "hail",
    "spark",
    "cromwell",
    "notebooks",
    "registry",
    "analysis-runner",
    "metamist",
    "upload",
    "release",
    "budget",
];

/// Longest group name: a Google group email's local part and Azure's mailNickname both stop at 64.
pub const MAX_GROUP_NAME_LEN: usize = 64;

/// Why `name` cannot be a group name (the local part of its email and its Azure mailNickname),
/// or `None` if it can.
pub fn group_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("group name is empty".to_owned());
    }
    if name.len() > MAX_GROUP_NAME_LEN {
        return Some(format!(
            "group name `{name}` is {} characters; Google group emails and Azure mailNickname allow {MAX_GROUP_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name.chars().find(|c| !is_name_char(*c)) {
        return Some(format!("group name `{name}` contains `{bad}`; use lowercase letters, digits, `-`, `_` and `.`"));
    }
    if name.starts_with(['.', '-']) || name.ends_with(['.', '-']) || name.contains("..") {
        return Some(format!("group name `{name}` must not start or end with `.` or `-` or contain `..`"));
    }
    None
}

/// Why `key` cannot name a person, role, group or dataset, or `None` if it can.
pub fn key_problem(kind: &str, key: &str) -> Option<String> {
    if key.is_empty() || !key.chars().all(is_name_char) {
        return Some(format!("{kind} name `{key}` is invalid; use lowercase letters, digits, `-`, `_` and `.`"));
    }
    None
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
}

/// A practical email check: one `@`, a plain local part, a dotted domain of letters, digits and `-`.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "._%+-'".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

/// What is wrong with a GitHub user name (`octocat` or `@octocat`), if anything: letters,
/// digits and single hyphens inside, at most 39 characters.
pub fn github_handle_problem(handle: &str) -> Option<String> {
    let name = handle.strip_prefix('@').unwrap_or(handle);
    let ok = !name.is_empty()
        && name.len() <= 39
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    (!ok).then(|| {
        format!("invalid GitHub user name `{handle}`; use letters, digits and single hyphens, at most 39 characters")
    })
}

/// Whether `email`'s domain is `allowed` or a subdomain of it.
pub fn domain_allowed(email: &str, allowed: &[String]) -> bool {
    let Some((_, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    allowed.iter().any(|a| domain == *a || domain.ends_with(&format!(".{a}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_valid_email("alice@example.org"));
        assert!(is_valid_email("svc-1@proj.iam.gserviceaccount.com"));
        assert!(!is_valid_email("alice@example"));
        assert!(!is_valid_email("alice example@example.org"));
        assert!(!is_valid_email("alice@@example.org"));
        assert!(!is_valid_email("@example.org"));
    }

    #[test]
    fn group_names() {
        assert_eq!(group_name_problem("tob-wgs-analysis"), None);
        assert!(group_name_problem(&"a".repeat(65)).unwrap().contains("65 characters"));
        assert!(group_name_problem("Tob").unwrap().contains("`T`"));
        assert!(group_name_problem("-x").is_some());
    }

    #[test]
    fn subdomains_are_allowed() {
        let allowed = vec!["iam.gserviceaccount.com".to_owned()];
        assert!(domain_allowed("a@p.iam.gserviceaccount.com", &allowed));
        assert!(!domain_allowed("a@evil.com", &allowed));
    }
}
