//! Services that select one in-mesh workload and disagree about one of its ports, reported on
//! the Service port that disagrees: IST0116 when they give the workload port different
//! protocols, IST0137 when they expose it under different service port numbers. Target ports
//! are resolved through the pod spec, so a named and a numbered target port that are the same
//! port are compared.

use std::collections::{BTreeMap, BTreeSet};

use strait_model::service::{Port, TargetPort};
use strait_model::{
    Injection, Mesh, ObjId, Protocol, ServiceInstance, ServiceSource, Workload, WorkloadKind,
};

use super::super::injection::is_replica;
use super::super::util::join;
use super::port_path;
use crate::catalog::{IST0116, IST0137};
use crate::context::Ctx;

/// The workload port a service port sends to: a number, or a name the pod spec does not
/// resolve.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum WorkloadPort {
    Number(u32),
    Name(String),
}

impl std::fmt::Display for WorkloadPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkloadPort::Number(n) => write!(f, "{n}"),
            WorkloadPort::Name(n) => write!(f, "\"{n}\""),
        }
    }
}

fn workload_port(mesh: &Mesh, w: &Workload, p: &Port) -> WorkloadPort {
    match &p.target {
        None => WorkloadPort::Number(p.number),
        Some(TargetPort::Number(n)) => WorkloadPort::Number(*n),
        Some(TargetPort::Name(name)) => w
            .pod_spec(mesh.object(w.object))
            .and_then(|spec| {
                spec.containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .find(|cp| cp.name.as_deref() == Some(name.as_str()))
            })
            .map_or_else(
                || WorkloadPort::Name(name.clone()),
                |cp| WorkloadPort::Number(cp.container_port.max(0) as u32),
            ),
    }
}

/// Protocols that conflict when two Services give them to one workload port. Sniffed ports
/// agree with anything (detection finds the real protocol) and UDP is not proxied.
fn conflict_class(p: Protocol) -> Option<Protocol> {
    match p {
        Protocol::Unsupported | Protocol::Udp => None,
        Protocol::Https => Some(Protocol::Tls),
        other => Some(other),
    }
}

/// One service port reaching a workload port.
struct Use<'m> {
    svc: &'m ServiceInstance,
    port: &'m Port,
}

impl Use<'_> {
    fn describe(&self) -> String {
        let name = if self.port.name.is_empty() {
            String::new()
        } else {
            format!(" \"{}\"", self.port.name)
        };
        format!(
            "Service {}/{} port {}{name} ({})",
            self.svc.namespace, self.svc.name, self.port.number, self.port.protocol
        )
    }
}

/// A conflict's identity: its kind and the service ports involved.
type ConflictKey = (&'static str, Vec<(ObjId, usize)>);

/// A conflict to report once, however many workloads share it.
struct Conflict {
    workloads: BTreeSet<String>,
    target: String,
    uses: Vec<(ObjId, String, String)>,
}

/// IST0116 and IST0137: Services that select one in-mesh workload and disagree about one of its
/// ports.
pub(super) fn check(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    // Keyed by the service ports involved, so a conflict shared by several versions of a
    // workload is reported once.
    let mut conflicts: BTreeMap<ConflictKey, Conflict> = BTreeMap::new();
    for w in &mesh.workloads {
        if !matches!(w.sidecar, Injection::Injected(_))
            || w.gateway.is_some()
            || w.kind == WorkloadKind::WorkloadEntry
            || is_replica(mesh, w)
        {
            continue;
        }
        let services: Vec<&ServiceInstance> = mesh
            .services_of(w)
            .into_iter()
            .filter(|s| s.source == ServiceSource::Kubernetes)
            .collect();
        if services.len() < 2 {
            continue;
        }
        let mut by_target: BTreeMap<WorkloadPort, Vec<Use>> = BTreeMap::new();
        for svc in &services {
            for port in &svc.ports {
                by_target
                    .entry(workload_port(mesh, w, port))
                    .or_default()
                    .push(Use { svc, port });
            }
        }
        for (target, uses) in &by_target {
            let services: BTreeSet<ObjId> = uses.iter().map(|u| u.svc.object).collect();
            if services.len() < 2 {
                continue;
            }
            let protocols: BTreeSet<Protocol> = uses
                .iter()
                .filter_map(|u| conflict_class(u.port.protocol))
                .collect();
            if protocols.len() > 1 {
                record(
                    &mut conflicts,
                    "protocol",
                    w,
                    target,
                    uses.iter()
                        .filter(|u| conflict_class(u.port.protocol).is_some()),
                );
            }
            let numbers: BTreeSet<u32> = uses.iter().map(|u| u.port.number).collect();
            if numbers.len() > 1 {
                record(&mut conflicts, "port", w, target, uses.iter());
            }
        }
    }
    for ((kind, _), c) in conflicts {
        let Some(((last_obj, last_path, _), others)) = c.uses.split_last() else {
            continue;
        };
        let workloads: Vec<String> = c.workloads.into_iter().collect();
        let all: Vec<String> = c.uses.iter().map(|(_, _, d)| d.clone()).collect();
        let (code, message) = if kind == "protocol" {
            (
                IST0116,
                format!(
                    "{} both send to port {} of {} with different protocols: {}. The sidecar has one inbound listener per workload port and takes its protocol from one of the Services, so the other Service's traffic is handled with the wrong protocol. Give the ports the same protocol, or point them at different workload ports",
                    if all.len() > 2 {
                        "these Services"
                    } else {
                        "two Services"
                    },
                    c.target,
                    join(&workloads),
                    join(&all)
                ),
            )
        } else {
            (
                IST0137,
                format!(
                    "workload port {} of {} is exposed under different service ports: {}. The sidecar configures that port from one of the Services only, so port-specific settings (VirtualService port matches, DestinationRule portLevelSettings) of the other do not apply. Use the same service port number in each Service",
                    c.target,
                    join(&workloads),
                    join(&all)
                ),
            )
        };
        let related: Vec<(String, strait_api::Pos)> = others
            .iter()
            .map(|(o, p, d)| (format!("also: {d}"), ctx.pos(*o, p)))
            .collect();
        let f = ctx.at(code, *last_obj, last_path, message);
        for (m, p) in related {
            f.related(m, p);
        }
    }
}

fn record<'a, 'm: 'a>(
    conflicts: &mut BTreeMap<ConflictKey, Conflict>,
    kind: &'static str,
    w: &Workload,
    target: &WorkloadPort,
    uses: impl Iterator<Item = &'a Use<'m>>,
) {
    let uses: Vec<&Use> = uses.collect();
    let mut key: Vec<(ObjId, usize)> = uses.iter().map(|u| (u.svc.object, u.port.index)).collect();
    key.sort_unstable();
    key.dedup();
    let entry = conflicts.entry((kind, key)).or_insert_with(|| {
        let mut list: Vec<(ObjId, String, String)> = uses
            .iter()
            .map(|u| (u.svc.object, port_path(u.port), u.describe()))
            .collect();
        list.sort();
        list.dedup();
        Conflict {
            workloads: BTreeSet::new(),
            target: target.to_string(),
            uses: list,
        }
    });
    entry
        .workloads
        .insert(format!("{}/{}", w.namespace, w.name));
}
