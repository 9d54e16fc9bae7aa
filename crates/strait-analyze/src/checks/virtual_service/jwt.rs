//! IST0149: routing on JWT claims (`@request.auth.claims.*` headers) at a gateway whose pods
//! no RequestAuthentication applies to: the claims are never extracted, so the match never
//! applies. Mirrors Istio's `JWTClaimRouteAnalyzer`: a RequestAuthentication counts when it is
//! in the pod's namespace or the root namespace (Istio also always looks in `istio-system`)
//! and its selector matches the pod.

use strait_api::Kind;
use strait_api::istio::virtual_service::VirtualServiceSpec;
use strait_model::{ObjId, Workload, selector};

use crate::catalog::IST0149;
use crate::checks::util;
use crate::context::Ctx;

/// Whether a header name is a JWT claim pseudo-header, the way Istio parses them
/// (`@request.auth.claims.a.b` or `@request.auth.claims[a][b]`, prefix in any case).
fn is_claim_header(name: &str) -> bool {
    const PREFIX: &str = "@request.auth.claims";
    let Some(head) = name.get(..PREFIX.len()) else {
        return false;
    };
    if !head.eq_ignore_ascii_case(PREFIX) {
        return false;
    }
    let rest = &name[PREFIX.len()..];
    (rest.starts_with('.') && rest.len() > 1)
        || (rest.starts_with('[') && rest.ends_with(']') && rest.len() > 2)
}

pub(super) fn check(ctx: &mut Ctx, id: ObjId, ns: &str, spec: &VirtualServiceSpec) {
    let mesh = ctx.mesh;
    let mut claim_paths = Vec::new();
    for (i, r) in spec.http.iter().enumerate() {
        for (j, m) in r.matches.iter().enumerate() {
            for (field, map) in [
                ("headers", &m.headers),
                ("withoutHeaders", &m.without_headers),
            ] {
                for key in map.keys().filter(|k| is_claim_header(k)) {
                    claim_paths.push((
                        format!("spec.http[{i}].match[{j}].{field}[\"{key}\"]"),
                        key.clone(),
                    ));
                }
            }
        }
    }
    if claim_paths.is_empty() {
        return;
    }
    let cluster = mesh.cluster(id.cluster);
    let root = cluster.root_namespace();
    let covered = |w: &Workload| {
        util::in_cluster(mesh, id.cluster, Kind::RequestAuthentication).any(|(_, o)| {
            let Some(ra) = o.request_authentication() else {
                return false;
            };
            let in_scope = o.namespace() == w.namespace
                || o.namespace() == root
                || o.namespace() == "istio-system";
            let selects = ra
                .spec
                .selector
                .as_ref()
                .is_none_or(|s| selector::map_selects(&s.match_labels, &w.labels));
            in_scope && selects && !ra.spec.jwt_rules.is_empty()
        })
    };
    let mut uncovered = Vec::new();
    for g in spec.gateways.iter().filter(|g| g.as_str() != "mesh") {
        let (gns, name) = util::split_ref(g, ns);
        let Some((_, gw_obj)) = cluster.find(Kind::Gateway, gns, name) else {
            continue;
        };
        let Some(gw) = gw_obj.gateway() else { continue };
        // A Gateway without selector applies to every gateway proxy.
        let pods: Vec<&Workload> = if gw.spec.selector.is_empty() {
            mesh.workloads
                .iter()
                .filter(|w| w.cluster == id.cluster && w.gateway.is_some())
                .collect()
        } else {
            mesh.select(id.cluster, "", &gw.spec.selector).collect()
        };
        for w in pods {
            if !covered(w) {
                uncovered.push(format!("{}/{} (gateway {gns}/{name})", w.namespace, w.name));
            }
        }
    }
    if uncovered.is_empty() {
        return;
    }
    for (path, key) in claim_paths {
        ctx.at_key(
            IST0149,
            id,
            &path,
            format!(
                "routing on JWT claim \"{key}\" needs a RequestAuthentication on the gateway pods, but none applies to {}: the claim is never extracted and this match never applies",
                util::join(&uncovered)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::is_claim_header;

    #[test]
    fn claim_headers_parse_like_istio() {
        assert!(is_claim_header("@request.auth.claims.groups"));
        assert!(is_claim_header("@Request.Auth.Claims.groups"));
        assert!(is_claim_header("@request.auth.claims[nested][key]"));
        assert!(!is_claim_header("@request.auth.claims"));
        assert!(!is_claim_header("@request.auth.claims."));
        assert!(!is_claim_header("@request.auth.claimsgroups"));
        assert!(!is_claim_header("x-user"));
    }
}
