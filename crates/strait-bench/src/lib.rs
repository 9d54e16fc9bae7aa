//! Generators for benchmark inputs.
//!
//! [`write_mesh`] writes a mesh directory shaped like a real multi-primary deployment: per
//! cluster an Istio control-plane setup (network label, IstioOperator, east-west gateway,
//! cross-network Gateway, remote secrets), and many application namespaces, each app with a
//! Service, ServiceAccount, Deployment, VirtualService and DestinationRule, plus policies every
//! few apps. The content is deterministic, so runs are comparable.

pub mod control;
pub mod proxy;
pub mod wire;

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// A benchmark binary's arguments, or the exit code after clap has printed why not: 2 for a
/// usage error, success for `--help` and `--version`.
pub fn parse_args<A: clap::Parser>() -> Result<A, ExitCode> {
    A::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Resources written per application (Service, ServiceAccount, Deployment, VirtualService,
/// DestinationRule).
const PER_APP: usize = 5;
/// Applications per namespace.
const APPS_PER_NS: usize = 20;

/// Writes a mesh of about `resources` resources over `clusters` clusters into `dir`. Returns the
/// number of resources written.
pub fn write_mesh(dir: &Path, resources: usize, clusters: usize) -> anyhow::Result<usize> {
    let clusters = clusters.max(1);
    std::fs::create_dir_all(dir)?;
    let mut mesh = String::from(
        "# Generated benchmark mesh.\nmeshID: bench\ntrustDomain: cluster.local\nclusters:\n",
    );
    for c in 0..clusters {
        writeln!(
            mesh,
            "- name: cluster{c}\n  network: network{c}\n  role: primary"
        )?;
    }
    std::fs::write(dir.join("mesh.yaml"), mesh)?;
    let mut written = 0;
    let per_cluster = resources / clusters;
    for c in 0..clusters {
        let cdir = dir.join(format!("cluster{c}"));
        std::fs::create_dir_all(&cdir)?;
        // The last cluster takes the remainder so the total is exact.
        let target = if c + 1 == clusters {
            resources.saturating_sub(written)
        } else {
            per_cluster
        };
        let control = control_plane(c, clusters);
        written += written_in(&control);
        std::fs::write(cdir.join("istio-system.yaml"), &control)?;
        let budget = target.saturating_sub(written_in(&control));
        let mut used = 0;
        let mut ns_index = 0;
        while used + 1 + PER_APP <= budget {
            let ns = format!("team{ns_index}");
            let mut out = format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    istio-injection: enabled\n"
            );
            used += 1;
            let mut i = 0;
            while i < APPS_PER_NS && used + PER_APP <= budget {
                out.push_str(&application(&ns, &format!("app{i}"), c, i));
                used += PER_APP;
                if i.is_multiple_of(5) && used + 2 <= budget {
                    out.push_str(&policies(&ns, &format!("app{i}")));
                    used += 2;
                }
                i += 1;
            }
            std::fs::write(cdir.join(format!("{ns}.yaml")), out)?;
            ns_index += 1;
        }
        // Top up with small ConfigMaps so the count is exact.
        let mut fill = String::new();
        for k in used..budget {
            let _ = write!(
                fill,
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{k}\n  namespace: team0\ndata:\n  level: info\n"
            );
        }
        std::fs::write(cdir.join("settings.yaml"), fill)?;
        written += budget;
    }
    Ok(written)
}

/// Resources in a generated YAML stream.
fn written_in(yaml: &str) -> usize {
    yaml.lines().filter(|l| l.starts_with("kind: ")).count()
}

fn control_plane(c: usize, clusters: usize) -> String {
    let net = format!("network{c}");
    format!(
        "{head}---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: istio-eastwestgateway
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: eastwestgateway
  template:
    metadata:
      labels:
        istio: eastwestgateway
        sidecar.istio.io/inject: \"true\"
        topology.istio.io/network: {net}
      annotations:
        inject.istio.io/templates: gateway
    spec:
      containers:
      - name: istio-proxy
        image: auto
---
{service}---
{CROSS_NETWORK_GATEWAY}{secrets}",
        head = istio_system(c),
        service = eastwest_service(c),
        secrets = remote_secrets(c, clusters),
    )
}

/// Cluster `c`'s `istio-system` namespace (on network `network{c}`) and its IstioOperator.
pub(crate) fn istio_system(c: usize) -> String {
    format!(
        "apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
  labels:
    topology.istio.io/network: network{c}
---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata:
  name: cluster{c}
  namespace: istio-system
spec:
  meshConfig:
    accessLogFile: /dev/stdout
  values:
    global:
      meshID: bench
      multiCluster:
        clusterName: cluster{c}
      network: network{c}
"
    )
}

/// Cluster `c`'s east-west gateway Service (a LoadBalancer; no status).
pub(crate) fn eastwest_service(c: usize) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: istio-eastwestgateway
  namespace: istio-system
  labels:
    istio: eastwestgateway
    topology.istio.io/network: network{c}
spec:
  type: LoadBalancer
  selector:
    istio: eastwestgateway
  ports:
  - name: status-port
    port: 15021
  - name: tls
    port: 15443
"
    )
}

/// Istio's cross-network Gateway on the east-west gateway.
pub(crate) const CROSS_NETWORK_GATEWAY: &str = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: cross-network-gateway
  namespace: istio-system
spec:
  selector:
    istio: eastwestgateway
  servers:
  - port:
      number: 15443
      name: tls
      protocol: TLS
    tls:
      mode: AUTO_PASSTHROUGH
    hosts:
    - \"*.local\"
";

/// The remote secrets cluster `c` holds for every other of `clusters` clusters, each
/// document preceded by `---`.
pub(crate) fn remote_secrets(c: usize, clusters: usize) -> String {
    let mut s = String::new();
    for o in (0..clusters).filter(|o| *o != c) {
        let _ = write!(
            s,
            "---
apiVersion: v1
kind: Secret
metadata:
  name: istio-remote-secret-cluster{o}
  namespace: istio-system
  labels:
    istio/multiCluster: \"true\"
stringData:
  cluster{o}: |
    apiVersion: v1
    kind: Config
    clusters:
    - name: cluster{o}
      cluster:
        server: https://cluster{o}.example.internal:6443
    contexts:
    - name: cluster{o}
      context: {{cluster: cluster{o}, user: cluster{o}}}
    current-context: cluster{o}
    users:
    - name: cluster{o}
      user: {{token: bench}}
"
        );
    }
    s
}

fn application(ns: &str, app: &str, cluster: usize, i: usize) -> String {
    let version = if (cluster + i).is_multiple_of(2) {
        "v1"
    } else {
        "v2"
    };
    format!(
        "---
apiVersion: v1
kind: Service
metadata:
  name: {app}
  namespace: {ns}
spec:
  selector:
    app: {app}
  ports:
  - name: http
    port: 8080
  - name: grpc-internal
    port: 9090
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {app}
  namespace: {ns}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}-{version}
  namespace: {ns}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {app}
      version: {version}
  template:
    metadata:
      labels:
        app: {app}
        version: {version}
      annotations:
        sidecar.istio.io/proxyCPU: 100m
        sidecar.istio.io/proxyMemory: 128Mi
        sidecar.istio.io/proxyMemoryLimit: 512Mi
    spec:
      serviceAccountName: {app}
      containers:
      - name: {app}
        image: registry.example.com/{app}:{version}
        ports:
        - containerPort: 8080
        - containerPort: 9090
        resources:
          requests: {{cpu: 100m, memory: 128Mi}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {app}
  namespace: {ns}
spec:
  hosts:
  - {app}
  http:
  - match:
    - headers:
        x-canary:
          exact: \"true\"
    route:
    - destination:
        host: {app}
        subset: v2
  - timeout: 10s
    retries:
      attempts: 3
      perTryTimeout: 3s
      retryOn: 5xx,reset
    route:
    - destination:
        host: {app}
        subset: v1
      weight: 90
    - destination:
        host: {app}
        subset: v2
      weight: 10
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {app}
  namespace: {ns}
spec:
  host: {app}
  trafficPolicy:
    connectionPool:
      http:
        http2MaxRequests: 1000
    outlierDetection:
      consecutive5xxErrors: 5
      interval: 10s
      baseEjectionTime: 30s
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
"
    )
}

fn policies(ns: &str, app: &str) -> String {
    format!(
        "---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: {app}
  namespace: {ns}
spec:
  selector:
    matchLabels:
      app: {app}
  mtls:
    mode: STRICT
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: {app}
  namespace: {ns}
spec:
  selector:
    matchLabels:
      app: {app}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: [\"cluster.local/ns/{ns}/sa/app1\"]
    to:
    - operation:
        methods: [GET, POST]
"
    )
}
