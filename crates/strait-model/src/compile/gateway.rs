//! A gateway proxy's configuration: the servers of every Gateway that selects it, grouped by
//! port into listeners, with the VirtualServices bound to those Gateways.
//!
//! - `AUTO_PASSTHROUGH` servers get SNI-DNAT clusters, one per service port (and subset) whose
//!   host the server exposes, named by the SNI clients send.
//! - `PASSTHROUGH` servers route on the SNI with the `tls` routes of bound VirtualServices.
//! - HTTP servers, and HTTPS servers that terminate TLS (`SIMPLE`, `MUTUAL` with a
//!   `credentialName` Secret), route with the `http` routes of bound VirtualServices.
//! - TCP servers, and TLS servers that terminate, relay with the `tcp` routes.
//!
//! A server strait cannot serve as written (TLS material from files, `ISTIO_MUTUAL`, a Secret
//! that is missing or incomplete) is left out, so its port refuses rather than serving
//! something else; the control plane reports why.

use std::collections::BTreeMap;

use strait_api::Kind;
use strait_api::istio::gateway::{Server, ServerTlsMode, ServerTlsSettings};

use super::routes::{self, Bind, ClusterKey, Vs};
use crate::gateway::{gateways_of, names_gateway};
use crate::host::{self, ExportTo, ScopedHost};
use crate::ids::ClusterId;
use crate::mesh::Mesh;
use crate::protocol::Protocol;
use crate::workload::Workload;
use strait_config::gateway::*;
use strait_config::types::*;

/// One server of a Gateway, with where it comes from.
struct Srv<'m> {
    gw_ns: &'m str,
    gw_name: &'m str,
    server: &'m Server,
    protocol: Protocol,
    mode: Option<ServerTlsMode>,
}

/// Builds the listeners of gateway `w`. Returns the outbound clusters its routes need and the
/// SNI-DNAT clusters its `AUTO_PASSTHROUGH` servers expose.
pub(super) fn compile(
    mesh: &Mesh,
    config: ClusterId,
    w: &Workload,
    out: &mut ProxyConfig,
) -> (Vec<ClusterKey>, Vec<ClusterKey>) {
    let mut by_port: BTreeMap<u32, Vec<Srv>> = BTreeMap::new();
    for (_, o, spec) in gateways_of(mesh, config, w) {
        for server in &spec.servers {
            let Some(port) = &server.port else { continue };
            by_port.entry(port.number).or_default().push(Srv {
                gw_ns: o.namespace(),
                gw_name: o.name(),
                server,
                protocol: Protocol::parse(&port.protocol),
                mode: server.tls.as_ref().map(ServerTlsSettings::effective_mode),
            });
        }
    }
    let vss = bound_virtual_services(mesh, config);
    let mut needed = Vec::new();
    let mut sni_dnat = Vec::new();
    let ports = ServicePorts::of(mesh, w);
    for (port, servers) in &by_port {
        let kind = listener_kind(
            mesh,
            config,
            w,
            *port,
            servers,
            &vss,
            &mut needed,
            &mut sni_dnat,
            out,
        );
        let Some(kind) = kind else { continue };
        let mut gateways: Vec<String> = servers
            .iter()
            .map(|s| format!("{}/{}", s.gw_ns, s.gw_name))
            .collect();
        gateways.dedup();
        out.listeners.insert(
            port.to_string(),
            GatewayListener {
                port: *port,
                bind_port: ports.target(*port),
                public: ports.public(*port),
                kind,
                gateways,
            },
        );
    }
    // The load balancer's health checks reach the proxy's readiness port (status-port).
    for (port, target) in &ports.map {
        if *target == HEALTH_PORT && !out.listeners.contains_key(&port.to_string()) {
            let public = ports.public(*port);
            if !public.is_empty() {
                out.listeners.insert(
                    port.to_string(),
                    GatewayListener {
                        port: *port,
                        bind_port: HEALTH_PORT,
                        public,
                        kind: ListenerKind::Health,
                        gateways: Vec::new(),
                    },
                );
            }
        }
    }
    (needed, sni_dnat)
}

/// The proxy's readiness port, which gateway Services publish as `status-port`.
const HEALTH_PORT: u32 = 15021;

/// The ports of the Services that select the gateway pod: service port → target port, and
/// the load-balancer addresses in front of each.
struct ServicePorts {
    map: BTreeMap<u32, u32>,
    public: BTreeMap<u32, Vec<String>>,
}

impl ServicePorts {
    fn of(mesh: &Mesh, w: &Workload) -> ServicePorts {
        let mut map = BTreeMap::new();
        let mut public: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for s in mesh.services_of(w) {
            for p in &s.ports {
                let target = crate::peer_auth::target_port(mesh, w, p).unwrap_or(p.number);
                map.entry(p.number).or_insert(target);
                let ips = s
                    .external_addresses
                    .iter()
                    .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
                    .cloned();
                public.entry(p.number).or_default().extend(ips);
            }
        }
        for v in public.values_mut() {
            v.sort();
            v.dedup();
        }
        ServicePorts { map, public }
    }

    fn target(&self, port: u32) -> u32 {
        self.map.get(&port).copied().unwrap_or(port)
    }

    fn public(&self, port: u32) -> Vec<String> {
        self.public.get(&port).cloned().unwrap_or_default()
    }
}

/// VirtualServices of the config cluster that name some Gateway, oldest first.
fn bound_virtual_services(mesh: &Mesh, config: ClusterId) -> Vec<Vs<'_>> {
    let mut vss: Vec<Vs> = mesh
        .cluster(config)
        .of_kind(Kind::VirtualService)
        .filter_map(|(id, o)| o.virtual_service().map(|v| (id, o, v)))
        .filter(|(_, _, v)| v.spec.gateways.iter().any(|g| g != "mesh"))
        .map(|(id, o, v)| Vs::new(mesh, id, o, &v.spec))
        .collect();
    vss.sort_by(|a, b| {
        let key = |v: &Vs| {
            (
                v.obj.meta().creation_timestamp.clone(),
                v.obj.namespace().to_string(),
                v.obj.name().to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    vss
}

/// The VirtualServices bound to the Gateway of `s`, visible in its namespace.
fn bound_to<'a, 'm>(vss: &'a [Vs<'m>], s: &Srv) -> Vec<&'a Vs<'m>> {
    vss.iter()
        .filter(|v| names_gateway(&v.spec.gateways, v.obj.namespace(), s.gw_ns, s.gw_name))
        .filter(|v| {
            v.obj.namespace() == s.gw_ns
                || ExportTo::parse(&v.spec.export_to, v.obj.namespace(), true).visible_to(s.gw_ns)
        })
        .collect()
}

/// The domains a VirtualService's hosts give on a server: each VS host that a server host
/// admits (namespace scope and hostname), the more specific of the two.
fn domains(vs: &Vs, s: &Srv) -> Vec<String> {
    let mut out = Vec::new();
    for h in &vs.hosts {
        for sh in &s.server.hosts {
            let scoped = ScopedHost::parse(sh);
            if !scoped.allows_namespace(vs.obj.namespace(), s.gw_ns)
                || !host::matches(h, &scoped.host)
            {
                continue;
            }
            // The more specific of the two: a wildcard VirtualService host narrowed by an
            // exact (or longer wildcard) server host.
            let narrower = host::is_wildcard(h)
                && (!host::is_wildcard(&scoped.host) || scoped.host.len() > h.len());
            let d = if narrower {
                scoped.host.clone()
            } else {
                h.clone()
            };
            out.push(d.to_ascii_lowercase());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Virtual hosts for HTTP servers: per bound VirtualService, its domains on the servers, the
/// first VirtualService to claim a domain keeping it.
fn vhosts(
    mesh: &Mesh,
    w: &Workload,
    port: u32,
    servers: &[&Srv],
    vss: &[Vs],
    needed: &mut Vec<ClusterKey>,
) -> Vec<VirtualHost> {
    let mut out: Vec<VirtualHost> = Vec::new();
    let mut claimed: Vec<String> = Vec::new();
    for s in servers {
        let redirect = s.server.tls.as_ref().is_some_and(|t| t.https_redirect)
            && !matches!(s.protocol, Protocol::Https);
        for vs in bound_to(vss, s) {
            let mut ds = domains(vs, s);
            ds.retain(|d| !claimed.contains(d));
            if ds.is_empty() {
                continue;
            }
            let bind = Bind::Gateway {
                namespace: s.gw_ns,
                name: s.gw_name,
            };
            let rules = routes::http_rules(mesh, vs, port, "", w, bind, needed);
            claimed.extend(ds.iter().cloned());
            out.push(VirtualHost {
                domains: ds,
                rules,
                https_redirect: redirect,
                virtual_services: vec![vs.full_name()],
            });
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn listener_kind(
    mesh: &Mesh,
    config: ClusterId,
    w: &Workload,
    port: u32,
    servers: &[Srv],
    vss: &[Vs],
    needed: &mut Vec<ClusterKey>,
    sni_dnat: &mut Vec<ClusterKey>,
    out: &mut ProxyConfig,
) -> Option<ListenerKind> {
    let first = servers.first()?;
    let speaks_tls = |s: &Srv| matches!(s.protocol, Protocol::Https | Protocol::Tls);
    if first.protocol.is_http() && !speaks_tls(first) {
        let http: Vec<&Srv> = servers.iter().filter(|s| s.protocol.is_http()).collect();
        return Some(ListenerKind::Http {
            vhosts: vhosts(mesh, w, port, &http, vss, needed),
        });
    }
    if speaks_tls(first) {
        let mut chains = Vec::new();
        for s in servers.iter().filter(|s| speaks_tls(s)) {
            chains.extend(tls_chains(
                mesh, config, w, port, s, vss, needed, sni_dnat, out,
            ));
        }
        return Some(ListenerKind::Tls { chains });
    }
    // Opaque TCP (TCP, MONGO, ...): the first bound VirtualService with a matching tcp route.
    let bind = Bind::Gateway {
        namespace: first.gw_ns,
        name: first.gw_name,
    };
    let route = bound_to(vss, first)
        .into_iter()
        .map(|vs| routes::tcp_routes(mesh, vs, port, "", w, bind, needed))
        .find(|r| !r.is_empty())
        .unwrap_or_default();
    Some(ListenerKind::Tcp { route })
}

#[allow(clippy::too_many_arguments)]
fn tls_chains(
    mesh: &Mesh,
    config: ClusterId,
    w: &Workload,
    port: u32,
    s: &Srv,
    vss: &[Vs],
    needed: &mut Vec<ClusterKey>,
    sni_dnat: &mut Vec<ClusterKey>,
    out: &mut ProxyConfig,
) -> Vec<TlsChain> {
    let hosts: Vec<String> = s
        .server
        .hosts
        .iter()
        .map(|h| ScopedHost::parse(h).host.to_ascii_lowercase())
        .collect();
    let bind = Bind::Gateway {
        namespace: s.gw_ns,
        name: s.gw_name,
    };
    match s.mode.unwrap_or(ServerTlsMode::Passthrough) {
        ServerTlsMode::AutoPassthrough => {
            sni_dnat.extend(exposed_clusters(mesh, config, s));
            vec![TlsChain {
                server_names: Vec::new(),
                action: TlsAction::AutoPassthrough,
            }]
        }
        ServerTlsMode::Passthrough => bound_to(vss, s)
            .into_iter()
            .flat_map(|vs| routes::tls_routes(mesh, vs, port, w, bind, needed))
            .map(|(snis, route)| TlsChain {
                server_names: narrow(&snis, &hosts),
                action: TlsAction::Passthrough { route },
            })
            .filter(|c| !c.server_names.is_empty())
            .collect(),
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {
            let Some(tls) = termination(mesh, w, s, out) else {
                return Vec::new();
            };
            let action = if s.protocol == Protocol::Https {
                TlsAction::TerminateHttp {
                    tls,
                    vhosts: vhosts(mesh, w, port, &[s], vss, needed),
                }
            } else {
                let route = bound_to(vss, s)
                    .into_iter()
                    .map(|vs| routes::tcp_routes(mesh, vs, port, "", w, bind, needed))
                    .find(|r| !r.is_empty())
                    .unwrap_or_default();
                TlsAction::TerminateTcp { tls, route }
            };
            vec![TlsChain {
                server_names: hosts,
                action,
            }]
        }
        // Terminating with the mesh's own certificate is not served yet: the server is left
        // out (fail closed) and reported.
        ServerTlsMode::IstioMutual => Vec::new(),
    }
}

/// SNI hosts of a route, kept to what the server's hosts admit (the more specific of each
/// pair).
fn narrow(snis: &[String], hosts: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for sni in snis {
        for h in hosts {
            if host::matches(sni, h) {
                let pick = if host::is_wildcard(sni) && !host::is_wildcard(h) {
                    h
                } else {
                    sni
                };
                out.push(pick.clone());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The SNI-DNAT clusters an `AUTO_PASSTHROUGH` server exposes: every port of every mesh
/// service whose host a server host covers, and each DestinationRule subset of it.
fn exposed_clusters(mesh: &Mesh, config: ClusterId, s: &Srv) -> Vec<ClusterKey> {
    let hosts: Vec<ScopedHost> = s
        .server
        .hosts
        .iter()
        .map(|h| ScopedHost::parse(h))
        .collect();
    let subsets = subsets_by_host(mesh, config);
    let mut out = Vec::new();
    for svc in mesh.registry.all() {
        if !super::from_config_cluster(svc, config) || svc.is_external() {
            continue;
        }
        let exposed = hosts.iter().any(|h| {
            h.allows_namespace(&svc.namespace, s.gw_ns) && host::subset_of(&svc.hostname, &h.host)
        });
        if !exposed {
            continue;
        }
        for p in svc.ports.iter().filter(|p| p.protocol != Protocol::Udp) {
            out.push((svc.hostname.clone(), p.number, String::new()));
            for subset in subsets.get(svc.hostname.as_str()).into_iter().flatten() {
                out.push((svc.hostname.clone(), p.number, subset.clone()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// DestinationRule subset names by fully qualified host, in the config cluster.
fn subsets_by_host(mesh: &Mesh, config: ClusterId) -> BTreeMap<String, Vec<String>> {
    let c = mesh.cluster(config);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, o) in c.of_kind(Kind::DestinationRule) {
        let Some(d) = o.destination_rule() else {
            continue;
        };
        let h = host::fqdn(&d.spec.host, o.namespace(), &c.domain);
        out.entry(h)
            .or_default()
            .extend(d.spec.subsets.iter().map(|s| s.name.clone()));
    }
    out
}

/// The TLS termination of a `SIMPLE`/`MUTUAL` server, with its Secret pushed as a resource.
/// `None` when strait cannot serve it as written: the server is then left out.
fn termination(
    mesh: &Mesh,
    w: &Workload,
    s: &Srv,
    out: &mut ProxyConfig,
) -> Option<TlsTermination> {
    let tls = s.server.tls.as_ref()?;
    let mutual = matches!(
        s.mode,
        Some(ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual)
    );
    if tls.credential_name.is_empty() {
        // Certificates from files mounted into the gateway pod: nothing to read them from.
        return None;
    }
    // Checks strait cannot make would let in clients the server means to refuse: the
    // server is not served at all (see `unsupported`).
    if !tls.ca_crl.is_empty()
        || !tls.verify_certificate_spki.is_empty()
        || !tls.verify_certificate_hash.is_empty()
    {
        return None;
    }
    // Istio reads credentials from the gateway workload's namespace, in its cluster.
    let secret = credential(mesh, w.cluster, &w.namespace, &tls.credential_name)?;
    let name = format!("{}/{}", w.namespace, tls.credential_name);
    let mut ca_secret = None;
    if mutual {
        let ca = if secret.ca.is_empty() {
            let ca_name = if tls.ca_cert_credential_name.is_empty() {
                format!("{}-cacert", tls.credential_name)
            } else {
                tls.ca_cert_credential_name.clone()
            };
            let ca = credential(mesh, w.cluster, &w.namespace, &ca_name)?;
            let ca_key = format!("{}/{ca_name}", w.namespace);
            out.secrets.insert(
                ca_key.clone(),
                TlsSecret {
                    cert_chain: String::new(),
                    key: String::new(),
                    ca: ca.ca.clone(),
                },
            );
            ca_key
        } else {
            name.clone()
        };
        ca_secret = Some(ca);
    }
    if secret.cert_chain.is_empty() || secret.key.is_empty() {
        return None;
    }
    out.secrets.insert(name.clone(), secret);
    let version = |p: Option<strait_api::istio::gateway::TlsProtocol>| {
        use strait_api::istio::gateway::TlsProtocol as P;
        match p? {
            P::Tlsv1_2 => Some("TLSV1_2".to_string()),
            P::Tlsv1_3 => Some("TLSV1_3".to_string()),
            P::Tlsv1_0 => Some("TLSV1_0".to_string()),
            P::Tlsv1_1 => Some("TLSV1_1".to_string()),
            P::TlsAuto => None,
        }
    };
    Some(TlsTermination {
        mutual,
        secret: name,
        ca_secret,
        min_version: version(tls.min_protocol_version),
        max_version: version(tls.max_protocol_version),
        cipher_suites: tls.cipher_suites.clone(),
        subject_alt_names: tls.subject_alt_names.clone(),
    })
}

/// A Secret's TLS material: `tls.crt`/`tls.key`/`ca.crt` or Istio's `cert`/`key`/`cacert`.
fn credential(mesh: &Mesh, cluster: ClusterId, ns: &str, name: &str) -> Option<TlsSecret> {
    let (_, o) = mesh.cluster(cluster).find(Kind::Secret, ns, name)?;
    let data = crate::trust::secret_data(o.secret()?);
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| {
                data.iter()
                    .find(|(dk, _)| dk == k)
                    .and_then(|(_, v)| String::from_utf8(v.clone()).ok())
            })
            .unwrap_or_default()
    };
    Some(TlsSecret {
        cert_chain: get(&["tls.crt", "cert"]),
        key: get(&["tls.key", "key"]),
        ca: get(&["ca.crt", "cacert"]),
    })
}
