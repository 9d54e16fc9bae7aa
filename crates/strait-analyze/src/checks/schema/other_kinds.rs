//! ServiceEntry, Sidecar, AuthorizationPolicy and EnvoyFilter rules.

use super::*;

// ---- ServiceEntry ----

pub(super) fn se_rules(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(se) = o.service_entry() else { return };
    let s = &se.spec;
    if s.hosts.is_empty() {
        ctx.at(
            code,
            id,
            "spec",
            "a ServiceEntry needs at least one host; Istio rejects one without",
        );
    }
    for (i, h) in s.hosts.iter().enumerate() {
        if h == "*" {
            ctx.at(code, id, &format!("spec.hosts[{i}]"), "host \"*\" is not allowed in a ServiceEntry; Istio rejects it (use a domain wildcard like *.example.com)");
        }
    }
    if s.workload_selector.is_some() && !s.endpoints.is_empty() {
        ctx.at_key(
            code,
            id,
            "spec.workloadSelector",
            "a ServiceEntry takes endpoints or a workloadSelector, not both; Istio rejects it",
        );
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut numbers: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, p) in s.ports.iter().enumerate() {
        let pp = format!("spec.ports[{i}]");
        if !valid_port(p.number) {
            ctx.at(
                code,
                id,
                &format!("{pp}.number"),
                format!("port {} is outside 1..65535; Istio rejects it", p.number),
            );
        } else if let Some(first) = numbers.insert(p.number, i) {
            ctx.at(
                code,
                id,
                &format!("{pp}.number"),
                format!(
                    "port {} is already defined at ports[{first}]; Istio rejects duplicates",
                    p.number
                ),
            );
        }
        if !istio_label(&p.name) {
            ctx.at(
                code,
                id,
                &format!("{pp}.name"),
                format!(
                    "port name {:?} is not a DNS label (letters, digits and '-'); Istio rejects it",
                    p.name
                ),
            );
        } else if let Some(first) = names.insert(&p.name, i) {
            ctx.at(
                code,
                id,
                &format!("{pp}.name"),
                format!(
                    "port name {:?} is already used at ports[{first}]; Istio rejects duplicates",
                    p.name
                ),
            );
        }
        if !p.protocol.is_empty() && Protocol::parse(&p.protocol) == Protocol::Unsupported {
            ctx.at(code, id, &format!("{pp}.protocol"), format!("protocol {:?} is not one Istio knows (HTTP, HTTPS, HTTP2, GRPC, TLS, TCP, ...); Istio rejects it", p.protocol));
        }
    }
    let resolution = s.effective_resolution();
    match resolution {
        Resolution::None if !s.endpoints.is_empty() => {
            ctx.at_key(code, id, "spec.endpoints", "resolution NONE forwards to the original destination and takes no endpoints; Istio rejects it (use STATIC)");
        }
        Resolution::DnsRoundRobin if s.endpoints.len() > 1 => {
            ctx.at_key(code, id, "spec.endpoints", "resolution DNS_ROUND_ROBIN takes at most one endpoint; Istio rejects more (use DNS)");
        }
        _ => {}
    }
    if matches!(
        resolution,
        Resolution::Dns | Resolution::DnsRoundRobin | Resolution::DynamicDns
    ) && let Some(i) = s.addresses.iter().position(|a| a.contains('/'))
    {
        ctx.at(code, id, &format!("spec.addresses[{i}]"), "CIDR addresses are only allowed with resolution NONE or STATIC; Istio rejects them here");
    }
    if resolution != Resolution::None && s.hosts.len() > 1 {
        let opaque = s.ports.iter().position(|p| {
            let proto = Protocol::parse(&p.protocol);
            !proto.is_http() && !proto.is_tls()
        });
        if let Some(i) = opaque {
            ctx.at(
                code,
                id,
                &format!("spec.ports[{i}].protocol"),
                "several hosts share a port that is neither HTTP nor TLS: a proxy cannot tell them apart; Istio rejects it unless resolution is NONE (split the entry per host)",
            );
        }
    }
}

// ---- Sidecar ----

pub(super) fn sidecar_rules(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(sc) = o.sidecar() else { return };
    let s = &sc.spec;
    if s.ingress.is_empty()
        && s.egress.is_empty()
        && s.outbound_traffic_policy.is_none()
        && s.inbound_connection_pool.is_none()
    {
        ctx.at(code, id, "spec", "a Sidecar with no ingress, egress, outboundTrafficPolicy or inboundConnectionPool is rejected by Istio");
        return;
    }
    for (i, l) in s.ingress.iter().enumerate() {
        match &l.port {
            None => {
                ctx.at(
                    code,
                    id,
                    &format!("spec.ingress[{i}]"),
                    "an ingress listener needs a port; Istio rejects it",
                );
            }
            Some(p) if !valid_port(p.number) => {
                ctx.at(
                    code,
                    id,
                    &format!("spec.ingress[{i}].port.number"),
                    format!("port {} is outside 1..65535; Istio rejects it", p.number),
                );
            }
            _ => {}
        }
    }
    let last = s.egress.len().saturating_sub(1);
    for (i, l) in s.egress.iter().enumerate() {
        let p = format!("spec.egress[{i}]");
        if l.hosts.is_empty() {
            ctx.at(code, id, &p, "an egress listener needs hosts (e.g. \"./*\" and \"istio-system/*\"); Istio rejects it");
        }
        for (j, h) in l.hosts.iter().enumerate() {
            if !h
                .split_once('/')
                .is_some_and(|(ns, name)| !ns.is_empty() && !name.is_empty())
            {
                ctx.at(
                    code,
                    id,
                    &format!("{p}.hosts[{j}]"),
                    format!("egress host {h:?} is not namespace/dnsName (e.g. \"./{h}\" or \"*/{h}\"); Istio rejects it"),
                );
            }
        }
        match &l.port {
            None if i != last => {
                ctx.at(code, id, &p, "the egress listener without a port catches everything and must be the last one; Istio rejects it elsewhere");
            }
            Some(port) if port.number == 0 && !l.bind.starts_with("unix://") => {
                ctx.at(
                    code,
                    id,
                    &format!("{p}.port.number"),
                    "port 0 is only allowed with a unix:// bind; Istio rejects it",
                );
            }
            Some(port) if port.number > 65535 => {
                ctx.at(
                    code,
                    id,
                    &format!("{p}.port.number"),
                    format!("port {} is outside 1..65535; Istio rejects it", port.number),
                );
            }
            _ => {}
        }
    }
}

// ---- AuthorizationPolicy ----

pub(super) fn ap_actions(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(ap) = o.authorization_policy() else {
        return;
    };
    let s = &ap.spec;
    let provider = s.provider.as_ref();
    match s.action {
        Some(AuthorizationAction::Custom) => {
            if s.rules.is_empty() {
                ctx.at(code, id, "spec.action", "CUSTOM without rules never triggers; Istio rejects it (add rules, or an empty rule {} to check every request)");
            } else if provider.is_none_or(|p| p.name.is_empty()) {
                ctx.at(code, id, "spec.action", "CUSTOM needs provider.name (an extension provider from mesh config); Istio rejects it without");
            }
        }
        Some(AuthorizationAction::Deny) if s.rules.is_empty() => {
            ctx.at(code, id, "spec.action", "DENY without rules never triggers; Istio rejects it (add rules, or an empty rule {} to deny everything)");
        }
        _ => {}
    }
    if provider.is_some() && s.action != Some(AuthorizationAction::Custom) {
        ctx.at_key(
            code,
            id,
            "spec.provider",
            "provider only goes with action CUSTOM; Istio rejects it with any other action",
        );
    }
}

// ---- EnvoyFilter ----

pub(super) fn ef_patches(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(ef) = o.envoy_filter() else { return };
    for (i, cp) in ef.spec.config_patches.iter().enumerate() {
        let p = format!("spec.configPatches[{i}]");
        if cp.matches.as_ref().and_then(|m| m.context)
            == Some(strait_api::istio::envoy_filter::PatchContext::Waypoint)
        {
            continue;
        }
        let missing = if cp
            .apply_to
            .is_none_or(|a| a == strait_api::istio::envoy_filter::ApplyTo::Invalid)
        {
            Some(("", "applyTo"))
        } else {
            match &cp.patch {
                None => Some(("", "patch")),
                Some(pt) => match pt.operation {
                    None | Some(Operation::Invalid) => Some((".patch", "patch.operation")),
                    Some(op) if op != Operation::Remove && pt.value.is_none() => {
                        Some((".patch", "patch.value (only REMOVE goes without one)"))
                    }
                    _ => None,
                },
            }
        };
        if let Some((at, what)) = missing {
            ctx.at(
                code,
                id,
                &format!("{p}{at}"),
                format!("config patch {i} has no {what}; Istio rejects it"),
            );
        }
    }
}
