//! Whether a credential Secret's key belongs to its certificate: Envoy rejects a pair whose
//! public keys differ ("private key does not match certificate"), a case istioctl does not
//! look at. PEM framing is read here; the DER inside by x509-parser (certificates) and ring
//! (private keys). Keys neither reads are "unknown", never a finding.

/// One PEM block: its label and decoded body.
pub(super) struct Block {
    pub label: String,
    pub der: Vec<u8>,
    /// The block's text, markers included.
    pub text: String,
}

/// The PEM blocks of `text`, in order; a block whose body is not base64 ends the scan.
pub(super) fn pem_blocks(text: &[u8]) -> Vec<Block> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_string();
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body_start.find(&end_marker) else {
            break;
        };
        let Some(der) = base64(&body_start[..end]) else {
            break;
        };
        let stop = label_end + 5 + end + end_marker.len();
        out.push(Block {
            label,
            der,
            text: rest[start..start + 11 + stop].to_string(),
        });
        rest = &body_start[end + end_marker.len()..];
    }
    out
}

fn base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' | b' ' | b'\t' => continue,
            // PEM headers (`Proc-Type: ...`) mark an encrypted legacy key: not comparable.
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A public key as a certificate's SubjectPublicKeyInfo carries it: the DER `RSAPublicKey` of
/// an RSA key, the uncompressed point of an EC key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PublicKey(Vec<u8>);

/// The public key of a certificate (DER), read by x509-parser.
pub(super) fn of_certificate(der: &[u8]) -> Option<PublicKey> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(PublicKey(
        cert.public_key().subject_public_key.data.to_vec(),
    ))
}

/// The public key a private key block implies, as ring derives it: PKCS#8 RSA, P-256 and
/// P-384 keys, and PKCS#1 RSA keys. Other keys (SEC1, Ed25519, encrypted, RSA keys ring
/// refuses) give `None`: not compared, never a finding.
pub(super) fn of_private_key(block: &Block) -> Option<PublicKey> {
    use ring::signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
        RsaKeyPair,
    };
    let public = match block.label.as_str() {
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&block.der)
            .ok()?
            .public_key()
            .as_ref()
            .to_vec(),
        "PRIVATE KEY" => match RsaKeyPair::from_pkcs8(&block.der) {
            Ok(k) => k.public_key().as_ref().to_vec(),
            Err(_) => {
                let rng = ring::rand::SystemRandom::new();
                [
                    &ECDSA_P256_SHA256_ASN1_SIGNING,
                    &ECDSA_P384_SHA384_ASN1_SIGNING,
                ]
                .into_iter()
                .find_map(|alg| EcdsaKeyPair::from_pkcs8(alg, &block.der, &rng).ok())?
                .public_key()
                .as_ref()
                .to_vec()
            }
        },
        _ => return None,
    };
    Some(PublicKey(public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_across_lines() {
        assert_eq!(base64("aGVs\nbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64("a*b"), None);
    }

    #[test]
    fn pem_blocks_in_order() {
        let text = b"junk\n-----BEGIN A-----\naGk=\n-----END A-----\n-----BEGIN B C-----\nbw==\n-----END B C-----\n";
        let blocks = pem_blocks(text);
        let labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["A", "B C"]);
        assert_eq!(blocks[0].der, b"hi");
        assert_eq!(
            blocks[1].text,
            "-----BEGIN B C-----\nbw==\n-----END B C-----"
        );
    }

    #[test]
    fn truncated_der_is_none() {
        assert_eq!(of_certificate(&[0x30]), None);
        let key = Block {
            label: "PRIVATE KEY".into(),
            der: vec![0x30, 0x05, 0x01],
            text: String::new(),
        };
        assert_eq!(of_private_key(&key), None);
    }

    // `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256` and a second
    // `openssl genpkey -algorithm EC`.
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBijCCAS+gAwIBAgIUAp/LaPVzpNmF20MFchRUINFX/x8wCgYIKoZIzj0EAwIw\nGjEYMBYGA1UEAwwPYXBpLmV4YW1wbGUuY29tMB4XDTI2MTIwNjE5MDAyMVoXDTM2\nMTIwMzE5MDAyMVowGjEYMBYGA1UEAwwPYXBpLmV4YW1wbGUuY29tMFkwEwYHKoZI\nzj0CAQYIKoZIzj0DAQcDQgAEDnrnH0JkOjrYs38Vm6u3fJwa4DRVj1D73QDRNtS+\nPeemUGnoE4+TWqqaJwWMqCl/XLRi4+BVTWPr8bxEdIVlw6NTMFEwHQYDVR0OBBYE\nFJQ1lsU50+G1CWG41x/hQUj3XPwSMB8GA1UdIwQYMBaAFJQ1lsU50+G1CWG41x/h\nQUj3XPwSMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAO6kNZFO\nv4kiUA2ljJBoFHkh1gFGuS84BJ5Z8dHtrAlAAiEAnepfu2wztQLfsECMxOt0Hj49\nUMahtGHbc8CbGWp/w8c=\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHLntHd1a2FgZ/yk0\ngB+7UDNV7TQnuEAFX/cfG76HzkChRANCAAQOeucfQmQ6OtizfxWbq7d8nBrgNFWP\nUPvdANE21L4956ZQaegTj5NaqponBYyoKX9ctGLj4FVNY+vxvER0hWXD\n-----END PRIVATE KEY-----\n";
    const OTHER_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+nihxRbTzeCR4CPx\nbEnrwqOUKqmjGx7XMoVQAIpjVx+hRANCAAR3vY7xPWwPjktUusTNKm9Qte3RHqe4\n4sSXvDlihPaTz4f45BqjeqezpvPNDk/6a+ZvyFm6O0i6GRLCZaGDv/OJ\n-----END PRIVATE KEY-----\n";

    #[test]
    fn ec_key_matches_only_its_certificate() {
        let cert = pem_blocks(CERT.as_bytes());
        let public = of_certificate(&cert[0].der);
        assert!(public.is_some());
        let own = pem_blocks(KEY.as_bytes());
        assert_eq!(of_private_key(&own[0]), public);
        let other = pem_blocks(OTHER_KEY.as_bytes());
        assert!(of_private_key(&other[0]).is_some_and(|k| Some(k) != public));
    }
}
