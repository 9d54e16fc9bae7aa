//! Load-balancer addresses, as a cloud's load-balancer controller writes them into the
//! `status` of `type: LoadBalancer` Services. Locally `strait up` plays that part: it gives
//! each gateway Service a public address and writes them to a file per cluster, which the
//! control plane applies to the Services it reads (manifests never carry real addresses).

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
use serde::{Deserialize, Serialize};
use strait_api::{Body, Object};

/// `{"services": {"<namespace>/<name>": ["<ip or hostname>", ...]}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbStatus {
    pub services: BTreeMap<String, Vec<String>>,
}

pub fn read(path: &Path) -> Result<LbStatus, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Sets the ingress addresses of the Services `status` names (an IP as `ip`, anything else
/// as `hostname`, as clouds report them).
pub fn apply(status: &LbStatus, objects: &mut [Object]) {
    for o in objects.iter_mut() {
        let key = format!("{}/{}", o.namespace(), o.name());
        let Some(addrs) = status.services.get(&key) else {
            continue;
        };
        let Body::Service(svc) = &mut o.body else {
            continue;
        };
        let ingress = addrs
            .iter()
            .map(|a| {
                if a.parse::<std::net::IpAddr>().is_ok() {
                    LoadBalancerIngress {
                        ip: Some(a.clone()),
                        ..LoadBalancerIngress::default()
                    }
                } else {
                    LoadBalancerIngress {
                        hostname: Some(a.clone()),
                        ..LoadBalancerIngress::default()
                    }
                }
            })
            .collect();
        svc.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(ingress),
            }),
            ..ServiceStatus::default()
        });
    }
}
