//! Reading a workload's certificate signing request. Only its public key is used: the
//! subject and the SANs it asks for are ignored, because the identity comes from the
//! caller's authenticated credentials, never from the request (Istio does the same,
//! `security/pkg/server/ca/server.go`).

use rcgen::{PKCS_ECDSA_P256_SHA256, PublicKeyData, SignatureAlgorithm};
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
use x509_parser::prelude::FromDer;

use crate::error::CsrError;

/// Length of an uncompressed P-256 point: 0x04, X, Y.
const P256_POINT_LEN: usize = 65;

/// The public key of a verified CSR, ready to be certified.
#[derive(Debug)]
pub(crate) struct CsrKey {
    point: Vec<u8>,
}

impl PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

/// A PEM `CERTIFICATE REQUEST` → its verified ECDSA P-256 key.
pub(crate) fn parse_pem(pem: &[u8]) -> Result<CsrKey, CsrError> {
    let der = CertificateSigningRequestDer::from_pem_slice(pem).map_err(|e| CsrError::NotPem {
        detail: match e {
            rustls_pki_types::pem::Error::NoItemsFound => None,
            e => Some(e.to_string()),
        },
    })?;
    parse_der(der.as_ref())
}

/// A DER PKCS#10 request → its verified ECDSA P-256 key.
pub(crate) fn parse_der(der: &[u8]) -> Result<CsrKey, CsrError> {
    let (rest, csr) =
        X509CertificationRequest::from_der(der).map_err(|e| CsrError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CsrError::TrailingData);
    }
    let spki = &csr.certification_request_info.subject_pki;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY || curve != Some(OID_EC_P256) {
        let what = match curve {
            Some(c) if spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY => {
                format!("an elliptic-curve key on curve {c}")
            }
            _ => format!("of algorithm {}", spki.algorithm.algorithm),
        };
        return Err(CsrError::UnsupportedKey(what));
    }
    let point = spki.subject_public_key.data.to_vec();
    // Compressed points are legal X.509 but ring (and so rustls peers) cannot use them.
    if point.len() != P256_POINT_LEN || point.first() != Some(&0x04) {
        return Err(CsrError::UnsupportedKey(
            "a P-256 key that is not an uncompressed point".into(),
        ));
    }
    // Proof of possession: without it anyone could get a certificate for a key they
    // merely saw, e.g. a peer's.
    csr.verify_signature().map_err(|_| CsrError::BadSignature)?;
    Ok(CsrKey { point })
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair};

    use super::*;

    fn csr_for(key: &KeyPair) -> String {
        CertificateParams::new(vec!["ignored.example".to_string()])
            .expect("params")
            .serialize_request(key)
            .expect("csr")
            .pem()
            .expect("pem")
    }

    #[test]
    fn accepts_a_p256_request() {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("keygen");
        let parsed = parse_pem(csr_for(&key).as_bytes()).expect("valid");
        assert_eq!(parsed.der_bytes(), key.der_bytes());
    }

    #[test]
    fn refuses_other_curves_and_algorithms() {
        for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
            let key = KeyPair::generate_for(alg).expect("keygen");
            let e = parse_pem(csr_for(&key).as_bytes()).expect_err("not P-256");
            assert!(matches!(e, CsrError::UnsupportedKey(_)), "{e}");
        }
    }

    #[test]
    fn refuses_non_pem() {
        assert!(matches!(
            parse_pem(b"garbage"),
            Err(CsrError::NotPem { detail: None })
        ));
        assert!(matches!(
            parse_der(b"\x30\x00"),
            Err(CsrError::Malformed(_))
        ));
    }
}
