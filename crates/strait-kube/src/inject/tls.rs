//! The webhook's serving certificate and the `caBundle` the API server verifies it with.
//!
//! The API server calls the webhook through its Service (`istiod.istio-system.svc:443`, to
//! 15017), so the certificate is issued by the mesh's own CA for the Service's DNS names, the
//! way istiod's is. It is re-issued at half-life and swapped in without a restart; a renewal
//! also re-reads the CA directory, so a rotated `cacerts` (new intermediate, same root) is
//! picked up. The API server must trust the mesh's roots: [`ca_bundle`] gives the value of
//! `webhooks[].clientConfig.caBundle`, which `strait install` renders empty and
//! [`super::webhook_patch`] writes into the MutatingWebhookConfiguration and keeps current.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use base64::Engine;
use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use strait_ca::Authority;

/// Lifetime of the serving certificate (istiod's webhook certificate is as short-lived).
const TTL: Duration = Duration::from_secs(24 * 3600);
/// How long after a failed renewal the next attempt is made.
const RETRY: Duration = Duration::from_secs(60);

/// Why no serving certificate could be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("injector serving certificate: {0}")]
    Ca(#[from] strait_ca::Error),
    #[error("injector serving key: {0}")]
    Key(String),
    #[error("injector TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The DNS names the API server dials: the revision's Service (`istiod-<rev>`, or `istiod`
/// for the default revision) in the control plane's namespace, short and fully qualified.
pub fn dns_names(istio_namespace: &str, revision: &str) -> Vec<String> {
    let service = if revision.is_empty() || revision == "default" {
        "istiod".to_string()
    } else {
        format!("istiod-{revision}")
    };
    vec![
        format!("{service}.{istio_namespace}.svc"),
        format!("{service}.{istio_namespace}.svc.cluster.local"),
    ]
}

/// `caBundle` for the MutatingWebhookConfiguration: the mesh's trust bundle (PEM), base64.
pub fn ca_bundle(authority: &Authority) -> String {
    base64::engine::general_purpose::STANDARD.encode(authority.roots_pem())
}

fn issue(authority: &Authority, names: &[String]) -> Result<(CertifiedKey, SystemTime), TlsError> {
    let (chain_pem, key_pem) = authority.issue_server(names, TTL)?;
    let chain = strait_ca::parse_chain(chain_pem.concat())?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| TlsError::Key(e.to_string()))?;
    let (not_before, not_after) = match chain.first() {
        Some(leaf) => strait_ca::validity(leaf)?,
        None => return Err(TlsError::Key("the CA returned an empty chain".into())),
    };
    let provider = rustls::crypto::ring::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider)?;
    let renew = strait_ca::renewal_time(not_before.max(SystemTime::now()), not_after);
    Ok((key, renew))
}

/// The current serving certificate, and how to renew it.
#[derive(Clone)]
pub struct ServingCert {
    authority: Arc<Mutex<Arc<Authority>>>,
    ca_dir: Option<PathBuf>,
    names: Vec<String>,
    current: Arc<ArcSwap<CertifiedKey>>,
    renew_at: SystemTime,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert")
            .field("names", &self.names)
            .field("ca_dir", &self.ca_dir)
            .field("renew_at", &self.renew_at)
            .finish()
    }
}

#[derive(Debug)]
struct Resolver(Arc<ArcSwap<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

impl ServingCert {
    /// Issues the first certificate for `names`. `ca_dir`, when the CA was loaded from one, is
    /// re-read at each renewal.
    pub fn new(
        authority: Arc<Authority>,
        ca_dir: Option<PathBuf>,
        names: Vec<String>,
    ) -> Result<ServingCert, TlsError> {
        let (key, renew_at) = issue(&authority, &names)?;
        Ok(ServingCert {
            authority: Arc::new(Mutex::new(authority)),
            ca_dir,
            names,
            current: Arc::new(ArcSwap::from_pointee(key)),
            renew_at,
        })
    }

    /// The TLS configuration of the webhook: TLS 1.2 and 1.3 (the API server speaks both),
    /// HTTP/2 or HTTP/1.1, no client certificate (the API server presents none by default).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.current.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The CA's trust bundle as `caBundle` (see [`ca_bundle`]); current after a reload.
    pub fn ca_bundle(&self) -> String {
        match self.authority.lock() {
            Ok(a) => ca_bundle(&a),
            Err(poisoned) => ca_bundle(&poisoned.into_inner().clone()),
        }
    }

    /// Renews once: re-reads the CA directory (keeping the loaded CA if it cannot be read),
    /// issues, swaps. Returns when the next renewal is due.
    pub fn renew(&self) -> Result<SystemTime, TlsError> {
        let authority = {
            let mut held = match self.authority.lock() {
                Ok(held) => held,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some(dir) = &self.ca_dir {
                match Authority::load(dir) {
                    Ok(fresh) => *held = Arc::new(fresh),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot re-read the CA directory; renewing with the loaded CA")
                    }
                }
            }
            held.clone()
        };
        let (key, next) = issue(&authority, &self.names)?;
        self.current.store(Arc::new(key));
        Ok(next)
    }

    /// Renews at half-life, forever; after a failure, retries in a minute while the current
    /// certificate keeps serving.
    pub async fn renew_forever(self) {
        let mut due = self.renew_at;
        loop {
            let wait = due
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            tokio::time::sleep(wait).await;
            due = match self.renew() {
                Ok(next) => {
                    tracing::info!(names = ?self.names, "injector serving certificate renewed");
                    next
                }
                Err(e) => {
                    tracing::error!(error = %e, "injector certificate renewal failed; retrying in 60 s");
                    SystemTime::now() + RETRY
                }
            };
        }
    }

    /// The leaf certificate now served (DER), for tests and status output.
    pub fn current_leaf(&self) -> Option<Vec<u8>> {
        self.current.load().cert.first().map(|c| c.to_vec())
    }
}
