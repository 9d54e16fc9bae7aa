//! The Envoys' bootstrap files, written as istiod configures a sidecar pair: on both sides an
//! outbound listener (HTTP connection manager, a virtual host per service with Istio's
//! domain forms, Istio's default retry policy) and an outbound cluster per service (HTTP/2
//! over mutual TLS, the SNI Istio sends, the servers' SPIFFE IDs checked, LEAST_REQUEST,
//! Istio's wide-open circuit breakers); on the server side also an inbound listener that
//! requires a client certificate from the client's identity and forwards to the app.
//!
//! Certificates come from files rather than SDS, and endpoints are static rather than EDS:
//! what the proxy holds and does per request is the same.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use super::{ADMIN_PORT, INBOUND_PORT, OUTBOUND_PORT};
use crate::proxy::services::{ExtraService, PORT as EXTRA_PORT};

/// A workload certificate chain (leaf first, without the root) and key, as files.
#[derive(Debug)]
pub(super) struct CertFiles {
    pub chain: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// One outbound service: its cluster, the Host forms that reach it, where its one endpoint
/// is, and the identity its server must present.
struct Outbound {
    cluster: String,
    domains: Vec<String>,
    endpoint: SocketAddr,
    sni: String,
    peer: String,
}

/// The bench's server, as the client reaches it.
fn server_outbound(server_ip: IpAddr, server_id: &str) -> Outbound {
    let fqdn = "server.bench.svc.cluster.local";
    Outbound {
        cluster: format!("outbound|8080||{fqdn}"),
        // The client is in the server's namespace, so the short name works too.
        domains: domains(&["server", "server.bench", "server.bench.svc", fqdn], 8080),
        endpoint: SocketAddr::new(server_ip, INBOUND_PORT),
        sni: format!("outbound_.8080_._.{fqdn}"),
        peer: server_id.to_string(),
    }
}

fn extra_outbound(s: &ExtraService) -> Outbound {
    let fqdn = s.fqdn();
    let ns = format!("{}.{}", s.name, crate::proxy::services::NAMESPACE);
    Outbound {
        cluster: format!("outbound|{EXTRA_PORT}||{fqdn}"),
        domains: domains(&[&ns, &format!("{ns}.svc"), &fqdn], EXTRA_PORT),
        endpoint: SocketAddr::new(IpAddr::V4(s.ip), EXTRA_PORT),
        sni: format!("outbound_.{EXTRA_PORT}_._.{fqdn}"),
        peer: s.spiffe_id(),
    }
}

/// Each name, with and without the port, as istiod lists a virtual host's domains.
fn domains(names: &[&str], port: u16) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| [n.to_string(), format!("{n}:{port}")])
        .collect()
}

/// What one Envoy's file needs.
pub(super) struct Bootstrap<'a> {
    pub ip: IpAddr,
    pub certs: &'a CertFiles,
    pub root: &'a Path,
    pub server_ip: IpAddr,
    pub server_id: &'a str,
    pub extra: &'a [ExtraService],
    /// For the server side: the client identity it admits, and the app behind it.
    pub inbound: Option<(&'a str, SocketAddr)>,
}

pub(super) fn render(b: &Bootstrap<'_>) -> String {
    let mut outbound = vec![server_outbound(b.server_ip, b.server_id)];
    outbound.extend(b.extra.iter().map(extra_outbound));
    let mut out = format!(
        "admin:\n  address: {{socket_address: {{address: {ip}, port_value: {ADMIN_PORT}}}}}\nstatic_resources:\n  listeners:\n",
        ip = b.ip
    );
    out.push_str(&outbound_listener(b.ip, &outbound));
    if let Some((client_id, app)) = b.inbound {
        out.push_str(&inbound_listener(b, client_id));
        out.push_str("  clusters:\n");
        let _ = write!(
            out,
            r#"  - name: "inbound|8080||"
    type: STATIC
    connect_timeout: 10s
    load_assignment:
      cluster_name: "inbound|8080||"
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {ip}, port_value: {port}}}}}}}
"#,
            ip = app.ip(),
            port = app.port()
        );
    } else {
        out.push_str("  clusters:\n");
    }
    for o in &outbound {
        out.push_str(&outbound_cluster(o, b.certs, b.root));
    }
    out
}

fn outbound_listener(ip: IpAddr, outbound: &[Outbound]) -> String {
    let mut hosts = String::new();
    for o in outbound {
        let domains: Vec<String> = o.domains.iter().map(|d| format!("\"{d}\"")).collect();
        let _ = write!(
            hosts,
            r#"              - name: "{name}"
                domains: [{domains}]
                routes:
                - match: {{prefix: "/"}}
                  route:
                    cluster: "{cluster}"
                    timeout: 0s
                    retry_policy: {RETRY}
"#,
            name = o.cluster,
            domains = domains.join(", "),
            cluster = o.cluster,
        );
    }
    format!(
        r#"  - name: outbound
    address: {{socket_address: {{address: {ip}, port_value: {OUTBOUND_PORT}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {HCM}
          stat_prefix: outbound_0.0.0.0_8080
          codec_type: AUTO
          route_config:
            name: "8080"
            virtual_hosts:
{hosts}          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
"#
    )
}

fn inbound_listener(b: &Bootstrap<'_>, client_id: &str) -> String {
    format!(
        r#"  - name: virtualInbound
    address: {{socket_address: {{address: {ip}, port_value: {INBOUND_PORT}}}}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
{tls}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {HCM}
          stat_prefix: inbound_0.0.0.0_8080
          codec_type: AUTO
          route_config:
            name: "inbound|8080||"
            virtual_hosts:
            - name: "inbound|http|8080"
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: "inbound|8080||", timeout: 0s}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
"#,
        ip = b.ip,
        tls = tls_context(b.certs, b.root, client_id, "\"h2\", \"http/1.1\"", 12),
    )
}

fn outbound_cluster(o: &Outbound, certs: &CertFiles, root: &Path) -> String {
    format!(
        r#"  - name: "{name}"
    type: STATIC
    connect_timeout: 10s
    lb_policy: LEAST_REQUEST
    circuit_breakers:
      thresholds:
      - {{max_connections: 4294967295, max_pending_requests: 4294967295, max_requests: 4294967295, max_retries: 4294967295}}
    load_assignment:
      cluster_name: "{name}"
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {ip}, port_value: {port}}}}}}}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: "{sni}"
        common_tls_context:
{tls}
"#,
        name = o.cluster,
        ip = o.endpoint.ip(),
        port = o.endpoint.port(),
        sni = o.sni,
        tls = tls_context(certs, root, &o.peer, "\"h2\"", 10),
    )
}

/// A `common_tls_context` body, indented by `indent` spaces.
fn tls_context(certs: &CertFiles, root: &Path, peer: &str, alpn: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!(
        r#"{pad}alpn_protocols: [{alpn}]
{pad}tls_certificates:
{pad}- certificate_chain: {{filename: "{chain}"}}
{pad}  private_key: {{filename: "{key}"}}
{pad}validation_context:
{pad}  trusted_ca: {{filename: "{root}"}}
{pad}  match_typed_subject_alt_names:
{pad}  - san_type: URI
{pad}    matcher: {{exact: "{peer}"}}"#,
        chain = certs.chain.display(),
        key = certs.key.display(),
        root = root.display(),
    )
}

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/// Istio's default retry policy for HTTP routes (istiod `route/retry`: two retries on
/// connect failures, refused streams, unavailable, cancelled and 503, to other hosts).
const RETRY: &str = r#"{retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", num_retries: 2, retriable_status_codes: [503], host_selection_retry_max_attempts: 5, retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts, typed_config: {"@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}]}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::services::extra_services;

    #[test]
    fn one_cluster_and_virtual_host_per_service() {
        let certs = CertFiles {
            chain: "/c.pem".into(),
            key: "/k.pem".into(),
        };
        let extra = extra_services(3);
        let yaml = render(&Bootstrap {
            ip: "127.0.0.1".parse().unwrap(),
            certs: &certs,
            root: Path::new("/root.pem"),
            server_ip: "127.0.0.2".parse().unwrap(),
            server_id: "spiffe://cluster.local/ns/bench/sa/server",
            extra: &extra,
            inbound: Some((
                "spiffe://cluster.local/ns/bench/sa/client",
                "127.0.0.3:8080".parse().unwrap(),
            )),
        });
        // Server plus three extras, each a cluster and a virtual host; one inbound cluster.
        assert_eq!(yaml.matches("lb_policy: LEAST_REQUEST").count(), 4);
        assert_eq!(yaml.matches("retry_policy:").count(), 4);
        assert_eq!(yaml.matches("  - name: \"inbound|8080||\"").count(), 1);
        assert!(yaml.contains("\"server.bench:8080\""));
        assert!(yaml.contains("sni: \"outbound_.8080_._.svc-0002.scale.svc.cluster.local\""));
        assert!(yaml.contains("exact: \"spiffe://cluster.local/ns/scale/sa/svc-0001\""));
        assert!(yaml.contains("require_client_certificate: true"));
    }
}
