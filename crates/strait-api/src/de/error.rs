//! Errors raised while typing a YAML tree, each knowing the field path and position.

use std::fmt;

use crate::source::Pos;
use crate::suggest::did_you_mean;

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A field path such as `spec.http[0].route[1].destination.host`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// Parses the dotted form; keys with dots or brackets are written `["a.b/c"]`.
    pub fn parse(s: &str) -> FieldPath {
        let mut segs = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("[\"") {
                let end = r.find("\"]").unwrap_or(r.len());
                segs.push(Seg::Key(r[..end].to_string()));
                rest = r.get(end + 2..).unwrap_or("");
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').unwrap_or(r.len());
                match r[..end].parse() {
                    Ok(i) => segs.push(Seg::Index(i)),
                    Err(_) => segs.push(Seg::Key(r[..end].to_string())),
                }
                rest = r.get(end + 1..).unwrap_or("");
            } else {
                let r = rest.strip_prefix('.').unwrap_or(rest);
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if end > 0 {
                    segs.push(Seg::Key(r[..end].to_string()));
                }
                rest = &r[end..];
            }
        }
        FieldPath(segs)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) if k.contains(['.', '[', ']', '/', ' ']) || k.is_empty() => {
                    write!(f, "[\"{k}\"]")?
                }
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
            }
        }
        Ok(())
    }
}

/// A fatal typing error: this field could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeError {
    pub message: String,
    pub pos: Option<Pos>,
    pub path: FieldPath,
    /// When the error is a missing field: its name (so consequences of removing it are
    /// recognised and not reported twice).
    pub missing: Option<String>,
}

impl DeError {
    pub fn new(message: impl Into<String>) -> Self {
        DeError {
            message: message.into(),
            pos: None,
            path: FieldPath::default(),
            missing: None,
        }
    }

    pub(crate) fn is_located(&self) -> bool {
        self.pos.is_some()
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.0.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for DeError {}

impl serde::de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }

    fn invalid_type(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        DeError::new(format!("expected {exp}, found {unexp}"))
    }

    fn invalid_value(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        DeError::new(format!("invalid value {unexp}, expected {exp}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let hint = match did_you_mean(variant, expected) {
            Some(s) => format!(", did you mean \"{s}\"?"),
            None => String::new(),
        };
        DeError::new(format!(
            "unknown value \"{variant}\"{hint} (expected one of: {})",
            expected.join(", ")
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = DeError::new(format!("missing required field `{field}`"));
        e.missing = Some(field.to_string());
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_round_trip() {
        let s = "spec.http[0].route[1].destination.host";
        assert_eq!(FieldPath::parse(s).to_string(), s);
        let l = "metadata.labels[\"topology.istio.io/network\"]";
        let p = FieldPath::parse(l);
        assert_eq!(p.0.len(), 3);
        assert_eq!(p.to_string(), l);
    }
}
