//! Istio's own validation: the rules its admission webhook (and the CRD schema) enforces, so a
//! resource that `kubectl apply` would have rejected, or applied with a warning, is reported
//! before it gets there. IST0106 is a rejection, IST0133 a warning Istio prints on apply.
//!
//! Mirrors istio/istio `pkg/config/validation` (validation.go, virtualservice.go,
//! agent/validation.go, envoyfilter/envoyfilter.go) and the CEL rules of the CRDs. Only rules
//! whose outcome is certain are ported; field-format checks the loader already does (unknown
//! fields, wrong types, enum names) are not repeated here.
//!
//! | Rule                    | Kind                 | Code    | What Istio enforces                                           |
//! |-------------------------|----------------------|---------|---------------------------------------------------------------|
//! | `vs_routes`             | VirtualService       | IST0106 | http, tcp or tls present; each http rule routes, redirects or responds, and not two of them; not both mirror and mirrors |
//! | `vs_delegate`           | VirtualService       | IST0106 | a VirtualService without hosts (a delegate) has no gateways, tcp or tls |
//! | `vs_mesh_wildcard`      | VirtualService       | IST0106 | host `*` is not allowed on the mesh gateway                    |
//! | `vs_weights`            | VirtualService       | IST0106 | weights are not negative; several destinations do not all weigh 0 |
//! | `vs_string_matches`     | VirtualService       | IST0106 | one of exact/prefix/regex; prefix and regex not empty; regex is RE2 |
//! | `vs_retries`            | VirtualService       | IST0106 | attempts not negative; no retry settings when attempts is 0    |
//! | `vs_ports`              | VirtualService       | IST0106 | destination and match ports in 1..65535                        |
//! | `durations`             | VS, DR, Sidecar, RequestAuthentication, Telemetry | IST0106 | durations at least 1ms, in whole milliseconds |
//! | `gw_servers`            | Gateway              | IST0106 | servers exist, each with hosts and a named port in 1..65535; unique port names; TLS settings only where the protocol allows |
//! | `gw_tls`                | Gateway              | IST0106 | SIMPLE/MUTUAL have a credential or certificate and key; MUTUAL has a CA; ISTIO_MUTUAL has no certificates; one certificate source |
//! | `dr_host_and_subsets`   | DestinationRule      | IST0106 | host set; subsets named (DNS label) and unique; policies not empty |
//! | `dr_outlier`            | DestinationRule      | IST0106 | consecutiveLocalOriginFailures only with splitExternalLocalOriginErrors |
//! | `dr_selector_export`    | DestinationRule      | IST0106 | a rule with workloadSelector is exported to its namespace only |
//! | `se_rules`              | ServiceEntry         | IST0106 | hosts present and not `*`; unique port names and numbers in 1..65535; endpoints fit the resolution; several hosts only with HTTP/TLS ports |
//! | `sidecar_rules`         | Sidecar              | IST0106 | not empty; ingress has a port; egress hosts are namespace/dnsName, at most one port-less listener, last |
//! | `ap_actions`            | AuthorizationPolicy  | IST0106 | CUSTOM has rules and a provider; provider only with CUSTOM; DENY has rules |
//! | `ef_patches`            | EnvoyFilter          | IST0106 | each patch has applyTo, patch, operation, and a value unless REMOVE |
//! | `empty_selectors`       | Sidecar, SE, EnvoyFilter | IST0133 | workloadSelector without labels applies to the whole namespace |
//! | `gw_tls_warnings`       | Gateway, Sidecar     | IST0133 | httpsRedirect only on HTTP servers; TLS below 1.2 names cipher suites; passthrough ignores certificates |
//! | `dr_failover`           | DestinationRule      | IST0133 | locality failover needs outlier detection in the same policy   |
//! | `vs_fault_abort`        | VirtualService       | IST0133 | a fault abort names an error type                              |
//! | `se_warnings`           | ServiceEntry         | IST0133 | no workloadSelector with resolution NONE; no partial wildcards except with DYNAMIC_DNS |
//! | `sidecar_egress_hosts`  | Sidecar              | IST0133 | egress hosts not repeated; `*/*` alone                          |

use std::collections::{BTreeMap, BTreeSet};

use strait_api::istio::Duration;
use strait_api::istio::destination_rule::ClientTlsMode;
use strait_api::istio::envoy_filter::Operation;
use strait_api::istio::gateway::{ServerTlsMode, ServerTlsSettings, TlsProtocol};
use strait_api::istio::security::AuthorizationAction;
use strait_api::istio::service_entry::Resolution;
use strait_api::istio::virtual_service::StringMatch;
use strait_api::{Kind, Object};
use strait_model::host::ExportTo;
use strait_model::{ObjId, Protocol};

use super::util;

mod destination_rule;
mod durations;
mod gateway;
mod other_kinds;
mod regex;
mod virtual_service;
mod warnings;

use crate::catalog::{Code, IST0106, IST0133};
use crate::context::Ctx;
use destination_rule::*;
use durations::*;
use gateway::*;
use other_kinds::*;
use regex::*;
use virtual_service::*;
use warnings::*;

type Check = fn(&mut Ctx, ObjId, &Object, &'static Code);

/// One validation rule: the kinds it reads, the code it reports, and the check.
struct Rule {
    kinds: &'static [Kind],
    code: &'static Code,
    check: Check,
}

const RULES: &[Rule] = &[
    rule(&[Kind::VirtualService], IST0106, vs_routes),
    rule(&[Kind::VirtualService], IST0106, vs_delegate),
    rule(&[Kind::VirtualService], IST0106, vs_mesh_wildcard),
    rule(&[Kind::VirtualService], IST0106, vs_weights),
    rule(&[Kind::VirtualService], IST0106, vs_string_matches),
    rule(&[Kind::VirtualService], IST0106, vs_retries),
    rule(&[Kind::VirtualService], IST0106, vs_ports),
    rule(
        &[
            Kind::VirtualService,
            Kind::DestinationRule,
            Kind::Sidecar,
            Kind::RequestAuthentication,
            Kind::Telemetry,
        ],
        IST0106,
        durations,
    ),
    rule(&[Kind::Gateway], IST0106, gw_servers),
    rule(&[Kind::Gateway], IST0106, gw_tls),
    rule(&[Kind::DestinationRule], IST0106, dr_host_and_subsets),
    rule(&[Kind::DestinationRule], IST0106, dr_outlier),
    rule(&[Kind::DestinationRule], IST0106, dr_selector_export),
    rule(&[Kind::ServiceEntry], IST0106, se_rules),
    rule(&[Kind::Sidecar], IST0106, sidecar_rules),
    rule(&[Kind::AuthorizationPolicy], IST0106, ap_actions),
    rule(&[Kind::EnvoyFilter], IST0106, ef_patches),
    rule(
        &[Kind::Sidecar, Kind::ServiceEntry, Kind::EnvoyFilter],
        IST0133,
        empty_selectors,
    ),
    rule(&[Kind::Gateway, Kind::Sidecar], IST0133, gw_tls_warnings),
    rule(&[Kind::DestinationRule], IST0133, dr_failover),
    rule(&[Kind::VirtualService], IST0133, vs_fault_abort),
    rule(&[Kind::ServiceEntry], IST0133, se_warnings),
    rule(&[Kind::Sidecar], IST0133, sidecar_egress_hosts),
];

const fn rule(kinds: &'static [Kind], code: &'static Code, check: Check) -> Rule {
    Rule { kinds, code, check }
}

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for rule in RULES {
        for kind in rule.kinds {
            for (id, o) in util::objects(mesh, *kind) {
                (rule.check)(ctx, id, o, rule.code);
            }
        }
    }
}

pub(super) fn valid_port(n: u32) -> bool {
    (1..=65535).contains(&n)
}

/// Istio's DNS-1123 label (its own variant accepts upper case).
pub(super) fn istio_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests;
