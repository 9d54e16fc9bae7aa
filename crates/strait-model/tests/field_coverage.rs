//! strait's promise: nothing valid is silently ignored. Every field of every Istio kind strait
//! reads is either acted on ([`ACTED_ON`]) or reported where it is used
//! ([`strait_model::unsupported::REPORTED`]). The fields come from the types themselves
//! ([`strait_api::fields::field_paths`]), so a field or kind added to `strait-api` fails here
//! until it is classified.
//!
//! Paths use `[]` for any list element and `[*]` for any map entry; an entry covers its field
//! and everything below it. DestinationRule subsets and port-level settings, egress gateways and
//! the `istio` ConfigMap's mesh config are classified as the places they mirror
//! (`unsupported::SAME_AS`).

mod support;

use std::collections::BTreeSet;

use strait_api::Kind;
use strait_api::fields::field_paths;
use strait_api::istio::destination_rule::DestinationRuleSpec;
use strait_api::istio::envoy_filter::EnvoyFilterSpec;
use strait_api::istio::extensions::{ProxyConfigSpec, WasmPluginSpec};
use strait_api::istio::gateway::GatewaySpec;
use strait_api::istio::mesh_config::{MeshConfig, MeshNetworks};
use strait_api::istio::operator::IstioOperatorSpec;
use strait_api::istio::security::{
    AuthorizationPolicySpec, PeerAuthenticationSpec, RequestAuthenticationSpec,
};
use strait_api::istio::service_entry::{ServiceEntrySpec, WorkloadEntrySpec, WorkloadGroupSpec};
use strait_api::istio::sidecar::SidecarSpec;
use strait_api::istio::telemetry::TelemetrySpec;
use strait_api::istio::virtual_service::VirtualServiceSpec;
use strait_model::unsupported::{Step, When, below, canonical, places, report, reported, steps};

/// The Istio documents an object of `kind` holds: where each sits in the object and its field
/// paths. No catch-all arm: a new kind does not compile until it is placed here.
fn documents(kind: Kind) -> Vec<(&'static str, Vec<String>)> {
    match kind {
        Kind::VirtualService => vec![("spec", field_paths::<VirtualServiceSpec>())],
        Kind::DestinationRule => vec![("spec", field_paths::<DestinationRuleSpec>())],
        Kind::Gateway => vec![("spec", field_paths::<GatewaySpec>())],
        Kind::ServiceEntry => vec![("spec", field_paths::<ServiceEntrySpec>())],
        Kind::WorkloadEntry => vec![("spec", field_paths::<WorkloadEntrySpec>())],
        Kind::WorkloadGroup => vec![("spec", field_paths::<WorkloadGroupSpec>())],
        Kind::Sidecar => vec![("spec", field_paths::<SidecarSpec>())],
        Kind::EnvoyFilter => vec![("spec", field_paths::<EnvoyFilterSpec>())],
        Kind::PeerAuthentication => vec![("spec", field_paths::<PeerAuthenticationSpec>())],
        Kind::AuthorizationPolicy => vec![("spec", field_paths::<AuthorizationPolicySpec>())],
        Kind::RequestAuthentication => {
            vec![("spec", field_paths::<RequestAuthenticationSpec>())]
        }
        Kind::Telemetry => vec![("spec", field_paths::<TelemetrySpec>())],
        Kind::IstioOperator => vec![("spec", field_paths::<IstioOperatorSpec>())],
        Kind::WasmPlugin => vec![("spec", field_paths::<WasmPluginSpec>())],
        Kind::ProxyConfig => vec![("spec", field_paths::<ProxyConfigSpec>())],
        // The `istio` ConfigMap holds Istio's mesh config and mesh networks as YAML strings.
        Kind::ConfigMap => vec![
            ("data.mesh", field_paths::<MeshConfig>()),
            ("data.meshNetworks", field_paths::<MeshNetworks>()),
        ],
        // Kubernetes' own API: strait reads these as Kubernetes does, and the promise is about
        // Istio's.
        Kind::Namespace
        | Kind::Node
        | Kind::Service
        | Kind::Pod
        | Kind::Deployment
        | Kind::StatefulSet
        | Kind::DaemonSet
        | Kind::ReplicaSet
        | Kind::Job
        | Kind::CronJob
        | Kind::Endpoints
        | Kind::EndpointSlice
        | Kind::Secret
        | Kind::ServiceAccount
        | Kind::NetworkPolicy
        // An Ingress Istio would serve is reported whole (`unsupported`): strait serves none.
        | Kind::Ingress
        | Kind::IngressClass
        | Kind::MutatingWebhookConfiguration
        | Kind::ValidatingWebhookConfiguration
        // The Gateway API is not served by strait's data path: Istio's Gateways and the routes
        // on them are reported whole (`unsupported`, STR0017); a class, a grant or a CRD
        // configures nothing by itself.
        | Kind::KubeGateway
        | Kind::GatewayClass
        | Kind::HTTPRoute
        | Kind::GRPCRoute
        | Kind::TLSRoute
        | Kind::TCPRoute
        | Kind::ReferenceGrant
        | Kind::BackendTLSPolicy
        | Kind::ListenerSet
        | Kind::CustomResourceDefinition => Vec::new(),
    }
}

/// Fields strait acts on: compiled into proxy configuration, or used by the control plane, the
/// CA, the local runner or the analyzer as configuration.
const ACTED_ON: &[(Kind, &str)] = &[
    // VirtualService: sidecar and gateway routes (compile/routes.rs, compile/gateway.rs).
    (Kind::VirtualService, "spec.hosts"),
    // Sidecar: which one applies to a sidecar, and what it may reach (scope.rs).
    (Kind::Sidecar, "spec.workloadSelector"),
    (Kind::Sidecar, "spec.egress[].hosts"),
    (Kind::VirtualService, "spec.gateways"),
    (Kind::VirtualService, "spec.exportTo"),
    // Names the compiled rule in the proxy's messages.
    (Kind::VirtualService, "spec.http[].name"),
    (Kind::VirtualService, "spec.http[].match[].uri"),
    (Kind::VirtualService, "spec.http[].match[].scheme"),
    (Kind::VirtualService, "spec.http[].match[].method"),
    (Kind::VirtualService, "spec.http[].match[].authority"),
    (Kind::VirtualService, "spec.http[].match[].headers"),
    (Kind::VirtualService, "spec.http[].match[].port"),
    (Kind::VirtualService, "spec.http[].match[].sourceLabels"),
    (Kind::VirtualService, "spec.http[].match[].gateways"),
    (Kind::VirtualService, "spec.http[].match[].queryParams"),
    (Kind::VirtualService, "spec.http[].match[].ignoreUriCase"),
    (Kind::VirtualService, "spec.http[].match[].withoutHeaders"),
    (Kind::VirtualService, "spec.http[].match[].sourceNamespace"),
    (Kind::VirtualService, "spec.http[].route"),
    (Kind::VirtualService, "spec.http[].redirect.uri"),
    (Kind::VirtualService, "spec.http[].redirect.authority"),
    (Kind::VirtualService, "spec.http[].redirect.redirectCode"),
    (Kind::VirtualService, "spec.http[].directResponse.status"),
    (
        Kind::VirtualService,
        "spec.http[].directResponse.body.string",
    ),
    (Kind::VirtualService, "spec.http[].rewrite"),
    (Kind::VirtualService, "spec.http[].timeout"),
    (Kind::VirtualService, "spec.http[].retries.attempts"),
    (Kind::VirtualService, "spec.http[].retries.perTryTimeout"),
    (Kind::VirtualService, "spec.http[].retries.retryOn"),
    (Kind::VirtualService, "spec.http[].fault.delay.percent"),
    (Kind::VirtualService, "spec.http[].fault.delay.fixedDelay"),
    (Kind::VirtualService, "spec.http[].fault.delay.percentage"),
    (Kind::VirtualService, "spec.http[].fault.abort.httpStatus"),
    (Kind::VirtualService, "spec.http[].fault.abort.percentage"),
    (Kind::VirtualService, "spec.http[].headers"),
    // TLS routes are applied by gateways; bound to the mesh, `spec.tls` is reported.
    (Kind::VirtualService, "spec.tls[].match[].sniHosts"),
    (Kind::VirtualService, "spec.tls[].match[].port"),
    (Kind::VirtualService, "spec.tls[].match[].sourceLabels"),
    (Kind::VirtualService, "spec.tls[].match[].gateways"),
    (Kind::VirtualService, "spec.tls[].route"),
    (Kind::VirtualService, "spec.tcp[].match[].port"),
    (Kind::VirtualService, "spec.tcp[].match[].sourceLabels"),
    (Kind::VirtualService, "spec.tcp[].match[].gateways"),
    (Kind::VirtualService, "spec.tcp[].match[].sourceNamespace"),
    (Kind::VirtualService, "spec.tcp[].route"),
    // DestinationRule: clusters (compile/clusters.rs, destination.rs).
    (Kind::DestinationRule, "spec.host"),
    (Kind::DestinationRule, "spec.exportTo"),
    (Kind::DestinationRule, "spec.workloadSelector"),
    // PASSTHROUGH is reported.
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.loadBalancer.simple",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.connectionPool.tcp.maxConnections",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.connectionPool.http.http2MaxRequests",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection",
    ),
    // DISABLE and ISTIO_MUTUAL; SIMPLE and MUTUAL are reported and refused.
    (Kind::DestinationRule, "spec.trafficPolicy.tls.mode"),
    // Locality load balancing and outlier detection (compile/locality_lb.rs, clusters.rs;
    // the proxy's balance module).
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.loadBalancer.localityLbSetting",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.outlierDetection.consecutive5xxErrors",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.outlierDetection.consecutiveGatewayErrors",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.outlierDetection.interval",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.outlierDetection.baseEjectionTime",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.outlierDetection.minHealthPercent",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.portLevelSettings[].port",
    ),
    (Kind::DestinationRule, "spec.subsets[].name"),
    (Kind::DestinationRule, "spec.subsets[].labels"),
    // Gateway: gateway listeners (compile/gateway.rs, gateway.rs).
    (Kind::Gateway, "spec.selector"),
    (Kind::Gateway, "spec.servers[].port.number"),
    (Kind::Gateway, "spec.servers[].port.protocol"),
    (Kind::Gateway, "spec.servers[].hosts"),
    (Kind::Gateway, "spec.servers[].tls.httpsRedirect"),
    // ISTIO_MUTUAL is reported and refused.
    (Kind::Gateway, "spec.servers[].tls.mode"),
    (Kind::Gateway, "spec.servers[].tls.credentialName"),
    (Kind::Gateway, "spec.servers[].tls.caCertCredentialName"),
    (Kind::Gateway, "spec.servers[].tls.subjectAltNames"),
    (Kind::Gateway, "spec.servers[].tls.minProtocolVersion"),
    (Kind::Gateway, "spec.servers[].tls.maxProtocolVersion"),
    (Kind::Gateway, "spec.servers[].tls.cipherSuites"),
    // ServiceEntry: the service registry (build.rs).
    (Kind::ServiceEntry, "spec.hosts"),
    (Kind::ServiceEntry, "spec.ports"),
    (Kind::ServiceEntry, "spec.location"),
    (Kind::ServiceEntry, "spec.workloadSelector"),
    (Kind::ServiceEntry, "spec.exportTo"),
    // WorkloadEntry: a workload (build.rs), its endpoint weight (compile/clusters.rs).
    (Kind::WorkloadEntry, "spec.address"),
    // Read for a Service whose targetPort names a port; where Istio would differ, reported.
    (Kind::WorkloadEntry, "spec.ports"),
    (Kind::WorkloadEntry, "spec.labels"),
    (Kind::WorkloadEntry, "spec.network"),
    (Kind::WorkloadEntry, "spec.weight"),
    (Kind::WorkloadEntry, "spec.locality"),
    (Kind::WorkloadEntry, "spec.serviceAccount"),
    // PeerAuthentication: the server side of mTLS (peer_auth.rs).
    (Kind::PeerAuthentication, "spec.selector"),
    (Kind::PeerAuthentication, "spec.mtls"),
    (Kind::PeerAuthentication, "spec.portLevelMtls"),
    // AuthorizationPolicy (compile/authz.rs; CUSTOM and what cannot be checked are reported
    // by unsupported/security.rs).
    (Kind::AuthorizationPolicy, "spec.selector"),
    (Kind::AuthorizationPolicy, "spec.targetRef"),
    (Kind::AuthorizationPolicy, "spec.targetRefs"),
    (Kind::AuthorizationPolicy, "spec.action"),
    (Kind::AuthorizationPolicy, "spec.provider"),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.principals",
    ),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.notPrincipals",
    ),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.requestPrincipals",
    ),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.notRequestPrincipals",
    ),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.namespaces",
    ),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.notNamespaces",
    ),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.ipBlocks",
    ),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.notIpBlocks",
    ),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.remoteIpBlocks",
    ),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.notRemoteIpBlocks",
    ),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.serviceAccounts",
    ),
    (
        Kind::AuthorizationPolicy,
        "spec.rules[].from[].source.notServiceAccounts",
    ),
    (Kind::AuthorizationPolicy, "spec.rules[].to"),
    (Kind::AuthorizationPolicy, "spec.rules[].when"),
    // RequestAuthentication (the proxies' JWT checks, the control plane's JWKS fetches).
    (Kind::RequestAuthentication, "spec.selector"),
    (Kind::RequestAuthentication, "spec.targetRef"),
    (Kind::RequestAuthentication, "spec.targetRefs"),
    (Kind::RequestAuthentication, "spec.jwtRules[].issuer"),
    (Kind::RequestAuthentication, "spec.jwtRules[].audiences"),
    (Kind::RequestAuthentication, "spec.jwtRules[].jwks"),
    (Kind::RequestAuthentication, "spec.jwtRules[].jwksUri"),
    (Kind::RequestAuthentication, "spec.jwtRules[].jwks_uri"),
    (Kind::RequestAuthentication, "spec.jwtRules[].fromHeaders"),
    (Kind::RequestAuthentication, "spec.jwtRules[].fromParams"),
    (Kind::RequestAuthentication, "spec.jwtRules[].fromCookies"),
    (
        Kind::RequestAuthentication,
        "spec.jwtRules[].outputPayloadToHeader",
    ),
    (
        Kind::RequestAuthentication,
        "spec.jwtRules[].forwardOriginalToken",
    ),
    (
        Kind::RequestAuthentication,
        "spec.jwtRules[].outputClaimToHeaders",
    ),
    (
        Kind::RequestAuthentication,
        "spec.jwtRules[].spaceDelimitedClaims",
    ),
    (Kind::RequestAuthentication, "spec.jwtRules[].timeout"),
    (Kind::RequestAuthentication, "spec.jwtRules[].presence"),
    // IstioOperator: the installation's facts (build.rs: istiod, gateways, mesh ID, cluster,
    // network; the local runner's gateway processes).
    (Kind::IstioOperator, "spec.profile"),
    (Kind::IstioOperator, "spec.namespace"),
    (Kind::IstioOperator, "spec.revision"),
    // Free-form Helm values, read by path: global.meshID, global.network,
    // global.multiCluster.clusterName, global.istioNamespace, global.meshNetworks,
    // global.proxy.resources, istiodRemote.injectionPath,
    // sidecarInjectorWebhook.enableNamespacesByDefault, pilot.env.*.
    (Kind::IstioOperator, "spec.values"),
    (Kind::IstioOperator, "spec.components.pilot.enabled"),
    (
        Kind::IstioOperator,
        "spec.components.ingressGateways[].enabled",
    ),
    (
        Kind::IstioOperator,
        "spec.components.ingressGateways[].namespace",
    ),
    (
        Kind::IstioOperator,
        "spec.components.ingressGateways[].name",
    ),
    (
        Kind::IstioOperator,
        "spec.components.ingressGateways[].label",
    ),
    (
        Kind::IstioOperator,
        "spec.components.ingressGateways[].k8s.env[].name",
    ),
    (
        Kind::IstioOperator,
        "spec.components.ingressGateways[].k8s.env[].value",
    ),
    (
        Kind::IstioOperator,
        "spec.components.ingressGateways[].k8s.replicaCount",
    ),
    (
        Kind::IstioOperator,
        "spec.components.ingressGateways[].k8s.service.ports[].name",
    ),
    (
        Kind::IstioOperator,
        "spec.components.ingressGateways[].k8s.service.ports[].port",
    ),
    (
        Kind::IstioOperator,
        "spec.components.ingressGateways[].k8s.service.ports[].targetPort",
    ),
    (
        Kind::IstioOperator,
        "spec.components.ingressGateways[].k8s.service.type",
    ),
    // MeshConfig (also the `istio` ConfigMap's mesh): cluster.rs, compile/mod.rs, build.rs.
    (Kind::IstioOperator, "spec.meshConfig.trustDomain"),
    (Kind::IstioOperator, "spec.meshConfig.trustDomainAliases"),
    (Kind::IstioOperator, "spec.meshConfig.rootNamespace"),
    (Kind::IstioOperator, "spec.meshConfig.accessLogFile"),
    (Kind::IstioOperator, "spec.meshConfig.accessLogEncoding"),
    (Kind::IstioOperator, "spec.meshConfig.pathNormalization"),
    (Kind::IstioOperator, "spec.meshConfig.localityLbSetting"),
    (
        Kind::IstioOperator,
        "spec.meshConfig.outboundTrafficPolicy.mode",
    ),
    (Kind::IstioOperator, "spec.meshConfig.defaultConfig.meshId"),
    // Tracing (compile/tracing.rs).
    (Kind::IstioOperator, "spec.meshConfig.enableTracing"),
    (
        Kind::IstioOperator,
        "spec.meshConfig.defaultConfig.tracing.sampling",
    ),
    (
        Kind::IstioOperator,
        "spec.meshConfig.defaultProviders.tracing",
    ),
    (
        Kind::IstioOperator,
        "spec.meshConfig.extensionProviders[].name",
    ),
    (
        Kind::IstioOperator,
        "spec.meshConfig.extensionProviders[].opentelemetry.service",
    ),
    (
        Kind::IstioOperator,
        "spec.meshConfig.extensionProviders[].opentelemetry.port",
    ),
    (
        Kind::IstioOperator,
        "spec.meshConfig.extensionProviders[].opentelemetry.http.path",
    ),
    (
        Kind::IstioOperator,
        "spec.meshConfig.extensionProviders[].opentelemetry.http.timeout",
    ),
    (
        Kind::IstioOperator,
        "spec.meshConfig.extensionProviders[].opentelemetry.http.headers[].name",
    ),
    (
        Kind::IstioOperator,
        "spec.meshConfig.extensionProviders[].opentelemetry.http.headers[].value",
    ),
    (Kind::Telemetry, "spec.selector"),
    (Kind::Telemetry, "spec.targetRef"),
    (Kind::Telemetry, "spec.targetRefs"),
    (Kind::Telemetry, "spec.tracing[].providers"),
    (Kind::Telemetry, "spec.tracing[].randomSamplingPercentage"),
    (Kind::Telemetry, "spec.tracing[].disableSpanReporting"),
    (Kind::Telemetry, "spec.tracing[].customTags"),
    // MeshNetworks: network gateways (build.rs).
    (
        Kind::ConfigMap,
        "data.meshNetworks.networks[*].gateways[].registryServiceName",
    ),
    (
        Kind::ConfigMap,
        "data.meshNetworks.networks[*].gateways[].address",
    ),
    (
        Kind::ConfigMap,
        "data.meshNetworks.networks[*].gateways[].port",
    ),
];

/// Fields that change no behaviour in Istio either: labels for people, deprecated fields
/// Istio ignores. With the reason.
const NO_BEHAVIOUR: &[(Kind, &str, &str)] = &[
    (
        Kind::Gateway,
        "spec.servers[].port.name",
        "a label for the port, required by Istio's validation",
    ),
    (
        Kind::Gateway,
        "spec.servers[].port.targetPort",
        "deprecated, and ignored by Istio",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Table {
    ActedOn,
    Reported,
    NoBehaviour,
}

/// Every classification entry: which table, kind and path.
fn entries() -> Vec<(Table, Kind, &'static str)> {
    let mut out: Vec<(Table, Kind, &str)> = Vec::new();
    out.extend(ACTED_ON.iter().map(|(k, p)| (Table::ActedOn, *k, *p)));
    out.extend(reported().map(|(k, p, _)| (Table::Reported, k, p)));
    out.extend(
        NO_BEHAVIOUR
            .iter()
            .map(|(k, p, _)| (Table::NoBehaviour, *k, *p)),
    );
    out
}

/// Every field of every kind strait reads, as `(kind, path in the object, is a leaf)`.
fn all_fields() -> Vec<(Kind, String, bool)> {
    let mut out = Vec::new();
    for kind in Kind::all() {
        for (prefix, paths) in documents(kind) {
            for p in &paths {
                let leaf = !paths
                    .iter()
                    .any(|q| below(q, p).is_some_and(|rest| !rest.is_empty()));
                out.push((kind, format!("{prefix}.{p}"), leaf));
            }
        }
    }
    out
}

#[test]
fn every_istio_kind_has_its_fields_listed() {
    let missing: Vec<Kind> = Kind::all()
        .filter(|k| k.is_istio() && documents(*k).iter().all(|(_, p)| p.is_empty()))
        .collect();
    assert!(
        missing.is_empty(),
        "Istio kinds without fields: {missing:?}"
    );
}

#[test]
fn every_field_is_acted_on_or_reported() {
    let entries = entries();
    let mut unclassified = Vec::new();
    let mut twice = Vec::new();
    for (kind, path, leaf) in all_fields() {
        if !leaf {
            continue;
        }
        let (ck, cp) = canonical(kind, &path);
        let tables: BTreeSet<Table> = entries
            .iter()
            .filter(|(_, k, p)| *k == ck && below(&cp, p).is_some())
            .map(|(t, _, _)| *t)
            .collect();
        match tables.len() {
            0 => unclassified.push(format!("  {kind} {path}")),
            1 => {}
            _ => twice.push(format!("  {kind} {path}: {tables:?}")),
        }
    }
    assert!(
        unclassified.is_empty(),
        "{} fields are neither acted on nor reported:\n{}\n\nFor each: if strait acts on it, \
         add it to ACTED_ON in crates/strait-model/tests/field_coverage.rs; if it does not, \
         report it where it is used: a When::Set entry (with what happens instead) in REPORTED, \
         crates/strait-model/src/unsupported/table.rs, or code in unsupported/mod.rs and a \
         When::Checked entry.",
        unclassified.len(),
        unclassified.join("\n")
    );
    assert!(
        twice.is_empty(),
        "fields classified in more than one table (make the entries finer):\n{}",
        twice.join("\n")
    );
}

#[test]
fn no_entry_names_a_field_that_does_not_exist() {
    let fields: Vec<(Kind, String)> = all_fields()
        .into_iter()
        .map(|(k, p, _)| canonical(k, &p))
        .collect();
    let stale: Vec<String> = entries()
        .into_iter()
        .filter(|(_, k, p)| {
            !fields
                .iter()
                .any(|(fk, fp)| fk == k && below(fp, p).is_some())
        })
        .map(|(t, k, p)| format!("  {t:?}: {k} {p}"))
        .collect();
    assert!(
        stale.is_empty(),
        "entries for fields that do not exist (renamed or removed? fix or drop them):\n{}",
        stale.join("\n")
    );
}

/// A value holding `leaf` at table path `path`, and the path where the report points: the first
/// element of each list, the entry `x` of each map.
fn nest(path: &str, leaf: serde_json::Value) -> (serde_json::Value, String) {
    use strait_api::de::{FieldPath, Seg};
    let steps = steps(path);
    let mut value = leaf;
    for step in steps.iter().rev() {
        value = match step {
            Step::Key(k) => serde_json::json!({ *k: value }),
            Step::Each => serde_json::json!([value]),
            Step::Entry => serde_json::json!({ "x": value }),
        };
    }
    let at = steps
        .iter()
        .map(|s| match s {
            Step::Key(k) => Seg::Key((*k).to_string()),
            Step::Each => Seg::Index(0),
            Step::Entry => Seg::Key("x".into()),
        })
        .collect();
    (value, FieldPath(at).to_string())
}

/// Every `When::Set` entry, in every place it stands for, is reported where it is set: one
/// object per place with the field set (to a value of any type: reports follow the objects as
/// written), then the report must point at it.
#[test]
fn fields_reported_when_set_are_reported() {
    let mut docs = Vec::new();
    let mut expected = Vec::new();
    let places = reported().flat_map(|(kind, path, when)| match when {
        When::Set(_) => places(kind, path),
        _ => Vec::new(),
    });
    for (n, (kind, path)) in places.enumerate() {
        let name = format!("istio-f{n}");
        let namespace = if kind == Kind::ConfigMap {
            "istio-system"
        } else {
            "default"
        };
        let (body, at) = match path.split_once('.') {
            // Mesh config and networks are YAML inside a ConfigMap string.
            Some(("data", inner)) if kind == Kind::ConfigMap => {
                let (key, rest) = inner.split_once('.').unwrap_or((inner, ""));
                let (doc, inner_at) = nest(rest, serde_json::json!({}));
                (
                    serde_json::json!({ "data": { key: doc.to_string() } }),
                    format!("data.{key}.{inner_at}"),
                )
            }
            _ => nest(&path, serde_json::json!({})),
        };
        let mut obj = serde_json::json!({
            "apiVersion": kind.canonical_api_version(),
            "kind": kind.name(),
            "metadata": { "name": name, "namespace": namespace },
        });
        if let (Some(o), Some(b)) = (obj.as_object_mut(), body.as_object()) {
            o.extend(b.clone());
        }
        docs.push(obj.to_string());
        expected.push((kind, name, at));
    }
    let all = docs.join("\n---\n");
    let (_dir, mesh, _) = support::mesh_with_diagnostics(&[("all.yaml", all.as_str())]);
    let reported: BTreeSet<(Kind, String, String)> = report(&mesh)
        .into_iter()
        .map(|n| {
            let o = mesh.object(n.object);
            (o.kind, o.name().to_string(), n.path)
        })
        .collect();
    let missing: Vec<String> = expected
        .into_iter()
        .filter(|e| !reported.contains(e))
        .map(|(k, name, at)| format!("  {k} {name}: {at}"))
        .collect();
    assert!(
        missing.is_empty(),
        "fields set but not reported:\n{}",
        missing.join("\n")
    );
}

/// What `report` says of the objects in `yaml`, as `(name, path)`.
fn report_of(yaml: &str) -> Vec<(String, String, String)> {
    let (_dir, mesh, _) = support::mesh_with_diagnostics(&[("in.yaml", yaml)]);
    report(&mesh)
        .into_iter()
        .map(|n| (mesh.object(n.object).name().to_string(), n.path, n.what))
        .collect()
}

#[test]
fn checked_uses_are_reported() {
    let found = report_of(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns, namespace: default}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: selected, namespace: default}
spec:
  hosts: [vm.example.internal]
  ports: [{number: 80, name: http}]
  resolution: STATIC
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm1, namespace: default}
spec:
  address: 10.0.0.5
  labels: {app: vm}
  ports: {http: 8080}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: orig, namespace: default}
spec:
  host: vm.example.internal
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      loadBalancer: {simple: PASSTHROUGH}
---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: install, namespace: istio-system}
spec:
  meshConfig: {accessLogFile: /var/log/access.log}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    accessLogFile: /dev/stdout
",
    );
    let has = |name: &str, path: &str| found.iter().any(|(n, p, _)| n == name && p == path);
    assert!(has("dns", "spec.resolution"), "{found:?}");
    assert!(!has("selected", "spec.resolution"), "{found:?}");
    assert!(has("vm1", "spec.ports.http"), "{found:?}");
    assert!(has("install", "spec.meshConfig.accessLogFile"), "{found:?}");
    assert!(!has("istio", "data.mesh.accessLogFile"), "{found:?}");
    assert!(
        has(
            "orig",
            "spec.trafficPolicy.portLevelSettings[0].loadBalancer.simple"
        ),
        "{found:?}"
    );
}
