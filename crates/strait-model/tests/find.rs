//! `Cluster::find` answers from an index by kind, namespace and name; it must answer as a
//! scan of the objects in input order does, cluster-scoped kinds included.

mod support;

use strait_api::Kind;
use support::mesh_with_diagnostics;

const OBJECTS: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web, namespace: a}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: b}
spec: {ports: [{name: http, port: 81}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: a}
spec: {ports: [{name: http, port: 82}]}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: mine, namespace: oops}
spec: {controllerName: example.com/x}
"#;

#[test]
fn find_answers_as_a_scan_in_input_order() {
    let (_dir, mesh, _) = mesh_with_diagnostics(&[("objects.yaml", OBJECTS)]);
    let c = &mesh.clusters[0];
    let scan = |kind: Kind, ns: &str, name: &str| {
        c.of_kind(kind)
            .find(|(_, o)| o.name() == name && (ns.is_empty() || o.namespace() == ns))
            .map(|(id, _)| id)
    };
    for (kind, ns, name) in [
        (Kind::Service, "a", "web"),
        (Kind::Service, "b", "web"),
        (Kind::Service, "", "web"),
        (Kind::Service, "default", "api"),
        (Kind::Service, "c", "web"),
        (Kind::Service, "a", "none"),
        (Kind::Namespace, "", "a"),
        (Kind::Namespace, "", "b"),
        (Kind::GatewayClass, "", "mine"),
        (Kind::Deployment, "a", "web"),
    ] {
        assert_eq!(
            c.find(kind, ns, name).map(|(id, _)| id),
            scan(kind, ns, name),
            "{kind} {ns}/{name}"
        );
    }
    // Of two definitions the later wins; the earlier is dropped (and reported) while building.
    let (_, o) = c.find(Kind::Service, "a", "web").expect("found");
    let port = o
        .service()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.ports.as_ref())
        .map(|p| p[0].port);
    assert_eq!(port, Some(82));
}
