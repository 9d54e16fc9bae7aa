//! SPIFFE identities in Istio's shape: `spiffe://<trust-domain>/ns/<namespace>/sa/<sa>`.
//!
//! strait-model has its own `spiffe_id` string builder for config; this crate keeps a typed,
//! validated copy so that it stands alone (a CA must not pull in the mesh model).

use std::fmt;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

const SCHEME: &str = "spiffe://";
/// The SPIFFE spec's limits (SPIFFE-ID §2.1, §2.3).
const MAX_ID_LEN: usize = 2048;
const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// A workload identity: the one URI SAN of its certificate.
///
/// The fields are private so that every value is a valid SPIFFE ID: build one with
/// [`SpiffeId::new`] or [`SpiffeId::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: String,
    namespace: String,
    service_account: String,
}

/// Why a string is not a SPIFFE identity strait accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
    #[error(
        "{0:?} is not a SPIFFE identity of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>"
    )]
    Shape(String),
    /// One part has characters or a length SPIFFE does not allow.
    #[error("invalid {part} {value:?} in a SPIFFE identity: {reason}")]
    Part {
        part: &'static str,
        value: String,
        reason: &'static str,
    },
}

impl SpiffeId {
    /// An identity from its parts. `@` in the trust domain becomes `.`, as Istio does
    /// (`pkg/spiffe`), so that a mesh config value like `cluster@local` still works.
    pub fn new(
        trust_domain: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, IdentityError> {
        let trust_domain = normalize_trust_domain(trust_domain)?;
        check_segment("namespace", namespace)?;
        check_segment("service account", service_account)?;
        let id = SpiffeId {
            trust_domain,
            namespace: namespace.to_string(),
            service_account: service_account.to_string(),
        };
        if id.to_string().len() > MAX_ID_LEN {
            return Err(IdentityError::Part {
                part: "identity",
                value: shorten(&id.to_string()),
                reason: "longer than 2048 bytes",
            });
        }
        Ok(id)
    }

    /// Parses exactly `spiffe://<td>/ns/<ns>/sa/<sa>`: no other path, query, port or
    /// percent-encoding, since a peer comparing identities compares these strings.
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        let shape = || IdentityError::Shape(shorten(s));
        let rest = s.strip_prefix(SCHEME).ok_or_else(shape)?;
        let mut parts = rest.split('/');
        let (Some(td), Some("ns"), Some(ns), Some("sa"), Some(sa), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(shape());
        };
        SpiffeId::new(td, ns, sa)
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn service_account(&self) -> &str {
        &self.service_account
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

impl FromStr for SpiffeId {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpiffeId::parse(s)
    }
}

/// Checks and normalizes a trust domain (`@` → `.`); SPIFFE allows lowercase letters,
/// digits, `.`, `-` and `_`.
pub(crate) fn normalize_trust_domain(td: &str) -> Result<String, IdentityError> {
    let td = td.replace('@', ".");
    let bad = |reason| IdentityError::Part {
        part: "trust domain",
        value: shorten(&td),
        reason,
    };
    if td.is_empty() {
        return Err(bad("empty"));
    }
    if td.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(bad("longer than 255 bytes"));
    }
    if !td
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(bad(
            "only lowercase letters, digits, '.', '-' and '_' are allowed",
        ));
    }
    Ok(td)
}

fn check_segment(part: &'static str, value: &str) -> Result<(), IdentityError> {
    let bad = |reason| IdentityError::Part {
        part,
        value: shorten(value),
        reason,
    };
    if value.is_empty() {
        return Err(bad("empty"));
    }
    if value == "." || value == ".." {
        return Err(bad("'.' and '..' are not allowed"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(bad("only letters, digits, '.', '-' and '_' are allowed"));
    }
    Ok(())
}

/// Keeps error messages readable when the input is a megabyte of garbage.
fn shorten(s: &str) -> String {
    const MAX: usize = 120;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The identity a certificate proves: its URI SAN, when there is exactly one and it is a
/// SPIFFE identity in Istio's shape. `None` for anything else, including a certificate
/// with several URI SANs (an X.509-SVID has exactly one, so more is ambiguous) and bytes
/// that are not a certificate.
pub fn identity_of(cert_der: &[u8]) -> Option<SpiffeId> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    let mut uris = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(u) => Some(*u),
        _ => None,
    });
    let (Some(uri), None) = (uris.next(), uris.next()) else {
        return None;
    };
    SpiffeId::parse(uri).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let id = SpiffeId::new("cluster.local", "sample", "sleep").expect("valid");
        assert_eq!(id.to_string(), "spiffe://cluster.local/ns/sample/sa/sleep");
        assert_eq!(SpiffeId::parse(&id.to_string()), Ok(id.clone()));
        assert_eq!("spiffe://cluster.local/ns/sample/sa/sleep".parse(), Ok(id));
    }

    #[test]
    fn at_in_trust_domain_becomes_dot() {
        let id = SpiffeId::parse("spiffe://cluster@local/ns/a/sa/b").expect("valid");
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(id.to_string(), "spiffe://cluster.local/ns/a/sa/b");
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in [
            "",
            "spiffe://",
            "http://cluster.local/ns/a/sa/b",
            "SPIFFE://cluster.local/ns/a/sa/b",
            "spiffe://cluster.local/ns/a/sa/b/",
            "spiffe://cluster.local/ns/a/sa/b/c",
            "spiffe://cluster.local/ns/a/sa",
            "spiffe://cluster.local/sa/b/ns/a",
            "spiffe://cluster.local/ns//sa/b",
            "spiffe:///ns/a/sa/b",
            "spiffe://Cluster.local/ns/a/sa/b",
            "spiffe://cluster.local:8080/ns/a/sa/b",
            "spiffe://cluster.local/ns/a%2f/sa/b",
            "spiffe://cluster.local/ns/../sa/b",
            "spiffe://cluster.local/ns/a/sa/b?x=1",
            "spiffe://cluster.local/ns/ä/sa/b",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn errors_name_the_part() {
        let e = SpiffeId::new("cluster.local", "a b", "sa").expect_err("space");
        assert!(e.to_string().contains("namespace \"a b\""), "{e}");
    }

    #[test]
    fn long_input_is_shortened_in_errors() {
        let long = "x".repeat(10_000);
        let e = SpiffeId::parse(&long).expect_err("not an id");
        assert!(e.to_string().len() < 400);
    }

    #[test]
    fn identity_of_garbage_is_none() {
        assert_eq!(identity_of(b""), None);
        assert_eq!(identity_of(b"not a certificate"), None);
    }
}
