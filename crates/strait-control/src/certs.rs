//! The certificate service: signs a workload's CSR for the identity its credential proves
//! (the CSR's own names are ignored), through the cluster's intermediate, and answers with the
//! chain up to the root.

use std::sync::Arc;
use std::time::Duration;

use strait_ca::{Authority, SpiffeId};
use strait_protocol::v1::certificates_server::Certificates;
use strait_protocol::v1::{SignRequest, SignResponse};
use tonic::{Request, Response, Status};

use crate::conn::Peer;
use crate::identify::Identify;
use crate::metrics::{ErrorLabel, Metrics};

#[derive(Debug)]
pub struct CertService {
    pub authority: Arc<Authority>,
    pub trust_domain: String,
    pub identify: Identify,
    pub metrics: Arc<Metrics>,
}

impl CertService {
    /// Counts and logs a refused request, naming the peer, so refusals leave a trace.
    fn refuse(&self, peer: &str, reason: &str, status: Status) -> Status {
        tracing::warn!(
            peer,
            reason,
            message = status.message(),
            "certificate request refused"
        );
        let m = &self.metrics;
        match reason {
            "unauthenticated" => m.authn_failures.inc(),
            "bad_identity" => m.id_errors.inc(),
            "bad_csr" | "bad_ttl" => m.csr_parse_errors.inc(),
            _ => m
                .sign_errors
                .get_or_create(&ErrorLabel {
                    error: reason.to_string(),
                })
                .inc(),
        }
        status
    }
}

#[tonic::async_trait]
impl Certificates for CertService {
    async fn sign(&self, req: Request<SignRequest>) -> Result<Response<SignResponse>, Status> {
        self.metrics.csr.inc();
        let peer = req
            .extensions()
            .get::<Peer>()
            .map_or_else(|| "unknown".to_string(), |p| p.addr.to_string());
        let caller = match self.identify.caller(&req).await {
            Ok(c) => c,
            Err(s) => return Err(self.refuse(&peer, "unauthenticated", s)),
        };
        let body = req.into_inner();
        let ttl = u64::try_from(body.validity_seconds).map_err(|_| {
            self.refuse(
                &peer,
                "bad_ttl",
                Status::invalid_argument("validity_seconds must not be negative"),
            )
        })?;
        let identity = SpiffeId::new(
            &self.trust_domain,
            &caller.namespace,
            &caller.service_account,
        )
        .map_err(|e| {
            self.refuse(
                &peer,
                "bad_identity",
                Status::invalid_argument(e.to_string()),
            )
        })?;
        let chain = self
            .authority
            .sign_csr(&body.csr, &identity, Duration::from_secs(ttl))
            .map_err(|e| match e.blame() {
                strait_ca::Blame::Caller => {
                    self.refuse(&peer, "bad_csr", Status::invalid_argument(e.to_string()))
                }
                strait_ca::Blame::Config | strait_ca::Blame::Internal => {
                    tracing::error!(error = %e, "cannot sign");
                    self.refuse(&peer, "ca_error", Status::internal(e.to_string()))
                }
            })?;
        self.metrics.issued.inc();
        tracing::debug!(%identity, cluster = %caller.cluster, "certificate issued");
        Ok(Response::new(SignResponse { cert_chain: chain }))
    }
}
