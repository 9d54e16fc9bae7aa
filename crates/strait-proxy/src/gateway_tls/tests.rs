//! Real handshakes over loopback TCP with rcgen certificates and tokio-rustls clients.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use super::*;
use crate::tls::{provider, root_store};

/// A certificate and its key, PEM.
#[derive(Clone)]
struct Pair {
    cert: String,
    key: String,
}

struct Pki {
    ca: String,
    exact: Pair,
    wildcard: Pair,
    fallback: Pair,
    client: Pair,
    stranger: Pair,
}

const CLIENT_URI: &str = "spiffe://cluster.local/ns/shop/sa/client";

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca")
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    sans: Vec<SanType>,
    eku: ExtendedKeyUsagePurpose,
) -> Pair {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![eku];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("sign");
    Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().expect("dns name"))
}

fn pki() -> Pki {
    let root = ca("gateway test ca");
    let other = ca("some other ca");
    let server = |names: &[&str]| {
        let sans = names.iter().map(|n| dns(n)).collect();
        leaf(&root, sans, ExtendedKeyUsagePurpose::ServerAuth)
    };
    let client_sans = || {
        vec![
            dns("client.example.com"),
            SanType::URI(CLIENT_URI.try_into().expect("uri")),
        ]
    };
    Pki {
        ca: root.pem(),
        exact: server(&["a.example.com"]),
        // `*.y.example.com` so the client also accepts the cert for a two-label subdomain.
        wildcard: server(&["*.example.com", "*.y.example.com"]),
        fallback: server(&["fallback.test", "other.test"]),
        client: leaf(&root, client_sans(), ExtendedKeyUsagePurpose::ClientAuth),
        stranger: leaf(&other, client_sans(), ExtendedKeyUsagePurpose::ClientAuth),
    }
}

fn simple(hosts: &[&str], pair: &Pair) -> TlsServer {
    TlsServer {
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        mode: TerminateMode::Simple,
        credential_name: "test-cred".into(),
        cert_chain_pem: pair.cert.clone(),
        key_pem: pair.key.clone(),
        ca_pem: None,
        min_version: None,
        max_version: None,
        cipher_suites: Vec::new(),
        subject_alt_names: Vec::new(),
        verify_certificate_spki: Vec::new(),
        verify_certificate_hash: Vec::new(),
    }
}

fn mutual(pki: &Pki, mode: TerminateMode) -> TlsServer {
    TlsServer {
        mode,
        ca_pem: Some(pki.ca.clone()),
        ..simple(&["a.example.com"], &pki.exact)
    }
}

struct Client {
    versions: &'static [&'static SupportedProtocolVersion],
    cert: Option<Pair>,
    sni: bool,
    alpn: Vec<Vec<u8>>,
}

const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

impl Client {
    fn new() -> Self {
        Client {
            versions: BOTH,
            cert: None,
            sni: true,
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }

    fn config(&self, pki: &Pki) -> Arc<ClientConfig> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(self.versions)
            .expect("versions")
            .with_root_certificates(root_store(&pki.ca).expect("roots"));
        let mut cfg = match &self.cert {
            Some(pair) => {
                let chain = CertificateDer::pem_slice_iter(pair.cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("chain");
                let key = PrivateKeyDer::from_pem_slice(pair.key.as_bytes()).expect("key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client cert")
            }
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = self.alpn.clone();
        cfg.enable_sni = self.sni;
        Arc::new(cfg)
    }
}

/// What the client saw of a completed exchange.
#[derive(Debug)]
struct Seen {
    alpn: Option<Vec<u8>>,
    version: Option<ProtocolVersion>,
    suite: Option<rustls::CipherSuite>,
    server_sans: Vec<String>,
}

/// One connection: the gateway accepts and echoes four bytes; the client connects to `name`
/// and checks the echo. Returns both sides' outcomes.
async fn exchange(
    gw: GatewayTls,
    pki: &Pki,
    client: Client,
    name: &str,
) -> (Result<Accepted, GatewayTlsError>, std::io::Result<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let (mut tls, accepted) = gw.accept(tcp).await?;
        let mut buf = [0u8; 4];
        if tls.read_exact(&mut buf).await.is_ok() {
            let _ = tls.write_all(&buf).await;
            let _ = tls.flush().await;
        }
        Ok(accepted)
    });
    let connector = TlsConnector::from(client.config(pki));
    let name = ServerName::try_from(name.to_string()).expect("server name");
    let client = async {
        let tcp = TcpStream::connect(addr).await?;
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"ping").await?;
        tls.flush().await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        let conn = tls.get_ref().1;
        Ok(Seen {
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            version: conn.protocol_version(),
            suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
            server_sans: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(verify::sans_of)
                .unwrap_or_default(),
        })
    };
    let limit = Duration::from_secs(10);
    let seen = tokio::time::timeout(limit, client)
        .await
        .expect("client hung");
    let accepted = tokio::time::timeout(limit, server)
        .await
        .expect("server hung")
        .expect("server task");
    (accepted, seen)
}

fn gateway(servers: &[TlsServer]) -> GatewayTls {
    GatewayTls::new(servers).expect("valid gateway")
}

#[tokio::test]
async fn exact_sni_beats_wildcard_and_offers_h2() {
    let pki = pki();
    let gw = gateway(&[
        simple(&["*.example.com"], &pki.wildcard),
        simple(&["ns/a.example.com"], &pki.exact),
    ]);
    let (accepted, seen) = exchange(gw, &pki, Client::new(), "a.example.com").await;
    let accepted = accepted.expect("accepted");
    let seen = seen.expect("client");
    assert_eq!(accepted.server, 1);
    assert_eq!(accepted.sni.as_deref(), Some("a.example.com"));
    assert_eq!(accepted.client, None);
    assert_eq!(seen.server_sans, ["a.example.com"]);
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn alpn_follows_the_client_and_never_refuses() {
    let pki = pki();
    for (offered, chosen) in [
        (vec![b"http/1.1".to_vec()], Some(&b"http/1.1"[..])),
        (vec![b"acme-tls/1".to_vec()], None),
        (Vec::new(), None),
    ] {
        let client = Client {
            alpn: offered,
            ..Client::new()
        };
        let gw = gateway(&[simple(&["a.example.com"], &pki.exact)]);
        let (accepted, seen) = exchange(gw, &pki, client, "a.example.com").await;
        accepted.expect("accepted");
        assert_eq!(seen.expect("client").alpn.as_deref(), chosen);
    }
}

#[tokio::test]
async fn wildcard_matches_subdomains_at_any_depth() {
    let pki = pki();
    for name in ["b.example.com", "x.y.example.com"] {
        let gw = gateway(&[
            simple(&["a.example.com"], &pki.exact),
            simple(&["*.example.com"], &pki.wildcard),
        ]);
        let (accepted, seen) = exchange(gw, &pki, Client::new(), name).await;
        assert_eq!(accepted.expect("accepted").server, 1, "{name}");
        assert_eq!(seen.expect("client").server_sans[0], "*.example.com");
    }
}

#[tokio::test]
async fn star_takes_unknown_names_and_clients_without_sni() {
    let pki = pki();
    let servers = [
        simple(&["a.example.com"], &pki.exact),
        simple(&["*"], &pki.fallback),
    ];
    let (accepted, seen) = exchange(gateway(&servers), &pki, Client::new(), "other.test").await;
    assert_eq!(accepted.expect("accepted").server, 1);
    seen.expect("client");

    let no_sni = Client {
        sni: false,
        ..Client::new()
    };
    let (accepted, seen) = exchange(gateway(&servers), &pki, no_sni, "fallback.test").await;
    let accepted = accepted.expect("accepted");
    assert_eq!((accepted.server, accepted.sni), (1, None));
    seen.expect("client");
}

#[tokio::test]
async fn no_matching_server_is_refused() {
    let pki = pki();
    let servers = [simple(&["a.example.com"], &pki.exact)];
    let (accepted, seen) = exchange(gateway(&servers), &pki, Client::new(), "b.example.com").await;
    let err = accepted.expect_err("refused");
    assert!(
        matches!(&err, GatewayTlsError::NoServerForSni { sni: Some(s) } if s == "b.example.com"),
        "{err}"
    );
    assert_eq!(err.fault(), Fault::Client);
    assert!(seen.is_err());

    let no_sni = Client {
        sni: false,
        ..Client::new()
    };
    let (accepted, seen) = exchange(gateway(&servers), &pki, no_sni, "a.example.com").await;
    assert!(matches!(
        accepted,
        Err(GatewayTlsError::NoServerForSni { sni: None })
    ));
    assert!(seen.is_err());
}

#[tokio::test]
async fn simple_does_not_ask_for_a_client_certificate() {
    let pki = pki();
    let with_cert = Client {
        cert: Some(pki.client.clone()),
        ..Client::new()
    };
    let gw = gateway(&[simple(&["a.example.com"], &pki.exact)]);
    let (accepted, seen) = exchange(gw, &pki, with_cert, "a.example.com").await;
    assert_eq!(accepted.expect("accepted").client, None);
    seen.expect("client");
}

#[tokio::test]
async fn mutual_requires_a_certificate_from_the_ca() {
    let pki = pki();
    let (accepted, seen) = exchange(
        gateway(&[mutual(&pki, TerminateMode::Mutual)]),
        &pki,
        Client::new(),
        "a.example.com",
    )
    .await;
    assert!(
        matches!(accepted, Err(GatewayTlsError::Handshake { server: 0, .. })),
        "{accepted:?}"
    );
    assert!(seen.is_err());

    let stranger = Client {
        cert: Some(pki.stranger.clone()),
        ..Client::new()
    };
    let gw = gateway(&[mutual(&pki, TerminateMode::Mutual)]);
    let (accepted, seen) = exchange(gw, &pki, stranger, "a.example.com").await;
    assert!(accepted.is_err(), "{accepted:?}");
    assert!(seen.is_err());

    let good = Client {
        cert: Some(pki.client.clone()),
        ..Client::new()
    };
    let gw = gateway(&[mutual(&pki, TerminateMode::Mutual)]);
    let (accepted, seen) = exchange(gw, &pki, good, "a.example.com").await;
    seen.expect("client");
    let client = accepted.expect("accepted").client.expect("client cert");
    assert_eq!(client.sans, ["client.example.com", CLIENT_URI]);
}

#[tokio::test]
async fn optional_mutual_verifies_only_a_certificate_that_is_sent() {
    let pki = pki();
    let gw = gateway(&[mutual(&pki, TerminateMode::OptionalMutual)]);
    let (accepted, seen) = exchange(gw, &pki, Client::new(), "a.example.com").await;
    assert_eq!(accepted.expect("accepted").client, None);
    seen.expect("client");

    let stranger = Client {
        cert: Some(pki.stranger.clone()),
        ..Client::new()
    };
    let gw = gateway(&[mutual(&pki, TerminateMode::OptionalMutual)]);
    let (accepted, _) = exchange(gw, &pki, stranger, "a.example.com").await;
    assert!(accepted.is_err(), "{accepted:?}");
}

#[tokio::test]
async fn subject_alt_names_restrict_client_certificates() {
    let pki = pki();
    let good = || Client {
        cert: Some(pki.client.clone()),
        ..Client::new()
    };
    let restricted = |sans: &[&str]| TlsServer {
        subject_alt_names: sans.iter().map(|s| s.to_string()).collect(),
        ..mutual(&pki, TerminateMode::Mutual)
    };
    let gw = gateway(&[restricted(&[
        "spiffe://cluster.local/ns/x/sa/y",
        CLIENT_URI,
    ])]);
    let (accepted, seen) = exchange(gw, &pki, good(), "a.example.com").await;
    accepted.expect("allowed URI SAN");
    seen.expect("client");

    let gw = gateway(&[restricted(&["client.example.com"])]);
    let (accepted, _) = exchange(gw, &pki, good(), "a.example.com").await;
    accepted.expect("allowed DNS SAN");

    let gw = gateway(&[restricted(&["spiffe://cluster.local/ns/shop/sa/other"])]);
    let (accepted, seen) = exchange(gw, &pki, good(), "a.example.com").await;
    assert!(
        matches!(accepted, Err(GatewayTlsError::Handshake { .. })),
        "{accepted:?}"
    );
    assert!(seen.is_err());
}

#[tokio::test]
async fn protocol_versions_are_enforced() {
    let pki = pki();
    let tls13_only = || TlsServer {
        min_version: Some(TlsVersion::V1_3),
        ..simple(&["a.example.com"], &pki.exact)
    };
    let old = || Client {
        versions: TLS12,
        ..Client::new()
    };
    let (accepted, seen) = exchange(gateway(&[tls13_only()]), &pki, old(), "a.example.com").await;
    assert!(accepted.is_err(), "{accepted:?}");
    assert!(seen.is_err());

    let (accepted, seen) = exchange(
        gateway(&[tls13_only()]),
        &pki,
        Client::new(),
        "a.example.com",
    )
    .await;
    accepted.expect("accepted");
    assert_eq!(
        seen.expect("client").version,
        Some(ProtocolVersion::TLSv1_3)
    );

    let tls12_only = TlsServer {
        max_version: Some(TlsVersion::V1_2),
        ..simple(&["a.example.com"], &pki.exact)
    };
    let (_, seen) = exchange(gateway(&[tls12_only]), &pki, Client::new(), "a.example.com").await;
    assert_eq!(
        seen.expect("client").version,
        Some(ProtocolVersion::TLSv1_2)
    );
}

#[tokio::test]
async fn cipher_suites_restrict_tls12() {
    let pki = pki();
    let server = TlsServer {
        cipher_suites: vec!["[ECDHE-ECDSA-AES256-GCM-SHA384|ECDHE-RSA-AES256-GCM-SHA384]".into()],
        ..simple(&["a.example.com"], &pki.exact)
    };
    let old = Client {
        versions: TLS12,
        ..Client::new()
    };
    let (accepted, seen) = exchange(gateway(&[server]), &pki, old, "a.example.com").await;
    accepted.expect("accepted");
    assert_eq!(
        seen.expect("client").suite,
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
    );
}

fn config_error(server: TlsServer) -> String {
    let err = GatewayTls::new(&[server]).expect_err("invalid");
    assert_eq!(err.fault(), Fault::Config);
    let msg = err.to_string();
    assert!(
        msg.contains("server 0") && msg.contains("test-cred"),
        "{msg}"
    );
    msg
}

#[test]
fn invalid_servers_are_refused_at_construction() {
    let pki = pki();
    let base = || simple(&["a.example.com"], &pki.exact);

    let msg = config_error(TlsServer {
        cipher_suites: vec!["ECDHE-ECDSA-AES128-GCM-SHA256".into(), "ECDHE-FOO".into()],
        ..base()
    });
    assert!(msg.contains("\"ECDHE-FOO\""), "{msg}");
    let msg = config_error(TlsServer {
        cipher_suites: vec!["AES128-GCM-SHA256".into()],
        ..base()
    });
    assert!(msg.contains("rustls does not implement"), "{msg}");

    let msg = config_error(TlsServer {
        key_pem: pki.wildcard.key.clone(),
        ..base()
    });
    assert!(msg.contains("does not belong"), "{msg}");

    let msg = config_error(TlsServer {
        mode: TerminateMode::Mutual,
        ..base()
    });
    assert!(msg.contains("-cacert"), "{msg}");

    let msg = config_error(TlsServer {
        verify_certificate_spki: vec!["abc=".into()],
        ..base()
    });
    assert!(msg.contains("verifyCertificateSpki"), "{msg}");
    let msg = config_error(TlsServer {
        verify_certificate_hash: vec!["ab:cd".into()],
        ..base()
    });
    assert!(msg.contains("verifyCertificateHash"), "{msg}");

    let msg = config_error(TlsServer {
        min_version: Some(TlsVersion::V1_0),
        ..base()
    });
    assert!(msg.contains("TLSV1_0"), "{msg}");
    let msg = config_error(TlsServer {
        min_version: Some(TlsVersion::V1_3),
        max_version: Some(TlsVersion::V1_2),
        ..base()
    });
    assert!(msg.contains("above"), "{msg}");

    let msg = config_error(TlsServer {
        subject_alt_names: vec![CLIENT_URI.into()],
        ..base()
    });
    assert!(msg.contains("MUTUAL"), "{msg}");

    let msg = config_error(TlsServer {
        cert_chain_pem: "not pem".into(),
        ..base()
    });
    assert!(msg.contains("no certificate"), "{msg}");

    let msg = config_error(TlsServer {
        hosts: Vec::new(),
        ..base()
    });
    assert!(msg.contains("no hosts"), "{msg}");
}

#[test]
fn a_host_on_two_servers_is_refused() {
    let pki = pki();
    let err = GatewayTls::new(&[
        simple(&["a.example.com"], &pki.exact),
        simple(&["other/a.example.com"], &pki.exact),
    ])
    .expect_err("duplicate");
    assert!(matches!(
        err,
        GatewayTlsError::DuplicateHost {
            first: 0,
            second: 1,
            ..
        }
    ));
    assert!(matches!(
        GatewayTls::new(&[]),
        Err(GatewayTlsError::NoServers)
    ));
}

#[test]
fn debug_never_shows_the_private_key() {
    let pki = pki();
    let server = simple(&["a.example.com"], &pki.exact);
    let shown = format!("{server:?} {:#?}", gateway(std::slice::from_ref(&server)));
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    let body: String = pki.exact.key.lines().nth(1).unwrap_or_default().into();
    assert!(!shown.contains(&body), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[test]
fn serde_uses_istio_spellings() {
    let json = serde_json::json!({
        "hosts": ["*"],
        "mode": "OPTIONAL_MUTUAL",
        "certChainPem": "c",
        "keyPem": "k",
        "minVersion": "TLSV1_3",
        "maxVersion": "TLS_AUTO",
    });
    let server: TlsServer = serde_json::from_value(json).expect("parses");
    assert_eq!(server.mode, TerminateMode::OptionalMutual);
    assert_eq!(server.min_version, Some(TlsVersion::V1_3));
    assert_eq!(server.max_version, Some(TlsVersion::Auto));
}
