//! JSON values written as a YAML stream, the form `kubectl apply -f -` and people read.
//!
//! Block style, two-space indents, lists at their key's indentation (as kubectl prints them).
//! A string is written plain only when no YAML reader can take it for anything else (a
//! conservative character set, never starting with a digit or a sign, never a YAML 1.1
//! boolean or null); multi-line strings become literal blocks (a kubeconfig in a remote
//! secret stays readable); everything else is double-quoted with JSON's escapes, which YAML's
//! double-quoted style shares.

use serde_json::Value;

/// The objects as one YAML stream, each document introduced by `---`.
pub fn to_stream(objects: &[Value]) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&to_document(o));
    }
    out
}

/// One value as a YAML document (no `---`).
pub fn to_document(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => list(&mut out, a, 0),
        other => {
            out.push_str(&inline(other, 0));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        // The first entry of a list item continues the `- ` line.
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str(&key(k));
        out.push(':');
        value_after_key(out, v, indent);
    }
}

fn list(out: &mut String, a: &[Value], indent: usize) {
    for v in a {
        if !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => map(out, m, indent + 2),
            Value::Array(inner) if !inner.is_empty() => list(out, inner, indent + 2),
            other => {
                out.push_str(&inline(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn value_after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            list(out, a, indent);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other, indent + 2));
            out.push('\n');
        }
    }
}

/// A scalar, an empty collection, or a literal block (which ends with its own newline
/// trimmed, so the caller's newline closes it).
fn inline(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn key(k: &str) -> String {
    if is_plain(k) {
        k.to_string()
    } else {
        quoted(k)
    }
}

fn string(s: &str, indent: usize) -> String {
    if is_plain(s) {
        return s.to_string();
    }
    if let Some(block) = literal_block(s, indent) {
        return block;
    }
    quoted(s)
}

fn quoted(s: &str) -> String {
    // JSON's string escapes are a subset of YAML's double-quoted ones.
    Value::String(s.to_string()).to_string()
}

/// `|` (one final newline) or `|-` (none); `None` when a literal block cannot carry `s`
/// exactly: leading spaces on the first line, trailing spaces, several final newlines,
/// control characters.
fn literal_block(s: &str, indent: usize) -> Option<String> {
    if !s.contains('\n') || s.starts_with([' ', '\n']) || s.ends_with("\n\n") {
        return None;
    }
    if s.chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{feff}')
    {
        return None;
    }
    let (body, chomp) = match s.strip_suffix('\n') {
        Some(b) => (b, "|"),
        None => (s, "|-"),
    };
    if body.lines().any(|l| l.ends_with([' ', '\t'])) {
        return None;
    }
    let mut out = String::from(chomp);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(line);
        }
    }
    Some(out)
}

fn is_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !first.is_ascii_alphabetic() && first != '/' {
        return false;
    }
    if !s.chars().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | ':' | '=' | '+' | '@')
    }) {
        return false;
    }
    // `: ` starts a mapping value; a colon inside a word (a URL, an image tag) does not.
    if s.ends_with(':') {
        return false;
    }
    // YAML 1.1 readers (still common) take these for booleans or null.
    const SPECIAL: &[&str] = &[
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
    ];
    !SPECIAL.contains(&s.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn block_style_with_safe_scalars() {
        let v = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "istiod", "labels": {"istio/multiCluster": "true"}},
            "spec": {
                "ports": [{"name": "grpc", "port": 15012}, {"name": "https", "port": 443}],
                "hosts": ["*.local"],
                "empty": [],
                "none": {},
                "flag": false,
                "version": "1.0",
            }
        });
        let text = to_document(&v);
        assert_eq!(
            text,
            "apiVersion: v1
kind: Service
metadata:
  labels:
    istio/multiCluster: \"true\"
  name: istiod
spec:
  empty: []
  flag: false
  hosts:
  - \"*.local\"
  none: {}
  ports:
  - name: grpc
    port: 15012
  - name: https
    port: 443
  version: \"1.0\"
"
        );
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        let v = json!({"stringData": {"c2": "apiVersion: v1\nkind: Config\n"}, "x": "a\nb"});
        assert_eq!(
            to_document(&v),
            "stringData:\n  c2: |\n    apiVersion: v1\n    kind: Config\nx: |-\n  a\n  b\n"
        );
        let awkward = json!({"k": " lead\nx", "t": "trail \nx", "n": "x\n\n"});
        assert_eq!(
            to_document(&awkward),
            "k: \" lead\\nx\"\n\"n\": \"x\\n\\n\"\nt: \"trail \\nx\"\n"
        );
    }

    #[test]
    fn ambiguous_words_are_quoted() {
        for s in [
            "yes", "No", "on", "null", "", "15012", "-x", "a: b", "a:", "#c", "x y",
        ] {
            assert!(!is_plain(s), "{s}");
        }
        for s in [
            "istio-system",
            "networking.istio.io/v1",
            "AUTO_PASSTHROUGH",
            "/inject",
            "https://10.0.0.1:6443",
            "ghcr.io/strait-mesh/strait:0.1.0",
            "LS0tLS1CRUdJTg==",
        ] {
            assert!(is_plain(s), "{s}");
        }
    }

    #[test]
    fn lists_of_lists_and_scalars() {
        let v = json!([[1, 2], "a"]);
        assert_eq!(to_document(&v), "- - 1\n  - 2\n- a\n");
    }
}
