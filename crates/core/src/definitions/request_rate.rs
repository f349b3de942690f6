//! How fast the sync may send requests to each provider's service, and the defaults, each from
//! the service's documented quota (or, where a service documents none, a conservative guess
//! that says so). The pacing itself is `cpg-infra-directory`'s; only the numbers live here.

use std::fmt;

/// A token bucket's settings: refilled at `per_second` requests a second, holding at most
/// `burst`. Both are positive and finite (`new` refuses anything else), which is what makes
/// `Eq` sound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestRate {
    per_second: f64,
    burst: u32,
}

impl Eq for RequestRate {}

impl RequestRate {
    /// Google Cloud Identity (groups, memberships) and the Groups Settings API, one bucket for
    /// both. Google publishes no default for the Cloud Identity API's own request quota (the
    /// project's console shows it); the Admin SDK Directory API, which manages the same
    /// Workspace groups, documents 2,400 queries per minute per user per project by default
    /// (https://developers.google.com/workspace/admin/directory/v1/limits), so 40 a second.
    /// The Groups Settings API's only quota is 100,000 queries a day
    /// (https://developers.google.com/workspace/admin/groups-settings/limits), far above one
    /// read and at most one update per owned group.
    pub const GOOGLE: RequestRate = RequestRate { per_second: 40.0, burst: 40 };

    /// Microsoft Graph, identity and access (groups, users, service principals). Per app and
    /// tenant, writes may use 3,000 requests per 2 minutes 30 seconds, the tightest limit a
    /// sync meets (reads use resource units: 3,500 to 8,000 per 10 seconds by tenant size,
    /// 1–3 per request) — so 20 a second
    /// (https://learn.microsoft.com/en-us/graph/throttling-limits#identity-and-access-service-limits).
    /// Each request inside a `$batch` counts on its own
    /// (https://learn.microsoft.com/en-us/graph/throttling#throttling-and-batching), so the
    /// burst holds one full batch of 20.
    pub const AZURE: RequestRate = RequestRate { per_second: 20.0, burst: 20 };

    /// Hail Batch documents no request quota: a conservative 10 a second, for a service an
    /// organisation runs itself.
    pub const HAIL: RequestRate = RequestRate { per_second: 10.0, burst: 10 };

    /// Metamist documents no request quota: a conservative 10 a second, as for Hail Batch.
    pub const METAMIST: RequestRate = RequestRate { per_second: 10.0, burst: 10 };

    /// A rate of `per_second` requests with bursts of up to `burst`; `None` unless both are
    /// positive and finite.
    pub fn new(per_second: f64, burst: u32) -> Option<RequestRate> {
        (per_second.is_finite() && per_second > 0.0 && burst > 0).then_some(RequestRate { per_second, burst })
    }

    /// `per_second` with the burst a default would have: one second's worth, at least one.
    pub fn per_second(per_second: f64) -> Option<RequestRate> {
        let burst = per_second.ceil().clamp(1.0, u32::MAX as f64) as u32;
        RequestRate::new(per_second, burst)
    }

    pub fn requests_per_second(&self) -> f64 {
        self.per_second
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }
}

impl fmt::Display for RequestRate {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} request(s) a second, bursts of {}", self.per_second, self.burst)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::definitions::{load, DirSource, OverlaySource};

    /// The organisation of the `request-rate-invalid` case with `[providers]` as given.
    fn organisation_with(providers: &str) -> crate::definitions::Organisation {
        let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/invalid/request-rate-invalid");
        let base = DirSource::new(case);
        let org = format!(
            "[organisation]\nname = \"Test\"\ndomain = \"example.org\"\ngroups_domain = \"groups.example.org\"\nallowed_member_domains = [\"iam.gserviceaccount.com\"]\n{providers}"
        );
        let overlay = OverlaySource::new(&base, BTreeMap::from([("groups/org.toml".to_owned(), org)]));
        load(&overlay).unwrap_or_else(|e| panic!("{e}")).organisation
    }

    #[test]
    fn providers_get_their_service_default_unless_org_toml_says() {
        let defaults = organisation_with(
            "[providers.google]\n[providers.azure]\n[providers.hail]\n[providers.metamist]\naccount = \"s@example.org\"\n",
        );
        assert_eq!(defaults.google.map(|p| p.requests), Some(RequestRate::GOOGLE));
        assert_eq!(defaults.azure.map(|p| p.requests), Some(RequestRate::AZURE));
        assert_eq!(defaults.hail.map(|p| p.requests), Some(RequestRate::HAIL));
        assert_eq!(defaults.metamist.map(|p| p.requests), Some(RequestRate::METAMIST));
        let set = organisation_with(
            "[providers.google]\nrequests_per_second = 2.5\n[providers.azure]\nrequest_burst = 5\n[providers.hail]\nrequests_per_second = 100\nrequest_burst = 7\n",
        );
        assert_eq!(set.google.map(|p| p.requests), RequestRate::new(2.5, 3), "a rate alone bursts one second's worth");
        assert_eq!(set.azure.map(|p| p.requests), RequestRate::new(20.0, 5), "a burst alone keeps the default rate");
        assert_eq!(set.hail.map(|p| p.requests), RequestRate::new(100.0, 7));
    }

    #[test]
    fn only_positive_finite_rates_exist() {
        assert!(RequestRate::new(0.5, 1).is_some());
        assert!(RequestRate::new(0.0, 1).is_none());
        assert!(RequestRate::new(-1.0, 1).is_none());
        assert!(RequestRate::new(f64::NAN, 1).is_none());
        assert!(RequestRate::new(f64::INFINITY, 1).is_none());
        assert!(RequestRate::new(5.0, 0).is_none());
        assert_eq!(RequestRate::per_second(2.5).map(|r| r.burst()), Some(3));
        assert_eq!(RequestRate::per_second(0.2).map(|r| r.burst()), Some(1));
    }
}
