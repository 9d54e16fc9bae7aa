//! Per-proxy scoping (Sidecar `egress.hosts`, `exportTo`), the per-generation index, and
//! which proxies a change affects.

mod support;

use std::collections::BTreeSet;

use strait_model::compile::{Changes, Footprint, ProxyRef, Runtime, compile};
use strait_model::{Mesh, ServiceId};

/// Namespaces a, b and c, each with one service and two pods; the root namespace's default
/// Sidecar admits a proxy's own namespace and istio-system; c's own Sidecar reaches b; the
/// pod labelled `wide: "yes"` in a has a Sidecar of its own reaching everything.
fn files(b_pod_ip: &str, vs_weight: u32) -> Vec<(&'static str, String)> {
    let mut f = String::new();
    for ns in ["a", "b", "c", "istio-system"] {
        f.push_str(&format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{istio-injection: enabled}}}}\n"
        ));
    }
    for (ns, app) in [
        ("a", "web"),
        ("b", "api"),
        ("c", "db"),
        ("istio-system", "tool"),
    ] {
        f.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {app}, namespace: {ns}}}\nspec:\n  selector: {{app: {app}}}\n  ports: [{{name: http, port: 80}}]\n"
        ));
    }
    let mut pods = String::new();
    for (ns, app, n, ip, extra) in [
        ("a", "web", 1, "10.0.0.1", ""),
        ("a", "web", 2, "10.0.0.2", ", wide: \"yes\""),
        ("b", "api", 1, b_pod_ip, ""),
        ("b", "api", 2, "10.0.1.2", ""),
        ("c", "db", 1, "10.0.2.1", ""),
    ] {
        pods.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {app}-{n}\n  namespace: {ns}\n  labels: {{app: {app}{extra}}}\nspec:\n  serviceAccountName: {app}\n  containers:\n  - {{name: app, image: app}}\n  - {{name: istio-proxy, image: docker.io/istio/proxyv2:1.24.0}}\nstatus: {{phase: Running, podIP: {ip}}}\n"
        ));
    }
    let istio = format!(
        "apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: istio-system}}
spec:
  egress:
  - hosts: [\"./*\", \"istio-system/*\"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: reach-b, namespace: c}}
spec:
  egress:
  - hosts: [\"b/*\"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: wide, namespace: a}}
spec:
  workloadSelector: {{labels: {{wide: \"yes\"}}}}
  egress:
  - hosts: [\"*/*\"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: api, namespace: b}}
spec:
  hosts: [api]
  http:
  - route:
    - destination: {{host: api}}
      weight: {vs_weight}
"
    );
    vec![
        ("services.yaml", f),
        ("pods.yaml", pods),
        ("istio.yaml", istio),
    ]
}

fn build(b_pod_ip: &str, vs_weight: u32) -> (tempfile::TempDir, Mesh) {
    let owned = files(b_pod_ip, vs_weight);
    let refs: Vec<(&str, &str)> = owned.iter().map(|(p, t)| (*p, t.as_str())).collect();
    support::mesh(&refs)
}

fn proxy(ns: &str, pod: &str) -> ProxyRef {
    ProxyRef {
        cluster: "Kubernetes".into(),
        namespace: ns.into(),
        pod: pod.into(),
    }
}

fn proxies() -> Vec<ProxyRef> {
    vec![
        proxy("a", "web-1"),
        proxy("a", "web-2"),
        proxy("b", "api-1"),
        proxy("b", "api-2"),
        proxy("c", "db-1"),
    ]
}

fn hosts(mesh: &Mesh, p: &ProxyRef) -> BTreeSet<String> {
    let cfg = compile(mesh, &Runtime::default(), p).expect("compiles");
    cfg.services.values().map(|s| s.host.clone()).collect()
}

fn set(hosts: &[&str]) -> BTreeSet<String> {
    hosts
        .iter()
        .map(|h| format!("{h}.svc.cluster.local"))
        .collect()
}

#[test]
fn a_proxy_holds_only_the_hosts_its_sidecar_admits() {
    let (_dir, mesh) = build("10.0.1.1", 100);
    // The root namespace's default: its own namespace and istio-system.
    assert_eq!(
        hosts(&mesh, &proxy("a", "web-1")),
        set(&["web.a", "tool.istio-system"])
    );
    assert_eq!(
        hosts(&mesh, &proxy("b", "api-1")),
        set(&["api.b", "tool.istio-system"])
    );
    // A namespace's own Sidecar replaces the default.
    assert_eq!(hosts(&mesh, &proxy("c", "db-1")), set(&["api.b"]));
    // A Sidecar selecting the workload wins over the namespace's and the root's.
    assert_eq!(
        hosts(&mesh, &proxy("a", "web-2")),
        set(&["web.a", "api.b", "db.c", "tool.istio-system"])
    );
    // Clusters follow the services (and their routes): nothing of c's for a's proxy.
    let cfg = compile(&mesh, &Runtime::default(), &proxy("a", "web-1")).expect("compiles");
    assert!(
        cfg.clusters
            .values()
            .all(|c| !c.host.ends_with(".c.svc.cluster.local")
                && !c.host.ends_with(".b.svc.cluster.local"))
    );
}

#[test]
fn the_index_agrees_with_a_scan() {
    let (_dir, mesh) = build("10.0.1.1", 100);
    for s in mesh.registry.all() {
        let scanned: Vec<_> = mesh
            .workloads
            .iter()
            .filter(|w| w.cluster == s.cluster && w.namespace == s.namespace)
            .filter(|w| {
                s.selector
                    .as_ref()
                    .is_some_and(|sel| strait_model::selector::map_selects(sel, &w.labels))
            })
            .map(|w| w.id)
            .collect();
        assert_eq!(
            mesh.index().endpoints(s.id),
            scanned.as_slice(),
            "{}",
            s.hostname
        );
        for w in &scanned {
            assert!(mesh.index().services_of(*w).contains(&s.id));
        }
    }
    let in_b: Vec<ServiceId> = mesh.index().services_in("b").to_vec();
    assert_eq!(in_b.len(), 1);
    assert_eq!(
        mesh.registry.get(in_b[0]).hostname,
        "api.b.svc.cluster.local"
    );
}

/// The proxies `changes` affects, judged from the footprints of their configurations in `old`.
fn affected(old: &Mesh, changes: &Changes) -> Vec<String> {
    proxies()
        .iter()
        .filter(|p| {
            let cfg = compile(old, &Runtime::default(), p).expect("compiles");
            Footprint::of(old, p, &cfg).affected_by(changes)
        })
        .map(|p| format!("{}/{}", p.namespace, p.pod))
        .collect()
}

/// Whether the proxies not in `affected` get the same configuration from both meshes.
fn others_unchanged(old: &Mesh, new: &Mesh, affected: &[String]) {
    for p in proxies() {
        if affected.contains(&format!("{}/{}", p.namespace, p.pod)) {
            continue;
        }
        let a = compile(old, &Runtime::default(), &p).expect("compiles");
        let b = compile(new, &Runtime::default(), &p).expect("compiles");
        assert_eq!(
            a.resources(),
            b.resources(),
            "{p} changed but was not affected"
        );
    }
}

#[test]
fn an_endpoint_change_affects_exactly_the_proxies_that_see_its_service() {
    let (_d1, old) = build("10.0.1.1", 100);
    let (_d2, new) = build("10.0.1.9", 100);
    let changes = Changes::between(&old, &new, None);
    assert!(!changes.everything, "{changes:?}");
    let hit = affected(&old, &changes);
    // b's own proxies see api.b; c reaches b; web-2 reaches everything; web-1 does not.
    assert_eq!(hit, ["a/web-2", "b/api-1", "b/api-2", "c/db-1"]);
    others_unchanged(&old, &new, &hit);
    // Each affected proxy's configuration really changed (the endpoint address).
    for p in proxies().iter().filter(|p| p.pod != "web-1") {
        let a = compile(&old, &Runtime::default(), p).expect("compiles");
        let b = compile(&new, &Runtime::default(), p).expect("compiles");
        assert_ne!(a.resources(), b.resources(), "{p}");
    }
}

#[test]
fn a_virtual_service_edit_recompiles_only_what_it_affects() {
    let (_d1, old) = build("10.0.1.1", 100);
    let (_d2, new) = build("10.0.1.1", 90);
    let changes = Changes::between(&old, &new, None);
    assert_eq!(changes.virtual_services.len(), 1, "{changes:?}");
    assert!(changes.services.is_empty() && !changes.everything);
    // The VirtualService lives in b: proxies whose scope admits b and that hold api.b.
    let hit = affected(&old, &changes);
    assert_eq!(hit, ["a/web-2", "b/api-1", "b/api-2", "c/db-1"]);
    others_unchanged(&old, &new, &hit);
}

#[test]
fn nothing_changed_affects_no_one_and_files_narrow_the_comparison() {
    let (_d1, old) = build("10.0.1.1", 100);
    let (_d2, new) = build("10.0.1.1", 100);
    let changes = Changes::between(&old, &new, None);
    assert!(!changes.any && affected(&old, &changes).is_empty());
    // A changed file neither mesh read (a status file, say) changes everything.
    let unknown: BTreeSet<_> = [std::path::PathBuf::from("/nowhere/status.json")].into();
    assert!(Changes::between(&old, &new, Some(&unknown)).everything);
}
