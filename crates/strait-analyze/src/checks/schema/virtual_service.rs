//! VirtualService rules.

use super::*;

// ---- VirtualService ----

pub(super) fn vs_routes(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(vs) = o.virtual_service() else {
        return;
    };
    let s = &vs.spec;
    if s.http.is_empty() && s.tcp.is_empty() && s.tls.is_empty() {
        ctx.at(
            code,
            id,
            "spec",
            "a VirtualService needs http, tcp or tls rules; Istio rejects one with none",
        );
        return;
    }
    for (i, r) in s.http.iter().enumerate() {
        let p = format!("spec.http[{i}]");
        if r.delegate.is_some() {
            if !r.route.is_empty() || r.redirect.is_some() {
                ctx.at(
                    code,
                    id,
                    &format!("{p}.delegate"),
                    "a rule that delegates cannot also route or redirect; Istio rejects it",
                );
            }
            continue;
        }
        let actions = [
            !r.route.is_empty(),
            r.redirect.is_some(),
            r.direct_response.is_some(),
        ];
        match actions.iter().filter(|a| **a).count() {
            0 => {
                ctx.at(code, id, &p, format!("http rule {i} has no route, redirect or directResponse; Istio rejects it (add a route)"));
            }
            1 => {}
            _ => {
                ctx.at(code, id, &p, format!("http rule {i} sets more than one of route, redirect and directResponse; Istio rejects it (keep one)"));
            }
        }
        if r.mirror.is_some() && !r.mirrors.is_empty() {
            ctx.at_key(code, id, &format!("{p}.mirror"), "mirror and mirrors cannot both be set; Istio rejects it (move the mirror into mirrors)");
        }
    }
}

pub(super) fn vs_delegate(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(vs) = o.virtual_service() else {
        return;
    };
    let s = &vs.spec;
    if !s.hosts.is_empty() {
        return;
    }
    let why = "a VirtualService without hosts is a delegate (only reachable from another VirtualService's http delegate)";
    if !s.gateways.is_empty() {
        ctx.at(
            code,
            id,
            "spec.gateways",
            format!(
                "{why} and cannot bind gateways; Istio rejects it; add hosts, or drop gateways"
            ),
        );
    }
    if !s.tcp.is_empty() {
        ctx.at(
            code,
            id,
            "spec.tcp",
            format!("{why} and cannot have tcp rules; Istio rejects it; add hosts"),
        );
    }
    if !s.tls.is_empty() {
        ctx.at(
            code,
            id,
            "spec.tls",
            format!("{why} and cannot have tls rules; Istio rejects it; add hosts"),
        );
    }
}

pub(super) fn vs_mesh_wildcard(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(vs) = o.virtual_service() else {
        return;
    };
    if !util::binds_mesh(&vs.spec.gateways) {
        return;
    }
    for (i, h) in vs.spec.hosts.iter().enumerate() {
        if h == "*" {
            ctx.at(
                code,
                id,
                &format!("spec.hosts[{i}]"),
                "host \"*\" is not allowed on a VirtualService for the mesh (sidecars); Istio rejects it; name the hosts, or bind it to a gateway only",
            );
        }
    }
}

pub(super) fn vs_weights(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(vs) = o.virtual_service() else {
        return;
    };
    let s = &vs.spec;
    let mut routes: Vec<(String, Vec<Option<i32>>)> = Vec::new();
    for (i, r) in s.http.iter().enumerate() {
        routes.push((
            format!("spec.http[{i}].route"),
            r.route.iter().map(|d| d.weight).collect(),
        ));
    }
    for (i, r) in s.tcp.iter().enumerate() {
        routes.push((
            format!("spec.tcp[{i}].route"),
            r.route.iter().map(|d| d.weight).collect(),
        ));
    }
    for (i, r) in s.tls.iter().enumerate() {
        routes.push((
            format!("spec.tls[{i}].route"),
            r.route.iter().map(|d| d.weight).collect(),
        ));
    }
    for (path, weights) in routes {
        let mut total: i64 = 0;
        for (j, w) in weights.iter().enumerate() {
            let w = w.unwrap_or(0);
            if w < 0 {
                ctx.at(
                    code,
                    id,
                    &format!("{path}[{j}].weight"),
                    format!("weight {w} is negative; Istio rejects it"),
                );
            }
            total += i64::from(w.max(0));
        }
        if weights.len() > 1 && total == 0 {
            ctx.at(
                code,
                id,
                &path,
                format!("{} destinations whose weights add up to 0 (unset counts as 0): Istio rejects a split that sends traffic nowhere; give them weights that add up to 100", weights.len()),
            );
        }
    }
}

/// Every StringMatch of the http matches, with its path and whether `regex: "*"` is allowed
/// (only in withoutHeaders, where it means "header absent").
pub(super) fn string_matches(
    spec: &strait_api::istio::virtual_service::VirtualServiceSpec,
) -> Vec<(String, &StringMatch, bool)> {
    let mut out = Vec::new();
    for (i, r) in spec.http.iter().enumerate() {
        for (j, m) in r.matches.iter().enumerate() {
            let p = format!("spec.http[{i}].match[{j}]");
            for (name, sm) in [
                ("uri", &m.uri),
                ("scheme", &m.scheme),
                ("method", &m.method),
                ("authority", &m.authority),
            ] {
                if let Some(sm) = sm {
                    out.push((format!("{p}.{name}"), sm, false));
                }
            }
            for (field, map, star_ok) in [
                ("headers", &m.headers, false),
                ("queryParams", &m.query_params, false),
                ("withoutHeaders", &m.without_headers, true),
            ] {
                for (k, sm) in map {
                    out.push((format!("{p}.{field}[\"{k}\"]"), sm, star_ok));
                }
            }
        }
    }
    out
}

pub(super) fn vs_string_matches(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(vs) = o.virtual_service() else {
        return;
    };
    for (path, sm, star_ok) in string_matches(&vs.spec) {
        let set = [sm.exact.is_some(), sm.prefix.is_some(), sm.regex.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if set > 1 {
            ctx.at(code, id, &path, "a string match takes one of exact, prefix and regex; the CRD rejects more than one");
            continue;
        }
        if sm.prefix.as_deref() == Some("") {
            ctx.at(
                code,
                id,
                &format!("{path}.prefix"),
                "an empty prefix is rejected by Istio; to match everything, drop the match",
            );
        }
        match sm.regex.as_deref() {
            Some("") => {
                ctx.at(
                    code,
                    id,
                    &format!("{path}.regex"),
                    "an empty regex is rejected by Istio; to match everything, drop the match",
                );
            }
            Some("*") if star_ok => {}
            Some(re) => {
                if let Some(problem) = re2_problem(re) {
                    ctx.at(
                        code,
                        id,
                        &format!("{path}.regex"),
                        format!("regex {re:?} is not valid RE2 ({problem}); Istio rejects it (RE2 has no lookaround or backreferences; a glob like * is written .*)"),
                    );
                }
            }
            None => {}
        }
    }
}

/// A light RE2 syntax check: unbalanced groups and classes, constructs RE2 does not have, and
/// repetition with nothing to repeat. Returns what is wrong.
pub(super) fn vs_retries(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(vs) = o.virtual_service() else {
        return;
    };
    for (i, r) in vs.spec.http.iter().enumerate() {
        let Some(rt) = &r.retries else { continue };
        let p = format!("spec.http[{i}].retries");
        match rt.attempts.unwrap_or(0) {
            n if n < 0 => {
                ctx.at(
                    code,
                    id,
                    &format!("{p}.attempts"),
                    format!("retries.attempts {n} is negative; Istio rejects it"),
                );
            }
            0 if rt.per_try_timeout.is_some()
                || !rt.retry_on.is_empty()
                || rt.retry_remote_localities.is_some() =>
            {
                ctx.at(
                    code,
                    id,
                    &format!("{p}.attempts"),
                    "retries has perTryTimeout, retryOn or retryRemoteLocalities but attempts is 0 (retries off); Istio rejects it; set attempts, or drop the other settings",
                );
            }
            _ => {}
        }
    }
}

pub(super) fn vs_ports(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(vs) = o.virtual_service() else {
        return;
    };
    let s = &vs.spec;
    let mut ports: Vec<(String, u32)> = s
        .destinations()
        .into_iter()
        .filter_map(|(path, d)| {
            d.port
                .as_ref()
                .map(|p| (format!("{path}.port.number"), p.number))
        })
        .collect();
    for (i, r) in s.http.iter().enumerate() {
        for (j, m) in r.matches.iter().enumerate() {
            if let Some(p) = m.port.filter(|p| *p != 0) {
                ports.push((format!("spec.http[{i}].match[{j}].port"), p));
            }
        }
    }
    for (path, n) in ports {
        if !valid_port(n) {
            ctx.at(
                code,
                id,
                &path,
                format!("port {n} is outside 1..65535; Istio rejects it"),
            );
        }
    }
}
