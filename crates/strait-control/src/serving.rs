//! The control plane's serving certificate, signed by its own CA for the DNS names proxies
//! dial, and re-issued at half-life so a long-running control plane never serves an expired
//! one. The TLS acceptor reads the current one on every handshake.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use strait_ca::Authority;

use crate::ControlError;

/// Lifetime of the serving certificate.
const TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Debug)]
pub struct ServingCert {
    authority: Arc<Authority>,
    names: Vec<String>,
    current: Arc<ArcSwap<CertifiedKey>>,
    renew_at: SystemTime,
}

#[derive(Debug)]
struct Resolver(Arc<ArcSwap<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

fn issue(
    authority: &Authority,
    names: &[String],
) -> Result<(CertifiedKey, SystemTime), ControlError> {
    let (chain, key) = crate::ca::serving_cert(authority, names, TTL)?;
    let (nb, na) = chain
        .first()
        .map(|leaf| strait_ca::validity(leaf))
        .transpose()
        .map_err(|e| ControlError::Ca(e.to_string()))?
        .ok_or_else(|| ControlError::Ca("serving certificate: empty chain".into()))?;
    let provider = rustls::crypto::ring::default_provider();
    let ck = CertifiedKey::from_der(chain, key, &provider)?;
    Ok((ck, strait_ca::renewal_time(nb.max(SystemTime::now()), na)))
}

impl ServingCert {
    pub fn new(authority: Arc<Authority>, names: Vec<String>) -> Result<ServingCert, ControlError> {
        let (ck, due) = issue(&authority, &names)?;
        Ok(ServingCert {
            authority,
            names,
            current: Arc::new(ArcSwap::from_pointee(ck)),
            renew_at: due,
        })
    }

    pub fn resolver(&self) -> Arc<dyn ResolvesServerCert> {
        Arc::new(Resolver(self.current.clone()))
    }

    /// Re-issues at half-life; on failure keeps the current one and retries in a minute.
    pub async fn renew_forever(self) {
        let mut due = self.renew_at;
        loop {
            tokio::time::sleep(
                due.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            )
            .await;
            match issue(&self.authority, &self.names) {
                Ok((ck, next)) => {
                    self.current.store(Arc::new(ck));
                    due = next;
                    tracing::info!("serving certificate renewed");
                }
                Err(e) => {
                    tracing::error!(error = %e, "serving certificate renewal failed; retrying in 60 s");
                    due = SystemTime::now() + Duration::from_secs(60);
                }
            }
        }
    }
}
