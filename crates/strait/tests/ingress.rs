//! An ingress gateway serving clients outside the mesh: HTTP and HTTPS (SIMPLE and MUTUAL, a
//! certificate per host from `credentialName` Secrets), VirtualServices bound by `gateways:`,
//! 404 for a host nobody routes, and Istio's metrics reported as `reporter="source"`. The mesh
//! is the two-network one, so the gateway's routes cross networks too.

mod support;

use std::path::Path;
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use support::Mesh;
use support::net::isolation_args;

struct Pem {
    cert: String,
    key: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("ca")
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    dns: &str,
    eku: ExtendedKeyUsagePurpose,
) -> Pem {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.subject_alt_names = vec![SanType::DnsName(dns.try_into().expect("dns"))];
    p.extended_key_usages = vec![eku];
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, issuer).expect("sign");
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn indent(pem: &str) -> String {
    pem.lines().map(|l| format!("    {l}\n")).collect()
}

/// The Gateway, its VirtualServices and its Secrets (in the gateway's namespace, where Istio
/// reads them).
fn ingress(shop: &Pem, partner: &Pem, client_ca: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: shop, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [shop.example.com]
  - port: {{number: 443, name: https, protocol: HTTPS}}
    tls: {{mode: SIMPLE, credentialName: shop-cert}}
    hosts: [shop.example.com]
  - port: {{number: 443, name: https-partner, protocol: HTTPS}}
    tls: {{mode: MUTUAL, credentialName: partner-cert}}
    hosts: [partner.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: sample}}
spec:
  hosts: [shop.example.com, partner.example.com]
  gateways: [istio-system/shop]
  http:
  - match: [{{uri: {{prefix: /hello}}}}]
    route:
    - destination: {{host: helloworld.sample.svc.cluster.local, port: {{number: 5000}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: shop-cert, namespace: istio-system}}
type: kubernetes.io/tls
stringData:
  tls.crt: |
{}  tls.key: |
{}---
apiVersion: v1
kind: Secret
metadata: {{name: partner-cert, namespace: istio-system}}
stringData:
  tls.crt: |
{}  tls.key: |
{}  ca.crt: |
{}",
        indent(&shop.cert),
        indent(&shop.key),
        indent(&partner.cert),
        indent(&partner.key),
        indent(client_ca),
    )
}

/// `curl` from outside the mesh (the link between networks in namespace mode): the status
/// code, or 0 when no HTTP answer came.
fn curl(mesh: &Mesh, args: &[&str]) -> (u16, String) {
    let st = mesh.state();
    let mut cmd = match &st.public_netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "curl"]);
            c
        }
        None => Command::new("curl"),
    };
    let out = cmd
        .args(["-sS", "-m", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

#[test]
fn an_ingress_gateway_serves_http_and_https_per_host() {
    let server_ca = ca("shop ca");
    let shop = leaf(
        &server_ca,
        "shop.example.com",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let partner = leaf(
        &server_ca,
        "partner.example.com",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client_ca = ca("partner clients");
    let client = leaf(
        &client_ca,
        "client.partner.example",
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let manifest = ingress(&shop, &partner, &client_ca.pem());
    let mesh = Mesh::up(
        "multicluster",
        68,
        &[("cluster1/ingress.yaml", manifest.as_str())],
        &isolation_args(),
    );
    let files = mesh.tmp.path();
    let cacert = write(files, "ca.pem", &server_ca.pem());
    let client_cert = write(files, "client.pem", &client.cert);
    let client_key = write(files, "client-key.pem", &client.key);
    let lb = mesh.load_balancer("cluster1/istio-system/istio-ingressgateway");

    // HTTP, by Host: routed to helloworld (in either network); an unknown host is 404.
    let (code, body) = curl(
        &mesh,
        &[
            "--resolve",
            &format!("shop.example.com:80:{lb}"),
            "http://shop.example.com/hello",
        ],
    );
    assert_eq!(code, 200, "{body}\n{}", mesh.log());
    assert!(body.starts_with("Hello version: v"), "{body}");
    let (code, _) = curl(
        &mesh,
        &[
            "--resolve",
            &format!("other.example.com:80:{lb}"),
            "http://other.example.com/hello",
        ],
    );
    assert_eq!(code, 404);
    let (code, _) = curl(
        &mesh,
        &[
            "--resolve",
            &format!("shop.example.com:80:{lb}"),
            "http://shop.example.com/nothing",
        ],
    );
    assert_eq!(code, 404, "no route for the path");

    // HTTPS SIMPLE: the server's certificate for its host.
    let (code, body) = curl(
        &mesh,
        &[
            "--cacert",
            &cacert,
            "--resolve",
            &format!("shop.example.com:443:{lb}"),
            "https://shop.example.com/hello",
        ],
    );
    assert_eq!(code, 200, "{body}\n{}", mesh.log());

    // HTTPS MUTUAL on the same port, chosen by SNI: no client certificate, no answer.
    let resolve = format!("partner.example.com:443:{lb}");
    let (code, _) = curl(
        &mesh,
        &[
            "--cacert",
            &cacert,
            "--resolve",
            &resolve,
            "https://partner.example.com/hello",
        ],
    );
    assert_eq!(code, 0, "MUTUAL answered a client without a certificate");
    let (code, body) = curl(
        &mesh,
        &[
            "--cacert",
            &cacert,
            "--cert",
            &client_cert,
            "--key",
            &client_key,
            "--resolve",
            &resolve,
            "https://partner.example.com/hello",
        ],
    );
    assert_eq!(code, 200, "{body}\n{}", mesh.log());

    // Istio's metrics, reported by the gateway as the source.
    let gw = mesh.pod("cluster1/istio-system/istio-ingressgateway");
    let vantage = mesh.in_network("network1");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_, stats) = rt
        .block_on(strait_local::fetch::get_from(
            &vantage,
            std::net::SocketAddr::new(gw.ip, 15090),
            "/stats/prometheus",
            std::time::Duration::from_secs(5),
        ))
        .expect("stats");
    let stats = String::from_utf8_lossy(&stats);
    assert!(
        stats.lines().any(|l| l.starts_with("istio_requests_total{")
            && l.contains("reporter=\"source\"")
            && l.contains("source_workload=\"istio-ingressgateway\"")
            && l.contains("destination_service=\"helloworld.sample.svc.cluster.local\"")),
        "{stats}"
    );
}
