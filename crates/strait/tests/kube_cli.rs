//! `strait analyze --kubeconfig FILE --context ...` end to end: the real binary reads two
//! clusters from loopback API servers answering recorded responses (see
//! `crates/strait-kube/tests/data/read/README.md`) and finds the mistake seeded in one.

#[path = "../../strait-kube/tests/support/api_fixture.rs"]
mod api_fixture;
mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use api_fixture::Fixture;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;

/// An API server for one cluster's recordings, on a loopback port of its own.
async fn api_server(cluster: &str) -> SocketAddr {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../strait-kube/tests/data/read");
    let fixture = Arc::new(Fixture::open(&root, cluster));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let fixture = fixture.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let (code, body) = fixture.answer(req.uri().path(), req.uri().query());
                    let response = http::Response::builder()
                        .status(code)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))
                        .expect("response");
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A kubeconfig with one context per (name, server), the first one current.
fn kubeconfig(dir: &Path, servers: &[(&str, SocketAddr)]) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(&path, support::apiserver::kubeconfig(servers)).expect("write kubeconfig");
    path
}

async fn strait(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(&args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("run strait")
    })
    .await
    .expect("join")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_reads_every_context_and_points_findings_at_the_cluster() {
    let c1 = api_server("c1").await;
    let c2 = api_server("c2").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = kubeconfig(dir.path(), &[("c1", c1), ("c2", c2)]);
    let config = config.display().to_string();

    let out = strait(
        [
            "analyze",
            "--kubeconfig",
            &config,
            "--context",
            "c1",
            "--context",
            "c2",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let finding = stdout
        .lines()
        .find(|l| l.contains("IST0101") && l.contains("helloworld-v9"))
        .unwrap_or_else(|| panic!("no IST0101 for helloworld-v9:\n{stdout}\n{stderr}"));
    assert!(
        stdout.contains("kube://c1/sample/VirtualService/helloworld:"),
        "{finding}\n{stdout}"
    );
    // c2's Secrets could not be listed: said, and the rest analyzed.
    assert!(
        stderr.contains("warning: cluster c2 (context c2 of ")
            && stderr.contains("not allowed to list Secret"),
        "{stderr}"
    );
    assert!(stderr.contains("in 2 clusters"), "{stderr}");
    assert!(
        stderr.contains("note: cluster c1 does not serve gateway.networking.k8s.io/v1 (Gateway, "),
        "{stderr}"
    );

    // As JSON, the position is the same document.
    let out = strait(
        [
            "analyze",
            "-o",
            "json",
            "--kubeconfig",
            &config,
            "--context",
            "east=c1",
            "--context",
            "west=c2",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    let json = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{json}");
    assert!(
        json.contains("kube://east/sample/VirtualService/helloworld"),
        "{json}"
    );

    // Without --context: the current context, one cluster.
    let out = strait(
        ["analyze", "--kubeconfig", &config]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert!(
        text(&out.stderr).contains("in 1 cluster"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_and_files_are_not_read_together_and_failures_name_the_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c1 = api_server("c1").await;
    // A port nothing listens on: bound, then released.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let config = kubeconfig(dir.path(), &[("c1", c1), ("gone", dead)]);
    let config = config.display().to_string();

    let out = strait(
        [
            "analyze",
            "--kubeconfig",
            &config,
            "--context",
            "c1",
            "mesh/",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out.stderr)
    );

    let out = strait(
        [
            "analyze",
            "--kubeconfig",
            &config,
            "--context",
            "c1",
            "--context",
            "gone",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cluster gone (context gone of ")
            && stderr.contains("cannot reach its API server"),
        "{stderr}"
    );

    let out = strait(
        ["analyze", "--kubeconfig", &config, "--context", "nosuch"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nosuch"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_status_reads_the_control_plane_through_the_api_server() {
    let c1 = api_server("c1").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = kubeconfig(dir.path(), &[("c1", c1)]);
    let config = config.display().to_string();

    for target in [None, Some("sleep.sample")] {
        let mut args: Vec<String> = ["proxy-status", "--kubeconfig", &config, "--context", "c1"]
            .map(String::from)
            .to_vec();
        args.extend(target.map(String::from));
        let out = strait(args).await;
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}\n{}",
            text(&out.stderr)
        );
        let row = stdout
            .lines()
            .find(|l| l.starts_with("sleep-5c8d6f7b9d-x2k4q.sample"))
            .unwrap_or_else(|| panic!("no sleep row:\n{stdout}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "sleep-5c8d6f7b9d-x2k4q.sample",
                "c1",
                "SYNCED",
                "2026-11-30T09:25:13Z/17",
                "2026-11-30T09:25:13Z/17",
                "c1",
                "0.1.0"
            ],
            "{stdout}"
        );
    }

    let out = strait(
        [
            "proxy-status",
            "--kubeconfig",
            &config,
            "--context",
            "c1",
            "--state",
            "/tmp/x",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("give one or the other"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_that_send_traffic_say_they_need_a_local_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c1 = api_server("c1").await;
    let config = kubeconfig(dir.path(), &[("c1", c1)]);
    let config = config.display().to_string();
    for check in [vec![
        "check",
        "lb",
        "helloworld.sample",
        "--from",
        "sleep.sample",
    ]] {
        let mut args: Vec<String> = check.iter().map(|s| s.to_string()).collect();
        args.extend(["--kubeconfig", &config, "--context", "c1"].map(String::from));
        let out = strait(args).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{check:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "check {} needs a mesh running on this machine (strait up)",
                check[1]
            )),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_sync_reads_control_plane_and_proxies_through_the_api_server() {
    let c1 = api_server("c1").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = kubeconfig(dir.path(), &[("c1", c1)]);
    let config = config.display().to_string();
    let out = strait(
        [
            "check",
            "sync",
            "-o",
            "json",
            "--kubeconfig",
            &config,
            "--context",
            "c1",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["proxies"][0]["state"], "SYNCED", "{report:#}");
    let problems: Vec<(String, String)> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["subject"].as_str().unwrap_or("").to_string(),
                p["cause"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|(s, c)| s == "network network2" && c.starts_with("no east-west gateway")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|(s, c)| s == "sleep-5c8d6f7b9d-x2k4q.sample"
            && c.starts_with("endpoint 10.245.0.21:5000 is a pod of network network2, dialled directly from network network1")),
        "{problems:#?}"
    );
}
