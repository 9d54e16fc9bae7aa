//! Which endpoint of a cluster serves a request: priority levels (locality failover), locality
//! weights (`distribute`), health (the control plane's and outlier detection's), then the
//! cluster's policy (round robin, random, least request) among what is left.
//!
//! Priority levels follow Envoy: a level takes traffic in proportion to its health, scaled by
//! the overprovisioning factor 1.4, and what it cannot take spills to the next level. So one
//! ejected endpoint of three moves no traffic away, while a level with nothing healthy hands
//! all of it on: to the next zone, region, or the other network's gateway.

mod outlier;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use rand::Rng;
use strait_config::Cluster;

pub use outlier::Status;
use outlier::{HostHealth, now_ms};

/// Envoy's default overprovisioning factor, in percent.
const OVERPROVISIONING: u64 = 140;

/// Per-cluster load-balancing state, kept across config updates for clusters whose endpoints
/// stay the same (and, for outlier detection, carried by address when they change).
#[derive(Debug, Default)]
pub struct Balancer {
    next: AtomicUsize,
    /// In-flight requests per endpoint index.
    inflight: Vec<AtomicU32>,
    /// Outlier-detection record per endpoint index.
    health: Vec<HostHealth>,
}

/// An endpoint's state as outlier detection sees it, for inspection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutlierState {
    Ok,
    /// Ejected for this many more milliseconds.
    Ejected(u64),
}

impl Balancer {
    pub fn new(endpoints: usize) -> Balancer {
        Balancer {
            next: AtomicUsize::new(0),
            inflight: (0..endpoints).map(|_| AtomicU32::new(0)).collect(),
            health: (0..endpoints).map(|_| HostHealth::default()).collect(),
        }
    }

    /// A balancer for `new`'s endpoints that keeps what `old` knew of the endpoints both have
    /// (same address and port): an ejected endpoint stays ejected across a config update.
    pub fn carried_over(old: &Balancer, old_cluster: &Cluster, new: &Cluster) -> Balancer {
        let b = Balancer::new(new.endpoints.len());
        for (i, e) in new.endpoints.iter().enumerate() {
            let prev = old_cluster
                .endpoints
                .iter()
                .position(|o| o.address == e.address && o.port == e.port);
            if let (Some(h), Some(p)) = (b.health.get(i), prev.and_then(|p| old.health.get(p))) {
                h.copy_from(p);
            }
        }
        b
    }

    /// Counts the status of an attempt on endpoint `i` for outlier detection (nothing when the
    /// cluster has none). Returns whether it ejected the endpoint.
    pub fn record(&self, c: &Cluster, i: usize, status: Status) -> bool {
        let Some(od) = &c.outlier else { return false };
        let ejected = outlier::record(od, &self.health, i, status, now_ms());
        if ejected && let Some(e) = c.endpoints.get(i) {
            tracing::info!(
                cluster = %c.name, endpoint = %format!("{}:{}", e.address, e.port),
                status = status.0, "outlier detection ejected an endpoint"
            );
        }
        ejected
    }

    /// Outlier detection's view of endpoint `i`.
    pub fn outlier_state(&self, i: usize) -> OutlierState {
        let now = now_ms();
        match self.health.get(i) {
            Some(h) if h.is_ejected(now) => OutlierState::Ejected(h.ejected_until() - now),
            _ => OutlierState::Ok,
        }
    }

    fn healthy(&self, c: &Cluster, i: usize, now: u64) -> bool {
        !c.endpoints[i].unhealthy && !self.health.get(i).is_some_and(|h| h.is_ejected(now))
    }

    /// Chooses an endpoint of `c`, skipping `exclude` (endpoints a retry already tried) while
    /// another healthy one is left. `None`: no endpoint, or none healthy where the cluster's
    /// outlier detection forbids panic mode (`minHealthPercent: 0`, Istio's default).
    pub fn choose(&self, c: &Cluster, exclude: &[usize], rng: &mut impl Rng) -> Option<usize> {
        self.choose_at(c, exclude, now_ms(), rng)
    }

    /// [`Balancer::choose`] at time `now` (`now_ms`'s clock).
    fn choose_at(
        &self,
        c: &Cluster,
        exclude: &[usize],
        now: u64,
        rng: &mut impl Rng,
    ) -> Option<usize> {
        let n = c.endpoints.len();
        if n == 0 {
            return None;
        }
        let candidates = self.level_candidates(c, now, rng)?;
        let candidates = self.by_locality(c, candidates, now, rng);
        let fresh: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|i| !exclude.contains(i))
            .collect();
        let pool = if !fresh.is_empty() {
            fresh
        } else {
            // A retry prefers any healthy endpoint not tried yet, on any level.
            let others: Vec<usize> = (0..n)
                .filter(|i| !exclude.contains(i) && self.healthy(c, *i, now))
                .collect();
            if others.is_empty() {
                candidates
            } else {
                others
            }
        };
        Some(self.by_policy(c, &pool, rng))
    }

    /// The endpoints of the priority level this request goes to: healthy ones, or all of the
    /// level's in panic mode.
    fn level_candidates(&self, c: &Cluster, now: u64, rng: &mut impl Rng) -> Option<Vec<usize>> {
        let mut levels: Vec<u32> = c.endpoints.iter().map(|e| e.priority).collect();
        levels.sort_unstable();
        levels.dedup();
        let members =
            |p: u32| (0..c.endpoints.len()).filter(move |i| c.endpoints[*i].priority == p);
        let health: Vec<(usize, usize)> = levels
            .iter()
            .map(|p| {
                let all = members(*p).count();
                let ok = members(*p).filter(|i| self.healthy(c, *i, now)).count();
                (ok, all)
            })
            .collect();
        // A level's health in percent, overprovisioned; the loads fill 100 in level order and
        // are scaled up when the levels together are not healthy enough to carry it all.
        let pct: Vec<u64> = health
            .iter()
            .map(|(ok, all)| (OVERPROVISIONING * *ok as u64 / (*all).max(1) as u64).min(100))
            .collect();
        let total: u64 = pct.iter().sum::<u64>().min(100);
        let level = if total == 0 {
            0
        } else {
            let mut remaining = 100u64;
            let loads: Vec<u64> = pct
                .iter()
                .map(|p| {
                    let l = (*p).min(remaining);
                    remaining -= l;
                    l
                })
                .collect();
            let sum: u64 = loads.iter().sum();
            let mut x = rng.random_range(0..sum.max(1));
            let mut pick = 0;
            for (k, l) in loads.iter().enumerate() {
                if x < *l {
                    pick = k;
                    break;
                }
                x -= l;
            }
            pick
        };
        let p = levels[level];
        let (ok, all) = health[level];
        let panic = match &c.outlier {
            // Envoy's panic threshold as Istio sets it from `minHealthPercent`.
            Some(od) => (ok as u64) * 100 < u64::from(od.min_health_percent) * all as u64,
            // Without outlier detection only the control plane marks endpoints, and a cluster
            // with none healthy uses them all rather than fail every request.
            None => ok == 0,
        };
        let chosen: Vec<usize> = members(p)
            .filter(|i| panic || self.healthy(c, *i, now))
            .collect();
        (!chosen.is_empty()).then_some(chosen)
    }

    /// Within a level, the locality `distribute` sends this request to, by weight scaled by how
    /// much of the locality is healthy.
    fn by_locality(
        &self,
        c: &Cluster,
        candidates: Vec<usize>,
        now: u64,
        rng: &mut impl Rng,
    ) -> Vec<usize> {
        if c.locality_weights.is_empty() {
            return candidates;
        }
        let mut shares: Vec<(&str, u64)> = Vec::new();
        for (loc, w) in &c.locality_weights {
            let here = candidates
                .iter()
                .filter(|i| c.endpoints[**i].locality == *loc);
            let all = here.clone().count() as u64;
            if all == 0 {
                continue;
            }
            let ok = here.filter(|i| self.healthy(c, **i, now)).count() as u64;
            let avail = (OVERPROVISIONING * ok / all).min(100);
            shares.push((loc.as_str(), u64::from(*w) * avail.max(1)));
        }
        let total: u64 = shares.iter().map(|(_, w)| w).sum();
        if total == 0 {
            return candidates;
        }
        let mut x = rng.random_range(0..total);
        let mut chosen = shares[0].0;
        for (loc, w) in &shares {
            if x < *w {
                chosen = loc;
                break;
            }
            x -= w;
        }
        candidates
            .into_iter()
            .filter(|i| c.endpoints[*i].locality == chosen)
            .collect()
    }

    /// The cluster's policy among `pool` (never empty).
    fn by_policy(&self, c: &Cluster, pool: &[usize], rng: &mut impl Rng) -> usize {
        let weight = |i: usize| u64::from(c.endpoints[i].weight.max(1));
        let total: u64 = pool.iter().map(|i| weight(*i)).sum();
        let nth = |mut x: u64| {
            for &i in pool {
                if x < weight(i) {
                    return i;
                }
                x -= weight(i);
            }
            pool[0]
        };
        match c.lb {
            // Weighted: an endpoint of weight w takes w turns of every total-weight round (a
            // gateway standing in for three pods takes three).
            strait_config::LbPolicy::RoundRobin => {
                let k = self.next.fetch_add(1, Ordering::Relaxed) as u64;
                nth(k % total.max(1))
            }
            strait_config::LbPolicy::Random => nth(rng.random_range(0..total.max(1))),
            strait_config::LbPolicy::LeastRequest => {
                // Power of two choices: Envoy's default for LEAST_REQUEST.
                let a = nth(rng.random_range(0..total.max(1)));
                let b = nth(rng.random_range(0..total.max(1)));
                if self.load(b) < self.load(a) { b } else { a }
            }
        }
    }

    fn load(&self, i: usize) -> u32 {
        self.inflight
            .get(i)
            .map_or(0, |a| a.load(Ordering::Relaxed))
    }

    /// Marks a request in flight to endpoint `i` until the guard drops.
    pub fn start(&self, i: usize) -> InflightGuard<'_> {
        if let Some(a) = self.inflight.get(i) {
            a.fetch_add(1, Ordering::Relaxed);
        }
        InflightGuard { b: self, i }
    }
}

#[derive(Debug)]
pub struct InflightGuard<'a> {
    b: &'a Balancer,
    i: usize,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        if let Some(a) = self.b.inflight.get(self.i) {
            a.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
