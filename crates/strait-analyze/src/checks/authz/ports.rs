//! STR0305: HTTP-only fields in rules that meet ports without HTTP.

use std::collections::{BTreeMap, BTreeSet};

use strait_api::istio::gateway::ServerTlsMode;
use strait_api::istio::security::{AuthorizationAction, Rule};
use strait_model::compile::condition_key;
use strait_model::peer_auth::{inbound_ports, target_port};
use strait_model::{ClusterId, Mesh, ObjId, Protocol, Workload, gateway};

use super::super::util::join;
use super::{Policy, some_of};
use crate::catalog::STR0305;
use crate::context::Ctx;

/// A port of a workload where its proxy sees bytes, never HTTP requests.
struct OpaquePort {
    /// The port the proxy accepts on (what `to.operation.ports` names).
    port: u32,
    /// Where it comes from, for messages.
    what: String,
}

/// The ports of `w` that carry no HTTP: a sidecar's inbound ports whose Service port is TCP,
/// TLS or a database protocol (the first Service wins, as in the compiled inbound config); a
/// gateway's servers that relay TCP or TLS without terminating HTTP. Ports without a protocol
/// are sniffed, so HTTP there is still HTTP: they are not listed.
fn opaque_ports(mesh: &Mesh, config: ClusterId, w: &Workload) -> Vec<OpaquePort> {
    let mut out: BTreeMap<u32, OpaquePort> = BTreeMap::new();
    if w.gateway.is_some() {
        let mut bind: BTreeMap<u32, u32> = BTreeMap::new();
        for s in mesh.services_of(w) {
            for p in &s.ports {
                bind.entry(p.number)
                    .or_insert_with(|| target_port(mesh, w, p).unwrap_or(p.number));
            }
        }
        for (_, o, spec) in gateway::gateways_of(mesh, config, w) {
            for server in &spec.servers {
                let Some(sp) = &server.port else { continue };
                let protocol = Protocol::parse(&sp.protocol);
                let mode = server.tls.as_ref().map(|t| t.effective_mode());
                let terminates_http = protocol == Protocol::Https
                    && matches!(
                        mode,
                        Some(
                            ServerTlsMode::Simple
                                | ServerTlsMode::Mutual
                                | ServerTlsMode::OptionalMutual
                        )
                    );
                let http = (protocol.is_http() && !protocol.is_tls()) || terminates_http;
                if http || mode == Some(ServerTlsMode::IstioMutual) {
                    continue;
                }
                let port = bind.get(&sp.number).copied().unwrap_or(sp.number);
                let pod = if port == sp.number {
                    String::new()
                } else {
                    format!(", pod port {port}")
                };
                let how = match mode {
                    Some(ServerTlsMode::Passthrough) => " PASSTHROUGH".to_string(),
                    Some(ServerTlsMode::AutoPassthrough) => " AUTO_PASSTHROUGH".to_string(),
                    _ => String::new(),
                };
                out.entry(port).or_insert_with(|| OpaquePort {
                    port,
                    what: format!(
                        "port {} of gateway {}/{} ({}{how} server of Gateway {}/{}{pod})",
                        sp.number,
                        w.namespace,
                        w.name,
                        sp.protocol.to_ascii_uppercase(),
                        o.namespace(),
                        o.name()
                    ),
                });
            }
        }
        return out.into_values().collect();
    }
    let mut protocols: BTreeMap<u32, (Protocol, String)> = BTreeMap::new();
    for (target, s, p) in inbound_ports(mesh, w) {
        protocols.entry(target).or_insert_with(|| {
            let number = if p.number == target {
                String::new()
            } else {
                format!(" port {}", p.number)
            };
            let what = format!(
                "port {target} of {} (Service {}/{}{number}, {})",
                w.name, s.namespace, s.name, p.protocol
            );
            (p.protocol, what)
        });
    }
    protocols
        .into_iter()
        .filter(|(_, (proto, _))| proto.is_tcp())
        .map(|(port, (_, what))| OpaquePort { port, what })
        .collect()
}

fn port_listed(list: &[String], port: u32) -> bool {
    list.iter().any(|p| p.trim().parse::<u32>() == Ok(port))
}

/// The rule's operations (entries without one are dropped, as the compiler does).
fn operations(rule: &Rule) -> impl Iterator<Item = &strait_api::istio::security::RuleOperation> {
    rule.to.iter().filter_map(|t| t.operation.as_ref())
}

/// Whether the rule can apply to connections to `port`, ignoring HTTP-only fields: some
/// operation admits the port (or there is none), and `when destination.port` does.
fn reaches(rule: &Rule, port: u32) -> bool {
    let ops: Vec<_> = operations(rule).collect();
    let to = ops.is_empty()
        || ops.iter().any(|op| {
            (op.ports.is_empty() || port_listed(&op.ports, port))
                && !port_listed(&op.not_ports, port)
        });
    let when = rule.when.iter().all(|c| {
        c.key != "destination.port"
            || ((c.values.is_empty() || port_listed(&c.values, port))
                && !port_listed(&c.not_values, port))
    });
    to && when
}

/// The HTTP-only fields of a rule, named as written; with `port`, only those a DENY rule
/// drops on that port (operations that do not admit it keep rejecting it).
fn http_fields(rule: &Rule, port: Option<u32>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !out.contains(&name) {
            out.push(name);
        }
    };
    for s in rule.from.iter().filter_map(|f| f.source.as_ref()) {
        if !s.request_principals.is_empty() {
            add("requestPrincipals".into());
        }
        if !s.not_request_principals.is_empty() {
            add("notRequestPrincipals".into());
        }
    }
    for op in operations(rule) {
        if port.is_some_and(|p| {
            (!op.ports.is_empty() && !port_listed(&op.ports, p)) || port_listed(&op.not_ports, p)
        }) {
            continue;
        }
        let fields = [
            ("hosts", &op.hosts),
            ("notHosts", &op.not_hosts),
            ("methods", &op.methods),
            ("notMethods", &op.not_methods),
            ("paths", &op.paths),
            ("notPaths", &op.not_paths),
        ];
        for (name, v) in fields {
            if !v.is_empty() {
                add(name.into());
            }
        }
    }
    for c in &rule.when {
        if condition_key(&c.key).is_some_and(|k| k.http_only()) {
            add(format!("when {}", c.key));
        }
    }
    out
}

/// What else a DENY rule matches on once its HTTP-only fields are dropped.
fn other_fields(rule: &Rule) -> Vec<String> {
    let mut out = BTreeSet::new();
    for s in rule.from.iter().filter_map(|f| f.source.as_ref()) {
        let fields = [
            ("principals", &s.principals),
            ("notPrincipals", &s.not_principals),
            ("namespaces", &s.namespaces),
            ("notNamespaces", &s.not_namespaces),
            ("serviceAccounts", &s.service_accounts),
            ("notServiceAccounts", &s.not_service_accounts),
            ("ipBlocks", &s.ip_blocks),
            ("notIpBlocks", &s.not_ip_blocks),
            ("remoteIpBlocks", &s.remote_ip_blocks),
            ("notRemoteIpBlocks", &s.not_remote_ip_blocks),
        ];
        out.extend(
            fields
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(n, _)| n.to_string()),
        );
    }
    // Ports admit the port or the rule would not reach it: they narrow nothing here.
    for c in &rule.when {
        if condition_key(&c.key).is_some_and(|k| !k.http_only()) && c.key != "destination.port" {
            out.insert(format!("when {}", c.key));
        }
    }
    out.into_iter().collect()
}

/// STR0305: HTTP-only fields in a rule that applies to a port without HTTP.
pub(super) fn check_http_on_tcp(
    ctx: &mut Ctx,
    config: ClusterId,
    p: &Policy,
    targets: &[&Workload],
    all: &[Policy],
) {
    let mesh = ctx.mesh;
    let ports: Vec<(&Workload, Vec<OpaquePort>)> = targets
        .iter()
        .map(|w| (*w, opaque_ports(mesh, config, w)))
        .filter(|(_, ports)| !ports.is_empty())
        .collect();
    if ports.is_empty() {
        return;
    }
    let deny = p.action == AuthorizationAction::Deny;
    for (i, rule) in p.spec.rules.iter().enumerate() {
        if http_fields(rule, None).is_empty() {
            continue;
        }
        let mut hit: BTreeSet<String> = BTreeSet::new();
        let mut fields: Vec<String> = Vec::new();
        let mut numbers: BTreeSet<u32> = BTreeSet::new();
        let (mut on_gateway, mut on_sidecar) = (false, false);
        for (w, opaque) in &ports {
            for op in opaque {
                if !reaches(rule, op.port) {
                    continue;
                }
                let here = http_fields(rule, deny.then_some(op.port));
                if here.is_empty() || (!deny && allowed_elsewhere(all, p.id, i, w, op.port)) {
                    continue;
                }
                for f in here {
                    if !fields.contains(&f) {
                        fields.push(f);
                    }
                }
                numbers.insert(op.port);
                hit.insert(op.what.clone());
                if w.gateway.is_some() {
                    on_gateway = true;
                } else {
                    on_sidecar = true;
                }
            }
        }
        if hit.is_empty() {
            continue;
        }
        let found = Found {
            deny,
            fields,
            ports: hit.into_iter().collect(),
            numbers: numbers.into_iter().collect(),
            others: other_fields(rule),
            on_gateway,
            on_sidecar,
        };
        let message = found.message();
        ctx.at(STR0305, p.id, &format!("spec.rules[{i}]"), message);
    }
}

/// One STR0305 finding: a rule and the ports without HTTP it meets.
struct Found {
    deny: bool,
    /// The HTTP-only fields, as written.
    fields: Vec<String>,
    /// The ports, described.
    ports: Vec<String>,
    numbers: Vec<u32>,
    /// What else a DENY rule still matches on there.
    others: Vec<String>,
    on_gateway: bool,
    on_sidecar: bool,
}

impl Found {
    fn message(&self) -> String {
        let one = self.ports.len() == 1;
        let (carry, it) = if one {
            ("carries", "it")
        } else {
            ("carry", "them")
        };
        let ports = some_of(self.ports.clone(), 4);
        let fields = join(&self.fields);
        let listed: Vec<String> = self.numbers.iter().map(|n| format!("\"{n}\"")).collect();
        let listed = listed.join(", ");
        let speaks_http = if self.on_sidecar {
            "; if a port does speak HTTP, name its Service port http-<name> or set appProtocol: http"
        } else {
            ""
        };
        if self.deny {
            let scope = if self.others.is_empty() {
                format!("every connection to {it}")
            } else {
                format!(
                    "every connection to {it} that matches the rule's other fields ({})",
                    join(&self.others)
                )
            };
            return format!(
                "this DENY rule matches on {fields}, which only HTTP requests carry, but {ports} {carry} no HTTP: there the proxy leaves those fields out and denies {scope}. Keep the rule to the HTTP ports (to.operation.ports), or leave {it} out with notPorts: [{listed}]{speaks_http}"
            );
        }
        let sni = if self.on_gateway && self.fields.iter().any(|f| f == "hosts") {
            ", matching the TLS server name with `when: connection.sni` instead of hosts"
        } else {
            ""
        };
        format!(
            "this ALLOW rule matches on {fields}, which only HTTP requests carry, so it never matches connections to {ports}, which {carry} no HTTP: they are denied unless another rule allows them. Give {it} a rule of its own without HTTP fields (to.operation.ports: [{listed}]){sni}{speaks_http}"
        )
    }
}

/// Whether another ALLOW rule applying to `w` can match connections to `port` (one without
/// HTTP-only fields that admits the port): then the port is not left to this rule alone.
fn allowed_elsewhere(all: &[Policy], policy: ObjId, rule: usize, w: &Workload, port: u32) -> bool {
    all.iter()
        .filter(|q| {
            q.action == AuthorizationAction::Allow && q.selected.iter().any(|s| s.id == w.id)
        })
        .any(|q| {
            q.spec.rules.iter().enumerate().any(|(k, r)| {
                !(q.id == policy && k == rule)
                    && http_fields(r, None).is_empty()
                    && reaches(r, port)
            })
        })
}
