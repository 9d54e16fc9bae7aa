//! What each kind of certificate contains. Kept in one place so that a reviewer can compare
//! root, intermediate and leaf side by side with Istio's (`tools/certs/common.mk`,
//! `security/pkg/pki/util/generate_cert.go`).

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

use crate::identity::SpiffeId;
use crate::{CLOCK_SKEW, Error};

/// Istio's self-signed root lives 10 years (`CITADEL_SELF_SIGNED_CA_CERT_TTL`).
pub(crate) const ROOT_TTL: Duration = Duration::from_secs(3650 * 24 * 3600);
/// Half the root's life, so an intermediate can be re-issued well before the root expires.
pub(crate) const INTERMEDIATE_TTL: Duration = Duration::from_secs(1825 * 24 * 3600);

/// ECDSA P-256 for every key strait makes: TLS handshakes sign with the leaf key, and
/// P-256 signs an order of magnitude faster than RSA 2048 with smaller certificates.
pub(crate) fn new_key() -> Result<KeyPair, Error> {
    Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?)
}

/// A root CA: CA without path length limit, signs certificates and CRLs.
pub(crate) fn root(organization: &str) -> Result<CertificateParams, Error> {
    let mut p = base(ROOT_TTL)?;
    p.distinguished_name = name(&[
        (DnType::OrganizationName, organization),
        (DnType::CommonName, "Root CA"),
    ]);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(p)
}

/// One cluster's signing CA, as Istio's sample tooling makes it: CN "Intermediate CA",
/// `L=<cluster>`, pathlen 0 (it signs leaves only), DNS SAN `istiod.istio-system.svc`. The
/// URI SAN `spiffe://<trust domain>` is the SPIFFE spec's optional marker of the trust
/// domain a signing certificate serves (X509-SVID §4.1).
pub(crate) fn intermediate(cluster: &str, trust_domain: &str) -> Result<CertificateParams, Error> {
    let mut p = base(INTERMEDIATE_TTL)?;
    p.distinguished_name = name(&[
        (DnType::OrganizationName, "strait"),
        (DnType::CommonName, "Intermediate CA"),
        (DnType::LocalityName, cluster),
    ]);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.subject_alt_names = vec![
        SanType::DnsName("istiod.istio-system.svc".try_into()?),
        SanType::URI(format!("spiffe://{trust_domain}").try_into()?),
    ];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// A workload certificate: the identity as its only name (URI SAN, empty subject, so the
/// SAN is critical per RFC 5280 §4.2.1.6), usable for both ends of mTLS.
pub(crate) fn leaf(
    identity: &SpiffeId,
    ttl: Duration,
    not_after_cap: OffsetDateTime,
) -> Result<CertificateParams, Error> {
    let mut p = base(ttl)?;
    p.not_after = p.not_after.min(not_after_cap);
    p.distinguished_name = DistinguishedName::new();
    p.subject_alt_names = vec![SanType::URI(identity.to_string().try_into()?)];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// A control plane's serving certificate: the DNS names proxies dial, server use only.
pub(crate) fn server(
    dns_names: &[String],
    ttl: Duration,
    not_after_cap: OffsetDateTime,
) -> Result<CertificateParams, Error> {
    let mut p = base(ttl)?;
    p.not_after = p.not_after.min(not_after_cap);
    p.distinguished_name = name(&[(DnType::OrganizationName, "strait")]);
    p.subject_alt_names = dns_names
        .iter()
        .map(|n| {
            if !is_dns_name(n) {
                return Err(Error::DnsName { name: n.clone() });
            }
            Ok(SanType::DnsName(n.as_str().try_into()?))
        })
        .collect::<Result<_, Error>>()?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// RFC 1123 host names: labels of 1 to 63 letters, digits and inner hyphens, 253 bytes in all.
fn is_dns_name(n: &str) -> bool {
    n.len() <= 253
        && n.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Validity from now (less the clock-skew allowance) for `ttl`, and a random serial.
fn base(ttl: Duration) -> Result<CertificateParams, Error> {
    let now = OffsetDateTime::now_utc();
    let mut p = CertificateParams::default();
    p.not_before = now - CLOCK_SKEW;
    p.not_after = now + ttl;
    p.serial_number = Some(random_serial()?);
    Ok(p)
}

/// 16 random bytes, positive and with a non-zero first byte so the DER is always 16 bytes.
/// rcgen's default serial is a hash of the public key, which would repeat for every
/// certificate issued to the same key (a proxy renewing with its old key).
fn random_serial() -> Result<SerialNumber, Error> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Sign(rcgen::Error::RingUnspecified))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn name(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (ty, value) in parts {
        dn.push(ty.clone(), *value);
    }
    dn
}
