use serde_json::{Value, json};

use super::rbac::Rule;
use super::*;

fn opts(role: Role) -> Options {
    Options {
        mesh_id: "mesh1".into(),
        cluster: "cluster1".into(),
        network: "network1".into(),
        role,
        trust_domain: "cluster.local".into(),
        image: default_image(),
    }
}

fn primary() -> Options {
    opts(Role::Primary {
        serves_remotes: true,
    })
}

fn remote(address: &str) -> Options {
    Options {
        cluster: "cluster2".into(),
        network: "network2".into(),
        ..opts(Role::Remote {
            primary_address: address.into(),
            primary_cluster: Some("cluster1".into()),
        })
    }
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

#[test]
fn every_object_is_named_and_typed() {
    for o in [primary(), remote("203.0.113.7"), remote("gw.example.com")] {
        let objs = render(&o).expect("renders");
        for obj in &objs {
            assert!(obj["apiVersion"].is_string(), "{obj}");
            assert!(obj["kind"].is_string(), "{obj}");
            assert!(obj["metadata"]["name"].is_string(), "{obj}");
        }
        assert_eq!(objs, render(&o).expect("renders"), "deterministic");
        assert_eq!(objs[0]["kind"], "Namespace", "namespace first");
    }
}

#[test]
fn namespace_carries_network_and_leader() {
    let p = render(&primary()).expect("renders");
    assert_eq!(
        p[0]["metadata"]["labels"]["topology.istio.io/network"],
        "network1"
    );
    let r = render(&remote("203.0.113.7")).expect("renders");
    assert_eq!(
        r[0]["metadata"]["annotations"]["topology.istio.io/controlPlaneClusters"],
        "cluster1"
    );
}

fn rule(group: &'static str, resources: &[&'static str], verbs: &[&'static str]) -> Rule {
    Rule {
        group,
        resources: resources.to_vec(),
        verbs: verbs.to_vec(),
        names: vec![],
    }
}

#[test]
fn rbac_is_exactly_the_expected_set() {
    let read = &["get", "list", "watch"];
    let reader = vec![
        rule(
            "",
            &["namespaces", "nodes", "pods", "serviceaccounts", "services"],
            read,
        ),
        rule("discovery.k8s.io", &["endpointslices"], read),
        rule("authentication.k8s.io", &["tokenreviews"], &["create"]),
        rule("extensions.istio.io", &["wasmplugins"], read),
        rule(
            "networking.istio.io",
            &[
                "destinationrules",
                "envoyfilters",
                "gateways",
                "proxyconfigs",
                "serviceentries",
                "sidecars",
                "virtualservices",
                "workloadentries",
                "workloadgroups",
            ],
            read,
        ),
        rule(
            "security.istio.io",
            &[
                "authorizationpolicies",
                "peerauthentications",
                "requestauthentications",
            ],
            read,
        ),
        rule("telemetry.istio.io", &["telemetries"], read),
    ];
    assert_eq!(rbac::reader_rules(), reader);
    let writer = vec![
        rule(
            "",
            &["configmaps"],
            &["get", "list", "watch", "create", "update"],
        ),
        Rule {
            names: vec!["istio-sidecar-injector"],
            ..rule(
                "admissionregistration.k8s.io",
                &["mutatingwebhookconfigurations"],
                &["get", "patch"],
            )
        },
    ];
    assert_eq!(rbac::writer_rules(), writer);
    assert_eq!(rbac::secret_rules(), vec![rule("", &["secrets"], read)]);
    assert_eq!(
        rbac::lease_rules(),
        vec![rule(
            "coordination.k8s.io",
            &["leases"],
            &["get", "create", "update"]
        )]
    );
    // Nothing reads Secrets outside istio-system, and nothing but these roles exists.
    let objs = render(&primary()).expect("renders");
    for cr in objs.iter().filter(|o| o["kind"] == "ClusterRole") {
        for r in cr["rules"].as_array().expect("rules") {
            assert!(!r["resources"].to_string().contains("secrets"), "{cr}");
            assert!(!r["verbs"].to_string().contains('*'), "{cr}");
        }
    }
    let role = find(&objs, "Role", "strait-secrets").expect("secrets role");
    assert_eq!(role["metadata"]["namespace"], NAMESPACE);
    let remote = render(&remote("203.0.113.7")).expect("renders");
    assert!(find(&remote, "Role", "strait-secrets").is_none());
    let binding =
        find(&remote, "ClusterRoleBinding", "strait-control-plane").expect("writer binding");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "istio-reader-service-account", "namespace": "istio-system"}])
    );
}

#[test]
fn webhook_selectors_are_istios() {
    let objs = render(&primary()).expect("renders");
    let hook = find(
        &objs,
        "MutatingWebhookConfiguration",
        "istio-sidecar-injector",
    )
    .expect("injector");
    let e = |k: &str, op: &str, v: &[&str]| {
        if v.is_empty() {
            json!({"key": k, "operator": op})
        } else {
            json!({"key": k, "operator": op, "values": v})
        }
    };
    let sel = |reqs: Vec<Value>| json!({"matchExpressions": reqs});
    let expected = [
        (
            "rev.namespace.sidecar-injector.istio.io",
            sel(vec![
                e("istio.io/rev", "In", &["default"]),
                e("istio-injection", "DoesNotExist", &[]),
            ]),
            sel(vec![e("sidecar.istio.io/inject", "NotIn", &["false"])]),
        ),
        (
            "rev.object.sidecar-injector.istio.io",
            sel(vec![
                e("istio.io/rev", "DoesNotExist", &[]),
                e("istio-injection", "DoesNotExist", &[]),
            ]),
            sel(vec![
                e("sidecar.istio.io/inject", "NotIn", &["false"]),
                e("istio.io/rev", "In", &["default"]),
            ]),
        ),
        (
            "namespace.sidecar-injector.istio.io",
            sel(vec![e("istio-injection", "In", &["enabled"])]),
            sel(vec![e("sidecar.istio.io/inject", "NotIn", &["false"])]),
        ),
        (
            "object.sidecar-injector.istio.io",
            sel(vec![
                e("istio-injection", "DoesNotExist", &[]),
                e("istio.io/rev", "DoesNotExist", &[]),
            ]),
            sel(vec![
                e("sidecar.istio.io/inject", "In", &["true"]),
                e("istio.io/rev", "DoesNotExist", &[]),
            ]),
        ),
    ];
    let hooks = hook["webhooks"].as_array().expect("webhooks");
    assert_eq!(hooks.len(), expected.len());
    for (h, (name, ns, obj)) in hooks.iter().zip(expected) {
        assert_eq!(h["name"], name);
        assert_eq!(h["namespaceSelector"], ns, "{name}");
        assert_eq!(h["objectSelector"], obj, "{name}");
        assert_eq!(h["clientConfig"]["service"]["path"], "/inject");
        assert_eq!(h["failurePolicy"], "Fail");
    }
    let r = render(&remote("203.0.113.7")).expect("renders");
    let hook = find(&r, "MutatingWebhookConfiguration", "istio-sidecar-injector").expect("hook");
    assert_eq!(
        hook["webhooks"][0]["clientConfig"]["service"]["path"],
        "/inject/cluster/cluster2/net/network2"
    );
}

#[test]
fn primary_runs_the_control_plane_and_exposes_it() {
    let objs = render(&primary()).expect("renders");
    let d = find(&objs, "Deployment", "istiod").expect("control plane");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"][0], "control-plane");
    let ports: Vec<&Value> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .collect();
    for p in [15010, 15012, 15014, 15017] {
        assert!(ports.iter().any(|x| x["containerPort"] == p), "{p}");
    }
    // The injector runs beside it, configured by a ConfigMap it can read as its own JSON.
    let inj = &d["spec"]["template"]["spec"]["containers"][1];
    assert_eq!(inj["args"][0], "injector");
    let cm = find(&objs, "ConfigMap", "istio-sidecar-injector").expect("injector config");
    let text = cm["data"]["config.json"].as_str().expect("config.json");
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("config.json");
    std::fs::write(&file, text).expect("write");
    let config = crate::inject::Config::load(&file).expect("the injector reads it");
    assert_eq!(config.cluster_id, "cluster1");
    assert_eq!(c["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    let svc = find(&objs, "Service", "istiod").expect("istiod service");
    let sp = svc["spec"]["ports"].as_array().expect("ports");
    assert!(
        sp.iter()
            .any(|p| p["port"] == 443 && p["targetPort"] == 15017)
    );
    assert!(find(&objs, "PodDisruptionBudget", "istiod").is_some());
    let ew = find(&objs, "Service", "istio-eastwestgateway").expect("ew");
    assert_eq!(ew["spec"]["type"], "LoadBalancer");
    assert_eq!(
        ew["metadata"]["labels"]["topology.istio.io/network"],
        "network1"
    );
    let ports: Vec<i64> = ew["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(|p| p["port"].as_i64())
        .collect();
    assert_eq!(ports, [15021, 15443, 15012, 15017]);
    assert!(find(&objs, "Gateway", "cross-network-gateway").is_some());
    assert!(find(&objs, "Gateway", "istiod-gateway").is_some());
    assert!(find(&objs, "VirtualService", "istiod-vs").is_some());
    let alone = render(&opts(Role::Primary {
        serves_remotes: false,
    }))
    .expect("renders");
    assert!(find(&alone, "Gateway", "istiod-gateway").is_none());
}

#[test]
fn remote_reaches_the_primary() {
    let objs = render(&remote("203.0.113.7")).expect("renders");
    assert!(find(&objs, "Deployment", "istiod").is_none());
    assert!(find(&objs, "Gateway", "cross-network-gateway").is_none());
    let slice = find(&objs, "EndpointSlice", "istiod-primary").expect("slice");
    assert_eq!(slice["endpoints"][0]["addresses"][0], "203.0.113.7");
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "istiod"
    );
    let by_name = render(&remote("gw.example.com")).expect("renders");
    let svc = find(&by_name, "Service", "istiod").expect("service");
    assert_eq!(svc["spec"]["type"], "ExternalName");
    assert_eq!(svc["spec"]["externalName"], "gw.example.com");
}

#[test]
fn bad_options_name_the_problem() {
    let mut o = primary();
    o.cluster = "Cluster_1".into();
    assert_eq!(
        render(&o),
        Err(InstallError::ClusterName("Cluster_1".into()))
    );
    assert_eq!(render(&remote("")), Err(InstallError::NoPrimaryAddress));
    assert_eq!(
        render(&remote("not an address")),
        Err(InstallError::PrimaryAddress("not an address".into()))
    );
    let mut o = primary();
    o.network = "net work".into();
    assert!(matches!(render(&o), Err(InstallError::Network(_))));
}

/// The Istio resources strait installs are valid against the CRDs strait generates.
#[test]
fn rendered_custom_resources_fit_the_crds() {
    let objs = render(&primary()).expect("renders");
    let mut checked = 0;
    for o in &objs {
        if let Some(problems) = validate::check_custom_resource(o) {
            assert!(
                problems.is_empty(),
                "{}: {problems:?}",
                o["metadata"]["name"]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3);
}

/// Every Istio object of the examples fits the generated CRDs: the schemas accept what
/// strait's loader accepts.
#[test]
fn example_istio_objects_fit_the_crds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable examples") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            let parsed = strait_api::yaml::parse(&text, strait_api::FileId(0), 0, 0);
            for doc in &parsed.documents {
                let (Some(v), _) = strait_api::de::from_node::<Value>(doc) else {
                    continue;
                };
                if let Some(problems) = validate::check_custom_resource(&v) {
                    assert!(problems.is_empty(), "{}: {problems:?}", path.display());
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 10, "only {checked} Istio objects in the examples");
}

#[test]
fn yaml_stream_has_one_document_per_object() {
    let objs = render(&primary()).expect("renders");
    let text = yaml::to_stream(&objs);
    assert_eq!(text.matches("\n---\n").count() + 1, objs.len());
    assert!(text.starts_with("---\napiVersion: v1\nkind: Namespace\n"));
}

/// Every rule granted to `account` by the rendered roles and bindings: `(namespace or "" for
/// cluster-wide, rule)`.
fn granted_to(objs: &[Value], account: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for b in objs
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
    {
        let bound = b["subjects"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == account));
        if !bound {
            continue;
        }
        let role_kind = b["roleRef"]["kind"].as_str().unwrap_or("");
        let role = objs
            .iter()
            .find(|o| o["kind"] == role_kind && o["metadata"]["name"] == b["roleRef"]["name"])
            .expect("bound role rendered");
        let ns = role["metadata"]["namespace"].as_str().unwrap_or("");
        for r in role["rules"].as_array().expect("rules") {
            out.push((ns.to_string(), r.clone()));
        }
    }
    out
}

fn may_watch(grants: &[(String, Value)], kind: strait_api::Kind, namespace: &str) -> bool {
    let ar = crate::objects::api_resource(kind);
    grants.iter().any(|(ns, r)| {
        (ns.is_empty() || ns == namespace)
            && r["apiGroups"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g == ar.group.as_str()))
            && r["resources"]
                .as_array()
                .is_some_and(|res| res.iter().any(|p| p == ar.plural.as_str()))
            && ["list", "watch"].iter().all(|v| {
                r["verbs"]
                    .as_array()
                    .is_some_and(|vs| vs.iter().any(|x| x == v))
            })
    })
}

/// A watch the control plane's RBAC forbids never syncs, and a control plane that never syncs
/// never becomes ready: every kind it watches must be granted, in its own cluster to its own
/// account, in a remote to the reader account its remote secret carries.
#[test]
fn rbac_grants_every_watch_the_control_plane_opens() {
    let objs = render(&primary()).expect("renders");
    let own = granted_to(&objs, super::server::SERVICE_ACCOUNT);
    for &kind in crate::objects::CONTROL_PLANE {
        assert!(
            may_watch(&own, kind, NAMESPACE),
            "the control plane watches {kind} but may not"
        );
    }
    for remote in [render(&remote("203.0.113.7")).expect("renders"), objs] {
        let reader = granted_to(&remote, rbac::READER);
        for &kind in crate::objects::REMOTE {
            assert!(
                may_watch(&reader, kind, NAMESPACE),
                "another cluster's control plane watches {kind} through the reader account but may not"
            );
        }
    }
}

/// The names RBAC rules are written with are the API server's plurals, for every kind the
/// control plane watches: an empty or wrong one grants nothing.
#[test]
fn rule_plurals_are_the_api_servers() {
    for &kind in crate::objects::CONTROL_PLANE {
        if matches!(kind, strait_api::Kind::Secret | strait_api::Kind::ConfigMap) {
            continue;
        }
        assert_eq!(
            rbac::plural_of(kind),
            crate::objects::api_resource(kind).plural,
            "{kind}"
        );
    }
    for r in rbac::config_rules() {
        assert!(r.resources.iter().all(|p| !p.is_empty()), "{r:?}");
    }
}
