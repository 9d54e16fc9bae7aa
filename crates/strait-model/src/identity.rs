//! SPIFFE identities, as Istio issues them.

/// `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`; an `@` in the trust domain
/// becomes `.` as in Istio.
pub fn spiffe_id(trust_domain: &str, namespace: &str, service_account: &str) -> String {
    let sa = if service_account.is_empty() {
        "default"
    } else {
        service_account
    };
    format!(
        "spiffe://{}/ns/{namespace}/sa/{sa}",
        trust_domain.replace('@', ".")
    )
}

/// Splits a SPIFFE ID into (trust domain, namespace, service account).
pub fn parse_spiffe_id(id: &str) -> Option<(&str, &str, &str)> {
    let rest = id.strip_prefix("spiffe://")?;
    let (td, path) = rest.split_once('/')?;
    let mut parts = path.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("ns"), Some(ns), Some("sa"), Some(sa), None)
            if !td.is_empty() && !ns.is_empty() && !sa.is_empty() =>
        {
            Some((td, ns, sa))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id = spiffe_id("cluster.local", "sample", "sleep");
        assert_eq!(id, "spiffe://cluster.local/ns/sample/sa/sleep");
        assert_eq!(
            parse_spiffe_id(&id),
            Some(("cluster.local", "sample", "sleep"))
        );
        assert_eq!(spiffe_id("a@b", "n", ""), "spiffe://a.b/ns/n/sa/default");
        assert_eq!(parse_spiffe_id("spiffe://td/ns/x"), None);
    }
}
