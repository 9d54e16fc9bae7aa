//! mTLS between two proxies' credentials over an in-memory stream: a trust bundle with
//! several roots accepts chains ending at any of them, and only the expected identities.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use strait_proxy::tls::{self, Credentials};

/// A CA (its own root) and a workload certificate from it, installed in fresh credentials
/// that trust `bundle`.
fn workload(ca_dir: &std::path::Path, identity: &str, bundle: &str) -> Arc<Credentials> {
    let ca = strait_ca::Authority::load(ca_dir).expect("ca");
    let id = strait_ca::SpiffeId::parse(identity).expect("id");
    let key = strait_ca::WorkloadKey::generate(&id).expect("key");
    let chain = ca
        .sign_csr(&key.csr_pem, &id, Duration::from_secs(3600))
        .expect("sign");
    let creds = Credentials::new(tls::root_store(bundle).expect("bundle"));
    creds.install(&chain, &key.key_pem).expect("install");
    creds
}

fn ca(dir: &std::path::Path, cluster: &str) -> (std::path::PathBuf, String) {
    strait_ca::init(
        &[cluster.to_string()],
        dir,
        "cluster.local",
        &strait_ca::InitOptions { force: true },
    )
    .expect("init");
    let root = std::fs::read_to_string(dir.join("root-cert.pem")).expect("root");
    (dir.join(cluster), root)
}

/// Handshakes a client (expecting `identities`) with a server; Ok with the server's identity.
async fn handshake(
    client: &Arc<Credentials>,
    server: &Arc<Credentials>,
    identities: &[&str],
) -> Result<Option<String>, String> {
    let (c, s) = tokio::io::duplex(64 * 1024);
    let acceptor =
        tokio_rustls::TlsAcceptor::from(tls::server_config(server).map_err(|e| e.to_string())?);
    let ids: Vec<String> = identities.iter().map(|s| s.to_string()).collect();
    let connector = tokio_rustls::TlsConnector::from(
        tls::client_config(client, &ids, tls::ALPN_H2).map_err(|e| e.to_string())?,
    );
    let server_side = tokio::spawn(async move { acceptor.accept(s).await.map(|_| ()) });
    let name = ServerName::try_from("outbound_.5000_._.hw.sample.svc.cluster.local")
        .map_err(|e| e.to_string())?;
    let conn = connector
        .connect(name, c)
        .await
        .map_err(|e| e.to_string())?;
    let _ = server_side.await;
    Ok(tls::peer_identity(conn.get_ref().1.peer_certificates()))
}

#[tokio::test]
async fn a_bundle_of_two_roots_accepts_both_and_identities_are_checked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (old_ca, old_root) = ca(&tmp.path().join("old"), "c1");
    let (new_ca, new_root) = ca(&tmp.path().join("new"), "c1");
    let bundle = format!("{old_root}{new_root}");
    let hw = "spiffe://cluster.local/ns/sample/sa/helloworld";

    // The client trusts both roots (a root rotation in progress); servers from either verify.
    let client = workload(
        &old_ca,
        "spiffe://cluster.local/ns/sample/sa/sleep",
        &bundle,
    );
    for server_ca in [&old_ca, &new_ca] {
        let server = workload(server_ca, hw, &bundle);
        assert_eq!(
            handshake(&client, &server, &[hw])
                .await
                .expect("handshake")
                .as_deref(),
            Some(hw)
        );
    }

    // A client that trusts only the old root refuses a server from the new one.
    let old_only = workload(
        &old_ca,
        "spiffe://cluster.local/ns/sample/sa/sleep",
        &old_root,
    );
    let server = workload(&new_ca, hw, &bundle);
    assert!(handshake(&old_only, &server, &[hw]).await.is_err());

    // The right root but another identity: refused.
    let impostor = workload(
        &old_ca,
        "spiffe://cluster.local/ns/sample/sa/other",
        &bundle,
    );
    let err = handshake(&client, &impostor, &[hw])
        .await
        .expect_err("wrong identity");
    assert!(
        err.to_lowercase().contains("identity") || err.contains("certificate"),
        "{err}"
    );
}
