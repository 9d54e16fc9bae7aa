//! STR0602: a Job (or CronJob) whose pods get a classic Istio sidecar. The proxy does not exit
//! when the app container does, so the pod never completes and the Job never finishes.
//!
//! Handled, and not reported:
//! - native sidecars: the proxy runs as an init container with `restartPolicy: Always`
//!   (Kubernetes stops it once the app exits). The injector does this when the pod template
//!   has the annotation `sidecar.istio.io/nativeSidecar: "true"` (which takes precedence), or
//!   istiod runs with `ENABLE_NATIVE_SIDECARS=true` (IstioOperator `values.pilot.env`, or the
//!   env of an istiod Deployment in the manifests). Istio's auto-detection (on by default in
//!   recent releases, for Kubernetes 1.33+ nodes) cannot be seen in manifests: it is not
//!   assumed, and the message says to turn it on explicitly;
//! - an app that stops the proxy itself: a container whose command or args call the agent's
//!   `/quitquitquit` endpoint;
//! - an opt-out (`sidecar.istio.io/inject: "false"`): the workload is not injected at all.
//!
//! A Pod dumped from a running cluster that a Job owns is checked too, unless its Job is in
//! the input (the Job is reported instead).

use k8s_openapi::api::core::v1::{Container, PodSpec};
use strait_api::Kind;
use strait_model::{ClusterId, Injection, Mesh, Workload, WorkloadKind};

use crate::catalog::STR0602;
use crate::context::Ctx;

const NATIVE_ANNOTATION: &str = "sidecar.istio.io/nativeSidecar";
const NATIVE_ENV: &str = "ENABLE_NATIVE_SIDECARS";

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for w in &mesh.workloads {
        let Some(what) = batch_kind(mesh, w) else {
            continue;
        };
        if !matches!(w.sidecar, Injection::Injected(_)) || w.gateway.is_some() {
            continue;
        }
        let obj = mesh.object(w.object);
        let finished = obj
            .pod()
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|p| p == "Succeeded" || p == "Failed");
        let spec = w.pod_spec(obj);
        if finished || spec.is_some_and(calls_quitquitquit) {
            continue;
        }
        let native = match spec.and_then(proxy_container) {
            // Already injected (manual injection, a dumped pod): its containers are the truth.
            Some((native, _)) => native,
            None => match w.annotations.get(NATIVE_ANNOTATION).map(String::as_str) {
                Some(v) => v.eq_ignore_ascii_case("true"),
                None => istiod_native_sidecars(mesh, w.cluster) == Some(true),
            },
        };
        if native {
            continue;
        }
        let field = match spec.and_then(proxy_container) {
            Some((_, path)) => format!("{}.{path}", w.pod_spec_path()),
            None => w.pod_meta_path(),
        };
        let message = message(what, w, obj.cron_job().map(|c| &c.spec));
        ctx.at(STR0602, w.object, &field, message);
    }
}

/// What the workload is, for the message: a Job, a CronJob, or a Pod a Job created (whose Job
/// is not in the input).
fn batch_kind(mesh: &Mesh, w: &Workload) -> Option<&'static str> {
    match w.kind {
        WorkloadKind::Job => Some("Job"),
        WorkloadKind::CronJob => Some("CronJob"),
        WorkloadKind::Pod => {
            let obj = mesh.object(w.object);
            let job = obj
                .meta()
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.kind == "Job")?;
            let job_in_input = mesh
                .cluster(w.cluster)
                .of_kind(Kind::Job)
                .any(|(_, o)| o.name() == job.name && o.namespace() == obj.namespace());
            (!job_in_input).then_some("Pod of a Job")
        }
        _ => None,
    }
}

/// The pod's `istio-proxy` container, whether it is a native sidecar (an init container that
/// restarts always), and its field path relative to the pod spec.
fn proxy_container(spec: &PodSpec) -> Option<(bool, String)> {
    if let Some(i) = spec.containers.iter().position(|c| c.name == "istio-proxy") {
        return Some((false, format!("containers[{i}]")));
    }
    let inits = spec.init_containers.as_deref().unwrap_or_default();
    let i = inits.iter().position(|c| c.name == "istio-proxy")?;
    let native = inits[i].restart_policy.as_deref() == Some("Always");
    Some((native, format!("initContainers[{i}]")))
}

/// Whether an app container stops the proxy itself (`curl -XPOST localhost:15020/quitquitquit`
/// or the like) when it is done.
fn calls_quitquitquit(spec: &PodSpec) -> bool {
    let mentions = |c: &Container| {
        c.command
            .iter()
            .chain(c.args.iter())
            .flatten()
            .any(|a| a.contains("quitquitquit"))
    };
    spec.containers
        .iter()
        .filter(|c| c.name != "istio-proxy")
        .any(mentions)
}

/// `ENABLE_NATIVE_SIDECARS` as the control plane serving `cluster` sets it (an IstioOperator's
/// `values.pilot.env`, or an istiod Deployment's env), when the manifests say.
fn istiod_native_sidecars(mesh: &Mesh, cluster: ClusterId) -> Option<bool> {
    let parse = |v: &str| match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    };
    let mut clusters = vec![cluster, mesh.config_cluster(cluster)];
    clusters.dedup();
    for c in clusters.into_iter().map(|id| mesh.cluster(id)) {
        for (_, op) in c.operators() {
            let Some(v) = op.spec.value(&format!("pilot.env.{NATIVE_ENV}")) else {
                continue;
            };
            if let Some(b) = v.as_bool().or_else(|| v.as_str().and_then(parse)) {
                return Some(b);
            }
        }
        for (_, o) in c.of_kind(Kind::Deployment) {
            if !(o.name().starts_with("istiod") || o.label("app") == Some("istiod")) {
                continue;
            }
            let env = o
                .deployment()
                .and_then(|d| d.spec.template.spec.as_ref())
                .into_iter()
                .flat_map(|s| s.containers.iter())
                .flat_map(|ct| ct.env.iter().flatten())
                .find(|e| e.name == NATIVE_ENV);
            if let Some(b) = env.and_then(|e| e.value.as_deref()).and_then(parse) {
                return Some(b);
            }
        }
    }
    None
}

fn message(
    what: &str,
    w: &Workload,
    cron: Option<&k8s_openapi::api::batch::v1::CronJobSpec>,
) -> String {
    let reason = match &w.sidecar {
        Injection::Injected(r) => r.as_str(),
        _ => "",
    };
    let outcome = match cron.map(|c| c.concurrency_policy.as_deref().unwrap_or("Allow")) {
        Some("Forbid") => {
            "its Job never finishes and, with concurrencyPolicy Forbid, no later run ever starts"
        }
        Some("Replace") => {
            "no run ever finishes: each scheduled run replaces the stuck one before it"
        }
        Some(_) => {
            "its Job never finishes and every scheduled run adds another stuck Job: runs pile up"
        }
        None if what == "Job" => "the Job never finishes",
        None => "its Job never finishes",
    };
    format!(
        "{what} {} gets a classic Istio sidecar ({reason}) that keeps running after the app exits: the pod never completes, so {outcome}. \
         Use native sidecars (annotation {NATIVE_ANNOTATION}: \"true\" on the pod template, or {NATIVE_ENV}=true on istiod; Kubernetes 1.29+), \
         add sidecar.istio.io/inject: \"false\" if the Job needs no mesh, \
         or have the app call the proxy's /quitquitquit (curl -fsS -XPOST http://localhost:15020/quitquitquit) when it is done",
        w.name
    )
}
