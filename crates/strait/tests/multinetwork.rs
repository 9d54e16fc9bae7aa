//! Meshes of several clusters on several networks, run for real: each network in its own
//! network namespace (see `support::net::isolation_args`), joined only through the east-west
//! gateways' public addresses. What crosses, crosses through a gateway; what should not
//! cross, cannot.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use support::Mesh;
use support::net::{dial, eventually, isolation_args, tls_answered};

/// Removes the YAML document of `file` that contains `needle`.
fn remove_doc(dir: &Path, file: &str, needle: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    let kept: Vec<&str> = text
        .split("\n---\n")
        .filter(|d| !d.contains(needle))
        .collect();
    assert!(
        kept.len() < text.split("\n---\n").count(),
        "{needle} not in {file}"
    );
    std::fs::write(&path, kept.join("\n---\n")).expect("write");
}

fn replace_in(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{from:?} not in {file}");
    std::fs::write(&path, text.replace(from, to)).expect("write");
}

fn up(net: u8, edit: impl FnOnce(&Path)) -> Mesh {
    Mesh::up_with("multicluster", net, edit, &isolation_args())
}

fn analyze(dir: &Path) -> String {
    let out = std::process::Command::new(support::STRAIT)
        .arg("analyze")
        .arg(dir)
        .output()
        .expect("analyze");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn multi_primary_across_networks_goes_through_the_gateways() {
    // A VirtualService and a DENY policy in cluster1, for `check trace` to name; neither
    // changes where /hello goes.
    let mesh = up(61, |dir| {
        std::fs::write(dir.join("cluster1/helloworld-policy.yaml"), HELLO_POLICY).expect("write");
    });
    // Both versions answer from both clusters: each cluster's own, and the other network's
    // through its east-west gateway.
    for from in ["cluster1/sample/sleep", "cluster2/sample/sleep"] {
        let seen = mesh.hello_versions(from, 24);
        assert!(
            seen.get("v1").copied().unwrap_or(0) > 0 && seen.get("v2").copied().unwrap_or(0) > 0,
            "{from}: {seen:?}\n{}",
            mesh.log()
        );
        assert_eq!(seen.get("error"), None, "{from}: {seen:?}");
    }
    // The sidecars write Istio's default access log format (the example sets accessLogFile).
    let log = mesh.log();
    assert!(
        log.lines().any(
            |l| l.contains("\"GET /hello HTTP/1.1\" 200 - via_upstream - \"-\" 0 ")
                && l.contains(" outbound|5000||helloworld.sample.svc.cluster.local ")
        ),
        "no access log line in Istio's format:\n{log}"
    );
    // Split horizon: cluster1's sleep holds its local pod and cluster2's gateway on 15443.
    let gw2 = mesh.load_balancer("cluster2/istio-system/istio-eastwestgateway");
    let eps = mesh.endpoints("cluster1/sample/sleep", "helloworld");
    let v1 = mesh.pod("cluster1/sample/helloworld-v1");
    let v2 = mesh.pod("cluster2/sample/helloworld-v2");
    let addrs: Vec<&str> = eps.iter().filter_map(|e| e["endpoint"].as_str()).collect();
    assert_eq!(
        addrs,
        vec![format!("{}:5000", v1.ip), format!("{gw2}:15443")],
        "{eps:#?}"
    );
    assert_eq!(eps[1]["via_gateway"], true);
    assert_eq!(eps[1]["workload"]["network"], "network2");

    // A pod of network1 cannot reach a pod of network2 directly.
    let from1 = mesh.in_network("network1");
    let direct = SocketAddr::new(v2.ip, 15021);
    let source = matches!(from1, strait_net::netns::Vantage::Here)
        .then(|| mesh.pod("cluster1/sample/sleep").ip);
    assert!(
        dial(&from1, source, direct).is_err(),
        "a network1 pod reached {direct} directly"
    );
    // Only the gateway's public address is reachable from other networks, and it is not an
    // open relay: an SNI naming no service it exposes gets no handshake.
    let gw = SocketAddr::new(gw2, 15443);
    assert!(tls_answered(
        &mesh.outside(),
        gw,
        "outbound_.5000_._.helloworld.sample.svc.cluster.local",
        b"istio-h2"
    ));
    assert!(!tls_answered(
        &mesh.outside(),
        gw,
        "outbound_.5000_._.nothing.sample.svc.cluster.local",
        b"istio-h2"
    ));
    assert!(!tls_answered(&mesh.outside(), gw, "example.com", b"h2"));

    // proxy-status covers the gateways, each configured by its cluster's control plane.
    let status = mesh.strait(&["proxy-status", "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    let gateways: Vec<&serde_json::Value> = rows
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| {
            r["proxy"]
                .as_str()
                .is_some_and(|p| p.starts_with("istio-eastwestgateway"))
        })
        .collect();
    assert_eq!(gateways.len(), 2, "{rows:#}");
    assert!(gateways.iter().all(|g| g["state"] == "SYNCED"), "{rows:#}");

    // `strait check`: both east-west gateways healthy, reachable from the other network and
    // serving the cross-network Gateway; every proxy in sync, no raw pod address across.
    let (ok, report) = check(&mesh, "gateways");
    assert!(ok, "{report:#}");
    let gws = report["gateways"].as_array().expect("gateways");
    assert_eq!(gws.len(), 2, "{report:#}");
    for g in gws {
        assert_eq!(g["ready"], true, "{report:#}");
        assert_eq!(g["port"], 15443, "{report:#}");
        let other = if g["network"] == "network1" {
            "network2"
        } else {
            "network1"
        };
        assert_eq!(g["reachable_from"][other], true, "{report:#}");
        assert!(
            g["servers"][0]
                .as_str()
                .is_some_and(|s| s.starts_with("istio-system/cross-network-gateway")),
            "{report:#}"
        );
    }
    let (ok, report) = check(&mesh, "sync");
    assert!(ok, "{report:#}");
    assert_eq!(
        report["proxies"].as_array().map(Vec::len),
        Some(8),
        "{report:#}"
    );
    // Requests from cluster1 split between the two clusters as the weights say.
    let (ok, report) = check_lb(&mesh, "cluster1/sample/sleep");
    assert!(ok, "{report:#}");
    assert_eq!(report["counted"], 40, "{report:#}");
    let clusters: Vec<&str> = report["observed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["cluster"].as_str())
        .collect();
    assert_eq!(clusters, ["cluster1", "cluster2"], "{report:#}");

    // `check trace`: the rule with its file and line, both endpoints (one through cluster2's
    // gateway), the pods at the end with their identities and policy decisions, and the
    // request really sent.
    let url = "http://helloworld.sample:5000/hello";
    let (ok, report) = run_check(
        &mesh,
        &["trace", "--from", "cluster1/sample/sleep", url, "--send"],
    );
    assert!(ok, "{report:#}");
    let hops = report["hops"].as_array().expect("hops");
    let kinds: Vec<&str> = hops.iter().filter_map(|h| h["hop"].as_str()).collect();
    assert_eq!(
        kinds,
        ["client", "gateway", "destination", "destination"],
        "{report:#}"
    );
    let route = hops[0]["route"].as_str().unwrap_or("");
    assert!(
        route.contains("rule \"hello\" of VirtualService sample/helloworld")
            && route.contains("cluster1/helloworld-policy.yaml:7"),
        "{route}"
    );
    assert_eq!(hops[1]["gateways"][0], "istio-system/cross-network-gateway");
    assert_eq!(hops[1]["network"], "network2");
    assert!(
        hops[2..]
            .iter()
            .all(|h| h["inbound"]["authorization"]["decision"] == "allow"),
        "{report:#}"
    );
    assert_eq!(report["sent"]["status"], 200, "{report:#}");
    // /admin is denied by cluster1's policy, and the trace says which policy.
    let (ok, report) = run_check(
        &mesh,
        &[
            "trace",
            "--from",
            "cluster1/sample/sleep",
            "http://helloworld.sample:5000/admin",
        ],
    );
    assert!(!ok, "{report:#}");
    assert!(
        report["problems"]
            .to_string()
            .contains("AuthorizationPolicy sample/no-admin denies this caller"),
        "{report:#}"
    );
}

/// Runs `strait check lb helloworld.sample --from <from> -n 40 --path /hello -o json`.
fn check_lb(mesh: &Mesh, from: &str) -> (bool, serde_json::Value) {
    run_check(
        mesh,
        &[
            "lb",
            "helloworld.sample",
            "--from",
            from,
            "-n",
            "40",
            "--path",
            "/hello",
        ],
    )
}

const HELLO_POLICY: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: helloworld, namespace: sample}
spec:
  hosts: [helloworld.sample.svc.cluster.local]
  http:
  - name: hello
    match:
    - uri: {prefix: /hello}
    route:
    - destination: {host: helloworld.sample.svc.cluster.local}
  - route:
    - destination: {host: helloworld.sample.svc.cluster.local}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: sample}
spec:
  selector:
    matchLabels: {app: helloworld}
  action: DENY
  rules:
  - to:
    - operation: {paths: [/admin]}
";

/// Runs `strait check <what> -o json`: whether it passed (exit 0), and its report.
fn check(mesh: &Mesh, what: &str) -> (bool, serde_json::Value) {
    run_check(mesh, &[what])
}

fn run_check(mesh: &Mesh, args: &[&str]) -> (bool, serde_json::Value) {
    let what = args.join(" ");
    let out = std::process::Command::new(support::STRAIT)
        .arg("check")
        .args(args)
        .args(["-o", "json", "--state"])
        .arg(&mesh.state_dir)
        .output()
        .expect("run strait check");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check {what}: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        out.status.code(),
        Some(if report["ok"] == true { 0 } else { 1 }),
        "{report:#}"
    );
    (out.status.success(), report)
}

#[test]
fn primary_remote_gets_its_config_through_the_primarys_gateway() {
    let mesh = Mesh::up("seeds/eks-aks", 62, &[], &isolation_args());
    // The remote's proxies are configured by the primary's control plane, which they reach
    // through the primary's east-west gateway (15012, TLS passed through).
    eventually(Duration::from_secs(30), "remote proxies synced", || {
        let out = mesh.strait(&["proxy-status", "-o", "json"]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let remote: Vec<&serde_json::Value> = rows
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["cluster"] == "cluster-aks")
            .collect();
        remote.len() == 2
            && remote
                .iter()
                .all(|r| r["state"] == "SYNCED" && r["control_plane"] == "cluster-eks")
    });
    // profile runs in both clusters: a call from the primary reaches both networks.
    let mut clusters = std::collections::BTreeSet::new();
    for _ in 0..24 {
        let (code, body) = mesh.curl(
            "cluster-eks/multicluster/sleep",
            "http://profile.multicluster/",
        );
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("echo json");
        clusters.insert(v["cluster"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(
        clusters.into_iter().collect::<Vec<_>>(),
        vec!["cluster-aks".to_string(), "cluster-eks".to_string()]
    );
}

#[test]
fn a_remote_secret_added_or_removed_changes_what_a_primary_sees() {
    let mesh = up(63, |_| {});
    let gateway_rows = |m: &Mesh| {
        m.endpoints("cluster1/sample/sleep", "helloworld")
            .iter()
            .filter(|e| e["via_gateway"] == true)
            .count()
    };
    assert_eq!(gateway_rows(&mesh), 1);
    // Without the remote secret for cluster2, cluster1's control plane no longer reads it.
    let file = mesh.dir.join("cluster1/istio-system.yaml");
    let original = std::fs::read_to_string(&file).expect("read");
    let without: String = original
        .split("\n---\n")
        .filter(|d| !d.contains("istio-remote-secret-cluster2"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    mesh.write("cluster1/istio-system.yaml", &without);
    eventually(
        Duration::from_secs(15),
        "cluster2 gone from cluster1's view",
        || gateway_rows(&mesh) == 0,
    );
    let seen = mesh.hello_versions("cluster1/sample/sleep", 8);
    assert_eq!(seen.get("v2"), None, "{seen:?}");
    mesh.write("cluster1/istio-system.yaml", &original);
    eventually(
        Duration::from_secs(15),
        "cluster2 back in cluster1's view",
        || gateway_rows(&mesh) == 1,
    );
}

#[test]
fn deployments_added_scaled_and_deleted_start_and_stop_pods() {
    let mesh = up(64, |_| {});
    let file = "cluster1/sample.yaml";
    let sample = std::fs::read_to_string(mesh.dir.join(file)).expect("read");
    let scaled = sample.replacen("replicas: 1", "replicas: 2", 1);
    assert_ne!(scaled, sample);
    mesh.write(file, &scaled);
    eventually(
        Duration::from_secs(20),
        "a second helloworld-v1 pod",
        || {
            mesh.state()
                .pods
                .iter()
                .filter(|p| p.workload == "helloworld-v1")
                .count()
                == 2
        },
    );
    eventually(
        Duration::from_secs(20),
        "cluster2 sends to it through the gateway",
        || {
            mesh.endpoints("cluster1/sample/sleep", "helloworld")
                .iter()
                .filter(|e| e["via_gateway"] == false)
                .count()
                == 2
        },
    );
    // Deleting cluster2's helloworld stops its pod, and cluster1 stops sending there.
    remove_doc(&mesh.dir, "cluster2/sample.yaml", "name: helloworld-v2");
    eventually(Duration::from_secs(20), "helloworld-v2 stopped", || {
        !mesh
            .state()
            .pods
            .iter()
            .any(|p| p.workload == "helloworld-v2")
    });
    eventually(Duration::from_secs(20), "no gateway endpoint left", || {
        mesh.endpoints("cluster1/sample/sleep", "helloworld")
            .iter()
            .all(|e| e["via_gateway"] == false)
    });
    let seen = mesh.hello_versions("cluster1/sample/sleep", 6);
    assert_eq!(seen.get("error"), None, "{seen:?}");
}

/// Seed mistake: cluster2 never applied the cross-network Gateway. The analyzer flags it; run,
/// cluster2's gateway refuses cross-network traffic, so cluster1 sees v1 only.
#[test]
fn no_cross_network_gateway_is_flagged_and_cluster2_is_unreachable() {
    let mesh = up(65, |dir| {
        remove_doc(
            dir,
            "cluster2/istio-system.yaml",
            "name: cross-network-gateway",
        );
        let report = analyze(dir);
        assert!(report.contains("STR0102"), "{report}");
    });
    let seen = mesh.hello_versions("cluster1/sample/sleep", 12);
    assert_eq!(seen.get("v2"), None, "{seen:?}");
    assert!(seen.get("v1").copied().unwrap_or(0) > 0, "{seen:?}");
    // `strait check gateways` names the gateway that serves nothing across networks.
    let (ok, report) = check(&mesh, "gateways");
    assert!(!ok, "{report:#}");
    let problems = report["problems"].to_string();
    assert!(
        problems.contains("(network2)") && problems.contains("serve no Gateway"),
        "{report:#}"
    );
    // And `check lb` sees cluster1's requests miss the share the configuration gives cluster2.
    let (ok, report) = check_lb(&mesh, "cluster1/sample/sleep");
    assert!(!ok, "{report:#}");
    // cluster2's own traffic is unaffected; it still reaches cluster1's v1.
    let seen = mesh.hello_versions("cluster2/sample/sleep", 16);
    assert!(
        seen.contains_key("v1") && seen.contains_key("v2"),
        "{seen:?}"
    );
}

/// Seed mistake: cluster2's plug-in CA comes from another root. The analyzer flags it; run,
/// cluster1's proxy refuses cluster2's certificates, so cross-network requests fail over to v1.
#[test]
fn a_different_root_is_flagged_and_cross_cluster_mtls_fails() {
    let mesh = up(66, |dir| {
        let certs = dir.join("../other-root");
        let out = std::process::Command::new(support::STRAIT)
            .args(["ca", "init", "--clusters", "cluster2", "--out"])
            .arg(&certs)
            .output()
            .expect("ca init");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cacerts =
            std::fs::read_to_string(certs.join("cluster2/cacerts.yaml")).expect("cacerts");
        remove_doc(dir, "cluster2/istio-system.yaml", "name: cacerts");
        std::fs::write(dir.join("cluster2/cacerts.yaml"), cacerts).expect("write");
        let report = analyze(dir);
        assert!(report.contains("STR0103"), "{report}");
    });
    let seen = mesh.hello_versions("cluster1/sample/sleep", 12);
    assert_eq!(seen.get("v2"), None, "{seen:?}");
    assert!(seen.get("v1").copied().unwrap_or(0) > 0, "{seen:?}");
}

/// Seed mistake: cluster2 is on network2 (mesh.yaml says where it runs), but neither its Istio
/// namespace label nor its install tells Istio so. The analyzer flags it; run, cluster1 gets
/// cluster2's pod address as if it were on its own network, and a dial to it reaches nothing.
#[test]
fn a_missing_network_label_is_flagged_and_sends_raw_pod_addresses() {
    let mesh = up(67, |dir| {
        replace_in(
            dir,
            "cluster2/istio-system.yaml",
            "  name: istio-system\n  labels:\n    topology.istio.io/network: network2\n",
            "  name: istio-system\n",
        );
        replace_in(
            dir,
            "cluster2/istio-system.yaml",
            "        clusterName: cluster2\n      network: network2\n",
            "        clusterName: cluster2\n",
        );
        let report = analyze(dir);
        assert!(report.contains("STR0110"), "{report}");
    });
    let v2 = mesh.pod("cluster2/sample/helloworld-v2");
    let eps = mesh.endpoints("cluster1/sample/sleep", "helloworld");
    assert!(
        eps.iter()
            .any(|e| e["endpoint"] == format!("{}:5000", v2.ip) && e["via_gateway"] == false),
        "cluster1 should hold cluster2's raw pod address: {eps:#?}"
    );
    let seen = mesh.hello_versions("cluster1/sample/sleep", 12);
    assert_eq!(seen.get("v2"), None, "{seen:?}");
    // `strait check sync` names the proxy, the service and the cause.
    let (ok, report) = check(&mesh, "sync");
    assert!(!ok, "{report:#}");
    let raw = report["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("sleep-"))
                && p["service"] == "helloworld.sample.svc.cluster.local"
        })
        .unwrap_or_else(|| panic!("no raw-address problem for sleep: {report:#}"));
    let cause = raw["cause"].as_str().unwrap_or("");
    assert!(
        cause.contains(&v2.ip.to_string()) && cause.contains("network network2"),
        "{report:#}"
    );
}

/// Both clusters on one network: pods reach each other directly, without a gateway hop.
#[test]
fn on_one_network_pods_talk_directly() {
    let mesh = up(69, |dir| {
        replace_in(dir, "mesh.yaml", "network: network2", "network: network1");
        let file = dir.join("cluster2/istio-system.yaml");
        let text = std::fs::read_to_string(&file).expect("read");
        std::fs::write(&file, text.replace("network2", "network1")).expect("write");
    });
    let v2 = mesh.pod("cluster2/sample/helloworld-v2");
    let eps = mesh.endpoints("cluster1/sample/sleep", "helloworld");
    assert!(eps.iter().all(|e| e["via_gateway"] == false), "{eps:#?}");
    assert!(
        eps.iter()
            .any(|e| e["endpoint"] == format!("{}:5000", v2.ip)),
        "{eps:#?}"
    );
    let seen = mesh.hello_versions("cluster1/sample/sleep", 24);
    assert!(
        seen.contains_key("v1") && seen.contains_key("v2"),
        "{seen:?}"
    );
    assert_eq!(seen.get("error"), None, "{seen:?}");
}

/// On one loopback (the default, no root needed) networks are kept apart by address
/// discipline: a connection from a network1 pod's address to a network2 pod is refused by the
/// listener, while the same workload's traffic through the gateway goes through.
#[test]
fn on_one_loopback_a_direct_dial_across_networks_is_refused() {
    let mesh = Mesh::up("multicluster", 60, &[], &[]);
    let sleep1 = mesh.pod("cluster1/sample/sleep");
    let v2 = mesh.pod("cluster2/sample/helloworld-v2");
    let here = strait_net::netns::Vantage::Here;
    for port in [5000, 15021] {
        let target = SocketAddr::new(v2.ip, port);
        assert!(
            dial(&here, Some(sleep1.ip), target).is_err(),
            "network1's {} reached {target}",
            sleep1.ip
        );
    }
    // A neighbour on network2 is admitted where network1 is not.
    let sleep2 = mesh.pod("cluster2/sample/sleep");
    assert!(dial(&here, Some(sleep2.ip), SocketAddr::new(v2.ip, 15021)).is_ok());
    let seen = mesh.hello_versions("cluster1/sample/sleep", 24);
    assert!(
        seen.contains_key("v1") && seen.contains_key("v2"),
        "{seen:?}"
    );
}
