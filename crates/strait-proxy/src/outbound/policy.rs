//! What a route does to a request besides choosing its destination: fault injection, path and
//! authority rewrites, header operations. Pure functions, tested without sockets.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use rand::Rng;
use strait_config::{Fault, HeaderOps, RequestMatch, Rewrite, StrMatch};

use crate::routing::Regexes;

/// The faults drawn for one request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Injected {
    pub delay: Option<Duration>,
    pub abort: Option<StatusCode>,
}

/// Draws delay and abort independently, each with its share of requests.
pub fn roll(fault: Option<&Fault>, rng: &mut impl Rng) -> Injected {
    let Some(f) = fault else {
        return Injected::default();
    };
    let hit = |per_million: u32, rng: &mut dyn rand::RngCore| {
        per_million > 0 && rng.random_range(0..1_000_000) < per_million
    };
    Injected {
        delay: f
            .delay_ms
            .filter(|_| hit(f.delay_per_million, rng))
            .map(Duration::from_millis),
        abort: f
            .abort_status
            .filter(|_| hit(f.abort_per_million, rng))
            .and_then(|s| StatusCode::from_u16(s).ok()),
    }
}

/// Remove, then set (replace), then add (append). Names and values were validated when the
/// configuration was accepted; anything unparsable is skipped.
pub fn apply_headers(h: &mut HeaderMap, ops: &HeaderOps) {
    for name in &ops.remove {
        h.remove(name.as_str());
    }
    let parse = |k: &str, v: &str| {
        Some((
            HeaderName::from_bytes(k.as_bytes()).ok()?,
            HeaderValue::from_str(v).ok()?,
        ))
    };
    for (k, v) in &ops.set {
        if let Some((k, v)) = parse(k, v) {
            h.insert(k, v);
        }
    }
    for (k, v) in &ops.add {
        if let Some((k, v)) = parse(k, v) {
            h.append(k, v);
        }
    }
}

/// Whether `ops` can be applied: valid header names and values.
pub fn validate_headers(ops: &HeaderOps) -> Result<(), String> {
    for name in ops
        .remove
        .iter()
        .chain(ops.set.iter().map(|(k, _)| k))
        .chain(ops.add.iter().map(|(k, _)| k))
    {
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
    }
    for (k, v) in ops.set.iter().chain(&ops.add) {
        HeaderValue::from_str(v).map_err(|_| format!("invalid value for header {k}: {v:?}"))?;
    }
    Ok(())
}

/// The path and query after `rw`. A `uri` rewrite replaces the prefix a prefix match matched,
/// the whole path after an exact or regex match, and, as Envoy does for a route without a path
/// match, the leading `/`; a regex rewrite replaces every match of its pattern.
pub fn rewrite_path(
    path: &str,
    query: Option<&str>,
    rw: &Rewrite,
    matched: Option<&RequestMatch>,
    re: &Regexes,
) -> String {
    let mut new = path.to_string();
    if let Some((pattern, sub)) = &rw.uri_regex {
        if let Some(p) = re.rewrite(pattern, path, sub) {
            new = p;
        }
    } else if !rw.uri.is_empty() {
        let prefix_len = match matched.and_then(|m| m.uri.as_ref()) {
            Some(StrMatch::Prefix(p)) if path.len() >= p.len() => p.len(),
            Some(StrMatch::Exact(_) | StrMatch::Regex(_)) => path.len(),
            // No path match: Envoy's implicit prefix "/".
            _ => 1.min(path.len()),
        };
        new = format!("{}{}", rw.uri, &path[prefix_len..]);
    }
    match query {
        Some(q) => format!("{new}?{q}"),
        None => new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_config::{HttpAction, HttpRule, Retry, RoutePolicy};

    fn prefix(p: &str) -> RequestMatch {
        RequestMatch {
            uri: Some(StrMatch::Prefix(p.into())),
            ..RequestMatch::default()
        }
    }

    fn uri(u: &str) -> Rewrite {
        Rewrite {
            uri: u.into(),
            ..Rewrite::default()
        }
    }

    #[test]
    fn prefix_exact_and_implicit_rewrites() {
        let re = Regexes::default();
        assert_eq!(
            rewrite_path(
                "/old/x",
                Some("a=1"),
                &uri("/new"),
                Some(&prefix("/old")),
                &re
            ),
            "/new/x?a=1"
        );
        let exact = RequestMatch {
            uri: Some(StrMatch::Exact("/hello".into())),
            ..RequestMatch::default()
        };
        assert_eq!(
            rewrite_path("/hello", None, &uri("/v2/hello"), Some(&exact), &re),
            "/v2/hello"
        );
        assert_eq!(
            rewrite_path("/abc", None, &uri("/v2/"), None, &re),
            "/v2/abc"
        );
    }

    #[test]
    fn regex_rewrite_with_groups() {
        let rule = HttpRule {
            name: "r".into(),
            matches: Vec::new(),
            action: HttpAction::Respond {
                status: 200,
                body: String::new(),
            },
            timeout_ms: None,
            retries: Retry::istio_default(),
            policy: RoutePolicy {
                rewrite: Some(Rewrite {
                    uri_regex: Some(("^/service/([^/]+)(/.*)$".into(), "\\2/instance/\\1".into())),
                    ..Rewrite::default()
                }),
                ..RoutePolicy::default()
            },
        };
        let re = Regexes::for_rules([&rule].into_iter()).expect("regexes");
        let rw = rule.policy.rewrite.as_ref().expect("rewrite");
        assert_eq!(
            rewrite_path("/service/foo/v1/api", None, rw, None, &re),
            "/v1/api/instance/foo"
        );
    }

    #[test]
    fn header_operations_in_order() {
        let mut h = HeaderMap::new();
        h.insert("x-old", HeaderValue::from_static("1"));
        h.insert("x-set", HeaderValue::from_static("before"));
        let ops = HeaderOps {
            set: vec![("x-set".into(), "after".into())],
            add: vec![
                ("x-add".into(), "a".into()),
                ("x-set".into(), "more".into()),
            ],
            remove: vec!["x-old".into()],
        };
        validate_headers(&ops).expect("valid");
        apply_headers(&mut h, &ops);
        assert!(h.get("x-old").is_none());
        let set: Vec<_> = h.get_all("x-set").iter().collect();
        assert_eq!(set, ["after", "more"]);
        assert_eq!(h["x-add"], "a");
        let bad = HeaderOps {
            set: vec![("bad name".into(), "x".into())],
            ..HeaderOps::default()
        };
        assert!(validate_headers(&bad).is_err());
    }

    #[test]
    fn faults_follow_their_shares() {
        let mut rng = rand::rng();
        let always = Fault {
            delay_ms: Some(5),
            delay_per_million: 1_000_000,
            abort_status: Some(503),
            abort_per_million: 1_000_000,
        };
        assert_eq!(
            roll(Some(&always), &mut rng),
            Injected {
                delay: Some(Duration::from_millis(5)),
                abort: Some(StatusCode::SERVICE_UNAVAILABLE)
            }
        );
        let never = Fault {
            delay_per_million: 0,
            abort_per_million: 0,
            ..always.clone()
        };
        assert_eq!(roll(Some(&never), &mut rng), Injected::default());
        let half = Fault {
            delay_ms: None,
            abort_per_million: 500_000,
            ..always
        };
        let aborted = (0..10_000)
            .filter(|_| roll(Some(&half), &mut rng).abort.is_some())
            .count();
        assert!((4_000..6_000).contains(&aborted), "{aborted}");
    }
}
