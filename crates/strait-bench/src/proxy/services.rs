//! The extra services of the scale scenario, given alike to strait (as manifests) and to
//! Envoy (as clusters and routes).
//!
//! Each is a Kubernetes Service with one endpoint: a WorkloadEntry (a VM elsewhere, so
//! `strait up` starts no process for it) labelled as running a sidecar, so the proxies hold
//! an mTLS cluster for it as they would for a pod. A Deployment would start a pod per
//! replica, and one with no replicas gives no endpoints; a ServiceEntry's own `endpoints`
//! are not acted on by strait (only workloads a selector picks are endpoints). No traffic
//! goes to these services: they are there to be held.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The namespace the extra services live in.
pub const NAMESPACE: &str = "scale";
/// Their port.
pub const PORT: u16 = 8080;

/// One extra service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraService {
    pub name: String,
    /// Its one endpoint, never contacted.
    pub ip: Ipv4Addr,
}

impl ExtraService {
    pub fn fqdn(&self) -> String {
        format!("{}.{NAMESPACE}.svc.cluster.local", self.name)
    }

    pub fn spiffe_id(&self) -> String {
        format!("spiffe://cluster.local/ns/{NAMESPACE}/sa/{}", self.name)
    }
}

/// `n` services, `svc-0000` onwards, with endpoints in 10.100.0.0/14 (not on this machine).
pub fn extra_services(n: usize) -> Vec<ExtraService> {
    (0..n)
        .map(|i| {
            let k = u32::try_from(i + 1).unwrap_or(u32::MAX);
            ExtraService {
                name: format!("svc-{i:04}"),
                ip: Ipv4Addr::from((10 << 24) | (100 << 16) | (k & 0x3_ffff)),
            }
        })
        .collect()
}

/// The services' namespace.
pub fn namespace() -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n")
}

/// Per service a Service and a WorkloadEntry (without their [`namespace`]).
pub fn manifests(services: &[ExtraService]) -> String {
    let mut out = String::new();
    for s in services {
        let _ = write!(
            out,
            "---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {NAMESPACE}
spec:
  selector:
    app: {name}
  ports:
  - name: http
    port: {PORT}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: {name}
  namespace: {NAMESPACE}
spec:
  address: {ip}
  serviceAccount: {name}
  labels:
    app: {name}
    security.istio.io/tlsMode: istio
",
            name = s.name,
            ip = s.ip,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses() {
        let s = extra_services(1000);
        assert_eq!(s.len(), 1000);
        assert_eq!(s[0].name, "svc-0000");
        assert_eq!(s[0].ip, Ipv4Addr::new(10, 100, 0, 1));
        assert_eq!(s[999].ip, Ipv4Addr::new(10, 100, 3, 232));
        assert_eq!(s[5].fqdn(), "svc-0005.scale.svc.cluster.local");
        let mut ips: Vec<_> = s.iter().map(|s| s.ip).collect();
        ips.dedup();
        assert_eq!(ips.len(), 1000);
    }

    #[test]
    fn two_objects_per_service() {
        let yaml = format!("{}{}", namespace(), manifests(&extra_services(3)));
        assert_eq!(yaml.matches("\nkind: Service\n").count(), 3);
        assert_eq!(yaml.matches("\nkind: WorkloadEntry\n").count(), 3);
        assert!(yaml.contains("address: 10.100.0.3"));
    }
}
