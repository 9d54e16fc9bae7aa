//! strait's certificate authority: the certificates that let workloads in different
//! clusters prove who they are to each other.
//!
//! # The mental model
//!
//! ```text
//!   root (O=strait, CN=Root CA, 10 years)         one per mesh; its key stays offline
//!    ├── intermediate "cluster1" (5 years)          one per cluster: that control plane's
//!    │    └── workload leaf (24 h)                  `cacerts` Secret, Istio's plug-in CA
//!    └── intermediate "cluster2"
//!         └── workload leaf: spiffe://cluster.local/ns/sample/sa/sleep
//! ```
//!
//! Every workload trusts the root (the *trust bundle*, `root-cert.pem`, which may hold
//! several roots while one replaces another). A control plane holds only its cluster's
//! intermediate and signs short-lived workload certificates with it, so a workload in
//! cluster1 verifies a peer from cluster2 through the chain the peer presents:
//! leaf → cluster2's intermediate → the shared root. This is Istio's multi-cluster
//! trust model (`reference/istio-multicluster.md` §6), file for file.
//!
//! # What is here
//!
//! - [`init`]: the operator's side. Makes the shared root and one `cacerts` directory per
//!   cluster (`strait ca init`), reusing an existing root so clusters can be added later.
//! - [`Authority`]: the control plane's side. Loads a `cacerts` directory (or makes a
//!   self-signed root for a single cluster) and signs workload CSRs with
//!   [`Authority::sign_csr`], answering with the chain leaf first, as Istio's
//!   `CreateCertificate` does.
//! - [`WorkloadKey`], [`parse_chain`], [`validity`], [`renewal_time`]: the proxy's side.
//!   Make a key and CSR, read back the chain, and know when to renew (at half life).
//! - [`SpiffeId`], [`identity_of`]: the identity a certificate carries, as a peer sees it.
//!
//! All crypto is `ring` (through rcgen and x509-parser): one provider for the workspace.
//! Nothing here does network I/O; [`init`] and [`Authority::load`] touch the file system.

#![forbid(unsafe_code)]

mod authority;
mod csr;
mod error;
pub mod fuzzing;
mod identity;
mod init;
mod key;
mod pem;
mod profile;
mod workload;

use std::time::Duration;

pub use authority::Authority;
pub use error::{Blame, CaFileProblem, CsrError, Error, PemProblem};
pub use identity::{IdentityError, SpiffeId, identity_of};
pub use init::{ClusterAction, ClusterReport, InitOptions, InitReport, RootAction, init};
pub use pem::parse_chain;
pub use workload::{WorkloadKey, cert_expiry, renewal_time, validity};

/// The file names of Istio's plug-in CA layout (`cacerts` Secret keys and directory entries).
pub mod files {
    /// The signing (intermediate) certificate.
    pub const CA_CERT: &str = "ca-cert.pem";
    /// The signing certificate's private key.
    pub const CA_KEY: &str = "ca-key.pem";
    /// The trust bundle: one or more roots.
    pub const ROOT_CERT: &str = "root-cert.pem";
    /// The signing certificate followed by its issuers, up to the root.
    pub const CERT_CHAIN: &str = "cert-chain.pem";
    /// The shared root's key, written only by [`crate::init`] and never part of `cacerts`.
    pub const ROOT_KEY: &str = "root-key.pem";
    /// The four `cacerts` files as a Kubernetes Secret manifest, written by [`crate::init`].
    pub const CACERTS_YAML: &str = "cacerts.yaml";
}

/// Lifetime of a workload certificate when the request asks for none (Istio's
/// `DEFAULT_WORKLOAD_CERT_TTL`).
pub const DEFAULT_WORKLOAD_TTL: Duration = Duration::from_secs(24 * 3600);

/// Longest workload certificate lifetime granted; longer requests are refused, as Istio
/// refuses them (`MAX_WORKLOAD_CERT_TTL`).
pub const MAX_WORKLOAD_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// How far `notBefore` is set in the past, so that a peer whose clock runs a little behind
/// does not reject a certificate that was just issued.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
