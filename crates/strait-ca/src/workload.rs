//! The proxy's side: a fresh key and CSR to send to the control plane, and when the
//! certificate that comes back must be renewed.

use std::fmt;
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, SanType};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, PemProblem};
use crate::identity::SpiffeId;
use crate::profile;

/// A workload's new private key and the CSR for it, both PEM.
pub struct WorkloadKey {
    /// PKCS#8 ECDSA P-256 private key. Never leaves the proxy.
    pub key_pem: String,
    /// PKCS#10 request for `identity`, signed with the key.
    pub csr_pem: String,
}

impl WorkloadKey {
    /// A new ECDSA P-256 key and a CSR naming `identity` as its URI SAN. The CA ignores
    /// what a CSR asks for and certifies the caller's authenticated identity; naming it
    /// anyway keeps the request meaningful to anyone inspecting it, as Istio's agent does.
    pub fn generate(identity: &SpiffeId) -> Result<Self, Error> {
        let key = profile::new_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(identity.to_string().try_into()?)];
        let csr_pem = params.serialize_request(&key)?.pem()?;
        Ok(WorkloadKey {
            key_pem: key.serialize_pem(),
            csr_pem,
        })
    }
}

impl fmt::Debug for WorkloadKey {
    /// The private key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadKey")
            .field("key_pem", &"[elided]")
            .field("csr_pem", &self.csr_pem)
            .finish()
    }
}

/// A certificate's `(notBefore, notAfter)`.
pub fn validity(cert_der: &[u8]) -> Result<(SystemTime, SystemTime), Error> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| {
        Error::Chain(PemProblem::BadCertificate {
            index: 1,
            detail: e.to_string(),
        })
    })?;
    let v = cert.validity();
    Ok((
        v.not_before.to_datetime().into(),
        v.not_after.to_datetime().into(),
    ))
}

/// A certificate's `notAfter`.
pub fn cert_expiry(cert_der: &[u8]) -> Result<SystemTime, Error> {
    Ok(validity(cert_der)?.1)
}

/// When to ask for a new certificate: half way through its life, as Istio's agent does
/// (`SECRET_GRACE_PERIOD_RATIO` 0.5), so a control plane outage shorter than half the
/// lifetime (12 h by default) never lets a workload's certificate lapse. Callers that renew
/// many workloads at once should add their own jitter. A certificate whose `notAfter` is
/// not after `start` is due at once.
///
/// `start` is when the certificate became usable: the later of its `notBefore` and the time
/// it was received. Issuers backdate `notBefore` ([`crate::CLOCK_SKEW`]); counting from
/// there would make a short-lived certificate due before it arrived.
pub fn renewal_time(start: SystemTime, not_after: SystemTime) -> SystemTime {
    let life = not_after.duration_since(start).unwrap_or(Duration::ZERO);
    start + life / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_at_half_life() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let end = start + Duration::from_secs(24 * 3600);
        assert_eq!(
            renewal_time(start, end),
            start + Duration::from_secs(12 * 3600)
        );
        assert_eq!(renewal_time(end, start), end);
    }

    #[test]
    fn key_and_csr_are_pem() {
        let id = SpiffeId::new("cluster.local", "ns", "sa").expect("valid");
        let wk = WorkloadKey::generate(&id).expect("generates");
        assert!(wk.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(
            wk.csr_pem
                .starts_with("-----BEGIN CERTIFICATE REQUEST-----")
        );
        assert!(!format!("{wk:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn validity_of_garbage_is_an_error() {
        assert!(validity(b"nope").is_err());
        assert!(cert_expiry(&[]).is_err());
    }
}
