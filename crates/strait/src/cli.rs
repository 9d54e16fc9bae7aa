//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "strait",
    version,
    about = "A multi-cluster service mesh that speaks Istio's API",
    long_about = "strait reads Istio and Kubernetes YAML unchanged. It analyzes a whole multi-cluster mesh \
from files and runs one on this machine.\n\nExit codes: 0 success, 1 findings or a failed check, 2 usage or input error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A tour: the seed scenario (two clusters on two networks) analyzed clean and with the
    /// mistakes people make, then running on this machine: gateways, endpoints, requests.
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),
    /// Find misconfigurations across every cluster of a mesh, from files or from the clusters.
    #[command(after_help = ANALYZE_EXAMPLES)]
    Analyze(AnalyzeArgs),
    /// Run a built-in sample app (used by `strait up` for each pod; exits when stdin closes).
    #[command(hide = true)]
    App(AppArgs),
    /// Certificates: one shared root and a plug-in CA (`cacerts`) per cluster.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Run a mesh on this machine: control planes, gateways, sidecars and apps, each its own
    /// process, each network apart.
    #[command(after_help = UP_EXAMPLES)]
    Up(UpArgs),
    /// Run a command as a workload of the running mesh: its HTTP_PROXY is that workload's sidecar.
    #[command(after_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
    /// Show the configuration a proxy (sidecar or gateway) of the running mesh holds.
    #[command(name = "proxy-config", after_help = PROXY_CONFIG_EXAMPLES)]
    ProxyConfig(ProxyConfigArgs),
    /// Show whether each proxy (sidecars, gateways, remote clusters' proxies) of the running
    /// mesh has the latest configuration.
    #[command(name = "proxy-status", after_help = PROXY_STATUS_EXAMPLES)]
    ProxyStatus(ProxyStatusArgs),
    /// Check the running mesh: east-west gateways, and whether every proxy holds a
    /// configuration that can reach across networks. Exits 1 when a check fails.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Serve a page on this machine that draws the running mesh: networks, clusters, gateways,
    /// workloads, and live request and error rates between them from the proxies' metrics.
    #[command(after_help = DASHBOARD_EXAMPLES)]
    Dashboard(DashboardArgs),
    /// Run a control plane: config from files, pushed to proxies; workload certificates.
    #[command(name = "control-plane", after_help = CONTROL_PLANE_EXAMPLES)]
    ControlPlane(ControlPlaneArgs),
    /// Run a proxy (a pod's sidecar, or a gateway) from a bootstrap file or, in Kubernetes,
    /// from the pod's environment.
    #[command(after_help = PROXY_EXAMPLES)]
    Proxy(ProxyArgs),
    /// Capture a pod's traffic for its sidecar: install Istio's iptables rules in this network
    /// namespace (what Istio's istio-init container does; needs NET_ADMIN).
    #[command(after_help = INIT_EXAMPLES)]
    Init(InitArgs),
    /// Render the manifests that install strait into one cluster of a mesh (Kubernetes).
    #[command(after_help = crate::cli_kube::INSTALL_EXAMPLES)]
    Install(crate::cli_kube::InstallArgs),
    /// Write the Secret that lets other clusters' control planes read this cluster's API
    /// server (istioctl's format).
    #[command(name = "create-remote-secret", after_help = crate::cli_kube::REMOTE_SECRET_EXAMPLES)]
    CreateRemoteSecret(crate::cli_kube::CreateRemoteSecretArgs),
    /// Run the sidecar injector: the mutating admission webhook (HTTPS, 15017) that adds
    /// strait's proxy to new pods, deciding as `strait analyze` predicts.
    #[command(after_help = INJECTOR_EXAMPLES)]
    Injector(InjectorArgs),
}

const INJECTOR_EXAMPLES: &str = "Examples:
  strait injector --config injector.json --ca-dir /etc/cacerts
  strait injector --config injector.json --ca-dir /etc/cacerts --print-ca-bundle
  strait injector --config injector.json --ca-dir /etc/cacerts --patch-webhook istio-sidecar-injector

The config is JSON: {\"image\": \"<strait image>\"} plus optional revision, default_revision,
inject_by_default, cluster_id, network, trust_domain, discovery_address, kubernetes_version
(1.29 and later: native sidecars) and namespaces ({\"<name>\": {<labels>}}), each with Istio's
default. The serving certificate is issued by the CA of --ca-dir for istiod[-<revision>].<ns>.svc
and renewed at half-life; --print-ca-bundle prints the value of the webhook's
clientConfig.caBundle; --patch-webhook NAME keeps it current in the named
MutatingWebhookConfiguration through the API server (in a pod, with get and patch on it).
Exit codes: 0 stopped by a signal; 2 unusable config, CA or in-cluster credentials.
Log level: STRAIT_LOG (e.g. STRAIT_LOG=debug).";

#[derive(Debug, Args)]
pub struct InjectorArgs {
    /// The injector's configuration (JSON).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The plug-in CA directory (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)
    /// that issues the webhook's serving certificate.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// Where to listen.
    #[arg(long, default_value = "0.0.0.0:15017", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// The namespace of the control plane's Service, for the certificate's names.
    #[arg(long, default_value = "istio-system", value_name = "NAMESPACE")]
    pub istio_namespace: String,
    /// Print the MutatingWebhookConfiguration's caBundle (base64 PEM) and exit.
    #[arg(long)]
    pub print_ca_bundle: bool,
    /// Keep the caBundle of this MutatingWebhookConfiguration equal to the CA's roots,
    /// through the Kubernetes API (the pod's service account): patched at start,
    /// when the roots change, and whenever a check finds it different (repeatable).
    #[arg(long = "patch-webhook", value_name = "NAME")]
    pub patch_webhooks: Vec<String>,
    /// Watch the cluster's namespaces through the Kubernetes API (the pod's service account),
    /// so revisions and `istio-injection` labels are read as the API server has them now,
    /// as `strait analyze` reads them.
    #[arg(long)]
    pub watch_namespaces: bool,
    /// How often the patched configurations are checked, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub patch_interval: u64,
}

const INIT_EXAMPLES: &str = "Examples:
  strait init                                   # Istio's defaults: all inbound ports, all destinations
  strait init --dry-run                         # print the iptables-restore input, change nothing
  strait init --exclude-outbound-ports 5432 --exclude-inbound-ports 22
  strait init --annotations-file /etc/podinfo/annotations   # the pod's traffic.sidecar.istio.io/* annotations
  strait init --annotations traffic.sidecar.istio.io/includeOutboundIPRanges=10.96.0.0/12
  strait init --clean                           # remove the rules

Outbound TCP is redirected to 15001 and inbound to 15006, except the proxy's own traffic (its
UID/GID, 1337 unless --proxy-uid/--proxy-gid say otherwise) and the proxy's ports (15008,
15090, 15021, 15020). Flags given win over annotations. The sidecar must run with capture on
(its bootstrap's \"capture\": true). Needs iptables-restore and iptables-save on PATH.

Exit codes: 0 installed, removed or printed; 1 iptables failed or is missing; 2 a bad flag,
annotation or file.";

const UP_EXAMPLES: &str = "Examples:
  strait up examples/multicluster                   # two clusters on two networks
  strait up mesh/ --state /tmp/mesh-a --net 20      # a second mesh beside the first
  sudo strait up --netns examples/multicluster      # a network namespace per network

Each network gets a block of loopback addresses 127.<net>.x.y, each pod an address in it: its
sidecar listens there (15001 outbound, 15000 admin, 15021 health, 15090 stats) and its app on
the pod's private address. Connections leave from the pod's address and listeners refuse other
networks' pods: only load balancers' public addresses (127.<net>.112.x, gateways behind them)
are reachable from every network. Deployments added, deleted or scaled in the files start and
stop pods. Parts that exit are restarted. Ctrl-C stops everything. Linux only (all of
127.0.0.0/8 is local).";

const EXEC_EXAMPLES: &str = "Examples:
  strait exec cluster1/sample/sleep -- curl -sS helloworld.sample:5000/hello
  strait exec sleep.sample -- sh -c 'for i in $(seq 10); do curl -s helloworld.sample:5000/hello; done'

The command runs with HTTP_PROXY/http_proxy (and HTTPS_PROXY for CONNECT) set to the
workload's sidecar, so plain HTTP clients go through the mesh; with `strait up --netns` it runs
inside the pod's network namespace.

Exit codes: the command's own (128 + N when signal N killed it); 127 when the command is not
found, 126 when it cannot be executed, as a shell; 2 when strait cannot run it as the workload
(no mesh running, no such workload).";

/// How a proxy is named on the command line: in each form strait prints one (a macro, for
/// `concat!`).
macro_rules! proxy_names {
    () => {
        "A proxy is named as `proxy-status` prints it: <pod>.<namespace> (istioctl's form), or
<cluster>/<pod>.<namespace> when that name is in several clusters; or as `strait up` prints it:
<cluster>/<namespace>/<pod>. A workload's name stands for its first pod (sleep.sample,
cluster1/sample/sleep)."
    };
}

const PROXY_CONFIG_EXAMPLES: &str = concat!(
    "Examples:
  strait proxy-config clusters cluster1/sample/sleep
  strait proxy-config endpoints sleep.sample --fqdn helloworld
  strait proxy-config route sleep-5c8d6f7b9d-x2k4q.sample -o json   # a NAME from proxy-status
  strait proxy-config listeners cluster2/istio-eastwestgateway.istio-system
  strait proxy-config endpoints sleep.sample --context cluster1   # a cluster's, through its API server

Against clusters (--kubeconfig, --context): the proxy's admin port (15000) is read through the
API server's pod proxy, which needs RBAC \"get\" on pods/proxy.

Types take istioctl's names too: cluster (c), endpoint (ep), route (r), listener (l).

",
    proxy_names!()
);

const PROXY_STATUS_EXAMPLES: &str = concat!(
    "Examples:
  strait proxy-status                                  # every proxy, per control plane
  strait proxy-status sleep-5c8d6f7b9d-x2k4q.sample    # one, by its NAME
  strait proxy-status -o json
  strait proxy-status --context cluster1 --context cluster2   # clusters, through their API servers

Against clusters (--kubeconfig, --context): each cluster's control plane (the app=istiod pod in
--istio-namespace) is read on its debug port (15014) through the API server's pod proxy, which
needs RBAC \"list\" on pods and \"get\" on pods/proxy.

",
    proxy_names!(),
    "

Exit codes: 0 shown; 1 a control plane did not answer (the rows it would give are missing);
2 usage error, or no such proxy."
);

#[derive(Debug, Args)]
pub struct UpArgs {
    /// A mesh directory (with mesh.yaml) or one cluster's files.
    #[arg(value_name = "DIR")]
    pub mesh: PathBuf,
    /// State directory (default: $STRAIT_STATE, else <tmp>/strait-<user>).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Second octet of the loopback range to use: 127.<NET>.0.0/16.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub net: u8,
    /// Workload certificate lifetime, e.g. 24h or 10m.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub cert_ttl: std::time::Duration,
    /// Delay before a part that exited is restarted (doubles on repeated failures).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub restart_delay: std::time::Duration,
    /// Put each network in its own network namespace, joined only through the gateways'
    /// public addresses (Linux, root): the kernel itself then refuses any connection between
    /// networks that does not go through a gateway.
    #[arg(long)]
    pub netns: bool,
    /// Stop when stdin closes (for a supervising program).
    #[arg(long, hide = true)]
    pub lifeline: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    strait_api::istio::Duration::parse(s).map(|d| d.as_std())
}

/// Where to find the running mesh.
#[derive(Debug, Args)]
pub struct StateArg {
    /// State directory of the running mesh (default: $STRAIT_STATE, else <tmp>/strait-<user>).
    #[arg(long, value_name = "DIR", global = true)]
    pub state: Option<PathBuf>,
}

/// The clusters of a mesh, read through their API servers (Kubernetes mode) instead of files
/// or a local run.
#[derive(Debug, Default, Args)]
pub struct ClusterArgs {
    /// A kubeconfig file (default: $KUBECONFIG, else ~/.kube/config). Giving it, or
    /// --context, reads the mesh from its clusters.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig: one per cluster of the mesh (repeatable). The cluster is
    /// named as the context; `NAME=CONTEXT` gives it its Istio cluster ID instead. Default:
    /// the current context.
    #[arg(long = "context", value_name = "[NAME=]CONTEXT")]
    pub contexts: Vec<String>,
    /// The Istio namespace of every cluster: where the control plane runs, and whose
    /// `topology.istio.io/network` label gives the cluster's network.
    #[arg(long, value_name = "NAMESPACE", default_value = "istio-system")]
    pub istio_namespace: String,
}

impl ClusterArgs {
    /// Whether the mesh is to be read from clusters.
    pub fn given(&self) -> bool {
        self.kubeconfig.is_some() || !self.contexts.is_empty()
    }
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The workload: <pod>.<namespace>, <cluster>/<pod>.<namespace> or
    /// <cluster>/<namespace>/<pod>; a workload's name stands for its first pod.
    pub target: String,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub state: StateArg,
}

/// What `proxy-config` shows. Each also answers to istioctl's name for its view, singular,
/// and that view's short alias (istioctl `proxy-config --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConfigSection {
    /// Outbound clusters and inbound ports (also: cluster, c).
    #[value(aliases = ["cluster", "c"])]
    Clusters,
    /// Each outbound cluster's endpoints (also: endpoint, ep).
    #[value(aliases = ["endpoint", "ep"])]
    Endpoints,
    /// HTTP and TCP routes per service port (also: route, r).
    #[value(aliases = ["route", "r"])]
    Routes,
    /// A gateway's listeners (also: listener, l).
    #[value(aliases = ["listener", "l"])]
    Listeners,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ProxyConfigArgs {
    /// What to show.
    pub section: ConfigSection,
    /// The proxy: <pod>.<namespace> as proxy-status prints it, <cluster>/<pod>.<namespace> or
    /// <cluster>/<namespace>/<pod>; a workload's name stands for its first pod.
    pub target: String,
    /// Only entries whose service host contains this.
    #[arg(long)]
    pub fqdn: Option<String>,
    /// Only entries for this service port.
    #[arg(long)]
    pub port: Option<u32>,
    #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
    pub output: TableFormat,
    #[command(flatten)]
    pub state: StateArg,
    #[command(flatten)]
    pub clusters: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct ProxyStatusArgs {
    /// Only this proxy: <pod>.<namespace> as printed, <cluster>/<pod>.<namespace> or
    /// <cluster>/<namespace>/<pod>; a workload's name stands for its first pod.
    pub target: Option<String>,
    #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
    pub output: TableFormat,
    #[command(flatten)]
    pub state: StateArg,
    #[command(flatten)]
    pub clusters: ClusterArgs,
}

const CONTROL_PLANE_EXAMPLES: &str = "Examples:
  strait control-plane examples/single-cluster --tokens tokens.json --root-cert-out root-cert.pem
  strait control-plane mesh/ --cluster cluster1 --ca-dir certs/cluster1 --tokens tokens.json

Files are re-read when they change; an update with errors is rejected (each error with its
file and line) and the previous configuration stays in force.
Debug port: /debug/syncz, /debug/configz?proxy=<cluster>/<namespace>/<pod>, /metrics.
Log level: STRAIT_LOG (e.g. STRAIT_LOG=debug).";

#[derive(Debug, Args)]
pub struct ControlPlaneArgs {
    /// A mesh directory (with mesh.yaml) or one cluster's files.
    #[arg(required_unless_present = "kubernetes", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Read the cluster through the Kubernetes API (in a pod: its service account) and, through
    /// remote secrets, the other clusters; proxies authenticate with service-account tokens
    /// (TokenReview). Settings absent from the flags come from the environment the install
    /// sets: CLUSTER_ID, NETWORK, MESH_ID, TRUST_DOMAIN, POD_NAME, POD_NAMESPACE,
    /// EXTERNAL_ISTIOD.
    #[arg(long, conflicts_with_all = ["paths", "extra", "lb_status", "reach", "tokens", "root_cert_out"])]
    pub kubernetes: bool,
    /// With --kubernetes, outside a pod: the kubeconfig to use instead of the service account.
    #[arg(long, value_name = "FILE", requires = "kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// With --kubeconfig: the context (default: the current context).
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    pub context: Option<String>,
    /// With --kubernetes: the network of this cluster's workloads (default: NETWORK, else the
    /// topology.istio.io/network label of the Istio namespace).
    #[arg(long, value_name = "ID", requires = "kubernetes")]
    pub network: Option<String>,
    /// With --kubernetes: the namespace the control plane runs in and remote secrets live in
    /// (default: POD_NAMESPACE, else istio-system).
    #[arg(long, value_name = "NAMESPACE", requires = "kubernetes")]
    pub istio_namespace: Option<String>,
    /// The primary cluster this control plane runs in (required for multi-cluster meshes).
    #[arg(long, default_value = "")]
    pub cluster: String,
    /// More files for a cluster, as CLUSTER=PATH (repeatable).
    #[arg(long = "extra", value_name = "CLUSTER=PATH")]
    pub extra: Vec<String>,
    /// Load-balancer addresses of a cluster's Services, as CLUSTER=FILE (repeatable; JSON
    /// {"services": {"<namespace>/<name>": ["<address>"]}}, what a cloud reports).
    #[arg(long = "lb-status", value_name = "CLUSTER=FILE")]
    pub lb_status: Vec<String>,
    /// The network table of its listeners and connections (JSON, written by `strait up`);
    /// without one every peer is admitted.
    #[arg(long, value_name = "FILE")]
    pub reach: Option<PathBuf>,
    /// The address its own connections leave from (with --reach).
    #[arg(long, value_name = "IP")]
    pub source: Option<std::net::IpAddr>,
    /// Bootstrap tokens: a JSON object {"<token>": {"cluster", "namespace", "service_account"}}
    /// (required unless --kubernetes).
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// A plug-in CA directory (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem).
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    /// Write the trust bundle here (what proxies need to verify anything in the mesh).
    #[arg(long, value_name = "FILE")]
    pub root_cert_out: Option<PathBuf>,
    /// Discovery and certificates (gRPC over TLS).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:15012")]
    pub listen: std::net::SocketAddr,
    /// Debug and metrics (plain HTTP).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:15014")]
    pub debug: std::net::SocketAddr,
    /// DNS names in the serving certificate (default: istiod.istio-system.svc and variants).
    #[arg(long = "name", value_name = "DNS")]
    pub names: Vec<String>,
    /// How often to check the files for changes, in milliseconds.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub poll_ms: u64,
    /// Stop when stdin closes (set by a supervisor such as `strait up`).
    #[arg(long, hide = true)]
    pub lifeline: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The proxy's user: its connections are never captured [default: 1337].
    #[arg(long, value_name = "UID")]
    pub proxy_uid: Option<u32>,
    /// The proxy's group, likewise [default: the proxy's UID].
    #[arg(long, value_name = "GID")]
    pub proxy_gid: Option<u32>,
    /// Inbound ports redirected to 15006: '*' or a comma-separated list (empty: none)
    /// [default: *].
    #[arg(long, value_name = "PORTS")]
    pub inbound_ports: Option<String>,
    /// Inbound ports never redirected (besides 15008, 15090, 15021, 15020).
    #[arg(long, value_name = "PORTS")]
    pub exclude_inbound_ports: Option<String>,
    /// Destinations redirected to 15001: '*' or comma-separated IPv4 CIDRs [default: *].
    #[arg(long, value_name = "CIDRS")]
    pub include_outbound_ip_ranges: Option<String>,
    /// Destinations never redirected (comma-separated IPv4 CIDRs).
    #[arg(long, value_name = "CIDRS")]
    pub exclude_outbound_ip_ranges: Option<String>,
    /// Outbound ports redirected whatever the destination.
    #[arg(long, value_name = "PORTS")]
    pub include_outbound_ports: Option<String>,
    /// Outbound ports never redirected.
    #[arg(long, value_name = "PORTS")]
    pub exclude_outbound_ports: Option<String>,
    /// The pod's annotations as KEY=VALUE,... (Istio's traffic.sidecar.istio.io/* and
    /// sidecar.istio.io/interceptionMode are read; other keys are ignored).
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub annotations: Option<String>,
    /// A downward-API annotations file (key="value" lines), read like --annotations.
    #[arg(long, value_name = "FILE", conflicts_with = "annotations")]
    pub annotations_file: Option<PathBuf>,
    /// Print the iptables-restore input instead of applying it.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove the capture rules instead of installing them.
    #[arg(long)]
    pub clean: bool,
}

const PROXY_EXAMPLES: &str = "Examples:
  strait proxy --bootstrap pods/cluster1/sample/sleep-1.json   # local mode, a file from strait up
  strait proxy --bootstrap-env                                  # an injected sidecar (Kubernetes)
  strait proxy --kubernetes --gateway                           # a gateway Deployment (Kubernetes)

--bootstrap-env (alias --kubernetes) reads the pod's environment: POD_NAME, POD_NAMESPACE,
INSTANCE_IP and SERVICE_ACCOUNT from the downward API; ISTIO_META_CLUSTER_ID, TRUST_DOMAIN,
CA_ADDR (the control plane, host:port; its host is the name its certificate must carry),
STRAIT_ROOT_CERT (the trust bundle), STRAIT_TOKEN_FILE (the bootstrap token, re-read for each
request) and STRAIT_ROLE (sidecar or gateway; --gateway sets it) from the injector or strait
install; ISTIO_META_INTERCEPTION_MODE=NONE turns traffic capture off (default REDIRECT for a
sidecar). Exit codes: 0 stopped; 2 an unusable bootstrap or environment (the message names
the file or variable), or a port already in use.
Log level: STRAIT_LOG (e.g. STRAIT_LOG=debug).";

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["bootstrap", "bootstrap_env"])))]
pub struct ProxyArgs {
    /// The bootstrap file: who the proxy is, its addresses, control plane and credential.
    #[arg(long, value_name = "FILE")]
    pub bootstrap: Option<PathBuf>,
    /// Build the bootstrap from the environment the injector (or `strait install`) puts in
    /// the pod spec (Kubernetes mode).
    #[arg(long, visible_alias = "kubernetes")]
    pub bootstrap_env: bool,
    /// Run as a gateway (its own pod is the proxy: no outbound listener, no capture); with
    /// --bootstrap-env, in place of STRAIT_ROLE=gateway.
    #[arg(long, requires = "bootstrap_env")]
    pub gateway: bool,
    /// Stop when stdin closes (set by a supervisor such as `strait up`).
    #[arg(long, hide = true)]
    pub lifeline: bool,
}

const DEMO_EXAMPLES: &str = "Examples:
  strait demo                      # two primaries on two networks; keeps running until Ctrl-C
  strait demo --once               # the same, then stops and exits
  strait demo primary-remote       # a primary and a remote on another network
  sudo strait demo --netns         # each network in its own network namespace

Exit codes: 0 shown; 1 the running mesh did not behave as shown (the message says how);
2 usage error.";

const ANALYZE_EXAMPLES: &str = "Examples:
  strait analyze examples/multicluster              # a mesh directory (mesh.yaml + one dir per cluster)
  strait analyze manifests/ extra.yaml              # plain files: one cluster
  helm template istio-app ./chart | strait analyze -
  strait analyze -o sarif mesh/ > strait.sarif      # for code-scanning dashboards
  strait analyze -S 'IST0102=Namespace default' mesh/
  strait analyze --context cluster1 --context cluster2   # the clusters themselves, via ~/.kube/config
  strait analyze --kubeconfig prod.yaml --context east=gke_prod_east --context west=gke_prod_west

Against clusters, every kind strait reads is listed in all namespaces (RBAC \"list\"; a kind
that may not be listed is a warning and the rest is analyzed). Findings point at
kube://<cluster>/<namespace>/<Kind>/<name>:<line>, lines as `kubectl get -o yaml` shows them.

Exit codes: 0 no finding at or above --failure-threshold; 1 some finding is; 2 usage or unreadable input.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
    Sarif,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Threshold {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Which seed scenario: two primaries on two networks, or a primary and a remote.
    #[arg(value_enum, default_value_t = DemoTopology::MultiPrimary)]
    pub topology: DemoTopology,
    /// Where to write the demo mesh (default: a new directory under the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// When to colour output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Only the analysis; do not bring a mesh up.
    #[arg(long)]
    pub no_run: bool,
    /// Show the running mesh, then stop it and exit (without it, it keeps running until
    /// Ctrl-C).
    #[arg(long)]
    pub once: bool,
    /// Run each network in its own network namespace (Linux, root), as `strait up --netns`.
    #[arg(long)]
    pub netns: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoTopology {
    /// cluster1 and cluster2 both primaries, on network1 and network2 (the EKS seed).
    MultiPrimary,
    /// cluster1 the primary, cluster2 a remote on another network (the EKS and AKS seed).
    PrimaryRemote,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Files, directories (read recursively), a mesh directory, or `-` for stdin.
    #[arg(
        required_unless_present_any = ["list_analyzers", "kubeconfig", "contexts"],
        conflicts_with_all = ["kubeconfig", "contexts"]
    )]
    pub paths: Vec<PathBuf>,
    /// Read the mesh from its clusters' API servers instead of files.
    #[command(flatten)]
    pub clusters: ClusterArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Lowest level that makes the exit code 1 (Error, as istioctl's: warnings are printed and
    /// do not fail a CI job unless asked).
    #[arg(long, value_enum, default_value_t = Threshold::Error)]
    pub failure_threshold: Threshold,
    /// Lowest level printed.
    #[arg(long, value_enum, default_value_t = Threshold::Info)]
    pub output_threshold: Threshold,
    /// Mesh config file (the `mesh` key of the istio ConfigMap), applied to every cluster.
    #[arg(long, value_name = "FILE", alias = "meshConfigFile")]
    pub mesh_config: Option<PathBuf>,
    /// Mesh networks file (the `meshNetworks` key), applied to every cluster.
    #[arg(long, value_name = "FILE", alias = "meshNetworksFile")]
    pub mesh_networks: Option<PathBuf>,
    /// Drop findings: `CODE=Kind name.namespace` (the resource part may use `*`). Repeatable.
    #[arg(short = 'S', long = "suppress", value_name = "CODE=RESOURCE")]
    pub suppress: Vec<String>,
    /// Run only this analyzer (see --list-analyzers). Repeatable.
    #[arg(long = "analyzer", value_name = "NAME")]
    pub analyzers: Vec<String>,
    /// The input is not the whole mesh (some of its manifests were not given): a reference to
    /// something the input lacks ("referenced ... not found") is Info instead of an error. By
    /// default a mesh directory or a dump is the whole world, as a cluster is to istioctl.
    #[arg(long)]
    pub partial: bool,
    /// List the analyzers and the codes they report, then exit.
    #[arg(short = 'L', long)]
    pub list_analyzers: bool,
    /// Show the source line under each finding.
    #[arg(long)]
    pub show_source: bool,
    /// When to colour text output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Print no summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct AppArgs {
    /// Which app: helloworld, echo or sleep.
    pub app: strait_local::apps::AppKind,
    /// Address to listen on, e.g. 127.1.0.5:5000.
    #[arg(long, value_name = "IP:PORT")]
    pub listen: std::net::SocketAddr,
    #[arg(long)]
    pub pod: String,
    #[arg(long)]
    pub namespace: String,
    #[arg(long)]
    pub cluster: String,
    #[arg(long)]
    pub workload: String,
    #[arg(long)]
    pub version: String,
    #[arg(long)]
    pub service_account: String,
    #[arg(long, default_value = "cluster.local")]
    pub trust_domain: String,
    /// The network table (JSON, written by `strait up`): who may connect.
    #[arg(long, value_name = "FILE")]
    pub reach: Option<PathBuf>,
    /// The address the app's own connections leave from (its pod's).
    #[arg(long, value_name = "IP")]
    pub source: Option<std::net::IpAddr>,
    /// The app's sidecar: the only peer it admits (with --reach).
    #[arg(long, value_name = "IP")]
    pub sidecar: Option<std::net::IpAddr>,
    /// A URL the echo app calls on every request (repeatable).
    #[arg(long = "call", value_name = "URL")]
    pub calls: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Each network's east-west gateways: their public address, whether they are healthy and
    /// reachable from every other network, and the Gateway servers they serve.
    #[command(after_help = CHECK_GATEWAYS_EXAMPLES)]
    Gateways(CheckArgs),
    /// Cross-network sync: proxies that are stale, rejected their configuration or are not
    /// connected, networks without a gateway, and endpoints that are another network's raw
    /// pod addresses (unreachable from here).
    #[command(after_help = CHECK_SYNC_EXAMPLES)]
    Sync(CheckArgs),
    /// Send requests to a service from a workload and compare where they went (by cluster,
    /// network and version) with what the configuration's weights predict.
    #[command(after_help = CHECK_LB_EXAMPLES)]
    Lb(CheckLbArgs),
    /// Why a request from a workload goes where it goes: the rule that matched (file:line),
    /// the endpoints considered with their network and weight, the gateway hop, the pods at
    /// the end, the identities at both ends and the policy decisions, from the proxies' own
    /// configuration. `--send` also sends it and reports where it went.
    #[command(after_help = CHECK_TRACE_EXAMPLES)]
    Trace(CheckTraceArgs),
}

const CHECK_TRACE_EXAMPLES: &str = "Examples:
  strait check trace --from cluster1/sample/sleep http://helloworld.sample:5000/hello
  strait check trace --from sleep.sample http://reviews:9080/ -H end-user:jason --send
  strait check trace --from cluster1/sample/sleep http://helloworld.sample:5000/hello -o json
  strait check trace --context cluster1 --context cluster2 --from sleep-xxxx.sample http://helloworld.sample:5000/hello

Exit codes: 0 the request has a way to a pod that accepts it; 1 it has none (no service, no
rule, no endpoint, a gateway that refuses it, an identity the client rejects, a policy that
denies it, or --send failed), or a proxy did not answer; 2 usage error or no running mesh.";

#[derive(Debug, Args)]
pub struct CheckTraceArgs {
    /// The URL, as the workload would request it (http://<host>[:<port>]/<path>).
    pub url: String,
    /// The workload the request comes from (a pod with a sidecar, named as proxy-status does).
    #[arg(long, value_name = "WORKLOAD")]
    pub from: String,
    /// The request method.
    #[arg(short = 'X', long, default_value = "GET")]
    pub method: String,
    /// A request header, `name:value` (repeatable).
    #[arg(short = 'H', long)]
    pub header: Vec<String>,
    /// Also send the request, and report its status and which workload served it.
    #[arg(long)]
    pub send: bool,
    #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
    pub output: TableFormat,
    #[command(flatten)]
    pub state: StateArg,
    #[command(flatten)]
    pub clusters: ClusterArgs,
}

const CHECK_LB_EXAMPLES: &str = "Examples:
  strait check lb helloworld.sample --from cluster1/sample/sleep -n 200
  strait check lb helloworld.sample:5000 --from sleep.sample --path /hello -o json

Exit codes: 0 the requests succeeded and went where the weights say (within the statistical
margin of N requests); 1 a request failed or a cluster got a share the weights do not explain;
2 usage error, no running mesh, or a service the workload's proxy does not know.";

#[derive(Debug, Args)]
pub struct CheckLbArgs {
    /// The service: <name>.<namespace>, its FQDN, either with :<port> (the port is needed when
    /// it has several).
    pub service: String,
    /// The workload the requests come from (a pod with a sidecar, named as proxy-status does).
    #[arg(long, value_name = "WORKLOAD")]
    pub from: String,
    /// How many requests to send.
    #[arg(short = 'n', long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub requests: u32,
    /// The request path.
    #[arg(long, default_value = "/")]
    pub path: String,
    #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
    pub output: TableFormat,
    #[command(flatten)]
    pub state: StateArg,
    #[command(flatten)]
    pub clusters: ClusterArgs,
}

const CHECK_GATEWAYS_EXAMPLES: &str = "Examples:
  strait check gateways
  strait check gateways -o json | jq '.gateways[] | select(.ready | not)'

Exit codes: 0 every gateway is ready; 1 a gateway is unhealthy or unreachable from another
network, a network has none, or a control plane did not answer; 2 usage error or no running mesh.";

const CHECK_SYNC_EXAMPLES: &str = "Examples:
  strait check sync
  strait check sync -o json
  strait check sync --context cluster1 --context cluster2   # clusters, through their API servers

Exit codes: 0 in sync; 1 a problem was found (each is named with its proxy, service and
cause), or a control plane or proxy did not answer; 2 usage error or no running mesh.";

const DASHBOARD_EXAMPLES: &str = "Examples:
  strait dashboard                     # http://127.0.0.1:20001/ until Ctrl-C
  strait dashboard --port 0            # any free port (the URL is printed)
  strait dashboard --state /tmp/mesh-a

The page refreshes every 2 seconds. Rates are per second over the last 10 seconds, from each
proxy's istio_requests_total and istio_tcp_* (every request counted once, by the client's
sidecar where there is one). Click an edge for its `strait check trace`.
JSON: /api/mesh (topology and rates), /api/trace?from=<cluster>/<namespace>/<workload>&service=<host>[&port=N][&path=/p].

Exit codes: 0 stopped with Ctrl-C; 2 usage error, no running mesh, or the port is taken.";

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Port to serve on, on 127.0.0.1 (0: any free port). Kiali's port by default.
    #[arg(long, default_value_t = 20001)]
    pub port: u16,
    #[command(flatten)]
    pub state: StateArg,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
    pub output: TableFormat,
    #[command(flatten)]
    pub state: StateArg,
    #[command(flatten)]
    pub clusters: ClusterArgs,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Make a shared root and an intermediate CA per cluster, in Istio's `cacerts` layout.
    #[command(after_help = CA_INIT_EXAMPLES)]
    Init(CaInitArgs),
}

const CA_INIT_EXAMPLES: &str = "Examples:
  strait ca init --clusters cluster1,cluster2 --out certs
  strait ca init --clusters cluster3 --out certs      # later: same root, cluster3 added
  kubectl --context=cluster1 apply -f certs/cluster1/cacerts.yaml

Writes DIR/root-cert.pem and DIR/root-key.pem (keep the key offline), and for each cluster
DIR/<cluster>/{ca-cert.pem,ca-key.pem,root-cert.pem,cert-chain.pem,cacerts.yaml}.
An existing root in DIR is reused; clusters already issued from it are kept.

Exit codes: 0 written; 2 usage error or unusable input (the message names the file).";

#[derive(Debug, Args)]
pub struct CaInitArgs {
    /// Cluster names, comma-separated; each gets its own intermediate CA.
    #[arg(long, value_name = "NAMES", value_delimiter = ',', required = true)]
    pub clusters: Vec<String>,
    /// Output directory: the root goes here, each cluster's files in a subdirectory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The mesh's trust domain, recorded in each intermediate.
    #[arg(long, value_name = "DOMAIN", default_value = "cluster.local")]
    pub trust_domain: String,
    /// Replace an existing root and re-issue every listed cluster from the new one.
    #[arg(long)]
    pub force: bool,
}
