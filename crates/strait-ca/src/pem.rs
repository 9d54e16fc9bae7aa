//! PEM in and out. Reading goes through `rustls-pki-types`' `PemObject`, the parser rustls
//! itself uses; writing is the few lines of RFC 7468 that pki-types does not provide.

use base64::Engine;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, PemProblem};

/// Every certificate in `pem`, in order, each checked to be one whole X.509 certificate.
/// For the chain a control plane returns (leaf first), a trust bundle, or any PEM file.
/// Other PEM blocks (keys, CSRs) are skipped; text between blocks is ignored.
pub fn parse_chain(pem: impl AsRef<[u8]>) -> Result<Vec<CertificateDer<'static>>, Error> {
    certificates(pem.as_ref()).map_err(Error::Chain)
}

pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemProblem> {
    let mut out = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let der = item.map_err(|e| PemProblem::Syntax(e.to_string()))?;
        match X509Certificate::from_der(&der) {
            Ok(([], _)) => {}
            Ok(_) => {
                return Err(PemProblem::BadCertificate {
                    index: out.len() + 1,
                    detail: "trailing bytes after the certificate".into(),
                });
            }
            Err(e) => {
                return Err(PemProblem::BadCertificate {
                    index: out.len() + 1,
                    detail: e.to_string(),
                });
            }
        }
        out.push(der);
    }
    if out.is_empty() {
        return Err(PemProblem::NoCertificate);
    }
    Ok(out)
}

/// RFC 7468 text: base64 in 64-column lines between BEGIN/END lines, ending in a newline.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // Base64 is ASCII, so splitting the bytes never splits a character.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

pub(crate) fn encode_cert(der: &[u8]) -> String {
    encode("CERTIFICATE", der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_certificate_is_an_error() {
        assert!(matches!(
            parse_chain(""),
            Err(Error::Chain(PemProblem::NoCertificate))
        ));
        assert!(matches!(
            parse_chain("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(Error::Chain(PemProblem::NoCertificate))
        ));
    }

    #[test]
    fn broken_pem_is_a_syntax_error() {
        let e = parse_chain("-----BEGIN CERTIFICATE-----\nAAAA\n").expect_err("no END line");
        assert!(matches!(e, Error::Chain(PemProblem::Syntax(_))), "{e}");
    }

    #[test]
    fn non_x509_is_named_by_index() {
        let pem = encode("CERTIFICATE", b"\x30\x03\x02\x01\x01");
        let e = parse_chain(pem).expect_err("not X.509");
        assert!(
            matches!(e, Error::Chain(PemProblem::BadCertificate { index: 1, .. })),
            "{e}"
        );
    }

    #[test]
    fn encode_wraps_at_64_columns() {
        let pem = encode("CERTIFICATE", &[7u8; 100]);
        assert!(pem.lines().all(|l| l.len() <= 64));
        let back: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("round trip");
        assert_eq!(back[0].as_ref(), &[7u8; 100]);
    }
}
