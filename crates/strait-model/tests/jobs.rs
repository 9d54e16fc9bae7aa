//! Jobs and CronJobs are workloads like Deployments: their pod templates (`spec.template`,
//! `spec.jobTemplate.spec.template`) give the labels, service account and injection verdict
//! every analyzer sees.

mod support;

use strait_api::Object;
use strait_model::{Injection, Mesh, Workload, WorkloadKind};
use support::mesh;

const BATCH: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: batch, labels: {istio-injection: enabled}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: batch}
spec:
  parallelism: 3
  template:
    metadata:
      labels: {app: migrate, version: v2}
      annotations: {sidecar.istio.io/nativeSidecar: "true"}
    spec:
      serviceAccountName: migrator
      restartPolicy: Never
      containers: [{name: app, image: migrate}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: batch}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          labels: {app: report}
        spec:
          serviceAccountName: reporter
          restartPolicy: OnFailure
          containers: [{name: app, image: report}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cleanup, namespace: batch}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        metadata:
          labels: {app: cleanup, sidecar.istio.io/inject: "false"}
        spec:
          restartPolicy: Never
          containers: [{name: app, image: cleanup}]
"#;

fn workload<'m>(mesh: &'m Mesh, name: &str) -> &'m Workload {
    mesh.workloads
        .iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no workload {name}"))
}

#[test]
fn job_pod_template_is_a_workload() {
    let (_dir, mesh) = mesh(&[("batch.yaml", BATCH)]);
    let w = workload(&mesh, "migrate");
    assert_eq!(w.kind, WorkloadKind::Job);
    assert_eq!(w.namespace, "batch");
    assert_eq!(w.label("app"), Some("migrate"));
    assert_eq!(w.version(), Some("v2"));
    assert_eq!(
        w.annotations
            .get("sidecar.istio.io/nativeSidecar")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(w.service_account, "migrator");
    assert_eq!(w.replicas, 3, "parallelism");
    assert!(
        matches!(w.sidecar, Injection::Injected(_)),
        "{:?}",
        w.sidecar
    );
    assert_eq!(w.pod_spec_path(), "spec.template.spec");
    let obj: &Object = mesh.object(w.object);
    let spec = w.pod_spec(obj).expect("the Job's pod spec");
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
}

#[test]
fn cron_job_pod_template_is_a_workload() {
    let (_dir, mesh) = mesh(&[("batch.yaml", BATCH)]);
    let w = workload(&mesh, "report");
    assert_eq!(w.kind, WorkloadKind::CronJob);
    assert_eq!(w.label("app"), Some("report"));
    assert_eq!(w.service_account, "reporter");
    assert_eq!(w.replicas, 1);
    assert!(
        matches!(w.sidecar, Injection::Injected(_)),
        "{:?}",
        w.sidecar
    );
    assert_eq!(w.pod_meta_path(), "spec.jobTemplate.spec.template.metadata");
    let spec = w
        .pod_spec(mesh.object(w.object))
        .expect("the CronJob's pod spec");
    assert_eq!(spec.containers[0].name, "app");

    let opted_out = workload(&mesh, "cleanup");
    assert_eq!(opted_out.kind, WorkloadKind::CronJob);
    assert_eq!(opted_out.service_account, "default");
    assert!(opted_out.sidecar.lacks_sidecar(), "{:?}", opted_out.sidecar);
}

/// A dump holds a Deployment, the ReplicaSet it made and that ReplicaSet's pod: one workload
/// for the Deployment and the pod, none for its ReplicaSet. A ReplicaSet of its own is a
/// workload, with its replicas.
#[test]
fn a_deployments_replica_set_is_not_a_workload_but_its_own_is() {
    let (_dir, mesh) = mesh(&[(
        "dump.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, uid: d-1}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: web}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-5d4f8b7c9
  namespace: shop
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: d-1}]
spec:
  replicas: 2
  selector: {matchLabels: {app: web, pod-template-hash: 5d4f8b7c9}}
  template:
    metadata: {labels: {app: web, pod-template-hash: 5d4f8b7c9}}
    spec:
      containers: [{name: web, image: web}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: legacy, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: legacy}}
  template:
    metadata: {labels: {app: legacy}}
    spec:
      containers: [{name: legacy, image: legacy}]
"#,
    )]);
    let kinds: Vec<(&str, WorkloadKind, u32)> = mesh
        .workloads
        .iter()
        .map(|w| (w.name.as_str(), w.kind, w.replicas))
        .collect();
    assert_eq!(
        kinds,
        [
            ("web", WorkloadKind::Deployment, 1),
            ("legacy", WorkloadKind::ReplicaSet, 3)
        ]
    );
    let legacy = workload(&mesh, "legacy");
    assert_eq!(legacy.template_path, "spec.template");
    assert_eq!(legacy.label("app"), Some("legacy"));
}
