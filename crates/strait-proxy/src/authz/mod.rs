//! Istio AuthorizationPolicy, evaluated in the proxy: per HTTP request, or once per TCP
//! connection.
//!
//! The compiler hands each proxy the policies that select its workload ([`Authz`]); the
//! proxy prepares them once per configuration ([`Policy::new`]: address ranges and ports
//! parsed) and keeps the result in its snapshot. A check is then a pure function of the
//! prepared policy and the request's [`Attributes`]: no I/O, and no allocation but for a
//! denial's name or a value a rule must build (a service account, a number claim as text).
//!
//! Istio's order decides ([`Policy::check`]): any CUSTOM policy denies (strait has no
//! external authorizer; Istio denies when it cannot reach one); then any matching DENY rule
//! denies; then, if ALLOW policies exist, one of their rules must match; otherwise the request
//! is allowed. AUDIT policies never decide, they are only reported ([`Policy::audited`]).
//!
//! Where a rule cannot be checked as written (a part strait does not support, an address that
//! does not parse, an HTTP attribute on a TCP connection) the answer fails closed: an ALLOW
//! rule never matches, while in a DENY rule that part holds, so the rule denies more rather
//! than less. The TCP case is Istio's own behaviour (its generated TCP filter drops such ALLOW
//! rules and keeps DENY rules without the HTTP fields).

mod eval;
mod prepare;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

use strait_config::Authz;

use eval::{Facts, Mode};
use prepare::Prepared;

/// Prepared once per configuration (CIDRs parsed): what the proxy keeps in its snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// CUSTOM policies (`namespace/name`): any of them denies.
    custom: Vec<String>,
    deny: Vec<Prepared>,
    allow: Vec<Prepared>,
    audit: Vec<Prepared>,
}

/// What a check looks at: the connection, and the request when there is one.
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    /// The direct peer's address.
    pub source_ip: IpAddr,
    /// The original client's address (X-Forwarded-For through trusted proxies; the caller
    /// passes the direct peer when there are none).
    pub remote_ip: IpAddr,
    /// The peer's SPIFFE ID from mTLS, as the proxy holds it (`spiffe://td/ns/x/sa/y`); None
    /// without mTLS.
    pub principal: Option<&'a str>,
    pub destination: SocketAddr,
    /// SNI of the (m)TLS connection, if any.
    pub sni: Option<&'a str>,
    /// None for a TCP connection.
    pub http: Option<HttpAttributes<'a>>,
}

#[derive(Clone, Copy, Debug)]
pub struct HttpAttributes<'a> {
    pub method: &'a str,
    /// The path without the query.
    pub path: &'a str,
    /// The authority as received; compared without the port, ignoring case.
    pub host: &'a str,
    pub headers: &'a http::HeaderMap,
    /// The verified JWT, when RequestAuthentication verified one.
    pub auth: Option<AuthAttributes<'a>>,
}

/// A verified JWT.
#[derive(Clone, Copy, Debug)]
pub struct AuthAttributes<'a> {
    /// `<iss>/<sub>`.
    pub principal: &'a str,
    pub audiences: &'a [String],
    /// The `azp` claim.
    pub presenter: Option<&'a str>,
    /// The payload, for `request.auth.claims[...]`: a string claim matches as itself, a list
    /// when any string element matches, a number or boolean as its text. Space-delimited
    /// claims are matched as written; splitting them is the verifier's business.
    pub claims: &'a serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Which policy denied and why (for the access log and the 403). For
    /// [`DenyReason::NoAllowMatched`] no single policy denied: `policy` lists the ALLOW
    /// policies, comma-separated.
    Deny {
        policy: String,
        reason: DenyReason,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// A CUSTOM policy applies (no external authorizer to ask).
    Custom,
    /// A rule of a DENY policy matched.
    DenyRule,
    /// ALLOW policies apply and none of their rules matched.
    NoAllowMatched,
}

impl DenyReason {
    /// A stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Custom => "custom",
            DenyReason::DenyRule => "deny_rule",
            DenyReason::NoAllowMatched => "no_allow_matched",
        }
    }
}

impl Policy {
    pub fn new(authz: &Authz) -> Policy {
        Policy {
            custom: authz.custom.clone(),
            deny: authz.deny.iter().map(prepare::policy).collect(),
            allow: authz.allow.iter().map(prepare::policy).collect(),
            audit: authz.audit.iter().map(prepare::policy).collect(),
        }
    }

    /// Nothing applies: every request is allowed without evaluation.
    pub fn is_empty(&self) -> bool {
        self.custom.is_empty()
            && self.deny.is_empty()
            && self.allow.is_empty()
            && self.audit.is_empty()
    }

    /// The decision for one request or connection.
    pub fn check(&self, req: &Attributes<'_>) -> Decision {
        if let Some(name) = self.custom.first() {
            return deny(name.clone(), DenyReason::Custom);
        }
        if self.deny.is_empty() && self.allow.is_empty() {
            return Decision::Allow;
        }
        let facts = Facts::new(req);
        if let Some(p) = self.deny.iter().find(|p| matches(p, &facts, Mode::Deny)) {
            return deny(p.name.clone(), DenyReason::DenyRule);
        }
        if self.allow.is_empty() || self.allow.iter().any(|p| matches(p, &facts, Mode::Allow)) {
            return Decision::Allow;
        }
        let names: Vec<&str> = self.allow.iter().map(|p| p.name.as_str()).collect();
        deny(names.join(","), DenyReason::NoAllowMatched)
    }

    /// AUDIT policies whose rules match (the proxy logs them).
    pub fn audited(&self, req: &Attributes<'_>) -> Vec<&str> {
        if self.audit.is_empty() {
            return Vec::new();
        }
        let facts = Facts::new(req);
        self.audit
            .iter()
            .filter(|p| matches(p, &facts, Mode::Deny))
            .map(|p| p.name.as_str())
            .collect()
    }
}

/// A policy matches when one of its rules does; one without rules matches nothing.
fn matches(p: &Prepared, facts: &Facts<'_>, mode: Mode) -> bool {
    p.rules.iter().any(|r| eval::rule(r, facts, mode))
}

fn deny(policy: String, reason: DenyReason) -> Decision {
    Decision::Deny { policy, reason }
}
