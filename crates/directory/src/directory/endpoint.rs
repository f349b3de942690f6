//! Which hosts the tool may send requests (and credentials) to: a service's own hosts over
//! HTTPS, or loopback for an emulator (127.0.0.0/8, `::1`, `localhost` exactly), checked on the
//! parsed URL, never with user info.

use std::net::IpAddr;

use url::Url;

use super::DirectoryError;

/// An endpoint root the tool may talk to: HTTPS on one of `hosts`, or loopback (127.0.0.0/8,
/// `::1`, `localhost` exactly) over either scheme; never with user info.
pub(crate) fn check_root(root: &str, hosts: &[&str], what: &str) -> Result<Url, DirectoryError> {
    check(root, Some(hosts), what)
}

/// An endpoint on any host over HTTPS, or loopback over plain HTTP too; never with user info.
pub(crate) fn check_any_https(root: &str, what: &str) -> Result<Url, DirectoryError> {
    check(root, None, what)
}

/// `hosts: None` admits every host over HTTPS.
fn check(root: &str, hosts: Option<&[&str]>, what: &str) -> Result<Url, DirectoryError> {
    let refused = |why: &str| DirectoryError::Rejected(format!("{what} `{root}`: {why}"));
    let url = Url::parse(root).map_err(|e| refused(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("user info is not allowed in an endpoint"));
    }
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let known =
        url.scheme() == "https" && url.host_str().is_some_and(|host| hosts.is_none_or(|hosts| hosts.contains(&host)));
    match (url.scheme(), hosts) {
        ("http" | "https", _) if loopback || known => Ok(url),
        ("http", None) => Err(refused("plain HTTP is allowed only on loopback addresses")),
        ("http" | "https", Some(hosts)) => Err(refused(&format!("only {} or a loopback address", hosts.join(", ")))),
        _ => Err(refused("must start with https://")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_microsoft_or_loopback_parsed_as_urls() {
        let hosts = ["login.microsoftonline.com"];
        let ok = |root: &str| check_root(root, &hosts, "authority").is_ok();
        assert!(ok("https://login.microsoftonline.com"));
        assert!(ok("http://127.0.0.1:8090"));
        assert!(ok("http://127.8.9.10:1/"));
        assert!(ok("http://[::1]:8090"));
        assert!(ok("http://localhost:8090"));
        assert!(!ok("http://login.microsoftonline.com"), "Microsoft's own host only over HTTPS");
        assert!(!ok("https://localhost.example.org"));
        assert!(!ok("http://10.0.0.5:8090"));
        assert!(!ok("http://user@127.0.0.1:8090"));
        assert!(!ok("http://127.0.0.1@example.org"));
        assert!(!ok("https://login.microsoftonline.com.example.org"));
        assert!(!ok("ftp://127.0.0.1/"));
    }
}
