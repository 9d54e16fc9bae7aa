//! Entry points shared by `fuzz/` (libFuzzer) and the property tests. Not a stable API.

use rcgen::PublicKeyData;

use crate::csr;

/// Feeds `data` to the CSR parser both as PEM and as DER, as [`crate::Authority::sign_csr`]
/// and a DER-speaking caller would. It must never panic, and whatever it accepts must be a
/// key the signer can certify. Returns whether either form was accepted.
pub fn parse_csr_bytes(data: &[u8]) -> bool {
    let mut accepted = false;
    for key in [csr::parse_pem(data), csr::parse_der(data)]
        .into_iter()
        .flatten()
    {
        assert_eq!(
            key.der_bytes().len(),
            65,
            "accepted a key that is not a P-256 point"
        );
        accepted = true;
    }
    accepted
}
