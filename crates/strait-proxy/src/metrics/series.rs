//! Istio's request and TCP metrics, kept per series with atomics.
//!
//! A series' connection-level labels (who called whom, for which service, over which
//! protocol) are built and interned once ([`CallSeries`]); callers keep the `Arc` for as long
//! as those labels hold (a configuration's endpoint, a connection's caller), so a request
//! costs a short scan of the codes seen on its series and a few atomic adds: no label
//! strings, no hashing. The text exposition is written from the same data ([`super::render`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Upper bounds of the duration buckets, in milliseconds (Istio's), as printed.
pub(super) const MS_BOUNDS: [(f64, &str); 19] = [
    (0.5, "0.5"),
    (1.0, "1.0"),
    (5.0, "5.0"),
    (10.0, "10.0"),
    (25.0, "25.0"),
    (50.0, "50.0"),
    (100.0, "100.0"),
    (250.0, "250.0"),
    (500.0, "500.0"),
    (1000.0, "1000.0"),
    (2500.0, "2500.0"),
    (5000.0, "5000.0"),
    (10000.0, "10000.0"),
    (30000.0, "30000.0"),
    (60000.0, "60000.0"),
    (300000.0, "300000.0"),
    (600000.0, "600000.0"),
    (1800000.0, "1800000.0"),
    (3600000.0, "3600000.0"),
];

/// Upper bounds of the size buckets, in bytes (1, 10, … 10⁸), as printed.
pub(super) const BYTE_BOUNDS: [(f64, &str); 9] = [
    (1.0, "1.0"),
    (10.0, "10.0"),
    (100.0, "100.0"),
    (1000.0, "1000.0"),
    (10000.0, "10000.0"),
    (100000.0, "100000.0"),
    (1000000.0, "1000000.0"),
    (10000000.0, "10000000.0"),
    (100000000.0, "100000000.0"),
];

/// A histogram over fixed bounds: a count per bucket (not cumulative; the exposition sums
/// them), the number of observations and their sum in thousandths of the unit.
#[derive(Debug)]
pub(super) struct Histogram<const N: usize> {
    bounds: &'static [(f64, &'static str); N],
    /// `N` bounded buckets and the `+Inf` one.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_milli: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: &'static [(f64, &'static str); N]) -> Self {
        Histogram {
            bounds,
            buckets: (0..=N).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_milli: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: f64) {
        let v = if v.is_finite() && v > 0.0 { v } else { 0.0 };
        let i = self.bounds.iter().position(|(b, _)| v <= *b).unwrap_or(N);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        // Saturating on absurd values: a sum is a diagnostic, not an account.
        let milli = (v * 1000.0).round().min(u64::MAX as f64) as u64;
        self.sum_milli.fetch_add(milli, Ordering::Relaxed);
    }

    /// `(le, cumulative count)` per bucket, `+Inf` last; the count; the sum.
    pub(super) fn snapshot(&self) -> (Vec<(&'static str, u64)>, u64, f64) {
        let mut running = 0;
        let mut out = Vec::with_capacity(N + 1);
        for (i, b) in self.buckets.iter().enumerate() {
            running += b.load(Ordering::Relaxed);
            out.push((self.bounds.get(i).map_or("+Inf", |(_, s)| *s), running));
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_milli.load(Ordering::Relaxed) as f64 / 1000.0;
        (out, count, sum)
    }
}

/// The labels Istio puts on a connection-level series, in Istio's order (`response_flags`
/// is per outcome and printed between `request_protocol` and `connection_security_policy`).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct CallLabels {
    /// `(name, value)` from `reporter` to `request_protocol`.
    pub(super) head: Vec<(&'static str, String)>,
    pub(super) connection_security_policy: String,
}

impl CallLabels {
    fn get(&self, name: &str) -> &str {
        self.head
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn reporter(&self) -> &str {
        self.get("reporter")
    }

    pub fn destination_service(&self) -> &str {
        self.get("destination_service")
    }

    pub fn destination_principal(&self) -> &str {
        self.get("destination_principal")
    }
}

/// What one HTTP outcome of a series has seen.
#[derive(Debug)]
pub(super) struct RequestStats {
    pub(super) count: AtomicU64,
    pub(super) duration: Histogram<19>,
    pub(super) request_bytes: Histogram<9>,
    pub(super) response_bytes: Histogram<9>,
}

/// What the TCP connections of a series with one set of flags have seen.
#[derive(Debug, Default)]
pub(super) struct TcpStats {
    pub(super) opened: AtomicU64,
    pub(super) closed: AtomicU64,
    pub(super) sent: AtomicU64,
    pub(super) received: AtomicU64,
}

/// An outcome's own labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct OutcomeKey {
    pub(super) code: u16,
    pub(super) flags: Box<str>,
    pub(super) grpc: Box<str>,
}

/// One connection-level series and the outcomes recorded on it.
#[derive(Debug)]
pub struct CallSeries {
    pub(super) labels: CallLabels,
    pub(super) requests: Mutex<Vec<(OutcomeKey, Arc<RequestStats>)>>,
    pub(super) tcp: Mutex<Vec<(Box<str>, Arc<TcpStats>)>>,
}

impl CallSeries {
    pub(super) fn new(labels: CallLabels) -> Self {
        CallSeries {
            labels,
            requests: Mutex::new(Vec::new()),
            tcp: Mutex::new(Vec::new()),
        }
    }

    pub fn labels(&self) -> &CallLabels {
        &self.labels
    }

    fn request_stats(&self, code: u16, flags: &str, grpc: &str) -> Arc<RequestStats> {
        let mut list = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, s)) = list
            .iter()
            .find(|(k, _)| k.code == code && *k.flags == *flags && *k.grpc == *grpc)
        {
            return s.clone();
        }
        let s = Arc::new(RequestStats {
            count: AtomicU64::new(0),
            duration: Histogram::new(&MS_BOUNDS),
            request_bytes: Histogram::new(&BYTE_BOUNDS),
            response_bytes: Histogram::new(&BYTE_BOUNDS),
        });
        list.push((
            OutcomeKey {
                code,
                flags: flags.into(),
                grpc: grpc.into(),
            },
            s.clone(),
        ));
        s
    }

    /// Records one finished request.
    pub fn request(
        &self,
        code: u16,
        flags: &str,
        grpc: Option<&str>,
        ms: f64,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        let s = self.request_stats(code, flags, grpc.unwrap_or(""));
        s.count.fetch_add(1, Ordering::Relaxed);
        s.duration.observe(ms);
        s.request_bytes.observe(request_bytes as f64);
        s.response_bytes.observe(response_bytes as f64);
    }

    pub(super) fn tcp_stats(&self, flags: &str) -> Arc<TcpStats> {
        let mut list = self.tcp.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, s)) = list.iter().find(|(f, _)| **f == *flags) {
            return s.clone();
        }
        let s = Arc::new(TcpStats::default());
        list.push((flags.into(), s.clone()));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_per_bucket_and_sum() {
        let h = Histogram::new(&MS_BOUNDS);
        for v in [0.2, 0.5, 0.7, 3.0, 99999999.0, f64::NAN] {
            h.observe(v);
        }
        let (buckets, count, sum) = h.snapshot();
        assert_eq!(count, 6);
        assert_eq!(buckets[0], ("0.5", 3), "0.2, 0.5 and NaN (as 0)");
        assert_eq!(buckets[1], ("1.0", 4));
        assert_eq!(buckets[2], ("5.0", 5));
        assert_eq!(buckets.last(), Some(&("+Inf", 6)));
        assert!(
            (sum - (0.2 + 0.5 + 0.7 + 3.0 + 99999999.0)).abs() < 0.01,
            "{sum}"
        );
    }
}
