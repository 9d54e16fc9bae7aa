//! Traffic capture for real (Kubernetes mode without Kubernetes): two pods, each its own
//! network namespace with `strait init`'s iptables rules and a sidecar in capture mode running
//! as UID 1337, and a control plane in a third namespace that links them. An unmodified client
//! (`curl` of a Service's cluster IP, no HTTP_PROXY) reaches the server's app through both
//! sidecars over mTLS; a plain connection to the server pod's app port is redirected to its
//! sidecar's 15006. Needs root (namespaces, iptables): it fails, never skips, without it.
//!
//! ```text
//!   <p>-client (sleep pod)          <p>-link (control plane)            <p>-server (helloworld pod)
//!   eth0 10.251.0.2 ─────── br0 10.251.0.1:15012 ─────── eth0 10.251.0.3
//!   curl 10.96.0.10:5000 (a cluster IP)                         app on *:5000
//! ```

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use strait_net::netns::Netns;
use support::STRAIT;

const CP: &str = "10.251.0.1";
const SLEEP: &str = "10.251.0.2";
const HELLO: &str = "10.251.0.3";
const CLUSTER_IP: &str = "10.96.0.10";

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The three namespaces, removed (with whatever runs in them) when dropped.
struct Topology {
    names: Vec<String>,
    children: Vec<Child>,
}

impl Topology {
    fn create(prefix: &str) -> Topology {
        let link = format!("{prefix}-link");
        let mut topo = Topology {
            names: Vec::new(),
            children: Vec::new(),
        };
        ip(&["netns", "add", &link]);
        topo.names.push(link.clone());
        ip(&["-n", &link, "link", "set", "lo", "up"]);
        ip(&["-n", &link, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &link,
            "addr",
            "add",
            &format!("{CP}/24"),
            "dev",
            "br0",
        ]);
        ip(&["-n", &link, "link", "set", "br0", "up"]);
        for (pod, addr) in [("client", SLEEP), ("server", HELLO)] {
            let ns = format!("{prefix}-{pod}");
            ip(&["netns", "add", &ns]);
            topo.names.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", pod, "netns",
                &link,
            ]);
            ip(&["-n", &link, "link", "set", pod, "master", "br0", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            // Cluster IPs belong to no interface: the default route is what lets a pod dial
            // one at all, before the capture rules take the connection.
            ip(&["-n", &ns, "route", "add", "default", "via", CP]);
        }
        topo
    }

    fn spawn(&mut self, ns: &str, uid: Option<u32>, args: &[&str], log: &Path) {
        let file = std::fs::File::create(log).expect("log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]);
        if let Some(uid) = uid {
            let (u, g) = (format!("--reuid={uid}"), format!("--regid={uid}"));
            cmd.args(["setpriv", &u, &g, "--clear-groups"]);
        }
        let child = cmd
            .arg(STRAIT)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup"))
            .stderr(file)
            .spawn()
            .expect("spawn");
        self.children.push(child);
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

fn strait_in(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, STRAIT])
        .args(args)
        .output()
        .expect("run strait")
}

const MANIFESTS: &str = "apiVersion: v1
kind: Namespace
metadata: {name: sample, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: sleep, namespace: sample}
---
apiVersion: v1
kind: Service
metadata: {name: helloworld, namespace: sample}
spec:
  clusterIP: 10.96.0.10
  selector: {app: helloworld}
  ports: [{name: http, port: 5000}]
---
apiVersion: v1
kind: Pod
metadata: {name: helloworld-1, namespace: sample, labels: {app: helloworld}}
spec:
  containers:
  - {name: helloworld, image: helloworld, ports: [{containerPort: 5000}]}
  - {name: istio-proxy, image: strait/proxy}
status: {phase: Running, podIP: 10.251.0.3, podIPs: [{ip: 10.251.0.3}]}
---
apiVersion: v1
kind: Pod
metadata: {name: sleep-1, namespace: sample, labels: {app: sleep}}
spec:
  serviceAccountName: sleep
  containers:
  - {name: sleep, image: curl}
  - {name: istio-proxy, image: strait/proxy}
status: {phase: Running, podIP: 10.251.0.2, podIPs: [{ip: 10.251.0.2}]}
";

fn bootstrap(dir: &Path, pod: &str, sa: &str, addr: &str) -> String {
    let path = dir.join(format!("{pod}.json"));
    let json = serde_json::json!({
        "cluster": "Kubernetes",
        "namespace": "sample",
        "pod": pod,
        "service_account": sa,
        "pod_ip": addr,
        "app_ip": addr,
        "control_plane": format!("{CP}:15012"),
        "root_cert": dir.join("root.pem"),
        "token": format!("token-{pod}"),
        "capture": true,
    });
    std::fs::write(&path, json.to_string()).expect("bootstrap");
    path.display().to_string()
}

/// The app: answers every request with the client certificate its sidecar saw (XFCC).
fn serve_app(ns: &Netns) {
    let listener = ns
        .run(|| std::net::TcpListener::bind("0.0.0.0:5000"))
        .expect("app listener");
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let xfcc = text
                .lines()
                .find_map(|l| l.strip_prefix("x-forwarded-client-cert:"))
                .unwrap_or(" none")
                .trim()
                .to_string();
            let body = format!("hello from helloworld; xfcc={xfcc}\n");
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

/// A GET from a socket made inside `ns` (so by root: the capture rules let it be).
fn get_in(ns: &Netns, addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s =
        ns.run(move || std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The server sidecar's `istio_requests_total` series as reporter="destination" with
/// `connection_security_policy` = `policy`, summed.
fn inbound_requests(ns: &Netns, policy: &str) -> u64 {
    let stats = SocketAddr::new(HELLO.parse().expect("ip"), 15090);
    let text = get_in(ns, stats, "/stats/prometheus").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .filter(|l| l.contains("reporter=\"destination\""))
        .filter(|l| l.contains(&format!("connection_security_policy=\"{policy}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn curl(ns: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-q", "-sS", "-m", "5"])
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn captured_traffic_goes_through_both_sidecars() {
    assert!(
        is_root(),
        "this test creates network namespaces and installs iptables rules, which needs root"
    );
    let started = Instant::now();
    let prefix = format!("stcap{}", std::process::id());
    let mut topo = Topology::create(&prefix);
    let (client, server, link) = (
        format!("{prefix}-client"),
        format!("{prefix}-server"),
        format!("{prefix}-link"),
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // The proxies run as UID 1337 and read their bootstrap and the trust bundle.
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::fs::create_dir_all(dir.join("mesh")).expect("mkdir");
    std::fs::write(dir.join("mesh/sample.yaml"), MANIFESTS).expect("manifests");
    let tokens = serde_json::json!({
        "token-sleep-1": {"cluster": "Kubernetes", "namespace": "sample", "service_account": "sleep"},
        "token-helloworld-1": {"cluster": "Kubernetes", "namespace": "sample", "service_account": "default"},
    });
    std::fs::write(dir.join("tokens.json"), tokens.to_string()).expect("tokens");

    // Capture first, as istio-init runs before the pod's containers.
    for ns in [&client, &server] {
        let out = strait_in(ns, &["init"]);
        assert!(
            out.status.success(),
            "strait init in {ns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let saved = Command::new("ip")
        .args(["netns", "exec", &client, "iptables-save", "-t", "nat"])
        .output()
        .expect("iptables-save");
    let saved = String::from_utf8_lossy(&saved.stdout);
    assert!(
        saved.contains("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"),
        "{saved}"
    );

    let mesh = dir.join("mesh").display().to_string();
    let tokens = dir.join("tokens.json").display().to_string();
    let root = dir.join("root.pem").display().to_string();
    let (grpc, debug) = (format!("{CP}:15012"), format!("{CP}:15014"));
    topo.spawn(
        &link,
        None,
        &[
            "control-plane",
            &mesh,
            "--tokens",
            &tokens,
            "--root-cert-out",
            &root,
            "--listen",
            &grpc,
            "--debug",
            &debug,
        ],
        &dir.join("cp.log"),
    );
    let server_ns = Netns::named(&server);
    serve_app(&server_ns);
    support::net::eventually(Duration::from_secs(20), "the trust bundle", || {
        dir.join("root.pem").exists()
    });
    std::fs::set_permissions(
        dir.join("root.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod root");
    let sleep_bs = bootstrap(dir, "sleep-1", "sleep", SLEEP);
    let hello_bs = bootstrap(dir, "helloworld-1", "default", HELLO);
    topo.spawn(
        &client,
        Some(1337),
        &["proxy", "--bootstrap", &sleep_bs],
        &dir.join("sleep-proxy.log"),
    );
    topo.spawn(
        &server,
        Some(1337),
        &["proxy", "--bootstrap", &hello_bs],
        &dir.join("hello-proxy.log"),
    );
    let logs = || {
        ["cp.log", "sleep-proxy.log", "hello-proxy.log"]
            .iter()
            .map(|f| {
                format!(
                    "--- {f}\n{}",
                    std::fs::read_to_string(dir.join(f)).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    // An unmodified client: plain curl of the cluster IP, no proxy settings.
    let url = format!("http://{CLUSTER_IP}:5000/hello");
    let mut last = (0, String::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        last = curl(&client, &[&url]);
        if last.0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(last.0, 200, "curl {url}: {last:?}\n{}", logs());
    assert!(
        last.1
            .contains("uri=spiffe://cluster.local/ns/sample/sa/sleep"),
        "the app saw the sleep sidecar's mTLS identity: {last:?}"
    );
    assert!(
        inbound_requests(&server_ns, "mutual_tls") >= 1,
        "the server sidecar counted an mTLS request\n{}",
        logs()
    );

    // A destination no service names (the control plane's debug port) is relayed as bytes to
    // where the client was going (PassthroughCluster).
    let (code, body) = curl(&client, &[&format!("http://{debug}/ready")]);
    assert_eq!(code, 200, "passthrough: {body}\n{}", logs());

    // The HTTP-proxy mode keeps working on the same port: a connection made to 15001 itself
    // has no original destination of its own.
    let proxy = format!("http://{SLEEP}:15001");
    let (code, body) = curl(
        &client,
        &["-x", &proxy, "http://helloworld.sample:5000/proxied"],
    );
    assert_eq!(code, 200, "through HTTP_PROXY: {body}\n{}", logs());
    assert!(body.contains("sa/sleep"), "{body}");

    // A plain connection to the server pod's app port, from outside it, lands on 15006:
    // the server sidecar serves it (PERMISSIVE) and counts it as plaintext.
    let before = inbound_requests(&server_ns, "none");
    let link_ns = Netns::named(&link);
    let app = SocketAddr::new(HELLO.parse().expect("ip"), 5000);
    let reply = get_in(&link_ns, app, "/direct").expect("plain request to the pod");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("xfcc=none"), "{reply}");
    assert_eq!(
        inbound_requests(&server_ns, "none"),
        before + 1,
        "the plain connection went through the server sidecar\n{}",
        logs()
    );

    // Removing capture is complete: no chain is left behind.
    let out = strait_in(&client, &["init", "--clean"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = Command::new("ip")
        .args(["netns", "exec", &client, "iptables-save", "-t", "nat"])
        .output()
        .expect("iptables-save");
    assert!(
        !String::from_utf8_lossy(&saved.stdout).contains("ISTIO_"),
        "capture chains left after --clean"
    );
    eprintln!("capture test took {:?}", started.elapsed());
}
