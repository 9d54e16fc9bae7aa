//! Request routing: which rule of a service port a request matches and which weighted cluster
//! it goes to (the endpoint is [`crate::balance`]'s choice). Pure functions over the compiled
//! config, so they are tested without sockets.

use std::collections::HashMap;

use http::HeaderMap;
use rand::Rng;
use regex::Regex;
use strait_config::{HttpRule, RequestMatch, StrMatch, WeightedCluster};

/// The parts of a request rules look at.
#[derive(Debug)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Path without the query.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authority: &'a str,
    pub scheme: &'a str,
    pub headers: &'a HeaderMap,
    /// The claims of the request's verified JWT (a gateway's RequestAuthentication), for
    /// `@request.auth.claims` matches.
    pub claims: Option<&'a crate::jwt::Claims>,
}

/// Regular expressions of a config, compiled once when the config is accepted (an invalid one
/// makes the whole update rejected).
#[derive(Debug, Default)]
pub struct Regexes {
    compiled: HashMap<String, Regex>,
}

impl Regexes {
    /// Compiles every regex the rules use; the error names the first invalid one.
    pub fn for_rules<'a>(rules: impl Iterator<Item = &'a HttpRule>) -> Result<Regexes, String> {
        let mut compiled = HashMap::new();
        for rule in rules {
            if let Some((pattern, _)) = rule
                .policy
                .rewrite
                .as_ref()
                .and_then(|r| r.uri_regex.as_ref())
                && !compiled.contains_key(&rewrite_key(pattern))
            {
                let r = Regex::new(pattern).map_err(|e| {
                    format!("rule {}: invalid rewrite regex {pattern:?}: {e}", rule.name)
                })?;
                compiled.insert(rewrite_key(pattern), r);
            }
            for m in &rule.matches {
                let all = [&m.uri, &m.method, &m.authority, &m.scheme]
                    .into_iter()
                    .flatten()
                    .chain(m.headers.iter().filter_map(|h| h.value.as_ref()))
                    .chain(m.query.iter().map(|(_, v)| v));
                for sm in all {
                    if let StrMatch::Regex(re) = sm
                        && !compiled.contains_key(re)
                    {
                        // RE2 matches the whole value in Istio.
                        let r = Regex::new(&format!("^(?:{re})$")).map_err(|e| {
                            format!("rule {}: invalid regex {re:?}: {e}", rule.name)
                        })?;
                        compiled.insert(re.clone(), r);
                    }
                }
            }
        }
        Ok(Regexes { compiled })
    }

    fn is_match(&self, re: &str, v: &str) -> bool {
        self.compiled.get(re).is_some_and(|r| r.is_match(v))
    }

    /// Replaces every match of rewrite `pattern` in `v` with `substitution` (RE2 / Envoy
    /// `\1` group references). `None` when the pattern was not compiled with the config.
    pub fn rewrite(&self, pattern: &str, v: &str, substitution: &str) -> Option<String> {
        let r = self.compiled.get(&rewrite_key(pattern))?;
        Some(
            r.replace_all(v, go_groups(substitution).as_str())
                .into_owned(),
        )
    }
}

/// Rewrite patterns match anywhere (not anchored like match regexes): a separate key space.
fn rewrite_key(pattern: &str) -> String {
    format!("rewrite\u{0}{pattern}")
}

/// `\1` → `${1}`, and a literal `$` escaped, for the regex crate's replacement syntax.
fn go_groups(sub: &str) -> String {
    let mut out = String::with_capacity(sub.len());
    let mut chars = sub.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    n.push(d);
                    chars.next();
                }
                out.push_str(&format!("${{{n}}}"));
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

fn str_match(m: &StrMatch, v: &str, re: &Regexes, ignore_case: bool) -> bool {
    match m {
        StrMatch::Exact(e) if ignore_case => v.eq_ignore_ascii_case(e),
        StrMatch::Exact(e) => v == e,
        StrMatch::Prefix(p) if ignore_case => {
            v.to_ascii_lowercase().starts_with(&p.to_ascii_lowercase())
        }
        StrMatch::Prefix(p) => v.starts_with(p.as_str()),
        StrMatch::Regex(r) => re.is_match(r, v),
    }
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

/// Whether one match block accepts the request.
pub fn matches(m: &RequestMatch, req: &RequestView<'_>, re: &Regexes) -> bool {
    if let Some(u) = &m.uri
        && !str_match(u, req.path, re, m.ignore_uri_case)
    {
        return false;
    }
    if let Some(x) = &m.method
        && !str_match(x, req.method, re, false)
    {
        return false;
    }
    if let Some(a) = &m.authority
        && !str_match(a, req.authority, re, false)
    {
        return false;
    }
    if let Some(s) = &m.scheme
        && !str_match(s, req.scheme, re, false)
    {
        return false;
    }
    for h in &m.headers {
        let hit = if h.claim.is_empty() {
            let value = req.headers.get(&h.name).and_then(|v| v.to_str().ok());
            match (&h.value, value) {
                (None, v) => v.is_some(),
                (Some(sm), Some(v)) => str_match(sm, v, re, false),
                (Some(_), None) => false,
            }
        } else {
            // A claim holding a list matches when one of its elements does.
            let values = req.claims.map(|c| c.claim(&h.claim)).unwrap_or_default();
            match &h.value {
                None => !values.is_empty(),
                Some(sm) => values.iter().any(|v| str_match(sm, v, re, false)),
            }
        };
        if hit == h.invert {
            return false;
        }
    }
    m.query
        .iter()
        .all(|(k, sm)| query_param(req.query, k).is_some_and(|v| str_match(sm, v, re, false)))
}

/// The first rule any of whose match blocks accepts the request (a rule without match blocks
/// takes everything).
pub fn select_rule<'r>(
    rules: &'r [HttpRule],
    req: &RequestView<'_>,
    re: &Regexes,
) -> Option<&'r HttpRule> {
    select(rules, req, re).map(|(r, _)| r)
}

/// Like [`select_rule`], with the match block that accepted the request (`None` for a rule
/// without match blocks): a prefix rewrite replaces what that block matched.
pub fn select<'r>(
    rules: &'r [HttpRule],
    req: &RequestView<'_>,
    re: &Regexes,
) -> Option<(&'r HttpRule, Option<&'r RequestMatch>)> {
    rules.iter().find_map(|r| {
        if r.matches.is_empty() {
            return Some((r, None));
        }
        r.matches
            .iter()
            .find(|m| matches(m, req, re))
            .map(|m| (r, Some(m)))
    })
}

/// Picks a cluster by weight; zero-weight clusters are never picked.
pub fn pick_weighted<'w>(
    ws: &'w [WeightedCluster],
    rng: &mut impl Rng,
) -> Option<&'w WeightedCluster> {
    let total: u64 = ws.iter().map(|w| u64::from(w.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut n = rng.random_range(0..total);
    for w in ws {
        let wt = u64::from(w.weight);
        if n < wt {
            return Some(w);
        }
        n -= wt;
    }
    None
}

#[cfg(test)]
mod tests;
