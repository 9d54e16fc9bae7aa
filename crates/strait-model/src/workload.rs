//! Workloads: what runs, taken from Pods, from the pod templates of Deployments, StatefulSets,
//! DaemonSets, Jobs and CronJobs (so analysis works from manifests before anything runs), from
//! WorkloadEntries, and from gateways an IstioOperator installs.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::PodSpec;
use strait_api::{Kind, Object};

use crate::ids::{ClusterId, ObjId, WorkloadId};
use crate::selector::LabelIndex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    /// A ReplicaSet of its own; one a Deployment of the input owns is that Deployment's.
    ReplicaSet,
    /// A `batch/v1` Job: its pods run to completion.
    Job,
    /// A `batch/v1` CronJob: a Job template run on a schedule.
    CronJob,
    WorkloadEntry,
    /// A gateway declared in an IstioOperator's `components.ingressGateways`.
    OperatorGateway,
}

impl WorkloadKind {
    /// A controller that keeps long-running pods from its template: Deployment, StatefulSet,
    /// DaemonSet, ReplicaSet.
    pub fn is_controller(self) -> bool {
        matches!(
            self,
            WorkloadKind::Deployment
                | WorkloadKind::StatefulSet
                | WorkloadKind::DaemonSet
                | WorkloadKind::ReplicaSet
        )
    }
}

/// Whether a workload's pods get a sidecar proxy, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Injection {
    /// A sidecar is (or will be) injected.
    Injected(String),
    /// No sidecar, and the reason.
    NotInjected(String),
    /// The namespace is not in the manifests, so its labels are unknown.
    Unknown,
    /// The workload is a gateway: its proxy is the main container.
    Gateway,
    /// Not a Kubernetes pod (a WorkloadEntry): its proxy runs on the VM, if any.
    External,
}

impl Injection {
    pub fn has_proxy(&self) -> bool {
        matches!(self, Injection::Injected(_) | Injection::Gateway)
    }

    pub fn lacks_sidecar(&self) -> bool {
        matches!(self, Injection::NotInjected(_))
    }
}

/// What kind of Istio gateway a workload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GatewayRole {
    Ingress,
    Egress,
    /// Serves cross-network traffic (labelled with a network, or `istio: eastwestgateway`).
    EastWest,
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub id: WorkloadId,
    pub cluster: ClusterId,
    pub object: ObjId,
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// Labels of the pods (pod template labels for controllers).
    pub labels: BTreeMap<String, String>,
    /// Annotations of the pods.
    pub annotations: BTreeMap<String, String>,
    pub service_account: String,
    pub replicas: u32,
    /// Field path of the pod template in the object (`spec.template`, or empty for a Pod).
    pub template_path: &'static str,
    pub sidecar: Injection,
    pub gateway: Option<GatewayRole>,
    /// Effective network ("" when the mesh has none).
    pub network: String,
    /// Fixed address (WorkloadEntry, or a Pod's status IP).
    pub address: Option<String>,
    pub host_network: bool,
}

impl Workload {
    /// The pod spec, when the workload is a pod or a pod template.
    pub fn pod_spec<'a>(&self, obj: &'a Object) -> Option<&'a PodSpec> {
        template_of(obj)?.spec
    }

    /// Field path prefix of the pod spec (`spec.template.spec` or `spec`).
    pub fn pod_spec_path(&self) -> String {
        if self.template_path.is_empty() {
            "spec".to_string()
        } else {
            format!("{}.spec", self.template_path)
        }
    }

    /// Field path prefix of the pod metadata.
    pub fn pod_meta_path(&self) -> String {
        if self.template_path.is_empty() {
            "metadata".to_string()
        } else {
            format!("{}.metadata", self.template_path)
        }
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// `<name>` as Istio's telemetry names it, and the app/version labels.
    pub fn app(&self) -> &str {
        self.label("app.kubernetes.io/name")
            .or_else(|| self.label("app"))
            .unwrap_or(&self.name)
    }

    pub fn version(&self) -> Option<&str> {
        self.label("app.kubernetes.io/version")
            .or_else(|| self.label("version"))
    }
}

/// The pod template parts of a workload object: labels, annotations, spec, replicas, and where
/// the template sits (`spec.template`; empty for a Pod).
#[derive(Clone, Copy, Debug)]
pub struct Template<'a> {
    pub kind: WorkloadKind,
    pub path: &'static str,
    pub labels: Option<&'a BTreeMap<String, String>>,
    pub annotations: Option<&'a BTreeMap<String, String>>,
    pub spec: Option<&'a PodSpec>,
    pub replicas: u32,
}

/// Whether `o` is a ReplicaSet that a Deployment of cluster `c` owns (a dump holds both).
pub fn owned_by_input_deployment(c: &crate::cluster::Cluster, o: &Object) -> bool {
    o.kind == Kind::ReplicaSet
        && o.meta().owner_references.iter().flatten().any(|r| {
            r.kind == "Deployment" && c.find(Kind::Deployment, o.namespace(), &r.name).is_some()
        })
}

/// The pod template of a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob.
pub fn template_of(obj: &Object) -> Option<Template<'_>> {
    match obj.kind {
        Kind::Pod => {
            let p = obj.pod()?;
            Some(Template {
                kind: WorkloadKind::Pod,
                path: "",
                labels: p.metadata.labels.as_ref(),
                annotations: p.metadata.annotations.as_ref(),
                spec: p.spec.as_ref(),
                replicas: 1,
            })
        }
        Kind::Deployment => {
            let s = &obj.deployment()?.spec;
            let m = s.template.metadata.as_ref();
            Some(Template {
                kind: WorkloadKind::Deployment,
                path: "spec.template",
                labels: m.and_then(|m| m.labels.as_ref()),
                annotations: m.and_then(|m| m.annotations.as_ref()),
                spec: s.template.spec.as_ref(),
                replicas: s.replicas.map_or(1, |r| r.max(0) as u32),
            })
        }
        Kind::StatefulSet => {
            let s = &obj.stateful_set()?.spec;
            let m = s.template.metadata.as_ref();
            Some(Template {
                kind: WorkloadKind::StatefulSet,
                path: "spec.template",
                labels: m.and_then(|m| m.labels.as_ref()),
                annotations: m.and_then(|m| m.annotations.as_ref()),
                spec: s.template.spec.as_ref(),
                replicas: s.replicas.map_or(1, |r| r.max(0) as u32),
            })
        }
        Kind::DaemonSet => {
            let s = &obj.daemon_set()?.spec;
            let m = s.template.metadata.as_ref();
            Some(Template {
                kind: WorkloadKind::DaemonSet,
                path: "spec.template",
                labels: m.and_then(|m| m.labels.as_ref()),
                annotations: m.and_then(|m| m.annotations.as_ref()),
                spec: s.template.spec.as_ref(),
                replicas: 1,
            })
        }
        Kind::ReplicaSet => {
            let s = &obj.replica_set()?.spec;
            let m = s.template.as_ref().and_then(|t| t.metadata.as_ref());
            Some(Template {
                kind: WorkloadKind::ReplicaSet,
                path: "spec.template",
                labels: m.and_then(|m| m.labels.as_ref()),
                annotations: m.and_then(|m| m.annotations.as_ref()),
                spec: s.template.as_ref().and_then(|t| t.spec.as_ref()),
                replicas: s.replicas.map_or(1, |r| r.max(0) as u32),
            })
        }
        Kind::Job => {
            let s = obj.job()?.spec.as_ref()?;
            Some(job_template(WorkloadKind::Job, "spec.template", s))
        }
        Kind::CronJob => {
            let s = obj.cron_job()?.spec.job_template.spec.as_ref()?;
            Some(job_template(
                WorkloadKind::CronJob,
                "spec.jobTemplate.spec.template",
                s,
            ))
        }
        _ => None,
    }
}

/// A Job's pod template; `parallelism` (default 1) is how many of its pods run at once.
fn job_template<'a>(kind: WorkloadKind, path: &'static str, s: &'a JobSpec) -> Template<'a> {
    let m = s.template.metadata.as_ref();
    Template {
        kind,
        path,
        labels: m.and_then(|m| m.labels.as_ref()),
        annotations: m.and_then(|m| m.annotations.as_ref()),
        spec: s.template.spec.as_ref(),
        replicas: s.parallelism.map_or(1, |p| p.max(0) as u32),
    }
}

/// Is this pod an Istio gateway (its proxy is the main container)?
pub(crate) fn gateway_role(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    spec: Option<&PodSpec>,
) -> Option<GatewayRole> {
    let istio = labels.get("istio").map(String::as_str).unwrap_or("");
    let gateway_template = crate::injection::wants_gateway_template(annotations);
    let runs_router = spec.is_some_and(|s| {
        s.containers.iter().any(|c| {
            c.image.as_deref().is_some_and(|i| i.contains("proxyv2"))
                && c.args.iter().flatten().any(|a| a == "router")
        })
    });
    let is_gateway = istio.ends_with("gateway") || gateway_template || runs_router;
    if !is_gateway {
        return None;
    }
    let networked = labels.contains_key("topology.istio.io/network")
        || spec.is_some_and(|s| {
            s.containers.iter().any(|c| {
                c.env
                    .iter()
                    .flatten()
                    .any(|e| e.name == "ISTIO_META_REQUESTED_NETWORK_VIEW")
            })
        });
    Some(if istio == "eastwestgateway" || networked {
        GatewayRole::EastWest
    } else if istio.contains("egress") {
        GatewayRole::Egress
    } else {
        GatewayRole::Ingress
    })
}

/// Namespace facts the injection decision needs.
#[derive(Clone, Debug, Default)]
pub struct NamespaceInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The Namespace object, when the manifests define it.
    pub object: Option<ObjId>,
}

/// A chosen set of workloads (a control plane's, say) by namespace, with their labels indexed,
/// so that "what does this policy select" looks at the workloads of its namespace holding one of
/// its labels instead of at every workload: at thousands of policies and workloads, scanning
/// was the analyzer's largest cost.
#[derive(Debug, Default)]
pub struct WorkloadIndex<'m> {
    all: Vec<&'m Workload>,
    labels: LabelIndex<'m>,
    by_namespace: HashMap<&'m str, Namespace<'m>>,
}

#[derive(Debug, Default)]
struct Namespace<'m> {
    workloads: Vec<&'m Workload>,
    labels: LabelIndex<'m>,
}

impl<'m> WorkloadIndex<'m> {
    /// Indexes `workloads`, keeping their order.
    pub fn new(workloads: impl IntoIterator<Item = &'m Workload>) -> WorkloadIndex<'m> {
        let all: Vec<&Workload> = workloads.into_iter().collect();
        let mut grouped: HashMap<&str, Vec<&Workload>> = HashMap::new();
        for w in &all {
            grouped.entry(w.namespace.as_str()).or_default().push(w);
        }
        let by_namespace = grouped
            .into_iter()
            .map(|(ns, workloads)| {
                let labels = LabelIndex::new(workloads.iter().map(|w| &w.labels));
                (ns, Namespace { workloads, labels })
            })
            .collect();
        WorkloadIndex {
            labels: LabelIndex::new(all.iter().map(|w| &w.labels)),
            all,
            by_namespace,
        }
    }

    /// Every indexed workload, in order.
    pub fn all(&self) -> &[&'m Workload] {
        &self.all
    }

    /// The indexed workloads of `namespace`, in order.
    pub fn in_namespace(&self, namespace: &str) -> &[&'m Workload] {
        self.by_namespace
            .get(namespace)
            .map_or(&[], |n| n.workloads.as_slice())
    }

    /// The indexed workloads whose labels `sel` selects, in `namespace` or in every namespace
    /// when it is `None`, in order.
    pub fn select<'s>(
        &'s self,
        namespace: Option<&str>,
        sel: &'s BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'m Workload> + 's {
        let (workloads, labels): (&'s [&'m Workload], Option<&'s LabelIndex<'m>>) = match namespace
        {
            None => (&self.all, Some(&self.labels)),
            Some(ns) => match self.by_namespace.get(ns) {
                Some(n) => (&n.workloads, Some(&n.labels)),
                None => (&[], None),
            },
        };
        labels
            .into_iter()
            .flat_map(move |l| l.select(sel, move |i| &workloads[i].labels))
            .map(move |i| workloads[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::map_selects;

    fn workload(i: u32, namespace: &str, labels: &[(&str, &str)]) -> Workload {
        Workload {
            id: WorkloadId(i),
            cluster: ClusterId(0),
            object: ObjId {
                cluster: ClusterId(0),
                index: i,
            },
            kind: WorkloadKind::Pod,
            namespace: namespace.to_string(),
            name: format!("w{i}"),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            service_account: "default".to_string(),
            replicas: 1,
            template_path: "",
            sidecar: Injection::Unknown,
            gateway: None,
            network: String::new(),
            address: None,
            host_network: false,
        }
    }

    #[test]
    fn index_selects_what_a_scan_selects() {
        let namespaces = ["a", "b", "c"];
        let apps = ["x", "y", "z"];
        let versions = ["v1", "v2"];
        let mut workloads = Vec::new();
        for i in 0..90u32 {
            let mut labels = vec![("app", apps[i as usize % 3])];
            if i % 4 != 0 {
                labels.push(("version", versions[i as usize % 2]));
            }
            if i % 7 == 0 {
                labels.push(("tier", "web"));
            }
            workloads.push(workload(i, namespaces[(i as usize / 5) % 3], &labels));
        }
        let index = WorkloadIndex::new(workloads.iter().filter(|w| w.id.0 % 10 != 3));
        let chosen: Vec<&Workload> = workloads.iter().filter(|w| w.id.0 % 10 != 3).collect();
        assert_eq!(index.all().len(), chosen.len());
        let selectors: Vec<BTreeMap<String, String>> = [
            vec![],
            vec![("app", "x")],
            vec![("app", "y"), ("version", "v2")],
            vec![("tier", "web"), ("app", "z")],
            vec![("app", "nope")],
            vec![("other", "x")],
        ]
        .iter()
        .map(|s| {
            s.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect();
        let ids = |v: Vec<&Workload>| v.iter().map(|w| w.id).collect::<Vec<_>>();
        for ns in [None, Some("a"), Some("b"), Some("c"), Some("missing")] {
            let scope: Vec<&Workload> = chosen
                .iter()
                .copied()
                .filter(|w| ns.is_none_or(|n| w.namespace == n))
                .collect();
            if let Some(n) = ns {
                assert_eq!(ids(index.in_namespace(n).to_vec()), ids(scope.clone()));
            }
            for sel in &selectors {
                let scan: Vec<&Workload> = scope
                    .iter()
                    .copied()
                    .filter(|w| map_selects(sel, &w.labels))
                    .collect();
                assert_eq!(
                    ids(index.select(ns, sel).collect()),
                    ids(scan),
                    "{ns:?} {sel:?}"
                );
            }
        }
    }
}
