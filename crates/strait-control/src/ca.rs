//! Which CA the control plane signs with, in istiod's order: a plug-in CA directory given on
//! the command line, else the `cacerts` Secret in the cluster's `istio-system` manifests, else
//! a self-signed root made at start (single cluster only: nothing else will trust it), whose
//! trust bundle is then written out for proxies, as istiod publishes `istio-ca-root-cert`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use strait_ca::Authority;
use strait_model::Mesh;

use crate::ControlError;

/// Where the signing CA came from, for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaOrigin {
    Directory(PathBuf),
    Secret(String),
    SelfSigned,
}

impl std::fmt::Display for CaOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaOrigin::Directory(p) => write!(f, "plug-in CA {}", p.display()),
            CaOrigin::Secret(at) => write!(f, "cacerts Secret at {at}"),
            CaOrigin::SelfSigned => f.write_str("self-signed root (single cluster)"),
        }
    }
}

/// Finds the CA for the control plane of `cluster`.
pub fn load(
    dir: Option<&Path>,
    mesh: &Mesh,
    cluster: &str,
) -> Result<(Authority, CaOrigin), ControlError> {
    if let Some(dir) = dir {
        let a = Authority::load(dir).map_err(|e| ControlError::Ca(e.to_string()))?;
        return Ok((a, CaOrigin::Directory(dir.to_path_buf())));
    }
    let id = mesh.cluster_by_name(cluster).map(|c| c.id);
    let secret = mesh
        .ca_bundles
        .iter()
        .filter(|b| Some(b.cluster) == id)
        .map(|b| mesh.object(b.object))
        .next();
    if let Some(obj) = secret {
        let at = mesh.sources.display(obj.source.pos).to_string();
        let secret = obj
            .secret()
            .ok_or_else(|| ControlError::Ca(format!("{at}: cacerts is not a Secret")))?;
        let data = strait_model::trust::secret_data(secret);
        let get = |k: &str| {
            data.get(k)
                .map(Vec::as_slice)
                .ok_or_else(|| ControlError::Ca(format!("{at}: cacerts has no {k}")))
        };
        let a = Authority::from_pem(
            get(strait_ca::files::CA_CERT)?,
            get(strait_ca::files::CA_KEY)?,
            get(strait_ca::files::ROOT_CERT)?,
            data.get(strait_ca::files::CERT_CHAIN).map(Vec::as_slice),
        )
        .map_err(|e| ControlError::Ca(format!("{at}: {e}")))?;
        return Ok((a, CaOrigin::Secret(at)));
    }
    if mesh.is_multicluster() {
        return Err(ControlError::Ca(format!(
            "cluster {cluster} has no plug-in CA: a multi-cluster mesh needs a cacerts Secret per \
             cluster from one shared root (make them with `strait ca init`) or --ca-dir"
        )));
    }
    let a =
        Authority::self_signed(&mesh.trust_domain).map_err(|e| ControlError::Ca(e.to_string()))?;
    Ok((a, CaOrigin::SelfSigned))
}

/// The control plane's own serving certificate: signed by its CA, for the DNS names proxies
/// dial (`istiod.istio-system.svc`, ...), so a proxy verifies the control plane with nothing
/// but the mesh roots.
pub fn serving_cert(
    authority: &Authority,
    names: &[String],
    ttl: Duration,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ControlError> {
    let (chain_pem, key_pem) = authority
        .issue_server(names, ttl)
        .map_err(|e| ControlError::Ca(format!("serving certificate: {e}")))?;
    let chain =
        strait_ca::parse_chain(chain_pem.concat()).map_err(|e| ControlError::Ca(e.to_string()))?;
    let key = rustls::pki_types::pem::PemObject::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| ControlError::Ca(format!("serving key: {e}")))?;
    Ok((chain, key))
}
