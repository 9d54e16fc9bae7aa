//! `strait control-plane --kubernetes`: istiod's job in a pod.
//!
//! ```text
//!  API server ──watch──▶ KubeSource ──▶ Source::load ──▶ Hub ──▶ discovery, certificates
//!   (own + remote secrets)   │                                     ▲
//!                            └── Clusters (one client per cluster) ┤ TokenReview
//!  Lease (istio-namespace-controller-election) ──leader──▶ istio-ca-root-cert writer
//! ```
//!
//! The mesh is read from the own cluster's API server and from every cluster a remote secret
//! names; until the own cluster is listed whole a load is rejected, so `/ready` stays 503 and
//! says which kinds are still listing. Proxies prove themselves with their projected
//! service-account token, checked by the TokenReview API of the cluster they name. One replica
//! at a time (the Lease holder) writes the trust bundle into every namespace of the clusters
//! this control plane serves: its own, and, when it serves remotes (`EXTERNAL_ISTIOD`), each
//! remote whose Istio namespace names it in `topology.istio.io/controlPlaneClusters`, as
//! istiod does; it also keeps those remotes' injector webhooks trusting this CA.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use strait_api::layout::Role;
use strait_control::source::Source;
use strait_control::{OnRoots, Options, Tokens};
use strait_kube::client::{self, Clusters};
use strait_kube::control::lease::{self, ElectionConfig, Elector};
use strait_kube::control::remote_webhooks;
use strait_kube::control::root_cert::RootCertWriter;
use strait_kube::control::token_review::TokenReview;
use strait_kube::source::{self, KubeSource};
use strait_local::process::process_stop;

use crate::cli::ControlPlaneArgs;

/// A setting from its flag, else from the variable the install sets.
fn setting(flag: Option<String>, var: &str) -> Option<String> {
    flag.filter(|v| !v.is_empty()).or_else(|| {
        std::env::var(var)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

pub fn run(args: ControlPlaneArgs) -> anyhow::Result<ExitCode> {
    let Some(cluster) = setting(Some(args.cluster.clone()), "CLUSTER_ID") else {
        bail!(
            "--kubernetes: say which cluster this is (--cluster, or CLUSTER_ID as the install sets it)"
        );
    };
    let namespace = setting(args.istio_namespace.clone(), "POD_NAMESPACE")
        .unwrap_or_else(|| "istio-system".into());
    let Some(identity) = setting(None, "POD_NAME").or_else(|| setting(None, "HOSTNAME")) else {
        bail!(
            "--kubernetes: no POD_NAME (downward API) or HOSTNAME: the leader lease needs this replica's name"
        );
    };
    // istiod's EXTERNAL_ISTIOD: this control plane serves clusters it does not run in.
    let serves_remotes = setting(None, "EXTERNAL_ISTIOD").is_some_and(|v| v == "true");
    let mut options = source::Options::new(&cluster);
    options.istio_namespace = namespace.clone();
    options.network = setting(args.network.clone(), "NETWORK");
    options.mesh_id = setting(None, "MESH_ID");
    options.trust_domain = setting(None, "TRUST_DOMAIN");

    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let own = match &args.kubeconfig {
            Some(path) => client::from_kubeconfig_file(path, args.context.as_deref()).await?,
            None => client::in_cluster()?,
        };
        let clients: Clusters = options.clusters.clone();
        let kube = Arc::new(KubeSource::start(
            options,
            own.clone(),
            &tokio::runtime::Handle::current(),
        ));
        let stop = process_stop(args.lifeline);

        let (bundle_tx, bundle_rx) = tokio::sync::watch::channel(None::<String>);
        let elector = Elector::new(
            own,
            ElectionConfig::new(&namespace, lease::NAMESPACE_CONTROLLER, &identity),
        );
        let leadership = elector.leadership();
        let s = stop.clone();
        tokio::spawn(elector.run(async move { s.wait().await }));
        let served = {
            let (kube, cluster) = (kube.clone(), cluster.clone());
            move || served_clusters(&kube, &cluster, serves_remotes)
        };
        let remotes = {
            let (kube, cluster) = (kube.clone(), cluster.clone());
            move || {
                let mut all = served_clusters(&kube, &cluster, serves_remotes);
                all.retain(|c| *c != cluster);
                all
            }
        };
        let s = stop.clone();
        tokio::spawn(remote_webhooks::run(
            clients.clone(),
            remotes,
            leadership.clone(),
            bundle_rx.clone(),
            async move { s.wait().await },
        ));
        let s = stop.clone();
        tokio::spawn(RootCertWriter::dynamic(clients.clone(), served).run(
            leadership,
            bundle_rx,
            async move { s.wait().await },
        ));

        let opts = Options {
            source: Source {
                clusters: kube,
                own: None,
            },
            reach: strait_net::Reach::default(),
            cluster: cluster.clone(),
            grpc: args.listen,
            debug: args.debug,
            ca_dir: args.ca_dir,
            tokens: Tokens::Review(Arc::new(TokenReview::new(clients, &cluster))),
            root_cert_out: None,
            on_roots: Some(OnRoots(Arc::new(move |pem: &str| {
                bundle_tx.send_replace(Some(pem.to_string()));
            }))),
            retry_first_load: true,
            names: args.names,
            poll: Duration::from_millis(args.poll_ms.max(10)),
        };
        strait_control::run(opts, async move { stop.wait().await })
            .await
            .context("control plane")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The clusters whose namespaces get the trust bundle from this control plane: its own, and,
/// when it serves remotes, each watched cluster that declares it its control plane.
fn served_clusters(kube: &KubeSource, own: &str, serves_remotes: bool) -> Vec<String> {
    let mut out = vec![own.to_string()];
    if serves_remotes {
        out.extend(
            kube.declarations()
                .into_iter()
                .filter(|d| d.role == Role::Remote && d.primary.as_deref() == Some(own))
                .map(|d| d.name),
        );
    }
    out
}
