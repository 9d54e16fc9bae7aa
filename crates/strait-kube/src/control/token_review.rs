//! Bootstrap tokens checked as istiod checks them: the proxy presents its projected
//! service-account token (audience `istio-ca`) and names its cluster (`ClusterID`); the
//! control plane asks that cluster's API server with a TokenReview and signs for the service
//! account the review proves. No claim in the token is trusted on its own.
//!
//! Istio reviews every request. Here a positive review is remembered for a short while
//! ([`DEFAULT_TTL`]), keyed by a SHA-256 of cluster and token, so a proxy's burst of
//! requests costs one review; a token revoked meanwhile (pod or service account deleted)
//! stops working when its entry expires. Only positive reviews are kept and the table is
//! bounded ([`DEFAULT_CAPACITY`], oldest out first), so a flood of tokens, valid or not,
//! cannot grow memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{
    TokenReview as Review, TokenReviewSpec, TokenReviewStatus,
};
use kube::Api;
use kube::api::PostParams;
use strait_control::auth::{AuthError, AuthFuture, Authenticator, Caller};

use crate::client::Clusters;

/// The audience istiod's CA accepts; proxies request their token for it.
pub const AUDIENCE: &str = "istio-ca";
/// How long a positive review is reused.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// How many positive reviews are kept at most.
pub const DEFAULT_CAPACITY: usize = 4096;
/// How long an API server may take to answer a review before the request fails.
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

const SA_PREFIX: &str = "system:serviceaccount:";
const SA_GROUP: &str = "system:serviceaccounts";

/// Verifies bootstrap tokens with the TokenReview API of the cluster the caller names.
#[derive(Debug)]
pub struct TokenReview {
    clusters: Clusters,
    own: String,
    audience: String,
    cache: Mutex<Cache>,
    /// Reviews in flight at once: the port is reachable through the east-west gateway, and
    /// a flood of junk tokens must not become a flood of requests to API servers.
    inflight: Arc<tokio::sync::Semaphore>,
}

/// At most this many reviews wait on API servers at once; more callers are refused at once
/// (they retry) rather than queued.
pub const MAX_IN_FLIGHT: usize = 64;

impl TokenReview {
    /// Reviews with the clients of `clusters`; a caller that names no cluster is in `own`
    /// (a single-cluster proxy sends none), as istiod assumes.
    pub fn new(clusters: Clusters, own: &str) -> TokenReview {
        TokenReview {
            clusters,
            own: own.to_string(),
            audience: AUDIENCE.to_string(),
            cache: Mutex::new(Cache::new(DEFAULT_TTL, DEFAULT_CAPACITY)),
            inflight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// Keeps positive reviews for `ttl`, at most `capacity` of them; a zero capacity or TTL
    /// reviews every request.
    pub fn with_cache(self, ttl: Duration, capacity: usize) -> TokenReview {
        TokenReview {
            cache: Mutex::new(Cache::new(ttl, capacity)),
            ..self
        }
    }

    async fn review(&self, token: &str, claimed: &str) -> Result<Caller, AuthError> {
        let cluster = if claimed.is_empty() {
            self.own.as_str()
        } else {
            claimed
        };
        let key = cache_key(cluster, token);
        if let Some(caller) = self.cache().get(&key, Instant::now()) {
            return Ok(caller);
        }
        let client = self
            .clusters
            .get(cluster)
            .ok_or_else(|| AuthError::UnknownCluster {
                cluster: cluster.to_string(),
                known: self.clusters.names(),
            })?;
        let request = Review {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..Review::default()
        };
        let Ok(_permit) = self.inflight.clone().try_acquire_owned() else {
            return Err(AuthError::ReviewUnavailable {
                cluster: cluster.to_string(),
                reason: format!("{MAX_IN_FLIGHT} reviews already in flight; try again"),
            });
        };
        let api: Api<Review> = Api::all(client);
        let answer =
            tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &request))
                .await
                .map_err(|_| AuthError::ReviewUnavailable {
                    cluster: cluster.to_string(),
                    reason: format!("no answer within {}s", REVIEW_TIMEOUT.as_secs()),
                })?
                .map_err(|e| api_error(cluster, e))?;
        let status = answer.status.unwrap_or_default();
        let caller = verdict(cluster, &self.audience, &status)?;
        self.cache().put(key, caller.clone(), Instant::now());
        Ok(caller)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Authenticator for TokenReview {
    fn authenticate<'a>(&'a self, token: &'a str, cluster: &'a str) -> AuthFuture<'a> {
        Box::pin(self.review(token, cluster))
    }
}

fn api_error(cluster: &str, e: kube::Error) -> AuthError {
    match e {
        kube::Error::Api(s) if s.is_forbidden() => AuthError::ReviewForbidden {
            cluster: cluster.to_string(),
            message: format!("{} {}: {}", s.code, s.reason, s.message),
        },
        kube::Error::Api(s) => AuthError::ReviewUnavailable {
            cluster: cluster.to_string(),
            reason: format!("HTTP {} {}: {}", s.code, s.reason, s.message),
        },
        other => AuthError::ReviewUnavailable {
            cluster: cluster.to_string(),
            reason: other.to_string(),
        },
    }
}

/// What a review's status proves: a service account of `cluster`, for `audience`.
fn verdict(cluster: &str, audience: &str, status: &TokenReviewStatus) -> Result<Caller, AuthError> {
    let refused = |reason: String| AuthError::NotAuthenticated {
        cluster: cluster.to_string(),
        reason,
    };
    if let Some(e) = status.error.as_deref().filter(|e| !e.is_empty()) {
        return Err(refused(e.to_string()));
    }
    if status.authenticated != Some(true) {
        return Err(refused(
            "not authenticated (expired, revoked, or issued by another cluster)".into(),
        ));
    }
    // The audiences the token is valid for among those asked. Empty means the token is valid
    // for the API server's own audience only (the TokenReview API's contract), not for the
    // CA: a pod's default service-account token must not buy a mesh identity.
    let audiences = status.audiences.clone().unwrap_or_default();
    if !audiences.iter().any(|a| a == audience) {
        return Err(AuthError::WrongAudience {
            cluster: cluster.to_string(),
            audiences,
            wanted: audience.to_string(),
        });
    }
    let user = status.user.as_ref();
    let username = user.and_then(|u| u.username.as_deref()).unwrap_or("");
    let in_group = user
        .and_then(|u| u.groups.as_ref())
        .is_some_and(|g| g.iter().any(|g| g == SA_GROUP));
    let parsed = username
        .strip_prefix(SA_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, sa)| !ns.is_empty() && !sa.is_empty() && !sa.contains(':'));
    match parsed {
        Some((namespace, service_account)) if in_group => Ok(Caller {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            service_account: service_account.to_string(),
        }),
        _ => Err(AuthError::NotServiceAccount {
            cluster: cluster.to_string(),
            username: if username.is_empty() {
                "an unnamed user".to_string()
            } else {
                username.to_string()
            },
        }),
    }
}

type Key = [u8; 32];

fn cache_key(cluster: &str, token: &str) -> Key {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(cluster.as_bytes());
    ctx.update(&[0]);
    ctx.update(token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

/// Positive reviews by token hash. Every entry lives the same TTL, so insertion order is
/// expiry order and the oldest entry is the first to go.
#[derive(Debug)]
struct Cache {
    ttl: Duration,
    capacity: usize,
    entries: HashMap<Key, (Caller, Instant)>,
    order: VecDeque<(Key, Instant)>,
}

impl Cache {
    fn new(ttl: Duration, capacity: usize) -> Cache {
        Cache {
            ttl,
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn get(&mut self, key: &Key, now: Instant) -> Option<Caller> {
        match self.entries.get(key) {
            Some((caller, expires)) if *expires > now => Some(caller.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, key: Key, caller: Caller, now: Instant) {
        if self.capacity == 0 || self.ttl.is_zero() {
            return;
        }
        while let Some(&(old, expires)) = self.order.front() {
            if expires > now && self.order.len() < self.capacity {
                break;
            }
            self.order.pop_front();
            // A key reviewed again has a newer entry; only its own queue slot removes it.
            if self.entries.get(&old).is_some_and(|(_, e)| *e == expires) {
                self.entries.remove(&old);
            }
        }
        let expires = now + self.ttl;
        self.entries.insert(key, (caller, expires));
        self.order.push_back((key, expires));
    }
}
