//! Outlier detection: endpoints that keep failing are ejected for a while, as Envoy does for
//! the `outlierDetection` of a DestinationRule. Results come in from every request and
//! connection; ejection happens at once when a counter reaches its threshold, and ends when
//! the ejection time has passed (checked when endpoints are chosen, so no timer runs).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use strait_config::OutlierDetection;

/// Envoy's cap on one ejection (`max_ejection_time`, 300 s), unless the base time is longer.
const MAX_EJECTION_MS: u64 = 300_000;

/// Milliseconds on a clock shared by every balancer of the process, so state carried from one
/// configuration to the next keeps its meaning. Starts at 1: 0 means "never".
pub(super) fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// What one attempt came to, as outlier detection counts it: the response status, or the
/// status Envoy stands in for a failure of its own (a connection refused or reset is a 503, a
/// timeout a 504), since Istio does not split locally originated errors out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    pub const OK: Status = Status(200);
    pub const CONNECT_FAILED: Status = Status(503);
    pub const TIMEOUT: Status = Status(504);

    fn is_5xx(self) -> bool {
        (500..600).contains(&self.0)
    }

    fn is_gateway_error(self) -> bool {
        matches!(self.0, 502..=504)
    }
}

/// One endpoint's record.
#[derive(Debug, Default)]
pub(super) struct HostHealth {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    /// Ejected until this time (`now_ms`); 0: not ejected.
    ejected_until: AtomicU64,
    /// The multiplier of the next ejection's length, lowered while the endpoint stays well.
    times_ejected: AtomicU32,
    /// When the last ejection began.
    ejected_at: AtomicU64,
}

impl HostHealth {
    pub(super) fn is_ejected(&self, now: u64) -> bool {
        now < self.ejected_until.load(Ordering::Relaxed)
    }

    /// Ejected until when (0: not ejected), for inspection.
    pub(super) fn ejected_until(&self) -> u64 {
        self.ejected_until.load(Ordering::Relaxed)
    }

    pub(super) fn copy_from(&self, other: &HostHealth) {
        for (a, b) in [
            (&self.consecutive_5xx, &other.consecutive_5xx),
            (&self.consecutive_gateway, &other.consecutive_gateway),
            (&self.times_ejected, &other.times_ejected),
        ] {
            a.store(b.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        for (a, b) in [
            (&self.ejected_until, &other.ejected_until),
            (&self.ejected_at, &other.ejected_at),
        ] {
            a.store(b.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

/// Counts `status` for endpoint `i`; ejects it when a threshold is reached and no more than
/// `max_ejection_percent` of `hosts` would be out (one endpoint always may be). Returns whether
/// this call ejected it.
pub(super) fn record(
    od: &OutlierDetection,
    hosts: &[HostHealth],
    i: usize,
    status: Status,
    now: u64,
) -> bool {
    let Some(h) = hosts.get(i) else { return false };
    if !status.is_5xx() {
        h.consecutive_5xx.store(0, Ordering::Relaxed);
        h.consecutive_gateway.store(0, Ordering::Relaxed);
        return false;
    }
    let n5 = h.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
    let ngw = if status.is_gateway_error() {
        h.consecutive_gateway.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        h.consecutive_gateway.store(0, Ordering::Relaxed);
        0
    };
    let tripped = od.consecutive_5xx.is_some_and(|t| n5 >= t)
        || od.consecutive_gateway_errors.is_some_and(|t| ngw >= t);
    if !tripped || h.is_ejected(now) {
        return false;
    }
    let out = hosts.iter().filter(|o| o.is_ejected(now)).count() as u64;
    if out > 0 && out * 100 >= u64::from(od.max_ejection_percent) * hosts.len() as u64 {
        return false;
    }
    // Each interval spent well since the last ejection takes one off the multiplier.
    let since = now.saturating_sub(h.ejected_at.load(Ordering::Relaxed));
    let forgiven = (since / od.interval_ms.max(1)).min(u64::from(u32::MAX)) as u32;
    let times = h
        .times_ejected
        .load(Ordering::Relaxed)
        .saturating_sub(forgiven)
        .saturating_add(1);
    h.times_ejected.store(times, Ordering::Relaxed);
    let length = od
        .base_ejection_ms
        .saturating_mul(u64::from(times))
        .min(MAX_EJECTION_MS.max(od.base_ejection_ms));
    h.ejected_at.store(now, Ordering::Relaxed);
    h.ejected_until.store(now + length, Ordering::Relaxed);
    h.consecutive_5xx.store(0, Ordering::Relaxed);
    h.consecutive_gateway.store(0, Ordering::Relaxed);
    true
}
