//! STR0306: ALLOW rules asking for identities no caller of the mesh has.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use strait_api::Kind;
use strait_api::istio::security::Source;
use strait_model::compile::{
    ConditionKey, StringMatch, condition_key, policy_applies, target_refs,
};
use strait_model::{ClusterId, Mesh, Workload};

use super::super::util::{self, join};
use super::{Policy, some_of};
use crate::catalog::STR0306;
use crate::context::Ctx;

/// Whether a RequestAuthentication with JWT rules applies to `w`: only then do requests to it
/// carry a request principal.
fn verifies_jwt(mesh: &Mesh, config: ClusterId, w: &Workload) -> bool {
    let root = mesh.cluster(config).root_namespace();
    util::in_cluster(mesh, config, Kind::RequestAuthentication).any(|(_, o)| {
        o.request_authentication().is_some_and(|ra| {
            !ra.spec.jwt_rules.is_empty()
                && policy_applies(
                    root,
                    o.namespace(),
                    ra.spec.selector.as_ref().map(|s| &s.match_labels),
                    &target_refs(ra.spec.target_ref.as_ref(), &ra.spec.target_refs),
                    w,
                )
        })
    })
}

/// `when` keys that need a verified JWT to hold (with values; `notValues` alone hold without).
fn needs_jwt(key: &str) -> bool {
    matches!(
        condition_key(key),
        Some(
            ConditionKey::RequestAuthPrincipal
                | ConditionKey::RequestAuthAudiences
                | ConditionKey::RequestAuthPresenter
                | ConditionKey::RequestAuthClaim(_)
        )
    )
}

/// STR0306: an ALLOW rule whose every source asks for an identity no caller has.
pub(super) fn check_unsatisfiable(
    ctx: &mut Ctx,
    config: ClusterId,
    p: &Policy,
    targets: &[&Workload],
    ids: &Identities,
) {
    let mesh = ctx.mesh;
    let own_td = mesh.cluster(config).trust_domain().replace('@', ".");
    let jwt: Vec<bool> = targets
        .iter()
        .map(|w| verifies_jwt(mesh, config, w))
        .collect();
    for (i, rule) in p.spec.rules.iter().enumerate() {
        let sources: Vec<(usize, &Source, Option<Vec<String>>)> = rule
            .from
            .iter()
            .enumerate()
            .filter_map(|(j, f)| f.source.as_ref().map(|s| (j, s)))
            .map(|(j, s)| (j, s, ids.unmatched(&s.principals, &own_td)))
            .collect();
        let when_jwt: Vec<usize> = rule
            .when
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.values.is_empty() && needs_jwt(&c.key))
            .map(|(k, _)| k)
            .collect();
        let from_dead = |has_jwt: bool| {
            !sources.is_empty()
                && sources.iter().all(|(_, s, principals)| {
                    principals.is_some() || (!s.request_principals.is_empty() && !has_jwt)
                })
        };
        let dead: Vec<(&Workload, bool)> = targets
            .iter()
            .zip(&jwt)
            .filter(|(_, has)| from_dead(**has) || (!when_jwt.is_empty() && !**has))
            .map(|(w, has)| (*w, *has))
            .collect();
        if dead.is_empty() {
            continue;
        }
        let mut reasons: Vec<String> = sources
            .iter()
            .filter_map(|(_, _, r)| r.clone())
            .flatten()
            .collect();
        reasons.dedup();
        let without_jwt: Vec<String> = dead
            .iter()
            .filter(|(_, has)| !has)
            .map(|(w, _)| format!("{}/{}", w.namespace, w.name))
            .collect();
        let mut needing: Vec<String> = Vec::new();
        if sources
            .iter()
            .any(|(_, s, r)| r.is_none() && !s.request_principals.is_empty())
        {
            needing.push("requestPrincipals".into());
        }
        needing.extend(
            when_jwt
                .iter()
                .map(|k| format!("when {}", rule.when[*k].key)),
        );
        if !needing.is_empty() && !without_jwt.is_empty() {
            let verb = if needing.len() == 1 && !when_jwt.is_empty() {
                "needs"
            } else {
                "need"
            };
            let it = if without_jwt.len() == 1 {
                "it (the same selector or targetRefs)"
            } else {
                "them"
            };
            reasons.push(format!(
                "{} {verb} a JWT verified by a RequestAuthentication, and none with jwtRules applies to {}: add one for the token's issuer that applies to {it}",
                join(&needing),
                some_of(without_jwt, 4)
            ));
        }
        let scope = if dead.len() == targets.len() {
            String::new()
        } else {
            let names: Vec<String> = dead
                .iter()
                .map(|(w, _)| format!("{}/{}", w.namespace, w.name))
                .collect();
            format!(" on {}", some_of(names, 4))
        };
        let field = match sources.as_slice() {
            _ if !from_dead(dead[0].1) => format!(
                "spec.rules[{i}].when[{}]",
                when_jwt.first().copied().unwrap_or(0)
            ),
            [(j, _, Some(_))] => format!("spec.rules[{i}].from[{j}].source.principals"),
            [(j, _, None)] => format!("spec.rules[{i}].from[{j}].source.requestPrincipals"),
            _ => format!("spec.rules[{i}].from"),
        };
        ctx.at(
            STR0306,
            p.id,
            &field,
            format!(
                "this ALLOW rule can never match{scope}, so the requests it is meant to allow are denied unless another rule allows them: {}",
                reasons.join("; ")
            ),
        );
    }
}

/// The workload identities of the whole mesh, to judge principals against.
pub(super) struct Identities {
    /// `<trust-domain>/ns/<ns>/sa/<sa>` of every workload, under every trust domain the mesh
    /// accepts (its own and its aliases).
    known: BTreeSet<String>,
    /// The same for ServiceAccount objects: something the manifests do not show as a workload
    /// (a Job, a CronJob) may run as one, so a principal naming one is not judged.
    accounts: BTreeSet<String>,
    trust_domains: BTreeSet<String>,
    /// Whether a manifest states the trust domain; if not, `cluster.local` is only Istio's
    /// default and a principal naming another is taken to know better.
    td_stated: bool,
    /// Service accounts workloads run as, by namespace: a namespace here is one whose
    /// workloads the manifests show.
    by_ns: BTreeMap<String, BTreeSet<String>>,
}

impl Identities {
    pub(super) fn of(mesh: &Mesh) -> Identities {
        let mut trust_domains = BTreeSet::new();
        let mut td_stated = false;
        for c in &mesh.clusters {
            trust_domains.insert(c.trust_domain().replace('@', "."));
            trust_domains.extend(c.mesh_config.trust_domain_aliases.iter().cloned());
            td_stated |= c.mesh_config.trust_domain.is_some();
        }
        // Istio (and strait's compiler) reads `cluster.local` in a policy as the local trust
        // domain: a principal written with it matches the workload under the mesh's own.
        trust_domains.insert("cluster.local".to_string());
        let under = |pairs: &mut dyn Iterator<Item = (String, String)>| -> BTreeSet<String> {
            pairs
                .flat_map(|(ns, sa)| {
                    trust_domains
                        .iter()
                        .map(move |td| format!("{td}/ns/{ns}/sa/{sa}"))
                })
                .collect()
        };
        let mut by_ns: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for w in &mesh.workloads {
            by_ns
                .entry(w.namespace.clone())
                .or_default()
                .insert(w.service_account.clone());
        }
        let known = under(
            &mut by_ns
                .iter()
                .flat_map(|(ns, sas)| sas.iter().map(|sa| (ns.clone(), sa.clone()))),
        );
        // Istio's namespace often holds istiod from one install and gateways from another
        // (Helm charts, the operator): that its manifests show some workloads says little
        // about which service accounts run there.
        for c in &mesh.clusters {
            by_ns.remove(&c.istio_namespace);
        }
        let accounts = under(
            &mut util::objects(mesh, Kind::ServiceAccount)
                .map(|(_, o)| (o.namespace().to_string(), o.name().to_string())),
        );
        Identities {
            known,
            accounts,
            trust_domains,
            td_stated,
            by_ns,
        }
    }

    /// Whether a workload or a service account of the mesh has an identity `m` matches: a
    /// lookup for an exact or prefix pattern (a mesh of 25,000 workloads has 100,000
    /// identities, and every principal of every policy is judged), a scan for a suffix.
    fn any(&self, m: &StringMatch) -> bool {
        [&self.known, &self.accounts]
            .into_iter()
            .any(|set| match m {
                StringMatch::Exact(e) => set.contains(e),
                StringMatch::Prefix(p) => set
                    .range::<str, _>((Bound::Included(p.as_str()), Bound::Unbounded))
                    .next()
                    .is_some_and(|id| id.starts_with(p.as_str())),
                StringMatch::Suffix(_) | StringMatch::Presence => {
                    set.iter().any(|id| m.matches(id))
                }
            })
    }

    /// Why none of `principals` can match a caller, one reason each; None when one may (or
    /// when there are none).
    fn unmatched(&self, principals: &[String], own_td: &str) -> Option<Vec<String>> {
        if principals.is_empty() {
            return None;
        }
        principals.iter().map(|p| self.judge(p, own_td)).collect()
    }

    /// Why no caller of the mesh has principal `written`; None when one has, or when the
    /// manifests do not show the namespace it names.
    fn judge(&self, written: &str, own_td: &str) -> Option<String> {
        let p = written.strip_prefix("spiffe://").unwrap_or(written);
        let m = StringMatch::parse(p);
        if matches!(m, StringMatch::Presence) || self.any(&m) {
            return None;
        }
        let Some(shape) = Shape::of(&m) else {
            return Some(format!(
                "principal \"{written}\" is not a workload identity, which reads <trust-domain>/ns/<namespace>/sa/<service-account>"
            ));
        };
        let foreign = shape.td.filter(|td| !self.trust_domains.contains(*td));
        let (fixed, foreign) = match foreign {
            Some(td) => {
                let fixed = format!("{own_td}{}", &p[td.len()..]);
                (fixed, self.td_stated.then_some(td))
            }
            None => (p.to_string(), None),
        };
        let fixed_matches = self.any(&StringMatch::parse(&fixed));
        let td_reason = foreign.map(|td| {
            let aliases: Vec<&String> = self
                .trust_domains
                .iter()
                .filter(|t| *t != own_td && *t != "cluster.local")
                .collect();
            let also = if aliases.is_empty() {
                String::new()
            } else {
                format!(" (or an alias: {})", aliases.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
            };
            format!(
                "principal \"{written}\" is in trust domain {td}, but this mesh's is {own_td}{also}, so no workload presents it"
            )
        });
        if fixed_matches {
            return td_reason.map(|r| format!("{r}; write \"{fixed}\""));
        }
        let runs_as = shape
            .ns
            .and_then(|ns| self.by_ns.get(ns).map(|sas| (ns, sas)));
        let sa_reason = runs_as.map(|(ns, sas)| {
            let sas: Vec<String> = sas.iter().cloned().collect();
            let what = match shape.sa {
                Some(sa) => format!("no workload in namespace {ns} runs as service account {sa}"),
                None => format!("no workload identity in namespace {ns} matches it"),
            };
            format!(
                "{what} (they run as {}): name one of those, or set serviceAccountName on the caller",
                join(&sas)
            )
        });
        match (td_reason, sa_reason) {
            (Some(td), Some(sa)) => Some(format!("{td}, and {sa}")),
            (Some(td), None) => Some(format!("{td}; write \"{fixed}\"")),
            (None, Some(sa)) => Some(format!("principal \"{written}\": {sa}")),
            (None, None) => None,
        }
    }
}

/// The parts of a principal pattern that are written out whole.
#[derive(Debug, PartialEq, Eq)]
struct Shape<'a> {
    td: Option<&'a str>,
    ns: Option<&'a str>,
    sa: Option<&'a str>,
}

impl<'a> Shape<'a> {
    /// None: an exact principal that is no SPIFFE identity at all.
    fn of(m: &'a StringMatch) -> Option<Shape<'a>> {
        let none = Shape {
            td: None,
            ns: None,
            sa: None,
        };
        Some(match m {
            StringMatch::Exact(s) => {
                let parts: Vec<&str> = s.split('/').collect();
                match parts.as_slice() {
                    [td, "ns", ns, "sa", sa]
                        if !td.is_empty() && !ns.is_empty() && !sa.is_empty() =>
                    {
                        Shape {
                            td: Some(td),
                            ns: Some(ns),
                            sa: Some(sa),
                        }
                    }
                    _ => return None,
                }
            }
            StringMatch::Prefix(s) => {
                let Some((td, rest)) = s.split_once('/') else {
                    return Some(none);
                };
                let ns = rest
                    .strip_prefix("ns/")
                    .and_then(|r| r.split_once('/'))
                    .map(|(ns, _)| ns)
                    .filter(|ns| !ns.is_empty());
                Shape {
                    td: Some(td).filter(|t| !t.is_empty()),
                    ns,
                    sa: None,
                }
            }
            StringMatch::Suffix(s) => {
                let Some((_, rest)) = s.split_once("/ns/") else {
                    return Some(none);
                };
                let Some((ns, tail)) = rest.split_once('/') else {
                    return Some(none);
                };
                let sa = tail
                    .strip_prefix("sa/")
                    .filter(|sa| !sa.is_empty() && !sa.contains('/'));
                Shape {
                    td: None,
                    ns: Some(ns).filter(|n| !n.is_empty()),
                    sa,
                }
            }
            StringMatch::Presence => none,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(td_stated: bool) -> Identities {
        // As `Identities::of` builds them: every identity under `cluster.local` too.
        let known: BTreeSet<String> = [
            "example.org/ns/shop/sa/frontend".to_string(),
            "cluster.local/ns/shop/sa/frontend".to_string(),
        ]
        .into();
        Identities {
            known,
            accounts: ["example.org/ns/shop/sa/nightly-report".to_string()].into(),
            trust_domains: ["example.org".to_string(), "cluster.local".to_string()].into(),
            td_stated,
            by_ns: [("shop".to_string(), ["frontend".to_string()].into())].into(),
        }
    }

    #[test]
    fn principals_judged_like_the_proxy_matches_them() {
        let i = ids(true);
        let td = "example.org";
        assert_eq!(i.judge("example.org/ns/shop/sa/frontend", td), None);
        assert_eq!(
            i.judge("spiffe://example.org/ns/shop/sa/frontend", td),
            None
        );
        assert_eq!(i.judge("*/sa/frontend", td), None);
        assert_eq!(i.judge("*", td), None);
        // A ServiceAccount object: maybe a CronJob runs as it.
        assert_eq!(i.judge("example.org/ns/shop/sa/nightly-report", td), None);
        // A namespace whose workloads are not in the manifests.
        assert_eq!(i.judge("example.org/ns/billing/sa/api", td), None);
        // `cluster.local` stands for the local trust domain, as in Istio.
        assert_eq!(i.judge("cluster.local/ns/shop/sa/frontend", td), None);
        let wrong_td = i.judge("example.com/ns/shop/sa/frontend", td).unwrap();
        assert!(
            wrong_td.contains("write \"example.org/ns/shop/sa/frontend\""),
            "{wrong_td}"
        );
        let wrong_sa = i.judge("example.org/ns/shop/sa/front", td).unwrap();
        assert!(wrong_sa.contains("they run as frontend"), "{wrong_sa}");
        assert!(i.judge("example.org/ns/shop/sa/fr*", td).is_none());
        assert!(i.judge("example.org/ns/shop/sa/x*", td).is_some());
        assert!(i.judge("shop/frontend", td).is_some());
        // The trust domain is only Istio's default: a principal naming another is not judged
        // on it, only on its namespace and account.
        let i = ids(false);
        assert_eq!(i.judge("corp.example/ns/shop/sa/frontend", td), None);
        assert!(i.judge("corp.example/ns/shop/sa/backend", td).is_some());
    }

    #[test]
    fn shapes() {
        let m = StringMatch::parse("td/ns/a/*");
        assert_eq!(
            Shape::of(&m),
            Some(Shape {
                td: Some("td"),
                ns: Some("a"),
                sa: None
            })
        );
        let m = StringMatch::parse("*/ns/a/sa/b");
        assert_eq!(
            Shape::of(&m),
            Some(Shape {
                td: None,
                ns: Some("a"),
                sa: Some("b")
            })
        );
        let m = StringMatch::parse("td/ns/a*");
        assert_eq!(Shape::of(&m).and_then(|s| s.ns), None);
    }
}
