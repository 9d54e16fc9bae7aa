//! Inbound ports: where the proxy accepts traffic for its own workload, and the mTLS it
//! requires there (PeerAuthentication).

use std::collections::BTreeMap;

use strait_api::istio::security::MtlsMode;

use super::routes::app_protocol;
use crate::ids::ClusterId;
use crate::mesh::Mesh;
use crate::peer_auth::{PeerPolicies, inbound_ports};
use crate::workload::Workload;
use strait_config::types::*;

pub(super) fn compile(mesh: &Mesh, config: ClusterId, w: &Workload, out: &mut ProxyConfig) {
    let policies = PeerPolicies::of(mesh, config);
    let mut ports: BTreeMap<u32, InboundPort> = BTreeMap::new();
    for (target, s, p) in inbound_ports(mesh, w) {
        let mtls = match policies.effective(w, Some(target)).mode {
            MtlsMode::Strict => InboundMtls::Strict,
            MtlsMode::Disable => InboundMtls::Disable,
            MtlsMode::Permissive | MtlsMode::Unset => InboundMtls::Permissive,
        };
        let entry = ports.entry(target).or_insert_with(|| InboundPort {
            port: target,
            protocol: app_protocol(p.protocol),
            mtls,
            services: Vec::new(),
        });
        entry.services.push(format!("{}:{}", s.hostname, p.number));
    }
    for (port, mut ip) in ports {
        ip.services.sort();
        ip.services.dedup();
        out.inbound.insert(port.to_string(), ip);
    }
}
