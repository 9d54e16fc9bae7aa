//! Suppressions, as istioctl takes them: `--suppress "CODE=Kind name.namespace"` (the resource
//! part may use `*` globs) and the `galley.istio.io/analyze-suppress` annotation.

use crate::finding::Finding;

pub const ANNOTATION: &str = "galley.istio.io/analyze-suppress";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    pub code: String,
    pub resource: String,
}

impl Suppression {
    /// Parses `CODE=Kind name.namespace`.
    pub fn parse(s: &str) -> Result<Suppression, String> {
        let (code, resource) = s.split_once('=').ok_or_else(|| {
            format!("suppression \"{s}\" must look like CODE=\"Kind name.namespace\"")
        })?;
        let code = code.trim();
        if code.is_empty() || resource.trim().is_empty() {
            return Err(format!(
                "suppression \"{s}\" must look like CODE=\"Kind name.namespace\""
            ));
        }
        Ok(Suppression {
            code: code.to_string(),
            resource: resource.trim().to_string(),
        })
    }

    pub fn matches(&self, f: &Finding) -> bool {
        if !glob(&self.code, f.code) {
            return false;
        }
        match &f.resource {
            Some(r) => glob(&self.resource, &r.suppress_form()),
            None => self.resource == "*",
        }
    }
}

/// Whether an annotation value (`IST0101,IST0102` or `*`) suppresses `code`.
pub fn annotation_suppresses(value: &str, code: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|c| c == "*" || c == code)
}

/// `*` matches any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("Pod *.default", "Pod a.default"));
        assert!(glob("*", "anything"));
        assert!(!glob("Pod *.default", "Pod a.other"));
        assert!(glob("IST01*", "IST0102"));
    }

    #[test]
    fn parse() {
        let s = Suppression::parse("IST0102=Namespace frod").expect("valid");
        assert_eq!(s.code, "IST0102");
        assert!(Suppression::parse("IST0102").is_err());
        assert!(annotation_suppresses("IST0101, IST0102", "IST0102"));
        assert!(annotation_suppresses("*", "STR0101"));
    }
}
