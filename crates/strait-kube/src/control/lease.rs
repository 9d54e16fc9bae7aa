//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's elector (and so
//! istiod) runs it: one replica holds the lease and renews it; the others watch it and take
//! it over once it has not changed for a lease duration. Every write carries the
//! resourceVersion it was based on, so of two replicas racing for the same lease the API
//! server accepts one and answers the other 409 Conflict.
//!
//! Expiry is judged by when this replica last *saw* the lease change (its own monotonic
//! clock), not by the `renewTime` another replica wrote (its wall clock): clocks of two nodes
//! may disagree, and a wall clock may be stepped; the time between two observations here
//! cannot. A leader that cannot renew within the renew deadline, counted from the start of
//! its last successful round, gives up before its lease could be taken over: a round still
//! waiting for the API server when the deadline passes is abandoned. One that loses a write
//! race gives up at once.

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;

/// The election istiod's namespace controller (the root-certificate writer) runs.
pub const NAMESPACE_CONTROLLER: &str = "istio-namespace-controller-election";

/// Which lease, who is asking, and client-go's timings.
#[derive(Clone, Debug)]
pub struct ElectionConfig {
    /// The namespace of the lease (the Istio namespace).
    pub namespace: String,
    /// The lease's name, e.g. [`NAMESPACE_CONTROLLER`].
    pub name: String,
    /// This replica's holder identity: its pod name.
    pub identity: String,
    /// How long a lease nobody renews stays held (default 15 s).
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it gives up (default 10 s).
    pub renew_deadline: Duration,
    /// How often a replica tries to acquire or renew (default 2 s).
    pub retry_period: Duration,
}

impl ElectionConfig {
    /// The lease `name` in `namespace` for the replica `identity`, with client-go's timings.
    pub fn new(namespace: &str, name: &str, identity: &str) -> ElectionConfig {
        ElectionConfig {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("lease {namespace}/{name}: cannot {action}: {source}")]
pub struct ElectionError {
    pub namespace: String,
    pub name: String,
    pub action: &'static str,
    #[source]
    pub source: kube::Error,
}

/// Whether this replica leads now; cheap to clone.
#[derive(Clone, Debug)]
pub struct Leadership(watch::Receiver<bool>);

impl Leadership {
    /// Leadership that never changes: for a control plane that runs as a single replica by
    /// design, or one told by other means.
    pub fn fixed(leader: bool) -> Leadership {
        Leadership(watch::channel(leader).1)
    }

    pub fn is_leader(&self) -> bool {
        *self.0.borrow()
    }

    /// A receiver that sees every change of leadership.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }
}

impl From<watch::Receiver<bool>> for Leadership {
    fn from(rx: watch::Receiver<bool>) -> Leadership {
        Leadership(rx)
    }
}

/// A point in time as the election needs it: the wall clock for the stamps it writes, the
/// monotonic clock for the expiry it judges.
#[derive(Clone, Copy, Debug)]
pub struct Moment {
    pub wall: SystemTime,
    pub mono: Instant,
}

impl Moment {
    /// Now, the monotonic part from tokio's clock (the same as the system's, except in tests
    /// that pause it).
    pub fn now() -> Moment {
        Moment {
            wall: SystemTime::now(),
            mono: tokio::time::Instant::now().into_std(),
        }
    }
}

/// The lease as last seen: its version and when this replica saw that version first.
#[derive(Debug)]
struct Observed {
    version: String,
    at: Instant,
}

/// One replica's side of the election.
#[derive(Debug)]
pub struct Elector {
    api: Api<Lease>,
    config: ElectionConfig,
    observed: Option<Observed>,
    leader: watch::Sender<bool>,
}

impl Elector {
    pub fn new(client: Client, config: ElectionConfig) -> Elector {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
            leader: watch::channel(false).0,
        }
    }

    pub fn leadership(&self) -> Leadership {
        Leadership(self.leader.subscribe())
    }

    fn error(&self, action: &'static str, source: kube::Error) -> ElectionError {
        ElectionError {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            action,
            source,
        }
    }

    fn set_leader(&self, leader: bool) {
        self.leader
            .send_if_modified(|l| std::mem::replace(l, leader) != leader);
    }

    /// One round at time `now`: takes the lease when it is free or expired, renews it when
    /// held. Whether this replica leads afterwards; an API error leaves leadership as it
    /// was (the caller decides when a leader that cannot renew gives up).
    pub async fn try_acquire_or_renew(&mut self, now: Moment) -> Result<bool, ElectionError> {
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.error("read it", e))?;
        let Some(current) = current else {
            return self.create(now).await;
        };
        let version = current
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        if self.observed.as_ref().is_none_or(|o| o.version != version) {
            self.observed = Some(Observed {
                version: version.clone(),
                at: now.mono,
            });
        }
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        let mine = holder == self.config.identity;
        if !mine && !holder.is_empty() && !self.expired(&spec, now.mono) {
            self.set_leader(false);
            return Ok(false);
        }
        let stamp = micro_time(now.wall);
        let next = LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(seconds(self.config.lease_duration)),
            acquire_time: if mine {
                spec.acquire_time.clone().or_else(|| Some(stamp.clone()))
            } else {
                Some(stamp.clone())
            },
            renew_time: Some(stamp),
            lease_transitions: Some(
                spec.lease_transitions.unwrap_or(0) + i32::from(!mine && !holder.is_empty()),
            ),
            ..spec
        };
        self.write(current, next, now).await
    }

    /// Whether the lease, unchanged since this replica first saw it, has outlived its
    /// duration.
    fn expired(&self, spec: &LeaseSpec, now: Instant) -> bool {
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.config.lease_duration, Duration::from_secs);
        self.observed
            .as_ref()
            .is_some_and(|o| o.at + duration <= now)
    }

    async fn create(&mut self, now: Moment) -> Result<bool, ElectionError> {
        let stamp = micro_time(now.wall);
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(seconds(self.config.lease_duration)),
                acquire_time: Some(stamp.clone()),
                renew_time: Some(stamp),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(created) => {
                self.observed_write(&created, now);
                self.set_leader(true);
                Ok(true)
            }
            // Another replica created it first.
            Err(kube::Error::Api(s)) if s.is_already_exists() || s.is_conflict() => {
                self.set_leader(false);
                Ok(false)
            }
            Err(e) => Err(self.error("create it", e)),
        }
    }

    /// Writes `spec` over `current`, guarded by its resourceVersion.
    async fn write(
        &mut self,
        mut current: Lease,
        spec: LeaseSpec,
        now: Moment,
    ) -> Result<bool, ElectionError> {
        current.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &current)
            .await
        {
            Ok(written) => {
                self.observed_write(&written, now);
                self.set_leader(true);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.is_conflict() => {
                tracing::info!(
                    lease = %self.config.name,
                    "lease changed by another replica; not the leader"
                );
                self.set_leader(false);
                Ok(false)
            }
            Err(e) => Err(self.error("update it", e)),
        }
    }

    fn observed_write(&mut self, written: &Lease, now: Moment) {
        self.observed = Some(Observed {
            version: written
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default(),
            at: now.mono,
        });
    }

    /// Hands the lease back (holder cleared), so another replica takes over at once rather
    /// than after a lease duration, as istiod does on shutdown.
    pub async fn release(&mut self, now: SystemTime) -> Result<(), ElectionError> {
        if !*self.leader.borrow() {
            return Ok(());
        }
        self.set_leader(false);
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.error("read it", e))?;
        let Some(current) = current else {
            return Ok(());
        };
        let spec = current.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let stamp = micro_time(now);
        let released = LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(stamp.clone()),
            renew_time: Some(stamp),
            ..spec
        };
        let mut current = current;
        current.spec = Some(released);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &current)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.is_conflict() => Ok(()),
            Err(e) => Err(self.error("release it", e)),
        }
    }

    /// Campaigns and leads until `stop` resolves, then releases the lease if held.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        // When the last successful round began: the lease was renewed no earlier, so other
        // replicas cannot take it over before lease_duration after this.
        let mut renewed: Option<Instant> = None;
        loop {
            let was_leader = *self.leader.borrow();
            let start = Moment::now();
            let budget = match renewed.filter(|_| was_leader) {
                Some(r) => (r + self.config.renew_deadline).saturating_duration_since(start.mono),
                None => self.config.renew_deadline,
            };
            let round = tokio::time::timeout(budget, self.try_acquire_or_renew(start)).await;
            match round {
                Ok(Ok(true)) => {
                    if !was_leader {
                        tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became the leader");
                    }
                    renewed = Some(start.mono);
                }
                Ok(Ok(false)) => {
                    if was_leader {
                        tracing::warn!(lease = %self.config.name, "lost the lease");
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "leader election"),
                Err(_) => {
                    tracing::warn!(lease = %self.config.name, "leader election: no answer from the API server")
                }
            }
            if *self.leader.borrow()
                && renewed.is_none_or(|r| {
                    Moment::now().mono.saturating_duration_since(r) >= self.config.renew_deadline
                })
            {
                tracing::warn!(
                    lease = %self.config.name,
                    "could not renew the lease within the renew deadline; no longer the leader"
                );
                self.set_leader(false);
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.retry_period) => {}
                () = &mut stop => break,
            }
        }
        if let Err(e) = self.release(SystemTime::now()).await {
            tracing::warn!(error = %e, "lease not released; it expires by itself");
        }
    }
}

fn micro_time(t: SystemTime) -> MicroTime {
    MicroTime(Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}
