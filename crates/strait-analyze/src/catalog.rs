//! Every code strait reports. IST codes keep istioctl's code, name and level; STR codes are
//! strait's own (input problems, multi-cluster and the pitfalls no other tool checks).

use crate::finding::Level;

/// A message type.
#[derive(Debug, PartialEq, Eq)]
pub struct Code {
    pub code: &'static str,
    pub name: &'static str,
    pub level: Level,
    /// One line: what it means.
    pub summary: &'static str,
}

macro_rules! catalog {
    ($( $id:ident, $name:literal, $level:ident, $summary:literal; )*) => {
        $( pub const $id: &Code = &Code { code: stringify!($id), name: $name, level: Level::$level, summary: $summary }; )*
        /// The whole catalog, in code order.
        pub const ALL: &[&Code] = &[ $( $id ),* ];
    };
}

catalog! {
    // Input: the files themselves.
    STR0001, "InputUnreadable", Error, "A file or directory could not be read, or there is nothing to analyze (empty input); a symlink loop is a Warning.";
    STR0002, "YamlSyntaxError", Error, "A document is not valid YAML or JSON; it was skipped.";
    STR0003, "UnrenderedTemplate", Error, "A document is an unrendered Helm/Go template and was skipped; a Helm expression left in a rendered value is a Warning.";
    STR0004, "NotAnObject", Error, "A document is not a Kubernetes object (no apiVersion/kind); it was skipped.";
    STR0005, "MeshLayout", Error, "mesh.yaml or the mesh directory layout is inconsistent.";
    STR0006, "UnknownKind", Error, "A kind that does not exist in its API group (a typo?); the object was skipped.";
    STR0007, "UnservedApiVersion", Error, "A kind at an apiVersion its group does not serve; the object was skipped.";
    STR0008, "RemovedApiVersion", Warning, "An apiVersion Kubernetes no longer serves; apply would fail.";
    STR0009, "UnknownField", Error, "A field the kind does not have (a typo?); Kubernetes would reject or drop it.";
    STR0010, "InvalidFieldValue", Error, "A field with the wrong type or an invalid value; it was ignored.";
    STR0011, "DuplicateKey", Warning, "A key appears twice in one mapping; the later one wins.";
    STR0012, "DuplicateObject", Warning, "The same object is defined twice in one cluster; the later one wins.";
    STR0013, "MissingName", Error, "An object has no metadata.name.";
    STR0014, "KindNotRead", Info, "A kind strait does not read (another project's CRD); skipped.";
    STR0015, "NotApplied", Warning, "Valid Istio configuration strait does not act on; the message says what happens instead.";
    STR0016, "KubernetesWouldReject", Error, "An object Kubernetes' API server would reject (a required field missing or invalid); apply fails.";
    STR0017, "NotServed", Info, "Valid configuration Istio serves that strait's data path does not serve yet (the Kubernetes Gateway API): fine for Istio, not run by `strait up`.";
    STR0018, "KustomizeFragment", Info, "A kustomization, or a patch it names: not a whole manifest, so it is not analyzed as one; analyze `kustomize build` output for the objects it makes.";
    // Istio's own analyzers (same code, name and level as istioctl analyze).
    IST0002, "Deprecated", Warning, "A deprecated field or setting is used.";
    IST0101, "ReferencedResourceNotFound", Error, "A reference (host, gateway, subset, selector, secret, namespace) resolves to nothing.";
    IST0102, "NamespaceNotInjected", Info, "A namespace is not enabled for sidecar injection.";
    IST0103, "PodMissingProxy", Warning, "A pod in an injected namespace has no sidecar.";
    IST0106, "SchemaValidationError", Error, "Istio's validation rejects the resource.";
    IST0107, "MisplacedAnnotation", Warning, "An Istio annotation is on a kind it does not apply to.";
    IST0108, "UnknownAnnotation", Warning, "An annotation in an Istio domain that Istio does not know.";
    IST0109, "ConflictingMeshGatewayVirtualServiceHosts", Error, "Several VirtualServices for the mesh gateway claim the same host.";
    IST0110, "ConflictingSidecarWorkloadSelectors", Error, "Several Sidecar resources select the same workload.";
    IST0111, "MultipleSidecarsWithoutWorkloadSelectors", Error, "More than one selector-less Sidecar in a namespace.";
    IST0112, "VirtualServiceDestinationPortSelectorRequired", Error, "A route destination needs a port: its service has several.";
    IST0116, "DeploymentAssociatedToMultipleServices", Warning, "Services selecting one workload use the same port number with different protocols.";
    IST0118, "PortNameIsNotUnderNamingConvention", Info, "A Service port name gives no protocol; the proxy will have to sniff it.";
    IST0123, "NamespaceMultipleInjectionLabels", Warning, "A namespace has more than one injection label.";
    IST0125, "InvalidAnnotation", Warning, "An Istio annotation has an invalid value.";
    IST0126, "UnknownMeshNetworksServiceRegistry", Error, "meshNetworks names a registry (cluster) that does not exist.";
    IST0127, "NoMatchingWorkloadsFound", Warning, "An AuthorizationPolicy selects no workload.";
    IST0128, "NoServerCertificateVerificationDestinationLevel", Warning, "DestinationRule TLS without caCertificates: the server is not verified.";
    IST0129, "NoServerCertificateVerificationPortLevel", Warning, "Port-level DestinationRule TLS without caCertificates.";
    IST0130, "VirtualServiceUnreachableRule", Warning, "A VirtualService rule can never match.";
    IST0131, "VirtualServiceIneffectiveMatch", Info, "A match repeats an earlier one and has no effect.";
    IST0132, "VirtualServiceHostNotFoundInGateway", Warning, "A VirtualService host is served by none of its gateways.";
    IST0133, "SchemaWarning", Warning, "Istio's validation warns about the resource.";
    IST0134, "ServiceEntryAddressesRequired", Warning, "A TCP ServiceEntry without addresses captures all traffic on its port.";
    IST0135, "DeprecatedAnnotation", Info, "A deprecated Istio annotation.";
    IST0137, "DeploymentConflictingPorts", Warning, "Services selecting one workload map a target port to different ports.";
    IST0138, "GatewayDuplicateCertificate", Warning, "Gateways on the same workloads reuse one certificate (HTTP/2 connection reuse gives 404s).";
    IST0139, "InvalidWebhook", Error, "Istio injection webhooks overlap or point at a missing service.";
    IST0140, "IngressRouteRulesNotAffected", Warning, "Subset routing for a host does not apply to traffic from a gateway.";
    IST0144, "InvalidApplicationUID", Warning, "An application container runs as UID 1337, the proxy's.";
    IST0145, "ConflictingGateways", Error, "Gateways on the same workloads claim the same port and host.";
    IST0146, "ImageAutoWithoutInjectionWarning", Warning, "image: auto for istio-proxy, but nothing will inject it.";
    IST0147, "ImageAutoWithoutInjectionError", Error, "A pod still has image: auto (injection never ran).";
    IST0148, "NamespaceInjectionEnabledByDefault", Info, "An unlabelled namespace gets sidecars because the injector injects every namespace by default.";
    IST0149, "JwtClaimBasedRoutingWithoutRequestAuthN", Error, "Routing on JWT claims at a gateway no RequestAuthentication applies to.";
    IST0150, "ExternalNameServiceTypeInvalidPortName", Warning, "An ExternalName Service port name gives no usable protocol.";
    IST0151, "EnvoyFilterUsesRelativeOperation", Warning, "An EnvoyFilter without priority uses a relative operation.";
    IST0152, "EnvoyFilterUsesReplaceOperationIncorrectly", Error, "REPLACE is only valid on HTTP filters, network filters and virtual hosts.";
    IST0153, "EnvoyFilterUsesAddOperationIncorrectly", Error, "ADD on a route configuration or HTTP route is ignored.";
    IST0154, "EnvoyFilterUsesRemoveOperationIncorrectly", Error, "REMOVE on a route configuration or HTTP route is ignored.";
    IST0155, "EnvoyFilterUsesRelativeOperationWithProxyVersion", Warning, "A relative operation with a proxy-version match breaks upgrades.";
    IST0157, "InvalidTelemetryProvider", Warning, "Access logging with no provider while mesh config sets no default: ignored.";
    IST0158, "PodsIstioProxyImageMismatchInNamespace", Warning, "Pods in a namespace run an istio-proxy image other than the one their injector injects now.";
    IST0159, "ConflictingTelemetryWorkloadSelectors", Error, "Several Telemetry resources select the same workload.";
    IST0160, "MultipleTelemetriesWithoutWorkloadSelectors", Error, "More than one selector-less Telemetry in a namespace.";
    IST0161, "InvalidGatewayCredential", Error, "A Gateway's credential Secret holds no valid certificate and key.";
    IST0162, "GatewayPortNotDefinedOnService", Warning, "A Gateway port is not exposed by the gateway's Service.";
    IST0163, "InvalidExternalControlPlaneConfig", Warning, "An Istio webhook has no usable URL or service.";
    IST0164, "ExternalControlPlaneAddressIsNotAHostname", Info, "An Istio webhook URL uses an IP address.";
    IST0165, "ReferencedInternalGateway", Warning, "A VirtualService references an implementation-generated gateway.";
    IST0166, "IneffectiveSelector", Warning, "A policy selector matches a Kubernetes Gateway's pods, where it has no effect: use targetRefs.";
    IST0167, "IneffectivePolicy", Warning, "A Sidecar resource applies to ambient workloads, where it has no effect.";
    IST0170, "MultiClusterInconsistentService", Warning, "A Service differs between clusters (type, ports, headless).";
    IST0171, "NegativeConditionStatus", Warning, "The control plane wrote a negative condition into an object's status.";
    IST0173, "DestinationRuleSubsetNotSelectPods", Error, "A DestinationRule subset selects no pod: requests to it fail with 503.";
    IST0174, "UnknownDestinationRuleHost", Warning, "A DestinationRule host matches no service.";
    IST0175, "JwksUriFetchUnrestricted", Warning, "istiod fetches JWKS URIs with no blocked CIDRs.";
    IST0176, "GatewayAPICRDVersionBelowMinimum", Warning, "A Gateway API CRD is older than Istio needs: objects of its kind are not processed.";
    IST0177, "ConflictingServiceEntryProtocol", Warning, "ServiceEntries give one host and port different protocols.";
    // Multi-cluster.
    STR0101, "NetworkWithoutGateway", Error, "A network other networks must reach has no east-west gateway.";
    STR0102, "NoCrossNetworkGateway", Error, "A control plane has no AUTO_PASSTHROUGH Gateway for its east-west gateway.";
    STR0103, "CaRootsDiffer", Error, "Clusters' plug-in CAs chain to different roots: cross-cluster mTLS fails.";
    STR0104, "PluginCaMissing", Error, "A primary of a multi-cluster mesh has no cacerts Secret (its self-signed root is its own).";
    STR0105, "PluginCaInvalid", Error, "A cacerts Secret is incomplete, expired, or its CA does not chain to its root.";
    STR0106, "RemoteSecretForUnknownCluster", Warning, "A remote secret names a cluster the mesh does not have.";
    STR0107, "RemoteSecretMissing", Warning, "A primary has no remote secret for a cluster whose endpoints it needs.";
    STR0108, "MeshIdMismatch", Error, "Clusters disagree on the mesh ID.";
    STR0109, "TrustDomainMismatch", Error, "Clusters disagree on the trust domain: identities will not verify.";
    STR0110, "NetworkLabelMissing", Warning, "The Istio namespace of a multi-network cluster has no topology.istio.io/network label.";
    STR0111, "ConfigDriftBetweenPrimaries", Warning, "Primaries configure the same host differently (each serves its own proxies).";
    STR0112, "ClusterFactConflict", Error, "Manifests state a cluster name or network that mesh.yaml contradicts.";
    STR0113, "ConfigInRemoteCluster", Warning, "Istio configuration in a remote cluster is read by no control plane.";
    STR0114, "GatewayUnreachable", Warning, "An east-west gateway has no address other networks can reach.";
    STR0115, "ControlPlaneNotExposed", Error, "A remote on another network than its primary cannot reach the primary's control plane: no load balancer publishes 15012, or no Gateway serves it (expose-istiod).";
    STR0116, "ServiceMissingInCluster", Warning, "Pods match a Service that exists only in other clusters: their own cluster has no endpoints for them, nor a name to resolve.";
    // Traffic.
    STR0201, "TimeoutShorterThanRetries", Warning, "A route's timeout ends before its retries can run.";
    STR0202, "StaticServiceEntryWithoutEndpoints", Error, "A STATIC ServiceEntry has no endpoints: every request fails.";
    STR0203, "HostNotFullyQualified", Warning, "A dotted host like name.namespace is taken literally and matches no service.";
    STR0204, "InternalServiceExposed", Warning, "A public gateway routes to a service that looks internal.";
    STR0205, "GatewayHostWithoutRoute", Warning, "A Gateway serves a host that no VirtualService bound to it routes: requests get 404.";
    STR0206, "GatewayClassNotIstio", Info, "A Kubernetes Gateway's class is not Istio's (another controller's, or unknown: a typo?): Istio does not serve it or the routes on it.";
    STR0207, "RouteNotAttached", Error, "A Gateway API route's parent takes it on no listener (section, port, namespace, route kind or hostname): it serves nothing there.";
    STR0208, "RefNotPermitted", Error, "A cross-namespace Gateway API reference (backend, certificate) that no ReferenceGrant permits: requests to it fail (500), or the listener has no certificate.";
    STR0209, "GatewayListenerConflict", Error, "A Kubernetes Gateway listener conflicts with an earlier one on its port (protocol or hostname): Istio marks it Conflicted and does not program it.";
    STR0210, "RouteMatchShadowed", Warning, "Two Gateway API routes give one hostname the same match on one listener or Service: the one with precedence (oldest, then by name) takes every request for it.";
    // Security.
    STR0301, "MtlsModeConflict", Error, "Client TLS (DestinationRule) contradicts server mTLS (PeerAuthentication).";
    STR0302, "StrictMtlsWithoutSidecar", Warning, "STRICT mTLS applies to a workload with no sidecar: it still accepts plaintext.";
    STR0303, "PortLevelMtlsWithoutSelector", Warning, "portLevelMtls on a PeerAuthentication without selector is ignored.";
    STR0304, "PolicyNamespaceImplicit", Warning, "A namespace-wide security policy that names no namespace applies wherever it is applied, not mesh-wide.";
    STR0305, "HttpRuleOnTcpPort", Warning, "An authorization rule with HTTP-only fields applies to a port without HTTP: as ALLOW it never matches there, as DENY it matches without them.";
    STR0306, "AllowRuleUnsatisfiable", Warning, "An ALLOW rule asks for identities no caller has (an unknown principal, a JWT nothing verifies): what it allows is denied.";
    STR0307, "PolicyOnWorkloadWithoutSidecar", Warning, "An AuthorizationPolicy also selects workloads without a sidecar: requests to them are not checked.";
    STR0308, "AuthzMethodCase", Warning, "An AuthorizationPolicy names an HTTP method in lower case, which no request carries: the rule never matches it (a DENY lets it through).";
    // Observability and resources.
    STR0401, "NoAccessLogging", Info, "No access logs are configured for a control plane's proxies.";
    STR0402, "MetricsDisabled", Warning, "Istio's standard metrics are switched off mesh-wide or for a namespace.";
    STR0403, "UnknownTelemetryProvider", Warning, "A Telemetry names a provider that does not exist; Istio skips it silently.";
    STR0404, "SidecarResourcesUnset", Warning, "Sidecars get no CPU/memory requests or limits.";
    STR0405, "SidecarResourcesInvalid", Warning, "A sidecar resource annotation is invalid or its request exceeds its limit.";
    // Network policy and injection.
    STR0501, "NetworkPolicyBlocksMeshPort", Warning, "A NetworkPolicy blocks traffic the mesh needs: 15443, 15012, 15017, 15021, DNS, or a gateway's requests to the workloads it routes to.";
    STR0601, "WorkloadWithoutSidecar", Warning, "A workload the mesh routes to or secures gets no sidecar.";
    STR0602, "JobSidecarBlocksCompletion", Warning, "A Job or CronJob gets a classic sidecar that outlives its app: the pod never completes and the Job never finishes.";
}

/// Finds a code by its id.
pub fn by_code(code: &str) -> Option<&'static Code> {
    ALL.iter().copied().find(|c| c.code == code)
}

/// Input errors make the exit code 2: the input could not be read as objects at all.
pub fn is_input_error(code: &str) -> bool {
    matches!(
        code,
        "STR0001" | "STR0002" | "STR0003" | "STR0004" | "STR0005"
    )
}
