//! The service registry: Kubernetes Services and ServiceEntry hosts from every cluster, merged
//! by hostname ("namespace sameness": `reviews.bookinfo.svc.cluster.local` in two clusters is
//! one service with instances in both).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use strait_api::istio::service_entry::{Location, Resolution};

use crate::host::{self, ExportTo};
use crate::ids::{ClusterId, ObjId, ServiceId};
use crate::protocol::Protocol;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceSource {
    Kubernetes,
    ServiceEntry,
    /// A Service an IstioOperator gateway component creates.
    Operator,
}

/// How a Kubernetes Service is exposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceType {
    ClusterIp,
    Headless,
    NodePort,
    LoadBalancer,
    ExternalName(String),
}

impl ServiceType {
    pub fn name(&self) -> &str {
        match self {
            ServiceType::ClusterIp => "ClusterIP",
            ServiceType::Headless => "ClusterIP (headless)",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
            ServiceType::ExternalName(_) => "ExternalName",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPort {
    Number(u32),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub number: u32,
    pub name: String,
    pub protocol: Protocol,
    pub target: Option<TargetPort>,
    pub app_protocol: Option<String>,
    /// Index in the source object's `ports` list, for locating it.
    pub index: usize,
}

impl Port {
    /// The port the workload listens on.
    pub fn target_number(&self) -> Option<u32> {
        match &self.target {
            None => Some(self.number),
            Some(TargetPort::Number(n)) => Some(*n),
            Some(TargetPort::Name(_)) => None,
        }
    }
}

pub(crate) fn target_port(t: Option<&IntOrString>) -> Option<TargetPort> {
    match t? {
        IntOrString::Int(i) => Some(TargetPort::Number((*i).max(0) as u32)),
        IntOrString::String(s) => match s.parse::<u32>() {
            Ok(n) => Some(TargetPort::Number(n)),
            Err(_) => Some(TargetPort::Name(s.clone())),
        },
    }
}

/// One definition of a host in one cluster.
#[derive(Clone, Debug)]
pub struct ServiceInstance {
    pub id: ServiceId,
    pub cluster: ClusterId,
    pub object: ObjId,
    pub source: ServiceSource,
    /// Fully qualified (`name.ns.svc.cluster.local`, or the ServiceEntry host).
    pub hostname: String,
    pub namespace: String,
    pub name: String,
    pub ports: Vec<Port>,
    /// Pod selector (Kubernetes) or workload selector (ServiceEntry). `None`: no selector.
    pub selector: Option<BTreeMap<String, String>>,
    pub labels: BTreeMap<String, String>,
    pub export_to: ExportTo,
    pub service_type: Option<ServiceType>,
    pub resolution: Option<Resolution>,
    pub location: Option<Location>,
    /// ClusterIP or ServiceEntry addresses.
    pub addresses: Vec<String>,
    /// Load-balancer ingress addresses and external IPs.
    pub external_addresses: Vec<String>,
    /// ServiceEntry inline endpoints.
    pub endpoint_count: usize,
}

impl ServiceInstance {
    pub fn port(&self, number: u32) -> Option<&Port> {
        self.ports.iter().find(|p| p.number == number)
    }

    pub fn is_external(&self) -> bool {
        self.source == ServiceSource::ServiceEntry && self.location != Some(Location::MeshInternal)
    }
}

/// All service instances, indexed by hostname.
#[derive(Debug, Default)]
pub struct Registry {
    instances: Vec<ServiceInstance>,
    by_host: HashMap<String, Vec<ServiceId>>,
    wildcards: Vec<ServiceId>,
}

impl Registry {
    pub(crate) fn push(&mut self, mut inst: ServiceInstance) -> ServiceId {
        let id = ServiceId(self.instances.len() as u32);
        inst.id = id;
        let key = inst.hostname.to_ascii_lowercase();
        if host::is_wildcard(&key) {
            self.wildcards.push(id);
        }
        self.by_host.entry(key).or_default().push(id);
        self.instances.push(inst);
        id
    }

    pub fn get(&self, id: ServiceId) -> &ServiceInstance {
        &self.instances[id.0 as usize]
    }

    pub fn all(&self) -> &[ServiceInstance] {
        &self.instances
    }

    /// Instances defining exactly `host` (any cluster, any visibility).
    pub fn by_host(&self, host: &str) -> impl Iterator<Item = &ServiceInstance> {
        self.by_host
            .get(&host.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .map(|id| self.get(*id))
    }

    /// Distinct hostnames, sorted.
    pub fn hostnames(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.instances.iter().map(|i| i.hostname.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// What `host` (already fully qualified) resolves to for config in namespace `viewer`:
    /// exact definitions, or wildcard ServiceEntries covering it, that are exported to
    /// `viewer`. A wildcard `host` resolves to every visible instance it covers.
    pub fn resolve(&self, host: &str, viewer: &str) -> Vec<&ServiceInstance> {
        let visible =
            |i: &&ServiceInstance| i.export_to.visible_to(viewer) || i.namespace == viewer;
        if host::is_wildcard(host) {
            return self
                .instances
                .iter()
                .filter(|i| host::subset_of(&i.hostname, host))
                .filter(visible)
                .collect();
        }
        let exact: Vec<&ServiceInstance> = self.by_host(host).filter(visible).collect();
        if !exact.is_empty() {
            return exact;
        }
        self.wildcards
            .iter()
            .map(|id| self.get(*id))
            .filter(|i| host::subset_of(host, &i.hostname))
            .filter(visible)
            .collect()
    }

    /// Like [`Registry::resolve`] but ignoring `exportTo`, to tell "missing" from "hidden".
    pub fn resolve_any(&self, host: &str) -> Vec<&ServiceInstance> {
        if host::is_wildcard(host) {
            return self
                .instances
                .iter()
                .filter(|i| host::subset_of(&i.hostname, host))
                .collect();
        }
        let exact: Vec<&ServiceInstance> = self.by_host(host).collect();
        if !exact.is_empty() {
            return exact;
        }
        self.wildcards
            .iter()
            .map(|id| self.get(*id))
            .filter(|i| host::subset_of(host, &i.hostname))
            .collect()
    }
}
