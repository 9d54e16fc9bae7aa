//! Valid Istio configuration strait does not act on (yet). It is accepted, never silently:
//! every use is reported with its file and line, by the control plane when it loads the mesh
//! and by `strait analyze` (STR0015), each with what happens instead. Where acting on part of
//! a resource would let through what the whole forbids, the part is not served (it fails
//! closed) and the report says so.

use strait_api::Kind;
use strait_api::istio::destination_rule::ClientTlsMode;
use strait_api::istio::gateway::ServerTlsMode;

use crate::ids::ObjId;
use crate::mesh::Mesh;

/// One field in use that is not acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotApplied {
    pub object: ObjId,
    /// Field path in the object (`spec.http[0].mirror`).
    pub path: String,
    /// What happens instead.
    pub what: String,
}

impl NotApplied {
    fn new(object: ObjId, path: String, what: &str) -> NotApplied {
        NotApplied {
            object,
            path,
            what: what.to_string(),
        }
    }
}

/// Every use of a field strait does not act on, in the config clusters.
pub fn report(mesh: &Mesh) -> Vec<NotApplied> {
    let mut out = Vec::new();
    // Istio config is read from config clusters only; what a remote holds is not applied at
    // all (the analyzer says so).
    for c in mesh.primaries() {
        for (id, o) in c.of_kind(Kind::VirtualService) {
            let Some(vs) = o.virtual_service() else {
                continue;
            };
            let mut note = |path: String, what: &str| out.push(NotApplied::new(id, path, what));
            for (i, r) in vs.spec.http.iter().enumerate() {
                if r.mirror.is_some() || !r.mirrors.is_empty() {
                    note(
                        format!("spec.http[{i}].mirror"),
                        "not applied: requests are not mirrored",
                    );
                }
                if r.cors_policy.is_some() {
                    note(
                        format!("spec.http[{i}].corsPolicy"),
                        "not applied: no CORS handling in the sidecar",
                    );
                }
                if r.delegate.is_some() {
                    note(
                        format!("spec.http[{i}].delegate"),
                        "not applied: delegate VirtualServices are not followed",
                    );
                }
                if let Some(a) = r.fault.as_ref().and_then(|f| f.abort.as_ref())
                    && a.http_status.is_none()
                {
                    note(
                        format!("spec.http[{i}].fault.abort"),
                        "only httpStatus aborts are injected",
                    );
                }
                if r.fault
                    .as_ref()
                    .and_then(|f| f.delay.as_ref())
                    .is_some_and(|d| d.fixed_delay.is_none())
                {
                    note(
                        format!("spec.http[{i}].fault.delay"),
                        "only fixedDelay is injected",
                    );
                }
            }
            let binds_mesh =
                vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh");
            if !vs.spec.tls.is_empty() && binds_mesh {
                note(
                    "spec.tls".into(),
                    "not applied by sidecars: TLS traffic is routed by its service's default route (gateways apply TLS routes)",
                );
            }
        }
        for (id, o) in c.of_kind(Kind::DestinationRule) {
            let Some(dr) = o.destination_rule() else {
                continue;
            };
            for (path, tp) in dr.spec.traffic_policies() {
                let own = tp.tls.as_ref().map(|t| (format!("{path}.tls"), t));
                let ports = tp
                    .port_level_settings
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| {
                        p.tls
                            .as_ref()
                            .map(|t| (format!("{path}.portLevelSettings[{i}].tls"), t))
                    });
                for (field, tls) in own.into_iter().chain(ports) {
                    if matches!(
                        tls.mode,
                        Some(ClientTlsMode::Simple | ClientTlsMode::Mutual)
                    ) {
                        out.push(NotApplied::new(
                            id,
                            format!("{field}.mode"),
                            "not applied: TLS origination is not supported, so requests to this destination are refused (503 NC) rather than sent in plaintext",
                        ));
                    }
                }
            }
        }
    }
    gateways(mesh, &mut out);
    kinds(mesh, &mut out);
    destination_rules(mesh, &mut out);
    service_entries(mesh, &mut out);
    out
}

/// Kinds whose objects are accepted and not acted on at all.
fn kinds(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    let table: [(Kind, &str); 6] = [
        (
            Kind::AuthorizationPolicy,
            "not enforced: requests are not checked against this policy",
        ),
        (
            Kind::RequestAuthentication,
            "not enforced: tokens are not verified",
        ),
        (
            Kind::Sidecar,
            "not applied: every proxy sees every service it may (exportTo), not only this resource's egress hosts",
        ),
        (
            Kind::EnvoyFilter,
            "not applied: strait's proxy is not Envoy",
        ),
        (
            Kind::Telemetry,
            "not applied: metrics are Istio's standard set, access logs follow meshConfig.accessLogFile",
        ),
        (
            Kind::WorkloadGroup,
            "not applied: no WorkloadEntries are created from it",
        ),
    ];
    for c in mesh.primaries() {
        for (kind, what) in table {
            for (id, _) in c.of_kind(kind) {
                out.push(NotApplied::new(id, "spec".into(), what));
            }
        }
    }
}

/// DestinationRule traffic-policy settings the proxy does not act on.
fn destination_rules(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    for c in mesh.primaries() {
        for (id, o) in c.of_kind(Kind::DestinationRule) {
            let Some(dr) = o.destination_rule() else {
                continue;
            };
            for (path, tp) in dr.spec.traffic_policies() {
                let mut note = |field: &str, what: &str| {
                    out.push(NotApplied::new(id, format!("{path}.{field}"), what))
                };
                if tp.outlier_detection.is_some() {
                    note(
                        "outlierDetection",
                        "not applied: endpoints are not ejected on errors",
                    );
                }
                if let Some(lb) = &tp.load_balancer {
                    if lb.consistent_hash.is_some() {
                        note(
                            "loadBalancer.consistentHash",
                            "not applied: requests are balanced by the simple policy (LEAST_REQUEST by default)",
                        );
                    }
                    if lb.locality_lb_setting.is_some() {
                        note(
                            "loadBalancer.localityLbSetting",
                            "not applied: endpoints are used regardless of locality",
                        );
                    }
                }
                if let Some(http) = tp.connection_pool.as_ref().and_then(|p| p.http.as_ref()) {
                    if http.http1_max_pending_requests.is_some() {
                        note(
                            "connectionPool.http.http1MaxPendingRequests",
                            "not enforced: requests are not queued against a limit",
                        );
                    }
                    if http.max_retries.is_some() {
                        note(
                            "connectionPool.http.maxRetries",
                            "not enforced: retries follow each route's policy without a cluster-wide budget",
                        );
                    }
                }
            }
        }
    }
}

/// ServiceEntry features the proxy does not act on.
fn service_entries(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    for c in mesh.primaries() {
        for (id, o) in c.of_kind(Kind::ServiceEntry) {
            let Some(se) = o.service_entry() else {
                continue;
            };
            if !se.spec.endpoints.is_empty() {
                out.push(NotApplied::new(
                    id,
                    "spec.endpoints".into(),
                    "not applied: only workloads its workloadSelector selects are endpoints; requests to its hosts find none (503)",
                ));
            }
        }
    }
}

/// Gateway server settings strait does not serve: the server is left out, so its port refuses
/// rather than serving something weaker than asked.
fn gateways(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    for c in mesh.primaries() {
        for (id, o) in c.of_kind(Kind::Gateway) {
            let Some(g) = o.gateway() else { continue };
            for (i, s) in g.spec.servers.iter().enumerate() {
                let at = |f: &str| format!("spec.servers[{i}].{f}");
                if !s.default_endpoint.is_empty() {
                    out.push(NotApplied::new(
                        id,
                        at("defaultEndpoint"),
                        "not applied: traffic goes to the routes' destinations",
                    ));
                }
                if !s.bind.is_empty() {
                    out.push(NotApplied::new(
                        id,
                        at("bind"),
                        "not applied: the server listens on every address of the gateway",
                    ));
                }
                let Some(tls) = &s.tls else { continue };
                let mode = tls.effective_mode();
                let terminates = matches!(
                    mode,
                    ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
                );
                let refused = |f: &str, why: &str| {
                    NotApplied::new(
                        id,
                        at(f),
                        &format!(
                            "{why}; the server is not served and its port refuses TLS for its hosts (fail closed)"
                        ),
                    )
                };
                if mode == ServerTlsMode::IstioMutual {
                    out.push(refused(
                        "tls.mode",
                        "ISTIO_MUTUAL termination at a gateway is not supported",
                    ));
                }
                if terminates && tls.credential_name.is_empty() {
                    out.push(refused("tls", "certificates from files in the gateway pod (serverCertificate, privateKey) cannot be read; use credentialName"));
                }
                if !tls.credential_names.is_empty() || !tls.tls_certificates.is_empty() {
                    out.push(NotApplied::new(
                        id,
                        at("tls.credentialNames"),
                        "not applied: only credentialName (one certificate) is served",
                    ));
                }
                if terminates && !tls.ca_crl.is_empty() {
                    out.push(refused(
                        "tls.caCrl",
                        "certificate revocation lists are not checked",
                    ));
                }
                if terminates
                    && (!tls.verify_certificate_spki.is_empty()
                        || !tls.verify_certificate_hash.is_empty())
                {
                    out.push(refused(
                        "tls.verifyCertificateSpki",
                        "client certificate pinning is not supported",
                    ));
                }
            }
        }
    }
}
