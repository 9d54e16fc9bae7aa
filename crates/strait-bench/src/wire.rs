//! The wire benchmark: what one proxy's configuration costs on the discovery stream in its
//! typed protobuf form (`strait.config.v1`), against JSON of the same values (the form the
//! stream carried before it was typed: one JSON body per resource inside a protobuf `bytes`).
//!
//! Every proxy of the control-plane benchmark's mesh ([`crate::control::mesh`]) is compiled
//! once by the real compiler. Then rounds alternate the two forms (which goes first alternates
//! too): encoding every resource of every proxy (the control plane's side of a full push) and
//! decoding and applying them into a fresh configuration (the proxy's side). Each round checks
//! that what was decoded equals what was compiled, so a form that loses data cannot look fast.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use strait_config::{Kind, ProxyConfig, proto};
use strait_control::hub::Hub;
use strait_model::compile::{ProxyRef, Runtime, compile};

use crate::control::mesh::{self, Shape};

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Size of the mesh relative to the control-plane benchmark's reference mesh.
    pub scale: f64,
    /// Rounds per form.
    pub rounds: usize,
}

/// One form's figures, totals over every proxy, one entry per round.
#[derive(Clone, Debug, Default)]
pub struct Form {
    pub name: &'static str,
    /// Bytes on the wire for every proxy's resources (kind, name and body).
    pub bytes: usize,
    pub encode: Vec<Duration>,
    pub decode: Vec<Duration>,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub services: usize,
    pub proxies: usize,
    pub resources: usize,
    pub json: Form,
    pub protobuf: Form,
}

/// Generates the mesh, compiles every proxy and measures both forms. Progress on stderr.
pub fn run(opts: Options) -> anyhow::Result<Report> {
    let shape = Shape::scaled(opts.scale);
    let dir = tempfile::tempdir()?;
    let g = mesh::write(dir.path(), shape)?;
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(strait_control::metrics::Metrics::new(&mut registry));
    let hub = Hub::new(g.source(), metrics)
        .map_err(|r| anyhow::anyhow!("load rejected:\n{}", r.errors.join("\n")))?;
    let mesh = hub.mesh();
    let configs = g
        .proxies
        .iter()
        .map(|p| {
            let proxy = ProxyRef {
                cluster: "cluster0".into(),
                namespace: p.namespace.clone(),
                pod: p.pod.clone(),
            };
            compile(&mesh, &Runtime::default(), &proxy).map_err(|e| anyhow::anyhow!("{proxy}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let resources = configs.iter().map(|c| c.resources().len()).sum();
    eprintln!(
        "{} proxies compiled, {resources} resources; {} rounds per form",
        configs.len(),
        opts.rounds
    );
    let mut json = Form {
        name: "JSON in bytes (before)",
        ..Form::default()
    };
    let mut protobuf = Form {
        name: "typed protobuf",
        ..Form::default()
    };
    for round in 0..opts.rounds {
        if round % 2 == 0 {
            json_round(&configs, &mut json)?;
            protobuf_round(&configs, &mut protobuf)?;
        } else {
            protobuf_round(&configs, &mut protobuf)?;
            json_round(&configs, &mut json)?;
        }
        eprintln!(
            "round {}: JSON {:.1?} + {:.1?}, protobuf {:.1?} + {:.1?}",
            round + 1,
            json.encode[round],
            json.decode[round],
            protobuf.encode[round],
            protobuf.decode[round]
        );
    }
    Ok(Report {
        services: shape.services,
        proxies: configs.len(),
        resources,
        json,
        protobuf,
    })
}

fn protobuf_round(configs: &[ProxyConfig], form: &mut Form) -> anyhow::Result<()> {
    let started = Instant::now();
    let encoded: Vec<Vec<Vec<u8>>> = configs
        .iter()
        .map(|c| c.resources().iter().map(Message::encode_to_vec).collect())
        .collect();
    form.encode.push(started.elapsed());
    form.bytes = encoded.iter().flatten().map(Vec::len).sum();
    let started = Instant::now();
    let mut decoded = Vec::with_capacity(configs.len());
    for resources in &encoded {
        let mut cfg = ProxyConfig::default();
        for bytes in resources {
            cfg.apply(proto::Resource::decode(bytes.as_slice())?)?;
        }
        decoded.push(cfg);
    }
    form.decode.push(started.elapsed());
    same(configs, &decoded, form.name)
}

/// One resource as the JSON form carried it.
struct JsonResource {
    kind: Kind,
    name: String,
    body: Vec<u8>,
}

fn json_round(configs: &[ProxyConfig], form: &mut Form) -> anyhow::Result<()> {
    let started = Instant::now();
    let encoded = configs
        .iter()
        .map(json_encode)
        .collect::<serde_json::Result<Vec<_>>>()?;
    form.encode.push(started.elapsed());
    form.bytes = encoded
        .iter()
        .flatten()
        .map(|r| r.kind.as_str().len() + r.name.len() + r.body.len())
        .sum();
    let started = Instant::now();
    let decoded = encoded
        .iter()
        .map(|c| json_decode(c))
        .collect::<serde_json::Result<Vec<_>>>()?;
    form.decode.push(started.elapsed());
    same(configs, &decoded, form.name)
}

fn json_encode(c: &ProxyConfig) -> serde_json::Result<Vec<JsonResource>> {
    let mut out = Vec::new();
    let mut push = |kind, name: &str, body| {
        out.push(JsonResource {
            kind,
            name: name.to_string(),
            body,
        })
    };
    push(Kind::Mesh, "mesh", serde_json::to_vec(&c.mesh)?);
    encode_map(&mut push, Kind::Service, &c.services)?;
    encode_map(&mut push, Kind::Cluster, &c.clusters)?;
    encode_map(&mut push, Kind::Inbound, &c.inbound)?;
    encode_map(&mut push, Kind::Listener, &c.listeners)?;
    encode_map(&mut push, Kind::Secret, &c.secrets)?;
    if !c.authz.is_empty() {
        push(Kind::Authz, "policy", serde_json::to_vec(&c.authz)?);
    }
    Ok(out)
}

fn encode_map<T: Serialize>(
    push: &mut impl FnMut(Kind, &str, Vec<u8>),
    kind: Kind,
    m: &BTreeMap<String, T>,
) -> serde_json::Result<()> {
    for (name, v) in m {
        push(kind, name, serde_json::to_vec(v)?);
    }
    Ok(())
}

fn json_decode(resources: &[JsonResource]) -> serde_json::Result<ProxyConfig> {
    let mut c = ProxyConfig::default();
    for r in resources {
        let (name, body) = (r.name.clone(), r.body.as_slice());
        match r.kind {
            Kind::Mesh => c.mesh = serde_json::from_slice(body)?,
            Kind::Service => insert(&mut c.services, name, body)?,
            Kind::Cluster => insert(&mut c.clusters, name, body)?,
            Kind::Inbound => insert(&mut c.inbound, name, body)?,
            Kind::Listener => insert(&mut c.listeners, name, body)?,
            Kind::Secret => insert(&mut c.secrets, name, body)?,
            Kind::Authz => c.authz = serde_json::from_slice(body)?,
        }
    }
    Ok(c)
}

fn insert<T: DeserializeOwned>(
    m: &mut BTreeMap<String, T>,
    name: String,
    body: &[u8],
) -> serde_json::Result<()> {
    m.insert(name, serde_json::from_slice(body)?);
    Ok(())
}

fn same(compiled: &[ProxyConfig], decoded: &[ProxyConfig], form: &str) -> anyhow::Result<()> {
    match compiled.iter().zip(decoded).position(|(a, b)| a != b) {
        Some(i) => anyhow::bail!("{form}: proxy {i} decoded differently from what was compiled"),
        None => Ok(()),
    }
}

/// The Markdown table: per proxy, the median round and the spread.
pub fn render(r: &Report) -> String {
    let per = |d: &Duration| d.as_secs_f64() * 1e6 / r.proxies.max(1) as f64;
    let cell = |v: &[Duration]| {
        let mut us: Vec<f64> = v.iter().map(per).collect();
        us.sort_by(f64::total_cmp);
        match (us.first(), us.get(us.len() / 2), us.last()) {
            (Some(lo), Some(mid), Some(hi)) => format!("{mid:.0} ({lo:.0}-{hi:.0})"),
            _ => "-".into(),
        }
    };
    let median = |v: &[Duration]| {
        let mut us: Vec<f64> = v.iter().map(per).collect();
        us.sort_by(f64::total_cmp);
        us.get(us.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let mut out = format!(
        "{} services, {} proxies, {} resources; per proxy, median of {} rounds (min-max)\n\n\
         | form | bytes | encode µs | decode and apply µs |\n|---|---|---|---|\n",
        r.services,
        r.proxies,
        r.resources,
        r.json.encode.len()
    );
    for f in [&r.json, &r.protobuf] {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            f.name,
            f.bytes / r.proxies.max(1),
            cell(&f.encode),
            cell(&f.decode)
        ));
    }
    out.push_str(&format!(
        "| protobuf ÷ JSON | {:.2} | {:.2} | {:.2} |\n",
        r.protobuf.bytes as f64 / r.json.bytes.max(1) as f64,
        median(&r.protobuf.encode) / median(&r.json.encode),
        median(&r.protobuf.decode) / median(&r.json.decode)
    ));
    out
}
