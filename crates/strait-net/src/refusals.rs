//! Logging of refused peers, bounded: anyone who can reach a listener can make it refuse, and
//! a flood of refusals must not become a flood of log lines.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::reach::{Refused, Why};

/// At most this many refusals are logged per window; the rest are counted and summed up.
const PER_WINDOW: u32 = 20;
const WINDOW: Duration = Duration::from_secs(10);

struct Budget {
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

static BUDGET: Mutex<Budget> = Mutex::new(Budget {
    started: None,
    logged: 0,
    suppressed: 0,
});

/// Logs one refusal, unless this window's budget is spent. A peer refused for not being the
/// pod or the mesh's owner is a warning (someone on this host tried a private port); one
/// from another network is information (a misrouted pod).
pub(crate) fn log(listener: &str, peer: SocketAddr, refused: &Refused) {
    let (allowed, summary) = spend(Instant::now());
    if let Some(n) = summary {
        tracing::warn!("{n} more refused connections were not logged in the last {WINDOW:?}");
    }
    if !allowed {
        return;
    }
    match refused.why {
        Why::NotThePod | Why::Stranger(_) => tracing::warn!(listener, %peer, "{refused}"),
        Why::OtherNetwork(_) | Why::Outside => tracing::info!(listener, %peer, "{refused}"),
    }
}

/// Whether a refusal at `now` may be logged, and how many went unlogged in the window that
/// just ended.
fn spend(now: Instant) -> (bool, Option<u64>) {
    let mut b = BUDGET
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    take(&mut b, now)
}

fn take(b: &mut Budget, now: Instant) -> (bool, Option<u64>) {
    let mut summary = None;
    let expired = b
        .started
        .is_none_or(|s| now.saturating_duration_since(s) >= WINDOW);
    if expired {
        if b.suppressed > 0 {
            summary = Some(b.suppressed);
        }
        *b = Budget {
            started: Some(now),
            logged: 0,
            suppressed: 0,
        };
    }
    if b.logged < PER_WINDOW {
        b.logged += 1;
        (true, summary)
    } else {
        b.suppressed += 1;
        (false, summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_logged_in_part_then_summed_up() {
        let mut b = Budget {
            started: None,
            logged: 0,
            suppressed: 0,
        };
        let t0 = Instant::now();
        let logged = (0..100).filter(|_| take(&mut b, t0).0).count();
        assert_eq!(logged, PER_WINDOW as usize);
        let (allowed, summary) = take(&mut b, t0 + WINDOW);
        assert!(allowed);
        assert_eq!(summary, Some(100 - u64::from(PER_WINDOW)));
        assert_eq!(take(&mut b, t0 + WINDOW).1, None);
    }
}
