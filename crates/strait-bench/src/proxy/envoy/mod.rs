//! The Envoy path: two Envoys configured as Istio configures a sidecar pair ([`config`]), two
//! workers each, with certificates from the same CA as the strait mesh.

mod config;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use strait_ca::{Authority, SpiffeId, WorkloadKey};

use self::config::{Bootstrap, CertFiles};
use super::services::ExtraService;
use super::{http, procs};

/// Envoy's listener ports, as Istio uses them: outbound capture, inbound and admin.
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
    started: Instant,
    /// From starting the process to its admin `/ready` answering `LIVE`.
    pub ready_in: Duration,
}

impl Envoy {
    /// Envoy's own process id (not the guarding shell's).
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        procs::stop_child(&mut self.guard, &mut self.lifeline, Duration::from_secs(5));
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

impl EnvoyPair {
    pub fn pids(&self) -> [u32; 2] {
        [self.client.pid(), self.server.pid()]
    }

    pub fn admins(&self) -> [SocketAddr; 2] {
        [self.client.admin, self.server.admin]
    }
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
    /// Services both Envoys hold besides the bench's server.
    pub extra: &'a [ExtraService],
}

pub fn start_pair(spec: &PairSpec<'_>) -> anyhow::Result<EnvoyPair> {
    std::fs::create_dir_all(spec.dir)?;
    let ca = Authority::load(spec.ca_dir)?;
    let root = spec.dir.join("root-cert.pem");
    std::fs::write(&root, ca.roots_pem())?;
    let client_id = SpiffeId::new(spec.trust_domain, "bench", "client")?;
    let server_id = SpiffeId::new(spec.trust_domain, "bench", "server")?;
    let client_certs = write_identity(&ca, &client_id, spec.dir, "client")?;
    let server_certs = write_identity(&ca, &server_id, spec.dir, "server")?;
    let (client_id, server_id) = (client_id.to_string(), server_id.to_string());

    let server_cfg = config::render(&Bootstrap {
        ip: spec.server_ip,
        certs: &server_certs,
        root: &root,
        server_ip: spec.server_ip,
        server_id: &server_id,
        extra: spec.extra,
        inbound: Some((&client_id, spec.app)),
    });
    let client_cfg = config::render(&Bootstrap {
        ip: spec.client_ip,
        certs: &client_certs,
        root: &root,
        server_ip: spec.server_ip,
        server_id: &server_id,
        extra: spec.extra,
        inbound: None,
    });
    let mut server = spawn(spec, "server", &server_cfg, spec.server_ip)?;
    let mut client = spawn(spec, "client", &client_cfg, spec.client_ip)?;
    wait_ready(&mut server)?;
    wait_ready(&mut client)?;
    Ok(EnvoyPair {
        entry: SocketAddr::new(spec.client_ip, OUTBOUND_PORT),
        client,
        server,
    })
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
    let started = Instant::now();
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
        started,
        ready_in: Duration::ZERO,
    })
}

/// Waits until Envoy's admin `/ready` answers `LIVE`, and records how long it took since
/// the start.
fn wait_ready(envoy: &mut Envoy) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(body) = http::get_ok(envoy.admin, "/ready", Duration::from_secs(2))
            && String::from_utf8_lossy(&body)
                .lines()
                .any(|l| l.trim() == "LIVE")
        {
            envoy.ready_in = envoy.started.elapsed();
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
                "Envoy (admin {}) not ready after 60 s:\n{}",
                envoy.admin,
                std::fs::read_to_string(&envoy.log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
