//! ServiceEntry checks: TCP ports without addresses, hosts whose protocol several entries
//! disagree on, and STATIC entries that have nowhere to send traffic.

use std::collections::{BTreeMap, BTreeSet};

use strait_api::istio::service_entry::{Resolution, ServiceEntrySpec};
use strait_api::{IstioObject, Kind, Object};
use strait_model::host::ExportTo;
use strait_model::{Mesh, ObjId, selector};

use super::util;
use crate::catalog::{IST0134, IST0177, STR0202};
use crate::context::Ctx;

/// The label by which a ServiceEntry opts in to (or out of) istiod's address allocation.
const AUTOALLOCATE_LABEL: &str = "networking.istio.io/enable-autoallocate-ip";

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for (id, o) in util::objects(mesh, Kind::ServiceEntry) {
        let Some(se) = o.service_entry() else {
            continue;
        };
        check_addresses(ctx, id, o, se);
        check_static(ctx, id, o, &se.spec);
    }
    for c in &mesh.clusters {
        check_conflicting_protocols(ctx, c.id);
    }
}

/// Whether the control plane serving `id` has proxies resolve ServiceEntry hosts to
/// auto-allocated addresses (DNS capture plus allocation, in `defaultConfig.proxyMetadata`).
fn dns_auto_allocation(mesh: &Mesh, id: ObjId) -> bool {
    let cfg = &mesh.cluster(mesh.config_cluster(id.cluster)).mesh_config;
    let Some(dc) = &cfg.default_config else {
        return false;
    };
    let on = |k: &str| {
        dc.proxy_metadata
            .get(k)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    on("ISTIO_META_DNS_CAPTURE")
        && (on("ISTIO_META_DNS_AUTO_ALLOCATE") || on("PILOT_ENABLE_IP_AUTOALLOCATE"))
}

/// IST0134: a TCP (or protocol-less) port on an entry without addresses.
fn check_addresses(ctx: &mut Ctx, id: ObjId, o: &Object, se: &IstioObject<ServiceEntrySpec>) {
    let spec = &se.spec;
    if !spec.addresses.is_empty()
        || o.label(AUTOALLOCATE_LABEL)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || allocated_in_status(o)
        || dns_auto_allocation(ctx.mesh, id)
    {
        return;
    }
    let hosts = util::join(&spec.hosts);
    for (i, p) in spec.ports.iter().enumerate() {
        if !(p.protocol.is_empty() || p.protocol.eq_ignore_ascii_case("TCP")) {
            continue;
        }
        let proto = if p.protocol.is_empty() {
            "no protocol"
        } else {
            "protocol TCP"
        };
        ctx.at(
            IST0134,
            id,
            &format!("spec.ports[{i}].protocol"),
            format!(
                "port {} ({proto}) on a ServiceEntry without addresses: sidecars cannot tell {hosts} apart from any other destination on port {}, so its listener takes all outbound TCP traffic on that port; set addresses, or enable DNS capture with auto-allocation (proxyMetadata ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE)",
                p.number, p.number
            ),
        );
    }
}

/// Whether istiod already wrote allocated addresses into the entry's status (a live export).
fn allocated_in_status(o: &Object) -> bool {
    o.source
        .root()
        .get("status")
        .and_then(|s| s.get("addresses"))
        .is_some_and(|a| a.items().len() > 0)
}

/// STR0202: STATIC resolution with no endpoints to send to.
fn check_static(ctx: &mut Ctx, id: ObjId, o: &Object, spec: &ServiceEntrySpec) {
    if spec.effective_resolution() != Resolution::Static || !spec.endpoints.is_empty() {
        return;
    }
    let hosts = util::join(&spec.hosts);
    let Some(sel) = &spec.workload_selector else {
        ctx.at(
            STR0202,
            id,
            "spec.resolution",
            format!(
                "resolution STATIC with neither endpoints nor workloadSelector: {hosts} has no address to send to, so every request fails (503 no healthy upstream); list the IPs under endpoints, select WorkloadEntries or pods with workloadSelector, or use resolution DNS"
            ),
        );
        return;
    };
    let mesh = ctx.mesh;
    let ns = o.namespace();
    let in_ns: Vec<_> = mesh
        .workloads
        .iter()
        .filter(|w| w.namespace == ns)
        .collect();
    if in_ns.is_empty()
        || in_ns
            .iter()
            .any(|w| selector::map_selects(&sel.labels, &w.labels))
    {
        // No workload of the namespace in the input: they may exist, we cannot tell.
        return;
    }
    let wanted: Vec<String> = sel.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    ctx.at(
        STR0202,
        id,
        "spec.workloadSelector.labels",
        format!(
            "resolution STATIC takes its endpoints from workloadSelector {}, but no WorkloadEntry or pod in namespace {ns} has these labels ({} there), so every request to {hosts} fails (503 no healthy upstream)",
            wanted.join(", "),
            count(in_ns.len())
        ),
    );
}

/// One port of one entry, for the protocol conflict check.
struct PortUse {
    id: ObjId,
    port_index: usize,
    protocol: String,
}

/// IST0177: entries of one cluster giving one host and port different protocols where they are
/// visible together.
fn check_conflicting_protocols(ctx: &mut Ctx, cluster: strait_model::ClusterId) {
    let mesh = ctx.mesh;
    // (visibility scope, host, port) -> uses; scope "*" is every namespace.
    let mut index: BTreeMap<(String, String, u32), Vec<PortUse>> = BTreeMap::new();
    for (id, o) in util::in_cluster(mesh, cluster, Kind::ServiceEntry) {
        let Some(se) = o.service_entry() else {
            continue;
        };
        let scopes = match ExportTo::parse(&se.spec.export_to, o.namespace(), true) {
            ExportTo::All => vec!["*".to_string()],
            ExportTo::Namespaces(list) => list,
        };
        for scope in &scopes {
            for h in &se.spec.hosts {
                for (i, p) in se.spec.ports.iter().enumerate() {
                    index
                        .entry((scope.clone(), h.to_ascii_lowercase(), p.number))
                        .or_default()
                        .push(PortUse {
                            id,
                            port_index: i,
                            protocol: p.protocol.to_ascii_uppercase(),
                        });
                }
            }
        }
    }
    let mut reported: BTreeSet<(ObjId, String, u32)> = BTreeSet::new();
    for ((scope, h, port), uses) in &index {
        let mut all: Vec<&PortUse> = uses.iter().collect();
        if scope != "*"
            && let Some(public) = index.get(&("*".to_string(), h.clone(), *port))
        {
            all.extend(public.iter());
        }
        let mut protocols: Vec<&str> = all.iter().map(|u| u.protocol.as_str()).collect();
        protocols.sort_unstable();
        protocols.dedup();
        if protocols.len() < 2 {
            continue;
        }
        for u in &all {
            if !reported.insert((u.id, h.clone(), *port)) {
                continue;
            }
            let mut others: Vec<String> = all
                .iter()
                .filter(|x| x.id != u.id && x.protocol != u.protocol)
                .map(|x| {
                    format!(
                        "{} in {}",
                        show(&x.protocol),
                        mesh.object(x.id).display_name()
                    )
                })
                .collect();
            others.sort();
            others.dedup();
            ctx.at(
                IST0177,
                u.id,
                &format!("spec.ports[{}].protocol", u.port_index),
                format!(
                    "{h}:{port} is declared {} here but {}; proxies keep only one definition, so traffic may be handled with the wrong protocol; make the entries agree",
                    show(&u.protocol),
                    util::join(&others)
                ),
            );
        }
    }
}

fn show(protocol: &str) -> &str {
    if protocol.is_empty() {
        "with no protocol"
    } else {
        protocol
    }
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 workload".to_string()
    } else {
        format!("{n} workloads")
    }
}
