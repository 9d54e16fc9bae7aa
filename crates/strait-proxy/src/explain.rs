//! `/debug/trace` on the admin port: what this proxy would do with a request, decided by the
//! same code that decides for real traffic, on the configuration it holds now. `strait check
//! trace` asks each proxy on a request's way and puts the answers together.
//!
//! The question is one query parameter, `q`: base64url (no padding) of a JSON object, so that
//! paths and header values need no escaping rules of their own. As a client (outbound): the
//! service the authority resolves to, the rule that matches (index, name, VirtualService),
//! its action, and every cluster it may send to with that cluster's endpoints, weights,
//! networks and health. As a server (inbound, when `port` is given): the port's mTLS mode and
//! the authorization decision for a caller with `principal` from `source`.

use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use strait_config::{HttpAction, WeightedCluster};

use crate::authz::{Attributes, Decision, HttpAttributes};
use crate::balance::{Balancer, OutlierState};
use crate::body::{self, Body};
use crate::context::Shared;
use crate::routing::{self, RequestView};
use crate::snapshot::Snapshot;

/// The largest question accepted (its base64 text).
const MAX_QUESTION: usize = 16 * 1024;

/// A request to explain.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// `host[:port]` (port 80 when absent).
    #[serde(default)]
    pub authority: String,
    #[serde(default = "get")]
    pub method: String,
    /// Path, with its query if any.
    #[serde(default = "slash")]
    pub path: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Ask as a server: the port the request arrives on.
    #[serde(default)]
    pub port: Option<u16>,
    /// The caller's SPIFFE ID, as mTLS would prove it.
    #[serde(default)]
    pub principal: Option<String>,
    /// The caller's address.
    #[serde(default)]
    pub source: Option<IpAddr>,
}

fn get() -> String {
    "GET".into()
}

fn slash() -> String {
    "/".into()
}

/// Answers `/debug/trace?q=...`.
pub fn answer(px: &Shared, query: Option<&str>) -> http::Response<Body> {
    let q = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("q="))
        .unwrap_or("");
    match parse(q) {
        Ok(question) => {
            let snap = px.snapshot.load_full();
            let v = explain(&snap, px.pod_ip, &question);
            let mut r = body::text(StatusCode::OK, v.to_string());
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => body::text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

/// Decodes the question; the error says what is wrong with it.
pub fn parse(q: &str) -> Result<Question, String> {
    if q.is_empty() {
        return Err("missing q: base64url of a JSON question".into());
    }
    if q.len() > MAX_QUESTION {
        return Err(format!("q is longer than {MAX_QUESTION} bytes"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(q)
        .map_err(|e| format!("q is not base64url: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("q is not a question: {e}"))
}

/// What the proxy holding `snap` does with the question.
pub fn explain(snap: &Snapshot, pod_ip: IpAddr, q: &Question) -> Value {
    let mut headers = HeaderMap::new();
    for (k, v) in &q.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(k, v);
        }
    }
    let (path, query) = match q.path.split_once('?') {
        Some((p, qs)) => (p, Some(qs)),
        None => (q.path.as_str(), None),
    };
    let view = RequestView {
        method: &q.method,
        path,
        query,
        authority: &q.authority,
        scheme: "http",
        headers: &headers,
        claims: None,
    };
    json!({
        "version": snap.version,
        "outbound": outbound(snap, &view),
        "inbound": q.port.map(|port| inbound(snap, pod_ip, port, q, &view)),
    })
}

fn outbound(snap: &Snapshot, view: &RequestView<'_>) -> Value {
    if view.authority.is_empty() {
        return Value::Null;
    }
    let (host, port) = match view.authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().unwrap_or(80)),
        None => (view.authority, 80),
    };
    let Some(sp) = snap.resolve(host, port) else {
        let allow = snap.config.mesh.allow_any_outbound;
        return json!({
            "service": null,
            "unmatched": if allow {
                "no service has this host and port: the request is passed through to the address the name resolves to (outboundTrafficPolicy ALLOW_ANY)"
            } else {
                "no service has this host and port: the request is refused (outboundTrafficPolicy REGISTRY_ONLY)"
            },
        });
    };
    let key = format!("{}:{}", sp.host, sp.port);
    // HTTP rules decide for HTTP requests; the weighted clusters of `tcp` are for connections
    // that are not HTTP.
    let (rule, weighted): (Value, Vec<&WeightedCluster>) = if !sp.http.is_empty() {
        match routing::select(&sp.http, view, &snap.regexes) {
            Some((r, m)) => {
                let index = sp.http.iter().position(|x| std::ptr::eq(x, r));
                let matched = m.and_then(|m| r.matches.iter().position(|x| std::ptr::eq(x, m)));
                let weighted = match &r.action {
                    HttpAction::Route(ws) => ws.iter().collect(),
                    _ => Vec::new(),
                };
                (
                    json!({"index": index, "name": r.name, "match": matched, "action": r.action,
                           "timeout_ms": r.timeout_ms, "retries": r.retries}),
                    weighted,
                )
            }
            None => (Value::Null, Vec::new()),
        }
    } else {
        (Value::Null, sp.tcp.iter().collect())
    };
    let clusters: Vec<Value> = weighted
        .iter()
        .map(|w| match snap.cluster(&w.cluster) {
            Some((c, state)) => json!({
                "name": c.name, "weight": w.weight, "subset": c.subset, "lb": c.lb,
                "tls": c.tls, "sni": c.sni, "identities": c.identities,
                "destination_rule": c.destination_rule, "outlier_detection": c.outlier,
                "locality_weights": c.locality_weights,
                "endpoints": endpoints(c, &state.balancer),
            }),
            None => json!({"name": w.cluster, "weight": w.weight, "missing": true}),
        })
        .collect();
    json!({
        "service": key,
        "protocol": sp.protocol,
        "virtual_service": sp.virtual_service,
        "rule": rule,
        "clusters": clusters,
    })
}

/// A cluster's endpoints as configured, each with what outlier detection thinks of it now.
fn endpoints(c: &strait_config::Cluster, balancer: &Balancer) -> Vec<Value> {
    c.endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                let ejected = match balancer.outlier_state(i) {
                    OutlierState::Ok => Value::Null,
                    OutlierState::Ejected(ms) => json!(ms),
                };
                m.insert("ejected_ms".into(), ejected);
            }
            v
        })
        .collect()
}

fn inbound(
    snap: &Snapshot,
    pod_ip: IpAddr,
    port: u16,
    q: &Question,
    view: &RequestView<'_>,
) -> Value {
    let Some(cfg) = snap
        .config
        .inbound
        .values()
        .find(|p| p.port == u32::from(port))
    else {
        return json!({"port": port, "served": false});
    };
    let source = q.source.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let http = cfg.protocol.is_http().then_some(HttpAttributes {
        method: view.method,
        path: view.path,
        host: view.authority,
        headers: view.headers,
        auth: None,
    });
    let attrs = Attributes {
        source_ip: source,
        remote_ip: source,
        principal: q.principal.as_deref(),
        destination: SocketAddr::new(pod_ip, port),
        sni: None,
        http,
    };
    let (decision, policy, reason) = match snap.authz.check(&attrs) {
        Decision::Allow => ("allow", String::new(), ""),
        Decision::Deny { policy, reason } => ("deny", policy, reason.as_str()),
    };
    json!({
        "port": port, "served": true, "protocol": cfg.protocol, "mtls": cfg.mtls,
        "services": cfg.services,
        "authorization": {
            "decision": decision, "policy": policy, "reason": reason,
            "audited": snap.authz.audited(&attrs),
            "policies": !snap.authz.is_empty(),
        },
    })
}

#[cfg(test)]
mod tests {
    use strait_config::{
        AppProtocol, Cluster, HttpRule, LbPolicy, ProxyConfig, RequestMatch, Retry, ServicePort,
        StrMatch,
    };

    use super::*;

    fn cluster(name: &str, address: &str) -> Cluster {
        crate::test_support::cluster(name, LbPolicy::RoundRobin, &[address.to_string()])
    }

    fn rule(name: &str, prefix: Option<&str>, to: &str) -> HttpRule {
        HttpRule {
            name: name.into(),
            matches: prefix
                .map(|p| RequestMatch {
                    uri: Some(StrMatch::Prefix(p.into())),
                    ..RequestMatch::default()
                })
                .into_iter()
                .collect(),
            action: HttpAction::Route(vec![WeightedCluster {
                cluster: to.into(),
                weight: 100,
                ..WeightedCluster::default()
            }]),
            timeout_ms: None,
            retries: Retry::istio_default(),
            policy: Default::default(),
        }
    }

    /// A proxy with web.shop:80 routing /api to one cluster and the rest to another (its
    /// `tcp` fallback names a third, which an HTTP request never takes).
    fn snapshot() -> Snapshot {
        let mut cfg = ProxyConfig::default();
        cfg.mesh.domain = "cluster.local".into();
        cfg.mesh.node.namespace = "shop".into();
        for (n, a) in [
            ("api", "10.0.0.1"),
            ("rest", "10.0.0.2"),
            ("raw", "10.0.0.3"),
        ] {
            cfg.clusters.insert(n.into(), cluster(n, a));
        }
        cfg.services.insert(
            "web.shop.svc.cluster.local:80".into(),
            ServicePort {
                host: "web.shop.svc.cluster.local".into(),
                port: 80,
                namespace: "shop".into(),
                protocol: AppProtocol::Http,
                http: vec![rule("api", Some("/api"), "api"), rule("rest", None, "rest")],
                tcp: vec![WeightedCluster {
                    cluster: "raw".into(),
                    weight: 100,
                    ..WeightedCluster::default()
                }],
                virtual_service: Some("shop/web".into()),
                addresses: Vec::new(),
            },
        );
        Snapshot::build("7".into(), cfg, &Snapshot::empty()).expect("valid")
    }

    fn ask(path: &str, authority: &str) -> Value {
        let q = Question {
            authority: authority.into(),
            method: "GET".into(),
            path: path.into(),
            headers: Vec::new(),
            port: None,
            principal: None,
            source: None,
        };
        explain(&snapshot(), IpAddr::from([10, 0, 0, 9]), &q)
    }

    #[test]
    fn the_routing_code_answers_which_rule_and_cluster() {
        let a = ask("/api/v1?x=1", "web:80");
        let out = &a["outbound"];
        assert_eq!(a["version"], "7");
        assert_eq!(out["service"], "web.shop.svc.cluster.local:80");
        assert_eq!(out["virtual_service"], "shop/web");
        assert_eq!(out["rule"]["index"], 0);
        assert_eq!(out["rule"]["match"], 0);
        assert_eq!(out["clusters"][0]["name"], "api");
        assert_eq!(out["clusters"][0]["endpoints"][0]["address"], "10.0.0.1");
        let b = ask("/other", "web.shop");
        assert_eq!(b["outbound"]["rule"]["name"], "rest");
        assert_eq!(b["outbound"]["rule"]["match"], Value::Null);
        assert_eq!(b["outbound"]["clusters"][0]["name"], "rest");
        let none = ask("/", "nothing.example:80");
        assert_eq!(none["outbound"]["service"], Value::Null);
        assert!(
            none["outbound"]["unmatched"]
                .as_str()
                .is_some_and(|s| s.contains("REGISTRY_ONLY"))
        );
        assert_eq!(none["inbound"], Value::Null);
    }

    fn encode(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn questions_are_read_or_refused_with_a_reason() {
        let q = parse(&encode(
            &json!({"authority": "a.b:80", "headers": [["x-a", "1"]]}),
        ))
        .expect("question");
        assert_eq!(q.method, "GET");
        assert_eq!(q.path, "/");
        assert_eq!(q.headers, vec![("x-a".to_string(), "1".to_string())]);
        assert!(parse("").unwrap_err().contains("missing q"));
        assert!(parse("%%%").unwrap_err().contains("base64url"));
        assert!(
            parse(&encode(&json!({"nope": 1})))
                .unwrap_err()
                .contains("not a question")
        );
        assert!(
            parse(&"A".repeat(MAX_QUESTION + 1))
                .unwrap_err()
                .contains("longer")
        );
    }
}
