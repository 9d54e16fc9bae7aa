//! DestinationRule rules.

use super::*;

// ---- DestinationRule ----

pub(super) fn dr_host_and_subsets(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(dr) = o.destination_rule() else {
        return;
    };
    let s = &dr.spec;
    if s.host.is_empty() {
        ctx.at(
            code,
            id,
            "spec.host",
            "a DestinationRule needs a host; Istio rejects one without",
        );
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, sub) in s.subsets.iter().enumerate() {
        let p = format!("spec.subsets[{i}]");
        if sub.name.is_empty() {
            ctx.at(
                code,
                id,
                &p,
                format!("subset {i} has no name; Istio rejects it"),
            );
        } else if !istio_label(&sub.name) {
            ctx.at(
                code,
                id,
                &format!("{p}.name"),
                format!("subset name {:?} is not a DNS label (letters, digits and '-'); Istio rejects it", sub.name),
            );
        } else if let Some(first) = seen.insert(&sub.name, i) {
            ctx.at(code, id, &format!("{p}.name"), format!("subset {} is already defined at subsets[{first}]; Istio rejects duplicate names", sub.name));
        }
    }
    for (p, tp) in s.traffic_policies() {
        let empty = tp.load_balancer.is_none()
            && tp.connection_pool.is_none()
            && tp.outlier_detection.is_none()
            && tp.tls.is_none()
            && tp.port_level_settings.is_empty()
            && tp.tunnel.is_none()
            && tp.proxy_protocol.is_none()
            && tp.retry_budget.is_none();
        if empty {
            ctx.at(
                code,
                id,
                &p,
                "an empty trafficPolicy is rejected by Istio; remove it or set a field",
            );
        }
        for (j, pl) in tp.port_level_settings.iter().enumerate() {
            let pp = format!("{p}.portLevelSettings[{j}]");
            match pl.port.as_ref() {
                None => {
                    ctx.at(
                        code,
                        id,
                        &pp,
                        "a port-level setting needs port.number; Istio rejects it",
                    );
                }
                Some(port) if !valid_port(port.number) => {
                    ctx.at(
                        code,
                        id,
                        &format!("{pp}.port.number"),
                        format!("port {} is outside 1..65535; Istio rejects it", port.number),
                    );
                }
                _ => {}
            }
            if pl.load_balancer.is_none()
                && pl.connection_pool.is_none()
                && pl.outlier_detection.is_none()
                && pl.tls.is_none()
            {
                ctx.at(
                    code,
                    id,
                    &pp,
                    "a port-level setting with nothing but a port is rejected by Istio",
                );
            }
            if let Some(tls) = &pl.tls {
                client_tls_errors(ctx, id, code, &format!("{pp}.tls"), tls);
            }
        }
        if let Some(tls) = &tp.tls {
            client_tls_errors(ctx, id, code, &format!("{p}.tls"), tls);
        }
    }
}

pub(super) fn client_tls_errors(
    ctx: &mut Ctx,
    id: ObjId,
    code: &'static Code,
    p: &str,
    tls: &strait_api::istio::destination_rule::ClientTlsSettings,
) {
    let mode = tls.mode.unwrap_or(ClientTlsMode::Disable);
    if !matches!(mode, ClientTlsMode::Simple | ClientTlsMode::Mutual) {
        return;
    }
    if !tls.credential_name.is_empty() {
        if !tls.client_certificate.is_empty()
            || !tls.private_key.is_empty()
            || !tls.ca_certificates.is_empty()
            || !tls.ca_crl.is_empty()
        {
            ctx.at(
                code,
                id,
                &format!("{p}.credentialName"),
                "with credentialName, the certificates come from the Secret: clientCertificate, privateKey, caCertificates and caCrl must not be set; Istio rejects it",
            );
        }
        return;
    }
    if mode == ClientTlsMode::Mutual
        && (tls.client_certificate.is_empty() || tls.private_key.is_empty())
    {
        ctx.at(
            code,
            id,
            &format!("{p}.mode"),
            "MUTUAL without credentialName needs clientCertificate and privateKey; Istio rejects it; set credentialName to a Secret, or both files",
        );
    }
}

pub(super) fn dr_outlier(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(dr) = o.destination_rule() else {
        return;
    };
    for (p, tp) in dr.spec.traffic_policies() {
        let mut ods = vec![(
            format!("{p}.outlierDetection"),
            tp.outlier_detection.as_ref(),
        )];
        for (j, pl) in tp.port_level_settings.iter().enumerate() {
            ods.push((
                format!("{p}.portLevelSettings[{j}].outlierDetection"),
                pl.outlier_detection.as_ref(),
            ));
        }
        for (op, od) in ods {
            let Some(od) = od else { continue };
            if !od.split_external_local_origin_errors
                && od.consecutive_local_origin_failures.unwrap_or(0) > 0
            {
                ctx.at(
                    code,
                    id,
                    &format!("{op}.consecutiveLocalOriginFailures"),
                    "consecutiveLocalOriginFailures only counts when splitExternalLocalOriginErrors is true; Istio rejects it otherwise",
                );
            }
            for (name, v) in [
                ("maxEjectionPercent", od.max_ejection_percent),
                ("minHealthPercent", od.min_health_percent),
            ] {
                if let Some(v) = v.filter(|v| !(0..=100).contains(v)) {
                    ctx.at(
                        code,
                        id,
                        &format!("{op}.{name}"),
                        format!("{name} {v} is outside 0..100; Istio rejects it"),
                    );
                }
            }
        }
    }
}

pub(super) fn dr_selector_export(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(dr) = o.destination_rule() else {
        return;
    };
    if dr.spec.workload_selector.is_none() || dr.spec.export_to.is_empty() {
        return;
    }
    let own = o.namespace();
    let beyond = match ExportTo::parse(&dr.spec.export_to, own, true) {
        ExportTo::All => true,
        ExportTo::Namespaces(list) => list.iter().any(|n| n != own),
    };
    if beyond {
        ctx.at(
            code,
            id,
            "spec.exportTo",
            format!("a DestinationRule with workloadSelector applies only to its own namespace; Istio rejects exportTo beyond {own} (use \".\")"),
        );
    }
}
