//! Helpers for meshes of several networks: which isolation mode to run in, requests from a
//! workload through `strait exec` (which runs the command inside the pod's network), the
//! answers counted by version, and raw TLS probes of a gateway.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait_net::netns::Vantage;

use super::Mesh;

/// The isolation these tests run in: a network namespace per network (root; what CI runs,
/// so no proxy can bypass a gateway unnoticed), or, when `STRAIT_E2E_LOOPBACK=1` asks for it,
/// address discipline on one loopback. Without root and without that, the test fails: it
/// never passes by skipping.
pub fn isolation_args() -> Vec<&'static str> {
    if std::env::var("STRAIT_E2E_LOOPBACK").is_ok_and(|v| v == "1") {
        return Vec::new();
    }
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    assert!(
        root,
        "multi-network tests run each network in its own network namespace, which needs root; run them as root, or set STRAIT_E2E_LOOPBACK=1 to run them on one loopback"
    );
    vec!["--netns"]
}

/// Waits until `f` holds, up to `timeout`; panics with `what` otherwise.
pub fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < timeout,
            "not within {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Mesh {
    /// `strait exec <target> -- curl ...`: the status code and body of one GET of `url`.
    pub fn curl(&self, target: &str, url: &str) -> (u16, String) {
        let out = self.strait(&[
            "exec",
            target,
            "--",
            "curl",
            "-sS",
            "-m",
            "10",
            "-w",
            "\n%{http_code}",
            url,
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// How many of `n` requests to helloworld from `target` each version answered (`error`
    /// counts failures).
    pub fn hello_versions(&self, target: &str, n: usize) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for _ in 0..n {
            let (code, body) = self.curl(target, "http://helloworld.sample:5000/hello");
            let key = match (code, body.split("version: ").nth(1)) {
                (200, Some(rest)) => rest.split(',').next().unwrap_or("?").to_string(),
                _ => "error".to_string(),
            };
            *out.entry(key).or_insert(0) += 1;
        }
        out
    }

    /// The endpoints a workload's proxy holds for services whose name contains `fqdn`.
    pub fn endpoints(&self, target: &str, fqdn: &str) -> Vec<serde_json::Value> {
        let out = self.strait(&[
            "proxy-config",
            "endpoints",
            target,
            "--fqdn",
            fqdn,
            "-o",
            "json",
        ]);
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    /// Where a client outside the mesh stands.
    pub fn outside(&self) -> Vantage {
        self.state().outside()
    }

    /// Where a pod of `network` stands.
    pub fn in_network(&self, network: &str) -> Vantage {
        let st = self.state();
        match st
            .networks
            .iter()
            .find(|n| n.name == network)
            .and_then(|n| n.netns.clone())
        {
            Some(ns) => Vantage::In(strait_net::netns::Netns::named(ns)),
            None => Vantage::Here,
        }
    }

    /// The public address of a load balancer `cluster/namespace/name`.
    pub fn load_balancer(&self, key: &str) -> std::net::IpAddr {
        let st = self.state();
        st.load_balancers
            .iter()
            .find(|l| format!("{}/{}/{}", l.cluster, l.namespace, l.name) == key)
            .map(|l| l.address)
            .unwrap_or_else(|| panic!("no load balancer {key}: {:?}", st.load_balancers))
    }
}

/// A raw TCP connect from `vantage` (`source` bound when given): `Ok` when accepted and kept
/// open, the error otherwise.
pub fn dial(
    vantage: &Vantage,
    source: Option<std::net::IpAddr>,
    addr: SocketAddr,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let stream = match (vantage, source) {
            (Vantage::Here, Some(src)) => {
                let s = if addr.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                s.bind(SocketAddr::new(src, 0))?;
                tokio::time::timeout(Duration::from_secs(5), s.connect(addr))
                    .await
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect"))??
            }
            (v, _) => v.connect(addr, Duration::from_secs(5)).await?,
        };
        // A listener that refuses a peer accepts, then closes: reading tells.
        let mut buf = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(500), stream.peek(&mut buf)).await {
            Ok(Ok(0)) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "closed by the listener",
            )),
            Ok(Err(e)) => Err(e),
            _ => Ok(()),
        }
    })
}

/// Sends a TLS ClientHello with `sni` and `alpn` to `addr` from `vantage` and says whether
/// the other side answered it (a ServerHello) rather than closing the connection.
pub fn tls_answered(vantage: &Vantage, addr: SocketAddr, sni: &str, alpn: &[u8]) -> bool {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).expect("server name");
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("client");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("hello");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = vantage.connect(addr, Duration::from_secs(5)).await else {
            return false;
        };
        if s.write_all(&hello).await.is_err() {
            return false;
        }
        let mut buf = [0u8; 5];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
            Ok(Ok(n)) if n > 0 && buf[0] == 0x16
        )
    })
}
