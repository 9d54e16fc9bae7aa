//! Errors. Each says which input was at fault and, through [`Error::blame`], who must act:
//! the certificate service maps a caller's mistake to `InvalidArgument` and its own to
//! `Internal`, and an operator reads the file name and the problem.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::identity::IdentityError;

/// Who has to change something before the same call can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// The request (CSR, lifetime, identity) is wrong; retrying it unchanged fails again.
    Caller,
    /// CA files or command-line input are wrong; an operator must fix them.
    Config,
    /// The file system or the signer failed; a retry may succeed.
    Internal,
}

/// Anything this crate can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {action} failed", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A CA file (a `cacerts` entry, or the root kept by [`crate::init`]) is unusable.
    #[error("{}: {problem}", path.display())]
    CaFile {
        path: PathBuf,
        problem: CaFileProblem,
    },
    /// The signing certificate has expired since it was loaded; the CA must be replaced.
    #[error("the signing CA certificate expired on {not_after}; load a renewed cacerts")]
    CaExpired { not_after: String },
    /// A certificate signing request was refused.
    #[error("certificate signing request rejected: {0}")]
    Csr(#[from] CsrError),
    /// The requested certificate lifetime is longer than the CA grants.
    #[error(
        "requested certificate lifetime {}s exceeds the maximum {}s",
        requested.as_secs(),
        max.as_secs()
    )]
    TtlTooLong { requested: Duration, max: Duration },
    /// An identity or trust domain is malformed.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// PEM certificates (a chain from the control plane, or other input) are unusable.
    #[error("certificate chain: {0}")]
    Chain(PemProblem),
    /// A cluster name cannot name a directory and a certificate locality.
    #[error(
        "invalid cluster name {name:?}: {reason} (use letters, digits, '.', '-' and '_', not starting with '.')"
    )]
    ClusterName { name: String, reason: &'static str },
    /// A DNS name for a serving certificate is not a valid host name.
    #[error("invalid DNS name {name:?}: use dot-separated labels of letters, digits and '-'")]
    DnsName { name: String },
    /// Building or signing a certificate failed inside the signer.
    #[error("signing failed: {0}")]
    Sign(#[from] rcgen::Error),
}

impl Error {
    /// Who must act before the call can succeed.
    pub fn blame(&self) -> Blame {
        match self {
            Error::Csr(_) | Error::TtlTooLong { .. } | Error::Identity(_) | Error::Chain(_) => {
                Blame::Caller
            }
            Error::CaFile { .. }
            | Error::CaExpired { .. }
            | Error::ClusterName { .. }
            | Error::DnsName { .. } => Blame::Config,
            Error::Io { .. } | Error::Sign(_) => Blame::Internal,
        }
    }

    pub(crate) fn ca_file(path: impl Into<PathBuf>, problem: CaFileProblem) -> Self {
        Error::CaFile {
            path: path.into(),
            problem,
        }
    }
}

/// What is wrong with PEM that should hold certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PemProblem {
    /// The PEM framing is broken (missing END line, bad base64, ...).
    Syntax(String),
    /// No `CERTIFICATE` section.
    NoCertificate,
    /// Certificate number `index` (from 1) is not valid X.509.
    BadCertificate { index: usize, detail: String },
}

impl fmt::Display for PemProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemProblem::Syntax(d) => write!(f, "is not valid PEM ({d})"),
            PemProblem::NoCertificate => f.write_str("holds no PEM CERTIFICATE block"),
            PemProblem::BadCertificate { index, detail } => {
                write!(f, "certificate #{index} is not valid X.509 ({detail})")
            }
        }
    }
}

/// What is wrong with one CA file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaFileProblem {
    /// The file does not exist (every `cacerts` file but `cert-chain.pem` is required).
    Missing,
    /// The certificates in it do not parse.
    Pem(PemProblem),
    /// No private key, or one in a form or algorithm that cannot be used.
    BadKey(&'static str),
    /// The key is not the one certified by the named certificate file.
    KeyMismatch { cert_file: PathBuf },
    /// The certificate is not a CA (basicConstraints CA:FALSE or absent).
    NotCa,
    /// The certificate's key usage does not include keyCertSign.
    CannotSign,
    /// The certificate's validity has ended.
    Expired { not_after: String },
    /// No certificate in `root-cert.pem` signs the end of the chain.
    NoRoot,
    /// `cert-chain.pem` does not start with the certificate in `ca-cert.pem`.
    ChainStart,
    /// Certificate number `index` (from 1) of the chain is not signed by the next one.
    ChainBroken { index: usize },
    /// The subject name cannot be copied byte for byte into issued certificates.
    SubjectForm,
    /// One file of a pair exists without the other.
    Partial { missing: &'static str },
    /// A cluster's existing intermediate was not issued by the root being used.
    NotFromRoot,
}

impl fmt::Display for CaFileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaFileProblem::Missing => f.write_str("is missing"),
            CaFileProblem::Pem(p) => p.fmt(f),
            CaFileProblem::BadKey(why) => write!(f, "unusable private key: {why}"),
            CaFileProblem::KeyMismatch { cert_file } => write!(
                f,
                "this key does not belong to the certificate in {} (the two files come from different CAs)",
                cert_file.display()
            ),
            CaFileProblem::NotCa => f.write_str(
                "is not a CA certificate (basicConstraints CA:FALSE or absent); it cannot sign certificates",
            ),
            CaFileProblem::CannotSign => {
                f.write_str("its key usage does not allow signing certificates (keyCertSign)")
            }
            CaFileProblem::Expired { not_after } => write!(f, "expired on {not_after}"),
            CaFileProblem::NoRoot => f.write_str(
                "the certificate chain does not end at any root in root-cert.pem; peers could not verify the certificates it signs",
            ),
            CaFileProblem::ChainStart => {
                f.write_str("must start with the certificate in ca-cert.pem, then its issuers")
            }
            CaFileProblem::ChainBroken { index } => write!(
                f,
                "certificate #{index} is not signed by the certificate after it; list the chain leaf first, root last"
            ),
            CaFileProblem::SubjectForm => f.write_str(
                "its subject name repeats an attribute type or uses multi-valued or unusual attributes, which strait cannot copy exactly into the certificates it issues",
            ),
            CaFileProblem::Partial { missing } => write!(
                f,
                "exists but {missing} does not; restore it or remove both (and pass --force) to make a new root"
            ),
            CaFileProblem::NotFromRoot => f.write_str(
                "was not issued by the root in this output directory; remove its directory to issue a new intermediate, or pass --force to make a new root and re-issue every listed cluster",
            ),
        }
    }
}

/// Why a certificate signing request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// Not PEM, or no `CERTIFICATE REQUEST` block.
    #[error("not a PEM CERTIFICATE REQUEST{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NotPem { detail: Option<String> },
    /// The DER inside does not parse as PKCS#10.
    #[error("malformed PKCS#10 request: {0}")]
    Malformed(String),
    /// Bytes follow the request inside the PEM block.
    #[error("trailing bytes after the PKCS#10 request")]
    TrailingData,
    /// The request's signature does not verify with its own public key.
    #[error("its signature does not verify with its own public key (corrupted or tampered)")]
    BadSignature,
    /// The key is not ECDSA P-256.
    #[error("the key is {0}; workload keys must be ECDSA P-256")]
    UnsupportedKey(String),
}
