//! The security policy of a workload: AuthorizationPolicies and JWT issuers.

use super::{At, WireError, encode_list, enum_value, list, required};
use crate::authz::{
    Authz, AuthzPolicy, AuthzRule, ConditionKey, ConditionMatch, JwtHeader, JwtProvider,
    OperationMatch, SourceMatch, StringMatch,
};
use crate::proto;
use crate::proto::string_match;

impl From<&Authz> for proto::Authz {
    fn from(a: &Authz) -> Self {
        proto::Authz {
            custom: a.custom.clone(),
            deny: encode_list(&a.deny),
            allow: encode_list(&a.allow),
            audit: encode_list(&a.audit),
            jwt: encode_list(&a.jwt),
        }
    }
}

impl TryFrom<proto::Authz> for Authz {
    type Error = WireError;

    fn try_from(a: proto::Authz) -> Result<Self, WireError> {
        Ok(Authz {
            custom: a.custom,
            deny: list(a.deny, "deny")?,
            allow: list(a.allow, "allow")?,
            audit: list(a.audit, "audit")?,
            jwt: list(a.jwt, "jwt")?,
        })
    }
}

impl From<&AuthzPolicy> for proto::AuthzPolicy {
    fn from(p: &AuthzPolicy) -> Self {
        proto::AuthzPolicy {
            name: p.name.clone(),
            rules: encode_list(&p.rules),
        }
    }
}

impl TryFrom<proto::AuthzPolicy> for AuthzPolicy {
    type Error = WireError;

    fn try_from(p: proto::AuthzPolicy) -> Result<Self, WireError> {
        Ok(AuthzPolicy {
            name: p.name,
            rules: list(p.rules, "rules")?,
        })
    }
}

impl From<&AuthzRule> for proto::AuthzRule {
    fn from(r: &AuthzRule) -> Self {
        proto::AuthzRule {
            from: encode_list(&r.from),
            to: encode_list(&r.to),
            when: encode_list(&r.when),
            unsupported: r.unsupported.clone(),
        }
    }
}

impl TryFrom<proto::AuthzRule> for AuthzRule {
    type Error = WireError;

    fn try_from(r: proto::AuthzRule) -> Result<Self, WireError> {
        Ok(AuthzRule {
            from: list(r.from, "from")?,
            to: list(r.to, "to")?,
            when: list(r.when, "when")?,
            unsupported: r.unsupported,
        })
    }
}

impl From<&SourceMatch> for proto::SourceMatch {
    fn from(s: &SourceMatch) -> Self {
        proto::SourceMatch {
            principals: encode_list(&s.principals),
            not_principals: encode_list(&s.not_principals),
            request_principals: encode_list(&s.request_principals),
            not_request_principals: encode_list(&s.not_request_principals),
            namespaces: encode_list(&s.namespaces),
            not_namespaces: encode_list(&s.not_namespaces),
            service_accounts: encode_list(&s.service_accounts),
            not_service_accounts: encode_list(&s.not_service_accounts),
            ip_blocks: s.ip_blocks.clone(),
            not_ip_blocks: s.not_ip_blocks.clone(),
            remote_ip_blocks: s.remote_ip_blocks.clone(),
            not_remote_ip_blocks: s.not_remote_ip_blocks.clone(),
        }
    }
}

impl TryFrom<proto::SourceMatch> for SourceMatch {
    type Error = WireError;

    fn try_from(s: proto::SourceMatch) -> Result<Self, WireError> {
        Ok(SourceMatch {
            principals: list(s.principals, "principals")?,
            not_principals: list(s.not_principals, "not_principals")?,
            request_principals: list(s.request_principals, "request_principals")?,
            not_request_principals: list(s.not_request_principals, "not_request_principals")?,
            namespaces: list(s.namespaces, "namespaces")?,
            not_namespaces: list(s.not_namespaces, "not_namespaces")?,
            service_accounts: list(s.service_accounts, "service_accounts")?,
            not_service_accounts: list(s.not_service_accounts, "not_service_accounts")?,
            ip_blocks: s.ip_blocks,
            not_ip_blocks: s.not_ip_blocks,
            remote_ip_blocks: s.remote_ip_blocks,
            not_remote_ip_blocks: s.not_remote_ip_blocks,
        })
    }
}

impl From<&OperationMatch> for proto::OperationMatch {
    fn from(o: &OperationMatch) -> Self {
        proto::OperationMatch {
            hosts: encode_list(&o.hosts),
            not_hosts: encode_list(&o.not_hosts),
            ports: o.ports.clone(),
            not_ports: o.not_ports.clone(),
            methods: encode_list(&o.methods),
            not_methods: encode_list(&o.not_methods),
            paths: encode_list(&o.paths),
            not_paths: encode_list(&o.not_paths),
        }
    }
}

impl TryFrom<proto::OperationMatch> for OperationMatch {
    type Error = WireError;

    fn try_from(o: proto::OperationMatch) -> Result<Self, WireError> {
        Ok(OperationMatch {
            hosts: list(o.hosts, "hosts")?,
            not_hosts: list(o.not_hosts, "not_hosts")?,
            ports: o.ports,
            not_ports: o.not_ports,
            methods: list(o.methods, "methods")?,
            not_methods: list(o.not_methods, "not_methods")?,
            paths: list(o.paths, "paths")?,
            not_paths: list(o.not_paths, "not_paths")?,
        })
    }
}

impl From<&ConditionMatch> for proto::ConditionMatch {
    fn from(c: &ConditionMatch) -> Self {
        proto::ConditionMatch {
            key: Some((&c.key).into()),
            values: encode_list(&c.values),
            not_values: encode_list(&c.not_values),
        }
    }
}

impl TryFrom<proto::ConditionMatch> for ConditionMatch {
    type Error = WireError;

    fn try_from(c: proto::ConditionMatch) -> Result<Self, WireError> {
        Ok(ConditionMatch {
            key: required(c.key, "key")?,
            values: list(c.values, "values")?,
            not_values: list(c.not_values, "not_values")?,
        })
    }
}

impl From<&ConditionKey> for proto::ConditionKey {
    fn from(k: &ConditionKey) -> Self {
        use proto::Attribute as A;
        let mut header = String::new();
        let mut claim = Vec::new();
        let attribute = match k {
            ConditionKey::RequestHeader(h) => {
                header = h.clone();
                A::RequestHeader
            }
            ConditionKey::SourceIp => A::SourceIp,
            ConditionKey::RemoteIp => A::RemoteIp,
            ConditionKey::SourceNamespace => A::SourceNamespace,
            ConditionKey::SourcePrincipal => A::SourcePrincipal,
            ConditionKey::SourceServiceAccount => A::SourceServiceAccount,
            ConditionKey::RequestAuthPrincipal => A::RequestAuthPrincipal,
            ConditionKey::RequestAuthAudiences => A::RequestAuthAudiences,
            ConditionKey::RequestAuthPresenter => A::RequestAuthPresenter,
            ConditionKey::RequestAuthClaim(c) => {
                claim = c.clone();
                A::RequestAuthClaim
            }
            ConditionKey::DestinationIp => A::DestinationIp,
            ConditionKey::DestinationPort => A::DestinationPort,
            ConditionKey::ConnectionSni => A::ConnectionSni,
        };
        proto::ConditionKey {
            attribute: attribute as i32,
            header,
            claim,
        }
    }
}

impl TryFrom<proto::ConditionKey> for ConditionKey {
    type Error = WireError;

    /// Refuses an unset attribute, and a header or claim key that does not name which.
    fn try_from(k: proto::ConditionKey) -> Result<Self, WireError> {
        use proto::Attribute as A;
        Ok(match enum_value(k.attribute, "attribute")? {
            A::Unspecified => return Err(WireError::unset().at("attribute")),
            A::RequestHeader => {
                if k.header.is_empty() {
                    return Err(WireError::new("empty for ATTRIBUTE_REQUEST_HEADER").at("header"));
                }
                ConditionKey::RequestHeader(k.header)
            }
            A::SourceIp => ConditionKey::SourceIp,
            A::RemoteIp => ConditionKey::RemoteIp,
            A::SourceNamespace => ConditionKey::SourceNamespace,
            A::SourcePrincipal => ConditionKey::SourcePrincipal,
            A::SourceServiceAccount => ConditionKey::SourceServiceAccount,
            A::RequestAuthPrincipal => ConditionKey::RequestAuthPrincipal,
            A::RequestAuthAudiences => ConditionKey::RequestAuthAudiences,
            A::RequestAuthPresenter => ConditionKey::RequestAuthPresenter,
            A::RequestAuthClaim => {
                if k.claim.is_empty() {
                    return Err(
                        WireError::new("empty for ATTRIBUTE_REQUEST_AUTH_CLAIM").at("claim")
                    );
                }
                ConditionKey::RequestAuthClaim(k.claim)
            }
            A::DestinationIp => ConditionKey::DestinationIp,
            A::DestinationPort => ConditionKey::DestinationPort,
            A::ConnectionSni => ConditionKey::ConnectionSni,
        })
    }
}

impl From<&StringMatch> for proto::StringMatch {
    fn from(m: &StringMatch) -> Self {
        proto::StringMatch {
            kind: Some(match m {
                StringMatch::Exact(s) => string_match::Kind::Exact(s.clone()),
                StringMatch::Prefix(s) => string_match::Kind::Prefix(s.clone()),
                StringMatch::Suffix(s) => string_match::Kind::Suffix(s.clone()),
                StringMatch::Presence => string_match::Kind::Presence(proto::Presence {}),
            }),
        }
    }
}

impl TryFrom<proto::StringMatch> for StringMatch {
    type Error = WireError;

    fn try_from(m: proto::StringMatch) -> Result<Self, WireError> {
        Ok(match m.kind.ok_or_else(WireError::unset).at("kind")? {
            string_match::Kind::Exact(s) => StringMatch::Exact(s),
            string_match::Kind::Prefix(s) => StringMatch::Prefix(s),
            string_match::Kind::Suffix(s) => StringMatch::Suffix(s),
            string_match::Kind::Presence(proto::Presence {}) => StringMatch::Presence,
        })
    }
}

impl From<&JwtProvider> for proto::JwtProvider {
    fn from(j: &JwtProvider) -> Self {
        proto::JwtProvider {
            policy: j.policy.clone(),
            issuer: j.issuer.clone(),
            audiences: j.audiences.clone(),
            jwks: j.jwks.clone(),
            jwks_source: j.jwks_source.clone(),
            from_headers: encode_list(&j.from_headers),
            from_params: j.from_params.clone(),
            from_cookies: j.from_cookies.clone(),
            output_payload_to_header: j.output_payload_to_header.clone(),
            forward_original_token: j.forward_original_token,
            output_claim_to_headers: j
                .output_claim_to_headers
                .iter()
                .map(|(claim, header)| proto::KeyValue {
                    key: claim.clone(),
                    value: header.clone(),
                })
                .collect(),
            space_delimited_claims: j.space_delimited_claims.clone(),
            required: j.required,
        }
    }
}

impl TryFrom<proto::JwtProvider> for JwtProvider {
    type Error = WireError;

    fn try_from(j: proto::JwtProvider) -> Result<Self, WireError> {
        Ok(JwtProvider {
            policy: j.policy,
            issuer: j.issuer,
            audiences: j.audiences,
            jwks: j.jwks,
            jwks_source: j.jwks_source,
            from_headers: list(j.from_headers, "from_headers")?,
            from_params: j.from_params,
            from_cookies: j.from_cookies,
            output_payload_to_header: j.output_payload_to_header,
            forward_original_token: j.forward_original_token,
            output_claim_to_headers: j
                .output_claim_to_headers
                .into_iter()
                .map(|kv| (kv.key, kv.value))
                .collect(),
            space_delimited_claims: j.space_delimited_claims,
            required: j.required,
        })
    }
}

impl From<&JwtHeader> for proto::JwtHeader {
    fn from(h: &JwtHeader) -> Self {
        proto::JwtHeader {
            name: h.name.clone(),
            prefix: h.prefix.clone(),
        }
    }
}

impl TryFrom<proto::JwtHeader> for JwtHeader {
    type Error = WireError;

    fn try_from(h: proto::JwtHeader) -> Result<Self, WireError> {
        Ok(JwtHeader {
            name: h.name,
            prefix: h.prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn exact(s: &str) -> StringMatch {
        StringMatch::Exact(s.into())
    }

    fn condition(key: ConditionKey) -> ConditionMatch {
        ConditionMatch {
            key,
            values: vec![exact("a"), StringMatch::Prefix("b".into())],
            not_values: vec![StringMatch::Suffix("c".into()), StringMatch::Presence],
        }
    }

    fn authz() -> Authz {
        let keys = vec![
            ConditionKey::RequestHeader("x-user".into()),
            ConditionKey::SourceIp,
            ConditionKey::RemoteIp,
            ConditionKey::SourceNamespace,
            ConditionKey::SourcePrincipal,
            ConditionKey::SourceServiceAccount,
            ConditionKey::RequestAuthPrincipal,
            ConditionKey::RequestAuthAudiences,
            ConditionKey::RequestAuthPresenter,
            ConditionKey::RequestAuthClaim(vec!["groups".into(), "admin".into()]),
            ConditionKey::DestinationIp,
            ConditionKey::DestinationPort,
            ConditionKey::ConnectionSni,
        ];
        let rule = AuthzRule {
            from: vec![SourceMatch {
                principals: vec![exact("cluster.local/ns/ns/sa/sleep")],
                not_principals: vec![StringMatch::Suffix("/sa/bad".into())],
                request_principals: vec![StringMatch::Presence],
                not_request_principals: vec![exact("iss/sub")],
                namespaces: vec![StringMatch::Prefix("team-".into())],
                not_namespaces: vec![exact("kube-system")],
                service_accounts: vec![exact("ns/sleep")],
                not_service_accounts: vec![exact("ns/other")],
                ip_blocks: vec!["10.0.0.0/8".into()],
                not_ip_blocks: vec!["10.1.0.0/16".into()],
                remote_ip_blocks: vec!["192.168.0.1".into()],
                not_remote_ip_blocks: vec!["192.168.0.2".into()],
            }],
            to: vec![OperationMatch {
                hosts: vec![StringMatch::Suffix(".example.com".into())],
                not_hosts: vec![exact("admin.example.com")],
                ports: vec![80, 8080],
                not_ports: vec![9090],
                methods: vec![exact("GET")],
                not_methods: vec![exact("DELETE")],
                paths: vec![StringMatch::Prefix("/api/".into())],
                not_paths: vec![exact("/api/admin")],
            }],
            when: keys.into_iter().map(condition).collect(),
            unsupported: vec!["when experimental.foo".into()],
        };
        let policy = |name: &str| AuthzPolicy {
            name: name.into(),
            rules: vec![rule.clone(), AuthzRule::default()],
        };
        Authz {
            custom: vec!["ns/ext".into()],
            deny: vec![policy("ns/deny")],
            allow: vec![
                policy("ns/allow"),
                AuthzPolicy {
                    name: "ns/nothing".into(),
                    rules: Vec::new(),
                },
            ],
            audit: vec![policy("ns/audit")],
            jwt: vec![
                JwtProvider {
                    policy: "ns/jwt".into(),
                    issuer: "https://issuer".into(),
                    audiences: vec!["aud1".into(), "aud2".into()],
                    jwks: "{\"keys\":[]}".into(),
                    jwks_source: "https://issuer/jwks".into(),
                    from_headers: vec![JwtHeader {
                        name: "x-jwt".into(),
                        prefix: "Bearer ".into(),
                    }],
                    from_params: vec!["token".into()],
                    from_cookies: vec!["session".into()],
                    output_payload_to_header: "x-payload".into(),
                    forward_original_token: true,
                    output_claim_to_headers: vec![
                        ("sub".into(), "x-sub".into()),
                        ("email".into(), "x-email".into()),
                    ],
                    space_delimited_claims: vec!["scope".into()],
                    required: true,
                },
                JwtProvider::default(),
            ],
        }
    }

    /// Encodes, goes through the bytes, decodes.
    fn round_trip(a: &Authz) -> Result<Authz, WireError> {
        let bytes = proto::Authz::from(a).encode_to_vec();
        Authz::try_from(proto::Authz::decode(bytes.as_slice()).expect("decodes"))
    }

    #[test]
    fn a_policy_survives_the_wire() {
        let a = authz();
        assert_eq!(round_trip(&a), Ok(a));
        assert_eq!(round_trip(&Authz::default()), Ok(Authz::default()));
    }

    #[test]
    fn claims_map_to_headers_as_key_and_value() {
        let p = proto::JwtProvider::from(&authz().jwt[0]);
        assert_eq!(p.output_claim_to_headers[0].key, "sub");
        assert_eq!(p.output_claim_to_headers[0].value, "x-sub");
    }

    /// The error for the sample policy with one edit to its first DENY rule.
    fn refused(edit: impl FnOnce(&mut proto::AuthzRule)) -> String {
        let mut p = proto::Authz::from(&authz());
        edit(&mut p.deny[0].rules[0]);
        Authz::try_from(p).expect_err("refused").to_string()
    }

    #[test]
    fn an_unset_attribute_is_refused() {
        let e = refused(|r| r.when[1].key.as_mut().expect("key").attribute = 0);
        assert!(
            e.starts_with("deny[0].rules[0].when[1].key.attribute: not set"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_attribute_is_refused() {
        let e = refused(|r| r.when[1].key.as_mut().expect("key").attribute = 99);
        assert!(
            e.starts_with("deny[0].rules[0].when[1].key.attribute: unknown value 99"),
            "{e}"
        );
    }

    #[test]
    fn a_header_key_without_a_header_is_refused() {
        let e = refused(|r| r.when[0].key.as_mut().expect("key").header.clear());
        assert_eq!(
            e,
            "deny[0].rules[0].when[0].key.header: empty for ATTRIBUTE_REQUEST_HEADER"
        );
    }

    #[test]
    fn a_claim_key_without_a_claim_is_refused() {
        let e = refused(|r| r.when[9].key.as_mut().expect("key").claim.clear());
        assert_eq!(
            e,
            "deny[0].rules[0].when[9].key.claim: empty for ATTRIBUTE_REQUEST_AUTH_CLAIM"
        );
    }

    #[test]
    fn a_condition_without_a_key_is_refused() {
        let e = refused(|r| r.when[2].key = None);
        assert!(
            e.starts_with("deny[0].rules[0].when[2].key: not set"),
            "{e}"
        );
    }

    #[test]
    fn an_unset_string_match_is_refused() {
        let e = refused(|r| r.from[0].principals[0].kind = None);
        assert!(
            e.starts_with("deny[0].rules[0].from[0].principals[0].kind: not set"),
            "{e}"
        );
        let e = refused(|r| r.to[0].not_paths[0].kind = None);
        assert!(
            e.starts_with("deny[0].rules[0].to[0].not_paths[0].kind: not set"),
            "{e}"
        );
        let e = refused(|r| r.when[3].not_values[1].kind = None);
        assert!(
            e.starts_with("deny[0].rules[0].when[3].not_values[1].kind: not set"),
            "{e}"
        );
    }
}
