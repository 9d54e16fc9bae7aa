//! Locality-aware load balancing, decided per proxy as istiod decides it: which priority level
//! each endpoint is on (locality failover, `failoverPriority`), or what share each locality
//! gets (`distribute`). The proxy then spills traffic from one level to the next only as the
//! endpoints of the first fail (outlier detection), so "stay in my zone, else my region, else
//! anywhere, through the other network's gateway" follows from these numbers.
//!
//! Istio's rule is kept: failover acts only when the destination has outlier detection, since
//! without it nothing would ever mark the near endpoints as failed.

use std::collections::BTreeMap;

use strait_api::istio::destination_rule::LocalityLoadBalancerSetting;
use strait_config::types::Endpoint;
use strait_config::{Locality, OutlierDetection};

/// Where the proxy sits, for comparing localities and `failoverPriority` labels.
#[derive(Clone, Debug, Default)]
pub(super) struct Site {
    pub locality: Locality,
    /// The proxy's labels with the topology labels istiod adds (network, cluster, region,
    /// zone, subzone, hostname).
    pub labels: BTreeMap<String, String>,
}

/// The locality setting in force: the DestinationRule's, else the mesh's (Istio's default mesh
/// config has `localityLbSetting: {enabled: true}`), unless the one that applies says
/// `enabled: false`.
pub(super) fn effective<'a>(
    rule: Option<&'a LocalityLoadBalancerSetting>,
    mesh: Option<&'a LocalityLoadBalancerSetting>,
) -> Option<&'a LocalityLoadBalancerSetting> {
    static ENABLED: LocalityLoadBalancerSetting = LocalityLoadBalancerSetting {
        distribute: Vec::new(),
        failover: Vec::new(),
        failover_priority: Vec::new(),
        enabled: None,
    };
    let s = rule.or(mesh).unwrap_or(&ENABLED);
    (s.enabled != Some(false)).then_some(s)
}

/// Sets each endpoint's priority, or drops endpoints and returns locality weights for
/// `distribute`. `labels[i]` are the labels of `endpoints[i]` as istiod matches them (a
/// gateway standing in for pods has only its network and cluster).
pub(super) fn apply(
    setting: Option<&LocalityLoadBalancerSetting>,
    outlier: Option<&OutlierDetection>,
    site: &Site,
    endpoints: &mut Vec<Endpoint>,
    labels: &[BTreeMap<String, String>],
) -> BTreeMap<String, u32> {
    let Some(s) = setting else {
        return BTreeMap::new();
    };
    if !s.distribute.is_empty() {
        return distribute(s, site, endpoints);
    }
    if outlier.is_none() {
        return BTreeMap::new();
    }
    let by_labels: Vec<u32> = if s.failover_priority.is_empty() || site.labels.is_empty() {
        vec![0; endpoints.len()]
    } else {
        endpoints
            .iter()
            .enumerate()
            .map(|(i, _)| label_priority(&s.failover_priority, &site.labels, labels.get(i)))
            .collect()
    };
    let combined: Vec<u32> = endpoints
        .iter()
        .zip(&by_labels)
        .map(|(e, p)| {
            let by_locality = if s.failover_priority.is_empty() || !s.failover.is_empty() {
                locality_priority(s, &site.locality, &Locality::parse(&e.locality))
            } else {
                0
            };
            p * 5 + by_locality
        })
        .collect();
    // Levels are renumbered 0, 1, 2, ... in order, as Envoy needs them contiguous.
    let mut levels = combined.clone();
    levels.sort_unstable();
    levels.dedup();
    for (e, p) in endpoints.iter_mut().zip(combined) {
        e.priority = levels.iter().position(|l| *l == p).unwrap_or(0) as u32;
    }
    BTreeMap::new()
}

/// 0 same subzone, 1 same zone, 2 same region, 3 elsewhere; with `failover` rules for the
/// proxy's region, regions other than the rule's `to` fall to 4.
fn locality_priority(s: &LocalityLoadBalancerSetting, me: &Locality, them: &Locality) -> u32 {
    if me.region == them.region {
        return match (me.zone == them.zone, me.subzone == them.subzone) {
            (true, true) => 0,
            (true, false) => 1,
            (false, _) => 2,
        };
    }
    match s.failover.iter().find(|f| f.from == me.region) {
        Some(f) if f.to != them.region => 4,
        _ => 3,
    }
}

/// `failoverPriority`: the number of labels, minus the index of the first that differs from
/// the proxy's (or from the value the entry gives, `key=value`). A different network, when the
/// list starts with `topology.istio.io/network`, ranks below everything on the same network.
fn label_priority(
    keys: &[String],
    mine: &BTreeMap<String, String>,
    theirs: Option<&BTreeMap<String, String>>,
) -> u32 {
    let n = keys.len() as u32;
    let network_first = keys.first().map(String::as_str) == Some("topology.istio.io/network");
    let mut adjust = 0;
    for (j, entry) in keys.iter().enumerate() {
        let (key, want) = match entry.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (entry.as_str(), None),
        };
        let want = want.or_else(|| mine.get(key).map(String::as_str));
        let have = theirs.and_then(|t| t.get(key)).map(String::as_str);
        if want.unwrap_or("") != have.unwrap_or("") {
            if j == 0 && network_first {
                adjust = n;
                continue;
            }
            return n - j as u32 + adjust;
        }
    }
    adjust
}

/// Istio's locality pattern: `region/zone/subzone`, each part `*` for any; a missing zone or
/// subzone matches any.
pub fn locality_matches(l: &Locality, pattern: &str) -> bool {
    let mut parts = pattern.trim().splitn(3, '/');
    let region = parts.next().unwrap_or("");
    let zone = parts.next().unwrap_or("");
    let subzone = parts.next().unwrap_or("");
    (region == "*" || region == l.region)
        && (zone.is_empty() || zone == "*" || zone == l.zone)
        && (subzone.is_empty() || subzone == "*" || subzone == l.subzone)
}

/// The first `distribute` rule whose `from` matches the proxy: each `to` pattern's share is
/// split over the localities it matches by their weight (a locality goes to the first pattern,
/// in name order, that matches it); localities no pattern matches are dropped.
fn distribute(
    s: &LocalityLoadBalancerSetting,
    site: &Site,
    endpoints: &mut Vec<Endpoint>,
) -> BTreeMap<String, u32> {
    let Some(rule) = s
        .distribute
        .iter()
        .find(|d| locality_matches(&site.locality, &d.from))
    else {
        return BTreeMap::new();
    };
    let mut groups: BTreeMap<String, u64> = BTreeMap::new();
    for e in endpoints.iter() {
        *groups.entry(e.locality.clone()).or_default() += u64::from(e.weight.max(1));
    }
    let mut claimed: BTreeMap<String, u32> = BTreeMap::new();
    for (pattern, share) in &rule.to {
        let matched: Vec<(&String, u64)> = groups
            .iter()
            .filter(|(l, _)| !claimed.contains_key(*l))
            .filter(|(l, _)| locality_matches(&Locality::parse(l), pattern))
            .map(|(l, w)| (l, *w))
            .collect();
        let total: u64 = matched.iter().map(|(_, w)| w).sum();
        for (l, w) in matched {
            let weight = (w * u64::from(*share)).div_ceil(total.max(1));
            claimed.insert(l.clone(), weight.min(u64::from(u32::MAX)) as u32);
        }
    }
    endpoints.retain(|e| claimed.get(&e.locality).is_some_and(|w| *w > 0));
    claimed.retain(|_, w| *w > 0);
    claimed
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_api::istio::destination_rule::{LocalityDistribute, LocalityFailover};
    use strait_config::types::EndpointMeta;

    fn ep(addr: &str, locality: &str) -> Endpoint {
        Endpoint {
            address: addr.into(),
            port: 5000,
            weight: 1,
            mtls: true,
            workload: EndpointMeta::default(),
            via_gateway: false,
            unhealthy: false,
            locality: locality.into(),
            priority: 0,
        }
    }

    fn site(l: &str) -> Site {
        Site {
            locality: Locality::parse(l),
            labels: BTreeMap::new(),
        }
    }

    fn priorities(eps: &[Endpoint]) -> Vec<(String, u32)> {
        eps.iter()
            .map(|e| (e.address.clone(), e.priority))
            .collect()
    }

    fn setting() -> LocalityLoadBalancerSetting {
        effective(None, None).cloned().unwrap_or_default()
    }

    #[test]
    fn failover_orders_subzone_zone_region_elsewhere() {
        let mut eps = vec![
            ep("a", "r1/z1/s1"),
            ep("b", "r1/z1/s2"),
            ep("c", "r1/z2"),
            ep("d", "r2/z1"),
        ];
        let od = OutlierDetection::istio_default();
        let labels = vec![BTreeMap::new(); eps.len()];
        let w = apply(
            Some(&setting()),
            Some(&od),
            &site("r1/z1/s1"),
            &mut eps,
            &labels,
        );
        assert!(w.is_empty());
        assert_eq!(
            priorities(&eps),
            [("a", 0), ("b", 1), ("c", 2), ("d", 3)].map(|(a, p)| (a.to_string(), p))
        );
    }

    #[test]
    fn without_outlier_detection_every_endpoint_stays_first() {
        let mut eps = vec![ep("a", "r1/z1"), ep("d", "r2/z1")];
        let labels = vec![BTreeMap::new(); eps.len()];
        apply(Some(&setting()), None, &site("r1/z1"), &mut eps, &labels);
        assert_eq!(
            priorities(&eps),
            [("a".to_string(), 0), ("d".to_string(), 0)]
        );
    }

    #[test]
    fn failover_rules_rank_the_named_region_before_others() {
        let s = LocalityLoadBalancerSetting {
            failover: vec![LocalityFailover {
                from: "r1".into(),
                to: "r3".into(),
            }],
            ..setting()
        };
        let mut eps = vec![ep("a", "r1/z1"), ep("b", "r2/z1"), ep("c", "r3/z1")];
        let labels = vec![BTreeMap::new(); eps.len()];
        let od = OutlierDetection::istio_default();
        apply(Some(&s), Some(&od), &site("r1/z1"), &mut eps, &labels);
        // r1: 0; r3 (the failover target): 3 → 1; r2: 4 → 2.
        assert_eq!(
            priorities(&eps),
            [("a", 0), ("b", 2), ("c", 1)].map(|(a, p)| (a.to_string(), p))
        );
    }

    #[test]
    fn failover_priority_labels_with_the_network_first() {
        let s = LocalityLoadBalancerSetting {
            failover_priority: vec![
                "topology.istio.io/network".into(),
                "topology.kubernetes.io/region".into(),
            ],
            ..setting()
        };
        let l = |net: &str, region: &str| -> BTreeMap<String, String> {
            [
                ("topology.istio.io/network".to_string(), net.to_string()),
                (
                    "topology.kubernetes.io/region".to_string(),
                    region.to_string(),
                ),
            ]
            .into()
        };
        let me = Site {
            locality: Locality::parse("r1"),
            labels: l("n1", "r1"),
        };
        let mut eps = vec![ep("a", ""), ep("b", ""), ep("c", ""), ep("d", "")];
        let labels = vec![l("n1", "r1"), l("n1", "r2"), l("n2", "r1"), l("n2", "r2")];
        let od = OutlierDetection::istio_default();
        apply(Some(&s), Some(&od), &me, &mut eps, &labels);
        // Same network and region 0; same network 1; other network, same region 2; else 3.
        assert_eq!(
            priorities(&eps),
            [("a", 0), ("b", 1), ("c", 2), ("d", 3)].map(|(a, p)| (a.to_string(), p))
        );
    }

    #[test]
    fn distribute_weights_localities_and_drops_the_rest() {
        let s = LocalityLoadBalancerSetting {
            distribute: vec![LocalityDistribute {
                from: "r1/*".into(),
                to: [("r1/z1/*".to_string(), 80), ("r2/*".to_string(), 20)].into(),
            }],
            ..setting()
        };
        let mut eps = vec![
            ep("a", "r1/z1"),
            ep("b", "r1/z1"),
            ep("c", "r2/z1"),
            ep("d", "r2/z2"),
            ep("e", "r3/z1"),
        ];
        let labels = vec![BTreeMap::new(); eps.len()];
        let w = apply(Some(&s), None, &site("r1/z9"), &mut eps, &labels);
        assert_eq!(
            w,
            [
                ("r1/z1".to_string(), 80),
                ("r2/z1".to_string(), 10),
                ("r2/z2".to_string(), 10)
            ]
            .into()
        );
        assert_eq!(eps.len(), 4, "r3 is not distributed to");
    }

    #[test]
    fn disabled_settings_turn_locality_off() {
        let off = LocalityLoadBalancerSetting {
            enabled: Some(false),
            ..setting()
        };
        assert!(effective(Some(&off), None).is_none());
        assert!(effective(None, Some(&off)).is_none());
        assert!(effective(None, None).is_some());
        assert!(locality_matches(&Locality::parse("r/z/s"), "r"));
        assert!(locality_matches(&Locality::parse("r/z/s"), "*/z"));
        assert!(!locality_matches(&Locality::parse("r/z/s"), "r/y/*"));
    }
}
