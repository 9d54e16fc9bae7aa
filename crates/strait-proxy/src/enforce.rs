//! The policy enforcement point every server side shares (a sidecar's inbound ports, a
//! gateway's listeners): RequestAuthentication, then AuthorizationPolicy, in Envoy's filter
//! order, for each HTTP request, and authorization alone once per TCP connection.
//!
//! Denials are answered as Istio's proxies answer them: a refused token with Envoy's 401 (403
//! for a wrong audience) and its reason as the body; a request a policy denies with 403
//! `RBAC: access denied`; a workload under a CUSTOM policy (no external authorizer here) with
//! 403 and flag `UAEX`, as Envoy answers when its authorizer is unreachable; a TCP connection
//! by closing it. Every decision is counted (`strait_authz_decisions_total`), AUDIT matches
//! are logged.

use std::net::SocketAddr;
use std::time::SystemTime;

use http::{Response, StatusCode};

use crate::authz::{Attributes, AuthAttributes, Decision, DenyReason, HttpAttributes};
use crate::body::{self, Body};
use crate::context::Shared;
use crate::jwt::{Authn, Claims};
use crate::snapshot::Snapshot;

/// What the connection says about the caller.
#[derive(Clone, Copy, Debug)]
pub struct Connection<'a> {
    /// The direct peer.
    pub peer: SocketAddr,
    /// Where the connection arrived (the pod's address and the port).
    pub destination: SocketAddr,
    /// The peer's SPIFFE ID from mTLS (or a gateway client's certificate).
    pub principal: Option<&'a str>,
    /// The SNI of the TLS connection.
    pub sni: Option<&'a str>,
}

/// A request or connection the proxy refused, and how to answer it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    pub body: String,
    /// Envoy's response flags (`UAEX` for CUSTOM), empty when none.
    pub flags: &'static str,
    /// Envoy's response code details, for the access log
    /// (`rbac_access_denied_matched_policy[...]`, `jwt_authn_access_denied{...}`).
    pub details: String,
}

impl Refused {
    pub fn response(&self) -> Response<Body> {
        if self.body.is_empty() {
            let mut r = Response::new(body::empty());
            *r.status_mut() = self.status;
            return r;
        }
        body::text(self.status, self.body.clone())
    }
}

/// Authenticates and authorizes one HTTP request whose (normalized) path is `path`, rewriting
/// its headers as RequestAuthentication says. Returns the verified token's claims, if any.
pub fn http(
    px: &Shared,
    snap: &Snapshot,
    conn: &Connection<'_>,
    parts: &mut http::request::Parts,
    authority: &str,
) -> Result<Option<Claims>, Refused> {
    let claims =
        match snap
            .jwt
            .authenticate(&mut parts.headers, parts.uri.query(), SystemTime::now())
        {
            Authn::NoToken => None,
            Authn::Verified(c) => Some(c),
            Authn::Rejected(r) => {
                let provider = r.provider().unwrap_or("");
                px.metrics.jwt_rejected(provider, r.body());
                tracing::debug!(peer = %conn.peer, provider, reason = r.body(), "token refused");
                return Err(Refused {
                    status: r.status(),
                    body: r.body().to_string(),
                    flags: "",
                    details: format!("jwt_authn_access_denied{{{}}}", r.body().replace(' ', "_")),
                });
            }
        };
    if snap.authz.is_empty() {
        return Ok(claims);
    }
    let request_principal = claims.as_ref().map(Claims::principal);
    let auth = match (&claims, &request_principal) {
        (Some(c), Some(p)) => Some(AuthAttributes {
            principal: p,
            audiences: &c.audiences,
            presenter: c.presenter.as_deref(),
            claims: &c.payload,
        }),
        _ => None,
    };
    let attrs = Attributes {
        http: Some(HttpAttributes {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            host: authority,
            headers: &parts.headers,
            auth,
        }),
        ..attributes(conn)
    };
    decide(px, snap, &attrs, "http")?;
    Ok(claims)
}

/// Authorizes one TCP connection (no HTTP attributes: Istio's TCP reading of each rule).
pub fn tcp(px: &Shared, snap: &Snapshot, conn: &Connection<'_>) -> Result<(), Refused> {
    if snap.authz.is_empty() {
        return Ok(());
    }
    decide(px, snap, &attributes(conn), "tcp")
}

fn attributes<'a>(conn: &Connection<'a>) -> Attributes<'a> {
    Attributes {
        source_ip: conn.peer.ip(),
        // Istio's default of no trusted proxies: the original client is the direct peer.
        remote_ip: conn.peer.ip(),
        principal: conn.principal,
        destination: conn.destination,
        sni: conn.sni,
        http: None,
    }
}

fn decide(
    px: &Shared,
    snap: &Snapshot,
    attrs: &Attributes<'_>,
    protocol: &str,
) -> Result<(), Refused> {
    for policy in snap.authz.audited(attrs) {
        px.metrics.authz(protocol, "audited", policy, "");
        tracing::info!(
            target: "access",
            "AUDIT {protocol} from {} ({}) to {}: matched AUDIT policy {policy}",
            attrs.source_ip,
            attrs.principal.unwrap_or("no mTLS identity"),
            attrs.destination,
        );
    }
    match snap.authz.check(attrs) {
        Decision::Allow => {
            px.metrics.authz(protocol, "allowed", "", "");
            Ok(())
        }
        Decision::Deny { policy, reason } => {
            px.metrics
                .authz(protocol, "denied", &policy, reason.as_str());
            tracing::debug!(
                peer = %attrs.source_ip,
                principal = attrs.principal.unwrap_or(""),
                %policy,
                reason = reason.as_str(),
                "{protocol} denied by authorization policy"
            );
            Err(refusal(&policy, reason))
        }
    }
}

fn refusal(policy: &str, reason: DenyReason) -> Refused {
    let matched = |p: &str| match p.split_once('/') {
        Some((ns, name)) => format!("ns[{ns}]-policy[{name}]"),
        None => p.to_string(),
    };
    match reason {
        DenyReason::Custom => Refused {
            status: StatusCode::FORBIDDEN,
            body: String::new(),
            flags: "UAEX",
            details: format!("ext_authz_unavailable{{{}}}", matched(policy)),
        },
        DenyReason::DenyRule => Refused {
            status: StatusCode::FORBIDDEN,
            body: "RBAC: access denied".into(),
            flags: "",
            details: format!("rbac_access_denied_matched_policy[{}]", matched(policy)),
        },
        DenyReason::NoAllowMatched => Refused {
            status: StatusCode::FORBIDDEN,
            body: "RBAC: access denied".into(),
            flags: "",
            details: "rbac_access_denied_matched_policy[none]".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_worded_as_envoy_words_them() {
        let r = refusal("sample/deny-hello", DenyReason::DenyRule);
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.body, "RBAC: access denied");
        assert_eq!(
            r.details,
            "rbac_access_denied_matched_policy[ns[sample]-policy[deny-hello]]"
        );
        let r = refusal("sample/a,sample/b", DenyReason::NoAllowMatched);
        assert_eq!(r.details, "rbac_access_denied_matched_policy[none]");
        let r = refusal("sample/ext", DenyReason::Custom);
        assert_eq!(
            (r.status, r.flags, r.body.as_str()),
            (StatusCode::FORBIDDEN, "UAEX", "")
        );
    }
}
