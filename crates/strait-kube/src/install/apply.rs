//! Applying rendered manifests to a cluster, as `kubectl apply --server-side` would: every
//! object is sent whole as a server-side apply by the field manager `strait-install`, so
//! applying the same render again changes nothing and a field someone else owns is taken
//! back (`force`, as an installer must). CustomResourceDefinitions go first and are waited on
//! until the API server serves them (`Established`), so the Istio resources of the same render
//! (the cross-network Gateway) are never refused as unknown kinds.

use std::time::{Duration, Instant};

use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::{Api, Client};
use serde_json::Value;

/// The field manager the API server records for what strait applied.
pub const FIELD_MANAGER: &str = "strait-install";
/// How long a CRD may take to become served.
const ESTABLISH: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{object}: not a Kubernetes object (no apiVersion, kind or metadata.name)")]
    Malformed { object: String },
    #[error("{object}: the API server refused it: {message}{hint}")]
    Refused {
        object: String,
        message: String,
        hint: &'static str,
    },
    #[error(
        "CustomResourceDefinition {name}: not established after {waited:?}; the API server does not serve its kind yet"
    )]
    NotEstablished { name: String, waited: Duration },
}

/// `Kind namespace/name` for messages.
fn display(o: &Value) -> String {
    let kind = o["kind"].as_str().unwrap_or("?");
    let name = o["metadata"]["name"].as_str().unwrap_or("?");
    match o["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

fn api_for(client: &Client, o: &Value) -> Result<(Api<DynamicObject>, String), ApplyError> {
    let malformed = || ApplyError::Malformed { object: display(o) };
    let api_version = o["apiVersion"].as_str().ok_or_else(malformed)?;
    let kind = o["kind"].as_str().ok_or_else(malformed)?;
    let name = o["metadata"]["name"].as_str().ok_or_else(malformed)?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let api = match o["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    Ok((api, name.to_string()))
}

/// Applies `objects` in order, calling `applied` with each object's name as it lands. Returns
/// how many were applied; stops at the first refusal, which names the object.
pub async fn apply(
    client: &Client,
    objects: &[Value],
    mut applied: impl FnMut(&str),
) -> Result<usize, ApplyError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut crds: Vec<String> = Vec::new();
    let mut count = 0;
    for o in objects {
        if o["kind"] != "CustomResourceDefinition" && !crds.is_empty() {
            // The first object after the CRDs: wait until their kinds are served.
            for name in std::mem::take(&mut crds) {
                established(client, &name).await?;
            }
        }
        let (api, name) = api_for(client, o)?;
        api.patch(&name, &params, &Patch::Apply(o))
            .await
            .map_err(|e| refused(o, &e))?;
        if o["kind"] == "CustomResourceDefinition" {
            crds.push(name);
        }
        count += 1;
        applied(&display(o));
    }
    for name in crds {
        established(client, &name).await?;
    }
    Ok(count)
}

fn refused(o: &Value, e: &kube::Error) -> ApplyError {
    let (message, code) = match e {
        kube::Error::Api(s) => (s.message.clone(), s.code),
        other => (other.to_string(), 0),
    };
    ApplyError::Refused {
        object: display(o),
        message,
        hint: match code {
            401 => " (the kubeconfig's credentials were not accepted; log in again)",
            403 => {
                " (installing creates CRDs, ClusterRoles and webhooks: it needs cluster-admin or equivalent)"
            }
            _ => "",
        },
    }
}

/// Waits until the CRD `name` has the condition `Established=True`.
async fn established(client: &Client, name: &str) -> Result<(), ApplyError> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
    ));
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let start = Instant::now();
    loop {
        if let Ok(crd) = api.get(name).await {
            let served = crd.data["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                });
            if served {
                return Ok(());
            }
        }
        if start.elapsed() > ESTABLISH {
            return Err(ApplyError::NotEstablished {
                name: name.to_string(),
                waited: ESTABLISH,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
