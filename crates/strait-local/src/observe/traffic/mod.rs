//! Live traffic between workloads, from two scrapes of every proxy's Istio metrics.
//!
//! A rate is the growth of a counter between an older and a newer scrape of the same proxy,
//! over the time between them. A series absent from the older scrape started at zero (the
//! proxy makes a series on its first request); a counter that went down belongs to a proxy
//! that restarted, and its newer value is all it counted since (Prometheus' `rate()` does the
//! same).
//!
//! **Who counts a request.** Every HTTP request is counted once, by the proxy that saw it
//! whole:
//! - the client's sidecar (`reporter="source"`) counts every request its workload sent,
//!   including those its own proxy answered (no route, no healthy endpoint, a connection that
//!   failed); this is the count used, as Kiali prefers it too;
//! - except that a client sidecar whose endpoint was another network's east-west gateway
//!   does not know which pod answered (the gateway stands for them all): its requests are
//!   divided among the destination workloads in the proportions that those workloads'
//!   sidecars (`reporter="destination"`) report for the same caller, service, cluster and
//!   response code. What no destination reports (the gateway refused, the connection failed)
//!   stays with an `unknown` workload of that cluster;
//! - requests from a client without a sidecar have no source report: the destination's count
//!   is used.
//!
//! Other destination reports are the same requests seen twice and are left out.
//! TCP edges (`istio_tcp_*`) come from `reporter="source"` alone: sidecars' TCP services, and
//! the relays of east-west gateways, which report themselves as the source.

use std::collections::BTreeMap;

use serde::Serialize;

use super::prom::Sample;

/// The metric families read.
pub const FAMILIES: &[&str] = &[REQUESTS, TCP_SENT, TCP_RECEIVED, TCP_OPENED];
const REQUESTS: &str = "istio_requests_total";
const TCP_SENT: &str = "istio_tcp_sent_bytes_total";
const TCP_RECEIVED: &str = "istio_tcp_received_bytes_total";
const TCP_OPENED: &str = "istio_tcp_connections_opened_total";

/// What `unknown` is in Istio's labels: a peer the proxy could not name.
pub const UNKNOWN: &str = "unknown";

/// One scrape of one proxy.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// When it was taken, in seconds on any clock shared by the scrapes compared.
    pub at: f64,
    pub samples: Vec<Sample>,
}

/// An older and a newer scrape of one proxy.
#[derive(Clone, Copy, Debug)]
pub struct Window<'a> {
    pub before: &'a Scrape,
    pub after: &'a Scrape,
}

/// A workload at one end of an edge, as the metrics name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Peer {
    pub cluster: String,
    pub namespace: String,
    pub workload: String,
}

impl Peer {
    /// `<cluster>/<namespace>/<workload>`, the form `strait up` names workloads in.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.cluster, self.namespace, self.workload)
    }

    fn source(s: &Sample) -> Peer {
        Peer {
            cluster: known(s.label("source_cluster")),
            namespace: known(s.label("source_workload_namespace")),
            workload: known(s.label("source_workload")),
        }
    }

    fn destination(s: &Sample) -> Peer {
        Peer {
            cluster: known(s.label("destination_cluster")),
            namespace: known(s.label("destination_workload_namespace")),
            workload: known(s.label("destination_workload")),
        }
    }
}

fn known(v: &str) -> String {
    if v.is_empty() { UNKNOWN } else { v }.to_string()
}

/// Traffic from one workload to another for one service, over the window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Edge {
    /// `http` (gRPC included) or `tcp`.
    pub protocol: &'static str,
    pub source: Peer,
    pub destination: Peer,
    /// The destination service's host (`destination_service`).
    pub service: String,
    /// Requests per second (HTTP), connections opened per second (TCP).
    pub rate: f64,
    /// Requests per second that failed: a 5xx, or no response at all (code 0). HTTP only.
    pub error_rate: f64,
    /// Requests per second by response code. HTTP only.
    pub codes: BTreeMap<String, f64>,
    /// Bytes per second, both ways. TCP only.
    pub bytes_rate: f64,
}

impl Edge {
    /// The share of requests that failed (0 when there were none).
    pub fn error_ratio(&self) -> f64 {
        if self.rate > 0.0 {
            self.error_rate / self.rate
        } else {
            0.0
        }
    }
}

/// A counter's growth per second over one proxy's window, for each series of the newer scrape.
fn growth<'a>(w: &Window<'a>) -> Vec<(&'a Sample, f64)> {
    let dt = w.after.at - w.before.at;
    if dt <= 0.0 {
        return Vec::new();
    }
    let before: BTreeMap<(&str, &BTreeMap<String, String>), f64> = w
        .before
        .samples
        .iter()
        .map(|s| ((s.name.as_str(), &s.labels), s.value))
        .collect();
    w.after
        .samples
        .iter()
        .map(|s| {
            let old = before
                .get(&(s.name.as_str(), &s.labels))
                .copied()
                .unwrap_or(0.0);
            let grew = if s.value >= old {
                s.value - old
            } else {
                s.value
            };
            (s, grew / dt)
        })
        .collect()
}

fn add_http(
    acc: &mut BTreeMap<EdgeKey, Acc>,
    src: Peer,
    dst: Peer,
    service: &str,
    code: &str,
    rate: f64,
) {
    let e = acc
        .entry((src, dst, service.to_string(), "http"))
        .or_default();
    e.rate += rate;
    *e.codes.entry(code.to_string()).or_default() += rate;
}

fn is_error(code: &str) -> bool {
    code == "0" || code.starts_with('5')
}

/// Requests of one caller to one service in one destination cluster, with one response
/// code: what a client sidecar knows of requests it sent through another network's gateway.
type Leg = (Peer, String, String, String);

/// Key of an HTTP edge before aggregation.
type EdgeKey = (Peer, Peer, String, &'static str);

#[derive(Default)]
struct Acc {
    rate: f64,
    codes: BTreeMap<String, f64>,
    bytes: f64,
}

/// The edges of the mesh over the windows given (one per proxy scraped twice), sorted.
pub fn edges(windows: &[Window<'_>]) -> Vec<Edge> {
    let mut acc: BTreeMap<EdgeKey, Acc> = BTreeMap::new();
    // Requests a client sidecar sent through another network's gateway, by (caller,
    // service, destination cluster, code): to be divided among the destination workloads.
    let mut via_gateway: BTreeMap<Leg, f64> = BTreeMap::new();
    // What destinations reported, by the same key: (workload, rate).
    let mut reported: BTreeMap<Leg, Vec<(Peer, f64)>> = BTreeMap::new();
    for w in windows {
        for (s, r) in growth(w) {
            let service = s.label("destination_service");
            let (src, dst) = (Peer::source(s), Peer::destination(s));
            let reporter = s.label("reporter");
            match (s.name.as_str(), reporter) {
                (REQUESTS, "source") => {
                    let code = s.label("response_code");
                    if dst.workload == UNKNOWN {
                        *via_gateway
                            .entry((src, service.into(), dst.cluster, code.into()))
                            .or_default() += r;
                    } else {
                        add_http(&mut acc, src, dst, service, code, r);
                    }
                }
                (REQUESTS, "destination") => {
                    let code = s.label("response_code");
                    if src.workload == UNKNOWN {
                        add_http(&mut acc, src, dst, service, code, r);
                    } else {
                        reported
                            .entry((src, service.into(), dst.cluster.clone(), code.into()))
                            .or_default()
                            .push((dst, r));
                    }
                }
                (TCP_OPENED, "source") => {
                    acc.entry((src, dst, service.into(), "tcp"))
                        .or_default()
                        .rate += r;
                }
                (TCP_SENT | TCP_RECEIVED, "source") => {
                    acc.entry((src, dst, service.into(), "tcp"))
                        .or_default()
                        .bytes += r;
                }
                _ => {}
            }
        }
    }
    for ((src, service, cluster, code), r) in via_gateway {
        let key = (src.clone(), service.clone(), cluster.clone(), code.clone());
        let seen = reported.get(&key).map(Vec::as_slice).unwrap_or_default();
        let total: f64 = seen.iter().map(|(_, x)| x).sum();
        // An idle path still names its destinations (each at zero); requests that no
        // destination reports stay unknown.
        if !seen.is_empty() && (total > 0.0 || r == 0.0) {
            for (dst, x) in seen {
                let share = if total > 0.0 { x / total } else { 0.0 };
                add_http(
                    &mut acc,
                    src.clone(),
                    dst.clone(),
                    &service,
                    &code,
                    r * share,
                );
            }
        } else {
            let dst = Peer {
                cluster,
                namespace: UNKNOWN.into(),
                workload: UNKNOWN.into(),
            };
            add_http(&mut acc, src, dst, &service, &code, r);
        }
    }
    acc.into_iter()
        .map(|((source, destination, service, protocol), a)| Edge {
            protocol,
            error_rate: a
                .codes
                .iter()
                .filter(|(c, _)| is_error(c))
                // Not `sum()`: an empty float sum is -0.0, which JSON would show.
                .fold(0.0, |total, (_, r)| total + r),
            source,
            destination,
            service,
            rate: a.rate,
            codes: a.codes,
            bytes_rate: a.bytes,
        })
        .collect()
}

#[cfg(test)]
mod tests;
