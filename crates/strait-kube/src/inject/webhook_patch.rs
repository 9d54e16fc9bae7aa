//! Keeping the webhook's `caBundle` equal to the mesh's roots.
//!
//! The API server verifies the injector's serving certificate with the `caBundle` of each
//! entry of the MutatingWebhookConfiguration; `strait install` renders it empty, since the
//! roots are only known in the cluster. So the injector writes it: at start, whenever the
//! roots it serves from change (a rotated `cacerts`, re-read at each certificate renewal), and
//! at every check, because a `kubectl apply` of the rendered manifests resets it to empty and
//! every pod creation would then fail on TLS until someone noticed. This is what istiod's
//! webhook patcher does; like it, configurations are chosen by name (the install's
//! `istio-sidecar-injector`), and the install's RBAC grants `get` and `patch` on exactly that
//! one object, which is all a check-and-patch needs.
//!
//! The patch is a strategic merge on `webhooks`, whose merge key is the entry's `name`: only
//! the stale entries' `caBundle`s are sent, so it cannot reorder, drop or overwrite anything
//! else that changed between the read and the write. An entry whose `caBundle` is already
//! right is left alone, and a configuration with nothing stale is not patched at all.

use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The field manager the API server records for these writes.
pub const FIELD_MANAGER: &str = "strait-injector";

/// What one check of one configuration found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchOutcome {
    /// Every entry already carries the roots.
    Current,
    /// These entries carried something else and were patched.
    Patched(Vec<String>),
}

/// A check that could not be completed; the next one tries again.
#[derive(Debug, thiserror::Error)]
pub enum WebhookPatchError {
    #[error("MutatingWebhookConfiguration {name}: cannot read it: {source}")]
    Get { name: String, source: kube::Error },
    #[error("MutatingWebhookConfiguration {name}: cannot patch its caBundle: {source}")]
    Patch { name: String, source: kube::Error },
    #[error("the CA's trust bundle is not base64: {0}")]
    Bundle(base64::DecodeError),
}

impl WebhookPatchError {
    /// The object does not exist (not applied yet, or deleted): worth a quieter log line.
    pub fn is_not_found(&self) -> bool {
        let source = match self {
            WebhookPatchError::Get { source, .. } | WebhookPatchError::Patch { source, .. } => {
                source
            }
            WebhookPatchError::Bundle(_) => return false,
        };
        matches!(source, kube::Error::Api(status) if status.code == 404)
    }
}

/// Checks the configuration `name` against `ca_bundle` (base64 PEM, as
/// [`super::ca_bundle`] gives it) and patches the entries that differ.
pub async fn reconcile(
    client: &kube::Client,
    name: &str,
    ca_bundle: &str,
) -> Result<PatchOutcome, WebhookPatchError> {
    let want = base64::engine::general_purpose::STANDARD
        .decode(ca_bundle)
        .map_err(WebhookPatchError::Bundle)?;
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let current = api
        .get(name)
        .await
        .map_err(|source| WebhookPatchError::Get {
            name: name.to_string(),
            source,
        })?;
    let stale: Vec<String> = current
        .webhooks
        .iter()
        .flatten()
        .filter(|w| w.client_config.ca_bundle.as_ref().map(|b| &b.0) != Some(&want))
        .map(|w| w.name.clone())
        .collect();
    if stale.is_empty() {
        return Ok(PatchOutcome::Current);
    }
    let entries: Vec<_> = stale
        .iter()
        .map(|n| json!({"name": n, "clientConfig": {"caBundle": ca_bundle}}))
        .collect();
    let patch = json!({"webhooks": entries});
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        },
        &Patch::Strategic(&patch),
    )
    .await
    .map_err(|source| WebhookPatchError::Patch {
        name: name.to_string(),
        source,
    })?;
    Ok(PatchOutcome::Patched(stale))
}

/// Keeps the configurations `names` carrying `ca_bundle()` (read at every round, so changed
/// roots are written at the next round), checking every `interval`. Never returns; failures
/// are logged and retried at the next round.
pub async fn keep_current(
    client: kube::Client,
    names: Vec<String>,
    ca_bundle: impl Fn() -> String,
    interval: Duration,
) {
    let mut last_bundle = String::new();
    loop {
        let bundle = ca_bundle();
        if !last_bundle.is_empty() && bundle != last_bundle {
            tracing::info!("the CA's roots changed; updating the webhooks' caBundle");
        }
        last_bundle.clone_from(&bundle);
        for name in &names {
            match reconcile(&client, name, &bundle).await {
                Ok(PatchOutcome::Current) => {
                    tracing::debug!(webhook = %name, "caBundle current")
                }
                Ok(PatchOutcome::Patched(entries)) => {
                    tracing::info!(webhook = %name, ?entries, "caBundle written")
                }
                Err(e) if e.is_not_found() => {
                    tracing::info!(webhook = %name, "not found yet; checking again later")
                }
                Err(e) => tracing::warn!(error = %e, "caBundle check failed; retrying"),
            }
        }
        tokio::time::sleep(interval).await;
    }
}
