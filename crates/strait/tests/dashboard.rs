//! `strait dashboard` on a running mesh of two clusters on two networks: its JSON shows both
//! clusters and live traffic across them (through the east-west gateways, attributed to the
//! workload that answered), an edge's trace, clear errors for bad queries, and the page
//! itself rendered by a real browser (headless Chromium): both clusters drawn, an edge with
//! its rate, and a screenshot that is not blank. Without Chromium the test fails: `.ci/run`
//! installs it.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Mesh;
use support::net::isolation_args;

/// The width and height Chromium renders the page at.
const WINDOW: (u32, u32) = (1280, 900);

/// A running `strait dashboard`, stopped when dropped.
struct Dashboard {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Dashboard {
    /// Starts it on a free port and reads the address it prints.
    fn start(mesh: &Mesh) -> Dashboard {
        let log = mesh.tmp.path().join("dashboard.log");
        let mut child = Command::new(support::STRAIT)
            .arg("dashboard")
            .arg("--state")
            .arg(&mesh.state_dir)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn strait dashboard");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the dashboard's address");
        let addr = line
            .trim()
            .strip_prefix("strait dashboard: http://")
            .and_then(|a| a.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no address in {line:?}:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        Dashboard { child, addr, log }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// `GET path`: status and body.
    fn get(&self, path: &str) -> (u16, String) {
        let r = support::operator_get(self.addr, path).expect("dashboard answers");
        (r.status, r.body)
    }

    fn mesh(&self) -> Value {
        let (status, body) = self.get("/api/mesh");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("/api/mesh is JSON")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Ctrl-C: how it exited, within 10 s.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        support::signal(self.child.id(), "INT");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "still running 10 s after Ctrl-C");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP edge between workloads of two clusters, with requests in the last window.
fn live_cross_cluster(mesh: &Value) -> Option<Value> {
    mesh["edges"]
        .as_array()?
        .iter()
        .find(|e| {
            e["protocol"] == "http"
                && e["source"]["cluster"] != e["destination"]["cluster"]
                && e["destination"]["workload"] != "unknown"
                && e["rate"].as_f64().is_some_and(|r| r > 0.0)
        })
        .cloned()
}

/// Runs headless Chromium on `url` with `args`; fails the test when it is not installed.
fn chromium(profile: &Path, url: &str, args: &[&str]) -> Output {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            &format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            // Time for the page's first fetch of /api/mesh and its drawing.
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run chromium ({e}): this test renders the page in a real browser; install it (apt-get install chromium, as .ci/run does)"
            )
        });
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `<g class="edge" ...>` opening tags of a DOM dump, as attribute maps.
fn edge_tags(dom: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    dom.split("<g class=\"edge\"")
        .skip(1)
        .map(|rest| {
            let tag = rest.split('>').next().unwrap_or("");
            tag.split("\" ")
                .filter_map(|kv| {
                    let (k, v) = kv.trim().split_once("=\"")?;
                    Some((k.to_string(), v.trim_end_matches('"').to_string()))
                })
                .collect()
        })
        .collect()
}

/// Width, height and the number of distinct colours of a PNG file.
fn png_summary(path: &Path) -> (u32, u32, usize) {
    let file = std::fs::File::open(path).expect("screenshot written");
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    let mut colours = std::collections::HashSet::new();
    for row in buf[..info.line_size * info.height as usize].chunks(info.line_size) {
        for px in row.chunks(channels) {
            colours.insert(px.to_vec());
        }
    }
    (info.width, info.height, colours.len())
}

#[test]
fn the_dashboard_draws_both_clusters_and_live_traffic_between_them() {
    let started = Instant::now();
    let mesh = Mesh::up("multicluster", 93, &[], &isolation_args());
    let stop = AtomicBool::new(false);
    let sent = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        // Requests from both clusters' sleep all through the test: half of each cross to
        // the other network's helloworld.
        for from in ["cluster1/sample/sleep", "cluster2/sample/sleep"] {
            let (mesh, stop, sent) = (&mesh, &stop, &sent);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    mesh.curl(from, "http://helloworld.sample:5000/hello");
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check(&mesh, &sent);
        }));
        stop.store(true, Ordering::Relaxed);
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    });
    eprintln!("dashboard test took {:?}", started.elapsed());
}

fn check(mesh: &Mesh, sent: &AtomicUsize) {
    let mut dash = Dashboard::start(mesh);

    // /api/mesh: both clusters on their networks, the gateways, helloworld's two versions,
    // and a live edge across clusters.
    let deadline = Instant::now() + Duration::from_secs(90);
    let (snapshot, edge) = loop {
        let m = dash.mesh();
        if let Some(e) = live_cross_cluster(&m) {
            break (m, e);
        }
        assert!(
            Instant::now() < deadline,
            "no live cross-cluster edge after {} requests:\n{m:#}\n{}",
            sent.load(Ordering::Relaxed),
            dash.log()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    let topo = &snapshot["topology"];
    let clusters: Vec<&str> = topo["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(clusters, ["cluster1", "cluster2"], "{topo:#}");
    assert_eq!(
        topo["networks"].as_array().map(Vec::len),
        Some(2),
        "{topo:#}"
    );
    let east_west = topo["gateways"]
        .as_array()
        .expect("gateways")
        .iter()
        .filter(|g| g["kind"] == "east-west")
        .count();
    assert_eq!(east_west, 2, "{topo:#}");
    let versions: Vec<&str> = topo["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .filter(|w| w["app"] == "helloworld")
        .filter_map(|w| w["version"].as_str())
        .collect();
    assert_eq!(versions, ["v1", "v2"], "{topo:#}");
    assert_eq!(
        edge["service"], "helloworld.sample.svc.cluster.local",
        "{edge:#}"
    );
    assert!(
        edge["destination"]["workload"]
            .as_str()
            .is_some_and(|w| w.starts_with("helloworld-v")),
        "{edge:#}"
    );

    // The edge's trace: `check trace` for its source and service, through the gateway.
    let from = format!(
        "{}/{}/{}",
        edge["source"]["cluster"].as_str().unwrap_or(""),
        edge["source"]["namespace"].as_str().unwrap_or(""),
        edge["source"]["workload"].as_str().unwrap_or("")
    );
    let (status, body) = dash.get(&format!(
        "/api/trace?from={}&service=helloworld.sample.svc.cluster.local",
        from.replace('/', "%2F")
    ));
    assert_eq!(status, 200, "{body}");
    let trace: Value = serde_json::from_str(&body).expect("trace JSON");
    assert_eq!(trace["ok"], true, "{trace:#}");
    assert!(
        trace["text"]
            .as_str()
            .is_some_and(|t| t.contains("east-west gateway")),
        "{trace:#}"
    );
    // Bad queries are the caller's to fix, and say how.
    for (path, says) in [
        (
            "/api/trace?from=cluster1/sample/sleep",
            "missing parameter \"service\"",
        ),
        (
            "/api/trace?from=cluster1/sample/sleep&service=h&port=x",
            "port",
        ),
        (
            "/api/trace?from=cluster1/sample/nobody&service=helloworld.sample.svc.cluster.local",
            "no such workload",
        ),
    ] {
        let (status, body) = dash.get(path);
        assert_eq!(status, 400, "{path}: {body}");
        let error: Value = serde_json::from_str(&body).expect("an error is JSON");
        assert!(
            error["error"].as_str().is_some_and(|e| e.contains(says)),
            "{path}: {body}"
        );
    }
    assert_eq!(dash.get("/nothing").0, 404);

    // The page, in a real browser: both clusters drawn, an edge across them with its rate.
    let profile = mesh.tmp.path().join("chromium");
    let dom = chromium(&profile, &dash.url(), &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    for c in ["cluster1", "cluster2"] {
        assert!(
            dom.contains(&format!("data-cluster=\"{c}\"")),
            "{c} not drawn:\n{dom}"
        );
    }
    let edges = edge_tags(&dom);
    let drawn = edges.iter().find(|e| {
        let cluster = |k: &str| e.get(k).and_then(|v| v.split('/').next()).unwrap_or("");
        cluster("data-from") != cluster("data-to")
            && e.get("data-rate")
                .and_then(|r| r.parse::<f64>().ok())
                .is_some_and(|r| r > 0.0)
    });
    assert!(
        drawn.is_some(),
        "no edge across clusters with a rate in the page: {edges:#?}\n{dom}"
    );
    assert!(dom.contains(" rps · "), "no rate label:\n{dom}");

    // A screenshot of the right size that is not blank: boxes, text, edges in many colours.
    let shot = mesh.tmp.path().join("dashboard.png");
    chromium(
        &profile,
        &dash.url(),
        &[&format!("--screenshot={}", shot.display())],
    );
    let (w, h, colours) = png_summary(&shot);
    assert_eq!((w, h), WINDOW, "screenshot size");
    assert!(colours >= 32, "a blank page? {colours} distinct colours");

    // Ctrl-C stops it cleanly.
    let status = dash.interrupt();
    assert!(status.success(), "{status}: {}", dash.log());
}
