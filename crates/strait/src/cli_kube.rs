//! Command-line definitions of the Kubernetes commands: `install`, `create-remote-secret`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

pub const INSTALL_EXAMPLES: &str = "Examples:
  strait install --dry-run --mesh examples/multicluster --cluster cluster1 | kubectl --context=cluster1 apply -f -
  strait install --dry-run --mesh examples/primary-remote --cluster cluster2 --primary-address 203.0.113.7
  strait install --dry-run --cluster east --network net-east --role primary --expose-istiod
  strait install --dry-run --cluster west --network net-west --role remote --primary-address gw.example.com
  strait install --helm-chart charts/strait --cluster cluster1 --network network1   # the Helm chart

Renders, for one cluster: the istio-system namespace (labelled with the network), the CRDs of
every Istio kind strait reads (generated from strait's own types), service accounts and RBAC,
the control plane (`istiod`) in a primary, the injector webhook, the east-west and ingress
gateways, and the Gateway resources that expose services (and, with remotes, the control
plane) across networks. Apply `cacerts` from `strait ca init` first.

Without --dry-run nothing is rendered: strait does not talk to clusters itself yet, so the
manifests are applied with kubectl.

Exit codes: 0 rendered; 2 usage error or unusable input (the message names the flag or file).";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClusterRole {
    /// Runs a control plane.
    Primary,
    /// Configured by a primary's control plane, reached through its east-west gateway.
    Remote,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ManifestFormat {
    /// A YAML stream, one document per object.
    Yaml,
    /// One JSON `List` object.
    Json,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print the manifests instead of applying them.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply through this kubeconfig (default: KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dry_run", "helm_chart"])]
    pub kubeconfig: Option<PathBuf>,
    /// Apply to this context of the kubeconfig (default: its current context).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["dry_run", "helm_chart"])]
    pub context: Option<String>,
    /// A mesh directory: the cluster's network, role, mesh ID and trust domain come from its
    /// mesh.yaml.
    #[arg(long, value_name = "DIR")]
    pub mesh: Option<PathBuf>,
    /// The cluster to install (its name in the mesh: Istio's cluster ID).
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    /// The cluster's network (without --mesh; default: none, one flat network).
    #[arg(long, value_name = "NETWORK", conflicts_with = "mesh")]
    pub network: Option<String>,
    /// The cluster's role (without --mesh).
    #[arg(long, value_enum, conflicts_with = "mesh")]
    pub role: Option<ClusterRole>,
    /// For a remote: the address (IP or DNS name) of its primary's east-west gateway.
    #[arg(long, value_name = "ADDR")]
    pub primary_address: Option<String>,
    /// For a remote: its primary's cluster name, which then alone may lead it (without
    /// --mesh; default: any primary that reads it).
    #[arg(long, value_name = "NAME", conflicts_with = "mesh")]
    pub primary_cluster: Option<String>,
    /// For a primary: expose its control plane through its east-west gateway, for remote
    /// clusters (implied with --mesh when a remote names this cluster as its primary).
    #[arg(long, conflicts_with = "mesh")]
    pub expose_istiod: bool,
    /// The mesh ID (without --mesh; default: the trust domain).
    #[arg(long, value_name = "ID", conflicts_with = "mesh")]
    pub mesh_id: Option<String>,
    /// The trust domain (without --mesh).
    #[arg(long, value_name = "DOMAIN", conflicts_with = "mesh")]
    pub trust_domain: Option<String>,
    /// The strait image for the control plane and gateways (default: this version's).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    #[arg(short, long, value_enum, default_value_t = ManifestFormat::Yaml)]
    pub output: ManifestFormat,
    /// Write the Helm chart of these manifests to DIR instead (templates from the same
    /// renderer, values.yaml defaults from these options); its generated files are replaced.
    #[arg(long, value_name = "DIR")]
    pub helm_chart: Option<PathBuf>,
}

pub const REMOTE_SECRET_EXAMPLES: &str = "Examples:
  strait create-remote-secret --name cluster2 --context=cluster2 | kubectl --context=cluster1 apply -f -
  strait create-remote-secret --name cluster2 --kubeconfig aks.yaml --token-file reader.token \\
      --server https://cluster2-api.example.com:443

Run it against the cluster to be read; apply its output in every cluster whose control plane
must read it (each other primary; in primary-remote, the primary). The kubeconfig it carries
authenticates with a bearer token: the --token-file (the reader account's token, see README
\"Run on Kubernetes\"), else the kubeconfig user's own token. Cloud logins (exec plugins such as
aws or kubelogin) cannot be used: a control plane refuses them in a remote secret.

Exit codes: 0 written; 2 usage error or unusable kubeconfig (the message names the file and user).";

#[derive(Debug, Args)]
pub struct CreateRemoteSecretArgs {
    /// The cluster's name in the mesh (its cluster ID); the Secret's data key.
    #[arg(long, value_name = "CLUSTER")]
    pub name: String,
    /// The kubeconfig (default: the first file of $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// The API server address other clusters' control planes should use.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// A file holding the bearer token to use instead of the kubeconfig user's.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}
