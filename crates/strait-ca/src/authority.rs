//! The signing CA of one cluster: what istiod's CA does with a plugged-in `cacerts`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{CertificateParams, Issuer, KeyPair, PublicKeyData};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{CaFileProblem, Error, PemProblem};
use crate::files::{CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT};
use crate::identity::{SpiffeId, normalize_trust_domain};
use crate::{DEFAULT_WORKLOAD_TTL, MAX_WORKLOAD_TTL, csr, key, pem, profile};

/// A CA that signs workload certificates: a signing certificate and its key, the chain up
/// to a root, and the trust bundle. The key is parsed once, at load; signing a CSR costs
/// one ECDSA verification and one signature.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// Whether leaves get an authorityKeyIdentifier: only when the signing certificate has
    /// a subjectKeyIdentifier to match, or verifiers would look for a key that is not there.
    key_id: bool,
    ca_cert: CertificateDer<'static>,
    /// A leaf never outlives its issuer: verifiers reject it from then on anyway, and an
    /// honest `notAfter` makes the proxy renew in time.
    ca_not_after: OffsetDateTime,
    /// What follows the leaf in an answer: the signing certificate, any intermediates
    /// above it, and the root last.
    chain_pem: Vec<String>,
    roots: Vec<CertificateDer<'static>>,
    roots_pem: String,
}

/// One input file: its bytes, and the name errors give it.
struct Source<'a> {
    bytes: &'a [u8],
    path: PathBuf,
}

/// The files of Istio's plug-in CA.
struct Cacerts<'a> {
    ca_cert: Source<'a>,
    ca_key: Source<'a>,
    root_cert: Source<'a>,
    cert_chain: Option<Source<'a>>,
}

impl Authority {
    /// Loads Istio's `cacerts` layout from `dir`: `ca-cert.pem`, `ca-key.pem`,
    /// `root-cert.pem` (one or more roots: the trust bundle) and, optionally,
    /// `cert-chain.pem` (the signing certificate then its issuers). Checks that the key
    /// belongs to the certificate, that it is a CA still valid, and that the chain ends at
    /// one of the roots; an error names the file and the problem.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let read = |file: &str| -> Result<Option<Vec<u8>>, Error> {
            let path = dir.join(file);
            match std::fs::read(&path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(Error::Io {
                    path,
                    action: "reading",
                    source,
                }),
            }
        };
        let required = |file: &str| -> Result<Vec<u8>, Error> {
            read(file)?.ok_or_else(|| Error::ca_file(dir.join(file), CaFileProblem::Missing))
        };
        let ca_cert = required(CA_CERT)?;
        let ca_key = required(CA_KEY)?;
        let root_cert = required(ROOT_CERT)?;
        let cert_chain = read(CERT_CHAIN)?;
        let source = |bytes, file| Source {
            bytes,
            path: dir.join(file),
        };
        Self::build(&Cacerts {
            ca_cert: source(&ca_cert, CA_CERT),
            ca_key: source(&ca_key, CA_KEY),
            root_cert: source(&root_cert, ROOT_CERT),
            cert_chain: cert_chain.as_deref().map(|c| source(c, CERT_CHAIN)),
        })
    }

    /// Like [`Authority::load`], from the files' contents (a `cacerts` Secret's data).
    /// Errors name the Secret key.
    pub fn from_pem(
        ca_cert: &[u8],
        ca_key: &[u8],
        root_cert: &[u8],
        cert_chain: Option<&[u8]>,
    ) -> Result<Self, Error> {
        let source = |bytes, file| Source {
            bytes,
            path: PathBuf::from(file),
        };
        Self::build(&Cacerts {
            ca_cert: source(ca_cert, CA_CERT),
            ca_key: source(ca_key, CA_KEY),
            root_cert: source(root_cert, ROOT_CERT),
            cert_chain: cert_chain.map(|c| source(c, CERT_CHAIN)),
        })
    }

    /// A root kept as a certificate and key file pair (what [`crate::init`] writes): the
    /// certificate file is both the signing certificate and the trust bundle.
    pub(crate) fn load_root(cert: &Path, key: &Path) -> Result<Self, Error> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                action: "reading",
                source,
            })
        };
        let (cert_bytes, key_bytes) = (read(cert)?, read(key)?);
        let source = |bytes, path: &Path| Source {
            bytes,
            path: path.to_path_buf(),
        };
        Self::build(&Cacerts {
            ca_cert: source(&cert_bytes, cert),
            ca_key: source(&key_bytes, key),
            root_cert: source(&cert_bytes, cert),
            cert_chain: None,
        })
    }

    /// A new self-signed root that signs workloads directly: for a single cluster with no
    /// plug-in CA, as istiod does without `cacerts`. The subject is `O=<trust domain>`,
    /// CN=Root CA, the key ECDSA P-256, the lifetime 10 years. The key lives only in memory.
    pub fn self_signed(trust_domain: &str) -> Result<Self, Error> {
        let trust_domain = normalize_trust_domain(trust_domain)?;
        let key = profile::new_key()?;
        let params = profile::root(&trust_domain)?;
        let cert = params.self_signed(&key)?;
        let not_after = params.not_after;
        Ok(Self::assemble(
            Issuer::new(params, key),
            true,
            cert.der().clone(),
            not_after,
            vec![cert.der().clone()],
        ))
    }

    /// The trust bundle (`root-cert.pem`): every root, PEM, one after another. What a
    /// proxy must trust to verify any workload of the mesh.
    pub fn roots_pem(&self) -> &str {
        &self.roots_pem
    }

    /// The trust bundle as DER, for a rustls root store.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// The signing certificate (`ca-cert.pem`).
    pub fn ca_cert(&self) -> &CertificateDer<'static> {
        &self.ca_cert
    }

    /// Signs a workload's CSR (PEM) for `identity`, valid for `ttl` (zero means the 24 h
    /// default; more than 90 days is refused). Returns one PEM certificate per element,
    /// leaf first, then the intermediates, the root last: the shape of Istio's
    /// `IstioCertificateResponse.cert_chain`.
    ///
    /// Only the CSR's key is used, after its self-signature is verified; its subject and
    /// SANs are ignored, so the certificate names `identity` and nothing else. The caller
    /// is responsible for having authenticated `identity`.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        identity: &SpiffeId,
        ttl: Duration,
    ) -> Result<Vec<String>, Error> {
        let ttl = if ttl.is_zero() {
            DEFAULT_WORKLOAD_TTL
        } else {
            ttl
        };
        if ttl > MAX_WORKLOAD_TTL {
            return Err(Error::TtlTooLong {
                requested: ttl,
                max: MAX_WORKLOAD_TTL,
            });
        }
        self.check_not_expired()?;
        let key = csr::parse_pem(csr_pem.as_bytes())?;
        let mut params = profile::leaf(identity, ttl, self.ca_not_after)?;
        params.use_authority_key_identifier_extension = self.key_id;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(self.chain_from(cert.der()))
    }

    /// A serving certificate for `dns_names` (the control plane's own, which proxies verify
    /// against the mesh roots), with a fresh P-256 key. Returns the chain as
    /// [`Authority::sign_csr`] does, and the key as PKCS#8 PEM.
    pub fn issue_server(
        &self,
        dns_names: &[String],
        ttl: Duration,
    ) -> Result<(Vec<String>, String), Error> {
        self.check_not_expired()?;
        let key = profile::new_key()?;
        let mut params = profile::server(dns_names, ttl, self.ca_not_after)?;
        params.use_authority_key_identifier_extension = self.key_id;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((self.chain_from(cert.der()), key.serialize_pem()))
    }

    /// A control plane can outlive its CA certificate; refuse rather than issue certificates
    /// that expire before they are valid.
    fn check_not_expired(&self) -> Result<(), Error> {
        if self.ca_not_after <= OffsetDateTime::now_utc() {
            return Err(Error::CaExpired {
                not_after: self.ca_not_after.to_string(),
            });
        }
        Ok(())
    }

    /// `leaf` followed by the signing certificate and its issuers, PEM.
    fn chain_from(&self, leaf: &CertificateDer<'_>) -> Vec<String> {
        let mut chain = Vec::with_capacity(1 + self.chain_pem.len());
        chain.push(pem::encode_cert(leaf));
        chain.extend(self.chain_pem.iter().cloned());
        chain
    }

    /// Whether signed chains end at `root`.
    pub(crate) fn chains_to(&self, root: &CertificateDer<'_>) -> bool {
        self.chain_pem.last() == Some(&pem::encode_cert(root))
    }

    /// Signs a subordinate CA certificate (for [`crate::init`]), ending no later than this
    /// authority's own certificate: a CA that outlived its issuer would sign certificates no
    /// peer can verify.
    pub(crate) fn sign_ca(
        &self,
        params: &CertificateParams,
        key: &KeyPair,
    ) -> Result<CertificateDer<'static>, Error> {
        let mut params = params.clone();
        params.not_after = params.not_after.min(self.ca_not_after);
        Ok(params.signed_by(key, &self.issuer)?.der().clone())
    }

    fn assemble(
        issuer: Issuer<'static, KeyPair>,
        key_id: bool,
        ca_cert: CertificateDer<'static>,
        ca_not_after: OffsetDateTime,
        roots: Vec<CertificateDer<'static>>,
    ) -> Self {
        let roots_pem = roots.iter().map(|r| pem::encode_cert(r)).collect();
        Authority {
            issuer,
            key_id,
            chain_pem: vec![pem::encode_cert(&ca_cert)],
            ca_cert,
            ca_not_after,
            roots,
            roots_pem,
        }
    }

    fn build(files: &Cacerts<'_>) -> Result<Self, Error> {
        let bad = |file: &Source<'_>, problem| Error::ca_file(&file.path, problem);
        let (ca_file, key_file, root_file) = (&files.ca_cert, &files.ca_key, &files.root_cert);
        let roots = pem::certificates(root_file.bytes)
            .map_err(|p| bad(root_file, CaFileProblem::Pem(p)))?;
        // Istio uses the first certificate of ca-cert.pem; so do we.
        let ca_der = pem::certificates(ca_file.bytes)
            .map_err(|p| bad(ca_file, CaFileProblem::Pem(p)))?
            .into_iter()
            .next()
            .ok_or_else(|| bad(ca_file, CaFileProblem::Pem(PemProblem::NoCertificate)))?;
        // `certificates` has parsed every certificate already, so `x509` cannot fail here;
        // it is still handled, not unwrapped.
        let ca = x509(&ca_der).map_err(|p| bad(ca_file, p))?;
        if !ca.is_ca() {
            return Err(bad(ca_file, CaFileProblem::NotCa));
        }
        if let Ok(Some(ku)) = ca.key_usage()
            && !ku.value.key_cert_sign()
        {
            return Err(bad(ca_file, CaFileProblem::CannotSign));
        }
        let ca_not_after = ca.validity().not_after.to_datetime();
        if ca_not_after < OffsetDateTime::now_utc() {
            return Err(bad(
                ca_file,
                CaFileProblem::Expired {
                    not_after: ca.validity().not_after.to_string(),
                },
            ));
        }
        let key = key::parse_private_key(key_file.bytes).map_err(|p| bad(key_file, p))?;
        if key.der_bytes() != ca.public_key().subject_public_key.data.as_ref() {
            return Err(bad(
                key_file,
                CaFileProblem::KeyMismatch {
                    cert_file: ca_file.path.clone(),
                },
            ));
        }

        let chain_file = files.cert_chain.as_ref().unwrap_or(ca_file);
        let mut chain = match &files.cert_chain {
            Some(file) => {
                let chain =
                    pem::certificates(file.bytes).map_err(|p| bad(file, CaFileProblem::Pem(p)))?;
                if chain.first() != Some(&ca_der) {
                    return Err(bad(file, CaFileProblem::ChainStart));
                }
                chain
            }
            None => vec![ca_der.clone()],
        };
        for (i, pair) in chain.windows(2).enumerate() {
            let child = x509(&pair[0]).map_err(|p| bad(chain_file, p))?;
            let parent = x509(&pair[1]).map_err(|p| bad(chain_file, p))?;
            if child.verify_signature(Some(parent.public_key())).is_err() {
                return Err(bad(chain_file, CaFileProblem::ChainBroken { index: i + 1 }));
            }
        }
        let last = chain.last().unwrap_or(&ca_der);
        if !roots.contains(last) {
            let last = x509(last).map_err(|p| bad(chain_file, p))?;
            let root = roots
                .iter()
                .find(|r| {
                    x509(r).is_ok_and(|r| last.verify_signature(Some(r.public_key())).is_ok())
                })
                .ok_or_else(|| bad(chain_file, CaFileProblem::NoRoot))?;
            chain.push(root.clone());
        }

        let issuer = Issuer::from_ca_cert_der(&ca_der, key)
            .map_err(|_| bad(ca_file, CaFileProblem::SubjectForm))?;
        let key_id = ca
            .get_extension_unique(&OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
            .is_ok_and(|e| e.is_some());
        check_issuer_name(&issuer, &ca).map_err(|p| bad(ca_file, p))?;
        let mut authority = Self::assemble(issuer, key_id, ca_der, ca_not_after, roots);
        authority.chain_pem = chain.iter().map(|c| pem::encode_cert(c)).collect();
        Ok(authority)
    }
}

fn x509(der: &[u8]) -> Result<X509Certificate<'_>, CaFileProblem> {
    X509Certificate::from_der(der).map(|(_, c)| c).map_err(|e| {
        CaFileProblem::Pem(PemProblem::BadCertificate {
            index: 1,
            detail: e.to_string(),
        })
    })
}

/// rcgen rebuilds the issuer name from parsed attributes, which can lose repeated or
/// multi-valued attributes. rustls (webpki) matches issuer to subject byte for byte, so a
/// lossy copy would issue certificates no peer can chain: sign one probe certificate now
/// and compare, instead of finding out from failing handshakes.
fn check_issuer_name(
    issuer: &Issuer<'static, KeyPair>,
    ca: &X509Certificate<'_>,
) -> Result<(), CaFileProblem> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let probe = params
        .signed_by(issuer.key(), issuer)
        .map_err(|_| CaFileProblem::SubjectForm)?;
    let (_, probe) =
        X509Certificate::from_der(probe.der()).map_err(|_| CaFileProblem::SubjectForm)?;
    if probe.issuer().as_raw() != ca.subject().as_raw() {
        return Err(CaFileProblem::SubjectForm);
    }
    Ok(())
}

impl fmt::Debug for Authority {
    /// The key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = X509Certificate::from_der(&self.ca_cert)
            .map(|(_, c)| c.subject().to_string())
            .unwrap_or_default();
        f.debug_struct("Authority")
            .field("ca_subject", &subject)
            .field("ca_not_after", &self.ca_not_after)
            .field("chain_len", &self.chain_pem.len())
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}
