//! IST0130 / IST0131: rules and matches that earlier ones shadow, for `http`, `tcp` and `tls`
//! routes (Istio runs this inside its VirtualService validation,
//! `analyzeUnreachable{HTTP,TCP,TLS}Rules` in `pkg/config/validation/validation.go`), and
//! STR0201: timeouts that end before the retries can run.

use std::collections::BTreeMap;

use strait_api::istio::virtual_service::{HttpMatchRequest, StringMatch, VirtualServiceSpec};
use strait_model::ObjId;

use crate::catalog::{IST0130, IST0131, STR0201};
use crate::context::Ctx;

pub(super) fn check(ctx: &mut Ctx, id: ObjId, spec: &VirtualServiceSpec) {
    let http: Vec<Vec<String>> = spec
        .http
        .iter()
        .map(|r| r.matches.iter().map(http_key).collect())
        .collect();
    let kept = shadowed(ctx, id, "http", &http);
    check_prefix_overlaps(ctx, id, spec, &kept);
    let tcp: Vec<Vec<String>> = spec
        .tcp
        .iter()
        .map(|r| r.matches.iter().map(|m| format!("{m:?}")).collect())
        .collect();
    shadowed(ctx, id, "tcp", &tcp);
    let tls: Vec<Vec<String>> = spec
        .tls
        .iter()
        .map(|r| r.matches.iter().map(|m| format!("{m:?}")).collect())
        .collect();
    shadowed(ctx, id, "tls", &tls);
    check_timeouts(ctx, id, spec);
}

/// A comparable form of an HTTP match, ignoring its name (Istio ignores it too; the stats
/// prefix does not change what the match selects either).
fn http_key(m: &HttpMatchRequest) -> String {
    let mut m = m.clone();
    m.name.clear();
    m.stat_prefix.clear();
    format!("{m:?}")
}

/// Reports rules after a match-less rule, and matches equal to an earlier one (in an earlier
/// rule or earlier in the same list). `rules[i]` holds the comparable keys of rule i's
/// matches. Returns the (rule, match) pairs still effective, in order.
fn shadowed(ctx: &mut Ctx, id: ObjId, kind: &str, rules: &[Vec<String>]) -> Vec<(usize, usize)> {
    let label = if kind == "http" {
        String::new()
    } else {
        format!("{kind} ")
    };
    let mut kept = Vec::new();
    let mut catch_all: Option<usize> = None;
    let mut seen: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, keys) in rules.iter().enumerate() {
        if let Some(prev) = catch_all {
            ctx.at(
                IST0130,
                id,
                &format!("spec.{kind}[{i}]"),
                format!("{label}rule {i} can never match: rule {prev} before it has no match and takes every request"),
            );
            continue;
        }
        if keys.is_empty() {
            catch_all = Some(i);
            continue;
        }
        let mut duplicates = 0;
        for (j, key) in keys.iter().enumerate() {
            if let Some((pi, pj)) = seen.get(key.as_str()) {
                duplicates += 1;
                let which = if *pi == i {
                    format!("match {pj} of the same rule")
                } else {
                    format!("match {pj} of rule {pi}")
                };
                ctx.at(
                    IST0131,
                    id,
                    &format!("spec.{kind}[{i}].match[{j}]"),
                    format!("this match repeats {which} and never applies"),
                );
            } else {
                seen.insert(key, (i, j));
                kept.push((i, j));
            }
        }
        if duplicates == keys.len() {
            ctx.at(
                IST0130,
                id,
                &format!("spec.{kind}[{i}]"),
                format!("{label}rule {i} can never match: every one of its matches is taken by an earlier rule"),
            );
        }
    }
    kept
}

/// IST0131 for URI prefix matches an earlier prefix match covers (`/api` before `/api/v1`
/// with the same other conditions). Istio compares method, authority, port, headers, query
/// parameters and withoutHeaders; where its comparison would call a narrower earlier match
/// covering (an earlier `authority` restriction, say), strait stays silent, so a report
/// here always means the later match is dead.
fn check_prefix_overlaps(
    ctx: &mut Ctx,
    id: ObjId,
    spec: &VirtualServiceSpec,
    kept: &[(usize, usize)],
) {
    let prefixed: Vec<(usize, usize, &HttpMatchRequest, &str)> = kept
        .iter()
        .filter_map(|&(i, j)| {
            let m = spec.http.get(i)?.matches.get(j)?;
            let p = m.uri.as_ref()?.prefix.as_deref()?;
            (!p.is_empty()).then_some((i, j, m, p))
        })
        .collect();
    for (b_idx, (bi, bj, b, bp)) in prefixed.iter().enumerate() {
        let cover = prefixed[..b_idx]
            .iter()
            .find(|(_, _, a, ap)| ap != bp && bp.starts_with(ap) && covers(a, b));
        if let Some((ai, aj, _, ap)) = cover {
            let which = if ai == bi {
                format!("match {aj} of the same rule")
            } else {
                format!("match {aj} of rule {ai}")
            };
            ctx.at(
                IST0131,
                id,
                &format!("spec.http[{bi}].match[{bj}]"),
                format!("this match never applies: {which} (prefix \"{ap}\", same other conditions) takes every request it would match (prefix \"{bp}\")"),
            );
        }
    }
}

/// Whether every request `b` matches (apart from its URI prefix, checked by the caller) is
/// also matched by `a`.
fn covers(a: &HttpMatchRequest, b: &HttpMatchRequest) -> bool {
    let method = |m: &HttpMatchRequest| {
        let v = istio_value(m.method.as_ref());
        if v.is_empty() { "exact:GET".into() } else { v }
    };
    let istio_ok = |x: String, y: String| x == y || x.starts_with(&y);
    a.port == b.port
        && istio_ok(method(a), method(b))
        && string_covers(a.method.as_ref(), b.method.as_ref())
        && istio_ok(
            istio_value(a.authority.as_ref()),
            istio_value(b.authority.as_ref()),
        )
        && string_covers(a.authority.as_ref(), b.authority.as_ref())
        && same_keys(&a.headers, &b.headers, |x, y| x == y)
        && same_keys(&a.query_params, &b.query_params, |x, y| x == y)
        // A request b lets through lacks every header b excludes; `a` must exclude no more.
        && same_keys(&a.without_headers, &b.without_headers, |x, y| {
            string_covers(Some(y), Some(x))
        })
        // Fields Istio's comparison leaves out: `a` must not restrict them further than `b`.
        && (a.scheme.is_none() || a.scheme == b.scheme)
        && (a.ignore_uri_case || !b.ignore_uri_case)
        && a.source_labels.iter().all(|(k, v)| b.source_labels.get(k) == Some(v))
        && (a.gateways.is_empty() || a.gateways == b.gateways)
        && (a.source_namespace.is_empty() || a.source_namespace == b.source_namespace)
}

/// Istio's flattening of a string match for the overlap check: `exact:v`, `prefix:v`, or
/// empty (regex, or unset).
fn istio_value(m: Option<&StringMatch>) -> String {
    match m {
        Some(StringMatch { exact: Some(e), .. }) if !e.is_empty() => format!("exact:{e}"),
        Some(StringMatch {
            prefix: Some(p), ..
        }) if !p.is_empty() => format!("prefix:{p}"),
        _ => String::new(),
    }
}

/// Whether string match `a` accepts every value `b` accepts (unset accepts everything).
fn string_covers(a: Option<&StringMatch>, b: Option<&StringMatch>) -> bool {
    let Some(a) = a else { return true };
    let Some(b) = b else { return false };
    if a == b {
        return true;
    }
    match (&a.prefix, &b.exact, &b.prefix) {
        (Some(p), Some(v), _) | (Some(p), None, Some(v)) => {
            a.exact.is_none() && v.starts_with(p.as_str())
        }
        _ => false,
    }
}

/// Both maps have the same keys and `ok` holds for each pair of values.
fn same_keys(
    a: &BTreeMap<String, StringMatch>,
    b: &BTreeMap<String, StringMatch>,
    ok: impl Fn(&StringMatch, &StringMatch) -> bool,
) -> bool {
    a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| ok(x, y)))
}

fn check_timeouts(ctx: &mut Ctx, id: ObjId, spec: &VirtualServiceSpec) {
    for (i, r) in spec.http.iter().enumerate() {
        let (Some(timeout), Some(retries)) = (r.timeout, r.retries.as_ref()) else {
            continue;
        };
        let attempts = retries.attempts.unwrap_or(0);
        let Some(per_try) = retries.per_try_timeout else {
            continue;
        };
        if attempts <= 0 || timeout.as_millis() == 0 {
            continue;
        }
        let budget = per_try.as_millis() * u128::from(attempts as u32);
        if per_try.as_millis() >= timeout.as_millis() {
            ctx.at(
                STR0201,
                id,
                &format!("spec.http[{i}].timeout"),
                format!("timeout {timeout} is not longer than perTryTimeout {per_try}: the first attempt uses the whole budget and the {attempts} retries never run"),
            );
        } else if budget > timeout.as_millis() {
            let fit = timeout.as_millis() / per_try.as_millis().max(1);
            ctx.at(
                STR0201,
                id,
                &format!("spec.http[{i}].timeout"),
                format!("timeout {timeout} ends before {attempts} attempts of {per_try} ({}ms) can run; at most {fit} will", budget),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm(exact: Option<&str>, prefix: Option<&str>) -> StringMatch {
        StringMatch {
            exact: exact.map(str::to_string),
            prefix: prefix.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn string_match_coverage() {
        let any = None;
        assert!(string_covers(any, Some(&sm(Some("GET"), None))));
        assert!(!string_covers(Some(&sm(Some("GET"), None)), any));
        assert!(string_covers(
            Some(&sm(None, Some("G"))),
            Some(&sm(Some("GET"), None))
        ));
        assert!(!string_covers(
            Some(&sm(None, Some("GE"))),
            Some(&sm(None, Some("G")))
        ));
    }

    #[test]
    fn an_earlier_narrower_authority_does_not_cover() {
        let a = HttpMatchRequest {
            authority: Some(sm(Some("cdn.example.com"), None)),
            ..Default::default()
        };
        let b = HttpMatchRequest::default();
        assert!(!covers(&a, &b));
        assert!(covers(&b, &b));
    }
}
