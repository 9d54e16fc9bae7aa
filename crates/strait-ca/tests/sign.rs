//! What a workload certificate contains, and how bad input is refused.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{id, init, issue};
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use strait_ca::{
    Authority, Blame, CaFileProblem, CsrError, Error, SpiffeId, WorkloadKey, identity_of,
    parse_chain,
};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
use x509_parser::prelude::{FromDer, X509Certificate};

fn authority() -> (tempfile::TempDir, Authority) {
    let tmp = tempfile::tempdir().expect("tempdir");
    init(tmp.path(), &["c1"]);
    let ca = Authority::load(&tmp.path().join("c1")).expect("load");
    (tmp, ca)
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
}

/// A CSR asking for names the caller must not get.
fn greedy_csr() -> (String, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["evil.example".to_string()]).expect("p");
    params.subject_alt_names.push(rcgen::SanType::URI(
        "spiffe://cluster.local/ns/kube-system/sa/admin"
            .try_into()
            .expect("uri"),
    ));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "admin");
    let csr = params.serialize_request(&key).expect("csr");
    (csr.pem().expect("pem"), csr.der().to_vec())
}

#[test]
fn leaf_carries_exactly_the_callers_identity() {
    let (_tmp, ca) = authority();
    let (csr_pem, csr_der) = greedy_csr();
    let who = id("sample", "sleep");
    let ttl = Duration::from_secs(7200);
    let chain = ca.sign_csr(&csr_pem, &who, ttl).expect("signed");
    assert_eq!(chain.len(), 3, "leaf, intermediate, root");
    assert_eq!(chain[2], ca.roots_pem(), "root last");
    let ders = parse_chain(chain.concat()).expect("chain parses");
    assert_eq!(ders[1], *ca.ca_cert(), "intermediate second");
    let (_, leaf) = X509Certificate::from_der(&ders[0]).expect("x509");

    // Names: one URI SAN, the identity; empty subject; nothing from the CSR.
    let san = leaf
        .subject_alternative_name()
        .expect("unique")
        .expect("has SAN");
    assert!(san.critical, "SAN must be critical with an empty subject");
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI(
            "spiffe://cluster.local/ns/sample/sa/sleep"
        )]
    );
    assert_eq!(leaf.subject().iter().count(), 0);
    assert_eq!(identity_of(&ders[0]), Some(who.clone()));

    // Key: the CSR's own ECDSA P-256 key.
    let spki = leaf.public_key();
    assert_eq!(spki.algorithm.algorithm, OID_KEY_TYPE_EC_PUBLIC_KEY);
    assert_eq!(
        spki.algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok()),
        Some(OID_EC_P256)
    );
    let (_, csr) = X509CertificationRequest::from_der(&csr_der).expect("csr");
    assert_eq!(
        spki.subject_public_key.data,
        csr.certification_request_info
            .subject_pki
            .subject_public_key
            .data
    );

    // Lifetime: the requested TTL plus the clock-skew backdating.
    let v = leaf.validity();
    assert_eq!(
        v.not_after.timestamp() - v.not_before.timestamp(),
        (ttl + strait_ca::CLOCK_SKEW).as_secs() as i64
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!((v.not_before.timestamp() - (now - 60)).abs() <= 5);

    // Usage: not a CA, TLS client and server, signatures.
    let bc = leaf.basic_constraints().expect("unique").expect("present");
    assert!(!bc.value.ca);
    let ku = leaf.key_usage().expect("unique").expect("present").value;
    // EC keys sign; keyEncipherment is for RSA key transport (RFC 5480 §3).
    assert!(ku.digital_signature() && !ku.key_encipherment() && !ku.key_cert_sign());
    let eku = leaf
        .extended_key_usage()
        .expect("unique")
        .expect("present")
        .value;
    assert!(eku.server_auth && eku.client_auth);
    assert!(!eku.any && !eku.code_signing && eku.other.is_empty());

    // Verified by its issuer.
    let (_, inter) = X509Certificate::from_der(&ders[1]).expect("x509");
    leaf.verify_signature(Some(inter.public_key()))
        .expect("signed by the intermediate");
}

#[test]
fn serials_are_random() {
    let (_tmp, ca) = authority();
    let who = id("a", "b");
    let wk = WorkloadKey::generate(&who).expect("key");
    // The same key twice: a serial derived from the key would repeat.
    let serial = |_| {
        let chain = ca
            .sign_csr(&wk.csr_pem, &who, Duration::ZERO)
            .expect("signed");
        let der = parse_chain(&chain[0]).expect("pem").remove(0);
        let (_, c) = X509Certificate::from_der(&der).expect("x509");
        c.raw_serial().to_vec()
    };
    let (a, b) = (serial(0), serial(1));
    assert_ne!(a, b);
    assert_eq!(a.len(), 16);
}

#[test]
fn ttl_defaults_and_limits() {
    let (_tmp, ca) = authority();
    let who = id("a", "b");
    let lifetime = |ttl| {
        let chain = issue(&ca, &who, ttl);
        let der = parse_chain(&chain[0]).expect("pem").remove(0);
        let (nb, na) = strait_ca::validity(&der).expect("validity");
        assert_eq!(strait_ca::cert_expiry(&der).expect("expiry"), na);
        let life = na.duration_since(nb).expect("ordered");
        assert_eq!(strait_ca::renewal_time(nb, na), nb + life / 2);
        life
    };
    assert_eq!(
        lifetime(Duration::ZERO),
        strait_ca::DEFAULT_WORKLOAD_TTL + strait_ca::CLOCK_SKEW
    );
    assert_eq!(
        lifetime(strait_ca::MAX_WORKLOAD_TTL),
        strait_ca::MAX_WORKLOAD_TTL + strait_ca::CLOCK_SKEW
    );
    let wk = WorkloadKey::generate(&who).expect("key");
    let e = ca
        .sign_csr(
            &wk.csr_pem,
            &who,
            strait_ca::MAX_WORKLOAD_TTL + Duration::from_secs(1),
        )
        .expect_err("too long");
    assert!(matches!(e, Error::TtlTooLong { .. }), "{e}");
    assert_eq!(e.blame(), Blame::Caller);
}

#[test]
fn tampered_csr_is_refused() {
    let (_tmp, ca) = authority();
    let who = id("sample", "sleep");
    let wk = WorkloadKey::generate(&who).expect("key");
    let mut der = CertificateSigningRequestDer::from_pem_slice(wk.csr_pem.as_bytes())
        .expect("pem")
        .as_ref()
        .to_vec();
    let at = der
        .windows(5)
        .position(|w| w == b"sleep")
        .expect("identity in the CSR");
    der[at + 4] = b'q';
    let e = ca
        .sign_csr(&pem("CERTIFICATE REQUEST", &der), &who, Duration::ZERO)
        .expect_err("tampered");
    assert!(matches!(e, Error::Csr(CsrError::BadSignature)), "{e}");
    assert_eq!(e.blame(), Blame::Caller);

    der.push(0);
    der[at + 4] = b'p';
    let e = ca
        .sign_csr(&pem("CERTIFICATE REQUEST", &der), &who, Duration::ZERO)
        .expect_err("trailing byte");
    assert!(matches!(e, Error::Csr(CsrError::TrailingData)), "{e}");
}

#[test]
fn garbage_csrs_are_refused() {
    let (_tmp, ca) = authority();
    let who = id("a", "b");
    let cert_pem = ca.roots_pem().to_string();
    let cases = [
        String::new(),
        "hello".into(),
        "-----BEGIN CERTIFICATE REQUEST-----\n".into(),
        "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n".into(),
        pem("CERTIFICATE REQUEST", b""),
        pem("CERTIFICATE REQUEST", b"\x30\x82\xff\xff"),
        pem("CERTIFICATE REQUEST", &[0x30; 300]),
        cert_pem,
    ];
    for csr in cases {
        let e = ca
            .sign_csr(&csr, &who, Duration::ZERO)
            .expect_err("garbage");
        assert!(matches!(e, Error::Csr(_)), "{csr:?}: {e}");
        assert!(
            e.to_string()
                .starts_with("certificate signing request rejected")
        );
    }
}

#[test]
fn identity_parse_is_strict() {
    assert!(SpiffeId::parse("spiffe://cluster.local/ns/a/sa/b").is_ok());
    assert!(SpiffeId::parse("spiffe://cluster.local/ns/a/sa/b/extra").is_err());
    assert!(SpiffeId::parse("spiffe://cluster.local/sa/b").is_err());
}

/// Each broken `cacerts` directory gives an error that names the file and the problem.
#[test]
fn broken_cacerts_are_refused_with_the_file_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path();
    init(out, &["c1", "c2"]);
    let other = out.join("elsewhere");
    init(&other, &["x"]);
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).expect("read");
    let fresh = |name: &str| {
        let dir = out.join(format!("case-{name}"));
        std::fs::create_dir(&dir).expect("mkdir");
        for f in [
            "ca-cert.pem",
            "ca-key.pem",
            "root-cert.pem",
            "cert-chain.pem",
        ] {
            std::fs::copy(out.join("c1").join(f), dir.join(f)).expect("copy");
        }
        dir
    };
    let expired_ca = {
        let root_key = rcgen::KeyPair::from_pem(&read(out.join("root-key.pem"))).expect("key");
        let issuer =
            rcgen::Issuer::from_ca_cert_pem(&read(out.join("root-cert.pem")), root_key).expect("i");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::default();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        (
            p.signed_by(&key, &issuer).expect("signed").pem(),
            key.serialize_pem(),
        )
    };
    let leaf_pem = issue(
        &Authority::load(&out.join("c1")).expect("load"),
        &id("a", "b"),
        Duration::ZERO,
    )
    .remove(0);

    type Edit<'a> = Box<dyn Fn(&std::path::Path) + 'a>;
    /// (case, how to break a copy of cluster c1's files, the file blamed, the problem)
    type Case<'a> = (&'a str, Edit<'a>, &'a str, fn(&CaFileProblem) -> bool);
    let cases: Vec<Case> = vec![
        (
            "key-mismatch",
            Box::new(|d| {
                std::fs::copy(out.join("c2/ca-key.pem"), d.join("ca-key.pem")).expect("copy");
            }),
            "ca-key.pem",
            |p| matches!(p, CaFileProblem::KeyMismatch { .. }),
        ),
        (
            "missing-key",
            Box::new(|d| std::fs::remove_file(d.join("ca-key.pem")).expect("rm")),
            "ca-key.pem",
            |p| *p == CaFileProblem::Missing,
        ),
        (
            "garbage-key",
            Box::new(|d| std::fs::write(d.join("ca-key.pem"), "not a key").expect("w")),
            "ca-key.pem",
            |p| matches!(p, CaFileProblem::BadKey(_)),
        ),
        (
            "garbage-cert",
            Box::new(|d| std::fs::write(d.join("ca-cert.pem"), "\u{0}\u{1}binary").expect("w")),
            "ca-cert.pem",
            |p| matches!(p, CaFileProblem::Pem(_)),
        ),
        (
            "leaf-as-ca",
            Box::new(|d| std::fs::write(d.join("ca-cert.pem"), &leaf_pem).expect("w")),
            "ca-cert.pem",
            |p| *p == CaFileProblem::NotCa,
        ),
        (
            "expired",
            Box::new(|d| {
                std::fs::write(d.join("ca-cert.pem"), &expired_ca.0).expect("w");
                std::fs::write(d.join("ca-key.pem"), &expired_ca.1).expect("w");
            }),
            "ca-cert.pem",
            |p| matches!(p, CaFileProblem::Expired { .. }),
        ),
        (
            "foreign-root",
            Box::new(|d| {
                std::fs::copy(other.join("root-cert.pem"), d.join("root-cert.pem")).expect("cp");
            }),
            "cert-chain.pem",
            |p| *p == CaFileProblem::NoRoot,
        ),
        (
            "foreign-root-no-chain",
            Box::new(|d| {
                std::fs::copy(other.join("root-cert.pem"), d.join("root-cert.pem")).expect("cp");
                std::fs::remove_file(d.join("cert-chain.pem")).expect("rm");
            }),
            "ca-cert.pem",
            |p| *p == CaFileProblem::NoRoot,
        ),
        (
            "chain-of-another-ca",
            Box::new(|d| {
                std::fs::copy(out.join("c2/cert-chain.pem"), d.join("cert-chain.pem")).expect("cp");
            }),
            "cert-chain.pem",
            |p| *p == CaFileProblem::ChainStart,
        ),
        (
            "chain-broken",
            Box::new(|d| {
                let chain = format!(
                    "{}{}{}",
                    read(d.join("ca-cert.pem")),
                    read(other.join("x/ca-cert.pem")),
                    read(d.join("root-cert.pem"))
                );
                std::fs::write(d.join("cert-chain.pem"), chain).expect("w");
            }),
            "cert-chain.pem",
            |p| *p == CaFileProblem::ChainBroken { index: 1 },
        ),
    ];
    for (name, edit, file, expected) in cases {
        let dir = fresh(name);
        edit(&dir);
        let e = Authority::load(&dir).expect_err(name);
        let Error::CaFile { path, problem } = &e else {
            panic!("{name}: unexpected error {e}");
        };
        assert_eq!(path, &dir.join(file), "{name}: {e}");
        assert!(expected(problem), "{name}: {e}");
        assert!(e.to_string().contains(file), "{name}: {e}");
        assert_eq!(e.blame(), Blame::Config);
    }
}

#[test]
fn from_pem_names_the_secret_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    init(tmp.path(), &["c1", "c2"]);
    let read = |c: &str, f: &str| std::fs::read(tmp.path().join(c).join(f)).expect("read");
    let ok = Authority::from_pem(
        &read("c1", "ca-cert.pem"),
        &read("c1", "ca-key.pem"),
        &read("c1", "root-cert.pem"),
        Some(&read("c1", "cert-chain.pem")),
    );
    assert!(ok.is_ok());
    let e = Authority::from_pem(
        &read("c1", "ca-cert.pem"),
        &read("c2", "ca-key.pem"),
        &read("c1", "root-cert.pem"),
        None,
    )
    .expect_err("mismatch");
    assert!(e.to_string().starts_with("ca-key.pem: "), "{e}");
    assert!(e.to_string().contains("ca-cert.pem"), "{e}");
}

#[test]
fn authority_is_shareable_across_threads() {
    fn check<T: Send + Sync>() {}
    check::<Authority>();
}

#[test]
fn serving_certificate_names_the_dns_names_and_chains_to_the_root() {
    let (_tmp, ca) = authority();
    let names = vec!["istiod.istio-system.svc".to_string(), "istiod".to_string()];
    let (chain, key_pem) = ca
        .issue_server(&names, Duration::from_secs(3600))
        .expect("issue");
    assert!(key_pem.contains("PRIVATE KEY"));
    let ders = parse_chain(chain.concat()).expect("chain");
    let (_, leaf) = X509Certificate::from_der(&ders[0]).expect("x509");
    let dns: Vec<String> = leaf
        .subject_alternative_name()
        .expect("san")
        .expect("present")
        .value
        .general_names
        .iter()
        .filter_map(|g| match g {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(dns, names);
    assert!(!leaf.is_ca());
    assert_eq!(
        ders.last(),
        ca.roots().first(),
        "the chain ends at the root"
    );
    // Not a workload identity: no SPIFFE ID.
    assert!(identity_of(&ders[0]).is_none());
}

#[test]
fn serving_certificate_refuses_an_invalid_dns_name() {
    let (_tmp, ca) = authority();
    assert!(
        ca.issue_server(&["bad name\n".to_string()], Duration::from_secs(60))
            .is_err()
    );
}
