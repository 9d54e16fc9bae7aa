//! Istio's admission webhooks: injection webhooks whose selectors overlap (a pod would be
//! injected twice) or that call a Service that is not there (IST0139), and webhooks of an
//! external control plane whose URL is unusable (IST0163) or an IP address (IST0164).
//!
//! Overlap is decided the way istioctl does it: evaluate every webhook's selectors against the
//! label combinations Istio's own webhooks distinguish (namespace `istio-injection` and
//! `istio.io/rev`, pod `sidecar.istio.io/inject` and `istio.io/rev`, with every revision that
//! appears), and require at most one match per combination. Other labels are taken as absent,
//! which is what keeps the `istio.io/deactivated: never-match` entries of a tagged install out.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::admissionregistration::v1::WebhookClientConfig;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use strait_api::{Kind, Object};
use strait_model::{Cluster, ObjId, selector};

use crate::catalog::{IST0139, IST0163, IST0164};
use crate::context::Ctx;

const REV: &str = "istio.io/rev";
const NS_INJECTION: &str = "istio-injection";
const POD_INJECT: &str = "sidecar.istio.io/inject";

/// One entry of an injection webhook configuration.
struct Hook<'a> {
    obj: ObjId,
    config: &'a str,
    index: usize,
    name: &'a str,
    namespace_selector: Option<&'a LabelSelector>,
    object_selector: Option<&'a LabelSelector>,
}

impl Hook<'_> {
    fn matches(&self, ns: &BTreeMap<String, String>, pod: &BTreeMap<String, String>) -> bool {
        let ok =
            |s: Option<&LabelSelector>, l| s.is_none_or(|s| selector::label_selector_matches(s, l));
        ok(self.namespace_selector, ns) && ok(self.object_selector, pod)
    }
}

fn is_injector(o: &Object) -> bool {
    let name = o.name();
    name.starts_with("istio-sidecar-injector")
        || name.starts_with("istio-revision-tag-")
        || o.mutating_webhook()
            .and_then(|m| m.webhooks.as_ref())
            .is_some_and(|w| {
                w.iter()
                    .any(|h| h.name.ends_with("sidecar-injector.istio.io"))
            })
}

fn is_validator(o: &Object) -> bool {
    let name = o.name();
    name.starts_with("istio-validator")
        || name == "istiod-default-validator"
        || o.validating_webhook()
            .and_then(|m| m.webhooks.as_ref())
            .is_some_and(|w| w.iter().any(|h| h.name.ends_with("validation.istio.io")))
}

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in &mesh.clusters {
        let mut hooks = Vec::new();
        let mut missing_reported = BTreeSet::new();
        for (id, o) in c.of_kind(Kind::MutatingWebhookConfiguration) {
            let Some(m) = o.mutating_webhook() else {
                continue;
            };
            if !is_injector(o) {
                continue;
            }
            for (i, h) in m.webhooks.iter().flatten().enumerate() {
                hooks.push(Hook {
                    obj: id,
                    config: o.name(),
                    index: i,
                    name: &h.name,
                    namespace_selector: h.namespace_selector.as_ref(),
                    object_selector: h.object_selector.as_ref(),
                });
                let path = format!("webhooks[{i}].clientConfig");
                if let Some(svc) = &h.client_config.service
                    && missing_reported.insert((id, svc.namespace.clone(), svc.name.clone()))
                {
                    check_service(ctx, c, id, &path, &h.client_config);
                }
                check_client_config(ctx, id, &path, &h.name, &h.client_config);
            }
        }
        for (id, o) in c.of_kind(Kind::ValidatingWebhookConfiguration) {
            let Some(v) = o.validating_webhook() else {
                continue;
            };
            if !is_validator(o) {
                continue;
            }
            for (i, h) in v.webhooks.iter().flatten().enumerate() {
                check_client_config(
                    ctx,
                    id,
                    &format!("webhooks[{i}].clientConfig"),
                    &h.name,
                    &h.client_config,
                );
            }
        }
        check_overlaps(ctx, &hooks);
    }
}

/// Every revision the webhooks name.
fn revisions(hooks: &[Hook], mesh_objects: &[&Object]) -> BTreeSet<String> {
    let mut revs = BTreeSet::new();
    for o in mesh_objects {
        if let Some(r) = o.label(REV) {
            revs.insert(r.to_string());
        }
    }
    for h in hooks {
        for s in [h.namespace_selector, h.object_selector]
            .into_iter()
            .flatten()
        {
            if let Some(r) = s.match_labels.as_ref().and_then(|m| m.get(REV)) {
                revs.insert(r.clone());
            }
            for e in s
                .match_expressions
                .iter()
                .flatten()
                .filter(|e| e.key == REV)
            {
                revs.extend(e.values.iter().flatten().cloned());
            }
        }
    }
    revs
}

/// Label sets: `key` absent or each of `values`, each with no revision or one of `revs`.
fn combinations(
    key: &str,
    values: &[&str],
    revs: &BTreeSet<String>,
) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    for v in std::iter::once(None).chain(values.iter().map(Some)) {
        for r in std::iter::once(None).chain(revs.iter().map(Some)) {
            let mut m = BTreeMap::new();
            if let Some(v) = v {
                m.insert(key.to_string(), v.to_string());
            }
            if let Some(r) = r {
                m.insert(REV.to_string(), r.clone());
            }
            out.push(m);
        }
    }
    out
}

fn describe(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        "no injection labels".to_string()
    } else {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One configuration's webhooks overlapping another's: its webhook indices, the other
/// configurations, and an example (namespace labels, pod labels).
type Overlap = (BTreeSet<usize>, BTreeSet<String>, String, String);

fn check_overlaps(ctx: &mut Ctx, hooks: &[Hook]) {
    if hooks.len() < 2 {
        return;
    }
    let mesh = ctx.mesh;
    let configs: Vec<&Object> = hooks.iter().map(|h| mesh.object(h.obj)).collect();
    let revs = revisions(hooks, &configs);
    let namespaces = combinations(NS_INJECTION, &["enabled", "disabled"], &revs);
    let pods = combinations(POD_INJECT, &["true", "false"], &revs);
    // Per pair of configurations (this one, the other): this one's overlapping webhooks, and
    // the first label combination that shows the overlap. One finding per pair keeps an
    // upgrade leftover, whose every entry overlaps, to one finding on each side.
    let mut found: BTreeMap<(ObjId, ObjId), Overlap> = BTreeMap::new();
    for ns in &namespaces {
        for pod in &pods {
            let matching: Vec<usize> = (0..hooks.len())
                .filter(|i| hooks[*i].matches(ns, pod))
                .collect();
            if matching.len() < 2 {
                continue;
            }
            for i in &matching {
                for j in matching.iter().filter(|j| *j != i) {
                    let e = found
                        .entry((hooks[*i].obj, hooks[*j].obj))
                        .or_insert_with(|| {
                            (
                                BTreeSet::new(),
                                BTreeSet::new(),
                                describe(ns),
                                describe(pod),
                            )
                        });
                    e.0.insert(*i);
                    e.1.insert(hooks[*j].config.to_string());
                }
            }
        }
    }
    for ((obj, other), (mine, theirs, ns, pod)) in found {
        let Some(first) = mine.first().map(|i| &hooks[*i]) else {
            continue;
        };
        let field = if first.namespace_selector.is_some() {
            format!("webhooks[{}].namespaceSelector", first.index)
        } else {
            format!("webhooks[{}].name", first.index)
        };
        let names: Vec<String> = mine.iter().map(|i| hooks[*i].name.to_string()).collect();
        let theirs: Vec<String> = theirs.into_iter().collect();
        let which = if obj == other {
            "each other".to_string()
        } else {
            format!(
                "the webhooks of MutatingWebhookConfiguration {}",
                super::util::join(&theirs)
            )
        };
        ctx.at(
            IST0139,
            obj,
            &field,
            format!(
                "injection webhook{} {} overlap{} with {which}: for instance pods with {pod} in namespaces with {ns} are selected twice, so they would be injected twice. Remove the stale webhook configuration, or deactivate its selectors (istioctl tag set does this)",
                if names.len() > 1 { "s" } else { "" },
                super::util::join(&names),
                if names.len() > 1 { "" } else { "s" },
            ),
        );
    }
}

/// IST0139: the injector Service must exist, when the manifests show that namespace's Services.
fn check_service(ctx: &mut Ctx, c: &Cluster, id: ObjId, path: &str, cc: &WebhookClientConfig) {
    let Some(svc) = &cc.service else { return };
    let mut in_ns = c
        .of_kind(Kind::Service)
        .filter(|(_, o)| o.namespace() == svc.namespace)
        .peekable();
    if in_ns.peek().is_none() {
        return;
    }
    if in_ns.any(|(_, o)| o.name() == svc.name) {
        return;
    }
    // An IstioOperator installs istiod's Service itself.
    let operator_installs = c.operators().any(|(oid, op)| {
        let ns = if op.spec.namespace.is_empty() {
            ctx.mesh.object(oid).namespace()
        } else {
            op.spec.namespace.as_str()
        };
        ns == svc.namespace && svc.name.starts_with("istiod")
    });
    if operator_installs {
        return;
    }
    let mut others: Vec<String> = c
        .of_kind(Kind::Service)
        .filter(|(_, o)| o.namespace() == svc.namespace)
        .map(|(_, o)| o.name().to_string())
        .collect();
    others.sort();
    others.dedup();
    ctx.at(
        IST0139,
        id,
        &format!("{path}.service.name"),
        format!(
            "the webhook calls Service {}/{}, which cluster {} does not have (that namespace has {}): pod creation in injected namespaces fails while it is missing. Point it at the istiod Service of the intended revision",
            svc.namespace,
            svc.name,
            c.name,
            super::util::join(&others)
        ),
    );
}

/// IST0163 and IST0164: the URL of an Istio webhook.
fn check_client_config(ctx: &mut Ctx, id: ObjId, path: &str, hook: &str, cc: &WebhookClientConfig) {
    let url = match (&cc.url, &cc.service) {
        (None, None) => {
            ctx.at(
                IST0163,
                id,
                path,
                format!("webhook {hook} has neither url nor service: the API server cannot call it (and rejects the configuration). Set url to the external control plane's https address, or service"),
            );
            return;
        }
        (Some(u), _) => u,
        (None, Some(_)) => return,
    };
    let field = format!("{path}.url");
    match parse_https_url(url) {
        Err(why) => {
            ctx.at(
                IST0163,
                id,
                &field,
                format!("webhook {hook} has an unusable url {url:?}: {why}. The API server cannot reach the control plane, so injection or validation fails"),
            );
        }
        Ok(host) if is_ip_literal(host) => {
            ctx.at(
                IST0164,
                id,
                &field,
                format!("webhook {hook} reaches the control plane at IP address {host}: the control plane's certificate must then carry that IP, and the address cannot move. Prefer a DNS name"),
            );
        }
        Ok(_) => {}
    }
}

/// Checks a webhook URL as Kubernetes requires it (`https://host[:port][/path]`, no user info,
/// query or fragment) and returns its host.
fn parse_https_url(url: &str) -> Result<&str, String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(if url.is_empty() {
            "it is empty".into()
        } else {
            "it must start with https://".into()
        });
    };
    if rest.contains(['?', '#']) {
        return Err("query parameters and fragments are not allowed".into());
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err("user information is not allowed".into());
    }
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let Some((h, tail)) = r.split_once(']') else {
            return Err("unclosed [ in the host".into());
        };
        (&authority[..h.len() + 2], tail.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host".into());
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0)
    {
        return Err(format!("{p:?} is not a port"));
    }
    if !host.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
    {
        return Err(format!("{host:?} is not a host name"));
    }
    Ok(host)
}

fn is_ip_literal(host: &str) -> bool {
    let inner = host
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(host);
    inner.parse::<Ipv4Addr>().is_ok() || inner.parse::<Ipv6Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_https_url("https://istiod.example.com:15017/inject/cluster/c2/net/n2"),
            Ok("istiod.example.com")
        );
        assert_eq!(
            parse_https_url("https://10.0.0.7:15017/inject"),
            Ok("10.0.0.7")
        );
        assert_eq!(
            parse_https_url("https://[fd00::1]:15017/inject"),
            Ok("[fd00::1]")
        );
        assert!(parse_https_url("http://istiod:15017/inject").is_err());
        assert!(parse_https_url("").is_err());
        assert!(parse_https_url("https:///inject").is_err());
        assert!(parse_https_url("https://a:b@host/inject").is_err());
        assert!(parse_https_url("https://host/inject?x=1").is_err());
        assert!(
            is_ip_literal("[fd00::1]")
                && is_ip_literal("10.0.0.7")
                && !is_ip_literal("istiod.example.com")
        );
    }
}
