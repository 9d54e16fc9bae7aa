//! Configuration the sidecars do not act on yet. Accepted (it is valid Istio), but each use is
//! logged with its file and line when the mesh loads, so nobody is surprised that requests
//! are not mirrored, say.

use strait_api::istio::destination_rule::ClientTlsMode;
use strait_api::{Kind, Object};
use strait_model::Mesh;

/// One message per unsupported field in use: `file:line: Kind ns/name: field: what happens`.
pub fn report(mesh: &Mesh) -> Vec<String> {
    let mut out = Vec::new();
    for c in &mesh.clusters {
        for (_, o) in c.of_kind(Kind::VirtualService) {
            let Some(vs) = o.virtual_service() else {
                continue;
            };
            let mut note = |path: String, what: &str| out.push(line(mesh, o, &path, what));
            for (i, r) in vs.spec.http.iter().enumerate() {
                if r.mirror.is_some() || !r.mirrors.is_empty() {
                    note(
                        format!("spec.http[{i}].mirror"),
                        "not applied: requests are not mirrored",
                    );
                }
                if r.cors_policy.is_some() {
                    note(
                        format!("spec.http[{i}].corsPolicy"),
                        "not applied: no CORS handling in the sidecar",
                    );
                }
                if r.delegate.is_some() {
                    note(
                        format!("spec.http[{i}].delegate"),
                        "not applied: delegate VirtualServices are not followed",
                    );
                }
                if let Some(a) = r.fault.as_ref().and_then(|f| f.abort.as_ref())
                    && a.http_status.is_none()
                {
                    note(
                        format!("spec.http[{i}].fault.abort"),
                        "only httpStatus aborts are injected",
                    );
                }
                if r.fault
                    .as_ref()
                    .and_then(|f| f.delay.as_ref())
                    .is_some_and(|d| d.fixed_delay.is_none())
                {
                    note(
                        format!("spec.http[{i}].fault.delay"),
                        "only fixedDelay is injected",
                    );
                }
            }
            if !vs.spec.tls.is_empty() {
                note(
                    "spec.tls".into(),
                    "not applied: TLS traffic is routed by its service's default route",
                );
            }
        }
        for (_, o) in c.of_kind(Kind::DestinationRule) {
            let Some(dr) = o.destination_rule() else {
                continue;
            };
            for (path, tp) in dr.spec.traffic_policies() {
                let own = tp.tls.as_ref().map(|t| (format!("{path}.tls"), t));
                let ports = tp
                    .port_level_settings
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| {
                        p.tls
                            .as_ref()
                            .map(|t| (format!("{path}.portLevelSettings[{i}].tls"), t))
                    });
                for (field, tls) in own.into_iter().chain(ports) {
                    if matches!(
                        tls.mode,
                        Some(ClientTlsMode::Simple | ClientTlsMode::Mutual)
                    ) {
                        out.push(line(
                            mesh,
                            o,
                            &format!("{field}.mode"),
                            "not applied: TLS origination is not supported, so requests to this destination are refused (503 NC) rather than sent in plaintext",
                        ));
                    }
                }
            }
        }
    }
    out
}

/// `file:line: Kind ns/name: path: what`.
fn line(mesh: &Mesh, o: &Object, path: &str, what: &str) -> String {
    format!(
        "{}: {}: {path}: {what}",
        mesh.sources.display(o.locate(path)),
        o.display_name()
    )
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
}
