//! Outbound service ports and their HTTP rules (also used by gateway virtual hosts).

use super::mesh::{decode_protocol, encode_protocol};
use super::{At, WireError, encode_list, list, optional, or_default, required, status};
use crate::proto;
use crate::proto::{http_rule::Action, str_match};
use crate::types::{
    Fault, HeaderMatch, HeaderOps, HeaderRules, HttpAction, HttpRule, RequestMatch, Retry, Rewrite,
    RoutePolicy, ServicePort, StrMatch, WeightedCluster,
};

impl From<&ServicePort> for proto::ServicePort {
    fn from(s: &ServicePort) -> Self {
        proto::ServicePort {
            host: s.host.clone(),
            port: s.port,
            namespace: s.namespace.clone(),
            protocol: encode_protocol(s.protocol),
            http: encode_list(&s.http),
            tcp: encode_list(&s.tcp),
            virtual_service: s.virtual_service.clone(),
            addresses: s.addresses.clone(),
        }
    }
}

impl TryFrom<proto::ServicePort> for ServicePort {
    type Error = WireError;

    fn try_from(s: proto::ServicePort) -> Result<Self, WireError> {
        Ok(ServicePort {
            host: s.host,
            port: s.port,
            namespace: s.namespace,
            protocol: decode_protocol(s.protocol, "protocol")?,
            http: list(s.http, "http")?,
            tcp: list(s.tcp, "tcp")?,
            virtual_service: s.virtual_service,
            addresses: s.addresses,
        })
    }
}

impl From<&HttpRule> for proto::HttpRule {
    fn from(r: &HttpRule) -> Self {
        proto::HttpRule {
            name: r.name.clone(),
            matches: encode_list(&r.matches),
            action: Some(match &r.action {
                HttpAction::Route(to) => Action::Route(proto::RouteAction {
                    clusters: encode_list(to),
                }),
                HttpAction::Redirect {
                    uri,
                    authority,
                    code,
                } => Action::Redirect(proto::Redirect {
                    uri: uri.clone(),
                    authority: authority.clone(),
                    code: u32::from(*code),
                }),
                HttpAction::Respond { status, body } => Action::Respond(proto::DirectResponse {
                    status: u32::from(*status),
                    body: body.clone(),
                }),
            }),
            timeout_ms: r.timeout_ms,
            retries: Some((&r.retries).into()),
            policy: (r.policy != RoutePolicy::default()).then(|| (&r.policy).into()),
        }
    }
}

impl TryFrom<proto::HttpRule> for HttpRule {
    type Error = WireError;

    fn try_from(r: proto::HttpRule) -> Result<Self, WireError> {
        let action = match r.action.ok_or_else(WireError::unset).at("action")? {
            Action::Route(to) => HttpAction::Route(list(to.clusters, "clusters").at("route")?),
            Action::Redirect(d) => HttpAction::Redirect {
                uri: d.uri,
                authority: d.authority,
                code: status(d.code, "code").at("redirect")?,
            },
            Action::Respond(d) => HttpAction::Respond {
                status: status(d.status, "status").at("respond")?,
                body: d.body,
            },
        };
        Ok(HttpRule {
            name: r.name,
            matches: list(r.matches, "matches")?,
            action,
            timeout_ms: r.timeout_ms,
            retries: required(r.retries, "retries")?,
            policy: or_default(r.policy, "policy")?,
        })
    }
}

impl From<&Retry> for proto::Retry {
    fn from(r: &Retry) -> Self {
        proto::Retry {
            attempts: r.attempts,
            per_try_timeout_ms: r.per_try_timeout_ms,
            retry_on: r.retry_on.clone(),
        }
    }
}

impl TryFrom<proto::Retry> for Retry {
    type Error = WireError;

    fn try_from(r: proto::Retry) -> Result<Self, WireError> {
        Ok(Retry {
            attempts: r.attempts,
            per_try_timeout_ms: r.per_try_timeout_ms,
            retry_on: r.retry_on,
        })
    }
}

impl From<&RoutePolicy> for proto::RoutePolicy {
    fn from(p: &RoutePolicy) -> Self {
        proto::RoutePolicy {
            rewrite: p.rewrite.as_ref().map(Into::into),
            headers: encode_headers(&p.headers),
            fault: p.fault.as_ref().map(Into::into),
        }
    }
}

impl TryFrom<proto::RoutePolicy> for RoutePolicy {
    type Error = WireError;

    fn try_from(p: proto::RoutePolicy) -> Result<Self, WireError> {
        Ok(RoutePolicy {
            rewrite: optional(p.rewrite, "rewrite")?,
            headers: or_default(p.headers, "headers")?,
            fault: optional(p.fault, "fault")?,
        })
    }
}

impl From<&Rewrite> for proto::Rewrite {
    fn from(r: &Rewrite) -> Self {
        proto::Rewrite {
            uri: r.uri.clone(),
            uri_regex: r
                .uri_regex
                .as_ref()
                .map(|(pattern, substitution)| proto::RegexRewrite {
                    pattern: pattern.clone(),
                    substitution: substitution.clone(),
                }),
            authority: r.authority.clone(),
        }
    }
}

impl TryFrom<proto::Rewrite> for Rewrite {
    type Error = WireError;

    fn try_from(r: proto::Rewrite) -> Result<Self, WireError> {
        Ok(Rewrite {
            uri: r.uri,
            uri_regex: r.uri_regex.map(|x| (x.pattern, x.substitution)),
            authority: r.authority,
        })
    }
}

/// Header rules, left out of the message when there are none (the common case).
fn encode_headers(h: &HeaderRules) -> Option<proto::HeaderRules> {
    (*h != HeaderRules::default()).then(|| proto::HeaderRules {
        request: Some((&h.request).into()),
        response: Some((&h.response).into()),
    })
}

impl TryFrom<proto::HeaderRules> for HeaderRules {
    type Error = WireError;

    fn try_from(h: proto::HeaderRules) -> Result<Self, WireError> {
        Ok(HeaderRules {
            request: or_default(h.request, "request")?,
            response: or_default(h.response, "response")?,
        })
    }
}

pub(crate) fn encode_pairs(v: &[(String, String)]) -> Vec<proto::KeyValue> {
    v.iter()
        .map(|(key, value)| proto::KeyValue {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

pub(crate) fn decode_pairs(v: Vec<proto::KeyValue>) -> Vec<(String, String)> {
    v.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

impl From<&HeaderOps> for proto::HeaderOps {
    fn from(h: &HeaderOps) -> Self {
        proto::HeaderOps {
            set: encode_pairs(&h.set),
            add: encode_pairs(&h.add),
            remove: h.remove.clone(),
        }
    }
}

impl TryFrom<proto::HeaderOps> for HeaderOps {
    type Error = WireError;

    fn try_from(h: proto::HeaderOps) -> Result<Self, WireError> {
        Ok(HeaderOps {
            set: decode_pairs(h.set),
            add: decode_pairs(h.add),
            remove: h.remove,
        })
    }
}

impl From<&Fault> for proto::Fault {
    fn from(f: &Fault) -> Self {
        proto::Fault {
            delay_ms: f.delay_ms,
            delay_per_million: f.delay_per_million,
            abort_status: f.abort_status.map(u32::from),
            abort_per_million: f.abort_per_million,
        }
    }
}

impl TryFrom<proto::Fault> for Fault {
    type Error = WireError;

    fn try_from(f: proto::Fault) -> Result<Self, WireError> {
        Ok(Fault {
            delay_ms: f.delay_ms,
            delay_per_million: per_million(f.delay_per_million, "delay_per_million")?,
            abort_status: f
                .abort_status
                .map(|s| status(s, "abort_status"))
                .transpose()?,
            abort_per_million: per_million(f.abort_per_million, "abort_per_million")?,
        })
    }
}

fn per_million(v: u32, field: &str) -> Result<u32, WireError> {
    if v > 1_000_000 {
        return Err(WireError::new(format!("{v} parts per million is more than all")).at(field));
    }
    Ok(v)
}

impl From<&WeightedCluster> for proto::WeightedCluster {
    fn from(w: &WeightedCluster) -> Self {
        proto::WeightedCluster {
            cluster: w.cluster.clone(),
            weight: w.weight,
            headers: encode_headers(&w.headers),
        }
    }
}

impl TryFrom<proto::WeightedCluster> for WeightedCluster {
    type Error = WireError;

    fn try_from(w: proto::WeightedCluster) -> Result<Self, WireError> {
        Ok(WeightedCluster {
            cluster: w.cluster,
            weight: w.weight,
            headers: or_default(w.headers, "headers")?,
        })
    }
}

impl From<&RequestMatch> for proto::RequestMatch {
    fn from(m: &RequestMatch) -> Self {
        proto::RequestMatch {
            uri: m.uri.as_ref().map(Into::into),
            method: m.method.as_ref().map(Into::into),
            authority: m.authority.as_ref().map(Into::into),
            scheme: m.scheme.as_ref().map(Into::into),
            headers: encode_list(&m.headers),
            query: m
                .query
                .iter()
                .map(|(name, value)| proto::QueryMatch {
                    name: name.clone(),
                    value: Some(value.into()),
                })
                .collect(),
            ignore_uri_case: m.ignore_uri_case,
        }
    }
}

impl TryFrom<proto::RequestMatch> for RequestMatch {
    type Error = WireError;

    fn try_from(m: proto::RequestMatch) -> Result<Self, WireError> {
        let query = m
            .query
            .into_iter()
            .enumerate()
            .map(|(i, q)| Ok((q.name, required(q.value, "value").at(&format!("[{i}]"))?)))
            .collect::<Result<_, WireError>>()
            .at("query")?;
        Ok(RequestMatch {
            uri: optional(m.uri, "uri")?,
            method: optional(m.method, "method")?,
            authority: optional(m.authority, "authority")?,
            scheme: optional(m.scheme, "scheme")?,
            headers: list(m.headers, "headers")?,
            query,
            ignore_uri_case: m.ignore_uri_case,
        })
    }
}

impl From<&HeaderMatch> for proto::HeaderMatch {
    fn from(h: &HeaderMatch) -> Self {
        proto::HeaderMatch {
            name: h.name.clone(),
            value: h.value.as_ref().map(Into::into),
            invert: h.invert,
            claim: h.claim.clone(),
        }
    }
}

impl TryFrom<proto::HeaderMatch> for HeaderMatch {
    type Error = WireError;

    fn try_from(h: proto::HeaderMatch) -> Result<Self, WireError> {
        Ok(HeaderMatch {
            name: h.name,
            value: optional(h.value, "value")?,
            invert: h.invert,
            claim: h.claim,
        })
    }
}

impl From<&StrMatch> for proto::StrMatch {
    fn from(m: &StrMatch) -> Self {
        proto::StrMatch {
            kind: Some(match m {
                StrMatch::Exact(s) => str_match::Kind::Exact(s.clone()),
                StrMatch::Prefix(s) => str_match::Kind::Prefix(s.clone()),
                StrMatch::Regex(s) => str_match::Kind::Regex(s.clone()),
            }),
        }
    }
}

impl TryFrom<proto::StrMatch> for StrMatch {
    type Error = WireError;

    fn try_from(m: proto::StrMatch) -> Result<Self, WireError> {
        Ok(match m.kind.ok_or_else(WireError::unset).at("kind")? {
            str_match::Kind::Exact(s) => StrMatch::Exact(s),
            str_match::Kind::Prefix(s) => StrMatch::Prefix(s),
            str_match::Kind::Regex(s) => StrMatch::Regex(s),
        })
    }
}
