//! `strait injector`: the sidecar injector webhook, on its own so that it can run beside the
//! control plane (a second container of the istiod pod) with its own port and certificate.
//! With `--patch-webhook NAME` it also keeps that MutatingWebhookConfiguration's `caBundle`
//! equal to the roots its certificate chains to (`inject::webhook_patch`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use strait_kube::inject::{
    Config, Limits, ServingCert, ca_bundle, dns_names, namespaces, serve, webhook_patch,
};

use crate::cli::InjectorArgs;

pub fn run(args: &InjectorArgs) -> anyhow::Result<ExitCode> {
    super::logging::init();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let authority = match strait_ca::Authority::load(&args.ca_dir) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.print_ca_bundle {
        println!("{}", ca_bundle(&authority));
        return Ok(ExitCode::SUCCESS);
    }
    let names = dns_names(&args.istio_namespace, &config.revision);
    let serving = ServingCert::new(authority, Some(args.ca_dir.clone()), names.clone())
        .context("issuing the injector's serving certificate")?;
    let tls = serving.server_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        tracing::info!(listen = %args.listen, ?names, revision = %config.revision, "injector serving /inject");
        let needs_api = !args.patch_webhooks.is_empty() || args.watch_namespaces;
        let client = match needs_api.then(strait_kube::client::in_cluster) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                eprintln!("error: --patch-webhook/--watch-namespaces: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        if let Some(client) = &client
            && !args.patch_webhooks.is_empty()
        {
            let bundle = serving.clone();
            tokio::spawn(webhook_patch::keep_current(
                client.clone(),
                args.patch_webhooks.clone(),
                move || bundle.ca_bundle(),
                Duration::from_secs(args.patch_interval),
            ));
        }
        if let Some(client) = client
            && args.watch_namespaces
        {
            tokio::spawn(namespaces::watch(client, config.live.clone()));
        }
        tokio::spawn(serving.renew_forever());
        // Kubernetes stops a pod with SIGTERM; Ctrl-C for a terminal.
        let stop = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        serve(listener, tls, Arc::new(config), Limits::default(), stop).await;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
