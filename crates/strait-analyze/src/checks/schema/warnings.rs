//! What Istio accepts with a warning (IST0133).

use super::*;

// ---- Warnings (IST0133) ----

pub(super) fn empty_selectors(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let selector = match o.kind {
        Kind::Sidecar => o.sidecar().and_then(|x| x.spec.workload_selector.as_ref()),
        Kind::ServiceEntry => o
            .service_entry()
            .and_then(|x| x.spec.workload_selector.as_ref()),
        Kind::EnvoyFilter => o
            .envoy_filter()
            .and_then(|x| x.spec.workload_selector.as_ref()),
        _ => None,
    };
    if selector.is_some_and(|s| s.labels.is_empty()) {
        ctx.at_key(
            code,
            id,
            "spec.workloadSelector",
            format!("workloadSelector has no labels, so this {} applies to every workload in namespace {}; add labels, or remove the selector if that is intended", o.kind, o.namespace()),
        );
    }
}

pub(super) fn gw_tls_warnings(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let mut tls_list: Vec<(String, &ServerTlsSettings)> = Vec::new();
    if let Some(gw) = o.gateway() {
        for (i, s) in gw.spec.servers.iter().enumerate() {
            let Some(tls) = &s.tls else { continue };
            let p = format!("spec.servers[{i}].tls");
            if let Some(port) = &s.port
                && tls.https_redirect
                && !Protocol::parse(&port.protocol).is_http()
            {
                ctx.at(
                    code,
                    id,
                    &format!("{p}.httpsRedirect"),
                    format!("httpsRedirect belongs on the plain HTTP server; on this {} server it does nothing", port.protocol),
                );
            }
            tls_list.push((p, tls));
        }
    }
    if let Some(sc) = o.sidecar() {
        for (i, l) in sc.spec.ingress.iter().enumerate() {
            if let Some(tls) = &l.tls {
                tls_list.push((format!("spec.ingress[{i}].tls"), tls));
            }
        }
    }
    for (p, tls) in tls_list {
        if matches!(
            tls.min_protocol_version,
            Some(TlsProtocol::Tlsv1_0 | TlsProtocol::Tlsv1_1)
        ) && tls.cipher_suites.is_empty()
        {
            ctx.at(
                code,
                id,
                &format!("{p}.minProtocolVersion"),
                "TLS below 1.2 needs cipherSuites: the default suites no longer include any that old clients support, so they still fail",
            );
        }
        let passthrough = matches!(
            tls.effective_mode(),
            ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
        );
        let has_certs = !tls.server_certificate.is_empty()
            || !tls.private_key.is_empty()
            || !tls.ca_certificates.is_empty()
            || !tls.ca_crl.is_empty()
            || !tls.credential_name.is_empty()
            || !tls.credential_names.is_empty()
            || !tls.tls_certificates.is_empty();
        if passthrough && has_certs && !tls.https_redirect {
            ctx.at(
                code,
                id,
                &format!("{p}.mode"),
                "a passthrough mode does not terminate TLS, so the certificates set here are ignored; use SIMPLE or MUTUAL to terminate, or drop them",
            );
        }
    }
}

pub(super) fn dr_failover(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(dr) = o.destination_rule() else {
        return;
    };
    for (p, tp) in dr.spec.traffic_policies() {
        let mut pairs = vec![(
            p.clone(),
            tp.load_balancer.as_ref(),
            tp.outlier_detection.is_some(),
        )];
        for (j, pl) in tp.port_level_settings.iter().enumerate() {
            pairs.push((
                format!("{p}.portLevelSettings[{j}]"),
                pl.load_balancer.as_ref(),
                pl.outlier_detection.is_some(),
            ));
        }
        for (pp, lb, has_od) in pairs {
            let Some(lb) = lb else { continue };
            if has_od {
                continue;
            }
            let locality = lb
                .locality_lb_setting
                .as_ref()
                .is_some_and(|l| !l.failover.is_empty() || !l.failover_priority.is_empty());
            let zone = lb
                .zone_aware_lb_setting
                .as_ref()
                .is_some_and(|l| !l.failover.is_empty() || !l.failover_priority.is_empty());
            let field = if locality {
                "localityLbSetting"
            } else if zone {
                "zoneAwareLbSetting"
            } else {
                continue;
            };
            ctx.at(
                code,
                id,
                &format!("{pp}.loadBalancer.{field}"),
                "locality failover is set but this policy has no outlierDetection: without it unhealthy endpoints are never ejected, so traffic never fails over; add outlierDetection",
            );
        }
    }
}

pub(super) fn vs_fault_abort(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(vs) = o.virtual_service() else {
        return;
    };
    for (i, r) in vs.spec.http.iter().enumerate() {
        let Some(abort) = r.fault.as_ref().and_then(|f| f.abort.as_ref()) else {
            continue;
        };
        if abort.http_status.is_none() && abort.grpc_status.is_none() && abort.http2_error.is_none()
        {
            ctx.at(
                code,
                id,
                &format!("spec.http[{i}].fault.abort"),
                "fault.abort has no httpStatus or grpcStatus, so nothing is injected; set the error to return",
            );
        }
    }
}

pub(super) fn se_warnings(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(se) = o.service_entry() else { return };
    let s = &se.spec;
    if s.effective_resolution() == Resolution::None && s.workload_selector.is_some() {
        ctx.at_key(
            code,
            id,
            "spec.workloadSelector",
            "workloadSelector has no effect with resolution NONE (traffic goes to the original destination); use STATIC to send it to the selected workloads",
        );
    }
    if s.effective_resolution() != Resolution::DynamicDns {
        for (i, h) in s.hosts.iter().enumerate() {
            if h.contains('*') && h != "*" && !h.starts_with("*.") {
                ctx.at(
                    code,
                    id,
                    &format!("spec.hosts[{i}]"),
                    format!(
                        "partial wildcard {h:?} is not supported (only a whole leading label, \"*.\", is); use *.{} or list the hosts",
                        h.split_once('.').map_or(h.as_str(), |(_, parent)| parent)
                    ),
                );
            }
        }
    }
}

pub(super) fn sidecar_egress_hosts(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(sc) = o.sidecar() else { return };
    for (i, l) in sc.spec.egress.iter().enumerate() {
        let mut by_ns: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        for (j, h) in l.hosts.iter().enumerate() {
            let Some((ns, svc)) = h.split_once('/') else {
                continue;
            };
            if ns.starts_with('~') {
                continue;
            }
            let ns = if ns == "." {
                o.namespace().to_string()
            } else {
                ns.to_string()
            };
            let set = by_ns.entry(ns).or_default();
            let duplicate = if svc == "*" {
                !set.is_empty()
            } else {
                set.contains(svc) || set.contains("*")
            };
            if duplicate {
                ctx.at(
                    code,
                    id,
                    &format!("spec.egress[{i}].hosts[{j}]"),
                    format!("egress host {h} repeats or is covered by an earlier entry of this listener; remove it"),
                );
            }
            set.insert(svc);
        }
        if by_ns.get("*").is_some_and(|s| s.contains("*")) && by_ns.len() > 1 {
            ctx.at(
                code,
                id,
                &format!("spec.egress[{i}].hosts"),
                "\"*/*\" already selects every host; the other entries of this listener add nothing",
            );
        }
    }
}
