//! Which AuthorizationPolicies and RequestAuthentications a proxy gets: mesh-wide ones from
//! the root namespace, namespace-wide ones, selectors, gateway `targetRefs`, CUSTOM, and what
//! cannot be checked carried along so the proxy fails closed.

mod support;

use strait_model::Mesh;
use strait_model::compile::{Authz, ConditionKey, ProxyRef, Runtime, StringMatch, compile};
use support::mesh;

const MESH: &str = "meshID: mesh1\nclusters:\n- {name: cluster1}\n";

const WORKLOADS: &str = "apiVersion: v1
kind: Namespace
metadata: {name: sample, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: v1
kind: Pod
metadata: {name: helloworld-1, namespace: sample, labels: {app: helloworld}}
spec:
  serviceAccountName: helloworld
  containers: [{name: app, image: helloworld}, {name: istio-proxy, image: proxyv2}]
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: sleep-1, namespace: sample, labels: {app: sleep}}
spec:
  serviceAccountName: sleep
  containers: [{name: app, image: curl}, {name: istio-proxy, image: proxyv2}]
status: {phase: Running, podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-gateway-1
  namespace: istio-system
  labels:
    istio: ingressgateway
    gateway.networking.k8s.io/gateway-name: web
    gateway.networking.k8s.io/gateway-class-name: istio
  annotations: {inject.istio.io/templates: gateway}
spec:
  containers: [{name: istio-proxy, image: auto}]
status: {phase: Running, podIP: 10.0.0.3}
";

const POLICIES: &str = r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-deny-admin, namespace: istio-system}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: hello-from-sleep, namespace: sample}
spec:
  selector: {matchLabels: {app: helloworld}}
  rules:
  - from: [{source: {principals: ["spiffe://cluster.local/ns/sample/sa/sleep"]}}]
    when:
    - {key: "request.auth.claims[groups]", values: [admins]}
    - {key: experimental.unknown, values: [x]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-all, namespace: sample}
spec:
  action: AUDIT
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: elsewhere, namespace: other}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-only, namespace: istio-system}
spec:
  targetRefs:
  - {group: gateway.networking.k8s.io, kind: Gateway, name: web}
  rules:
  - from: [{source: {ipBlocks: [203.0.113.0/24]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: waypoint, namespace: sample}
spec:
  targetRefs:
  - {kind: Service, group: "", name: helloworld}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: sample}
spec:
  selector: {matchLabels: {app: helloworld}}
  action: CUSTOM
  provider: {name: opa}
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: sample}
spec:
  selector: {matchLabels: {app: helloworld}}
  jwtRules:
  - issuer: https://issuer.example
    jwksUri: https://issuer.example/jwks.json
    fromCookies: [session]
    presence: REQUIRED
"#;

fn authz_of(mesh: &Mesh, rt: &Runtime, namespace: &str, pod: &str) -> Authz {
    let proxy = ProxyRef {
        cluster: "cluster1".into(),
        namespace: namespace.into(),
        pod: pod.into(),
    };
    compile(mesh, rt, &proxy).expect("compile").authz
}

fn names(policies: &[strait_model::compile::AuthzPolicy]) -> Vec<&str> {
    policies.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn each_proxy_gets_the_policies_that_select_it() {
    let (_dir, mesh) = mesh(&[
        ("mesh.yaml", MESH),
        ("cluster1/workloads.yaml", WORKLOADS),
        ("cluster1/policies.yaml", POLICIES),
    ]);
    let mut rt = Runtime::default();
    rt.jwks.insert(
        "https://issuer.example/jwks.json".into(),
        r#"{"keys": []}"#.into(),
    );

    let hello = authz_of(&mesh, &rt, "sample", "helloworld-1");
    assert_eq!(names(&hello.deny), ["istio-system/mesh-deny-admin"]);
    assert_eq!(names(&hello.allow), ["sample/hello-from-sleep"]);
    assert_eq!(names(&hello.audit), ["sample/audit-all"]);
    assert_eq!(hello.custom, ["sample/ext"]);
    // The principal without `spiffe://`; a known claim condition, and the unknown key carried
    // as unsupported so that the ALLOW rule never matches.
    let rule = &hello.allow[0].rules[0];
    assert_eq!(
        rule.from[0].principals,
        [StringMatch::Exact(
            "cluster.local/ns/sample/sa/sleep".into()
        )]
    );
    assert_eq!(
        rule.when[0].key,
        ConditionKey::RequestAuthClaim(vec!["groups".into()])
    );
    assert_eq!(rule.unsupported.len(), 1, "{rule:?}");
    // The JWKS the control plane fetched, the cookie, and the required presence.
    let jwt = &hello.jwt[0];
    assert_eq!(jwt.jwks, r#"{"keys": []}"#);
    assert_eq!(jwt.from_cookies, ["session"]);
    assert!(jwt.required);
    assert_eq!(
        StringMatch::parse("/admin*"),
        StringMatch::Prefix("/admin".into())
    );

    // sleep: the mesh-wide and namespace-wide policies only; the waypoint-targeted one
    // applies to no sidecar.
    let sleep = authz_of(&mesh, &rt, "sample", "sleep-1");
    assert_eq!(names(&sleep.deny), ["istio-system/mesh-deny-admin"]);
    assert!(sleep.allow.is_empty() && sleep.custom.is_empty() && sleep.jwt.is_empty());
    assert_eq!(names(&sleep.audit), ["sample/audit-all"]);

    // The gateway: mesh-wide, plus the policy whose targetRef names its Gateway.
    let gw = authz_of(&mesh, &rt, "istio-system", "web-gateway-1");
    assert_eq!(names(&gw.deny), ["istio-system/mesh-deny-admin"]);
    assert_eq!(names(&gw.allow), ["istio-system/web-only"]);
    assert_eq!(gw.allow[0].rules[0].from[0].ip_blocks, ["203.0.113.0/24"]);

    // A JWKS not fetched (yet): empty, so the proxies refuse that issuer's tokens.
    let hello = authz_of(&mesh, &Runtime::default(), "sample", "helloworld-1");
    assert_eq!(hello.jwt[0].jwks, "");
}

#[test]
fn what_cannot_be_checked_is_reported_with_its_place() {
    let (_dir, mesh) = mesh(&[
        ("mesh.yaml", MESH),
        ("cluster1/workloads.yaml", WORKLOADS),
        ("cluster1/policies.yaml", POLICIES),
    ]);
    let report = strait_model::unsupported::report(&mesh);
    let paths: Vec<(String, String)> = report
        .iter()
        .map(|n| (mesh.object(n.object).name().to_string(), n.path.clone()))
        .collect();
    for (name, path) in [
        ("hello-from-sleep", "spec.rules[0].when[1].key"),
        ("ext", "spec.action"),
        ("waypoint", "spec.targetRefs[0]"),
    ] {
        assert!(
            paths.contains(&(name.to_string(), path.to_string())),
            "{name} {path} not reported: {paths:?}"
        );
    }
    // What is enforced is not reported.
    assert!(
        !paths.iter().any(|(n, _)| n == "web-only" || n == "jwt"),
        "{paths:?}"
    );
}

#[test]
fn principals_follow_the_trust_domain_and_its_aliases() {
    let mesh_config = "apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    trustDomain: corp.example
    trustDomainAliases: [old.example]
";
    let policy = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: callers, namespace: sample}
spec:
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/sample/sa/sleep
        - old.example/ns/sample/sa/helloworld
        - partner.example/ns/x/sa/y
        - '*/ns/sample/sa/any'
";
    let (_dir, mesh) = mesh(&[
        ("mesh.yaml", MESH),
        ("cluster1/workloads.yaml", WORKLOADS),
        ("cluster1/mesh.yaml", mesh_config),
        ("cluster1/policies.yaml", policy),
    ]);
    let authz = authz_of(&mesh, &Runtime::default(), "sample", "sleep-1");
    let exact = |s: &str| StringMatch::Exact(s.into());
    // `cluster.local` and an alias stand for every trust domain of the mesh, as in istiod;
    // a foreign trust domain and a wildcard one are kept as written.
    assert_eq!(
        authz.allow[0].rules[0].from[0].principals,
        [
            exact("corp.example/ns/sample/sa/sleep"),
            exact("old.example/ns/sample/sa/sleep"),
            exact("corp.example/ns/sample/sa/helloworld"),
            exact("old.example/ns/sample/sa/helloworld"),
            exact("partner.example/ns/x/sa/y"),
            StringMatch::Suffix("/ns/sample/sa/any".into()),
        ]
    );
}
