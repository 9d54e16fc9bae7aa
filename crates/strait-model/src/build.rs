//! Building a [`Mesh`] from read input.

use std::collections::{BTreeMap, HashMap};

use strait_api::embedded::parse_embedded;
use strait_api::istio::mesh_config::{MeshConfig, MeshNetworks};
use strait_api::layout::DEFAULT_CLUSTER_NAME;
use strait_api::{Diagnostic, Input, Kind, Object, ObjectRef, Problem, Role, Severity, SourceMap};

use crate::cluster::{Cluster, Fact, Facts};
use crate::host::ExportTo;
use crate::ids::{ClusterId, ObjId, ServiceId, WorkloadId};
use crate::injection;
use crate::mesh::{Layout, Mesh};
use crate::network::{
    DEFAULT_GATEWAY_PORT, GATEWAY_PORT_LABEL, GatewayOrigin, NETWORK_LABEL, Network, NetworkGateway,
};
use crate::protocol::Protocol;
use crate::service::{Port, Registry, ServiceInstance, ServiceSource, ServiceType, target_port};
use crate::trust;
use crate::workload::{self, GatewayRole, Injection, NamespaceInfo, Workload, WorkloadKind};

/// Inputs beyond the manifests (`--mesh-config`, `--mesh-networks`).
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub mesh_config: Option<MeshConfig>,
    pub mesh_networks: Option<MeshNetworks>,
}

/// Builds the model. Returns it with every input diagnostic (loading, layout, embedded mesh
/// config, duplicate objects).
pub fn build(input: Input, opts: &BuildOptions) -> (Mesh, Vec<Diagnostic>) {
    let Input {
        loaded,
        mesh: mesh_file,
        mesh_tree,
        clusters: inputs,
    } = input;
    let mut diags = loaded.diagnostics;
    let sources = loaded.sources;
    let layout = if mesh_file.is_some() {
        Layout::MeshDirectory
    } else {
        Layout::Files
    };
    let names: Vec<String> = inputs.iter().map(|c| c.name.clone()).collect();

    let mut clusters = Vec::new();
    for (i, ci) in inputs.into_iter().enumerate() {
        let id = ClusterId(i as u16);
        let decl = ci.decl.clone().unwrap_or_default();
        // Files are one cluster, named later from what the manifests say: name it only in a
        // mesh directory.
        let scope = match layout {
            Layout::MeshDirectory => format!("in cluster {}", ci.name),
            Layout::Files => "in the input".to_string(),
        };
        let objects = without_duplicates(ci.objects, &scope, &sources, &mut diags);
        let (by_kind, by_name) = crate::cluster::index_objects(&objects);
        let mut c = Cluster {
            id,
            name: ci.name.clone(),
            role: decl.role,
            primary: decl
                .primary
                .as_ref()
                .and_then(|p| names.iter().position(|n| n == p))
                .map(|p| ClusterId(p as u16)),
            network: String::new(),
            istio_network: String::new(),
            domain: decl
                .domain
                .clone()
                .unwrap_or_else(|| "cluster.local".into()),
            locality: strait_config::Locality::parse(decl.locality.as_deref().unwrap_or("")),
            decl_pos: ci.decl_pos,
            dir: ci.dir,
            objects,
            by_kind,
            by_name,
            namespaces: BTreeMap::new(),
            istio_namespace: "istio-system".into(),
            mesh_config: MeshConfig::default(),
            mesh_networks: MeshNetworks::default(),
            facts: Facts::default(),
            inject_by_default: false,
        };
        index_namespaces(&mut c);
        read_operator_facts(&mut c);
        read_mesh_config(
            &mut c,
            &sources,
            opts,
            mesh_file.as_ref().and_then(|m| m.trust_domain.clone()),
            &mut diags,
        );
        read_namespace_facts(&mut c);
        c.istio_network = c
            .facts
            .istio_ns_network_label
            .as_ref()
            .map(|f| f.value.clone())
            .or_else(|| c.facts.network.first().map(|f| f.value.clone()))
            .unwrap_or_default();
        c.network = decl
            .network
            .clone()
            .unwrap_or_else(|| c.istio_network.clone());
        if layout == Layout::Files
            && let Some(name) = c.facts.cluster_name.first()
        {
            c.name = name.value.clone();
        }
        clusters.push(c);
    }

    let mut workloads = Vec::new();
    let mut registry = Registry::default();
    for c in &clusters {
        collect_workloads(c, &mut workloads);
        collect_services(c, &mut registry);
    }
    let networks = collect_networks(&clusters, &registry, &workloads);
    let mut ca_bundles = Vec::new();
    let mut remote_secrets = Vec::new();
    for c in &clusters {
        for (id, o) in c.of_kind(Kind::Secret) {
            let Some(secret) = o.secret() else { continue };
            if o.namespace() != c.istio_namespace {
                continue;
            }
            if o.name() == "cacerts" {
                ca_bundles.push(trust::ca_bundle(c.id, id, secret));
            }
            if trust::is_remote_secret(o.labels()) {
                remote_secrets.push(trust::remote_secret(c.id, id, secret));
            }
        }
    }
    let mesh_id = mesh_file
        .as_ref()
        .and_then(|m| m.mesh_id.clone())
        .or_else(|| {
            clusters
                .iter()
                .find_map(|c| c.facts.mesh_id.first().map(|f| f.value.clone()))
        });
    let trust_domain = mesh_file
        .as_ref()
        .and_then(|m| m.trust_domain.clone())
        .unwrap_or_else(|| {
            clusters
                .first()
                .map(|c| c.trust_domain().to_string())
                .unwrap_or_else(|| "cluster.local".into())
        });
    if clusters.is_empty() {
        clusters.push(empty_cluster());
    }
    let mesh = Mesh {
        id: mesh_id,
        trust_domain,
        layout,
        clusters,
        workloads,
        registry,
        networks,
        ca_bundles,
        remote_secrets,
        mesh_file,
        mesh_tree,
        sources,
        index: std::sync::OnceLock::new(),
    };
    (mesh, diags)
}

fn empty_cluster() -> Cluster {
    Cluster {
        id: ClusterId(0),
        name: DEFAULT_CLUSTER_NAME.into(),
        role: Role::Primary,
        primary: None,
        network: String::new(),
        istio_network: String::new(),
        domain: "cluster.local".into(),
        locality: strait_config::Locality::default(),
        decl_pos: None,
        dir: None,
        objects: Vec::new(),
        by_kind: BTreeMap::new(),
        by_name: Default::default(),
        namespaces: BTreeMap::new(),
        istio_namespace: "istio-system".into(),
        mesh_config: MeshConfig::default(),
        mesh_networks: MeshNetworks::default(),
        facts: Facts::default(),
        inject_by_default: false,
    }
}

/// One object per kind, namespace and name, as the API server (and istioctl's file store)
/// holds them: the later definition replaces the earlier, which is reported and dropped, so
/// that no check sees an object conflict with its own copy.
fn without_duplicates(
    objects: Vec<Object>,
    scope: &str,
    sources: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Object> {
    let mut last: HashMap<(Kind, &str, &str), usize> = HashMap::new();
    let mut replaced = vec![false; objects.len()];
    for (i, o) in objects.iter().enumerate() {
        if o.name().is_empty() {
            continue;
        }
        let Some(first) = last.insert((o.kind, o.namespace(), o.name()), i) else {
            continue;
        };
        replaced[first] = true;
        let before = objects[first].source.pos;
        let at = if before.file == o.source.pos.file {
            format!("line {}", before.line)
        } else {
            sources.display(before).to_string()
        };
        diags.push(
            Diagnostic::at(
                Problem::DuplicateObject,
                Severity::Warning,
                o.source.pos,
                format!(
                    "{} is defined twice {scope} (first at {at}); the later definition wins",
                    o.display_name(),
                ),
            )
            .with_object(ObjectRef {
                kind: o.kind.to_string(),
                namespace: o.namespace().to_string(),
                name: o.name().to_string(),
            }),
        );
    }
    objects
        .into_iter()
        .zip(replaced)
        .filter_map(|(o, gone)| (!gone).then_some(o))
        .collect()
}

fn index_namespaces(c: &mut Cluster) {
    let mut namespaces = BTreeMap::new();
    for (id, o) in c.of_kind(Kind::Namespace) {
        namespaces.insert(
            o.name().to_string(),
            NamespaceInfo {
                name: o.name().to_string(),
                labels: o.labels().clone(),
                annotations: o.annotations().clone(),
                object: Some(id),
            },
        );
    }
    c.namespaces = namespaces;
}

fn fact(value: &str, object: ObjId, path: &str) -> Option<Fact> {
    (!value.is_empty()).then(|| Fact {
        value: value.to_string(),
        object,
        path: path.to_string(),
    })
}

fn read_operator_facts(c: &mut Cluster) {
    let mut facts = Facts::default();
    let mut istio_ns = None;
    let mut by_default = false;
    for (id, op) in c.operators() {
        let s = &op.spec;
        facts.mesh_id.extend(fact(
            s.value_str("global.meshID").unwrap_or(""),
            id,
            "spec.values.global.meshID",
        ));
        facts.cluster_name.extend(fact(
            s.value_str("global.multiCluster.clusterName").unwrap_or(""),
            id,
            "spec.values.global.multiCluster.clusterName",
        ));
        facts.network.extend(fact(
            s.value_str("global.network").unwrap_or(""),
            id,
            "spec.values.global.network",
        ));
        if let Some(path) = s.value_str("istiodRemote.injectionPath") {
            let (cluster, network) = injection_path_facts(path);
            let at = "spec.values.istiodRemote.injectionPath";
            facts
                .cluster_name
                .extend(cluster.and_then(|v| fact(v, id, at)));
            facts.network.extend(network.and_then(|v| fact(v, id, at)));
        }
        if let Some(mc) = &s.mesh_config {
            facts.trust_domain.extend(fact(
                mc.trust_domain.as_deref().unwrap_or(""),
                id,
                "spec.meshConfig.trustDomain",
            ));
            if let Some(dc) = &mc.default_config {
                facts.mesh_id.extend(fact(
                    &dc.mesh_id,
                    id,
                    "spec.meshConfig.defaultConfig.meshId",
                ));
            }
        }
        if istio_ns.is_none() {
            istio_ns = s
                .value_str("global.istioNamespace")
                .map(str::to_string)
                .or_else(|| (!s.namespace.is_empty()).then(|| s.namespace.clone()));
        }
        by_default |= s
            .value("sidecarInjectorWebhook.enableNamespacesByDefault")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
    }
    for (id, o) in c.of_kind(Kind::Deployment) {
        if !o.name().starts_with("istiod") {
            continue;
        }
        let Some(spec) = o.deployment().and_then(|d| d.spec.template.spec.as_ref()) else {
            continue;
        };
        for (ci, container) in spec.containers.iter().enumerate() {
            for (ei, env) in container.env.iter().flatten().enumerate() {
                let path = format!("spec.template.spec.containers[{ci}].env[{ei}].value");
                let v = env.value.as_deref().unwrap_or("");
                match env.name.as_str() {
                    "CLUSTER_ID" => facts.cluster_name.extend(fact(v, id, &path)),
                    "ISTIO_META_NETWORK" | "NETWORK" => facts.network.extend(fact(v, id, &path)),
                    _ => {}
                }
            }
        }
    }
    if let Some(ns) = istio_ns {
        c.istio_namespace = ns;
    }
    c.inject_by_default = by_default;
    c.facts = facts;
}

/// The cluster and network a remote's injection path (`/inject/cluster/<c>/net/<n>`) gives the
/// pods it injects; `--slash--` stands for `/` inside values.
fn injection_path_facts(path: &str) -> (Option<&str>, Option<&str>) {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut cluster = None;
    let mut network = None;
    if segs.first() == Some(&"inject") {
        for pair in segs[1..].chunks(2) {
            match pair {
                ["cluster", v] => cluster = Some(*v),
                ["net", v] => network = Some(*v),
                _ => {}
            }
        }
    }
    (cluster, network)
}

fn read_namespace_facts(c: &mut Cluster) {
    if let Some(ns) = c.namespaces.get(&c.istio_namespace)
        && let Some(obj) = ns.object
    {
        c.facts.istio_namespace_object = Some(obj);
        if let Some(v) = ns.labels.get(NETWORK_LABEL) {
            let f = Fact {
                value: v.clone(),
                object: obj,
                path: format!("metadata.labels[\"{NETWORK_LABEL}\"]"),
            };
            c.facts.network.insert(0, f.clone());
            c.facts.istio_ns_network_label = Some(f);
        }
    }
}

fn read_mesh_config(
    c: &mut Cluster,
    sources: &strait_api::SourceMap,
    opts: &BuildOptions,
    mesh_trust_domain: Option<String>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut mc = MeshConfig {
        trust_domain: mesh_trust_domain,
        ..MeshConfig::default()
    };
    let mut networks = MeshNetworks::default();
    let istio_ns = c.istio_namespace.clone();
    let mut trust_facts = Vec::new();
    let mut mesh_id_facts = Vec::new();
    for (id, o) in c.of_kind(Kind::ConfigMap) {
        if o.namespace() != istio_ns || !(o.name() == "istio" || o.name().starts_with("istio-")) {
            continue;
        }
        if o.name() != "istio"
            && o.config_map()
                .and_then(|cm| cm.data.as_ref())
                .is_none_or(|d| !d.contains_key("mesh"))
        {
            continue;
        }
        if let Some((value, mut problems)) = parse_embedded::<MeshConfig>(sources, o, "data.mesh") {
            diags.append(&mut problems);
            if let Some(v) = value {
                if let Some(td) = v.trust_domain.as_deref() {
                    trust_facts.extend(fact(td, id, "data.mesh"));
                }
                if let Some(dc) = &v.default_config {
                    mesh_id_facts.extend(fact(&dc.mesh_id, id, "data.mesh"));
                }
                mc.merge(&v);
            }
        }
        if let Some((value, mut problems)) =
            parse_embedded::<MeshNetworks>(sources, o, "data.meshNetworks")
        {
            diags.append(&mut problems);
            if let Some(v) = value {
                networks.networks.extend(v.networks);
            }
        }
    }
    for (_, op) in c.operators() {
        if let Some(m) = &op.spec.mesh_config {
            mc.merge(m);
        }
        if let Some(n) = op.spec.value("global.meshNetworks")
            && let Ok(parsed) = serde_json::from_value::<serde_json::Value>(n.clone())
            && let Some(map) = parsed.as_object()
        {
            for (name, net) in map {
                let endpoints = net
                    .get("endpoints")
                    .and_then(|e| e.as_array())
                    .cloned()
                    .unwrap_or_default();
                let gateways = net
                    .get("gateways")
                    .and_then(|e| e.as_array())
                    .cloned()
                    .unwrap_or_default();
                let entry = networks.networks.entry(name.clone()).or_default();
                for e in endpoints {
                    entry
                        .endpoints
                        .push(strait_api::istio::mesh_config::NetworkEndpoints {
                            from_cidr: e
                                .get("fromCidr")
                                .and_then(|v| v.as_str())
                                .map(str::to_string),
                            from_registry: e
                                .get("fromRegistry")
                                .and_then(|v| v.as_str())
                                .map(str::to_string),
                        });
                }
                for g in gateways {
                    entry
                        .gateways
                        .push(strait_api::istio::mesh_config::NetworkGateway {
                            registry_service_name: g
                                .get("registryServiceName")
                                .and_then(|v| v.as_str())
                                .map(str::to_string),
                            address: g
                                .get("address")
                                .and_then(|v| v.as_str())
                                .map(str::to_string),
                            port: g.get("port").and_then(|v| v.as_u64()).unwrap_or(0) as u32,
                            locality: String::new(),
                        });
                }
            }
        }
    }
    if let Some(cli) = &opts.mesh_config {
        mc.merge(cli);
    }
    if let Some(cli) = &opts.mesh_networks {
        networks.networks.extend(cli.networks.clone());
    }
    c.facts.trust_domain.extend(trust_facts);
    c.facts.mesh_id.extend(mesh_id_facts);
    c.mesh_config = mc;
    c.mesh_networks = networks;
}

fn collect_workloads(c: &Cluster, out: &mut Vec<Workload>) {
    for (i, o) in c.objects.iter().enumerate() {
        let id = c.obj_id(i as u32);
        if workload::owned_by_input_deployment(c, o) {
            // A dump holds a Deployment's ReplicaSets too: their pods are the Deployment's.
            continue;
        }
        if let Some(t) = workload::template_of(o) {
            let empty = BTreeMap::new();
            let labels = t.labels.unwrap_or(&empty);
            let annotations = t.annotations.unwrap_or(&empty);
            let gateway = workload::gateway_role(labels, annotations, t.spec);
            let sidecar = if gateway.is_some() {
                Injection::Gateway
            } else {
                let live = o
                    .pod()
                    .is_some_and(|p| p.status.is_some() || p.metadata.uid.is_some());
                predict_injection(c, o.namespace(), labels, annotations, t.spec, live)
            };
            let network = labels
                .get(NETWORK_LABEL)
                .cloned()
                .unwrap_or_else(|| c.istio_network.clone());
            let service_account = t
                .spec
                .and_then(|s| {
                    s.service_account_name
                        .clone()
                        .or_else(|| s.service_account.clone())
                })
                .unwrap_or_else(|| "default".into());
            let address = o
                .pod()
                .and_then(|p| p.status.as_ref())
                .and_then(|s| s.pod_ip.clone());
            out.push(Workload {
                id: WorkloadId(out.len() as u32),
                cluster: c.id,
                object: id,
                kind: t.kind,
                namespace: o.namespace().to_string(),
                name: o.name().to_string(),
                labels: labels.clone(),
                annotations: annotations.clone(),
                service_account,
                replicas: t.replicas,
                template_path: t.path,
                sidecar,
                gateway,
                network,
                address,
                host_network: t.spec.and_then(|s| s.host_network).unwrap_or(false),
            });
        } else if let Some(we) = o.workload_entry() {
            out.push(Workload {
                id: WorkloadId(out.len() as u32),
                cluster: c.id,
                object: id,
                kind: WorkloadKind::WorkloadEntry,
                namespace: o.namespace().to_string(),
                name: o.name().to_string(),
                labels: we.spec.labels.clone(),
                annotations: BTreeMap::new(),
                service_account: if we.spec.service_account.is_empty() {
                    "default".into()
                } else {
                    we.spec.service_account.clone()
                },
                replicas: 1,
                template_path: "spec",
                sidecar: Injection::External,
                gateway: None,
                network: if we.spec.network.is_empty() {
                    c.istio_network.clone()
                } else {
                    we.spec.network.clone()
                },
                address: (!we.spec.address.is_empty()).then(|| we.spec.address.clone()),
                host_network: false,
            });
        } else if let Some(op) = o.istio_operator() {
            let gw_ns = |ns: &str| {
                if !ns.is_empty() {
                    ns.to_string()
                } else if !op.spec.namespace.is_empty() {
                    op.spec.namespace.clone()
                } else {
                    c.istio_namespace.clone()
                }
            };
            for g in op.spec.installed_gateways() {
                let labels = operator_gateway_labels(&g);
                let network = labels
                    .get(NETWORK_LABEL)
                    .cloned()
                    .unwrap_or_else(|| c.istio_network.clone());
                let gateway = workload::gateway_role(&labels, &BTreeMap::new(), None)
                    .or(Some(GatewayRole::Ingress));
                out.push(Workload {
                    id: WorkloadId(out.len() as u32),
                    cluster: c.id,
                    object: id,
                    kind: WorkloadKind::OperatorGateway,
                    namespace: gw_ns(&g.namespace),
                    name: g.name.clone(),
                    labels,
                    annotations: BTreeMap::new(),
                    service_account: format!("{}-service-account", g.name),
                    replicas: g.k8s.as_ref().and_then(|k| k.replica_count).unwrap_or(1),
                    template_path: "spec.components",
                    sidecar: Injection::Gateway,
                    gateway,
                    network,
                    address: None,
                    host_network: false,
                });
            }
        }
    }
}

/// What the injector will do (or did) to a pod template of cluster `c`, through the decision the
/// injector webhook itself makes ([`crate::injection::decide`]).
///
/// `live` marks a Pod dumped from a running cluster (it has a status or UID): its containers are
/// the truth, whatever the labels say now.
fn predict_injection(
    c: &Cluster,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    spec: Option<&k8s_openapi::api::core::v1::PodSpec>,
    live: bool,
) -> Injection {
    // An `image: auto` container counts here: the pod is then reported as never completed by
    // the injector (IST0147), not as missing its proxy.
    let named_proxy = spec.is_some_and(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .any(|c| c.name == injection::PROXY_CONTAINER)
    });
    if live && !named_proxy {
        return Injection::NotInjected(
            "the running pod has no istio-proxy container (created before injection was enabled, or the webhook did not run)".into(),
        );
    }
    let ns = c.namespaces.get(namespace).map(|n| injection::Namespace {
        name: &n.name,
        labels: &n.labels,
    });
    let pod = injection::Pod {
        labels,
        annotations,
        spec,
    };
    injection::decide(ns, pod, injection::Injector::any(c.inject_by_default))
}

/// Labels an operator-installed gateway's pods and Service carry: its `label` map, plus the
/// chart's `app`/`istio` defaults.
pub(crate) fn operator_gateway_labels(
    g: &strait_api::istio::operator::GatewayComponent,
) -> BTreeMap<String, String> {
    let mut labels = g.label.clone();
    labels.entry("app".into()).or_insert_with(|| g.name.clone());
    labels
        .entry("istio".into())
        .or_insert_with(|| g.name.trim_start_matches("istio-").to_string());
    labels
}

fn collect_services(c: &Cluster, reg: &mut Registry) {
    let default_export = &c.mesh_config.default_service_export_to;
    for (id, o) in c.of_kind(Kind::Service) {
        let Some(svc) = o.service() else { continue };
        let spec = svc.spec.clone().unwrap_or_default();
        let ns = o.namespace();
        let ports = spec
            .ports
            .iter()
            .flatten()
            .enumerate()
            .map(|(index, p)| Port {
                number: p.port.max(0) as u32,
                name: p.name.clone().unwrap_or_default(),
                protocol: Protocol::of_port(
                    p.port.max(0) as u32,
                    p.name.as_deref().unwrap_or(""),
                    p.protocol.as_deref(),
                    p.app_protocol.as_deref(),
                ),
                target: target_port(p.target_port.as_ref()),
                app_protocol: p.app_protocol.clone(),
                index,
            })
            .collect();
        let service_type = match spec.type_.as_deref() {
            Some("ExternalName") => {
                ServiceType::ExternalName(spec.external_name.clone().unwrap_or_default())
            }
            Some("NodePort") => ServiceType::NodePort,
            Some("LoadBalancer") => ServiceType::LoadBalancer,
            _ if spec.cluster_ip.as_deref() == Some("None") => ServiceType::Headless,
            _ => ServiceType::ClusterIp,
        };
        let mut external: Vec<String> = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
            .collect();
        external.extend(spec.external_ips.iter().flatten().cloned());
        let export_to = match o.annotation("networking.istio.io/exportTo") {
            Some(v) => ExportTo::from_annotation(Some(v), ns),
            None => ExportTo::parse(default_export, ns, true),
        };
        reg.push(ServiceInstance {
            id: ServiceId(0),
            cluster: c.id,
            object: id,
            source: ServiceSource::Kubernetes,
            hostname: format!("{}.{ns}.svc.{}", o.name(), c.domain),
            namespace: ns.to_string(),
            name: o.name().to_string(),
            ports,
            selector: spec.selector.clone().filter(|s| !s.is_empty()),
            labels: o.labels().clone(),
            export_to,
            service_type: Some(service_type),
            resolution: None,
            location: None,
            addresses: spec
                .cluster_ip
                .iter()
                .filter(|ip| ip.as_str() != "None")
                .cloned()
                .collect(),
            external_addresses: external,
            endpoint_count: 0,
        });
    }
    for (id, o) in c.of_kind(Kind::ServiceEntry) {
        let Some(se) = o.service_entry() else {
            continue;
        };
        let ns = o.namespace();
        let ports: Vec<Port> = se
            .spec
            .ports
            .iter()
            .enumerate()
            .map(|(index, p)| Port {
                number: p.number,
                name: p.name.clone(),
                protocol: if p.protocol.is_empty() {
                    Protocol::of_port_name(&p.name)
                } else {
                    Protocol::parse(&p.protocol)
                },
                target: p.target_port.map(crate::service::TargetPort::Number),
                app_protocol: None,
                index,
            })
            .collect();
        for h in &se.spec.hosts {
            reg.push(ServiceInstance {
                id: ServiceId(0),
                cluster: c.id,
                object: id,
                source: ServiceSource::ServiceEntry,
                hostname: h.clone(),
                namespace: ns.to_string(),
                name: o.name().to_string(),
                ports: ports.clone(),
                selector: se.spec.workload_selector.as_ref().map(|s| s.labels.clone()),
                labels: o.labels().clone(),
                export_to: ExportTo::parse(&se.spec.export_to, ns, true),
                service_type: None,
                resolution: Some(se.spec.effective_resolution()),
                location: Some(se.spec.effective_location()),
                addresses: se.spec.addresses.clone(),
                external_addresses: Vec::new(),
                endpoint_count: se.spec.endpoints.len(),
            });
        }
    }
    for (id, op) in c.operators() {
        // What an IstioOperator installs is a Service like any other once it runs: when the
        // cluster's objects hold it (a dump, or the Services a local run creates), that one
        // stands for it.
        if let Some(istiod) = operator_istiod_service(c, id, &op.spec)
            && c.find(Kind::Service, &istiod.namespace, &istiod.name)
                .is_none()
        {
            reg.push(istiod);
        }
        for g in op.spec.installed_gateways() {
            let ns = if !g.namespace.is_empty() {
                g.namespace.clone()
            } else if !op.spec.namespace.is_empty() {
                op.spec.namespace.clone()
            } else {
                c.istio_namespace.clone()
            };
            if c.find(Kind::Service, &ns, &g.name).is_some() {
                continue;
            }
            let svc = g
                .k8s
                .as_ref()
                .and_then(|k| k.service.clone())
                .unwrap_or_default();
            let ports: Vec<Port> = match &svc.ports {
                Some(ps) => ps
                    .iter()
                    .enumerate()
                    .map(|(index, p)| Port {
                        number: p.port.max(0) as u32,
                        name: p.name.clone().unwrap_or_default(),
                        protocol: Protocol::of_port(
                            p.port.max(0) as u32,
                            p.name.as_deref().unwrap_or(""),
                            None,
                            None,
                        ),
                        target: target_port(p.target_port.as_ref()),
                        app_protocol: None,
                        index,
                    })
                    .collect(),
                None => [(15021, "status-port"), (80, "http2"), (443, "https")]
                    .iter()
                    .enumerate()
                    .map(|(index, (n, name))| Port {
                        number: *n,
                        name: name.to_string(),
                        protocol: Protocol::of_port_name(name),
                        target: None,
                        app_protocol: None,
                        index,
                    })
                    .collect(),
            };
            let labels = operator_gateway_labels(&g);
            let service_type = match svc.type_.as_deref() {
                Some("ClusterIP") => ServiceType::ClusterIp,
                Some("NodePort") => ServiceType::NodePort,
                _ => ServiceType::LoadBalancer,
            };
            reg.push(ServiceInstance {
                id: ServiceId(0),
                cluster: c.id,
                object: id,
                source: ServiceSource::Operator,
                hostname: format!("{}.{ns}.svc.{}", g.name, c.domain),
                namespace: ns.clone(),
                name: g.name.clone(),
                ports,
                selector: Some(labels.clone()),
                labels,
                export_to: ExportTo::All,
                service_type: Some(service_type),
                resolution: None,
                location: None,
                addresses: Vec::new(),
                external_addresses: svc.external_ips.clone().unwrap_or_default(),
                endpoint_count: 0,
            });
        }
    }
}

/// The `istiod` Service an IstioOperator installs: the control plane's own (xDS and CA on 15012,
/// webhooks on 443), or, for the `remote` profile, the Service that points at the primary's.
fn operator_istiod_service(
    c: &Cluster,
    id: ObjId,
    spec: &strait_api::istio::operator::IstioOperatorSpec,
) -> Option<ServiceInstance> {
    let remote = spec.is_remote_profile();
    if !spec.installs_istiod() && !remote {
        return None;
    }
    let ns = if spec.namespace.is_empty() {
        c.istio_namespace.clone()
    } else {
        spec.namespace.clone()
    };
    let name = if spec.revision.is_empty() || remote {
        "istiod".to_string()
    } else {
        format!("istiod-{}", spec.revision)
    };
    let ports: &[(u32, &str, u32)] = if remote {
        &[(15012, "tcp-istiod", 15012), (443, "tcp-webhook", 15017)]
    } else {
        &[
            (15010, "grpc-xds", 15010),
            (15012, "https-dns", 15012),
            (443, "https-webhook", 15017),
            (15014, "http-monitoring", 15014),
        ]
    };
    let mut selector = BTreeMap::new();
    selector.insert("app".to_string(), "istiod".to_string());
    selector.insert("istio".to_string(), "pilot".to_string());
    Some(ServiceInstance {
        id: ServiceId(0),
        cluster: c.id,
        object: id,
        source: ServiceSource::Operator,
        hostname: format!("{name}.{ns}.svc.{}", c.domain),
        namespace: ns,
        name,
        ports: ports
            .iter()
            .enumerate()
            .map(|(index, (n, pname, target))| Port {
                number: *n,
                name: pname.to_string(),
                protocol: Protocol::of_port_name(pname),
                target: Some(crate::service::TargetPort::Number(*target)),
                app_protocol: None,
                index,
            })
            .collect(),
        selector: (!remote).then_some(selector),
        labels: BTreeMap::new(),
        export_to: ExportTo::All,
        service_type: Some(ServiceType::ClusterIp),
        resolution: None,
        location: None,
        addresses: Vec::new(),
        external_addresses: Vec::new(),
        endpoint_count: 0,
    })
}

fn collect_networks(
    clusters: &[Cluster],
    reg: &Registry,
    workloads: &[Workload],
) -> BTreeMap<String, Network> {
    let mut nets: BTreeMap<String, Network> = BTreeMap::new();
    for c in clusters {
        if !c.network.is_empty() {
            let n = nets.entry(c.network.clone()).or_insert_with(|| Network {
                id: c.network.clone(),
                ..Network::default()
            });
            n.clusters.push(c.id);
        }
    }
    for w in workloads {
        if !w.network.is_empty() {
            nets.entry(w.network.clone()).or_insert_with(|| Network {
                id: w.network.clone(),
                ..Network::default()
            });
        }
    }
    for s in reg.all() {
        if s.source == ServiceSource::ServiceEntry {
            continue;
        }
        let Some(net) = s.labels.get(NETWORK_LABEL).filter(|n| !n.is_empty()) else {
            continue;
        };
        let port = s
            .labels
            .get(GATEWAY_PORT_LABEL)
            .and_then(|p| p.parse().ok())
            .unwrap_or(DEFAULT_GATEWAY_PORT);
        if s.port(port).is_none() {
            continue;
        }
        let reachable = !s.external_addresses.is_empty()
            || matches!(
                s.service_type,
                Some(ServiceType::LoadBalancer | ServiceType::NodePort)
            );
        let n = nets.entry(net.clone()).or_insert_with(|| Network {
            id: net.clone(),
            ..Network::default()
        });
        n.gateways.push(NetworkGateway {
            network: net.clone(),
            cluster: s.cluster,
            origin: GatewayOrigin::Service(s.id),
            addresses: s.external_addresses.clone(),
            port,
            reachable,
        });
    }
    for c in clusters {
        for (net_name, net) in &c.mesh_networks.networks {
            for g in &net.gateways {
                let (addresses, cluster, reachable) = match (&g.address, &g.registry_service_name) {
                    (Some(a), _) => (vec![a.clone()], c.id, true),
                    (None, Some(svc)) => {
                        let found = reg.by_host(svc).next();
                        match found {
                            Some(s) => (s.external_addresses.clone(), s.cluster, true),
                            None => (Vec::new(), c.id, false),
                        }
                    }
                    (None, None) => continue,
                };
                let n = nets.entry(net_name.clone()).or_insert_with(|| Network {
                    id: net_name.clone(),
                    ..Network::default()
                });
                n.gateways.push(NetworkGateway {
                    network: net_name.clone(),
                    cluster,
                    origin: GatewayOrigin::MeshNetworks {
                        cluster: c.id,
                        object: None,
                    },
                    addresses,
                    port: if g.port == 0 {
                        DEFAULT_GATEWAY_PORT
                    } else {
                        g.port
                    },
                    reachable,
                });
            }
        }
    }
    nets
}
