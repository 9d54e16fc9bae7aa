//! Service port names that give no protocol: IST0118 (the proxies sniff it) and IST0150 (an
//! ExternalName Service, where sniffing cannot tell hosts apart).
//!
//! The protocol is decided as istioctl's `ConvertProtocol` decides it: UDP ports are UDP;
//! otherwise `appProtocol` replaces the name when set (with Kubernetes' `kubernetes.io/h2c`,
//! `kubernetes.io/ws` and `kubernetes.io/wss`), a `grpc-web` prefix is gRPC-Web, and the part
//! before the first `-` must be one of Istio's protocol names (any case); ports 25, 53, 3306
//! and 27017 default to TCP. Like istioctl, every user Service is checked, whether or not its
//! workloads are in the input; Istio's own Services (labelled `istio` or `release=istio`) and
//! gateway-managed ones are not. strait also leaves out Services whose endpoints are gateways.

use strait_model::service::{Port, ServiceType};
use strait_model::{Mesh, Protocol, ServiceInstance, ServiceSource};

use super::super::injection::is_system_namespace;
use super::{is_control_plane, port_path};
use crate::catalog::{IST0118, IST0150};
use crate::context::Ctx;

fn kubernetes_services(mesh: &Mesh) -> impl Iterator<Item = &ServiceInstance> {
    mesh.registry
        .all()
        .iter()
        .filter(|s| s.source == ServiceSource::Kubernetes)
}

/// The protocol a name or `appProtocol` value declares: `grpc-web...` is gRPC-Web, otherwise
/// the part before the first `-`.
fn declared(name: &str) -> Protocol {
    if name
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("grpc-web"))
    {
        return Protocol::GrpcWeb;
    }
    Protocol::parse(name.split('-').next().unwrap_or(""))
}

/// istioctl's protocol of a Service port.
fn protocol(p: &Port) -> Protocol {
    if p.protocol == Protocol::Udp {
        return Protocol::Udp;
    }
    let declared = match p.app_protocol.as_deref() {
        Some("kubernetes.io/h2c") => return Protocol::Http2,
        Some("kubernetes.io/ws") => return Protocol::Http,
        Some("kubernetes.io/wss") => return Protocol::Https,
        Some(app) => declared(app),
        None => declared(&p.name),
    };
    if declared == Protocol::Unsupported && matches!(p.number, 25 | 53 | 3306 | 27017) {
        return Protocol::Tcp;
    }
    declared
}

fn describe_name(p: &Port) -> String {
    if p.name.is_empty() {
        "has no name".to_string()
    } else {
        format!("is named \"{}\"", p.name)
    }
}

fn describe_app_protocol(p: &Port) -> String {
    match &p.app_protocol {
        Some(a) => format!("its appProtocol \"{a}\" is no protocol Istio knows"),
        None => "sets no appProtocol".to_string(),
    }
}

pub(super) fn check(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for s in kubernetes_services(mesh) {
        if is_system_namespace(&s.namespace) || is_control_plane(&s.labels) {
            continue;
        }
        if let Some(ServiceType::ExternalName(target)) = &s.service_type {
            for p in &s.ports {
                if protocol(p) != Protocol::Unsupported && p.name != "tcp" {
                    continue;
                }
                ctx.at(
                    IST0150,
                    s.object,
                    &port_path(p),
                    format!(
                        "port {} of ExternalName Service {}/{} {}: without a cluster IP, Istio can match plain TCP only by port, so every TCP connection from the mesh to port {} would go to {target}. Name the port after an application protocol (http-..., or tls-/https-... so SNI tells hosts apart)",
                        p.number,
                        s.namespace,
                        s.name,
                        describe_name(p),
                        p.number
                    ),
                );
            }
            continue;
        }
        if s.labels.contains_key("gateway.istio.io/managed")
            || mesh.endpoints_of(s).iter().any(|w| w.gateway.is_some())
        {
            continue;
        }
        for p in s
            .ports
            .iter()
            .filter(|p| protocol(p) == Protocol::Unsupported)
        {
            let base = if p.name.is_empty() { "app" } else { &p.name };
            let field = if p.app_protocol.is_some() {
                format!("spec.ports[{}].appProtocol", p.index)
            } else {
                port_path(p)
            };
            ctx.at(
                IST0118,
                s.object,
                &field,
                format!(
                    "port {} of Service {}/{} {} and {}, so Istio cannot tell its protocol and the sidecars sniff it (server-first protocols such as MySQL or SMTP then stall until the detection timeout). Name it <protocol>[-suffix], e.g. \"http-{base}\" or \"tcp-{base}\", or set appProtocol to one of http, http2, https, grpc, grpc-web, tcp, tls, mongo, mysql, redis",
                    p.number,
                    s.namespace,
                    s.name,
                    describe_name(p),
                    describe_app_protocol(p),
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(number: u32, name: &str, app: Option<&str>, udp: bool) -> Port {
        Port {
            number,
            name: name.to_string(),
            protocol: if udp {
                Protocol::Udp
            } else {
                Protocol::of_port_name(name)
            },
            target: None,
            app_protocol: app.map(str::to_string),
            index: 0,
        }
    }

    #[test]
    fn protocols_as_istioctl_converts_them() {
        let cases = [
            (port(80, "http-web", None, false), Protocol::Http),
            (port(80, "HTTP2", None, false), Protocol::Http2),
            (port(80, "grpc-web-ui", None, false), Protocol::GrpcWeb),
            (port(80, "web", None, false), Protocol::Unsupported),
            (port(80, "", None, false), Protocol::Unsupported),
            (port(3306, "db", None, false), Protocol::Tcp),
            (port(80, "web", Some("http"), false), Protocol::Http),
            (
                port(80, "http-web", Some("custom"), false),
                Protocol::Unsupported,
            ),
            (
                port(80, "web", Some("https-upstream"), false),
                Protocol::Https,
            ),
            (
                port(80, "web", Some("kubernetes.io/h2c"), false),
                Protocol::Http2,
            ),
            (
                port(80, "web", Some("kubernetes.io/wss"), false),
                Protocol::Https,
            ),
            (port(514, "syslog", None, true), Protocol::Udp),
            (port(80, "grpc-wé", None, false), Protocol::Grpc),
        ];
        for (p, want) in cases {
            assert_eq!(protocol(&p), want, "{} {:?}", p.name, p.app_protocol);
        }
    }
}
