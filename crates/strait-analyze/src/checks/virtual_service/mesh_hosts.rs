//! IST0109: VirtualServices bound to the mesh gateway that claim the same host where a
//! sidecar can see both; only one of them applies.
//!
//! Visibility follows Istio's analyzer (`ConflictingMeshGatewayHostsAnalyzer`): each
//! VirtualService claims its hosts in every namespace of its `exportTo` (`.` is its own
//! namespace; none or `*` is every namespace). Two claims in the same namespace scope
//! conflict when their hosts are equal; a claim exported everywhere also conflicts with a
//! namespace-scoped claim whose host it overlaps, wildcards included (`*.example.com` and
//! `api.example.com`). Two claims exported everywhere conflict only on an equal host.
//! A VirtualService exported nowhere (`~`) claims nothing.

use std::collections::{BTreeMap, BTreeSet};

use strait_model::{ObjId, host};

use crate::catalog::IST0109;
use crate::checks::util::{self, fqdn};
use crate::context::Ctx;

/// One host entry of a mesh-bound VirtualService.
struct Claim {
    vs: ObjId,
    /// Index in `spec.hosts`.
    index: usize,
}

/// What one host entry conflicts with.
struct Conflict {
    /// The fully qualified host of the first conflict found.
    host: String,
    others: BTreeSet<ObjId>,
    /// The namespace where both are visible (`None`: everywhere).
    scope: Option<String>,
}

pub(super) fn check(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    // (cluster, scope namespace or None for every namespace, fully qualified host)
    let mut claims: BTreeMap<(u16, Option<String>, String), Vec<Claim>> = BTreeMap::new();
    for (id, o, vs) in util::virtual_services(mesh) {
        if !util::binds_mesh(&vs.spec.gateways) {
            continue;
        }
        let scopes: BTreeSet<Option<String>> =
            if vs.spec.export_to.is_empty() || vs.spec.export_to.iter().any(|e| e == "*") {
                BTreeSet::from([None])
            } else {
                vs.spec
                    .export_to
                    .iter()
                    .filter(|e| e.as_str() != "~")
                    .map(|e| Some(if e == "." { o.namespace() } else { e.as_str() }.to_string()))
                    .collect()
            };
        for scope in scopes {
            for (index, h) in vs.spec.hosts.iter().enumerate() {
                claims
                    .entry((id.cluster.0, scope.clone(), fqdn(mesh, id, h)))
                    .or_default()
                    .push(Claim { vs: id, index });
            }
        }
    }
    // Conflicting VirtualServices per host entry, and the namespace the conflict is seen in.
    let mut conflicts: BTreeMap<(ObjId, usize), Conflict> = BTreeMap::new();
    // Claims exported everywhere, the only ones a namespace-scoped claim is matched against
    // by wildcard.
    let everywhere: Vec<(u16, &str, &Vec<Claim>)> = claims
        .iter()
        .filter(|((_, s, _), _)| s.is_none())
        .map(|((c, _, h), v)| (*c, h.as_str(), v))
        .collect();
    for ((cluster, scope, h), own) in &claims {
        let mut group: Vec<&Claim> = own.iter().collect();
        if scope.is_some() {
            group.extend(
                everywhere
                    .iter()
                    .filter(|(c, other, _)| c == cluster && host::matches(h, other))
                    .flat_map(|(_, _, v)| v.iter()),
            );
        }
        let distinct: BTreeSet<ObjId> = group.iter().map(|c| c.vs).collect();
        if distinct.len() < 2 {
            continue;
        }
        for c in &group {
            let entry = conflicts
                .entry((c.vs, c.index))
                .or_insert_with(|| Conflict {
                    host: h.clone(),
                    others: BTreeSet::new(),
                    scope: scope.clone(),
                });
            entry.others.extend(distinct.iter().filter(|o| **o != c.vs));
        }
    }
    for (
        (id, index),
        Conflict {
            host: h,
            others,
            scope,
        },
    ) in conflicts
    {
        let names: Vec<String> = others
            .iter()
            .map(|o| mesh.object(*o).display_name())
            .collect();
        let seen = match scope {
            Some(ns) => format!(" (both are visible in namespace {ns})"),
            None => String::new(),
        };
        // The entry's own host: in a wildcard overlap it differs from the group's.
        let own = mesh
            .object(id)
            .virtual_service()
            .and_then(|v| v.spec.hosts.get(index))
            .map_or(h, |w| fqdn(mesh, id, w));
        ctx.at(
            IST0109,
            id,
            &format!("spec.hosts[{index}]"),
            format!("host {own} is also claimed for the mesh by {}{seen}; only one VirtualService per host applies to sidecars (merge them, or use delegation)", util::join(&names)),
        );
    }
}
