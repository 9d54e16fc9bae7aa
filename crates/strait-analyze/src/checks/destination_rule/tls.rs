//! IST0128/IST0129: SIMPLE or MUTUAL origination that names no CA to check the server with.
//!
//! Mirrors Istio's `destinationrule.CaCertificateAnalyzer`: top-level TLS is IST0128, an entry
//! of `portLevelSettings` is IST0129. Istio only looks at `spec.trafficPolicy`; subsets' policies
//! are checked here too, with the same codes, because istiod builds their clusters the same way.

use strait_api::istio::destination_rule::{ClientTlsMode, ClientTlsSettings, DestinationRuleSpec};
use strait_model::ObjId;

use crate::catalog::{IST0128, IST0129};
use crate::context::Ctx;

/// A `credentialName` in this scheme names a ConfigMap holding only a CA bundle, which every
/// proxy may read: the server is verified whatever proxy uses the rule.
const CONFIGMAP_CREDENTIAL: &str = "configmap://";

pub(super) fn check(ctx: &mut Ctx, id: ObjId, spec: &DestinationRuleSpec) {
    let selector = spec.workload_selector.is_some();
    for (path, tp) in spec.traffic_policies() {
        if let Some(tls) = &tp.tls {
            let at = format!("{path}.tls");
            check_settings(ctx, id, &spec.host, &at, tls, selector, None);
        }
        for (j, pl) in tp.port_level_settings.iter().enumerate() {
            if let Some(tls) = &pl.tls {
                let port = pl.port.as_ref().map(|p| p.number);
                let at = format!("{path}.portLevelSettings[{j}].tls");
                check_settings(ctx, id, &spec.host, &at, tls, selector, Some(port));
            }
        }
    }
}

fn check_settings(
    ctx: &mut Ctx,
    id: ObjId,
    host_name: &str,
    path: &str,
    tls: &ClientTlsSettings,
    selector: bool,
    port: Option<Option<u32>>,
) {
    let mode = match tls.mode {
        Some(ClientTlsMode::Simple) => "SIMPLE",
        Some(ClientTlsMode::Mutual) => "MUTUAL",
        _ => return,
    };
    if !tls.ca_certificates.is_empty() {
        return;
    }
    let (code, place) = match port {
        None => (IST0128, String::new()),
        Some(Some(p)) => (IST0129, format!(" on port {p}")),
        Some(None) => (IST0129, " on this port".to_string()),
    };
    let credential = tls.credential_name.as_str();
    if credential.is_empty() {
        if tls.insecure_skip_verify == Some(true) {
            // Deliberately unverified, and still unverified: istioctl warns here too.
            ctx.at(
                code,
                id,
                &format!("{path}.insecureSkipVerify"),
                format!(
                    "TLS mode {mode} to {host_name}{place} skips verifying the server certificate (insecureSkipVerify: true), so an impostor endpoint is accepted; set caCertificates to verify it"
                ),
            );
            return;
        }
        ctx.at(
            code,
            id,
            &format!("{path}.mode"),
            format!(
                "TLS mode {mode} to {host_name}{place} sets no caCertificates: the server certificate is not checked against a CA you chose, so an impostor endpoint can be accepted; set caCertificates (or a credentialName on a rule with a workloadSelector)"
            ),
        );
        return;
    }
    // istiod hands a Secret credential only to gateways, and to sidecars of a rule bound to
    // them by `workloadSelector` (pilot `cluster_tls.go`): other sidecars would all have to be
    // allowed to read the Secret. Sidecars using a selector-less rule therefore get no TLS
    // settings from it at all (no CA, no client certificate), and istioctl warns.
    if selector || credential.starts_with(CONFIGMAP_CREDENTIAL) {
        return;
    }
    ctx.at(
        code,
        id,
        &format!("{path}.credentialName"),
        format!(
            "TLS mode {mode} to {host_name}{place} takes its certificates from credentialName {credential} and sets no caCertificates, but this rule has no workloadSelector: istiod uses the credential only at gateways, so sidecars using this rule originate no TLS with it and verify no server certificate; add a workloadSelector for the client workloads, or set caCertificates (and clientCertificate/privateKey files for MUTUAL) for sidecars"
        ),
    );
}
