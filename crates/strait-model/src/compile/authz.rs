//! The security policy of one proxy: the AuthorizationPolicies and RequestAuthentications of
//! its config cluster that apply to its workload, compiled for the proxy to evaluate.
//!
//! Which policies apply (Istio's rules): those in the root namespace (mesh-wide) and those in
//! the workload's namespace; a `selector` narrows a policy to the workloads whose labels it
//! matches (in any namespace, for a root-namespace policy). A policy with `targetRefs` applies
//! to the gateways it names: the pods labelled with a `Gateway`'s name (or, from the root
//! namespace, a `GatewayClass`'s), as Gateway API implementations label them. Waypoint
//! targets apply to no proxy here, and `unsupported` says so.
//!
//! What strait cannot check fails closed, as Istio does: an unknown `when` key or an invalid
//! value makes an ALLOW rule never match and is left out of a DENY rule (which then matches
//! more). Every such case is reported with file:line (`unsupported`).

use strait_api::Kind;
use strait_api::istio::PolicyTargetReference;
use strait_api::istio::security::{
    AuthorizationAction, Condition, JwtPresence, Rule, RuleOperation, Source,
};

use super::Runtime;
use crate::ids::ClusterId;
use crate::mesh::Mesh;
use crate::selector;
use crate::workload::Workload;
use strait_config::authz::*;
use strait_config::types::ProxyConfig;

/// The label Gateway API implementations put on a gateway's pods: the Gateway's name.
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";
/// The label naming the pods' GatewayClass.
pub const GATEWAY_CLASS_LABEL: &str = "gateway.networking.k8s.io/gateway-class-name";
const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// Whether a policy in `policy_ns` with selector `sel` and target references `refs` applies to
/// `w`. Without references: the root namespace's policies and the workload's namespace's,
/// narrowed by the selector. With references: the gateways they name. Both (Istio rejects
/// that): either, so that nothing a policy could mean is left unenforced.
pub fn applies(
    root: &str,
    policy_ns: &str,
    sel: Option<&std::collections::BTreeMap<String, String>>,
    refs: &[&PolicyTargetReference],
    w: &Workload,
) -> bool {
    let by_selector = (policy_ns == root || policy_ns == w.namespace)
        && sel.is_none_or(|s| selector::map_selects(s, &w.labels));
    if refs.is_empty() {
        return by_selector;
    }
    let by_ref = refs.iter().any(|r| targets(r, root, policy_ns, w));
    by_ref || (sel.is_some() && by_selector)
}

/// Whether reference `r` of a policy in `policy_ns` names `w`'s gateway: a `Gateway` of the
/// policy's namespace, or (from the root namespace) a `GatewayClass`. Waypoint targets
/// (`Service`, `ServiceEntry`) name no proxy strait runs.
pub fn targets(r: &PolicyTargetReference, root: &str, policy_ns: &str, w: &Workload) -> bool {
    if !r.group.is_empty() && r.group != GATEWAY_API_GROUP {
        return false;
    }
    let label = |k: &str| w.labels.get(k).map(String::as_str);
    match r.kind.as_str() {
        "Gateway" => {
            (r.namespace.is_empty() || r.namespace == policy_ns)
                && w.namespace == policy_ns
                && label(GATEWAY_NAME_LABEL) == Some(r.name.as_str())
        }
        "GatewayClass" => policy_ns == root && label(GATEWAY_CLASS_LABEL) == Some(r.name.as_str()),
        _ => false,
    }
}

/// A policy's target references, old single form and list alike.
pub fn target_refs<'a>(
    one: Option<&'a PolicyTargetReference>,
    many: &'a [PolicyTargetReference],
) -> Vec<&'a PolicyTargetReference> {
    one.into_iter().chain(many).collect()
}

/// The policies of kind `kind` in cluster `c` that apply to `w`, ordered by namespace and
/// name (Istio's order). `spec` reads an object's spec with its selector and target refs.
fn selecting<'c, S>(
    c: &'c crate::cluster::Cluster,
    root: &str,
    w: &Workload,
    kind: Kind,
    spec: impl Fn(
        &'c strait_api::Object,
    ) -> Option<(
        &'c S,
        Option<&'c strait_api::istio::MatchLabels>,
        Option<&'c PolicyTargetReference>,
        &'c [PolicyTargetReference],
    )>,
) -> Vec<(&'c strait_api::Object, &'c S)> {
    let mut out: Vec<(&strait_api::Object, &S)> = c
        .of_kind(kind)
        .filter_map(|(_, o)| {
            let (s, sel, one, many) = spec(o)?;
            applies(
                root,
                o.namespace(),
                sel.map(|s| &s.match_labels),
                &target_refs(one, many),
                w,
            )
            .then_some((o, s))
        })
        .collect();
    out.sort_by(|a, b| (a.0.namespace(), a.0.name()).cmp(&(b.0.namespace(), b.0.name())));
    out
}

pub(super) fn compile(
    mesh: &Mesh,
    config: ClusterId,
    rt: &Runtime,
    w: &Workload,
    out: &mut ProxyConfig,
) {
    let c = mesh.cluster(config);
    let root = c.root_namespace().to_string();
    let trust_domains: Vec<String> = std::iter::once(c.trust_domain().to_string())
        .chain(c.mesh_config.trust_domain_aliases.iter().cloned())
        .collect();
    let policies = selecting(c, &root, w, Kind::AuthorizationPolicy, |o| {
        o.authorization_policy().map(|p| {
            let p = &p.spec;
            (
                p,
                p.selector.as_ref(),
                p.target_ref.as_ref(),
                &p.target_refs[..],
            )
        })
    });
    let mut authz = Authz::default();
    for (o, p) in policies {
        let name = format!("{}/{}", o.namespace(), o.name());
        let action = p.action.unwrap_or(AuthorizationAction::Allow);
        if action == AuthorizationAction::Custom {
            authz.custom.push(name);
            continue;
        }
        let policy = AuthzPolicy {
            name,
            rules: p.rules.iter().map(|r| rule(r, &trust_domains)).collect(),
        };
        match action {
            AuthorizationAction::Allow => authz.allow.push(policy),
            AuthorizationAction::Deny => authz.deny.push(policy),
            AuthorizationAction::Audit => authz.audit.push(policy),
            AuthorizationAction::Custom => {}
        }
    }
    let ras = selecting(c, &root, w, Kind::RequestAuthentication, |o| {
        o.request_authentication().map(|p| {
            let p = &p.spec;
            (
                p,
                p.selector.as_ref(),
                p.target_ref.as_ref(),
                &p.target_refs[..],
            )
        })
    });
    for (o, ra) in ras {
        for j in &ra.jwt_rules {
            let uri = if j.jwks_uri.is_empty() {
                &j.jwks_uri_legacy
            } else {
                &j.jwks_uri
            };
            let (jwks, source) = if !j.jwks.is_empty() {
                (j.jwks.clone(), "inline".to_string())
            } else if !uri.is_empty() {
                (rt.jwks.get(uri).cloned().unwrap_or_default(), uri.clone())
            } else {
                (String::new(), "none".to_string())
            };
            authz.jwt.push(JwtProvider {
                policy: format!("{}/{}", o.namespace(), o.name()),
                issuer: j.issuer.clone(),
                audiences: j.audiences.clone(),
                jwks,
                jwks_source: source,
                from_headers: j
                    .from_headers
                    .iter()
                    .map(|h| JwtHeader {
                        name: h.name.to_ascii_lowercase(),
                        prefix: h.prefix.clone(),
                    })
                    .collect(),
                from_params: j.from_params.clone(),
                from_cookies: j.from_cookies.clone(),
                output_payload_to_header: j.output_payload_to_header.to_ascii_lowercase(),
                forward_original_token: j.forward_original_token,
                output_claim_to_headers: j
                    .output_claim_to_headers
                    .iter()
                    .map(|h| (h.header.to_ascii_lowercase(), h.claim.clone()))
                    .collect(),
                space_delimited_claims: j.space_delimited_claims.clone(),
                required: j.presence == Some(JwtPresence::Required),
            });
        }
    }
    out.authz = authz;
}

fn strings(v: &[String]) -> Vec<StringMatch> {
    v.iter().map(|s| StringMatch::parse(s)).collect()
}

/// Principals as written in policies (`cluster.local/ns/a/sa/b`, a `spiffe://` some users add
/// dropped), expanded over the mesh's trust domains as istiod expands them: a principal in the
/// trust domain, one of its aliases, or `cluster.local` (which Istio reads as "the local trust
/// domain") matches the same workload under every one of them. Others stay as written.
fn principals(v: &[String], trust_domains: &[String]) -> Vec<StringMatch> {
    let mut out = Vec::new();
    for written in v {
        let p = written.strip_prefix("spiffe://").unwrap_or(written);
        let td = p.split_once("/ns/").map(|(td, _)| td);
        match td {
            Some(td)
                if !td.contains('*')
                    && (td == "cluster.local" || trust_domains.iter().any(|t| t == td)) =>
            {
                let rest = &p[td.len()..];
                for t in trust_domains {
                    let m = StringMatch::parse(&format!("{t}{rest}"));
                    if !out.contains(&m) {
                        out.push(m);
                    }
                }
            }
            _ => out.push(StringMatch::parse(p)),
        }
    }
    out
}

fn rule(r: &Rule, tds: &[String]) -> AuthzRule {
    let mut out = AuthzRule::default();
    for f in &r.from {
        if let Some(s) = &f.source {
            out.from.push(source(s, tds, &mut out.unsupported));
        }
    }
    for t in &r.to {
        if let Some(op) = &t.operation {
            out.to.push(operation(op, &mut out.unsupported));
        }
    }
    for cond in &r.when {
        match condition(cond, tds) {
            Ok(c) => out.when.push(c),
            // Unknown to strait: an ALLOW rule must not match on it, a DENY rule matches
            // without it (more).
            Err(why) => out.unsupported.push(why),
        }
    }
    out
}

fn source(s: &Source, tds: &[String], unsupported: &mut Vec<String>) -> SourceMatch {
    if !s.trust_domains.is_empty() || !s.not_trust_domains.is_empty() {
        unsupported.push("source.trustDomains".into());
    }
    SourceMatch {
        principals: principals(&s.principals, tds),
        not_principals: principals(&s.not_principals, tds),
        request_principals: strings(&s.request_principals),
        not_request_principals: strings(&s.not_request_principals),
        namespaces: strings(&s.namespaces),
        not_namespaces: strings(&s.not_namespaces),
        service_accounts: strings(&s.service_accounts),
        not_service_accounts: strings(&s.not_service_accounts),
        ip_blocks: s.ip_blocks.clone(),
        not_ip_blocks: s.not_ip_blocks.clone(),
        remote_ip_blocks: s.remote_ip_blocks.clone(),
        not_remote_ip_blocks: s.not_remote_ip_blocks.clone(),
    }
}

fn ports(v: &[String], field: &str, unsupported: &mut Vec<String>) -> Vec<u32> {
    v.iter()
        .filter_map(|p| match p.parse::<u32>() {
            Ok(n) if n > 0 && n <= 65535 => Some(n),
            _ => {
                unsupported.push(format!("{field}: {p:?} is not a port number"));
                None
            }
        })
        .collect()
}

fn operation(op: &RuleOperation, unsupported: &mut Vec<String>) -> OperationMatch {
    OperationMatch {
        hosts: strings(&op.hosts),
        not_hosts: strings(&op.not_hosts),
        ports: ports(&op.ports, "operation.ports", unsupported),
        not_ports: ports(&op.not_ports, "operation.notPorts", unsupported),
        methods: strings(&op.methods),
        not_methods: strings(&op.not_methods),
        paths: strings(&op.paths),
        not_paths: strings(&op.not_paths),
    }
}

/// `[a][b]` → `["a", "b"]`: one or more non-empty names, each in brackets, nothing else.
pub(super) fn bracketed(text: &str) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(r) = rest.strip_prefix('[') {
        let end = r.find(']')?;
        names.push(r[..end].to_string());
        rest = &r[end + 1..];
    }
    (rest.is_empty() && !names.is_empty() && names.iter().all(|n| !n.is_empty())).then_some(names)
}

/// A `when` key as Istio names it.
pub fn condition_key(key: &str) -> Option<ConditionKey> {
    let bracket = |prefix: &str| bracketed(key.strip_prefix(prefix)?);
    Some(match key {
        "source.ip" => ConditionKey::SourceIp,
        "remote.ip" => ConditionKey::RemoteIp,
        "source.namespace" => ConditionKey::SourceNamespace,
        "source.principal" => ConditionKey::SourcePrincipal,
        "source.serviceAccount" => ConditionKey::SourceServiceAccount,
        "request.auth.principal" => ConditionKey::RequestAuthPrincipal,
        "request.auth.audiences" => ConditionKey::RequestAuthAudiences,
        "request.auth.presenter" => ConditionKey::RequestAuthPresenter,
        "destination.ip" => ConditionKey::DestinationIp,
        "destination.port" => ConditionKey::DestinationPort,
        "connection.sni" => ConditionKey::ConnectionSni,
        _ => {
            if let Some(names) = bracket("request.headers") {
                let [name] = names.as_slice() else {
                    return None;
                };
                ConditionKey::RequestHeader(name.to_ascii_lowercase())
            } else if let Some(names) = bracket("request.auth.claims") {
                ConditionKey::RequestAuthClaim(names)
            } else {
                return None;
            }
        }
    })
}

fn condition(c: &Condition, tds: &[String]) -> Result<ConditionMatch, String> {
    let key = condition_key(&c.key).ok_or_else(|| format!("when key {:?}", c.key))?;
    let values = |v: &[String]| -> Vec<StringMatch> {
        match key {
            ConditionKey::SourcePrincipal => principals(v, tds),
            _ => strings(v),
        }
    };
    Ok(ConditionMatch {
        values: values(&c.values),
        not_values: values(&c.not_values),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_keys_as_istio_writes_them() {
        assert_eq!(
            condition_key("request.headers[X-Token]"),
            Some(ConditionKey::RequestHeader("x-token".into()))
        );
        assert_eq!(
            condition_key("request.auth.claims[groups]"),
            Some(ConditionKey::RequestAuthClaim(vec!["groups".into()]))
        );
        assert_eq!(
            condition_key("request.auth.claims[nested][key]"),
            Some(ConditionKey::RequestAuthClaim(vec![
                "nested".into(),
                "key".into()
            ]))
        );
        assert_eq!(condition_key("source.ip"), Some(ConditionKey::SourceIp));
        assert_eq!(condition_key("request.headers"), None);
        assert_eq!(condition_key("request.headers[a]x"), None);
        assert_eq!(condition_key("experimental.envoy.filters.a"), None);
    }
}
