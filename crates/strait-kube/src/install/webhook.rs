//! The sidecar injector's MutatingWebhookConfiguration, with Istio's name and Istio's
//! selectors, so namespaces and pods already labelled for Istio (`istio-injection=enabled`,
//! `istio.io/rev`, `sidecar.istio.io/inject`) are injected by strait with no relabelling.
//!
//! The `caBundle` is left empty: the control plane patches in its root certificate (the
//! reason its role may `patch` this one object), and in a remote the leading primary does.

use serde_json::{Value, json};

use super::{NAMESPACE, Options, Role, labels};

pub const NAME: &str = "istio-sidecar-injector";

/// A label requirement of a selector.
fn req(key: &str, op: &str, values: &[&str]) -> Value {
    let mut r = json!({"key": key, "operator": op});
    if !values.is_empty() {
        r["values"] = json!(values);
    }
    r
}

fn selector(reqs: Vec<Value>) -> Value {
    json!({"matchExpressions": reqs})
}

const INJECT: &str = "sidecar.istio.io/inject";
const REV: &str = "istio.io/rev";
const NS_INJECT: &str = "istio-injection";

/// The four entries of a revision-less install, as Istio's default revision has them
/// (`(name, namespaceSelector, objectSelector)`): a namespace opted in with `istio.io/rev=
/// default` or with `istio-injection=enabled` (which wins), or a pod opted in itself where
/// its namespace says nothing; a pod labelled `sidecar.istio.io/inject=false` is never
/// injected.
pub fn selectors() -> Vec<(&'static str, Value, Value)> {
    vec![
        (
            "rev.namespace.sidecar-injector.istio.io",
            selector(vec![
                req(REV, "In", &["default"]),
                req(NS_INJECT, "DoesNotExist", &[]),
            ]),
            selector(vec![req(INJECT, "NotIn", &["false"])]),
        ),
        (
            "rev.object.sidecar-injector.istio.io",
            selector(vec![
                req(REV, "DoesNotExist", &[]),
                req(NS_INJECT, "DoesNotExist", &[]),
            ]),
            selector(vec![
                req(INJECT, "NotIn", &["false"]),
                req(REV, "In", &["default"]),
            ]),
        ),
        (
            "namespace.sidecar-injector.istio.io",
            selector(vec![req(NS_INJECT, "In", &["enabled"])]),
            selector(vec![req(INJECT, "NotIn", &["false"])]),
        ),
        (
            "object.sidecar-injector.istio.io",
            selector(vec![
                req(NS_INJECT, "DoesNotExist", &[]),
                req(REV, "DoesNotExist", &[]),
            ]),
            selector(vec![
                req(INJECT, "In", &["true"]),
                req(REV, "DoesNotExist", &[]),
            ]),
        ),
    ]
}

/// Where the API server sends admission reviews. In a primary: the local `istiod` Service's
/// `/inject`. In a remote: the same Service name, which there leads to the primary's
/// east-west gateway (see `server.rs`), at a path naming the pod's cluster and network, since
/// the primary's injector cannot know them otherwise (Istio's `/inject/cluster/<c>/net/<n>`).
/// A Service reference rather than a URL, because the API server then checks the serving
/// certificate against `istiod.istio-system.svc`, the name the control plane's certificate
/// carries; a URL to the gateway's address would fail that check.
pub fn path(opts: &Options) -> String {
    match &opts.role {
        Role::Primary { .. } => "/inject".to_string(),
        Role::Remote { .. } => {
            let mut p = format!("/inject/cluster/{}", escape(&opts.cluster));
            if !opts.network.is_empty() {
                p.push_str(&format!("/net/{}", escape(&opts.network)));
            }
            p
        }
    }
}

/// Istio's escaping of `/` inside a path value.
fn escape(s: &str) -> String {
    s.replace('/', "--slash--")
}

pub fn injector(opts: &Options) -> Value {
    let path = path(opts);
    let webhooks: Vec<Value> = selectors()
        .into_iter()
        .map(|(name, ns, obj)| {
            json!({
                "name": name,
                "clientConfig": {"service": {
                    "name": super::server::NAME,
                    "namespace": NAMESPACE,
                    "port": 443,
                    "path": path,
                }},
                "rules": [{
                    "operations": ["CREATE"],
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "resources": ["pods"],
                    "scope": "Namespaced",
                }],
                "namespaceSelector": ns,
                "objectSelector": obj,
                // A pod that should have a sidecar and starts without one would run outside
                // the mesh unnoticed: fail its creation instead.
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            })
        })
        .collect();
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": NAME, "labels": labels("injector")},
        "webhooks": webhooks,
    })
}
