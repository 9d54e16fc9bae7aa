//! The scale section: a strait mesh whose sidecars hold `--services` extra services, and an
//! Envoy pair holding the same clusters and routes. Memory idle, after config dumps and
//! under load; then strait's time to ready, two ways: a sidecar restarted (from its process
//! start to `/healthz/ready` answering 200, which it does only once it holds a certificate
//! and the control plane's full first push), and a live change (from writing a manifest to
//! every sidecar having acknowledged the new generation).

use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::echo::EchoApp;
use super::load::Shape;
use super::measure::{self, Measured};
use super::procs::{self, Memory};
use super::services::{self, ExtraService};
use super::strait_mesh::StraitMesh;
use super::{Bench, Lane, Path, envoy, http};

/// Times each readiness figure is taken.
const READINESS_TRIES: usize = 3;

/// One proxy pair at scale; lists hold the client proxy, then the server proxy.
#[derive(Clone, Debug, Default)]
pub struct ScaleSide {
    pub idle: Vec<Memory>,
    pub dump_settled: Vec<Memory>,
    /// Under load: latency, and the proxies' peak memory.
    pub load: Measured,
    /// From starting the process to ready (strait: `strait up` until every proxy is ready;
    /// Envoy: each process until its admin says LIVE), in seconds.
    pub start_to_ready: Vec<f64>,
}

#[derive(Clone, Debug, Default)]
pub struct ScaleResults {
    pub services: usize,
    pub strait: ScaleSide,
    pub envoy: ScaleSide,
    /// What the strait client sidecar's config dump holds.
    pub strait_services_held: usize,
    pub strait_clusters_held: usize,
    pub dump_bytes: usize,
    /// A restarted sidecar: process start to ready, seconds.
    pub restart_to_ready: Vec<f64>,
    /// A manifest written to every sidecar's ACK, seconds.
    pub change_to_ack: Vec<f64>,
    /// Problems met (a sidecar not ready, a change never acknowledged).
    pub problems: Vec<String>,
}

impl ScaleResults {
    pub fn of(&self, path: Path) -> &ScaleSide {
        match path {
            Path::Envoy => &self.envoy,
            _ => &self.strait,
        }
    }
}

pub(super) fn run(bench: &Bench<'_>, dir: &FsPath, echo: &EchoApp) -> anyhow::Result<ScaleResults> {
    let o = bench.opts;
    // The same network as the other sections: their mesh and Envoys are gone by now.
    let net = o.net;
    let extra = services::extra_services(o.services);
    let mut out = ScaleResults {
        services: o.services,
        ..ScaleResults::default()
    };
    eprintln!(
        "scale: starting a strait mesh holding {} services on 127.{net}.0.0/16",
        o.services
    );
    let manifests = format!("{}{}", services::namespace(), services::manifests(&extra));
    let mesh = StraitMesh::start(&o.strait, dir, net, &manifests)?;
    out.strait.start_to_ready = vec![mesh.up_in.as_secs_f64()];
    eprintln!("scale: starting an Envoy pair holding the same");
    let envoys = envoy::start_pair(&envoy::PairSpec {
        envoy: &o.envoy,
        dir: &dir.join("envoy"),
        ca_dir: &mesh.ca_dir(),
        trust_domain: "cluster.local",
        client_ip: format!("127.{net}.200.1").parse()?,
        server_ip: format!("127.{net}.200.2").parse()?,
        app: echo.addr,
        concurrency: 2,
        extra: &extra,
    })?;
    out.envoy.start_to_ready = vec![
        envoys.client.ready_in.as_secs_f64(),
        envoys.server.ready_in.as_secs_f64(),
    ];
    let lanes = || -> anyhow::Result<[Lane; 2]> {
        Ok([
            super::strait_lane(bench, &mesh)?,
            super::envoy_lane(bench, &envoys, echo),
        ])
    };
    let memory = |lane: &Lane| -> anyhow::Result<Vec<Memory>> {
        lane.proxies.iter().map(|p| procs::memory(*p)).collect()
    };

    std::thread::sleep(o.settle);
    for lane in lanes()? {
        let idle = memory(&lane)?;
        side(&mut out, lane.path).idle = idle;
    }
    // Config dumps: strait's also says what the sidecar holds.
    for lane in lanes()? {
        for admin in &lane.admins {
            let body = http::get_ok(*admin, "/config_dump", Duration::from_secs(30))?;
            out.dump_bytes = out.dump_bytes.max(body.len());
            if lane.path == Path::Strait && Some(admin) == lane.admins.first() {
                let (services, clusters) = held(&body)?;
                out.strait_services_held = services;
                out.strait_clusters_held = clusters;
            }
        }
    }
    std::thread::sleep(o.settle);
    for lane in lanes()? {
        let settled = memory(&lane)?;
        side(&mut out, lane.path).dump_settled = settled;
    }
    for lane in lanes()? {
        let m = measure::run(
            bench,
            &lane,
            Shape::FixedRate(o.rate),
            o.connections,
            o.warmup,
            o.duration,
            true,
        )?;
        eprintln!(
            "scale: {} at {} req/s: {}",
            lane.path.name(),
            o.rate,
            measure::summary(&m)
        );
        side(&mut out, lane.path).load = m;
    }
    drop(envoys);

    for _ in 0..READINESS_TRIES {
        match restart_to_ready(&mesh, bench.ticks) {
            Ok(s) => out.restart_to_ready.push(s),
            Err(e) => out.problems.push(format!("restarted sidecar: {e:#}")),
        }
    }
    for i in 0..READINESS_TRIES {
        match change_to_ack(&mesh, i) {
            Ok(s) => out.change_to_ack.push(s),
            Err(e) => out.problems.push(format!("live change: {e:#}")),
        }
    }
    for p in &out.problems {
        eprintln!("scale: {p}");
    }
    eprintln!(
        "scale: restart to ready {:?} s, change to ACK {:?} s",
        out.restart_to_ready, out.change_to_ack
    );
    drop(mesh);
    Ok(out)
}

fn side(out: &mut ScaleResults, path: Path) -> &mut ScaleSide {
    match path {
        Path::Envoy => &mut out.envoy,
        _ => &mut out.strait,
    }
}

/// Services and clusters in a strait config dump.
fn held(dump: &[u8]) -> anyhow::Result<(usize, usize)> {
    let v: serde_json::Value = serde_json::from_slice(dump).context("config dump is not JSON")?;
    let count = |key: &str| {
        v.pointer(&format!("/config/{key}"))
            .and_then(serde_json::Value::as_object)
            .map_or(0, serde_json::Map::len)
    };
    Ok((count("services"), count("clusters")))
}

/// Stops the client sidecar and times its successor from process start to ready.
fn restart_to_ready(mesh: &StraitMesh, ticks: f64) -> anyhow::Result<f64> {
    let (client, _) = mesh.pods()?;
    let old = client.proxy_pid.context("no client sidecar pid")?;
    let health = SocketAddr::new(client.ip, 15021);
    kill(Pid::from_raw(i32::try_from(old)?), Signal::SIGTERM)
        .with_context(|| format!("stopping the client sidecar (pid {old})"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let new = loop {
        if let Ok((c, _)) = mesh.pods()
            && let Some(pid) = c.proxy_pid
            && pid != old
        {
            break pid;
        }
        if Instant::now() > deadline {
            bail!("no new client sidecar 30 s after stopping pid {old}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    loop {
        if let Ok((200, _)) = http::get(health, "/healthz/ready", Duration::from_secs(1)) {
            let ready_at = procs::uptime()?;
            let started_at = procs::start_ticks(new)? as f64 / ticks;
            return Ok((ready_at - started_at).max(0.0));
        }
        if Instant::now() > deadline {
            bail!("the restarted client sidecar (pid {new}) not ready within 30 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Writes a manifest adding one more service and times until every sidecar acknowledged the
/// generation that holds it.
fn change_to_ack(mesh: &StraitMesh, i: usize) -> anyhow::Result<f64> {
    let debug = mesh.control_plane_debug()?;
    let (generation, _) = sync_state(debug)?;
    let svc = ExtraService {
        name: format!("changed-{i}"),
        ip: std::net::Ipv4Addr::new(10, 99, 0, 1 + (i % 250) as u8),
    };
    let written = Instant::now();
    mesh.write_manifest("change.yaml", &services::manifests(&[svc]))?;
    let deadline = written + Duration::from_secs(30);
    loop {
        let (now, all_acked) = sync_state(debug)?;
        if now > generation && all_acked {
            return Ok(written.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            bail!("generation {generation} → not acknowledged by every proxy within 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The control plane's generation, and whether every connected proxy acknowledged it.
fn sync_state(debug: SocketAddr) -> anyhow::Result<(u64, bool)> {
    let body = http::get_ok(debug, "/debug/syncz", Duration::from_secs(5))?;
    parse_syncz(&body)
}

fn parse_syncz(body: &[u8]) -> anyhow::Result<(u64, bool)> {
    let v: serde_json::Value = serde_json::from_slice(body).context("syncz is not JSON")?;
    let generation = v
        .get("generation")
        .and_then(serde_json::Value::as_u64)
        .context("syncz has no generation")?;
    let want = generation.to_string();
    let proxies = v
        .get("proxies")
        .and_then(serde_json::Value::as_array)
        .context("syncz has no proxies")?;
    let all = !proxies.is_empty()
        && proxies.iter().all(|p| {
            p.get("acked_version").and_then(serde_json::Value::as_str) == Some(want.as_str())
        });
    Ok((generation, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncz_generation_and_acks() {
        let body = br#"{"generation": 3, "proxies": [
            {"proxy": "a", "acked_version": "3", "sent_version": "3"},
            {"proxy": "b", "acked_version": "2", "sent_version": "3"}]}"#;
        assert_eq!(parse_syncz(body).unwrap(), (3, false));
        let done = br#"{"generation": 3, "proxies": [{"acked_version": "3"}]}"#;
        assert_eq!(parse_syncz(done).unwrap(), (3, true));
        assert_eq!(
            parse_syncz(br#"{"generation": 1, "proxies": []}"#).unwrap(),
            (1, false)
        );
        assert!(parse_syncz(b"{}").is_err());
    }

    #[test]
    fn what_a_dump_holds() {
        let dump = br#"{"version": "1", "config": {"services": {"a": {}, "b": {}}, "clusters": {"x": {}}}}"#;
        assert_eq!(held(dump).unwrap(), (2, 1));
        assert_eq!(held(br#"{"config": {}}"#).unwrap(), (0, 0));
        assert!(held(b"not json").is_err());
    }
}
