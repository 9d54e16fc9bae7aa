//! Configuration the proxies do not act on yet ([`strait_model::unsupported`]), as the lines
//! the control plane logs when the mesh loads, so nobody is surprised that requests are not
//! mirrored, say.

use strait_model::Mesh;

/// One message per unsupported field in use: `file:line: Kind ns/name: field: what happens`.
pub fn report(mesh: &Mesh) -> Vec<String> {
    strait_model::unsupported::report(mesh)
        .into_iter()
        .map(|n| {
            let o = mesh.object(n.object);
            format!(
                "{}: {}: {}: {}",
                mesh.sources.display(o.locate(&n.path)),
                o.display_name(),
                n.path,
                n.what
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;

    /// What `report` says of one file.
    fn report_for(name: &str, yaml: &str) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join(name);
        std::fs::write(&file, yaml).expect("write");
        let mesh = Source::files(vec![file]).load().expect("load").mesh;
        report(&mesh)
    }

    #[test]
    fn mirrors_and_tls_routes_are_reported_with_their_line() {
        let lines = report_for(
            "vs.yaml",
            "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: default}
spec:
  hosts: [a]
  http:
  - route:
    - destination: {host: a}
    mirror: {host: b}
  tls:
  - match: [{sniHosts: [a]}]
    route:
    - destination: {host: a}
",
        );
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("vs.yaml:9:") && lines[0].contains("mirror"),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("vs.yaml:11:") && lines[1].contains("spec.tls"),
            "{lines:?}"
        );
    }

    #[test]
    fn tls_origination_is_reported_with_its_line() {
        let lines = report_for(
            "dr.yaml",
            "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ext, namespace: default}
spec:
  host: api.example.com
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 443}
      tls:
        mode: SIMPLE
",
        );
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("dr.yaml:11:") && lines[0].contains("portLevelSettings[0].tls.mode"),
            "{lines:?}"
        );
    }

    #[test]
    fn gateway_api_and_proxy_extensions_are_reported_with_their_line() {
        let lines = report_for(
            "gw.yaml",
            "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: edge}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: front, namespace: edge}
spec:
  parentRefs:
  - name: web
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: auth, namespace: edge}
spec:
  url: oci://registry.example.com/auth:1
",
        );
        assert_eq!(lines.len(), 3, "{lines:?}");
        let has = |at: &str, what: &str| lines.iter().any(|l| l.contains(at) && l.contains(what));
        assert!(
            has("gw.yaml:5:", "Gateway edge/web: spec: not served"),
            "{lines:?}"
        );
        assert!(
            has("gw.yaml:13:", "HTTPRoute edge/front: spec: not served"),
            "{lines:?}"
        );
        assert!(has("gw.yaml:20:", "no Wasm plugins"), "{lines:?}");
    }
}
