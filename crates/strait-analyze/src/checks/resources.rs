//! Sidecar resources (pitfall (f)).
//!
//! The injector gives the istio-proxy container its resources in one of two ways
//! (`injection-template.yaml`, `define "resources"`): if the pod sets any of the
//! `sidecar.istio.io/proxyCPU`, `proxyCPULimit`, `proxyMemory`, `proxyMemoryLimit` annotations,
//! the resources come from those annotations only, and unset parts are left out; otherwise from
//! the injector's `global.proxy.resources` value (chart default: requests 100m/128Mi, limits
//! 2000m/1024Mi). A sidecar without CPU and memory requests is scheduled as if it used nothing
//! and is starved or evicted first; one without a memory limit can grow until the node runs
//! out. CPU limits are left to taste: many teams drop them on purpose.

use serde_json::Value;
use strait_api::Kind;
use strait_model::{Cluster, Injection, ObjId, Workload, WorkloadKind};

use super::annotations::parse_quantity;
use super::injection::{is_replica, is_system_namespace, proxy_container};
use super::util::join;
use crate::catalog::{STR0404, STR0405};
use crate::context::Ctx;
use crate::finding::Level;

const CPU: &str = "sidecar.istio.io/proxyCPU";
const CPU_LIMIT: &str = "sidecar.istio.io/proxyCPULimit";
const MEMORY: &str = "sidecar.istio.io/proxyMemory";
const MEMORY_LIMIT: &str = "sidecar.istio.io/proxyMemoryLimit";
const RESOURCE_ANNOTATIONS: [&str; 4] = [CPU, CPU_LIMIT, MEMORY, MEMORY_LIMIT];

/// Resources of one container, as strings where set.
#[derive(Clone, Debug, Default)]
struct Resources {
    cpu: Option<String>,
    memory: Option<String>,
    cpu_limit: Option<String>,
    memory_limit: Option<String>,
}

impl Resources {
    /// What is missing once Kubernetes has defaulted each request to its limit.
    fn missing(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.cpu.is_none() && self.cpu_limit.is_none() {
            out.push("CPU request".to_string());
        }
        if self.memory.is_none() && self.memory_limit.is_none() {
            out.push("memory request".to_string());
        }
        if self.memory_limit.is_none() {
            out.push("memory limit".to_string());
        }
        out
    }

    /// Requests above their limits (which the API server rejects), as (resource, request, limit).
    fn inverted(&self) -> Vec<(&'static str, &str, &str)> {
        let mut out = Vec::new();
        for (what, req, lim) in [
            ("CPU", &self.cpu, &self.cpu_limit),
            ("memory", &self.memory, &self.memory_limit),
        ] {
            if let (Some(r), Some(l)) = (req, lim)
                && let (Ok(rv), Ok(lv)) = (parse_quantity(r), parse_quantity(l))
                && rv > lv
            {
                out.push((what, r.as_str(), l.as_str()));
            }
        }
        out
    }

    /// From a `{requests: {...}, limits: {...}}` JSON value.
    fn from_json(v: &Value) -> Resources {
        let get = |section: &str, key: &str| {
            v.get(section)
                .and_then(|s| s.get(key))
                .and_then(|q| match q {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
        };
        Resources {
            cpu: get("requests", "cpu"),
            memory: get("requests", "memory"),
            cpu_limit: get("limits", "cpu"),
            memory_limit: get("limits", "memory"),
        }
    }
}

/// What the unset parts mean, for messages.
fn consequence(missing: &[String]) -> String {
    let has = |m: &str| missing.iter().any(|x| x == m);
    let mut parts = Vec::new();
    match (has("CPU request"), has("memory request")) {
        (true, true) => parts.push("the scheduler reserves nothing for the proxy, so it is starved under load and among the first evicted"),
        (true, false) => parts.push("the scheduler reserves no CPU for the proxy, so it is starved under load"),
        (false, true) => parts.push("the scheduler reserves no memory for the proxy, so it is among the first evicted when the node runs short"),
        (false, false) => {}
    }
    if has("memory limit") {
        parts.push("its memory is unbounded and can exhaust the node");
    }
    parts.join("; ")
}

pub fn run(ctx: &mut Ctx) {
    check_annotated_workloads(ctx);
    check_running_proxies(ctx);
    for c in &ctx.mesh.clusters {
        check_injector_values(ctx, c);
    }
}

/// Workloads whose pods will carry a sidecar (or probably will: the namespace is not in the
/// input).
fn gets_sidecar(w: &Workload) -> bool {
    matches!(w.sidecar, Injection::Injected(_) | Injection::Unknown)
        && w.gateway.is_none()
        && w.kind != WorkloadKind::WorkloadEntry
}

/// STR0404 and STR0405 for pods that set the resource annotations.
fn check_annotated_workloads(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for w in mesh
        .workloads
        .iter()
        .filter(|w| gets_sidecar(w) && !is_replica(mesh, w))
    {
        let present: Vec<&str> = RESOURCE_ANNOTATIONS
            .iter()
            .copied()
            .filter(|a| w.annotations.contains_key(*a))
            .collect();
        let Some(first) = present.first() else {
            continue;
        };
        if w.kind == WorkloadKind::Pod
            && let Some(spec) = w.pod_spec(mesh.object(w.object))
            && proxy_container(spec).is_some_and(|(_, c)| c.image.as_deref() != Some("auto"))
        {
            // Already injected: the container shows what the annotations gave.
            continue;
        }
        let get = |k: &str| w.annotations.get(k).cloned();
        let r = Resources {
            cpu: get(CPU),
            memory: get(MEMORY),
            cpu_limit: get(CPU_LIMIT),
            memory_limit: get(MEMORY_LIMIT),
        };
        let meta = w.pod_meta_path();
        let missing = r.missing();
        if !missing.is_empty() {
            let add: Vec<&str> = [
                (CPU, r.cpu.is_none() && r.cpu_limit.is_none()),
                (MEMORY, r.memory.is_none() && r.memory_limit.is_none()),
                (MEMORY_LIMIT, r.memory_limit.is_none()),
            ]
            .iter()
            .filter(|(_, need)| *need)
            .map(|(k, _)| *k)
            .collect();
            ctx.at_key(
                STR0404,
                w.object,
                &format!("{meta}.annotations[\"{first}\"]"),
                format!(
                    "the pods set {} but not the other sidecar resource annotations; once any is set, the injector takes the sidecar's resources from these annotations only, so istio-proxy gets no {}: {}. Add {}",
                    join(&present.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
                    join(&missing),
                    consequence(&missing),
                    join(&add.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
                ),
            );
        }
        for (what, req, lim) in r.inverted() {
            let key = if what == "CPU" { CPU } else { MEMORY };
            ctx.at(
                STR0405,
                w.object,
                &format!("{meta}.annotations[\"{key}\"]"),
                format!(
                    "sidecar {what} request {req} is above its limit {lim}: the API server rejects pods whose requests exceed their limits, so these pods cannot be created. Raise the limit or lower the request"
                ),
            )
            .level(Level::Error);
        }
    }
}

/// STR0404 for running pods (dumped from a cluster) whose istio-proxy container has no resources.
fn check_running_proxies(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for w in mesh
        .workloads
        .iter()
        .filter(|w| w.kind == WorkloadKind::Pod && w.gateway.is_none())
    {
        if is_replica(mesh, w) || is_system_namespace(&w.namespace) {
            continue;
        }
        let Some(spec) = w.pod_spec(mesh.object(w.object)) else {
            continue;
        };
        let Some((path, c)) = proxy_container(spec) else {
            continue;
        };
        if c.image.as_deref() == Some("auto") {
            continue;
        }
        let res = c.resources.as_ref();
        let get = |limits: bool, key: &str| {
            res.and_then(|r| {
                if limits {
                    r.limits.as_ref()
                } else {
                    r.requests.as_ref()
                }
            })
            .and_then(|m| m.get(key))
            .map(|q| q.0.clone())
        };
        let r = Resources {
            cpu: get(false, "cpu"),
            memory: get(false, "memory"),
            cpu_limit: get(true, "cpu"),
            memory_limit: get(true, "memory"),
        };
        let missing = r.missing();
        if missing.is_empty() {
            continue;
        }
        let field = if res.is_some() {
            format!("spec.{path}.resources")
        } else {
            format!("spec.{path}.name")
        };
        ctx.at(
            STR0404,
            w.object,
            &field,
            format!(
                "the istio-proxy container of pod {}/{} has no {}: {}. Set the sidecar resources through the injector's global.proxy.resources or the sidecar.istio.io/proxy* annotations",
                w.namespace,
                w.name,
                join(&missing),
                consequence(&missing)
            ),
        );
    }
}

/// Chart defaults of `global.proxy.resources`.
fn chart_default() -> Value {
    serde_json::json!({
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "2000m", "memory": "1024Mi"},
    })
}

/// Helm's merge of user values over chart defaults: maps merge key by key, `null` deletes.
fn helm_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(existing) = b.get_mut(k) {
                    helm_merge(existing, v);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Injected workloads of a cluster that take the injector's default resources.
fn defaulted_workloads(ctx: &Ctx, c: &Cluster) -> Vec<String> {
    let mesh = ctx.mesh;
    mesh.workloads_in(c.id)
        .filter(|w| {
            matches!(w.sidecar, Injection::Injected(_))
                && w.gateway.is_none()
                && !is_replica(mesh, w)
        })
        .filter(|w| {
            !RESOURCE_ANNOTATIONS
                .iter()
                .any(|a| w.annotations.contains_key(*a))
        })
        .filter(|w| {
            w.kind != WorkloadKind::Pod
                || w.pod_spec(mesh.object(w.object))
                    .and_then(proxy_container)
                    .is_none()
        })
        .map(|w| format!("{}/{}", w.namespace, w.name))
        .collect()
}

/// STR0404 and STR0405 on the injector's `global.proxy.resources`: from the rendered injector
/// ConfigMap when the input has it, else from an IstioOperator's values over the chart default.
fn check_injector_values(ctx: &mut Ctx, c: &Cluster) {
    let mut sources: Vec<(ObjId, String, Resources, String)> = Vec::new();
    for (id, o) in c.of_kind(Kind::ConfigMap) {
        if o.namespace() != c.istio_namespace || !o.name().starts_with("istio-sidecar-injector") {
            continue;
        }
        let Some(text) = o
            .config_map()
            .and_then(|cm| cm.data.as_ref())
            .and_then(|d| d.get("values"))
        else {
            continue;
        };
        let Ok(values) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let Some(proxy) = values.get("global").and_then(|g| g.get("proxy")) else {
            continue;
        };
        let r = proxy
            .get("resources")
            .map(Resources::from_json)
            .unwrap_or_default();
        sources.push((
            id,
            "data.values".to_string(),
            r,
            format!(
                "the injector values in ConfigMap {}/{}",
                o.namespace(),
                o.name()
            ),
        ));
    }
    if sources.is_empty() {
        for (id, op) in c.operators() {
            let Some(user) = op.spec.value("global.proxy.resources") else {
                continue;
            };
            let mut merged = chart_default();
            if user.is_null() {
                merged = Value::Null;
            } else {
                helm_merge(&mut merged, user);
            }
            let r = Resources::from_json(&merged);
            let name = ctx.mesh.object(id).display_name();
            sources.push((
                id,
                "spec.values.global.proxy.resources".to_string(),
                r,
                format!("values.global.proxy.resources of {name} (merged over the chart defaults)"),
            ));
        }
    }
    for (id, field, r, what) in sources {
        let missing = r.missing();
        if !missing.is_empty() {
            let affected = defaulted_workloads(ctx, c);
            let who = if affected.is_empty() {
                format!(
                    "the injected sidecars in cluster {} that set no resource annotations",
                    c.name
                )
            } else {
                format!("the sidecars of {}", join(&affected))
            };
            ctx.at(
                STR0404,
                id,
                &field,
                format!(
                    "with {what}, {who} get no {}: {}. Set requests (cpu, memory) and a memory limit, or leave the chart defaults (100m/128Mi, limit 1024Mi)",
                    join(&missing),
                    consequence(&missing)
                ),
            );
        }
        for (w, req, lim) in r.inverted() {
            ctx.at(
                STR0405,
                id,
                &field,
                format!("{what} ask for a sidecar {w} request of {req} above the limit {lim}: the API server rejects every injected pod that takes them. Raise the limit or lower the request"),
            )
            .level(Level::Error);
        }
    }
}
