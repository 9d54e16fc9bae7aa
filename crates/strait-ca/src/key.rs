//! CA private keys as operators have them.
//!
//! rcgen on ring reads only PKCS#8, but `openssl genrsa` (OpenSSL 1.1, which Istio's
//! sample Makefile was written for) writes PKCS#1 and `openssl ecparam -genkey` writes
//! SEC1. Both are wrapped into PKCS#8 here, which is the same key in a different envelope,
//! rather than asking operators to convert their existing `ca-key.pem`.

use rcgen::KeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::CaFileProblem;

/// DER of `rsaEncryption` with its NULL parameters.
const RSA_ALGORITHM: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// DER of `id-ecPublicKey`.
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER of the named curves ring can sign with: P-256, P-384.
const EC_CURVES: [&[u8]; 2] = [
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
    &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
];

/// The first private key in `pem`, in any of the three usual encodings.
pub(crate) fn parse_private_key(pem: &[u8]) -> Result<KeyPair, CaFileProblem> {
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            CaFileProblem::BadKey("no PEM PRIVATE KEY block (encrypted keys are not supported)")
        }
        _ => CaFileProblem::BadKey("the PEM text is malformed"),
    })?;
    let unsupported = CaFileProblem::BadKey(
        "not an RSA, ECDSA P-256/P-384 or Ed25519 key, or its encoding is corrupt",
    );
    match &key {
        PrivateKeyDer::Pkcs8(_) => KeyPair::try_from(&key).map_err(|_| unsupported),
        PrivateKeyDer::Pkcs1(rsa) => {
            from_pkcs8(&pkcs8(RSA_ALGORITHM, rsa.secret_pkcs1_der())).ok_or(unsupported)
        }
        // SEC1 may omit its curve; ring rejects a key wrapped with the wrong one, so
        // trying each is both simple and exact.
        PrivateKeyDer::Sec1(ec) => EC_CURVES
            .iter()
            .find_map(|curve| {
                let alg = [EC_PUBLIC_KEY, curve].concat();
                from_pkcs8(&pkcs8(&alg, ec.secret_sec1_der()))
            })
            .ok_or(unsupported),
        _ => Err(unsupported),
    }
}

fn from_pkcs8(der: &[u8]) -> Option<KeyPair> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec()));
    KeyPair::try_from(&key).ok()
}

/// `PrivateKeyInfo ::= SEQUENCE { version 0, AlgorithmIdentifier, OCTET STRING key }`.
fn pkcs8(algorithm_body: &[u8], key: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend(tlv(0x30, algorithm_body));
    body.extend(tlv(0x04, key));
    tlv(0x30, &body)
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use rcgen::PublicKeyData;

    use super::*;

    #[test]
    fn tlv_long_form_lengths() {
        assert_eq!(tlv(0x04, &[1; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[1; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[1; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn pkcs8_round_trip() {
        let key = KeyPair::generate().expect("keygen");
        let back = parse_private_key(key.serialize_pem().as_bytes()).expect("parses");
        assert_eq!(back.der_bytes(), key.der_bytes());
    }

    #[test]
    fn garbage_is_a_clear_error() {
        for bad in [
            &b""[..],
            b"hello",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        ] {
            assert!(matches!(
                parse_private_key(bad),
                Err(CaFileProblem::BadKey(_))
            ));
        }
    }
}
