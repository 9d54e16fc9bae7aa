//! The fields of Istio's API that [`super::report`] reports, as data. `tests/field_coverage.rs` holds every field of every kind strait reads
//! against this table and the list of fields strait acts on, so a field added to `strait-api`
//! fails that test until it is acted on or listed here.
//!
//! Paths are written as in messages, with `[]` for any list element and `[*]` for any map entry:
//! `spec.http[].mirror`. An entry stands for its field and everything below it.

use strait_api::Kind;
use strait_api::Kind::{
    ConfigMap as CM, DestinationRule as DR, Gateway as GW, IstioOperator as IOP,
    ServiceEntry as SE, VirtualService as VS,
};

/// How a reported field is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Wherever it is set (not null, not an empty string or list), with what happens instead.
    Set(&'static str),
    /// When [`super::report`]'s own code finds a use it cannot honour (a value, a combination).
    Checked,
    /// By the AuthorizationPolicy and RequestAuthentication checks (`security.rs`).
    Security,
}

/// Reported fields of one kind, found the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reported {
    pub kind: Kind,
    pub paths: &'static [&'static str],
    pub when: When,
}

/// Places that hold the same settings: `(kind, prefix)` reads as `(as_kind, as_prefix)`, so an
/// entry for the second is reported at the first too, and the coverage test classifies a field
/// under the first as the one under the second.
pub const SAME_AS: &[(Kind, &str, Kind, &str)] = &[
    (
        Kind::DestinationRule,
        "spec.subsets[].trafficPolicy",
        Kind::DestinationRule,
        "spec.trafficPolicy",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.portLevelSettings[].loadBalancer",
        Kind::DestinationRule,
        "spec.trafficPolicy.loadBalancer",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.portLevelSettings[].connectionPool",
        Kind::DestinationRule,
        "spec.trafficPolicy.connectionPool",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.portLevelSettings[].outlierDetection",
        Kind::DestinationRule,
        "spec.trafficPolicy.outlierDetection",
    ),
    (
        Kind::DestinationRule,
        "spec.trafficPolicy.portLevelSettings[].tls",
        Kind::DestinationRule,
        "spec.trafficPolicy.tls",
    ),
    (
        Kind::IstioOperator,
        "spec.components.egressGateways[]",
        Kind::IstioOperator,
        "spec.components.ingressGateways[]",
    ),
    // The `istio` ConfigMap's mesh config is the same MeshConfig as an IstioOperator's.
    (
        Kind::ConfigMap,
        "data.mesh",
        Kind::IstioOperator,
        "spec.meshConfig",
    ),
];

const fn set(kind: Kind, paths: &'static [&'static str], what: &'static str) -> Reported {
    Reported {
        kind,
        paths,
        when: When::Set(what),
    }
}

const fn checked(kind: Kind, paths: &'static [&'static str]) -> Reported {
    Reported {
        kind,
        paths,
        when: When::Checked,
    }
}

const fn security(kind: Kind, paths: &'static [&'static str]) -> Reported {
    Reported {
        kind,
        paths,
        when: When::Security,
    }
}

/// Every reported field: `(kind, path, how it is found)`.
pub fn reported() -> impl Iterator<Item = (Kind, &'static str, When)> {
    REPORTED
        .iter()
        .flat_map(|r| r.paths.iter().map(move |p| (r.kind, *p, r.when)))
}

const REDIRECT_AUTHORITY: &str = "not applied: the Location keeps the request's authority (or redirect.authority), port included";
const BALANCED: &str =
    "not applied: requests are balanced by the simple policy (LEAST_REQUEST by default)";
const ZONE_AWARE: &str = "not applied: load is not kept in the client's zone by Envoy's zone-aware routing (localityLbSetting failover is applied)";
const UPSTREAM_PROTOCOL: &str = "not applied: requests go to other proxies as HTTP/2 over mTLS, and to endpoints without a proxy in the service port's protocol";
const INSTALL: &str = "not applied: strait installs nothing; its own control plane and proxies run in place of Istio's components";
const ISTIOD: &str = "not applied: strait's control plane runs in place of istiod, whose install settings are not used (PILOT_SCOPE_GATEWAY_TO_NAMESPACE is read from values.pilot.env only)";
const GATEWAY_K8S: &str = "not applied: the gateway runs as a strait proxy; of its Kubernetes settings only env, replicaCount and the Service's ports and type are used";
const PROXY_CONFIG: &str = "not applied: strait's proxies take their settings from strait's control plane; of defaultConfig only meshId is read";
const EXPORT_ALL: &str = "not applied: resources without exportTo are visible in every namespace";
const NO_INGRESS: &str = "not applied: Kubernetes Ingress resources are not served";

/// Every reported field, by kind.
pub const REPORTED: &[Reported] = &[
    // VirtualService.
    set(
        VS,
        &["spec.http[].match[].name"],
        "not used: the match's name does not appear in the proxy's logs or metrics",
    ),
    set(
        VS,
        &["spec.http[].match[].statPrefix"],
        "not applied: no per-route statistics are kept under this prefix",
    ),
    set(
        VS,
        &[
            "spec.http[].redirect.port",
            "spec.http[].redirect.derivePort",
        ],
        REDIRECT_AUTHORITY,
    ),
    set(
        VS,
        &["spec.http[].redirect.scheme"],
        "not applied: the Location's scheme is always http",
    ),
    set(
        VS,
        &["spec.http[].redirect.prefixRewrite"],
        "not applied: the Location's path is redirect.uri, else the request's path unchanged",
    ),
    set(
        VS,
        &["spec.http[].directResponse.body.bytes"],
        "not applied: the response is sent with an empty body (only body.string is sent)",
    ),
    checked(VS, &["spec.http[].delegate"]),
    set(
        VS,
        &["spec.http[].retries.retryRemoteLocalities"],
        "not applied: retries go to any endpoint of the destination, whatever its locality",
    ),
    set(
        VS,
        &["spec.http[].retries.retryIgnorePreviousHosts"],
        "not applied: each retry goes to an endpoint not tried before while one is left",
    ),
    set(
        VS,
        &["spec.http[].retries.backoff"],
        "not applied: retries back off from 25ms (Envoy's default), jittered and growing",
    ),
    // Only fixedDelay and httpStatus are injected: the others are reported with their fault.
    checked(
        VS,
        &[
            "spec.http[].fault.delay.exponentialDelay",
            "spec.http[].fault.abort.grpcStatus",
            "spec.http[].fault.abort.http2Error",
        ],
    ),
    // Reported together as `mirror`; the percentages mean nothing without a mirror, in Istio too.
    checked(
        VS,
        &[
            "spec.http[].mirror",
            "spec.http[].mirrors",
            "spec.http[].mirrorPercent",
            "spec.http[].mirror_percent",
            "spec.http[].mirrorPercentage",
        ],
    ),
    checked(VS, &["spec.http[].corsPolicy"]),
    set(
        VS,
        &["spec.tls[].match[].destinationSubnets"],
        "not applied: the route applies whatever the connection's destination address",
    ),
    set(
        VS,
        &["spec.tls[].match[].sourceNamespace"],
        "not applied: the route applies whatever the client's namespace",
    ),
    set(
        VS,
        &["spec.tcp[].match[].destinationSubnets"],
        "not applied: the route applies whatever the connection's destination address",
    ),
    set(
        VS,
        &["spec.tcp[].match[].sourceSubnet"],
        "not applied: the route applies whatever the client's address",
    ),
    // DestinationRule traffic policies (also in subsets and port-level settings: SAME_AS).
    set(
        DR,
        &[
            "spec.trafficPolicy.loadBalancer.consistentHash",
            "spec.trafficPolicy.loadBalancer.backendUtilization",
        ],
        BALANCED,
    ),
    set(
        DR,
        &["spec.trafficPolicy.loadBalancer.zoneAwareLbSetting"],
        ZONE_AWARE,
    ),
    set(
        DR,
        &[
            "spec.trafficPolicy.loadBalancer.warmupDurationSecs",
            "spec.trafficPolicy.loadBalancer.warmup",
        ],
        "not applied: a new endpoint gets its full share of requests at once",
    ),
    set(
        DR,
        &["spec.trafficPolicy.connectionPool.tcp.tcpKeepalive"],
        "not applied: upstream connections use the system's TCP keepalive settings",
    ),
    set(
        DR,
        &["spec.trafficPolicy.connectionPool.tcp.maxConnectionDuration"],
        "not applied: upstream connections are not closed after a maximum duration",
    ),
    set(
        DR,
        &["spec.trafficPolicy.connectionPool.tcp.idleTimeout"],
        "not applied: idle upstream connections are kept and closed by the proxy's pool defaults",
    ),
    set(
        DR,
        &["spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests"],
        "not enforced: requests are not queued against a limit",
    ),
    set(
        DR,
        &["spec.trafficPolicy.connectionPool.http.maxRetries"],
        "not enforced: retries follow each route's policy without a cluster-wide budget",
    ),
    set(
        DR,
        &["spec.trafficPolicy.connectionPool.http.idleTimeout"],
        "not applied: idle upstream connections are kept and closed by the proxy's pool defaults",
    ),
    set(
        DR,
        &[
            "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy",
            "spec.trafficPolicy.connectionPool.http.useClientProtocol",
        ],
        UPSTREAM_PROTOCOL,
    ),
    set(
        DR,
        &["spec.trafficPolicy.connectionPool.http.maxConcurrentStreams"],
        "not applied: upstream HTTP/2 connections take as many streams as the server allows",
    ),
    set(
        DR,
        &["spec.trafficPolicy.connectionPool.http.http2KeepAlive"],
        "not applied: upstream HTTP/2 connections keep the proxy's keepalive (a PING every 30s, 10s timeout)",
    ),
    set(
        DR,
        &[
            "spec.trafficPolicy.outlierDetection.splitExternalLocalOriginErrors",
            "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures",
        ],
        "not applied: connection failures count as 503s toward consecutive5xxErrors and consecutiveGatewayErrors",
    ),
    set(
        DR,
        &["spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes"],
        "not applied: only 5xx answers (and connection failures) count as errors",
    ),
    set(
        DR,
        &["spec.trafficPolicy.outlierDetection.consecutiveErrors"],
        "not applied (deprecated, and not read by Istio either): use consecutive5xxErrors",
    ),
    // Client certificates and CAs serve TLS origination (SIMPLE, MUTUAL), which is reported
    // with its mode and refused.
    checked(
        DR,
        &[
            "spec.trafficPolicy.tls.clientCertificate",
            "spec.trafficPolicy.tls.privateKey",
            "spec.trafficPolicy.tls.caCertificates",
            "spec.trafficPolicy.tls.credentialName",
            "spec.trafficPolicy.tls.insecureSkipVerify",
            "spec.trafficPolicy.tls.caCrl",
        ],
    ),
    set(
        DR,
        &["spec.trafficPolicy.tls.sni"],
        "not applied: mTLS connections send Istio's SNI, outbound_.<port>_.<subset>_.<host>",
    ),
    set(
        DR,
        &["spec.trafficPolicy.tls.subjectAltNames"],
        "not applied: the server's certificate is checked against the identities of the service's workloads instead; where these names are narrower, more servers are accepted than asked (this does not fail closed)",
    ),
    set(
        DR,
        &["spec.trafficPolicy.tunnel"],
        "not applied: connections go straight to the endpoints, not through a CONNECT tunnel",
    ),
    set(
        DR,
        &["spec.trafficPolicy.proxyProtocol"],
        "not applied: no PROXY protocol header is sent upstream",
    ),
    set(
        DR,
        &["spec.trafficPolicy.retryBudget"],
        "not applied: retries follow each route's policy without a budget",
    ),
    // Gateway.
    checked(
        GW,
        &["spec.servers[].bind", "spec.servers[].defaultEndpoint"],
    ),
    set(
        GW,
        &["spec.servers[].name"],
        "not used: the proxy's logs and metrics do not carry the server's name",
    ),
    // Certificates from files: the server is refused when it terminates without credentialName.
    checked(
        GW,
        &[
            "spec.servers[].tls.serverCertificate",
            "spec.servers[].tls.privateKey",
            "spec.servers[].tls.caCertificates",
            "spec.servers[].tls.caCrl",
            "spec.servers[].tls.credentialNames",
            "spec.servers[].tls.tlsCertificates",
            "spec.servers[].tls.verifyCertificateSpki",
            "spec.servers[].tls.verifyCertificateHash",
        ],
    ),
    set(
        GW,
        &["spec.servers[].tls.ecdhCurves"],
        "not applied: key exchange uses the TLS library's default curves",
    ),
    set(
        GW,
        &["spec.servers[].tls.insecureSkipVerify"],
        "not applied: client certificates are verified as the mode says",
    ),
    // ServiceEntry and WorkloadEntry.
    set(
        SE,
        &["spec.addresses"],
        "not applied: connections to these addresses are not matched to this service; they go where any unknown destination goes (passed through, or refused under REGISTRY_ONLY)",
    ),
    checked(SE, &["spec.resolution", "spec.endpoints"]),
    set(
        SE,
        &["spec.subjectAltNames"],
        "not applied: the server's certificate is checked against the identities of the service's workloads instead; where these names are narrower, more servers are accepted than asked (this does not fail closed)",
    ),
    // Sidecar: its workloadSelector and egress hosts scope what a sidecar is sent
    // (scope.rs); the rest is not acted on.
    set(
        Kind::Sidecar,
        &["spec.egress[].port"],
        "not applied: the hosts of every egress listener apply to every port",
    ),
    set(
        Kind::Sidecar,
        &["spec.egress[].bind", "spec.egress[].captureMode"],
        "not applied: outbound traffic is taken where the sidecar listens (15001, or as an HTTP proxy)",
    ),
    set(
        Kind::Sidecar,
        &["spec.ingress"],
        "not applied: inbound ports come from the Services selecting the workload",
    ),
    set(
        Kind::Sidecar,
        &["spec.inboundConnectionPool"],
        "not applied: inbound connections are not limited",
    ),
    set(
        Kind::Sidecar,
        &["spec.outboundTrafficPolicy"],
        "not applied: meshConfig.outboundTrafficPolicy decides for every sidecar",
    ),
    // Kinds not acted on at all.
    checked(Kind::EnvoyFilter, &["spec"]),
    // Telemetry: tracing is compiled (compile/tracing.rs); metrics and access logs are not.
    set(
        Kind::Telemetry,
        &["spec.metrics", "spec.accessLogging"],
        "not applied: metrics are Istio's standard set, access logs follow meshConfig.accessLogFile",
    ),
    set(
        Kind::Telemetry,
        &["spec.tracing[].match"],
        "not applied: the tracing settings apply to client and server spans alike",
    ),
    set(
        Kind::Telemetry,
        &["spec.tracing[].useRequestIdForTraceSampling"],
        "not applied: new traces are sampled by a random draw, not by x-request-id",
    ),
    set(
        Kind::Telemetry,
        &["spec.tracing[].enableIstioTags"],
        "not applied: spans always carry Istio's tags",
    ),
    set(
        Kind::Telemetry,
        &["spec.tracing[].disableContextPropagation"],
        "not applied: trace context is always propagated while tracing is on",
    ),
    checked(Kind::WorkloadGroup, &["spec"]),
    checked(Kind::WasmPlugin, &["spec"]),
    checked(Kind::ProxyConfig, &["spec"]),
    // AuthorizationPolicy.
    security(
        Kind::AuthorizationPolicy,
        &[
            "spec.rules[].from[].source.trustDomains",
            "spec.rules[].from[].source.notTrustDomains",
        ],
    ),
    // IstioOperator: an installation, of which strait reads what it needs to know.
    set(
        IOP,
        &[
            "spec.installPackagePath",
            "spec.hub",
            "spec.tag",
            "spec.compatibilityVersion",
        ],
        INSTALL,
    ),
    set(
        IOP,
        &["spec.unvalidatedValues"],
        "not read: of the Helm values only those in spec.values that strait knows are read",
    ),
    set(
        IOP,
        &[
            "spec.components.base",
            "spec.components.cni",
            "spec.components.ztunnel",
            "spec.components.istiodRemote",
        ],
        INSTALL,
    ),
    set(
        IOP,
        &[
            "spec.components.pilot.namespace",
            "spec.components.pilot.hub",
            "spec.components.pilot.tag",
            "spec.components.pilot.k8s",
        ],
        ISTIOD,
    ),
    set(IOP, &["spec.components.ingressGateways[].hub"], INSTALL),
    set(
        IOP,
        &["spec.components.ingressGateways[].k8s.env[].valueFrom"],
        "not applied: the gateway's environment takes literal values only",
    ),
    set(IOP, &["spec.components.ingressGateways[].tag"], INSTALL),
    set(
        IOP,
        &[
            "spec.components.ingressGateways[].k8s.affinity",
            "spec.components.ingressGateways[].k8s.hpaSpec",
            "spec.components.ingressGateways[].k8s.imagePullPolicy",
            "spec.components.ingressGateways[].k8s.nodeSelector",
            "spec.components.ingressGateways[].k8s.podDisruptionBudget",
            "spec.components.ingressGateways[].k8s.podAnnotations",
            "spec.components.ingressGateways[].k8s.priorityClassName",
            "spec.components.ingressGateways[].k8s.readinessProbe",
            "spec.components.ingressGateways[].k8s.resources",
            "spec.components.ingressGateways[].k8s.strategy",
            "spec.components.ingressGateways[].k8s.tolerations",
            "spec.components.ingressGateways[].k8s.serviceAnnotations",
            "spec.components.ingressGateways[].k8s.securityContext",
            "spec.components.ingressGateways[].k8s.volumes",
            "spec.components.ingressGateways[].k8s.volumeMounts",
            "spec.components.ingressGateways[].k8s.overlays",
            "spec.components.ingressGateways[].k8s.service.allocateLoadBalancerNodePorts",
            "spec.components.ingressGateways[].k8s.service.clusterIP",
            "spec.components.ingressGateways[].k8s.service.clusterIPs",
            "spec.components.ingressGateways[].k8s.service.externalIPs",
            "spec.components.ingressGateways[].k8s.service.externalName",
            "spec.components.ingressGateways[].k8s.service.externalTrafficPolicy",
            "spec.components.ingressGateways[].k8s.service.healthCheckNodePort",
            "spec.components.ingressGateways[].k8s.service.internalTrafficPolicy",
            "spec.components.ingressGateways[].k8s.service.ipFamilies",
            "spec.components.ingressGateways[].k8s.service.ipFamilyPolicy",
            "spec.components.ingressGateways[].k8s.service.loadBalancerClass",
            "spec.components.ingressGateways[].k8s.service.loadBalancerIP",
            "spec.components.ingressGateways[].k8s.service.loadBalancerSourceRanges",
            "spec.components.ingressGateways[].k8s.service.ports[].appProtocol",
            "spec.components.ingressGateways[].k8s.service.ports[].nodePort",
            "spec.components.ingressGateways[].k8s.service.ports[].protocol",
            "spec.components.ingressGateways[].k8s.service.publishNotReadyAddresses",
            "spec.components.ingressGateways[].k8s.service.selector",
            "spec.components.ingressGateways[].k8s.service.sessionAffinity",
            "spec.components.ingressGateways[].k8s.service.sessionAffinityConfig",
            "spec.components.ingressGateways[].k8s.service.trafficDistribution",
        ],
        GATEWAY_K8S,
    ),
    // MeshConfig (an IstioOperator's meshConfig, and the `istio` ConfigMap's mesh: SAME_AS).
    set(
        IOP,
        &["spec.meshConfig.proxyListenPort"],
        "not applied: the proxy's outbound listener is on 15001",
    ),
    set(
        IOP,
        &["spec.meshConfig.proxyInboundListenPort"],
        "not applied: the proxy listens on each port its workload serves",
    ),
    set(
        IOP,
        &["spec.meshConfig.proxyHttpPort"],
        "not applied: applications reach the proxy as their HTTP proxy on 15001",
    ),
    set(
        IOP,
        &["spec.meshConfig.connectTimeout"],
        "not applied: upstream connections time out after the DestinationRule's connectTimeout, else 10s",
    ),
    set(
        IOP,
        &["spec.meshConfig.hboneIdleTimeout"],
        "not applied: strait carries no HBONE tunnels",
    ),
    set(
        IOP,
        &["spec.meshConfig.protocolDetectionTimeout"],
        "not applied: an inbound port that declares no protocol is sniffed for 200ms, then served as TCP",
    ),
    set(
        IOP,
        &["spec.meshConfig.tcpKeepalive"],
        "not applied: upstream connections use the system's TCP keepalive settings",
    ),
    set(
        IOP,
        &[
            "spec.meshConfig.ingressClass",
            "spec.meshConfig.ingressService",
            "spec.meshConfig.ingressControllerMode",
            "spec.meshConfig.ingressSelector",
        ],
        NO_INGRESS,
    ),
    set(
        IOP,
        &["spec.meshConfig.accessLogFormat"],
        "not applied: access log lines keep Istio's default format (TEXT, or JSON under accessLogEncoding)",
    ),
    set(
        IOP,
        &["spec.meshConfig.enableEnvoyAccessLogService"],
        "not applied: access logs go to accessLogFile only",
    ),
    set(
        IOP,
        &["spec.meshConfig.disableEnvoyListenerLog"],
        "not applied: access logs follow accessLogFile alone",
    ),
    set(
        IOP,
        &[
            "spec.meshConfig.defaultConfig.configPath",
            "spec.meshConfig.defaultConfig.binaryPath",
            "spec.meshConfig.defaultConfig.serviceCluster",
            "spec.meshConfig.defaultConfig.tracingServiceName",
            "spec.meshConfig.defaultConfig.drainDuration",
            "spec.meshConfig.defaultConfig.discoveryAddress",
            "spec.meshConfig.defaultConfig.discoveryRefreshDelay",
            "spec.meshConfig.defaultConfig.zipkinAddress",
            "spec.meshConfig.defaultConfig.statsdUdpAddress",
            "spec.meshConfig.defaultConfig.envoyMetricsServiceAddress",
            "spec.meshConfig.defaultConfig.proxyAdminPort",
            "spec.meshConfig.defaultConfig.availabilityZone",
            "spec.meshConfig.defaultConfig.controlPlaneAuthPolicy",
            "spec.meshConfig.defaultConfig.customConfigFile",
            "spec.meshConfig.defaultConfig.statNameLength",
            "spec.meshConfig.defaultConfig.concurrency",
            "spec.meshConfig.defaultConfig.proxyBootstrapTemplatePath",
            "spec.meshConfig.defaultConfig.interceptionMode",
            "spec.meshConfig.defaultConfig.sds",
            "spec.meshConfig.defaultConfig.envoyAccessLogService",
            "spec.meshConfig.defaultConfig.envoyMetricsService",
            "spec.meshConfig.defaultConfig.proxyMetadata",
            "spec.meshConfig.defaultConfig.runtimeValues",
            "spec.meshConfig.defaultConfig.statusPort",
            "spec.meshConfig.defaultConfig.extraStatTags",
            "spec.meshConfig.defaultConfig.gatewayTopology",
            "spec.meshConfig.defaultConfig.terminationDrainDuration",
            "spec.meshConfig.defaultConfig.readinessProbe",
            "spec.meshConfig.defaultConfig.proxyStatsMatcher",
            "spec.meshConfig.defaultConfig.holdApplicationUntilProxyStarts",
            "spec.meshConfig.defaultConfig.caCertificatesPem",
            "spec.meshConfig.defaultConfig.image",
            "spec.meshConfig.defaultConfig.privateKeyProvider",
            "spec.meshConfig.defaultConfig.proxyHeaders",
            "spec.meshConfig.defaultConfig.fileFlushInterval",
            "spec.meshConfig.defaultConfig.fileFlushMinSizeKb",
            "spec.meshConfig.defaultConfig.statsCompression",
            "spec.meshConfig.defaultConfig.connectionSettings",
        ],
        PROXY_CONFIG,
    ),
    set(
        IOP,
        &["spec.meshConfig.outboundTrafficPolicy.tls"],
        "not applied: unknown destinations are passed through without TLS origination",
    ),
    set(
        IOP,
        &["spec.meshConfig.inboundTrafficPolicy"],
        "not applied: inbound connections are forwarded to the application on the pod's private address",
    ),
    set(
        IOP,
        &["spec.meshConfig.configSources"],
        "not applied: strait reads configuration from its own sources (files or the Kubernetes API)",
    ),
    set(
        IOP,
        &["spec.meshConfig.enableAutoMtls"],
        "not applied: clients still pick mTLS automatically for servers with a proxy",
    ),
    set(
        IOP,
        &["spec.meshConfig.caCertificates"],
        "not applied: peers are verified against the roots of strait's CA and the clusters' CA bundles; a peer whose certificate chains only to these roots is refused (fail closed)",
    ),
    set(
        IOP,
        &[
            "spec.meshConfig.defaultServiceExportTo",
            "spec.meshConfig.defaultVirtualServiceExportTo",
            "spec.meshConfig.defaultDestinationRuleExportTo",
        ],
        EXPORT_ALL,
    ),
    set(IOP, &["spec.meshConfig.zoneAwareLbSetting"], ZONE_AWARE),
    set(
        IOP,
        &["spec.meshConfig.dnsRefreshRate"],
        "not applied: no ServiceEntry host is resolved in DNS (the control plane looks network gateway hostnames up every 30s)",
    ),
    set(IOP, &["spec.meshConfig.h2UpgradePolicy"], UPSTREAM_PROTOCOL),
    set(
        IOP,
        &[
            "spec.meshConfig.inboundClusterStatName",
            "spec.meshConfig.outboundClusterStatName",
        ],
        "not applied: metrics carry strait's cluster names",
    ),
    set(
        IOP,
        &["spec.meshConfig.certificates"],
        "not applied: no DNS certificates are issued",
    ),
    set(
        IOP,
        &["spec.meshConfig.serviceSettings"],
        "not applied: a clusterLocal service's endpoints in other clusters are still used (this does not fail closed)",
    ),
    set(
        IOP,
        &["spec.meshConfig.serviceScopeConfigs"],
        "not applied: every service is global to the mesh",
    ),
    set(
        IOP,
        &["spec.meshConfig.enablePrometheusMerge"],
        "not applied: the proxy serves its own metrics on 15090; the application's are not merged in",
    ),
    set(
        IOP,
        &["spec.meshConfig.verifyCertificateAtClient"],
        "not applied: TLS origination is not supported, so no server certificate is verified with it",
    ),
    set(
        IOP,
        &["spec.meshConfig.ca"],
        "not applied: workload certificates are signed by strait's own CA",
    ),
    set(
        IOP,
        &[
            "spec.meshConfig.defaultConfig.tracing.customTags",
            "spec.meshConfig.defaultConfig.tracing.maxPathTagLength",
            "spec.meshConfig.defaultConfig.tracing.zipkin",
            "spec.meshConfig.defaultConfig.tracing.lightstep",
            "spec.meshConfig.defaultConfig.tracing.datadog",
            "spec.meshConfig.defaultConfig.tracing.stackdriver",
            "spec.meshConfig.defaultConfig.tracing.openCensusAgent",
            "spec.meshConfig.defaultConfig.tracing.tlsSettings",
        ],
        "not applied: of the legacy tracer settings only sampling is read; spans are reported only to an opentelemetry extension provider (Telemetry or defaultProviders.tracing)",
    ),
    set(
        IOP,
        &[
            "spec.meshConfig.extensionProviders[].envoyExtAuthzHttp",
            "spec.meshConfig.extensionProviders[].envoyExtAuthzGrpc",
            "spec.meshConfig.extensionProviders[].prometheus",
            "spec.meshConfig.extensionProviders[].envoyFileAccessLog",
            "spec.meshConfig.extensionProviders[].envoyHttpAls",
            "spec.meshConfig.extensionProviders[].envoyTcpAls",
            "spec.meshConfig.extensionProviders[].envoyOtelAls",
            "spec.meshConfig.extensionProviders[].sds",
        ],
        "not used: no extension provider is called for metrics, access logs or CUSTOM authorization",
    ),
    set(
        IOP,
        &["spec.meshConfig.extensionProviders[].zipkin"],
        "not applied: Zipkin export is not implemented; a proxy whose tracing names this provider propagates trace context but reports no spans (use an opentelemetry provider)",
    ),
    set(
        IOP,
        &[
            "spec.meshConfig.extensionProviders[].lightstep",
            "spec.meshConfig.extensionProviders[].datadog",
            "spec.meshConfig.extensionProviders[].stackdriver",
            "spec.meshConfig.extensionProviders[].opencensus",
            "spec.meshConfig.extensionProviders[].skywalking",
        ],
        "not applied: this tracer's export is not implemented; a proxy whose tracing names this provider propagates trace context but reports no spans (use an opentelemetry provider)",
    ),
    set(
        IOP,
        &[
            "spec.meshConfig.extensionProviders[].opentelemetry.maxTagLength",
            "spec.meshConfig.extensionProviders[].opentelemetry.grpc",
            "spec.meshConfig.extensionProviders[].opentelemetry.resourceDetectors",
            "spec.meshConfig.extensionProviders[].opentelemetry.dynatraceSampler",
            "spec.meshConfig.extensionProviders[].opentelemetry.http.headers[].envName",
        ],
        "not applied: spans are exported with their tags whole, the default gRPC settings, the resource service.name, k8s.namespace.name and k8s.pod.name, and the proxy's own sampling; a header taken from the environment is not sent",
    ),
    set(
        IOP,
        &[
            "spec.meshConfig.defaultProviders.metrics",
            "spec.meshConfig.defaultProviders.accessLogging",
        ],
        "not applied: metrics are Istio's standard set and access logs follow accessLogFile",
    ),
    set(
        IOP,
        &["spec.meshConfig.discoverySelectors"],
        "not applied: resources in every namespace are read",
    ),
    set(
        IOP,
        &["spec.meshConfig.defaultHttpRetryPolicy"],
        "not applied: routes without retries use Istio's default (2 attempts on connect-failure, refused-stream, unavailable, cancelled, 503)",
    ),
    set(
        IOP,
        &["spec.meshConfig.meshMTLS"],
        "not applied: mesh mTLS keeps the TLS library's defaults (TLS 1.2 and 1.3)",
    ),
    set(
        IOP,
        &["spec.meshConfig.tlsDefaults"],
        "not applied: TLS keeps the TLS library's defaults",
    ),
    set(
        IOP,
        &["spec.meshConfig.defaultTrafficPolicy"],
        "not applied: DestinationRules get no mesh-wide connection pool or outlier detection defaults",
    ),
    set(
        IOP,
        &["spec.meshConfig.serviceEntryVisibility"],
        "not applied: ServiceEntries are visible as their exportTo says",
    ),
    // MeshNetworks (the `istio` ConfigMap's meshNetworks).
    set(
        CM,
        &["data.meshNetworks.networks[*].endpoints"],
        "not applied: a workload's network comes from its topology.istio.io/network label or its cluster's network",
    ),
    set(
        CM,
        &["data.meshNetworks.networks[*].gateways[].locality"],
        "not used: network gateways are used regardless of locality",
    ),
];

/// Every `(kind, path)` an entry stands for: itself and the places [`SAME_AS`] maps onto it.
pub fn places(kind: Kind, path: &str) -> Vec<(Kind, String)> {
    let mut out = vec![(kind, path.to_string())];
    let mut i = 0;
    while i < out.len() {
        for (from_kind, from, to_kind, to) in SAME_AS {
            let (k, p) = &out[i];
            if *k != *to_kind || below(p, from).is_some() {
                continue;
            }
            if let Some(rest) = below(p, to) {
                let place = (*from_kind, format!("{from}{rest}"));
                if !out.contains(&place) {
                    out.push(place);
                }
            }
        }
        i += 1;
    }
    out
}

/// The `(kind, path)` a field is classified as: [`SAME_AS`] applied until none applies.
pub fn canonical(kind: Kind, path: &str) -> (Kind, String) {
    let mut cur = (kind, path.to_string());
    while let Some((to_kind, to, rest)) = SAME_AS.iter().find_map(|(fk, from, tk, to)| {
        (*fk == cur.0)
            .then(|| below(&cur.1, from))
            .flatten()
            .map(|rest| (*tk, *to, rest.to_string()))
    }) {
        cur = (to_kind, format!("{to}{rest}"));
    }
    cur
}

/// What follows `prefix` in `path` when `path` is `prefix` or a field below it.
pub fn below<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with(['.', '['])).then_some(rest)
}
