//! An echo server that says who answered and what it received, and can call onward.
//!
//! Query parameters, for tests and demos:
//! - `status=503`: answer with that status (200-599).
//! - `delay=200ms`: wait first (`us`, `ms`, `s` or `m`; decimals allowed).
//! - `size=1024`: answer with a body of exactly that many bytes (at most 1 MiB) instead of
//!   the description, like fortio's server; for load tests with a fixed payload.
//! - `call=URL`: GET `URL` (percent-encoded if it has a query of its own) through the
//!   sidecar and embed its status and body under `"upstream"`. If the call fails the echo
//!   answers 502 (unless `status` says otherwise) with `"upstream": {"error": ...}`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use http::{HeaderMap, HeaderName, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::onward::Onward;
use super::server::{self, Body};
use super::{AppConfig, AppError};
use crate::stop::Stop;

/// The largest payload `size=` asks for.
const MAX_SIZE: usize = 1 << 20;

/// Headers copied from the request onto the onward call: the trace context Istio asks
/// applications to propagate (istio.io, "Distributed tracing", trace context propagation).
const PROPAGATED: [&str; 9] = [
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

pub(super) async fn run(cfg: AppConfig, onward: Onward, stop: Stop) -> Result<(), AppError> {
    let (listen, reach) = (cfg.listen, cfg.reach.clone());
    let echo = Arc::new(Echo { cfg, onward });
    server::serve(listen, reach, stop, move |req| {
        let echo = echo.clone();
        async move { echo.respond(req).await }
    })
    .await
}

struct Echo {
    cfg: AppConfig,
    onward: Onward,
}

impl Echo {
    async fn respond(&self, req: Request<Incoming>) -> Response<Body> {
        let params = match Params::parse(req.uri().query()) {
            Ok(params) => params,
            Err(e) => return server::text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
        if let Some(delay) = params.delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(size) = params.size {
            let status = params.status.unwrap_or(StatusCode::OK);
            return server::text(status, Bytes::from(vec![b'x'; size]));
        }
        let mut body = self.describe(&req);
        let mut status = params.status.unwrap_or(StatusCode::OK);
        if let Some(url) = &params.call {
            let upstream = match self.onward.get(url, propagated(req.headers())).await {
                Ok(reply) => json!({
                    "url": url,
                    "status": reply.status.as_u16(),
                    "body": body_value(&reply.body),
                }),
                Err(e) => {
                    status = params.status.unwrap_or(StatusCode::BAD_GATEWAY);
                    json!({ "url": url, "error": e.to_string() })
                }
            };
            body["upstream"] = upstream;
        }
        // The calls the workload always makes (a dashboard calling its backends), one after
        // the other so the answer shows every hop in order.
        if !self.cfg.calls.is_empty() {
            let mut calls = Vec::with_capacity(self.cfg.calls.len());
            for url in &self.cfg.calls {
                calls.push(match self.onward.get(url, propagated(req.headers())).await {
                    Ok(reply) => {
                        if !reply.status.is_success() {
                            status = StatusCode::BAD_GATEWAY;
                        }
                        json!({"url": url, "status": reply.status.as_u16(), "body": body_value(&reply.body)})
                    }
                    Err(e) => {
                        status = StatusCode::BAD_GATEWAY;
                        json!({"url": url, "error": e.to_string()})
                    }
                });
            }
            body["calls"] = Value::Array(calls);
        }
        server::json(status, &body)
    }

    fn describe(&self, req: &Request<Incoming>) -> Value {
        let cfg = &self.cfg;
        let mut headers = BTreeMap::<&str, String>::new();
        for (name, value) in req.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            headers
                .entry(name.as_str())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        let host = req
            .headers()
            .get(header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .or_else(|| req.uri().authority().map(|a| a.to_string()));
        let mut body = json!({
            "cluster": cfg.cluster,
            "namespace": cfg.namespace,
            "workload": cfg.workload,
            "pod": cfg.pod,
            "version": cfg.version,
            "identity": cfg.identity(),
            "method": req.method().as_str(),
            "path": req.uri().path(),
            "protocol": format!("{:?}", req.version()),
            "host": host,
            "headers": headers,
        });
        if let Some(query) = req.uri().query() {
            body["query"] = query.into();
        }
        body
    }
}

fn propagated(incoming: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in PROPAGATED {
        let name = HeaderName::from_static(name);
        for value in incoming.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// JSON bodies (the next echo's answer) are embedded as JSON, anything else as a string.
fn body_value(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

#[derive(Debug, Default, PartialEq)]
struct Params {
    status: Option<StatusCode>,
    delay: Option<Duration>,
    call: Option<String>,
    size: Option<usize>,
}

impl Params {
    fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut params = Params::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value =
                percent_decode(value).ok_or_else(|| format!("{key}: bad percent-encoding"))?;
            match key {
                "status" => {
                    let status = value
                        .parse::<u16>()
                        .ok()
                        .filter(|s| (200..=599).contains(s))
                        .and_then(|s| StatusCode::from_u16(s).ok())
                        .ok_or_else(|| {
                            format!("status={value}: expected a number from 200 to 599")
                        })?;
                    params.status = Some(status);
                }
                "delay" => {
                    let delay = parse_duration(&value).ok_or_else(|| {
                        format!("delay={value}: expected a duration such as 200ms or 1.5s")
                    })?;
                    params.delay = Some(delay);
                }
                "call" => params.call = Some(value),
                "size" => {
                    let size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= MAX_SIZE)
                        .ok_or_else(|| {
                            format!("size={value}: expected a number of bytes up to {MAX_SIZE}")
                        })?;
                    params.size = Some(size);
                }
                _ => {}
            }
        }
        Ok(params)
    }
}

/// Go duration syntax, as Istio's own fields (`200ms`, `1.5s`).
fn parse_duration(s: &str) -> Option<Duration> {
    strait_api::istio::Duration::parse(s)
        .ok()
        .map(|d| d.as_std())
}

/// RFC 3986 percent-decoding; `+` stays a plus (a URL in `call=` may contain one).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters() {
        let p = Params::parse(Some(
            "status=503&delay=200ms&call=http%3A%2F%2Fb.sample%3A80%2F%3Fstatus%3D418&x",
        ))
        .unwrap();
        assert_eq!(
            p,
            Params {
                status: Some(StatusCode::SERVICE_UNAVAILABLE),
                delay: Some(Duration::from_millis(200)),
                call: Some("http://b.sample:80/?status=418".to_owned()),
                size: None,
            }
        );
        assert_eq!(Params::parse(None).unwrap(), Params::default());
        assert!(Params::parse(Some("status=99")).is_err());
        assert!(Params::parse(Some("status=abc")).is_err());
        assert!(Params::parse(Some("delay=5")).is_err());
        assert!(Params::parse(Some("call=%zz")).is_err());
        assert_eq!(Params::parse(Some("size=1024")).unwrap().size, Some(1024));
        assert!(Params::parse(Some("size=2000000")).is_err());
        assert!(Params::parse(Some("size=-1")).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(parse_duration("-1s"), None);
    }

    #[test]
    fn only_trace_headers_are_propagated() {
        let mut incoming = HeaderMap::new();
        incoming.insert("x-request-id", "abc".parse().unwrap());
        incoming.insert("traceparent", "00-0af7-b7ad-01".parse().unwrap());
        incoming.insert("authorization", "secret".parse().unwrap());
        let out = propagated(&incoming);
        assert_eq!(out.len(), 2);
        assert_eq!(out["x-request-id"], "abc");
        assert!(out.get("authorization").is_none());
    }
}
