//! `strait check trace`: why a request from a workload goes where it goes, hop by hop, as the
//! proxies on its way decide it. Each proxy answers from the configuration it holds, with the
//! code that handles real traffic (`/debug/trace`): the client's sidecar names the service,
//! the rule that matches and every endpoint it may pick; an east-west gateway hop is read
//! from that gateway's own configuration (the SNI names the cluster it relays to); each
//! destination's sidecar gives its port's mTLS mode and the authorization decision for this
//! caller. The rule's place in the manifests (file:line) comes from the mesh directory the
//! control planes read. With `--send` the request is really sent through the client's
//! sidecar, and where it went is read from that proxy's metrics.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use base64::Engine;
use serde_json::{Value, json};
use strait_local::up::state::PodState;

use super::{ANSWER, Ctx, Problem, Report, finish};
use crate::cli::CheckTraceArgs;

pub(super) fn run(ctx: &Ctx, args: &CheckTraceArgs) -> anyhow::Result<ExitCode> {
    let r = report(
        ctx,
        &Request {
            from: &args.from,
            url: &args.url,
            method: &args.method,
            headers: &args.header,
            send: args.send,
        },
    )?;
    finish(args.output, r.data, r.text, &r.problems)
}

/// A request to trace, as `check trace` takes it on the command line.
pub(crate) struct Request<'a> {
    /// The workload it comes from, named as `proxy-status` names proxies.
    pub from: &'a str,
    /// `http://<host>[:<port>]/<path>`.
    pub url: &'a str,
    pub method: &'a str,
    /// `name:value` each.
    pub headers: &'a [String],
    /// Also send it through the client's sidecar.
    pub send: bool,
}

/// The trace of `req`, hop by hop: for the terminal (`text`), as data, and what would stop it.
pub(crate) fn report(ctx: &Ctx, req: &Request<'_>) -> anyhow::Result<Report> {
    if req.send && !ctx.mesh.is_local() {
        bail!(
            "check trace --send sends the request from the client's network, which only a mesh running on this machine (strait up) lets it do; without --send the trace reads the proxies' own configuration, also through the API server"
        );
    }
    let client = super::sidecar_client(ctx, req.from)?;
    let (authority, path) = split_url(req.url)?;
    let dump = ctx.proxy_json(client, "/config_dump")?;
    let trust_domain = dump["config"]["mesh"]["trust_domain"]
        .as_str()
        .unwrap_or("cluster.local")
        .to_string();
    let identity = |p: &PodState| {
        format!(
            "spiffe://{trust_domain}/ns/{}/sa/{}",
            p.namespace, p.service_account
        )
    };
    let caller = identity(client);
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| match h.split_once(':') {
            Some((k, v)) => Ok((k.trim().to_ascii_lowercase(), v.trim().to_string())),
            None => bail!("--header {h}: expected name:value"),
        })
        .collect::<anyhow::Result<_>>()?;
    let question =
        json!({"authority": authority, "method": req.method, "path": path, "headers": headers});
    let mut problems = Vec::new();
    let mut hops = Vec::new();
    let mut text = format!(
        "{} http://{authority}{path} from {} ({caller})\n",
        req.method,
        name(client)
    );

    // 1. The client's sidecar.
    let answer = ask(ctx, client, &question)?;
    let out = &answer["outbound"];
    let service = out["service"].as_str().unwrap_or("").to_string();
    text.push_str(&format!(
        "\n1. sidecar {} (cluster {}, network {}), configuration version {}\n",
        name(client),
        client.cluster,
        client.network,
        answer["version"].as_str().unwrap_or("-")
    ));
    if service.is_empty() {
        let why = out["unmatched"]
            .as_str()
            .unwrap_or("no service matches")
            .to_string();
        text.push_str(&format!("   {why}\n"));
        problems.push(problem(&name(client), &authority, why));
        hops.push(json!({"hop": "client", "proxy": name(client), "outbound": out}));
        return Ok(Report {
            data: json!({"request": question, "hops": hops}),
            text,
            problems,
        });
    }
    let route = describe_route(ctx, client, out);
    text.push_str(&format!(
        "   service   {service} ({})\n",
        out["protocol"].as_str().unwrap_or("")
    ));
    text.push_str(&format!("   route     {route}\n"));
    if out["rule"].is_null() && out["clusters"].as_array().is_none_or(Vec::is_empty) {
        problems.push(problem(
            &name(client),
            &service,
            "no rule of the service matches this request: the sidecar answers 404".into(),
        ));
    }
    let mut destinations: Vec<(PodState, u16, Value)> = Vec::new();
    for c in out["clusters"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "   cluster   {} (weight {}), TLS {}, SNI {}, LB {}{}\n",
            c["name"].as_str().unwrap_or(""),
            c["weight"],
            c["tls"].as_str().unwrap_or("-"),
            c["sni"].as_str().unwrap_or("-"),
            c["lb"].as_str().unwrap_or("-"),
            c["destination_rule"]
                .as_str()
                .map(|d| format!(", DestinationRule {d}"))
                .unwrap_or_default(),
        ));
        let endpoints = c["endpoints"].as_array().cloned().unwrap_or_default();
        if endpoints.is_empty() {
            problems.push(problem(
                &name(client),
                &service,
                format!(
                    "cluster {} has no endpoints: requests to it fail with 503",
                    c["name"].as_str().unwrap_or("")
                ),
            ));
        }
        for e in &endpoints {
            text.push_str(&format!("   endpoint  {}\n", endpoint_line(e)));
            if e["via_gateway"] == true {
                let (hop, finals) = gateway_hop(ctx, c, e, &mut problems);
                text.push_str(&hop.0);
                hops.push(hop.1);
                destinations.extend(finals);
            } else if let Some(pod) = pod_at(ctx, e) {
                destinations.push((pod.clone(), port_of(e), c.clone()));
            }
        }
    }
    hops.insert(
        0,
        json!({"hop": "client", "proxy": name(client), "cluster": client.cluster,
        "network": client.network, "identity": caller, "outbound": out, "route": route}),
    );

    // The destinations' sidecars: mTLS, identity, authorization for this caller.
    for (n, (pod, port, cluster)) in (2..).zip(&destinations) {
        let q = json!({"authority": authority, "method": req.method, "path": path, "headers": headers,
            "port": port, "principal": caller, "source": client.ip.to_string()});
        let server = identity(pod);
        let expected = cluster["identities"].as_array().is_none_or(|ids| {
            ids.is_empty() || ids.iter().any(|i| i == &Value::String(server.clone()))
        });
        text.push_str(&format!(
            "\n{n}. destination {} (cluster {}, network {}), port {port}\n",
            name(pod),
            pod.cluster,
            pod.network
        ));
        if !pod.sidecar {
            text.push_str("   no sidecar: plaintext, no policy enforced\n");
            hops.push(json!({"hop": "destination", "proxy": name(pod), "sidecar": false}));
            continue;
        }
        let answer = match ask(ctx, pod, &q) {
            Ok(a) => a,
            Err(e) => {
                problems.push(problem(
                    &name(pod),
                    &service,
                    format!("its sidecar did not answer: {e:#}"),
                ));
                continue;
            }
        };
        let inbound = &answer["inbound"];
        text.push_str(&format!(
            "   identity  {server}{}\n",
            if expected {
                ""
            } else {
                " (NOT one the client accepts for this service)"
            }
        ));
        if !expected {
            problems.push(problem(&name(pod), &service, format!("presents {server}, which the client's cluster does not list: the client refuses the connection")));
        }
        if inbound["served"] != true {
            problems.push(problem(
                &name(pod),
                &service,
                format!("its sidecar has no inbound port {port}"),
            ));
        }
        let authz = &inbound["authorization"];
        let decision = authz["decision"].as_str().unwrap_or("-");
        text.push_str(&format!(
            "   mTLS      {}\n   policy    {decision}{}\n",
            inbound["mtls"].as_str().unwrap_or("-"),
            match (
                authz["policy"].as_str().filter(|p| !p.is_empty()),
                authz["policies"] == true
            ) {
                (Some(p), _) => format!(" ({} {p})", authz["reason"].as_str().unwrap_or("")),
                (None, false) => " (no AuthorizationPolicy applies)".into(),
                (None, true) => String::new(),
            }
        ));
        if decision == "deny" {
            problems.push(problem(
                &name(pod),
                &service,
                format!(
                    "AuthorizationPolicy {} denies this caller: 403",
                    authz["policy"].as_str().unwrap_or("")
                ),
            ));
        }
        hops.push(json!({"hop": "destination", "proxy": name(pod), "cluster": pod.cluster,
            "network": pod.network, "identity": server, "identity_expected": expected, "inbound": inbound}));
    }
    if destinations.is_empty() && !service.is_empty() {
        problems.push(problem(
            &name(client),
            &service,
            "no endpoint leads to a pod: requests fail with 503".into(),
        ));
    }

    let mut sent = Value::Null;
    if req.send {
        let (s, line) = send(ctx, client, &authority, &path, &service)?;
        text.push_str(&format!("\nsent: {line}\n"));
        if s["status"].as_u64().is_none_or(|c| c >= 500) {
            problems.push(problem(
                &name(client),
                &service,
                format!("the request failed: {line}"),
            ));
        }
        sent = s;
    }
    Ok(Report {
        data: json!({"request": question, "caller": caller, "hops": hops, "sent": sent}),
        text,
        problems,
    })
}

fn name(p: &PodState) -> String {
    format!("{}.{}", p.name, p.namespace)
}

fn problem(subject: &str, service: &str, cause: String) -> Problem {
    Problem {
        subject: subject.into(),
        service: service.into(),
        cause,
    }
}

/// `http://host[:port]/path?query` as (authority, path).
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if rest.starts_with("https://") || rest.is_empty() {
        bail!("{url}: give an http:// URL (the sidecar originates mTLS itself)");
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((authority.to_string(), path.to_string()))
}

/// Asks a proxy's `/debug/trace`.
fn ask(ctx: &Ctx, pod: &PodState, question: &Value) -> anyhow::Result<Value> {
    let q = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(question.to_string());
    ctx.proxy_json(pod, &format!("/debug/trace?q={q}"))
}

/// The rule that matched, with its place in the manifests.
fn describe_route(ctx: &Ctx, client: &PodState, out: &Value) -> String {
    let rule = &out["rule"];
    let Some(vs) = out["virtual_service"].as_str() else {
        return "default route (no VirtualService for this host and port)".into();
    };
    let rule_name = rule["name"].as_str().unwrap_or("");
    let at = locate_rule(ctx, client, vs, rule_name).unwrap_or_else(|| "position unknown".into());
    match rule["index"].as_u64() {
        Some(_) => format!(
            "rule \"{rule_name}\" of VirtualService {vs} ({at}){}",
            rule["match"]
                .as_u64()
                .map(|m| format!(", match block {m}"))
                .unwrap_or_default()
        ),
        None => format!("VirtualService {vs} ({at}) holds no rule that matches"),
    }
}

/// `file:line` of the VirtualService rule `rule` (its name, or `<vs>.<ns>/<index>`), in the
/// config cluster of the client's cluster: read from the mesh directory of a local run, or from
/// that cluster's API server.
fn locate_rule(ctx: &Ctx, client: &PodState, vs: &str, rule: &str) -> Option<String> {
    let (ns, vs_name) = vs.split_once('/')?;
    let config = ctx
        .mesh
        .st
        .clusters
        .iter()
        .find(|c| c.name == client.cluster)
        .map(|c| c.control_plane_of.clone())?;
    let input = ctx.runtime.block_on(ctx.mesh.routing_input(&config))?;
    let (mesh, _) = strait_model::build(input, &strait_model::BuildOptions::default());
    let cluster = mesh
        .cluster_by_name(&config)
        .or_else(|| mesh.cluster_by_name(&client.cluster))?;
    let (_, o) = cluster.find(strait_api::Kind::VirtualService, ns, vs_name)?;
    let spec = &o.virtual_service()?.spec;
    let index = rule
        .rsplit_once('/')
        .filter(|(prefix, _)| *prefix == format!("{vs_name}.{ns}"))
        .and_then(|(_, i)| i.parse::<usize>().ok())
        .or_else(|| spec.http.iter().position(|r| r.name == rule))?;
    Some(
        mesh.sources
            .display(o.locate(&format!("spec.http[{index}]")))
            .to_string(),
    )
}

fn endpoint_line(e: &Value) -> String {
    let w = &e["workload"];
    let mut line = format!(
        "{}:{}  weight {}  cluster {}  network {}",
        e["address"].as_str().unwrap_or(""),
        e["port"],
        e["weight"],
        w["cluster"].as_str().unwrap_or("-"),
        w["network"].as_str().unwrap_or("-"),
    );
    if e["via_gateway"] == true {
        line.push_str("  via that network's east-west gateway");
    } else {
        line.push_str(&format!(
            "  {} {}",
            w["pod"].as_str().unwrap_or(""),
            w["version"].as_str().unwrap_or("")
        ));
    }
    if let Some(l) = e["locality"].as_str().filter(|l| !l.is_empty()) {
        line.push_str(&format!("  locality {l}"));
    }
    if let Some(p) = e["priority"].as_u64().filter(|p| *p > 0) {
        line.push_str(&format!(
            "  priority {p} (takes traffic only as the levels before it fail)"
        ));
    }
    if e["unhealthy"] == true {
        line.push_str("  UNHEALTHY (avoided while a healthy one is left)");
    }
    if let Some(ms) = e["ejected_ms"].as_u64() {
        line.push_str(&format!(
            "  EJECTED by outlier detection ({:.1}s left)",
            ms as f64 / 1000.0
        ));
    }
    line
}

fn port_of(e: &Value) -> u16 {
    e["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0)
}

fn pod_at<'a>(ctx: &'a Ctx, e: &Value) -> Option<&'a PodState> {
    let address = e["address"].as_str()?;
    ctx.mesh
        .st
        .pods
        .iter()
        .find(|p| p.ip.to_string() == address || p.app_ip.to_string() == address)
}

type Hop = ((String, Value), Vec<(PodState, u16, Value)>);

/// The east-west gateway an endpoint stands for: how it relays the client's SNI, and to which
/// pods.
fn gateway_hop(ctx: &Ctx, cluster: &Value, e: &Value, problems: &mut Vec<Problem>) -> Hop {
    let address = e["address"].as_str().unwrap_or("");
    let port = port_of(e);
    let sni = cluster["sni"].as_str().unwrap_or("");
    let lb = ctx
        .mesh
        .st
        .load_balancers
        .iter()
        .find(|l| l.address.to_string() == address);
    let gateway = lb.and_then(|l| {
        ctx.mesh
            .st
            .pods
            .iter()
            .find(|p| p.gateway && p.cluster == l.cluster && p.namespace == l.namespace)
    });
    let Some(gw) = gateway else {
        let why = format!("{address}:{port} is no east-west gateway of the running mesh");
        problems.push(problem("gateway", sni, why.clone()));
        return (
            (
                format!("   gateway   {why}\n"),
                json!({"hop": "gateway", "address": address, "error": why}),
            ),
            Vec::new(),
        );
    };
    let mut text = format!(
        "   -> east-west gateway {} (cluster {}, network {}) at {address}:{port}\n",
        name(gw),
        gw.cluster,
        gw.network
    );
    let dump = match ctx.proxy_json(gw, "/config_dump") {
        Ok(d) => d,
        Err(e) => {
            let why = format!("its configuration could not be read: {e:#}");
            problems.push(problem(&name(gw), sni, why.clone()));
            return (
                (
                    text,
                    json!({"hop": "gateway", "proxy": name(gw), "error": why}),
                ),
                Vec::new(),
            );
        }
    };
    let listener = dump["config"]["listeners"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .find(|l| {
            l["port"].as_u64() == Some(u64::from(port))
                || l["bind_port"].as_u64() == Some(u64::from(port))
        });
    let fail = |why: String, mut text: String, problems: &mut Vec<Problem>| -> Hop {
        problems.push(problem(&name(gw), sni, why.clone()));
        text.push_str(&format!("      {why}\n"));
        let value = json!({"hop": "gateway", "proxy": name(gw), "error": why});
        ((text, value), Vec::new())
    };
    let Some(listener) = listener else {
        let why = format!("it has no listener on {port}: the connection is refused");
        return fail(why, text, problems);
    };
    let gateways: Vec<&str> = listener["gateways"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let relayed = &dump["config"]["clusters"][sni];
    if relayed.is_null() {
        let why = format!(
            "Gateway {} on {port} exposes no service with SNI {sni}: the gateway refuses it",
            gateways.join(", ")
        );
        return fail(why, text, problems);
    }
    text.push_str(&format!(
        "      Gateway {} relays SNI {sni} untouched (mTLS stays end to end) to\n",
        gateways.join(", ")
    ));
    let mut finals = Vec::new();
    for ep in relayed["endpoints"].as_array().into_iter().flatten() {
        text.push_str(&format!("      endpoint  {}\n", endpoint_line(ep)));
        if let Some(pod) = pod_at(ctx, ep) {
            finals.push((pod.clone(), port_of(ep), cluster.clone()));
        }
    }
    let value = json!({"hop": "gateway", "proxy": name(gw), "cluster": gw.cluster, "network": gw.network,
        "address": format!("{address}:{port}"), "sni": sni, "gateways": gateways, "endpoints": relayed["endpoints"]});
    ((text, value), finals)
}

/// Sends the request through the client's sidecar; where it went, from the sidecar's own
/// metrics (reporter source) before and after.
fn send(
    ctx: &Ctx,
    client: &PodState,
    authority: &str,
    path: &str,
    service: &str,
) -> anyhow::Result<(Value, String)> {
    let host = service.rsplit_once(':').map_or(service, |(h, _)| h);
    let before = served_by(ctx, client, host)?;
    let result = ctx.runtime.block_on(strait_local::fetch::get_via(
        &client.vantage(),
        client.outbound(),
        authority,
        path,
        ANSWER,
    ));
    let after = served_by(ctx, client, host)?;
    let went: Vec<&String> = after
        .iter()
        .filter(|(k, n)| before.get(*k).is_none_or(|b| *n > b))
        .map(|(k, _)| k)
        .collect();
    let to = if went.is_empty() {
        "no destination counted".to_string()
    } else {
        went.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(match result {
        Ok((status, _)) => (
            json!({"status": status.as_u16(), "served_by": went}),
            format!("{status}, served by {to}"),
        ),
        Err(e) => (
            json!({"status": null, "error": e.to_string(), "served_by": went}),
            format!("no answer: {e}"),
        ),
    })
}

/// The client sidecar's request counts to `host`, by "workload in cluster (code)".
fn served_by(ctx: &Ctx, client: &PodState, host: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    let text = super::proxy_metrics(ctx, client)?;
    let mut out = BTreeMap::new();
    for (labels, value) in super::lb::source_requests(&text, host) {
        let key = format!(
            "{} in {} ({})",
            labels
                .get("destination_workload")
                .map_or("unknown", String::as_str),
            labels
                .get("destination_cluster")
                .map_or("unknown", String::as_str),
            labels.get("response_code").map_or("-", String::as_str)
        );
        *out.entry(key).or_default() += value;
    }
    Ok(out)
}
