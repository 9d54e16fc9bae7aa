//! Whether one prepared rule matches one request or connection.
//!
//! Every attribute is looked at as a list of strings (one for a path, several for a repeated
//! header or a list claim, none when absent) so that one reading serves every field: a
//! positive field holds when some value matches some pattern, a `not_` field when none does.
//! An absent attribute therefore fails positive fields and satisfies `not_` fields, which is
//! what Istio's generated matchers do without mTLS or without a JWT.

use std::borrow::Cow;
use std::net::IpAddr;

use strait_config::{ConditionKey, OperationMatch, SourceMatch, StringMatch};

use super::prepare::{Condition, IpKey, Rule, SourceIps};
use super::{Attributes, HttpAttributes};

/// What an action does with the parts of a rule it cannot check (see `prepare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// ALLOW: such a rule never matches.
    Allow,
    /// DENY and AUDIT: such parts hold.
    Deny,
}

/// The request's attributes, with the peer identity taken apart once.
#[derive(Debug)]
pub(super) struct Facts<'a> {
    req: Attributes<'a>,
    /// The SPIFFE ID without `spiffe://`; None without mTLS.
    principal: Option<&'a str>,
    namespace: Option<&'a str>,
    /// The service account name; with the namespace, `<ns>/<sa>`.
    sa: Option<&'a str>,
}

impl<'a> Facts<'a> {
    pub fn new(req: &Attributes<'a>) -> Facts<'a> {
        let principal = req
            .principal
            .map(|p| p.strip_prefix("spiffe://").unwrap_or(p))
            .filter(|p| !p.is_empty());
        let (namespace, sa) = principal.map_or((None, None), identity);
        Facts {
            req: *req,
            principal,
            namespace,
            sa,
        }
    }

    /// `<ns>/<sa>`, built only for the rules that name service accounts.
    fn service_account(&self) -> Option<String> {
        self.namespace
            .zip(self.sa)
            .map(|(ns, sa)| format!("{ns}/{sa}"))
    }

    fn http(&self) -> Option<&HttpAttributes<'a>> {
        self.req.http.as_ref()
    }
}

/// Namespace and service account of `<trust-domain>/ns/<ns>/sa/<sa>`.
fn identity(p: &str) -> (Option<&str>, Option<&str>) {
    let mut seg = p.split('/').skip(1);
    let ns = match (seg.next(), seg.next()) {
        (Some("ns"), Some(ns)) if !ns.is_empty() => ns,
        _ => return (None, None),
    };
    let sa = match (seg.next(), seg.next(), seg.next()) {
        (Some("sa"), Some(sa), None) if !sa.is_empty() => Some(sa),
        _ => None,
    };
    (Some(ns), sa)
}

pub(super) fn rule(r: &Rule, f: &Facts<'_>, mode: Mode) -> bool {
    if mode == Mode::Allow && (r.defective || (r.needs_http && f.http().is_none())) {
        return false;
    }
    (r.from.is_empty()
        || r.from
            .iter()
            .zip(&r.from_ips)
            .any(|(s, ips)| source(s, ips, f)))
        && (r.to.is_empty() || r.to.iter().any(|o| operation(o, f)))
        && r.when.iter().all(|c| condition(c, f))
}

fn source(s: &SourceMatch, ips: &SourceIps, f: &Facts<'_>) -> bool {
    let src = f.req.source_ip;
    let remote = f.req.remote_ip;
    holds(&s.principals, &s.not_principals, f.principal)
        && holds(&s.namespaces, &s.not_namespaces, f.namespace)
        && ((s.service_accounts.is_empty() && s.not_service_accounts.is_empty())
            || holds(
                &s.service_accounts,
                &s.not_service_accounts,
                f.service_account().as_deref(),
            ))
        // HTTP-only: on TCP only a DENY/AUDIT rule gets here, and the field holds.
        && f.http().is_none_or(|h| {
            holds(
                &s.request_principals,
                &s.not_request_principals,
                h.auth.map(|a| a.principal),
            )
        })
        && ips.ip.holds(src, true)
        && ips.not_ip.holds(src, false)
        && ips.remote.holds(remote, true)
        && ips.not_remote.holds(remote, false)
}

fn operation(o: &OperationMatch, f: &Facts<'_>) -> bool {
    let port = u32::from(f.req.destination.port());
    (o.ports.is_empty() || o.ports.contains(&port))
        && !o.not_ports.contains(&port)
        && f.http().is_none_or(|h| {
            holds_with(
                &o.hosts,
                &o.not_hosts,
                Some(without_port(h.host)),
                matches_ignore_case,
            ) && holds(&o.methods, &o.not_methods, Some(h.method))
                && holds(&o.paths, &o.not_paths, h.path.split('?').next())
        })
}

fn condition(c: &Condition, f: &Facts<'_>) -> bool {
    match c {
        Condition::Ip {
            which,
            values,
            not_values,
        } => {
            let ip = match which {
                IpKey::Source => f.req.source_ip,
                IpKey::Remote => f.req.remote_ip,
                IpKey::Destination => f.req.destination.ip(),
            };
            values.holds(ip, true) && not_values.holds(ip, false)
        }
        Condition::Port { values, not_values } => {
            let port = f.req.destination.port();
            // An invalid list (None) only reaches here in DENY/AUDIT, where it holds.
            values
                .as_ref()
                .is_none_or(|v| v.is_empty() || v.contains(&port))
                && not_values.as_ref().is_none_or(|v| !v.contains(&port))
        }
        Condition::Strings {
            key,
            values,
            not_values,
        } => match strings(key, f) {
            Some(v) => holds(values, not_values, v.iter().map(|s| s.as_ref())),
            None => true,
        },
    }
}

/// The values of a string-valued `when` key; None for an HTTP-only key on a TCP connection
/// (only a DENY/AUDIT rule gets that far, and there the condition holds).
fn strings<'a>(key: &ConditionKey, f: &'a Facts<'_>) -> Option<Vec<Cow<'a, str>>> {
    let owned = |v: Option<String>| v.map(Cow::Owned).into_iter().collect::<Vec<_>>();
    let one = |v: Option<&'a str>| v.map(Cow::Borrowed).into_iter().collect::<Vec<_>>();
    let text = |ip: IpAddr| vec![Cow::Owned(ip.to_string())];
    if key.http_only() && f.http().is_none() {
        return None;
    }
    let http = f.http();
    let auth = http.and_then(|h| h.auth);
    Some(match key {
        ConditionKey::RequestHeader(name) => http.map_or_else(Vec::new, |h| {
            h.headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
                .map(Cow::Borrowed)
                .collect()
        }),
        ConditionKey::SourcePrincipal => one(f.principal),
        ConditionKey::SourceNamespace => one(f.namespace),
        ConditionKey::SourceServiceAccount => owned(f.service_account()),
        ConditionKey::RequestAuthPrincipal => one(auth.map(|a| a.principal)),
        ConditionKey::RequestAuthPresenter => one(auth.and_then(|a| a.presenter)),
        ConditionKey::RequestAuthAudiences => auth.map_or_else(Vec::new, |a| {
            a.audiences
                .iter()
                .map(|s| Cow::Borrowed(s.as_str()))
                .collect()
        }),
        ConditionKey::RequestAuthClaim(path) => {
            auth.map_or_else(Vec::new, |a| claim(a.claims, path))
        }
        ConditionKey::ConnectionSni => one(f.req.sni),
        // Typed by `prepare`; read as text should one ever arrive here.
        ConditionKey::SourceIp => text(f.req.source_ip),
        ConditionKey::RemoteIp => text(f.req.remote_ip),
        ConditionKey::DestinationIp => text(f.req.destination.ip()),
        ConditionKey::DestinationPort => vec![Cow::Owned(f.req.destination.port().to_string())],
    })
}

/// `request.auth.claims[a][b]`: objects are walked by name; the claim found is read as
/// Envoy's metadata matcher reads it: a string as itself, a list as its string elements, a
/// number or boolean as its text. Anything else (an object, null, a missing name) is absent.
pub(super) fn claim<'v>(claims: &'v serde_json::Value, path: &[String]) -> Vec<Cow<'v, str>> {
    use serde_json::Value;
    if path.is_empty() {
        return Vec::new();
    }
    let mut v = claims;
    for name in path {
        match v.as_object().and_then(|o| o.get(name)) {
            Some(next) => v = next,
            None => return Vec::new(),
        }
    }
    match v {
        Value::String(s) => vec![Cow::Borrowed(s.as_str())],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(Cow::Borrowed)
            .collect(),
        Value::Number(n) => vec![Cow::Owned(n.to_string())],
        Value::Bool(b) => vec![Cow::Owned(b.to_string())],
        Value::Null | Value::Object(_) => Vec::new(),
    }
}

/// The authority without its port: `a.b:80` → `a.b`, `[::1]:80` → `[::1]`; a bare IPv6
/// address is left whole.
pub(super) fn without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn holds<'v>(
    yes: &[StringMatch],
    no: &[StringMatch],
    values: impl IntoIterator<Item = &'v str, IntoIter: Clone>,
) -> bool {
    holds_with(yes, no, values, StringMatch::matches)
}

/// A positive field holds when some value matches some pattern (or it is empty); a `not_`
/// field when no value matches any of its patterns.
fn holds_with<'v>(
    yes: &[StringMatch],
    no: &[StringMatch],
    values: impl IntoIterator<Item = &'v str, IntoIter: Clone>,
    m: fn(&StringMatch, &str) -> bool,
) -> bool {
    let values = values.into_iter();
    (yes.is_empty() || values.clone().any(|v| yes.iter().any(|p| m(p, v))))
        && (no.is_empty() || !values.into_iter().any(|v| no.iter().any(|p| m(p, v))))
}

/// Istio matches hosts ignoring case (ASCII, as host names are).
fn matches_ignore_case(m: &StringMatch, v: &str) -> bool {
    let v = v.as_bytes();
    match m {
        StringMatch::Exact(e) => v.eq_ignore_ascii_case(e.as_bytes()),
        StringMatch::Prefix(p) => v
            .get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes())),
        StringMatch::Suffix(s) => v
            .len()
            .checked_sub(s.len())
            .and_then(|i| v.get(i..))
            .is_some_and(|t| t.eq_ignore_ascii_case(s.as_bytes())),
        StringMatch::Presence => !v.is_empty(),
    }
}
