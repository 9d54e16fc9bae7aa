//! The analyzers. Each module checks one area; [`ANALYZERS`] lists them with the codes they
//! can report (for `--list-analyzers` and the documentation).

mod annotations;
mod auth;
mod authz;
mod conditions;
mod destination_rule;
mod envoy_filter;
mod gateway;
mod gateway_api;
mod ingress;
mod injection;
pub mod input;
mod jobs;
mod kubernetes;
mod mtls;
mod multicluster;
mod network_policy;
mod not_applied;
mod resources;
mod schema;
mod service;
mod service_entry;
mod sidecar;
mod target_refs;
mod telemetry;
mod util;
mod virtual_service;
mod webhook;

use crate::catalog::*;
use crate::context::Ctx;

/// A named group of checks.
pub struct Analyzer {
    pub name: &'static str,
    pub description: &'static str,
    pub codes: &'static [&'static Code],
    pub run: fn(&mut Ctx),
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("name", &self.name)
            .finish()
    }
}

pub const ANALYZERS: &[Analyzer] = &[
    Analyzer {
        name: "notapplied",
        description: "Valid Istio fields strait accepts but does not act on, and what happens instead; the Gateway API strait's data path does not serve yet",
        codes: &[STR0015, STR0017],
        run: not_applied::run,
    },
    Analyzer {
        name: "multicluster",
        description: "Networks and east-west gateways, shared roots, remote secrets, mesh ID, trust domain, drift between primaries",
        codes: &[
            STR0101, STR0102, STR0103, STR0104, STR0105, STR0106, STR0107, STR0108, STR0109,
            STR0110, STR0111, STR0112, STR0113, STR0114, STR0115, STR0116, IST0126, IST0170,
        ],
        run: multicluster::run,
    },
    Analyzer {
        name: "virtualservice",
        description: "VirtualService references, conflicts, unreachable rules, gateway hosts, timeouts",
        codes: &[
            IST0002, IST0101, IST0109, IST0112, IST0130, IST0131, IST0132, IST0140, IST0149,
            IST0165, STR0201, STR0203,
        ],
        run: virtual_service::run,
    },
    Analyzer {
        name: "destinationrule",
        description: "DestinationRule hosts, subsets, TLS verification, deprecated settings",
        codes: &[IST0002, IST0128, IST0129, IST0173, IST0174],
        run: destination_rule::run,
    },
    Analyzer {
        name: "serviceentry",
        description: "ServiceEntry addresses, protocols, STATIC endpoints",
        codes: &[IST0134, IST0177, STR0202],
        run: service_entry::run,
    },
    Analyzer {
        name: "sidecar",
        description: "Sidecar resource selectors",
        codes: &[IST0002, IST0101, IST0110, IST0111, IST0167],
        run: sidecar::run,
    },
    Analyzer {
        name: "envoyfilter",
        description: "EnvoyFilter patch operations",
        codes: &[IST0151, IST0152, IST0153, IST0154, IST0155],
        run: envoy_filter::run,
    },
    Analyzer {
        name: "schema",
        description: "Istio's own validation rules (what the admission webhook rejects or warns about)",
        codes: &[IST0106, IST0133],
        run: schema::run,
    },
    Analyzer {
        name: "kubernetes",
        description: "What Kubernetes' API server rejects on apply: missing containers, names, images, selectors, Service ports",
        codes: &[STR0016],
        run: kubernetes::run,
    },
    Analyzer {
        name: "gateway",
        description: "Gateway selectors, credentials, ports, conflicts, exposure of internal services",
        codes: &[
            IST0101, IST0138, IST0145, IST0161, IST0162, STR0204, STR0205,
        ],
        run: gateway::run,
    },
    Analyzer {
        name: "gatewayapi",
        description: "Kubernetes Gateway API: classes, listener listener conflicts, certificates, ports, route attachment, shadowed matches, backends, ReferenceGrants, CRD versions",
        codes: &[
            IST0101, IST0161, IST0162, IST0176, STR0016, STR0206, STR0207, STR0208, STR0209,
            STR0210,
        ],
        run: gateway_api::run,
    },
    Analyzer {
        name: "mtls",
        description: "PeerAuthentication against DestinationRule TLS, per host and per port",
        codes: &[STR0301, STR0302, STR0303],
        run: mtls::run,
    },
    Analyzer {
        name: "authorization",
        description: "AuthorizationPolicy selectors and namespaces, JWKS fetching",
        codes: &[IST0101, IST0127, IST0175, STR0304],
        run: auth::run,
    },
    Analyzer {
        name: "authzenforcement",
        description: "AuthorizationPolicy rules as the proxies enforce them: HTTP fields on TCP ports, identities no caller has, workloads without a sidecar, methods in lower case",
        codes: &[STR0305, STR0306, STR0307, STR0308],
        run: authz::run,
    },
    Analyzer {
        name: "telemetry",
        description: "Telemetry selectors and providers, missing access logs and metrics",
        codes: &[
            IST0002, IST0101, IST0157, IST0159, IST0160, STR0401, STR0402, STR0403,
        ],
        run: telemetry::run,
    },
    Analyzer {
        name: "ingress",
        description: "Kubernetes Ingresses of class istio: backends that name no Service or port",
        codes: &[IST0101],
        run: ingress::run,
    },
    Analyzer {
        name: "injection",
        description: "Sidecar injection: namespaces, pods, image: auto, the proxy's UID, stale proxy images",
        codes: &[
            IST0102, IST0103, IST0123, IST0144, IST0146, IST0147, IST0148, IST0158, STR0601,
        ],
        run: injection::run,
    },
    Analyzer {
        name: "jobs",
        description: "Jobs and CronJobs whose classic sidecar keeps their pods from completing",
        codes: &[STR0602],
        run: jobs::run,
    },
    Analyzer {
        name: "annotations",
        description: "Istio annotations: unknown, misplaced, deprecated, invalid",
        codes: &[IST0107, IST0108, IST0125, IST0135],
        run: annotations::run,
    },
    Analyzer {
        name: "service",
        description: "Service port naming and workloads behind several Services",
        codes: &[IST0116, IST0118, IST0137, IST0150],
        run: service::run,
    },
    Analyzer {
        name: "webhook",
        description: "Injection webhook overlaps and external control planes",
        codes: &[IST0139, IST0163, IST0164],
        run: webhook::run,
    },
    Analyzer {
        name: "resources",
        description: "Sidecar CPU/memory requests and limits",
        codes: &[STR0404, STR0405],
        run: resources::run,
    },
    Analyzer {
        name: "networkpolicy",
        description: "NetworkPolicies that block mesh ports",
        codes: &[STR0501],
        run: network_policy::run,
    },
    Analyzer {
        name: "conditions",
        description: "Negative status conditions the control plane wrote into objects (waypoint binding, policy acceptance, Gateway API acceptance and references)",
        codes: &[IST0171],
        run: conditions::run,
    },
    Analyzer {
        name: "targetrefs",
        description: "Policies that select a Kubernetes Gateway's pods instead of attaching with targetRefs",
        codes: &[IST0166],
        run: target_refs::run,
    },
];
