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
    /// A tour: a two-cluster, two-network mesh, analyzed clean and then with common mistakes.
    Demo(DemoArgs),
    /// Find misconfigurations across every cluster of a mesh, from files.
    #[command(after_help = ANALYZE_EXAMPLES)]
    Analyze(AnalyzeArgs),
}

const ANALYZE_EXAMPLES: &str = "Examples:
  strait analyze examples/multicluster              # a mesh directory (mesh.yaml + one dir per cluster)
  strait analyze manifests/ extra.yaml              # plain files: one cluster
  helm template istio-app ./chart | strait analyze -
  strait analyze -o sarif mesh/ > strait.sarif      # for code-scanning dashboards
  strait analyze -S 'IST0102=Namespace default' mesh/

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
    /// Where to write the demo mesh (default: a new directory under the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// When to colour output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Files, directories (read recursively), a mesh directory, or `-` for stdin.
    #[arg(required_unless_present = "list_analyzers")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Lowest level that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = Threshold::Warning)]
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
