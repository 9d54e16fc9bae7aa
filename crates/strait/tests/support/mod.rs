//! A local mesh for end-to-end tests: `strait up` on a copy of an example, on a loopback
//! range of its own, with helpers to send requests through a workload's sidecar.

#![allow(dead_code)]

pub mod apiserver;
pub mod net;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use strait_local::up::state::{PodState, State};

pub const STRAIT: &str = env!("CARGO_BIN_EXE_strait");

/// The repository's examples directory.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read example") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

pub struct Mesh {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    child: Option<Child>,
    /// `strait up` stops when this closes, so a test that dies takes its mesh with it.
    lifeline: Option<std::process::ChildStdin>,
    log: PathBuf,
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// The status line and headers, as received.
    pub head: String,
}

impl Mesh {
    /// Copies `example` (plus `extra` files, relative path → content) and brings it up on
    /// `127.<net>.0.0/16`.
    pub fn up(example_name: &str, net: u8, extra: &[(&str, &str)], args: &[&str]) -> Mesh {
        Mesh::up_with(
            example_name,
            net,
            |dir| {
                for (path, content) in extra {
                    std::fs::write(dir.join(path), content).expect("write extra file");
                }
            },
            args,
        )
    }

    /// Copies `example`, lets `edit` change the copy (break it, say), and brings it up.
    pub fn up_with(example_name: &str, net: u8, edit: impl FnOnce(&Path), args: &[&str]) -> Mesh {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("mesh");
        copy_dir(&example(example_name), &dir);
        edit(&dir);
        let state_dir = tmp.path().join("state");
        let log = tmp.path().join("up.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(STRAIT)
            .arg("up")
            .arg(&dir)
            .arg("--state")
            .arg(&state_dir)
            .arg("--net")
            .arg(net.to_string())
            .arg("--lifeline")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().expect("dup"))
            .stderr(log_file)
            .spawn()
            .expect("spawn strait up");
        let mut child = child;
        let lifeline = child.stdin.take();
        let mut mesh = Mesh {
            tmp,
            dir,
            state_dir,
            child: Some(child),
            lifeline,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !mesh.state_dir.join("up.json").exists() {
            if let Some(status) = mesh
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("strait up exited with {status}:\n{}", mesh.log());
            }
            assert!(
                Instant::now() < deadline,
                "mesh not up after 90 s:\n{}",
                mesh.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        mesh
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn state(&self) -> State {
        let text = std::fs::read_to_string(self.state_dir.join("up.json")).expect("state file");
        serde_json::from_str(&text).expect("state JSON")
    }

    /// The first pod of `cluster/namespace/workload`.
    pub fn pod(&self, target: &str) -> PodState {
        self.state().find_pod(target).expect("pod").clone()
    }

    /// Runs `strait <subcommand> --state <dir> <rest>`.
    pub fn strait(&self, args: &[&str]) -> Output {
        let (sub, rest) = args.split_first().expect("a subcommand");
        Command::new(STRAIT)
            .arg(sub)
            .arg("--state")
            .arg(&self.state_dir)
            .args(rest)
            .output()
            .expect("run strait")
    }

    /// Writes a file of the mesh (as a user editing it would: a new file, renamed into place).
    pub fn write(&self, path: &str, content: &str) {
        let target = self.dir.join(path);
        let tmp = target.with_extension("tmp~");
        std::fs::write(&tmp, content).expect("write");
        std::fs::rename(&tmp, &target).expect("rename");
    }

    /// GET `url` from workload `from` through its sidecar.
    pub fn get(&self, from: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
        let pod = self.pod(from);
        http_get(pod.outbound(), url, headers)
            .unwrap_or_else(|e| panic!("GET {url} via {from}: {e}"))
    }

    /// The control plane's `/debug/syncz`.
    pub fn syncz(&self) -> serde_json::Value {
        self.try_syncz().expect("control plane /debug/syncz")
    }

    pub fn try_syncz(&self) -> Option<serde_json::Value> {
        let st = self.state();
        let cp = st.clusters[0].control_plane.as_ref()?;
        let r = http_get(cp.debug, "/debug/syncz", &[]).ok()?;
        serde_json::from_str(&r.body).ok()
    }

    /// Waits until every connected proxy acknowledged generation `at_least` or later.
    pub fn wait_synced(&self, at_least: u64, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if let Some(v) = self.try_syncz() {
                let proxies = v["proxies"].as_array().cloned().unwrap_or_default();
                // The proxies of the first cluster's control plane: its own cluster's and its
                // remotes'.
                let st = self.state();
                let first = st.clusters.first().map(|c| c.name.as_str()).unwrap_or("");
                let served = |cluster: &str| {
                    st.clusters
                        .iter()
                        .any(|c| c.name == cluster && c.control_plane_of == first)
                };
                let sidecars = st
                    .pods
                    .iter()
                    .filter(|p| p.sidecar && served(&p.cluster))
                    .count();
                let synced = proxies
                    .iter()
                    .filter(|p| p["state"] == "SYNCED")
                    .filter(|p| {
                        p["acked_version"]
                            .as_str()
                            .and_then(|s| s.parse::<u64>().ok())
                            .unwrap_or(0)
                            >= at_least
                    })
                    .count();
                if synced == sidecars {
                    return started.elapsed();
                }
            }
            assert!(
                started.elapsed() < timeout,
                "proxies not synced to generation {at_least}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn generation(&self) -> u64 {
        self.syncz()["generation"].as_u64().expect("generation")
    }

    /// Every process ID the mesh runs.
    pub fn pids(&self) -> Vec<u32> {
        let st = self.state();
        let mut pids: Vec<u32> = st
            .clusters
            .iter()
            .filter_map(|c| c.control_plane.as_ref()?.pid)
            .collect();
        for p in &st.pods {
            pids.extend(p.proxy_pid);
            pids.extend(&p.app_pids);
        }
        pids
    }

    /// Ctrl-C: SIGINT to `strait up`; returns its exit status.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(child.id(), "INT");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "strait up did not stop within 30 s of SIGINT:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.interrupt()));
        }
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(ok.success(), "kill -{sig} {pid}");
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Ports a pod serves to the operator (admin, outbound, health, stats, control-plane debug).
const OPERATOR_PORTS: [u16; 5] = [15000, 15001, 15021, 15090, 15014];

/// An unused address in the network of `addr`: where a test stands to act as another pod of
/// that network (a local mesh admits only its own network's addresses on mesh ports).
pub fn neighbour(addr: std::net::IpAddr) -> std::net::IpAddr {
    match addr {
        std::net::IpAddr::V4(v) => {
            let [a, b, c, _] = v.octets();
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(a, b, (c % 128) & 0xf0, 250))
        }
        v6 => v6,
    }
}

/// Connects to `addr`: to a mesh port from a neighbour in its network, to an operator port as
/// the operator.
pub fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    connect_from(
        (!OPERATOR_PORTS.contains(&addr.port())).then(|| neighbour(addr.ip())),
        addr,
    )
}

/// Connects to `addr` from `source` (any address when `None`).
pub fn connect_from(
    source: Option<std::net::IpAddr>,
    addr: SocketAddr,
) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    if let Some(src) = source {
        s.bind(&SocketAddr::new(src, 0).into())?;
    }
    s.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    Ok(s.into())
}

/// A blocking HTTP/1.1 GET: to `addr` as a proxy when `url` is absolute, else as origin.
pub fn http_get(addr: SocketAddr, url: &str, headers: &[(&str, &str)]) -> std::io::Result<Reply> {
    http_request(addr, "GET", url, headers)
}

/// A blocking HTTP/1.1 request without a body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Reply> {
    http_request_on(connect(addr)?, addr, method, url, headers)
}

/// A blocking HTTP/1.1 GET from the operator's address (127.0.0.1, not a pod's neighbour),
/// as a person at this machine makes it.
pub fn operator_get(addr: SocketAddr, url: &str) -> std::io::Result<Reply> {
    http_request_on(connect_from(None, addr)?, addr, "GET", url, &[])
}

/// A blocking HTTP/1.1 request without a body, on a connection to `addr`.
fn http_request_on(
    mut s: TcpStream,
    addr: SocketAddr,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Reply> {
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let host = url
        .strip_prefix("http://")
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
        .unwrap_or_else(|| addr.to_string());
    let mut req = format!("{method} {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP response: {text:?}")))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok(Reply {
        status,
        body: if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
        head: head.to_string(),
    })
}

/// The body of a raw response, de-chunked when its head says so.
pub fn dechunk_if_needed(response: &str, body: &str) -> String {
    let head = response
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A TLS server speaking Istio's proxy-to-proxy protocol (HTTP/2 over TLS, ALPN
/// `istio-h2`) with a certificate from the mesh CA for an identity of the test's choosing.
pub struct TlsServer {
    runtime: tokio::runtime::Runtime,
    cert: std::sync::Arc<std::sync::Mutex<std::sync::Arc<rustls::sign::CertifiedKey>>>,
    handshakes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Debug)]
struct CurrentCert(std::sync::Arc<std::sync::Mutex<std::sync::Arc<rustls::sign::CertifiedKey>>>);

impl rustls::server::ResolvesServerCert for CurrentCert {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        self.0.lock().ok().map(|c| c.clone())
    }
}

fn certified_key(ca: &strait_ca::Authority, identity: &str) -> rustls::sign::CertifiedKey {
    use rustls::pki_types::pem::PemObject;
    let id = strait_ca::SpiffeId::parse(identity).expect("identity");
    let key = strait_ca::WorkloadKey::generate(&id).expect("key");
    let chain = ca
        .sign_csr(&key.csr_pem, &id, Duration::from_secs(3600))
        .expect("sign");
    let chain = strait_ca::parse_chain(chain.concat()).expect("chain");
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(key.key_pem.as_bytes()).expect("key pem");
    rustls::sign::CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())
        .expect("certified key")
}

impl TlsServer {
    pub fn start(addr: SocketAddr, ca: &strait_ca::Authority, identity: &str) -> TlsServer {
        use std::sync::atomic::Ordering;
        use std::sync::{Arc, Mutex};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let cert = Arc::new(Mutex::new(Arc::new(certified_key(ca, identity))));
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(CurrentCert(cert.clone())));
        cfg.alpn_protocols = vec![b"istio-h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .expect("bind impostor");
        let (h, r) = (handshakes.clone(), requests.clone());
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                h.fetch_add(1, Ordering::SeqCst);
                let (acceptor, r) = (acceptor.clone(), r.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |_req| {
                        r.fetch_add(1, Ordering::SeqCst);
                        async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"impostor")),
                            ))
                        }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
                });
            }
        });
        TlsServer {
            runtime,
            cert,
            handshakes,
            requests,
        }
    }

    pub fn set_identity(&self, ca: &strait_ca::Authority, identity: &str) {
        let _guard = self.runtime.enter();
        *self.cert.lock().expect("lock") = std::sync::Arc::new(certified_key(ca, identity));
    }

    /// TCP connections accepted.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// HTTP requests served.
    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}
