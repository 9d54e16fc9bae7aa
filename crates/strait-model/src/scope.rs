//! What a sidecar can reach: the `egress[].hosts` of the Sidecar resource that applies to it,
//! as istiod's `SidecarScope` decides. A proxy is sent only the services (and the
//! VirtualServices) its scope admits, so its configuration, and the pushes it receives, grow
//! with what it talks to rather than with the mesh.
//!
//! Which Sidecar applies (Istio's rules, from the proxy's config cluster): the oldest one in the
//! proxy's namespace whose `workloadSelector` selects it; else the oldest one in its namespace
//! without a selector; else the oldest one in the root namespace without a selector (the mesh
//! default). A Sidecar without egress listeners, or no Sidecar at all, admits everything
//! (`*/*`). An egress host is `namespace/dnsName`: `*` any namespace, `.` the proxy's own (also
//! for the root namespace's default, as istiod clones it per namespace), `~` none; `dnsName`
//! may be `*` or a `*.` wildcard.
//!
//! The hosts of every egress listener apply to every port (a listener's `port` is reported as
//! not applied).

use crate::host;

/// A proxy's egress scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// No Sidecar applies (or it has no egress): every service the proxy may see (`exportTo`).
    All,
    /// Only these hosts.
    Hosts(Vec<EgressHost>),
}

/// One admitted `namespace/dnsName`, its namespace resolved for the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressHost {
    /// `None`: any namespace.
    pub namespace: Option<String>,
    /// Lowercase; `*`, `*.suffix` or a name.
    pub host: String,
}

impl Scope {
    /// The scope an egress host list gives a proxy in `proxy_ns`.
    pub fn from_hosts<'a>(hosts: impl IntoIterator<Item = &'a str>, proxy_ns: &str) -> Scope {
        let mut out = Vec::new();
        for h in hosts {
            let (ns, name) = match h.split_once('/') {
                Some(("*", name)) => (None, name),
                Some((".", name)) => (Some(proxy_ns.to_string()), name),
                // `~/host` admits nothing.
                Some(("~", _)) => continue,
                Some((ns, name)) => (Some(ns.to_string()), name),
                None => (None, h),
            };
            if name.is_empty() {
                continue;
            }
            out.push(EgressHost {
                namespace: ns,
                host: name.to_ascii_lowercase(),
            });
        }
        Scope::Hosts(out)
    }

    /// Whether a host defined (or configured) in namespace `ns` is in scope.
    pub fn allows(&self, ns: &str, hostname: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Hosts(hosts) => {
                let lower;
                let hostname = if hostname.bytes().any(|b| b.is_ascii_uppercase()) {
                    lower = hostname.to_ascii_lowercase();
                    lower.as_str()
                } else {
                    hostname
                };
                hosts.iter().any(|e| {
                    e.namespace.as_deref().is_none_or(|n| n == ns)
                        && host::matches(&e.host, hostname)
                })
            }
        }
    }

    /// The namespaces whose services can be in scope; `None` when any namespace can.
    pub fn namespaces(&self) -> Option<Vec<&str>> {
        match self {
            Scope::All => None,
            Scope::Hosts(hosts) => {
                let mut out = Vec::new();
                for e in hosts {
                    out.push(e.namespace.as_deref()?);
                }
                out.sort_unstable();
                out.dedup();
                Some(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_hosts_resolve_for_the_proxy() {
        let s = Scope::from_hosts(["./*", "istio-system/*", "~/*", "*/api.Example.com"], "ns1");
        assert!(s.allows("ns1", "a.ns1.svc.cluster.local"));
        assert!(!s.allows("ns2", "a.ns2.svc.cluster.local"));
        assert!(s.allows("istio-system", "istiod.istio-system.svc.cluster.local"));
        assert!(s.allows("anywhere", "API.example.com"));
        assert!(!s.allows("anywhere", "www.example.com"));
        assert_eq!(
            s.namespaces(),
            None,
            "`*/api.example.com` reaches any namespace"
        );
        let narrow = Scope::from_hosts(["./*", "istio-system/*.svc.cluster.local"], "ns1");
        assert_eq!(narrow.namespaces(), Some(vec!["istio-system", "ns1"]));
        assert!(!Scope::from_hosts(["~/*"], "ns1").allows("ns1", "a"));
        assert!(Scope::All.allows("x", "y"));
    }
}
