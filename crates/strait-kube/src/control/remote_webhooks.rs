//! The `caBundle` of the injector webhooks in the remotes a control plane serves. A remote's
//! `istio-sidecar-injector` calls its primary's injector (through the `istiod` Service that
//! leads to the primary's east-west gateway), so it must trust the primary's CA; the injector
//! keeps the webhook of its own cluster current, and the primary's leader does the same for
//! each remote, through the remote secret's client (the install grants that account `get` and
//! `patch` on this one configuration). Checked at every trust-bundle change and every
//! [`RESYNC`], so a `kubectl apply` that resets the bundle is repaired.

use std::time::Duration;

use base64::Engine;
use tokio::sync::watch;

use super::lease::Leadership;
use crate::client::Clusters;
use crate::inject::webhook_patch::{self, PatchOutcome};
use crate::install::webhook::NAME as WEBHOOK;

/// How often every remote's webhook is checked without a change to prompt it.
pub const RESYNC: Duration = Duration::from_secs(30);

/// One pass: each cluster of `remotes` with a client gets `bundle` (PEM) in its webhook.
/// Returns the clusters whose webhook was written.
pub async fn reconcile(clients: &Clusters, remotes: &[String], bundle: &str) -> Vec<String> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bundle);
    let mut written = Vec::new();
    for cluster in remotes {
        let Some(client) = clients.get(cluster) else {
            continue;
        };
        let pass = webhook_patch::reconcile(&client, WEBHOOK, &encoded);
        let Ok(result) = tokio::time::timeout(super::root_cert::PASS_TIMEOUT, pass).await else {
            tracing::warn!(%cluster, "remote injector webhook: the API server did not answer; retrying");
            continue;
        };
        match result {
            Ok(PatchOutcome::Current) => {}
            Ok(PatchOutcome::Patched(entries)) => {
                tracing::info!(%cluster, ?entries, "remote injector webhook: caBundle written");
                written.push(cluster.clone());
            }
            Err(e) if e.is_not_found() => {
                tracing::debug!(%cluster, "remote injector webhook not installed yet")
            }
            Err(e) => {
                tracing::warn!(%cluster, error = %e, "remote injector webhook: caBundle not written; retrying")
            }
        }
    }
    written
}

/// Runs passes while `leadership` leads and `bundle` holds the trust bundle, over the remotes
/// `remotes()` names at the time of each pass, until `stop` resolves.
pub async fn run(
    clients: Clusters,
    remotes: impl Fn() -> Vec<String>,
    leadership: Leadership,
    mut bundle: watch::Receiver<Option<String>>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut leader = leadership.watch();
    loop {
        let current = bundle.borrow().clone();
        let known = remotes();
        if let Some(pem) = current
            && *leader.borrow()
        {
            reconcile(&clients, &known, &pem).await;
        }
        tokio::select! {
            () = &mut stop => return,
            () = super::root_cert::membership_changes(&remotes, &known) => {}
            _ = tokio::time::sleep(RESYNC) => {}
            r = bundle.changed() => if r.is_err() { std::future::pending::<()>().await },
            r = leader.changed() => if r.is_err() { std::future::pending::<()>().await },
        }
    }
}
