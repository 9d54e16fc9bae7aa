//! Istio annotations on Namespaces, Services, Pods and pod templates: unknown keys in an Istio
//! domain (IST0108), known keys on the wrong kind (IST0107), deprecated keys (IST0135), and
//! values the sidecar injector rejects (IST0125).
//!
//! istioctl checks a Deployment's own metadata as if it were a pod; what the injector reads is
//! the pod template. So template annotations are checked as the Pod's, and Istio annotations on
//! the controller's own metadata are reported as misplaced (they never reach the pod).

use std::collections::BTreeMap;
use std::net::IpAddr;

use strait_api::embedded::parse_embedded;
use strait_api::istio::mesh_config::ProxyConfig;
use strait_api::suggest::did_you_mean;
use strait_api::{Kind, Object};
use strait_model::ObjId;

use super::injection::is_system_namespace;
use crate::catalog::{IST0107, IST0108, IST0125, IST0135};
use crate::context::Ctx;

/// One entry of Istio's annotation registry (istio/api `annotation/annotations.yaml`).
struct Annotation {
    name: &'static str,
    /// Resource types it applies to; `Any` applies everywhere.
    resources: &'static [&'static str],
    /// `Some(advice)` when deprecated.
    deprecated: Option<&'static str>,
}

const fn a(name: &'static str, resources: &'static [&'static str]) -> Annotation {
    Annotation {
        name,
        resources,
        deprecated: None,
    }
}

const fn dep(
    name: &'static str,
    resources: &'static [&'static str],
    advice: &'static str,
) -> Annotation {
    Annotation {
        name,
        resources,
        deprecated: Some(advice),
    }
}

const POD: &[&str] = &["Pod"];
const SERVICE: &[&str] = &["Service"];
const ANY: &[&str] = &["Any"];
const WORKLOAD_ENTRY: &[&str] = &["WorkloadEntry"];
const GATEWAY: &[&str] = &["Gateway"];

/// The registry as of Istio 1.30 / api HEAD (68 entries).
const REGISTRY: &[Annotation] = &[
    a("prometheus.istio.io/merge-metrics", POD),
    dep(
        "alpha.istio.io/kubernetes-serviceaccounts",
        SERVICE,
        "it is no longer read",
    ),
    dep(
        "alpha.istio.io/canonical-serviceaccounts",
        SERVICE,
        "it is no longer read",
    ),
    a("networking.istio.io/exportTo", SERVICE),
    dep(
        "sidecar.istio.io/inject",
        POD,
        "use the pod label of the same name instead",
    ),
    a("sidecar.istio.io/status", POD),
    a("sidecar.istio.io/rewriteAppHTTPProbers", POD),
    dep(
        "sidecar.istio.io/discoveryAddress",
        POD,
        "set discoveryAddress in proxy.istio.io/config instead",
    ),
    a("sidecar.istio.io/proxyImage", POD),
    a("sidecar.istio.io/proxyImageType", POD),
    a("sidecar.istio.io/proxyCPU", POD),
    a("sidecar.istio.io/proxyCPULimit", POD),
    a("sidecar.istio.io/proxyMemory", POD),
    a("sidecar.istio.io/proxyMemoryLimit", POD),
    a("sidecar.istio.io/interceptionMode", POD),
    a("sidecar.istio.io/bootstrapOverride", POD),
    dep(
        "sidecar.istio.io/statsInclusionPrefixes",
        POD,
        "use proxyStatsMatcher in proxy.istio.io/config instead",
    ),
    dep(
        "sidecar.istio.io/statsInclusionSuffixes",
        POD,
        "use proxyStatsMatcher in proxy.istio.io/config instead",
    ),
    dep(
        "sidecar.istio.io/statsInclusionRegexps",
        POD,
        "use proxyStatsMatcher in proxy.istio.io/config instead",
    ),
    a("sidecar.istio.io/statsHistogramBuckets", POD),
    a("sidecar.istio.io/statsFlushInterval", POD),
    a("sidecar.istio.io/statsEvictionInterval", POD),
    a("sidecar.istio.io/statsHistogramBins", POD),
    a("sidecar.istio.io/userVolume", POD),
    a("sidecar.istio.io/userVolumeMount", POD),
    a("status.sidecar.istio.io/port", POD),
    a("sidecar.istio.io/logLevel", POD),
    a("sidecar.istio.io/componentLogLevel", POD),
    a("sidecar.istio.io/agentLogLevel", POD),
    a("sidecar.istio.io/nativeSidecar", POD),
    a("readiness.status.sidecar.istio.io/initialDelaySeconds", POD),
    a("readiness.status.sidecar.istio.io/periodSeconds", POD),
    a("readiness.status.sidecar.istio.io/failureThreshold", POD),
    a("readiness.status.sidecar.istio.io/applicationPorts", POD),
    a("traffic.istio.io/nodeSelector", SERVICE),
    a("traffic.sidecar.istio.io/includeOutboundIPRanges", POD),
    a("traffic.sidecar.istio.io/excludeOutboundIPRanges", POD),
    a("traffic.sidecar.istio.io/includeInboundPorts", POD),
    a("traffic.sidecar.istio.io/excludeInboundPorts", POD),
    a("traffic.sidecar.istio.io/excludeInterfaces", POD),
    a("traffic.sidecar.istio.io/includeOutboundPorts", POD),
    a("traffic.sidecar.istio.io/excludeOutboundPorts", POD),
    dep(
        "traffic.sidecar.istio.io/kubevirtInterfaces",
        POD,
        "use istio.io/reroute-virtual-interfaces instead",
    ),
    a("kubernetes.io/ingress.class", &["Ingress"]),
    a("galley.istio.io/analyze-suppress", ANY),
    a("proxy.istio.io/config", POD),
    a("istio.io/dry-run", &["AuthorizationPolicy"]),
    a("istio.io/rev", POD),
    a("proxy.istio.io/overrides", POD),
    a("inject.istio.io/templates", POD),
    dep(
        "sidecar.istio.io/extraStatTags",
        POD,
        "use tagOverrides in the Telemetry API instead",
    ),
    a("istio.io/autoRegistrationGroup", WORKLOAD_ENTRY),
    a("istio.io/workloadController", WORKLOAD_ENTRY),
    a("istio.io/connectedAt", WORKLOAD_ENTRY),
    a("istio.io/disconnectedAt", WORKLOAD_ENTRY),
    a("topology.istio.io/controlPlaneClusters", &["Namespace"]),
    a("gateway.istio.io/controller-version", ANY),
    a("ambient.istio.io/redirection", POD),
    a(
        "ambient.istio.io/waypoint-inbound-binding",
        &["GatewayClass", "Gateway"],
    ),
    a("gateway.istio.io/service-account", GATEWAY),
    a("gateway.istio.io/name-override", GATEWAY),
    a("networking.istio.io/service-type", GATEWAY),
    a(
        "networking.istio.io/traffic-distribution",
        &["Namespace", "Service", "ServiceEntry"],
    ),
    a(
        "istio.io/use-waypoint-canary-weight",
        &["Service", "ServiceEntry", "Namespace"],
    ),
    a("ambient.istio.io/bypass-inbound-capture", POD),
    a("istio.io/reroute-virtual-interfaces", POD),
    a("ambient.istio.io/dns-capture", POD),
    dep(
        "sidecar.istio.io/statsCompression",
        POD,
        "set statsCompression in proxy.istio.io/config instead",
    ),
];

/// Istio labels (istio/api `label/labels.yaml`) that are not also annotations: written as an
/// annotation, they do nothing.
const LABELS: &[&str] = &[
    "security.istio.io/tlsMode",
    "service.istio.io/canonical-name",
    "service.istio.io/canonical-revision",
    "service.istio.io/workload-name",
    "networking.istio.io/gatewayPort",
    "istio.io/tag",
    "topology.istio.io/subzone",
    "topology.istio.io/network",
    "topology.istio.io/cluster",
    "topology.istio.io/locality",
    "gateway.istio.io/managed",
    "istio.io/dataplane-mode",
    "istio.io/use-waypoint",
    "istio.io/use-waypoint-namespace",
    "istio.io/use-waypoint-canary",
    "istio.io/use-waypoint-canary-namespace",
    "istio.io/ingress-use-waypoint",
    "istio.io/waypoint-for",
    "networking.istio.io/enable-autoallocate-ip",
];

/// Keys istioctl never reports: written by Istio itself.
const IGNORED: &[&str] = &[
    "sidecar.istio.io/status",
    "istio.io/rev",
    "gateway.istio.io/controller-version",
];

fn lookup(name: &str) -> Option<&'static Annotation> {
    REGISTRY.iter().find(|a| a.name == name)
}

/// Whether a key is in an Istio domain (`istio.io/x`, `sidecar.istio.io/x`, ...).
fn is_istio_key(key: &str) -> bool {
    key == "kubernetes.io/ingress.class"
        || key
            .split_once('/')
            .is_some_and(|(domain, _)| domain == "istio.io" || domain.ends_with(".istio.io"))
}

/// Where a set of annotations sits and what Istio would consider it.
struct Site<'a> {
    obj: ObjId,
    /// Field path of the metadata (`metadata`, `spec.template.metadata`).
    meta: &'static str,
    /// Resource type in the registry's terms.
    rtype: &'static str,
    annotations: Option<&'a BTreeMap<String, String>>,
    labels: Option<&'a BTreeMap<String, String>>,
}

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in &mesh.clusters {
        for kind in [
            Kind::Namespace,
            Kind::Service,
            Kind::Pod,
            Kind::Deployment,
            Kind::StatefulSet,
            Kind::DaemonSet,
        ] {
            for (id, o) in c.of_kind(kind) {
                let ns = if kind == Kind::Namespace {
                    o.name()
                } else {
                    o.namespace()
                };
                if is_system_namespace(ns) {
                    continue;
                }
                for site in sites(id, o) {
                    check_site(ctx, o, &site);
                }
            }
        }
    }
}

fn sites(id: ObjId, o: &Object) -> Vec<Site<'_>> {
    let own = |rtype| Site {
        obj: id,
        meta: "metadata",
        rtype,
        annotations: o.meta().annotations.as_ref(),
        labels: o.meta().labels.as_ref(),
    };
    let template = match o.kind {
        Kind::Deployment => o
            .deployment()
            .and_then(|d| d.spec.template.metadata.as_ref()),
        Kind::StatefulSet => o
            .stateful_set()
            .and_then(|d| d.spec.template.metadata.as_ref()),
        Kind::DaemonSet => o
            .daemon_set()
            .and_then(|d| d.spec.template.metadata.as_ref()),
        _ => None,
    };
    match o.kind {
        Kind::Namespace => vec![own("Namespace")],
        Kind::Service => vec![own("Service")],
        Kind::Pod => vec![own("Pod")],
        _ => {
            let mut v = vec![own(o.kind.name())];
            if let Some(m) = template {
                v.push(Site {
                    obj: id,
                    meta: "spec.template.metadata",
                    rtype: "Pod",
                    annotations: m.annotations.as_ref(),
                    labels: m.labels.as_ref(),
                });
            }
            v
        }
    }
}

fn check_site(ctx: &mut Ctx, o: &Object, site: &Site) {
    let Some(annotations) = site.annotations else {
        return;
    };
    let names: Vec<&str> = REGISTRY.iter().map(|a| a.name).collect();
    for (key, value) in annotations {
        if !is_istio_key(key) || IGNORED.contains(&key.as_str()) {
            continue;
        }
        let path = format!("{}.annotations[\"{key}\"]", site.meta);
        let Some(known) = lookup(key) else {
            let message = if LABELS.contains(&key.as_str()) {
                format!(
                    "\"{key}\" is an Istio label, not an annotation: as an annotation Istio ignores it. Move it to {}.labels",
                    site.meta
                )
            } else {
                let hint = did_you_mean(key, &names)
                    .map(|s| format!("; did you mean \"{s}\"?"))
                    .unwrap_or_default();
                format!("unknown Istio annotation \"{key}\": Istio ignores it{hint}")
            };
            ctx.at_key(IST0108, site.obj, &path, message);
            continue;
        };
        let misplaced = !known
            .resources
            .iter()
            .any(|r| *r == "Any" || *r == site.rtype);
        if misplaced {
            let advice = if site.rtype == o.kind.name() && known.resources.contains(&"Pod") {
                " Put it on the pod template (spec.template.metadata.annotations), which is what the injector reads"
            } else if known.resources.contains(&"Service") {
                " Put it on the Service"
            } else if known.resources.contains(&"Namespace") {
                " Put it on the Namespace"
            } else {
                ""
            };
            ctx.at_key(
                IST0107,
                site.obj,
                &path,
                format!(
                    "annotation \"{key}\" applies to {}, not to a {}: here it has no effect.{advice}",
                    known.resources.join("/"),
                    site.rtype
                ),
            );
        }
        // Deprecated wherever it is written, misplaced or not (istioctl reports both).
        if let Some(advice) = known.deprecated {
            let label_too = key == "sidecar.istio.io/inject"
                && site.labels.is_some_and(|l| l.contains_key(key));
            if !label_too {
                ctx.at_key(
                    IST0135,
                    site.obj,
                    &path,
                    format!("annotation \"{key}\" is deprecated: {advice}"),
                );
            }
        }
        if misplaced {
            // Nothing reads it here, so its value is not checked either.
            continue;
        }
        if key == "proxy.istio.io/config" {
            check_proxy_config(ctx, o, site.obj, &path);
        } else if let Err(why) = validate(key, value) {
            ctx.at(
                IST0125,
                site.obj,
                &path,
                format!("invalid value {value:?} for annotation \"{key}\": {why}. The sidecar injector rejects pods carrying it, so they are not created"),
            );
        }
    }
}

/// `proxy.istio.io/config` must read as a ProxyConfig; the injector applies it strictly, so an
/// unknown or mistyped field fails the injection.
fn check_proxy_config(ctx: &mut Ctx, o: &Object, id: ObjId, path: &str) {
    let mesh = ctx.mesh;
    let Some((value, diags)) = parse_embedded::<ProxyConfig>(&mesh.sources, o, path) else {
        return;
    };
    for d in diags {
        let f = ctx.at(
            IST0125,
            id,
            path,
            format!(
                "proxy.istio.io/config: {}; the sidecar injector rejects pods carrying it",
                d.message
                    .strip_prefix(&format!("{path} "))
                    .unwrap_or(&d.message)
            ),
        );
        if let Some(p) = d.pos {
            f.pos = Some(p);
        }
    }
    let Some(pc) = value else { return };
    let mut problems = Vec::new();
    for (field, port) in [
        ("statusPort", pc.status_port),
        ("proxyAdminPort", pc.proxy_admin_port),
    ] {
        if let Some(p) = port
            && !(1..=65535).contains(&p)
        {
            problems.push(format!("{field} {p} is not a port (1-65535)"));
        }
    }
    if let Some(c) = pc.concurrency
        && c < 0
    {
        problems.push(format!("concurrency {c} is negative"));
    }
    if let Some(m) = &pc.interception_mode
        && !matches!(m.as_str(), "REDIRECT" | "TPROXY" | "NONE")
    {
        problems.push(format!(
            "interceptionMode {m:?} is not REDIRECT, TPROXY or NONE"
        ));
    }
    if !pc.discovery_address.is_empty() && split_host_port(&pc.discovery_address).is_none() {
        problems.push(format!(
            "discoveryAddress {:?} is not host:port",
            pc.discovery_address
        ));
    }
    for p in problems {
        ctx.at(
            IST0125,
            id,
            path,
            format!("proxy.istio.io/config: {p}; the sidecar injector rejects pods carrying it"),
        );
    }
}

fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// The injector's validators (istio/istio `pkg/kube/inject/validate.go`), by annotation.
fn validate(key: &str, value: &str) -> Result<(), String> {
    match key {
        "sidecar.istio.io/interceptionMode" => match value {
            "REDIRECT" | "TPROXY" | "NONE" => Ok(()),
            _ => Err("use REDIRECT, TPROXY or NONE".into()),
        },
        "status.sidecar.istio.io/port" => parse_port(value).map(|_| ()),
        "readiness.status.sidecar.istio.io/initialDelaySeconds"
        | "readiness.status.sidecar.istio.io/periodSeconds"
        | "readiness.status.sidecar.istio.io/failureThreshold" => parse_u32(value).map(|_| ()),
        "traffic.sidecar.istio.io/includeOutboundIPRanges" if value == "*" => Ok(()),
        "traffic.sidecar.istio.io/includeOutboundIPRanges"
        | "traffic.sidecar.istio.io/excludeOutboundIPRanges" => cidr_list(value),
        "traffic.sidecar.istio.io/includeInboundPorts" if value == "*" => Ok(()),
        "traffic.sidecar.istio.io/includeInboundPorts"
        | "traffic.sidecar.istio.io/excludeInboundPorts"
        | "traffic.sidecar.istio.io/excludeOutboundPorts" => port_list(value),
        "traffic.sidecar.istio.io/excludeInterfaces"
        | "traffic.sidecar.istio.io/kubevirtInterfaces"
        | "istio.io/reroute-virtual-interfaces" => interface_list(value),
        "prometheus.istio.io/merge-metrics" => match value {
            "1" | "t" | "T" | "true" | "TRUE" | "True" | "0" | "f" | "F" | "false" | "FALSE"
            | "False" => Ok(()),
            _ => Err("expected true or false".into()),
        },
        "sidecar.istio.io/proxyCPU"
        | "sidecar.istio.io/proxyCPULimit"
        | "sidecar.istio.io/proxyMemory"
        | "sidecar.istio.io/proxyMemoryLimit" => parse_quantity(value).map(|_| ()),
        _ => Ok(()),
    }
}

/// Go's `strconv.ParseUint(s, 10, 32)`: digits only.
fn parse_u32(s: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a non-negative integer".into());
    }
    s.parse().map_err(|_| "the number is too large".to_string())
}

fn parse_port(s: &str) -> Result<u16, String> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a port number"));
    }
    t.parse()
        .map_err(|_| format!("{t} is not a port (0-65535)"))
}

fn port_list(s: &str) -> Result<(), String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(());
    }
    t.split(',').try_for_each(|p| parse_port(p).map(|_| ()))
}

/// A comma-separated list of CIDR prefixes, each as Go's `netip.ParsePrefix` reads it (no
/// spaces around the commas).
fn cidr_list(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    for item in s.split(',') {
        if item != item.trim() {
            return Err(format!(
                "{item:?} has spaces; write the list without spaces after the commas"
            ));
        }
        parse_prefix(item)?;
    }
    Ok(())
}

fn parse_prefix(s: &str) -> Result<(), String> {
    let Some((addr, bits)) = s.split_once('/') else {
        return Err(format!(
            "{s:?} is not a CIDR prefix (address/bits, e.g. 10.0.0.0/8)"
        ));
    };
    let max = match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => 32,
        Ok(IpAddr::V6(_)) => 128,
        Err(_) => return Err(format!("{addr:?} in {s:?} is not an IP address")),
    };
    match bits.parse::<u32>() {
        Ok(b) if b <= max && bits.bytes().all(|c| c.is_ascii_digit()) => Ok(()),
        _ => Err(format!(
            "{bits:?} in {s:?} is not a prefix length (0-{max})"
        )),
    }
}

/// Interface names as the injector accepts them: 1-15 characters, a letter first, then
/// letters, digits, `_`, `.`, `-`.
fn interface_list(s: &str) -> Result<(), String> {
    for item in s.split(',').map(str::trim) {
        let ok = item.len() <= 15
            && item.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && item
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(format!(
                "{item:?} is not an interface name (1-15 characters: a letter, then letters, digits, _ . -)"
            ));
        }
    }
    Ok(())
}

/// Parses a Kubernetes resource quantity (`100m`, `1.5`, `128Mi`, `1e3`, `2G`) into its value
/// in base units (cores, bytes).
pub(super) fn parse_quantity(s: &str) -> Result<f64, String> {
    if s.chars().any(char::is_control) {
        return Err("control characters are not allowed".into());
    }
    let bad = || {
        Err(format!(
            "{s:?} is not a Kubernetes quantity (e.g. 100m, 0.5, 128Mi, 1Gi)"
        ))
    };
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let negative = s.starts_with('-');
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (num, suffix) = body.split_at(end);
    if num.is_empty() || num.matches('.').count() > 1 || !num.bytes().any(|b| b.is_ascii_digit()) {
        return bad();
    }
    let Ok(n) = num
        .parse::<f64>()
        .or_else(|_| format!("0{num}").parse::<f64>())
    else {
        return bad();
    };
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => {
            let exp = &e[1..];
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return bad();
            }
            match exp.parse::<i32>() {
                Ok(x) => 10f64.powi(x),
                Err(_) => return bad(),
            }
        }
        _ => return bad(),
    };
    let v = n * multiplier;
    Ok(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let q = |s| parse_quantity(s).ok();
        assert_eq!(q("100m"), Some(0.1));
        assert_eq!(q("2"), Some(2.0));
        assert_eq!(q("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(q("1e3"), Some(1000.0));
        assert_eq!(q("1E"), Some(1e18));
        assert_eq!(q("0.5"), Some(0.5));
        assert!(q("100mb").is_none());
        assert!(q("abc").is_none());
        assert!(q("").is_none());
        assert!(q("1e").is_none());
        assert!(q("1.2.3").is_none());
    }

    #[test]
    fn validators() {
        assert!(
            validate(
                "traffic.sidecar.istio.io/excludeOutboundIPRanges",
                "10.0.0.0/8,192.168.0.0/16"
            )
            .is_ok()
        );
        assert!(
            validate(
                "traffic.sidecar.istio.io/excludeOutboundIPRanges",
                "10.0.0.0/8, 192.168.0.0/16"
            )
            .is_err()
        );
        assert!(
            validate(
                "traffic.sidecar.istio.io/excludeOutboundIPRanges",
                "10.0.0.1"
            )
            .is_err()
        );
        assert!(validate("traffic.sidecar.istio.io/excludeOutboundIPRanges", "*").is_err());
        assert!(validate("traffic.sidecar.istio.io/includeOutboundIPRanges", "*").is_ok());
        assert!(
            validate(
                "traffic.sidecar.istio.io/excludeInboundPorts",
                " 8080, 9090 "
            )
            .is_ok()
        );
        assert!(validate("traffic.sidecar.istio.io/excludeInboundPorts", "8080,http").is_err());
        assert!(validate("traffic.sidecar.istio.io/excludeInboundPorts", "70000").is_err());
        assert!(validate("sidecar.istio.io/interceptionMode", "redirect").is_err());
        assert!(validate("prometheus.istio.io/merge-metrics", "yes").is_err());
        assert!(validate("readiness.status.sidecar.istio.io/periodSeconds", "-1").is_err());
        assert!(validate("istio.io/reroute-virtual-interfaces", "eth0,tap-1").is_ok());
        assert!(validate("istio.io/reroute-virtual-interfaces", "0eth").is_err());
        assert!(is_istio_key("sidecar.istio.io/inject"));
        assert!(!is_istio_key("myistio.io/x"));
        assert!(!is_istio_key("prometheus.io/scrape"));
    }
}
