//! Service accounts and the least privilege each needs.
//!
//! Four sets of rules, each granted only where it is used:
//! * reading the mesh ([`reader_rules`]): what the control plane watches in every cluster it
//!   knows, its own through its service account, the others through the reader account a
//!   remote secret carries; plus TokenReviews, to check the tokens proxies present;
//! * the config cluster's own reads ([`config_rules`]): Ingresses and the Gateway API, the
//!   rest of what the control plane watches in its own cluster, bound to its account only;
//! * writing ([`writer_rules`]): the `istio-ca-root-cert` ConfigMap in every namespace and
//!   the injector webhook's `caBundle`; in a remote the primary does this through the
//!   reader account, so there it is bound to that account;
//! * in `istio-system` only: Secrets (`cacerts` and remote secrets, never Secrets elsewhere)
//!   and the leader-election Lease.

use serde_json::{Value, json};

use super::crd::KINDS;
use super::server::SERVICE_ACCOUNT as CONTROL_PLANE;
use super::webhook::NAME as WEBHOOK;
use super::{NAMESPACE, Options, Role, labels, meta};

/// The account other clusters' control planes act as, through a remote secret (Istio's name,
/// so istioctl-made remote secrets work too).
pub const READER: &str = "istio-reader-service-account";
/// The Secret holding the reader account's long-lived token.
pub const READER_TOKEN: &str = "istio-reader-service-account-token";
pub const EAST_WEST: &str = "istio-eastwestgateway";
pub const INGRESS: &str = "istio-ingressgateway";

const READ: &[&str] = &["get", "list", "watch"];

/// One RBAC rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub group: &'static str,
    pub resources: Vec<&'static str>,
    pub verbs: Vec<&'static str>,
    pub names: Vec<&'static str>,
}

fn rule(group: &'static str, resources: &[&'static str], verbs: &[&'static str]) -> Rule {
    Rule {
        group,
        resources: resources.to_vec(),
        verbs: verbs.to_vec(),
        names: Vec::new(),
    }
}

impl Rule {
    fn to_json(&self) -> Value {
        let mut r = json!({
            "apiGroups": [self.group],
            "resources": self.resources,
            "verbs": self.verbs,
        });
        if !self.names.is_empty() {
            r["resourceNames"] = json!(self.names);
        }
        r
    }
}

/// What reading the mesh takes: workloads and their placement, and every Istio kind with a
/// CRD (one rule per API group, resources sorted).
pub fn reader_rules() -> Vec<Rule> {
    let mut rules = vec![
        rule(
            "",
            &["namespaces", "nodes", "pods", "serviceaccounts", "services"],
            READ,
        ),
        rule("discovery.k8s.io", &["endpointslices"], READ),
        rule("authentication.k8s.io", &["tokenreviews"], &["create"]),
    ];
    let mut groups: Vec<&str> = KINDS.iter().map(|k| k.group()).collect();
    groups.sort();
    groups.dedup();
    for g in groups {
        let mut resources: Vec<&'static str> = KINDS
            .iter()
            .filter(|k| k.group() == g)
            .map(|k| k.plural)
            .collect();
        resources.sort();
        rules.push(rule(g, &resources, READ));
    }
    rules
}

/// Writes the control plane makes cluster-wide. ConfigMaps cannot be narrowed by name:
/// Kubernetes does not apply `resourceNames` to `create` or `list`.
/// What only the config cluster's control plane reads besides [`reader_rules`]: the rest of
/// [`crate::objects::CONTROL_PLANE`] (Ingresses, the Gateway API), derived from that list so
/// what the control plane watches and what it may watch cannot drift apart. ConfigMaps and
/// Secrets have rules of their own.
pub fn config_rules() -> Vec<Rule> {
    let granted = reader_rules();
    let mut by_group: std::collections::BTreeMap<&'static str, Vec<&'static str>> =
        std::collections::BTreeMap::new();
    for &kind in crate::objects::CONTROL_PLANE {
        if matches!(kind, strait_api::Kind::Secret | strait_api::Kind::ConfigMap) {
            continue;
        }
        let (group, plural) = (kind.group(), plural_of(kind));
        if granted
            .iter()
            .any(|r| r.group == group && r.resources.contains(&plural))
        {
            continue;
        }
        by_group.entry(group).or_default().push(plural);
    }
    by_group
        .into_iter()
        .map(|(group, mut resources)| {
            resources.sort();
            rule(group, &resources, READ)
        })
        .collect()
}

/// The API server's plural of `kind`, as a `'static` name for a rule.
pub(crate) fn plural_of(kind: strait_api::Kind) -> &'static str {
    match kind {
        strait_api::Kind::Namespace => "namespaces",
        strait_api::Kind::Node => "nodes",
        strait_api::Kind::Service => "services",
        strait_api::Kind::Pod => "pods",
        strait_api::Kind::EndpointSlice => "endpointslices",
        strait_api::Kind::ServiceAccount => "serviceaccounts",
        strait_api::Kind::Ingress => "ingresses",
        strait_api::Kind::IngressClass => "ingressclasses",
        strait_api::Kind::KubeGateway => "gateways",
        strait_api::Kind::GatewayClass => "gatewayclasses",
        strait_api::Kind::HTTPRoute => "httproutes",
        strait_api::Kind::GRPCRoute => "grpcroutes",
        strait_api::Kind::TLSRoute => "tlsroutes",
        strait_api::Kind::TCPRoute => "tcproutes",
        strait_api::Kind::ReferenceGrant => "referencegrants",
        other => KINDS
            .iter()
            .find(|k| k.kind == other)
            .map_or("", |k| k.plural),
    }
}

pub fn writer_rules() -> Vec<Rule> {
    vec![
        rule(
            "",
            &["configmaps"],
            &["get", "list", "watch", "create", "update"],
        ),
        Rule {
            names: vec![WEBHOOK],
            ..rule(
                "admissionregistration.k8s.io",
                &["mutatingwebhookconfigurations"],
                &["get", "patch"],
            )
        },
    ]
}

/// Secrets in `istio-system`: the plug-in CA and remote secrets.
pub fn secret_rules() -> Vec<Rule> {
    vec![rule("", &["secrets"], READ)]
}

/// Leader election among the control plane's replicas (and primaries leading a remote).
pub fn lease_rules() -> Vec<Rule> {
    vec![rule(
        "coordination.k8s.io",
        &["leases"],
        &["get", "create", "update"],
    )]
}

fn role(kind: &str, name: &str, rules: &[Rule]) -> Value {
    let rules: Vec<Value> = rules.iter().map(Rule::to_json).collect();
    let metadata = if kind == "Role" {
        meta(name, "rbac")
    } else {
        json!({"name": name, "labels": labels("rbac")})
    };
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "rules": rules,
    })
}

fn binding(kind: &str, name: &str, accounts: &[&str]) -> Value {
    let role_kind = kind.trim_end_matches("Binding");
    let metadata = if kind == "RoleBinding" {
        meta(name, "rbac")
    } else {
        json!({"name": name, "labels": labels("rbac")})
    };
    let subjects: Vec<Value> = accounts
        .iter()
        .map(|a| json!({"kind": "ServiceAccount", "name": a, "namespace": NAMESPACE}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": subjects,
    })
}

fn service_account(name: &str, api_access: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(name, "rbac"),
        // Gateways never call the API server: no token in their pods.
        "automountServiceAccountToken": api_access,
    })
}

/// Who is bound to what, by role. The names of the roles double as their bindings'.
pub fn grants(role: &Role) -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    match role {
        Role::Primary { .. } => vec![
            ("ClusterRole", "strait-reader", vec![CONTROL_PLANE, READER]),
            ("ClusterRole", "strait-control-plane", vec![CONTROL_PLANE]),
            ("ClusterRole", "strait-config-reader", vec![CONTROL_PLANE]),
            ("Role", "strait-secrets", vec![CONTROL_PLANE]),
            ("Role", "strait-leader-election", vec![CONTROL_PLANE]),
        ],
        Role::Remote { .. } => vec![
            ("ClusterRole", "strait-reader", vec![READER]),
            ("ClusterRole", "strait-control-plane", vec![READER]),
            ("Role", "strait-leader-election", vec![READER]),
        ],
    }
}

fn rules_of(name: &str) -> Vec<Rule> {
    match name {
        "strait-reader" => reader_rules(),
        "strait-control-plane" => writer_rules(),
        "strait-config-reader" => config_rules(),
        "strait-secrets" => secret_rules(),
        _ => lease_rules(),
    }
}

pub fn objects(opts: &Options) -> Vec<Value> {
    let mut out = Vec::new();
    if opts.is_primary() {
        out.push(service_account(CONTROL_PLANE, true));
    }
    out.push(service_account(READER, true));
    // A long-lived token for the reader account, which `strait create-remote-secret
    // --token-file` puts in the remote secret (as istioctl does): a projected token would
    // expire while the remote secret lives on.
    out.push(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": READER_TOKEN,
            "namespace": NAMESPACE,
            "labels": labels("rbac"),
            "annotations": {"kubernetes.io/service-account.name": READER},
        },
    }));
    out.push(service_account(EAST_WEST, false));
    out.push(service_account(INGRESS, false));
    for (kind, name, accounts) in grants(&opts.role) {
        out.push(role(kind, name, &rules_of(name)));
        out.push(binding(&format!("{kind}Binding"), name, &accounts));
    }
    out
}
