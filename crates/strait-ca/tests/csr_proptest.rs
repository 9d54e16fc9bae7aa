//! The CSR parser against arbitrary input: never a panic, whatever the bytes. The same
//! entry point runs under libFuzzer (`fuzz/fuzz_targets/csr.rs`).

use proptest::prelude::*;
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use strait_ca::fuzzing::parse_csr_bytes;

fn valid_csr_der() -> Vec<u8> {
    let id = strait_ca::SpiffeId::new("cluster.local", "ns", "sa").expect("id");
    let wk = strait_ca::WorkloadKey::generate(&id).expect("key");
    CertificateSigningRequestDer::from_pem_slice(wk.csr_pem.as_bytes())
        .expect("pem")
        .as_ref()
        .to_vec()
}

fn as_pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n")
        .into_bytes()
}

#[test]
fn a_valid_csr_is_accepted() {
    let der = valid_csr_der();
    assert!(parse_csr_bytes(&der));
    assert!(parse_csr_bytes(&as_pem(&der)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse_csr_bytes(&data);
        parse_csr_bytes(&as_pem(&data));
    }

    /// Random bytes rarely get past the outer SEQUENCE; mutating a real request reaches
    /// the attribute, key and signature parsers.
    #[test]
    fn mutated_requests_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut der = valid_csr_der_cached().clone();
        for (at, byte) in edits {
            let i = at.index(der.len());
            der[i] = byte;
        }
        if truncate {
            der.truncate(cut.index(der.len()));
        }
        parse_csr_bytes(&der);
        parse_csr_bytes(&as_pem(&der));
    }
}

fn valid_csr_der_cached() -> &'static Vec<u8> {
    static DER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DER.get_or_init(valid_csr_der)
}
