//! The client side: which DestinationRules a sidecar applies to a host, and the TLS mode they
//! set for one service port, the way istiod's `PushContext.destinationRule` and
//! `MergeSubsetTrafficPolicy` decide. Shared by the proxy compiler and the analyzer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ObjId;
use crate::host::{self, ExportTo};
use strait_api::istio::destination_rule::{
    ClientTlsMode, ClientTlsSettings, DestinationRuleSpec, TrafficPolicy,
};

/// A DestinationRule as the client side sees it.
#[derive(Debug)]
pub struct Dr<'m> {
    pub id: ObjId,
    pub namespace: &'m str,
    pub host: String,
    pub export: ExportTo,
    pub spec: &'m DestinationRuleSpec,
}

/// The most specific DestinationRule among `drs` covering `hostname`: an exact host beats
/// wildcards, a longer wildcard beats a shorter one.
pub fn most_specific<'a, 'm>(
    drs: impl Iterator<Item = &'a Dr<'m>>,
    hostname: &str,
) -> Option<&'a Dr<'m>> {
    drs.filter(|d| host::subset_of(hostname, &d.host))
        .max_by_key(|d| (!host::is_wildcard(&d.host), d.host.len()))
}

/// One control plane's DestinationRules grouped by namespace, each namespace's indexed by exact
/// host with its wildcard hosts aside, so finding the rules for a host does not scan them all.
#[derive(Debug)]
pub struct DrIndex<'a, 'm> {
    by_ns: BTreeMap<&'m str, NsRules<'a, 'm>>,
    /// The namespaces holding a rule for each exact host, and those holding a wildcard rule:
    /// [`DrIndex::applicable`] asks only these, not every namespace about every host.
    exact_holders: HashMap<&'a str, BTreeSet<&'m str>>,
    wildcard_holders: BTreeSet<&'m str>,
}

#[derive(Debug, Default)]
struct NsRules<'a, 'm> {
    exact: HashMap<&'a str, Vec<&'a Dr<'m>>>,
    wildcard: Vec<&'a Dr<'m>>,
}

impl<'a, 'm> DrIndex<'a, 'm> {
    pub fn new(drs: &'a [Dr<'m>]) -> Self {
        let mut by_ns: BTreeMap<&'m str, NsRules<'a, 'm>> = BTreeMap::new();
        let mut exact_holders: HashMap<&'a str, BTreeSet<&'m str>> = HashMap::new();
        let mut wildcard_holders = BTreeSet::new();
        for d in drs {
            let ns = by_ns.entry(d.namespace).or_default();
            if host::is_wildcard(&d.host) {
                ns.wildcard.push(d);
                wildcard_holders.insert(d.namespace);
            } else {
                ns.exact.entry(d.host.as_str()).or_default().push(d);
                exact_holders
                    .entry(d.host.as_str())
                    .or_default()
                    .insert(d.namespace);
            }
        }
        DrIndex {
            by_ns,
            exact_holders,
            wildcard_holders,
        }
    }

    fn most_specific_in(&self, ns: &str, hostname: &str) -> Option<&'a Dr<'m>> {
        let rules = self.by_ns.get(ns)?;
        let exact = rules.exact.get(hostname).into_iter().flatten().copied();
        most_specific(exact.chain(rules.wildcard.iter().copied()), hostname)
    }

    /// The DestinationRule a client in `client_ns` applies to `hostname` (a service in
    /// `svc_ns`), as istiod picks it: the client namespace's own, else the service
    /// namespace's if exported to the client, else the root namespace's.
    pub fn for_client(
        &self,
        hostname: &str,
        client_ns: &str,
        svc_ns: &str,
        root: &str,
    ) -> Option<&'a Dr<'m>> {
        self.most_specific_in(client_ns, hostname)
            .or_else(|| {
                self.most_specific_in(svc_ns, hostname)
                    .filter(|d| d.export.visible_to(client_ns))
            })
            .or_else(|| {
                self.most_specific_in(root, hostname)
                    .filter(|d| d.export.visible_to(client_ns))
            })
    }

    /// DestinationRules some client applies to `hostname` (a service in `svc_ns`): the
    /// service namespace's, each other namespace's own, and the root namespace's unless the
    /// service namespace's shadows it for everyone.
    pub fn applicable(&self, hostname: &str, svc_ns: &str, root: &str) -> Vec<&'a Dr<'m>> {
        let mut out = Vec::new();
        let own = self.most_specific_in(svc_ns, hostname);
        out.extend(own);
        // Only namespaces with a rule for this host or a wildcard one can have one that applies,
        // in name order.
        let mut holders = self.wildcard_holders.clone();
        holders.extend(self.exact_holders.get(hostname).into_iter().flatten());
        for ns in holders {
            if ns == svc_ns || ns == root {
                continue;
            }
            out.extend(self.most_specific_in(ns, hostname));
        }
        if own.is_none_or(|d| d.export != ExportTo::All) && svc_ns != root {
            out.extend(self.most_specific_in(root, hostname));
        }
        out
    }
}

/// Port-level settings for service port `port` replace the policy's own; returns the TLS
/// settings that apply and their field path.
pub fn port_tls<'a>(
    tp: &'a TrafficPolicy,
    port: u32,
    base: &str,
) -> (bool, Option<&'a ClientTlsSettings>, String) {
    match tp
        .port_level_settings
        .iter()
        .position(|pl| pl.port.as_ref().map(|p| p.number) == Some(port))
    {
        Some(i) => (
            true,
            tp.port_level_settings[i].tls.as_ref(),
            format!("{base}.portLevelSettings[{i}].tls"),
        ),
        None => (false, tp.tls.as_ref(), format!("{base}.tls")),
    }
}

/// The client TLS mode a DestinationRule sets for service port `port` (and subset `subset`),
/// with the field that sets it; `None` when auto mTLS decides.
pub fn client_tls(
    spec: &DestinationRuleSpec,
    port: u32,
    subset: Option<usize>,
) -> Option<(ClientTlsMode, String)> {
    let (mut tls, mut path) = match &spec.traffic_policy {
        Some(tp) => {
            let (_, t, p) = port_tls(tp, port, "spec.trafficPolicy");
            (t, p)
        }
        None => (None, String::new()),
    };
    if let Some(k) = subset
        && let Some(tp) = spec.subsets.get(k).and_then(|s| s.traffic_policy.as_ref())
    {
        let (port_level, t, p) = port_tls(tp, port, &format!("spec.subsets[{k}].trafficPolicy"));
        if port_level || t.is_some() {
            tls = t;
            path = p;
        }
    }
    let tls = tls?;
    // The proto default of `mode` is DISABLE.
    match tls.mode {
        Some(m) => Some((m, format!("{path}.mode"))),
        None => Some((ClientTlsMode::Disable, path)),
    }
}

/// Whether a subset overrides TLS for `port` at all.
pub fn subset_sets_tls(spec: &DestinationRuleSpec, k: usize, port: u32) -> bool {
    spec.subsets
        .get(k)
        .and_then(|s| s.traffic_policy.as_ref())
        .is_some_and(|tp| {
            let (port_level, t, _) = port_tls(tp, port, "");
            port_level || t.is_some()
        })
}

#[cfg(test)]
mod tests {
    use strait_api::istio::destination_rule::{ClientTlsMode, DestinationRuleSpec};

    use super::client_tls;

    #[test]
    fn port_level_settings_replace_the_top_level_tls() {
        let dr: DestinationRuleSpec = serde_json::from_value(serde_json::json!({
            "host": "billing",
            "trafficPolicy": {
                "tls": {"mode": "DISABLE"},
                "portLevelSettings": [{"port": {"number": 80}, "connectionPool": {"tcp": {"maxConnections": 10}}}]
            },
            "subsets": [{"name": "v2", "labels": {"version": "v2"}, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}]
        }))
        .expect("destination rule");
        assert_eq!(client_tls(&dr, 80, None), None);
        assert_eq!(
            client_tls(&dr, 9090, None),
            Some((
                ClientTlsMode::Disable,
                "spec.trafficPolicy.tls.mode".to_string()
            ))
        );
        assert_eq!(
            client_tls(&dr, 80, Some(0)),
            Some((
                ClientTlsMode::IstioMutual,
                "spec.subsets[0].trafficPolicy.tls.mode".to_string()
            ))
        );
    }

    /// [`DrIndex::applicable`] asks only the namespaces holding a rule for the host; it must
    /// answer as asking every namespace does.
    #[test]
    fn applicable_asks_only_holders_and_agrees_with_every_namespace() {
        use super::{Dr, DrIndex};
        use crate::host::ExportTo;
        use crate::{ClusterId, ObjId};

        let spec = DestinationRuleSpec::default();
        let rules = [
            ("a", "r.a.svc.cluster.local", ExportTo::All),
            ("a", "*.b.svc.cluster.local", ExportTo::All),
            (
                "b",
                "r.b.svc.cluster.local",
                ExportTo::parse(&[".".to_string()], "b", true),
            ),
            ("c", "*.svc.cluster.local", ExportTo::All),
            ("c", "r.a.svc.cluster.local", ExportTo::All),
            ("d", "*", ExportTo::All),
            ("istio-system", "r.a.svc.cluster.local", ExportTo::All),
            ("istio-system", "*.cluster.local", ExportTo::All),
            ("e", "other.e.svc.cluster.local", ExportTo::All),
        ];
        let drs: Vec<Dr> = rules
            .iter()
            .enumerate()
            .map(|(i, (ns, host, export))| Dr {
                id: ObjId {
                    cluster: ClusterId(0),
                    index: i as u32,
                },
                namespace: ns,
                host: host.to_string(),
                export: export.clone(),
                spec: &spec,
            })
            .collect();
        let index = DrIndex::new(&drs);
        let root = "istio-system";
        // The definition: the service namespace's rule, every other namespace's own, and the
        // root's unless the service namespace's is exported everywhere.
        let every = |host: &str, svc_ns: &str| {
            let mut out = Vec::new();
            let own = index.most_specific_in(svc_ns, host);
            out.extend(own);
            for ns in index.by_ns.keys().filter(|n| **n != svc_ns && **n != root) {
                out.extend(index.most_specific_in(ns, host));
            }
            if own.is_none_or(|d| d.export != ExportTo::All) && svc_ns != root {
                out.extend(index.most_specific_in(root, host));
            }
            out.iter().map(|d| d.id).collect::<Vec<_>>()
        };
        for host in [
            "r.a.svc.cluster.local",
            "r.b.svc.cluster.local",
            "x.f.svc.cluster.local",
            "other.e.svc.cluster.local",
            "nowhere.example.com",
        ] {
            for svc_ns in ["a", "b", "c", "e", "f", root] {
                let ids: Vec<ObjId> = index
                    .applicable(host, svc_ns, root)
                    .iter()
                    .map(|d| d.id)
                    .collect();
                assert_eq!(ids, every(host, svc_ns), "{host} from {svc_ns}");
            }
        }
    }
}
