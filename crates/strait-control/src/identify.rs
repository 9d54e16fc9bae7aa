//! Establishing who is calling, for both services: the SPIFFE identity of the client
//! certificate when the proxy presented one (renewals, discovery), else its bootstrap token.
//! Either way the caller must belong to a cluster this control plane serves.

use std::sync::Arc;

use strait_ca::SpiffeId;
use tonic::{Request, Status};

use crate::auth::{Authenticator, Caller};
use crate::conn::Peer;

/// What every RPC needs to authenticate a caller.
#[derive(Clone, Debug)]
pub struct Identify {
    pub tokens: Arc<dyn Authenticator>,
    /// Clusters whose workloads this control plane serves, as the mesh in force says now: a
    /// remote whose secret arrives after start is served from the load that reads it.
    pub clusters: Served,
    /// Trust domains accepted in client certificates (the mesh's and its aliases).
    pub trust_domains: Vec<String>,
}

fn metadata<'r, T>(req: &'r Request<T>, key: &str) -> Option<&'r str> {
    req.metadata().get(key).and_then(|v| v.to_str().ok())
}

/// The clusters a control plane serves, asked at each call.
#[derive(Clone)]
pub struct Served(Arc<dyn Fn() -> Vec<String> + Send + Sync>);

impl Served {
    /// Whatever `now` says at the time of each call.
    pub fn dynamic(now: impl Fn() -> Vec<String> + Send + Sync + 'static) -> Served {
        Served(Arc::new(now))
    }

    /// Always `clusters`.
    pub fn fixed(clusters: Vec<String>) -> Served {
        Served::dynamic(move || clusters.clone())
    }

    pub fn now(&self) -> Vec<String> {
        (self.0)()
    }
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Served").field(&self.now()).finish()
    }
}

impl Identify {
    /// The authenticated caller of `req`.
    pub async fn caller<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        let claimed = metadata(req, strait_protocol::CLUSTER_ID).unwrap_or("");
        let peer = req.extensions().get::<Peer>();
        let caller = match peer.and_then(|p| p.identity.as_ref()) {
            Some(id) => self.certificate_caller(id, claimed)?,
            None => {
                let token = metadata(req, strait_protocol::AUTHORIZATION)
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        Status::unauthenticated(
                            "no credential: present a mesh certificate or a bearer token",
                        )
                    })?;
                self.tokens
                    .authenticate(token, claimed)
                    .await
                    .map_err(|e| Status::unauthenticated(e.to_string()))?
            }
        };
        let served = self.clusters.now();
        if !served.contains(&caller.cluster) {
            return Err(Status::permission_denied(format!(
                "cluster {} is not served by this control plane (it serves {})",
                caller.cluster,
                served.join(", ")
            )));
        }
        Ok(caller)
    }

    fn certificate_caller(&self, id: &SpiffeId, claimed: &str) -> Result<Caller, Status> {
        if !self.trust_domains.iter().any(|td| td == id.trust_domain()) {
            return Err(Status::permission_denied(format!(
                "certificate identity {id} is outside the mesh's trust domain ({})",
                self.trust_domains.join(", ")
            )));
        }
        // A certificate does not name its cluster; a single-cluster control plane knows it.
        let served = self.clusters.now();
        let cluster = match (claimed, served.as_slice()) {
            ("", [only]) => only.clone(),
            ("", _) => return Err(Status::invalid_argument("missing clusterid metadata")),
            (c, _) => c.to_string(),
        };
        Ok(Caller {
            cluster,
            namespace: id.namespace().to_string(),
            service_account: id.service_account().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::auth::StaticTokens;

    fn identify() -> Identify {
        let mut t = HashMap::new();
        t.insert(
            "tok".to_string(),
            Caller {
                cluster: "cluster1".into(),
                namespace: "sample".into(),
                service_account: "sleep".into(),
            },
        );
        Identify {
            tokens: Arc::new(StaticTokens::from_map(t)),
            clusters: Served::fixed(vec!["cluster1".into()]),
            trust_domains: vec!["cluster.local".into()],
        }
    }

    fn request(token: Option<&str>, cluster: Option<&str>, id: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(t) = token {
            r.metadata_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("ascii"),
            );
        }
        if let Some(c) = cluster {
            r.metadata_mut()
                .insert("clusterid", c.parse().expect("ascii"));
        }
        r.extensions_mut().insert(Peer {
            addr: "127.0.0.1:1".parse().expect("addr"),
            identity: id.map(|i| SpiffeId::parse(i).expect("spiffe")),
        });
        r
    }

    #[tokio::test]
    async fn token_names_the_caller() {
        let c = identify()
            .caller(&request(Some("tok"), Some("cluster1"), None))
            .await
            .expect("caller");
        assert_eq!(
            (c.namespace.as_str(), c.service_account.as_str()),
            ("sample", "sleep")
        );
    }

    #[tokio::test]
    async fn unknown_token_and_missing_credential_are_refused() {
        let e = identify()
            .caller(&request(Some("nope"), None, None))
            .await
            .expect_err("refused");
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let e = identify()
            .caller(&request(None, None, None))
            .await
            .expect_err("refused");
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }

    #[tokio::test]
    async fn token_for_another_cluster_is_refused() {
        let e = identify()
            .caller(&request(Some("tok"), Some("cluster2"), None))
            .await
            .expect_err("refused");
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }

    #[tokio::test]
    async fn certificate_identity_wins_over_token() {
        let c = identify()
            .caller(&request(
                Some("tok"),
                None,
                Some("spiffe://cluster.local/ns/other/sa/app"),
            ))
            .await
            .expect("caller");
        assert_eq!(
            (c.cluster.as_str(), c.namespace.as_str()),
            ("cluster1", "other")
        );
    }

    #[tokio::test]
    async fn foreign_trust_domain_and_unserved_cluster_are_refused() {
        let e = identify()
            .caller(&request(
                None,
                None,
                Some("spiffe://evil.example/ns/a/sa/b"),
            ))
            .await
            .expect_err("refused");
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        let e = identify()
            .caller(&request(
                None,
                Some("cluster9"),
                Some("spiffe://cluster.local/ns/a/sa/b"),
            ))
            .await
            .expect_err("refused");
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
    }
}
