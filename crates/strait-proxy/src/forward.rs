//! What both directions share when passing a request on: hop-by-hop header hygiene, and a
//! response body that counts bytes and, when it ends (or is dropped), records the request's
//! metrics and access-log line exactly once.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::body::{Body, BoxError};
use crate::metrics::{CallSeries, Outcome};

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1), plus the proxy
/// headers clients send to an HTTP proxy.
const HOP_BY_HOP: [http::header::HeaderName; 9] = [
    http::header::CONNECTION,
    http::header::HeaderName::from_static("proxy-connection"),
    http::header::HeaderName::from_static("keep-alive"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    http::header::PROXY_AUTHORIZATION,
    http::header::PROXY_AUTHENTICATE,
];

/// The authority a request names: its absolute URI's, else its Host header.
pub fn request_authority<B>(req: &http::Request<B>) -> Option<String> {
    req.uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
}

/// Removes hop-by-hop headers, and those the `Connection` header names. Allocates nothing
/// unless a `Connection` header names others (rare: it is per hop and usually `keep-alive`).
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<http::header::HeaderName> = h
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| http::header::HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    // `te: trailers` is end-to-end in practice: gRPC servers require it (HTTP/2 allows no
    // other value, RFC 9113 §8.2.2).
    let trailers = h
        .get(http::header::TE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for n in HOP_BY_HOP.iter().chain(&named) {
        if h.contains_key(n) {
            h.remove(n);
        }
    }
    if trailers {
        h.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    }
}

/// Everything needed to report a request when its response is done.
#[derive(Debug)]
pub struct Report {
    /// The series the request is counted on.
    pub series: Arc<CallSeries>,
    pub code: u16,
    pub flags: &'static str,
    pub started: Instant,
    pub request_bytes: u64,
    /// The access log entry, when access logs are on.
    pub access_log: Option<Box<crate::access_log::Entry>>,
    /// The cluster's request permit (`http2MaxRequests`), held until the response body ends:
    /// a request counts against the limit for as long as it is streaming.
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Report {
    fn finish(&self, response_bytes: u64, grpc_status: Option<&str>) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        crate::metrics::record(
            &self.series,
            &Outcome {
                code: self.code,
                flags: self.flags,
                grpc_status,
                ms,
                request_bytes: self.request_bytes,
                response_bytes,
            },
        );
        if let Some(entry) = &self.access_log {
            entry.write(&crate::access_log::Outcome {
                code: self.code,
                flags: self.flags,
                details: "via_upstream",
                bytes_received: self.request_bytes,
                bytes_sent: response_bytes,
                duration_ms: ms as u64,
                upstream_failure: None,
            });
        }
    }
}

/// A response body that reports when it ends.
#[derive(Debug)]
pub struct Reported {
    inner: Body,
    bytes: u64,
    grpc_status: Option<String>,
    report: Option<Report>,
}

impl Reported {
    pub fn new(inner: Body, report: Report) -> Reported {
        Reported {
            inner,
            bytes: 0,
            grpc_status: None,
            report: Some(report),
        }
    }

    fn done(&mut self) {
        if let Some(r) = self.report.take() {
            r.finish(self.bytes, self.grpc_status.as_deref());
        }
    }
}

impl Drop for Reported {
    fn drop(&mut self) {
        self.done();
    }
}

impl HttpBody for Reported {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    self.bytes += d.len() as u64;
                }
                if let Some(t) = frame.trailers_ref()
                    && let Some(s) = t.get("grpc-status").and_then(|v| v.to_str().ok())
                {
                    self.grpc_status = Some(s.to_string());
                }
            }
            Poll::Ready(None) => self.done(),
            Poll::Ready(Some(Err(_))) => {
                if let Some(r) = self.report.as_mut() {
                    r.flags = "DR";
                }
                self.done();
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response whose body reports when it finishes.
pub fn reported(resp: http::Response<Body>, report: Report) -> http::Response<Body> {
    let (parts, body) = resp.into_parts();
    http::Response::from_parts(parts, crate::body::boxed(Reported::new(body, report)))
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::strip_hop_by_hop;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = headers(&[
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "secret"),
            ("te", "gzip"),
            ("x-end-to-end", "kept"),
        ]);
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-end-to-end"]);
    }

    #[test]
    fn te_trailers_is_kept_for_grpc() {
        let mut h = headers(&[("te", "Trailers"), ("content-type", "application/grpc")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.get("te").unwrap(), "trailers");
    }
}
