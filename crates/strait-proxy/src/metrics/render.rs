//! The text exposition of the request and TCP series, as `prometheus_client` writes a family
//! (OpenMetrics): `# HELP` and `# TYPE`, counters with `_total`, histograms as `_sum`,
//! `_count` and cumulative `_bucket{le=...}` lines. The registry's families and its `# EOF`
//! follow.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use super::series::{CallLabels, CallSeries, Histogram, OutcomeKey, RequestStats, TcpStats};

/// Writes every family that has data.
pub(super) fn series(calls: &[Arc<CallSeries>]) -> String {
    let mut requests: Vec<(&CallLabels, OutcomeKey, Arc<RequestStats>)> = Vec::new();
    let mut tcp: Vec<(&CallLabels, Box<str>, Arc<TcpStats>)> = Vec::new();
    for c in calls {
        let r = c.requests.lock().unwrap_or_else(PoisonError::into_inner);
        requests.extend(r.iter().map(|(k, s)| (&c.labels, k.clone(), s.clone())));
        let t = c.tcp.lock().unwrap_or_else(PoisonError::into_inner);
        tcp.extend(t.iter().map(|(f, s)| (&c.labels, f.clone(), s.clone())));
    }
    let mut out = String::new();
    if !requests.is_empty() {
        let labels: Vec<String> = requests
            .iter()
            .map(|(l, k, _)| request_labels(l, k))
            .collect();
        family(
            &mut out,
            "istio_requests",
            "counter",
            "Requests, by Istio's standard labels.",
        );
        for ((_, _, s), l) in requests.iter().zip(&labels) {
            let _ = writeln!(
                out,
                "istio_requests_total{{{l}}} {}",
                s.count.load(Ordering::Relaxed)
            );
        }
        histogram(
            &mut out,
            "istio_request_duration_milliseconds",
            "Request duration in milliseconds.",
            requests
                .iter()
                .zip(&labels)
                .map(|((_, _, s), l)| (l, &s.duration)),
        );
        histogram(
            &mut out,
            "istio_request_bytes",
            "Request body sizes.",
            requests
                .iter()
                .zip(&labels)
                .map(|((_, _, s), l)| (l, &s.request_bytes)),
        );
        histogram(
            &mut out,
            "istio_response_bytes",
            "Response body sizes.",
            requests
                .iter()
                .zip(&labels)
                .map(|((_, _, s), l)| (l, &s.response_bytes)),
        );
    }
    if !tcp.is_empty() {
        let labels: Vec<String> = tcp.iter().map(|(l, f, _)| tcp_labels(l, f)).collect();
        let counters: [TcpCounter; 4] = [
            (
                "istio_tcp_connections_opened",
                "TCP connections opened.",
                |s| s.opened.load(Ordering::Relaxed),
            ),
            (
                "istio_tcp_connections_closed",
                "TCP connections closed.",
                |s| s.closed.load(Ordering::Relaxed),
            ),
            (
                "istio_tcp_sent_bytes",
                "Bytes sent in responses on TCP connections.",
                |s| s.sent.load(Ordering::Relaxed),
            ),
            (
                "istio_tcp_received_bytes",
                "Bytes received in requests on TCP connections.",
                |s| s.received.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            family(&mut out, name, "counter", help);
            for ((_, _, s), l) in tcp.iter().zip(&labels) {
                let _ = writeln!(out, "{name}_total{{{l}}} {}", value(s));
            }
        }
    }
    out
}

/// A TCP family: its name, help, and the counter it prints.
type TcpCounter = (&'static str, &'static str, fn(&TcpStats) -> u64);

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram<'a, const N: usize>(
    out: &mut String,
    name: &str,
    help: &str,
    rows: impl Iterator<Item = (&'a String, &'a Histogram<N>)>,
) {
    family(out, name, "histogram", help);
    for (labels, h) in rows {
        let (buckets, count, sum) = h.snapshot();
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum:?}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
        for (le, n) in buckets {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\",{labels}}} {n}");
        }
    }
}

fn push(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn tcp_labels(l: &CallLabels, flags: &str) -> String {
    let mut out = String::new();
    for (n, v) in &l.head {
        push(&mut out, n, v);
    }
    push(
        &mut out,
        "response_flags",
        if flags.is_empty() { "-" } else { flags },
    );
    push(
        &mut out,
        "connection_security_policy",
        &l.connection_security_policy,
    );
    out
}

fn request_labels(l: &CallLabels, k: &OutcomeKey) -> String {
    let mut out = tcp_labels(l, &k.flags);
    push(&mut out, "response_code", &k.code.to_string());
    push(&mut out, "grpc_response_status", &k.grpc);
    out
}
