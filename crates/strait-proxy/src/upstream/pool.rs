//! The pool of HTTP/2-over-mTLS connections to other proxies, one per (endpoint, SNI).
//!
//! Three properties matter under load and churn:
//! - **One dial per key at a time.** When many requests miss at once (a cold start, a
//!   recycled connection), the first dials and the others wait for its result instead of
//!   each opening a TLS connection that all but one would throw away.
//! - **Nothing outlives its use.** A connection leaves the pool when it closes (the peer went
//!   away, keep-alive pings went unanswered), and when it carried no request for
//!   [`IDLE_TIMEOUT`] (Envoy's upstream default: one hour). Endpoints that come and go do not
//!   leave entries behind.
//! - **The hot path takes one short lock**: a hash lookup and a counter increment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use hyper::client::conn::http2::SendRequest;
use tokio::sync::watch;

use crate::body::Body;

/// A pooled connection that carried no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The key of a pooled connection: the endpoint and the SNI it was opened with.
pub type PoolKey = (SocketAddr, String);

/// What a wait for someone else's dial ends with: nothing yet, or the dial's result.
type DialOutcome = Option<Result<(), String>>;

enum Slot {
    Ready(Pooled),
    Dialing(watch::Receiver<DialOutcome>),
}

struct Pooled {
    sender: SendRequest<Body>,
    id: u64,
    requests: u32,
    last_used: Instant,
}

type Slots = Mutex<HashMap<PoolKey, Slot>>;

/// The pool. Cheap to share: connection tasks hold a weak reference to remove themselves.
pub struct H2Pool {
    slots: Arc<Slots>,
    next_id: AtomicU64,
}

/// What [`H2Pool::checkout`] found.
pub enum Checkout<'a> {
    /// A live connection with room for the request.
    Ready(SendRequest<Body>),
    /// Another request is dialling this key: wait for it.
    Wait(Waiter),
    /// The caller dials, then calls [`Dial::done`] (dropping it unfinished frees the key).
    Dial(Dial<'a>),
}

/// A wait for another request's dial.
pub struct Waiter(watch::Receiver<DialOutcome>);

impl Waiter {
    /// Waits for the dial: `Ok` means check out again (the connection is in the pool, or
    /// the dialling request gave up and the key is free); `Err` is the dial's failure, which
    /// every request that waited for it shares, as they would have failed the same way.
    pub async fn wait(mut self) -> Result<(), String> {
        loop {
            if let Some(outcome) = self.0.borrow_and_update().as_ref() {
                return outcome.as_ref().map(|_| ()).map_err(Clone::clone);
            }
            if self.0.changed().await.is_err() {
                return Ok(());
            }
        }
    }
}

/// The right, and the duty, to dial one key.
pub struct Dial<'a> {
    pool: &'a H2Pool,
    key: Option<PoolKey>,
    tx: watch::Sender<DialOutcome>,
}

impl Dial<'_> {
    /// Publishes the dial's result to the waiters; a connection joins the pool. Returns the
    /// connection's id, for [`H2Pool::closed`] and [`H2Pool::idle_since`].
    pub fn done(mut self, result: Result<SendRequest<Body>, String>) -> u64 {
        let id = self.pool.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(key) = self.key.take()
            && let Ok(mut slots) = self.pool.slots.lock()
        {
            match &result {
                Ok(sender) => {
                    slots.insert(
                        key,
                        Slot::Ready(Pooled {
                            sender: sender.clone(),
                            id,
                            requests: 1,
                            last_used: Instant::now(),
                        }),
                    );
                }
                Err(_) => {
                    slots.remove(&key);
                }
            }
        }
        self.tx.send_replace(Some(result.map(|_| ())));
        id
    }
}

impl Drop for Dial<'_> {
    fn drop(&mut self) {
        // Abandoned mid-dial: free the key so the next request dials again. The waiters see
        // the sender go and check out again.
        if let Some(key) = self.key.take()
            && let Ok(mut slots) = self.pool.slots.lock()
            && matches!(slots.get(&key), Some(Slot::Dialing(_)))
        {
            slots.remove(&key);
        }
    }
}

impl Default for H2Pool {
    fn default() -> Self {
        H2Pool {
            slots: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(1),
        }
    }
}

impl H2Pool {
    /// Finds a usable connection for `key`, a dial in progress, or hands the dial to the
    /// caller. `max_requests` recycles a connection after that many requests
    /// (DestinationRule `maxRequestsPerConnection`).
    pub fn checkout(&self, key: &PoolKey, max_requests: Option<u32>) -> Checkout<'_> {
        let Ok(mut slots) = self.slots.lock() else {
            // A panic while holding the lock left the map unusable: dial without pooling.
            return Checkout::Dial(Dial {
                pool: self,
                key: None,
                tx: watch::channel(None).0,
            });
        };
        match slots.get_mut(key) {
            Some(Slot::Ready(p))
                if p.sender.is_ready() && max_requests.is_none_or(|m| p.requests < m) =>
            {
                p.requests += 1;
                p.last_used = Instant::now();
                return Checkout::Ready(p.sender.clone());
            }
            Some(Slot::Dialing(rx)) => return Checkout::Wait(Waiter(rx.clone())),
            // Closed, or used up: replaced below. Requests in flight on it keep their clone.
            Some(Slot::Ready(_)) | None => {}
        }
        let (tx, rx) = watch::channel(None);
        slots.insert(key.clone(), Slot::Dialing(rx));
        Checkout::Dial(Dial {
            pool: self,
            key: Some(key.clone()),
            tx,
        })
    }

    /// A handle for a connection's task, which outlives no pool.
    pub fn handle(&self) -> PoolHandle {
        PoolHandle(Arc::downgrade(&self.slots))
    }

    /// How many keys the pool holds (connections and dials).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().map_or(0, |s| s.len())
    }
}

/// A connection task's view of its pool.
#[derive(Clone)]
pub struct PoolHandle(Weak<Slots>);

impl PoolHandle {
    /// The connection `id` under `key` closed: forget it (unless it was replaced already).
    pub fn closed(&self, key: &PoolKey, id: u64) {
        self.remove_if(key, |p| p.id == id);
    }

    /// Removes connection `id` when it carried nothing for [`IDLE_TIMEOUT`]; returns whether
    /// it is gone from the pool (removed now or earlier), so its task can stop watching.
    pub fn evict_if_idle(&self, key: &PoolKey, id: u64, now: Instant) -> bool {
        self.remove_if(key, |p| {
            p.id == id && now.saturating_duration_since(p.last_used) >= IDLE_TIMEOUT
        });
        let Some(slots) = self.0.upgrade() else {
            return true;
        };
        slots.lock().map_or(
            true,
            |s| !matches!(s.get(key), Some(Slot::Ready(p)) if p.id == id),
        )
    }

    fn remove_if(&self, key: &PoolKey, pred: impl Fn(&Pooled) -> bool) {
        let Some(slots) = self.0.upgrade() else {
            return;
        };
        if let Ok(mut s) = slots.lock()
            && matches!(s.get(key), Some(Slot::Ready(p)) if pred(p))
        {
            s.remove(key);
        }
    }
}

#[cfg(test)]
mod tests;
