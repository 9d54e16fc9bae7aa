//! Compiled policies turned into what a check reads: CIDRs and ports parsed once per
//! configuration, and each rule marked with what decides it before any field is looked at.
//!
//! Two marks exist because Istio treats the same defect differently by action. A rule that
//! cannot be checked as written (a part strait does not support, an address range that does
//! not parse, an HTTP field on a TCP connection) must never *allow* more than its author
//! meant, and must never *deny* less: in an ALLOW policy such a rule never matches; in DENY
//! and AUDIT policies the part that cannot be checked holds, so the rest decides.

use std::net::IpAddr;

use strait_config::{
    AuthzPolicy, AuthzRule, ConditionKey, ConditionMatch, OperationMatch, SourceMatch, StringMatch,
};
use strait_net::Cidr;

/// One policy, ready to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Prepared {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Rule {
    pub from: Vec<SourceMatch>,
    /// The address fields of each `from`, parsed (same order as `from`).
    pub from_ips: Vec<SourceIps>,
    pub to: Vec<OperationMatch>,
    pub when: Vec<Condition>,
    /// Something in the rule cannot be checked as written: an unsupported part or a value
    /// that does not parse. An ALLOW rule so marked never matches.
    pub defective: bool,
    /// The rule names an attribute only an HTTP request has: as ALLOW it never matches a TCP
    /// connection.
    pub needs_http: bool,
}

/// `ip_blocks` and `remote_ip_blocks` of one source, with their `not_` fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SourceIps {
    pub ip: Ranges,
    pub not_ip: Ranges,
    pub remote: Ranges,
    pub not_remote: Ranges,
}

/// The address ranges of one field. `Invalid`: one entry did not parse, so the field is not
/// what its author wrote; it only survives in DENY/AUDIT rules, where it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ranges {
    Valid(Vec<Cidr>),
    Invalid,
}

/// A `when` condition whose values are typed by its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Condition {
    /// Keys with string values, matched as Istio strings.
    Strings {
        key: ConditionKey,
        values: Vec<StringMatch>,
        not_values: Vec<StringMatch>,
    },
    /// `source.ip`, `remote.ip`, `destination.ip`.
    Ip {
        which: IpKey,
        values: Ranges,
        not_values: Ranges,
    },
    /// `destination.port`; `None`: a value is not a port number.
    Port {
        values: Option<Vec<u16>>,
        not_values: Option<Vec<u16>>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IpKey {
    Source,
    Remote,
    Destination,
}

pub(super) fn policy(p: &AuthzPolicy) -> Prepared {
    Prepared {
        name: p.name.clone(),
        rules: p.rules.iter().map(rule).collect(),
    }
}

fn rule(r: &AuthzRule) -> Rule {
    let from_ips: Vec<SourceIps> = r.from.iter().map(source_ips).collect();
    let when: Vec<Condition> = r.when.iter().map(condition).collect();
    let bad_ips = from_ips.iter().any(|s| {
        [&s.ip, &s.not_ip, &s.remote, &s.not_remote]
            .iter()
            .any(|r| **r == Ranges::Invalid)
    });
    let bad_when = when.iter().any(Condition::is_invalid);
    let needs_http = r
        .from
        .iter()
        .any(|s| !s.request_principals.is_empty() || !s.not_request_principals.is_empty())
        || r.to.iter().any(|o| {
            !o.hosts.is_empty()
                || !o.not_hosts.is_empty()
                || !o.methods.is_empty()
                || !o.not_methods.is_empty()
                || !o.paths.is_empty()
                || !o.not_paths.is_empty()
        })
        || r.when.iter().any(|c| c.key.http_only());
    Rule {
        from: r.from.clone(),
        from_ips,
        to: r.to.clone(),
        when,
        defective: !r.unsupported.is_empty() || bad_ips || bad_when,
        needs_http,
    }
}

fn source_ips(s: &SourceMatch) -> SourceIps {
    SourceIps {
        ip: ranges(s.ip_blocks.iter().map(String::as_str)),
        not_ip: ranges(s.not_ip_blocks.iter().map(String::as_str)),
        remote: ranges(s.remote_ip_blocks.iter().map(String::as_str)),
        not_remote: ranges(s.not_remote_ip_blocks.iter().map(String::as_str)),
    }
}

fn ranges<'a>(values: impl Iterator<Item = &'a str>) -> Ranges {
    let mut out = Vec::new();
    for v in values {
        match v.trim().parse::<Cidr>() {
            Ok(c) => out.push(c),
            Err(_) => return Ranges::Invalid,
        }
    }
    Ranges::Valid(out)
}

/// Address and port values come through the compiler as strings; only a plain value is one
/// (Istio rejects `*` or `10.*` there), anything else makes the condition invalid.
fn exact(m: &StringMatch) -> Option<&str> {
    match m {
        StringMatch::Exact(s) => Some(s.trim()),
        _ => None,
    }
}

fn ip_ranges(values: &[StringMatch]) -> Ranges {
    let mut texts = Vec::with_capacity(values.len());
    for v in values {
        match exact(v) {
            Some(s) => texts.push(s),
            None => return Ranges::Invalid,
        }
    }
    ranges(texts.into_iter())
}

fn ports(values: &[StringMatch]) -> Option<Vec<u16>> {
    values
        .iter()
        .map(|v| exact(v).and_then(|s| s.parse::<u16>().ok()))
        .collect()
}

fn condition(c: &ConditionMatch) -> Condition {
    let ip = |which| Condition::Ip {
        which,
        values: ip_ranges(&c.values),
        not_values: ip_ranges(&c.not_values),
    };
    match c.key {
        ConditionKey::SourceIp => ip(IpKey::Source),
        ConditionKey::RemoteIp => ip(IpKey::Remote),
        ConditionKey::DestinationIp => ip(IpKey::Destination),
        ConditionKey::DestinationPort => Condition::Port {
            values: ports(&c.values),
            not_values: ports(&c.not_values),
        },
        _ => Condition::Strings {
            key: c.key.clone(),
            values: c.values.clone(),
            not_values: c.not_values.clone(),
        },
    }
}

impl Condition {
    fn is_invalid(&self) -> bool {
        match self {
            Condition::Strings { .. } => false,
            Condition::Ip {
                values, not_values, ..
            } => *values == Ranges::Invalid || *not_values == Ranges::Invalid,
            Condition::Port { values, not_values } => values.is_none() || not_values.is_none(),
        }
    }
}

impl Ranges {
    /// Whether the field holds for `ip`: `positive` fields need a range holding it, `not_`
    /// fields need none to. An empty field holds; an invalid one holds (DENY/AUDIT only).
    pub fn holds(&self, ip: IpAddr, positive: bool) -> bool {
        match self {
            Ranges::Invalid => true,
            Ranges::Valid(v) if v.is_empty() => true,
            Ranges::Valid(v) => v.iter().any(|c| contains(c, ip)) == positive,
        }
    }
}

/// An IPv4 peer accepted on a dual-stack socket shows up as `::ffff:a.b.c.d`; policies name
/// it as IPv4 (Envoy reports it so), so a range holds the address in either spelling.
fn contains(range: &Cidr, ip: IpAddr) -> bool {
    let mapped = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    range.contains(ip) || mapped.is_some_and(|v4| range.contains(v4))
}
