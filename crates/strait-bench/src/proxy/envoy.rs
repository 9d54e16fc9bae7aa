//! The Envoy path: two Envoys configured as Istio configures a sidecar pair (HTTP connection
//! manager on both sides, HTTP/2 over mutual TLS between them with SPIFFE identities checked
//! both ways, two workers each), with certificates from the same CA as the strait mesh.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use strait_ca::{Authority, SpiffeId, WorkloadKey};

/// Envoy's listener ports, as Istio uses them: outbound capture and inbound.
const OUTBOUND_PORT: u16 = 15001;
const INBOUND_PORT: u16 = 15006;
const ADMIN_PORT: u16 = 15000;

/// One Envoy process, run under a small shell that holds a pipe from the benchmark on stdin
/// and kills Envoy when it closes: Envoy goes away with the benchmark however that ends
/// (Ctrl-C, a panic, SIGKILL), and cannot hold the benchmark's addresses afterwards. Dropping
/// it stops Envoy.
#[derive(Debug)]
pub struct Envoy {
    guard: Child,
    lifeline: Option<ChildStdin>,
    pid: u32,
    pub admin: SocketAddr,
    log: PathBuf,
}

impl Envoy {
    /// Envoy's own process id (not the guarding shell's).
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        super::procs::stop_child(&mut self.guard, &mut self.lifeline, Duration::from_secs(5));
    }
}

/// The client-side and server-side Envoys.
#[derive(Debug)]
pub struct EnvoyPair {
    pub client: Envoy,
    pub server: Envoy,
    /// Where the load generator connects (the client Envoy's outbound listener).
    pub entry: SocketAddr,
}

/// What the pair needs to know.
#[derive(Debug)]
pub struct PairSpec<'a> {
    pub envoy: &'a Path,
    pub dir: &'a Path,
    /// The CA (Istio's cacerts layout) that signs both Envoys' certificates.
    pub ca_dir: &'a Path,
    pub trust_domain: &'a str,
    pub client_ip: IpAddr,
    pub server_ip: IpAddr,
    /// The application behind the server-side Envoy.
    pub app: SocketAddr,
    /// Worker threads per Envoy.
    pub concurrency: usize,
}

pub fn start_pair(spec: &PairSpec<'_>) -> anyhow::Result<EnvoyPair> {
    let ca = Authority::load(spec.ca_dir)?;
    let root = spec.dir.join("root-cert.pem");
    std::fs::write(&root, ca.roots_pem())?;
    let client_id = SpiffeId::new(spec.trust_domain, "bench", "client")?;
    let server_id = SpiffeId::new(spec.trust_domain, "bench", "server")?;
    let client_certs = write_identity(&ca, &client_id, spec.dir, "client")?;
    let server_certs = write_identity(&ca, &server_id, spec.dir, "server")?;

    let server_cfg = server_config(spec, &server_certs, &root, &client_id);
    let server = spawn(spec, "server", &server_cfg, spec.server_ip)?;
    let client_cfg = client_config(spec, &client_certs, &root, &server_id);
    let client = spawn(spec, "client", &client_cfg, spec.client_ip)?;
    wait_ready(&server)?;
    wait_ready(&client)?;
    Ok(EnvoyPair {
        entry: SocketAddr::new(spec.client_ip, OUTBOUND_PORT),
        client,
        server,
    })
}

/// A workload certificate chain (leaf first, without the root) and key, as files.
struct CertFiles {
    chain: PathBuf,
    key: PathBuf,
}

fn write_identity(
    ca: &Authority,
    id: &SpiffeId,
    dir: &Path,
    name: &str,
) -> anyhow::Result<CertFiles> {
    let key = WorkloadKey::generate(id)?;
    let mut chain = ca.sign_csr(&key.csr_pem, id, Duration::ZERO)?;
    // Envoy sends what it is given; the peer holds the root already.
    chain.pop();
    let files = CertFiles {
        chain: dir.join(format!("{name}-chain.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&files.chain, chain.concat())?;
    std::fs::write(&files.key, key.key_pem)?;
    Ok(files)
}

fn tls_context(certs: &CertFiles, root: &Path, peer: &SpiffeId, alpn: &str) -> String {
    format!(
        r#"common_tls_context:
          alpn_protocols: [{alpn}]
          tls_certificates:
          - certificate_chain: {{filename: "{chain}"}}
            private_key: {{filename: "{key}"}}
          validation_context:
            trusted_ca: {{filename: "{root}"}}
            match_typed_subject_alt_names:
            - san_type: URI
              matcher: {{exact: "{peer}"}}"#,
        chain = certs.chain.display(),
        key = certs.key.display(),
        root = root.display(),
    )
}

fn hcm(stat_prefix: &str, cluster: &str) -> String {
    format!(
        r#"- name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {stat_prefix}
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: {cluster}, timeout: 0s}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"#
    )
}

fn admin(ip: IpAddr) -> String {
    format!("admin:\n  address: {{socket_address: {{address: {ip}, port_value: {ADMIN_PORT}}}}}\n")
}

fn client_config(
    spec: &PairSpec<'_>,
    certs: &CertFiles,
    root: &Path,
    server_id: &SpiffeId,
) -> String {
    format!(
        r#"{admin}static_resources:
  listeners:
  - name: outbound
    address: {{socket_address: {{address: {ip}, port_value: {OUTBOUND_PORT}}}}}
    filter_chains:
    - filters:
      {hcm}
  clusters:
  - name: server
    type: STATIC
    connect_timeout: 5s
    load_assignment:
      cluster_name: server
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {server_ip}, port_value: {INBOUND_PORT}}}}}}}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: outbound_.8080_._.server.bench.svc.cluster.local
        {tls}
"#,
        admin = admin(spec.client_ip),
        ip = spec.client_ip,
        hcm = hcm("outbound", "server"),
        server_ip = spec.server_ip,
        tls = tls_context(certs, root, server_id, "h2"),
    )
}

fn server_config(
    spec: &PairSpec<'_>,
    certs: &CertFiles,
    root: &Path,
    client_id: &SpiffeId,
) -> String {
    format!(
        r#"{admin}static_resources:
  listeners:
  - name: inbound
    address: {{socket_address: {{address: {ip}, port_value: {INBOUND_PORT}}}}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          {tls}
      filters:
      {hcm}
  clusters:
  - name: app
    type: STATIC
    connect_timeout: 5s
    load_assignment:
      cluster_name: app
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {app_ip}, port_value: {app_port}}}}}}}
"#,
        admin = admin(spec.server_ip),
        ip = spec.server_ip,
        tls = tls_context(certs, root, client_id, "h2, http/1.1").replace('\n', "\n  "),
        hcm = hcm("inbound", "app"),
        app_ip = spec.app.ip(),
        app_port = spec.app.port(),
    )
}

/// The guard: start Envoy in the background with its output in `$LOG`, say its pid, wait for
/// stdin to close, then stop it.
const GUARD: &str = r#""$0" "$@" > "$LOG" 2>&1 &
echo "$!"
read -r _
kill "$!" 2> /dev/null
wait"#;

fn spawn(spec: &PairSpec<'_>, name: &str, config: &str, ip: IpAddr) -> anyhow::Result<Envoy> {
    let admin = SocketAddr::new(ip, ADMIN_PORT);
    // A previous run's Envoy still holding the address would answer in this one's place.
    std::net::TcpListener::bind(admin).with_context(|| {
        format!(
            "{admin} is in use (an Envoy left from an earlier run?); stop it or pick another --net"
        )
    })?;
    let cfg = spec.dir.join(format!("envoy-{name}.yaml"));
    std::fs::write(&cfg, config)?;
    let log = spec.dir.join(format!("envoy-{name}.log"));
    let mut guard = Command::new("sh")
        .arg("-c")
        .arg(GUARD)
        .arg(spec.envoy)
        .arg("-c")
        .arg(&cfg)
        .arg("--concurrency")
        .arg(spec.concurrency.to_string())
        .arg("--disable-hot-restart")
        .args(["-l", "warning"])
        .env("LOG", &log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("running {} under sh", spec.envoy.display()))?;
    let lifeline = guard.stdin.take();
    let mut line = String::new();
    if let Some(out) = guard.stdout.take() {
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)?;
    }
    let pid = line.trim().parse().with_context(|| {
        format!(
            "starting {}: no process id from the guard",
            spec.envoy.display()
        )
    })?;
    Ok(Envoy {
        guard,
        lifeline,
        pid,
        admin,
        log,
    })
}

/// Waits until Envoy's admin `/ready` answers `LIVE`.
fn wait_ready(envoy: &Envoy) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(body) = get(envoy.admin, "/ready")
            && body.lines().any(|l| l.trim() == "LIVE")
        {
            return Ok(());
        }
        if !strait_local::up::state::process_alive(envoy.pid) {
            bail!(
                "Envoy (admin {}) exited:\n{}",
                envoy.admin,
                std::fs::read_to_string(&envoy.log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "Envoy (admin {}) not ready after 30 s:\n{}",
                envoy.admin,
                std::fs::read_to_string(&envoy.log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain blocking GET, for admin endpoints. The body is returned as received (chunked
/// encoding included), which is enough to find a one-word answer.
fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").context("no HTTP head")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("{}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_string())
}
