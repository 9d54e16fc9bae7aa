//! STR0016: objects Kubernetes' API server rejects, so `kubectl apply` fails before anything
//! runs. strait types these kinds leniently (a missing required field reads as empty), so
//! without this check a Deployment without `containers` or a container without `image` would
//! analyze as "No issues".
//!
//! The rules mirror the API server's own validation (`pkg/apis/core/validation`:
//! `validateContainers`, `validateContainerPorts`, `ValidateService`; `pkg/apis/apps/validation`
//! and `pkg/apis/batch/validation` for the templates), and so do the messages
//! (`<field>: Required value`, `Invalid value`, `Duplicate value`, `Unsupported value`):
//! - Pods and the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and
//!   CronJobs: `containers` present and non-empty; every container and init container has a name (a
//!   DNS-1123 label, unique within the pod) and an image (pod templates too); container ports
//!   in 1..65535;
//! - apps/v1 workloads: a non-empty `spec.selector` that matches the template's labels, and
//!   `restartPolicy` Always; Jobs and CronJobs: `restartPolicy` OnFailure or Never (unset
//!   means Always, which a Job may not use);
//! - Services: `ports` unless the Service is headless (`clusterIP: None`) or ExternalName;
//!   each port has a `port` in 1..65535, and a unique name when there are several;
//! - names: a Service's a DNS-1035 label, a Namespace's a DNS-1123 label, and those of the
//!   other built-in kinds strait reads a DNS-1123 subdomain (custom resources are left alone:
//!   the API server checks their names more loosely).
//!
//! Older apiVersions of the apps kinds are reported by STR0008 (apply fails anyway) and their
//! selector rules differ (it defaulted from the labels), so selectors are checked for apps/v1
//! only. ReplicaSets are checked as the other controllers are.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use strait_api::de::{self, FieldPath, Seg};
use strait_api::layout::{is_dns_subdomain, is_dns1035_label};
use strait_api::yaml::{Resolved, ValueRef};
use strait_api::{Kind, Object};
use strait_model::selector::label_selector_matches;
use strait_model::{ObjId, is_dns_label, workload};

use super::util;
use crate::catalog::STR0016;
use crate::context::Ctx;

const POD_KINDS: [Kind; 7] = [
    Kind::Pod,
    Kind::Deployment,
    Kind::StatefulSet,
    Kind::DaemonSet,
    Kind::ReplicaSet,
    Kind::Job,
    Kind::CronJob,
];

/// One rejected field: its path, the type its value has when written, and Kubernetes'
/// reason (`Required value`, ...).
struct Problem {
    field: String,
    shape: Shape,
    reason: String,
}

fn problem(field: impl Into<String>, shape: Shape, reason: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        shape,
        reason: reason.into(),
    }
}

/// Built-in kinds whose names Kubernetes validates, besides the pod kinds and Services.
const NAMED_KINDS: [Kind; 7] = [
    Kind::Namespace,
    Kind::ConfigMap,
    Kind::Secret,
    Kind::ServiceAccount,
    Kind::NetworkPolicy,
    Kind::Ingress,
    Kind::EndpointSlice,
];

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for kind in POD_KINDS {
        for (id, obj) in util::objects(mesh, kind) {
            let mut problems = name(obj);
            problems.extend(workload(obj));
            report(ctx, id, obj, problems);
        }
    }
    for (id, obj) in util::objects(mesh, Kind::Service) {
        let mut problems = name(obj);
        problems.extend(service(obj));
        report(ctx, id, obj, problems);
    }
    for kind in NAMED_KINDS {
        for (id, obj) in util::objects(mesh, kind) {
            report(ctx, id, obj, name(obj));
        }
    }
}

/// `metadata.name` as the API server validates it for the kind: a DNS-1035 label for a
/// Service (its name is a DNS name in the cluster domain), a DNS-1123 label for a Namespace,
/// a DNS-1123 subdomain for the others (`ValidateObjectMeta` with the kind's name function).
/// A missing name is STR0013's.
fn name(obj: &Object) -> Vec<Problem> {
    let n = obj.name();
    if n.is_empty() {
        return Vec::new();
    }
    let reason = name_format(obj.kind, n).or_else(|| name_length(obj, n));
    reason
        .map(|reason| {
            problem(
                "metadata.name",
                Shape::Str,
                format!("Invalid value: {n:?}: {reason}"),
            )
        })
        .into_iter()
        .collect()
}

fn name_format(kind: Kind, n: &str) -> Option<&'static str> {
    match kind {
        Kind::Service if !is_dns1035_label(n) => Some(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character, at most 63 characters",
        ),
        Kind::Namespace if !is_dns_label(n) => Some(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric character, and be at most 63 characters",
        ),
        Kind::Service | Kind::Namespace => None,
        _ if !is_dns_subdomain(n) => Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character, at most 253 characters",
        ),
        _ => None,
    }
}

/// Lengths the batch kinds allow below a subdomain's 253: a CronJob's Jobs are named after it
/// plus 11 characters, and a Job's name is a label value on its pods (unless its selector is
/// manual), so 52 and 63 characters.
fn name_length(obj: &Object, n: &str) -> Option<&'static str> {
    match obj.kind {
        Kind::CronJob if n.len() > 52 => Some(
            "must be no more than 52 characters (the CronJob controller names each Job it creates with 11 more, and a Job name is at most 63)",
        ),
        Kind::Job if n.len() > 63 && !manual_selector(obj) => Some(
            "must be no more than 63 characters (the Job's pods are labelled batch.kubernetes.io/job-name with it, and a label value is at most 63 characters)",
        ),
        _ => None,
    }
}

fn manual_selector(obj: &Object) -> bool {
    obj.job()
        .and_then(|j| j.spec.as_ref())
        .and_then(|s| s.manual_selector)
        == Some(true)
}

fn report(ctx: &mut Ctx, id: ObjId, obj: &Object, problems: Vec<Problem>) {
    for p in problems {
        if mistyped(obj, &p.field, p.shape) {
            continue;
        }
        let message = format!(
            "{}: {}: Kubernetes rejects this {} on apply",
            p.field, p.reason, obj.kind
        );
        ctx.at(STR0016, id, &p.field, message);
    }
}

/// What typing accepts at a field.
#[derive(Clone, Copy)]
enum Shape {
    Str,
    Int,
    Seq,
    Map,
}

/// Whether `path` has a value in the object's source (a required field left out, or null,
/// reads as its default once typed).
fn written(obj: &Object, path: &str) -> bool {
    let (node, exact) = de::locate(obj.source.root(), &FieldPath::parse(path));
    exact && !node.is_null()
}

/// Whether `path`, or one of its parents, holds a value of the wrong type: typing dropped it
/// and STR0010 reports it, so reporting the field again as missing would only repeat that.
fn mistyped(obj: &Object, path: &str, shape: Shape) -> bool {
    let mut cur = obj.source.root();
    for seg in FieldPath::parse(path).0 {
        let next = match (&seg, cur.value()) {
            (Seg::Key(k), ValueRef::Map(_)) => cur.get(k),
            (Seg::Index(i), ValueRef::Seq(items)) => items.get(*i),
            _ if cur.is_null() => return false,
            _ => return true,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    if cur.is_null() {
        return false;
    }
    let ok = match (shape, cur.value()) {
        (Shape::Str, _) => cur.as_str().is_some(),
        (Shape::Int, ValueRef::Scalar(sc)) => matches!(sc.resolve(), Resolved::Int(_)),
        (Shape::Seq, ValueRef::Seq(_)) | (Shape::Map, ValueRef::Map(_)) => true,
        _ => false,
    };
    !ok
}

/// What Kubernetes requires of a workload kind beyond its pod spec: where the pod spec sits
/// (also when the object has none), its selector (apps/v1 kinds) and the restart policies it
/// allows. The template itself is read by the model (`workload::template_of`).
struct Rules<'a> {
    spec_path: &'static str,
    selector: Option<&'a LabelSelector>,
    restart: &'static [&'static str],
}

const ALWAYS: &[&str] = &["Always"];
const BATCH: &[&str] = &["OnFailure", "Never"];

fn rules(obj: &Object) -> Option<Rules<'_>> {
    let apps_v1 = obj.api_version == "apps/v1";
    let controller = |selector| Rules {
        spec_path: "spec.template.spec",
        selector: apps_v1.then_some(selector),
        restart: ALWAYS,
    };
    Some(match obj.kind {
        Kind::Pod => Rules {
            spec_path: "spec",
            selector: None,
            restart: &[],
        },
        Kind::Deployment => controller(&obj.deployment()?.spec.selector),
        Kind::StatefulSet => controller(&obj.stateful_set()?.spec.selector),
        Kind::DaemonSet => controller(&obj.daemon_set()?.spec.selector),
        Kind::ReplicaSet => controller(&obj.replica_set()?.spec.selector),
        Kind::Job => Rules {
            spec_path: "spec.template.spec",
            selector: None,
            restart: BATCH,
        },
        Kind::CronJob => Rules {
            spec_path: "spec.jobTemplate.spec.template.spec",
            selector: None,
            restart: BATCH,
        },
        _ => return None,
    })
}

fn workload(obj: &Object) -> Vec<Problem> {
    let Some(t) = rules(obj) else {
        return Vec::new();
    };
    let template = workload::template_of(obj);
    let mut out = Vec::new();
    if let Some(sel) = t.selector {
        selector(obj, sel, template.and_then(|p| p.labels), &mut out);
    }
    let sp = t.spec_path;
    let Some(spec) = template.and_then(|p| p.spec) else {
        out.push(problem(
            format!("{sp}.containers"),
            Shape::Seq,
            "Required value",
        ));
        return out;
    };
    if spec.containers.is_empty() {
        out.push(problem(
            format!("{sp}.containers"),
            Shape::Seq,
            "Required value",
        ));
    }
    // Containers and init containers share one namespace of names.
    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    let inits = spec.init_containers.as_deref().unwrap_or_default();
    let all = inits
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("{sp}.initContainers[{i}]"), c))
        .chain(
            spec.containers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("{sp}.containers[{i}]"), c)),
        );
    for (path, c) in all {
        container(&path, c, &mut names, &mut out);
    }
    if !t.restart.is_empty() {
        restart_policy(obj, sp, spec, t.restart, &mut out);
    }
    out
}

fn container<'c>(
    path: &str,
    c: &'c Container,
    names: &mut BTreeMap<&'c str, String>,
    out: &mut Vec<Problem>,
) {
    if c.name.is_empty() {
        out.push(problem(
            format!("{path}.name"),
            Shape::Str,
            "Required value",
        ));
    } else if !is_dns_label(&c.name) {
        out.push(problem(
            format!("{path}.name"),
            Shape::Str,
            format!(
                "Invalid value: {:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric character, and be at most 63 characters",
                c.name
            ),
        ));
    } else if let Some(first) = names.get(c.name.as_str()) {
        out.push(problem(
            format!("{path}.name"),
            Shape::Str,
            format!(
                "Duplicate value: {:?} (already the name of {first})",
                c.name
            ),
        ));
    } else {
        names.insert(&c.name, path.to_string());
    }
    if c.image.as_deref().is_none_or(str::is_empty) {
        out.push(problem(
            format!("{path}.image"),
            Shape::Str,
            "Required value",
        ));
    }
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let pp = format!("{path}.ports[{i}]");
        if p.container_port == 0 {
            out.push(problem(
                format!("{pp}.containerPort"),
                Shape::Int,
                "Required value",
            ));
        } else if !(1..=65535).contains(&p.container_port) {
            out.push(problem(
                format!("{pp}.containerPort"),
                Shape::Int,
                format!(
                    "Invalid value: {}: must be between 1 and 65535, inclusive",
                    p.container_port
                ),
            ));
        }
        if let Some(h) = p.host_port
            && h != 0
            && !(1..=65535).contains(&h)
        {
            out.push(problem(
                format!("{pp}.hostPort"),
                Shape::Int,
                format!("Invalid value: {h}: must be between 1 and 65535, inclusive"),
            ));
        }
    }
}

/// apps/v1: a selector is required, may not be empty, and must select the template's pods
/// (`ValidateDeploymentSpec`, `ValidateStatefulSetSpec`, `ValidateDaemonSetSpec`).
fn selector(
    obj: &Object,
    sel: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
    out: &mut Vec<Problem>,
) {
    let empty = sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && sel.match_expressions.as_ref().is_none_or(Vec::is_empty);
    if !written(obj, "spec.selector") {
        out.push(problem("spec.selector", Shape::Map, "Required value"));
    } else if empty {
        out.push(problem(
            "spec.selector",
            Shape::Map,
            format!(
                "Invalid value: empty selector is invalid for {}",
                obj.kind.to_string().to_ascii_lowercase()
            ),
        ));
    } else {
        let none = BTreeMap::new();
        if !label_selector_matches(sel, labels.unwrap_or(&none)) {
            out.push(problem(
                "spec.template.metadata.labels",
                Shape::Map,
                "Invalid value: `selector` does not match template `labels`",
            ));
        }
    }
}

/// Controllers' pods must restart always; a Job's must not (and a Job has no default: an
/// unset policy means Always, which Kubernetes rejects for it).
fn restart_policy(
    obj: &Object,
    sp: &str,
    spec: &PodSpec,
    allowed: &[&str],
    out: &mut Vec<Problem>,
) {
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    if allowed.contains(&policy) {
        return;
    }
    let supported = allowed
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let field = format!("{sp}.restartPolicy");
    let reason = if matches!(obj.kind, Kind::Job | Kind::CronJob) && policy == "Always" {
        format!("Required value: valid values: {supported}")
    } else {
        format!("Unsupported value: {policy:?}: supported values: {supported}")
    };
    out.push(problem(field, Shape::Str, reason));
}

/// `ValidateService`: ports, each port's number, and names when there are several.
fn service(obj: &Object) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(spec) = obj.service().and_then(|s| s.spec.as_ref()) else {
        // No spec at all: a ClusterIP Service without ports.
        out.push(problem("spec.ports", Shape::Seq, "Required value"));
        return out;
    };
    let headless = spec.cluster_ip.as_deref() == Some("None")
        || spec
            .cluster_ips
            .as_ref()
            .and_then(|ips| ips.first())
            .is_some_and(|ip| ip == "None");
    let external_name = spec.type_.as_deref() == Some("ExternalName");
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() && !headless && !external_name {
        out.push(problem("spec.ports", Shape::Seq, "Required value"));
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("spec.ports[{i}]");
        if !written(obj, &format!("{pp}.port")) {
            out.push(problem(format!("{pp}.port"), Shape::Int, "Required value"));
        } else if !(1..=65535).contains(&p.port) {
            out.push(problem(
                format!("{pp}.port"),
                Shape::Int,
                format!(
                    "Invalid value: {}: must be between 1 and 65535, inclusive",
                    p.port
                ),
            ));
        }
        match p.name.as_deref().filter(|n| !n.is_empty()) {
            None if ports.len() > 1 => {
                out.push(problem(
                    format!("{pp}.name"),
                    Shape::Str,
                    "Required value (a Service with several ports must name each)",
                ));
            }
            None => {}
            Some(n) => {
                if let Some(first) = names.get(n) {
                    out.push(problem(
                        format!("{pp}.name"),
                        Shape::Str,
                        format!("Duplicate value: {n:?} (already the name of spec.ports[{first}])"),
                    ));
                } else {
                    names.insert(n, i);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use strait_model::BuildOptions;

    use crate::{Options, analyze};

    /// The fields STR0016 reports for `yaml`, and whether STR0010 fired.
    fn fields(yaml: &str) -> (Vec<String>, bool) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("in.yaml"), yaml).expect("write");
        let input = strait_api::read_input(&[dir.path().to_path_buf()]);
        let (mesh, diags) = strait_model::build(input, &BuildOptions::default());
        let report = analyze(&mesh, &diags, &Options::default());
        let str0010 = report.findings.iter().any(|f| f.code == "STR0010");
        let fields = report
            .findings
            .into_iter()
            .filter(|f| f.code == "STR0016")
            .filter_map(|f| f.field)
            .collect();
        (fields, str0010)
    }

    #[test]
    fn a_mistyped_value_is_left_to_str0010() {
        let (fields, str0010) = fields(
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\n\
             spec:\n  ports: [{name: http, port: \"9080\"}]\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\n\
             spec:\n  containers:\n  - {name: app, image: 123}\n",
        );
        assert!(str0010);
        assert_eq!(fields, Vec::<String>::new());
    }

    #[test]
    fn selectors_are_checked_for_apps_v1_only() {
        let deployment = |version: &str| {
            format!(
                "apiVersion: {version}\nkind: Deployment\nmetadata: {{name: d, namespace: a}}\n\
                 spec:\n  template:\n    metadata: {{labels: {{app: d}}}}\n\
                 \x20   spec:\n      containers: [{{name: app, image: app:1}}]\n"
            )
        };
        assert_eq!(fields(&deployment("apps/v1")).0, ["spec.selector"]);
        assert_eq!(fields(&deployment("apps/v1beta2")).0, Vec::<String>::new());
    }
}
