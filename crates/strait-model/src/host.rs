//! Istio's hostname rules: short names, wildcards, `namespace/host` in Gateways and Sidecars,
//! and `exportTo` visibility.

/// Expands a host written in a resource of `namespace` the way istiod does: a name without a
/// dot becomes `<name>.<namespace>.svc.<domain>`; anything with a dot, `*` and IP addresses are
/// taken literally. (So `reviews.bookinfo` is *not* expanded; istiod treats it as an external
/// name that matches no Kubernetes service.)
pub fn fqdn(host: &str, namespace: &str, domain: &str) -> String {
    if host.is_empty() || host == "*" || host.contains('.') || host.contains(':') {
        return host.to_string();
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_string();
    }
    format!("{host}.{namespace}.svc.{domain}")
}

/// The service a dotted host was probably meant to name, when it is a truncated Kubernetes
/// name that istiod will not expand: `name.namespace.svc` or `name.namespace.svc.cluster`
/// always are; `name.namespace` is only when `exists` says that service is real (otherwise
/// it is just as likely an external domain such as `example.com`).
pub fn truncated_service_name(
    host: &str,
    domain: &str,
    exists: impl Fn(&str) -> bool,
) -> Option<String> {
    if host.starts_with('*') || host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 || !labels.iter().all(|l| crate::is_dns_label(l)) {
        return None;
    }
    let full = format!("{}.{}.svc.{domain}", labels[0], labels[1]);
    if host == full || !full.starts_with(&format!("{host}.")) {
        return None;
    }
    (labels.len() > 2 || exists(&full)).then_some(full)
}

/// The Kubernetes Service a fully qualified host names (`name.namespace.svc.<domain>`), as
/// `(name, namespace)`; `None` for any other host.
pub fn service_of<'h>(host: &'h str, domain: &str) -> Option<(&'h str, &'h str)> {
    let rest = host.strip_suffix(domain)?.strip_suffix(".svc.")?;
    let (name, ns) = rest.split_once('.')?;
    (crate::is_dns_label(name) && crate::is_dns_label(ns)).then_some((name, ns))
}

pub fn is_wildcard(host: &str) -> bool {
    host.starts_with('*')
}

/// Istio's `Name.Matches`: the two hosts can name a common host (equal, or one wildcard
/// covers the other).
pub fn matches(a: &str, b: &str) -> bool {
    match (is_wildcard(a), is_wildcard(b)) {
        (true, true) => a[1..].ends_with(&b[1..]) || b[1..].ends_with(&a[1..]),
        (true, false) => b.ends_with(&a[1..]),
        (false, true) => a.ends_with(&b[1..]),
        (false, false) => a.eq_ignore_ascii_case(b),
    }
}

/// Istio's `Name.SubsetOf`: every host `a` names is also named by `b`.
pub fn subset_of(a: &str, b: &str) -> bool {
    match (is_wildcard(a), is_wildcard(b)) {
        (true, true) => a[1..].ends_with(&b[1..]),
        (false, true) => a.ends_with(&b[1..]),
        (true, false) => false,
        (false, false) => a.eq_ignore_ascii_case(b),
    }
}

/// The namespace part of a `namespace/host` entry (Gateway servers, Sidecar egress).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NsScope {
    /// `*/host` or a bare `host`.
    Any,
    /// `./host`: the resource's own namespace.
    Own,
    /// `~/host`: no namespace.
    None,
    Named(String),
}

/// A parsed `namespace/host` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopedHost {
    pub scope: NsScope,
    pub host: String,
}

impl ScopedHost {
    pub fn parse(s: &str) -> ScopedHost {
        match s.split_once('/') {
            Some((ns, host)) => ScopedHost {
                scope: match ns {
                    "*" => NsScope::Any,
                    "." => NsScope::Own,
                    "~" => NsScope::None,
                    other => NsScope::Named(other.to_string()),
                },
                host: host.to_string(),
            },
            None => ScopedHost {
                scope: NsScope::Any,
                host: s.to_string(),
            },
        }
    }

    /// Whether a resource in `ns` (e.g. a VirtualService) may attach to this entry of a resource
    /// in `owner_ns` (e.g. the Gateway).
    pub fn allows_namespace(&self, ns: &str, owner_ns: &str) -> bool {
        match &self.scope {
            NsScope::Any => true,
            NsScope::Own => ns == owner_ns,
            NsScope::None => false,
            NsScope::Named(n) => n == ns,
        }
    }
}

/// Who may see a resource, from `exportTo` (empty means the mesh default, `*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportTo {
    All,
    Namespaces(Vec<String>),
}

impl ExportTo {
    /// Parses `exportTo` entries of a resource in `owner_ns` (`.` = own namespace, `~` = none).
    pub fn parse(entries: &[String], owner_ns: &str, default_all: bool) -> ExportTo {
        if entries.is_empty() {
            return if default_all {
                ExportTo::All
            } else {
                ExportTo::Namespaces(vec![owner_ns.to_string()])
            };
        }
        if entries.iter().any(|e| e == "*") {
            return ExportTo::All;
        }
        ExportTo::Namespaces(
            entries
                .iter()
                .filter(|e| e.as_str() != "~")
                .map(|e| {
                    if e == "." {
                        owner_ns.to_string()
                    } else {
                        e.clone()
                    }
                })
                .collect(),
        )
    }

    /// The `networking.istio.io/exportTo` annotation of a Service (comma-separated).
    pub fn from_annotation(value: Option<&str>, owner_ns: &str) -> ExportTo {
        match value {
            None => ExportTo::All,
            Some(v) => {
                let entries: Vec<String> = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                ExportTo::parse(&entries, owner_ns, true)
            }
        }
    }

    pub fn visible_to(&self, ns: &str) -> bool {
        match self {
            ExportTo::All => true,
            ExportTo::Namespaces(list) => list.iter().any(|n| n == ns),
        }
    }

    /// Exported only to its own namespace (or nowhere): an internal resource.
    pub fn is_private(&self, owner_ns: &str) -> bool {
        match self {
            ExportTo::All => false,
            ExportTo::Namespaces(list) => list.iter().all(|n| n == owner_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_of_a_host() {
        let d = "cluster.local";
        assert_eq!(
            service_of("gw.istio-system.svc.cluster.local", d),
            Some(("gw", "istio-system"))
        );
        assert_eq!(service_of("gw.istio-system.svc", d), None);
        assert_eq!(service_of("a.b.c.svc.cluster.local", d), None);
        assert_eq!(service_of("example.com", d), None);
    }

    #[test]
    fn short_names_expand_like_istiod() {
        assert_eq!(
            fqdn("reviews", "bookinfo", "cluster.local"),
            "reviews.bookinfo.svc.cluster.local"
        );
        assert_eq!(
            fqdn("reviews.bookinfo", "x", "cluster.local"),
            "reviews.bookinfo"
        );
        assert_eq!(fqdn("*", "x", "cluster.local"), "*");
        assert_eq!(fqdn("10.0.0.1", "x", "cluster.local"), "10.0.0.1");
    }

    #[test]
    fn truncated_service_names() {
        let d = "cluster.local";
        let known = |h: &str| h == "reviews.bookinfo.svc.cluster.local";
        let t = |h: &str| truncated_service_name(h, d, known);
        assert_eq!(
            t("reviews.bookinfo").as_deref(),
            Some("reviews.bookinfo.svc.cluster.local")
        );
        assert_eq!(
            t("ratings.bookinfo.svc").as_deref(),
            Some("ratings.bookinfo.svc.cluster.local")
        );
        assert_eq!(
            t("ratings.bookinfo.svc.cluster").as_deref(),
            Some("ratings.bookinfo.svc.cluster.local")
        );
        assert_eq!(
            t("example.com"),
            None,
            "a two-label domain that names no service"
        );
        assert_eq!(t("api.example.com"), None);
        assert_eq!(t("reviews.bookinfo.svc.cluster.local"), None);
    }

    #[test]
    fn wildcard_matching() {
        assert!(matches("*.local", "reviews.default.svc.cluster.local"));
        assert!(matches("*", "anything.example.com"));
        assert!(matches("*.example.com", "*.foo.example.com"));
        assert!(!matches("*.example.com", "example.org"));
        assert!(subset_of("a.example.com", "*.example.com"));
        assert!(!subset_of("*.example.com", "a.example.com"));
        assert!(subset_of("*.foo.example.com", "*.example.com"));
    }

    #[test]
    fn scoped_hosts_and_export() {
        let h = ScopedHost::parse("./bookinfo.example.com");
        assert!(h.allows_namespace("gw", "gw"));
        assert!(!h.allows_namespace("other", "gw"));
        assert!(ScopedHost::parse("*/x").allows_namespace("a", "b"));
        let e = ExportTo::parse(&[".".into()], "ns1", true);
        assert!(e.visible_to("ns1") && !e.visible_to("ns2"));
        assert!(e.is_private("ns1"));
        assert_eq!(ExportTo::from_annotation(Some("*"), "a"), ExportTo::All);
    }
}
