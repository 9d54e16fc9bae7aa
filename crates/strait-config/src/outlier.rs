//! Outlier detection and locality-aware load balancing, as a proxy runs them: the parts of a
//! DestinationRule's `outlierDetection` and `localityLbSetting` that reach the data plane,
//! with Istio's defaults already filled in by the control plane.

use serde::{Deserialize, Serialize};

/// When an endpoint is ejected from its cluster's load balancing (Envoy's outlier detection as
/// Istio configures it). Connection failures count as 503s, since Istio does not split locally
/// originated errors from the upstream's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutlierDetection {
    /// Consecutive 5xx answers (or connection failures) that eject an endpoint; `None`: never
    /// for this reason (`consecutive5xxErrors: 0`).
    pub consecutive_5xx: Option<u32>,
    /// Consecutive 502, 503 or 504 answers (or connection failures) that eject it; `None`:
    /// never for this reason (Istio's default).
    pub consecutive_gateway_errors: Option<u32>,
    /// How often ejections are reviewed: an endpoint that stayed healthy for a whole interval
    /// has its ejection multiplier lowered.
    pub interval_ms: u64,
    /// An endpoint stays out for this long times the number of times it was ejected.
    pub base_ejection_ms: u64,
    /// At most this share of a cluster's endpoints is out at once (one always may be).
    pub max_ejection_percent: u32,
    /// Below this share of healthy endpoints a priority level ignores health and uses every
    /// endpoint (Envoy's panic threshold; 0 disables panic mode, Istio's default).
    pub min_health_percent: u32,
}

impl OutlierDetection {
    /// Istio's defaults for a rule that sets `outlierDetection: {}`.
    pub fn istio_default() -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: Some(5),
            consecutive_gateway_errors: None,
            interval_ms: 10_000,
            base_ejection_ms: 30_000,
            max_ejection_percent: 10,
            min_health_percent: 0,
        }
    }
}

/// `region/zone/subzone`, the form Istio writes localities in; empty parts are unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Locality {
    pub region: String,
    pub zone: String,
    pub subzone: String,
}

impl Locality {
    /// Parses `region[/zone[/subzone]]`; surrounding blanks are dropped.
    pub fn parse(s: &str) -> Locality {
        let mut parts = s.trim().splitn(3, '/').map(|p| p.trim().to_string());
        Locality {
            region: parts.next().unwrap_or_default(),
            zone: parts.next().unwrap_or_default(),
            subzone: parts.next().unwrap_or_default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.region.is_empty() && self.zone.is_empty() && self.subzone.is_empty()
    }
}

impl std::fmt::Display for Locality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.zone.is_empty(), self.subzone.is_empty()) {
            (true, true) => f.write_str(&self.region),
            (false, true) => write!(f, "{}/{}", self.region, self.zone),
            _ => write!(f, "{}/{}/{}", self.region, self.zone, self.subzone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localities_parse_and_print_as_istio_writes_them() {
        let l = Locality::parse("us-west-2/us-west-2a/rack1");
        assert_eq!(
            (l.region.as_str(), l.zone.as_str(), l.subzone.as_str()),
            ("us-west-2", "us-west-2a", "rack1")
        );
        assert_eq!(l.to_string(), "us-west-2/us-west-2a/rack1");
        assert_eq!(Locality::parse("eastus").to_string(), "eastus");
        assert_eq!(Locality::parse("eastus/1").to_string(), "eastus/1");
        assert!(Locality::parse("").is_empty());
    }
}
