//! The spanned YAML tree every resource is read from.
//!
//! Scalars keep their raw text and style; their type is decided only when a typed field asks
//! for one. That is how a wrong type can be reported the way `kubectl` would see it (a plain
//! `yes` is a boolean to Kubernetes' YAML reader, `"80"` is a string), with the position of the
//! exact scalar.

use crate::source::Pos;

/// A node of a YAML document and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Box<[Node]>),
    Map(Box<[(Node, Node)]>),
}

/// A scalar's text as written, and whether it was quoted (quoted and block scalars are always
/// strings; plain ones are resolved by the rules below).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scalar {
    pub text: Box<str>,
    pub plain: bool,
}

/// What a scalar means once resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

impl Resolved<'_> {
    /// A short noun for messages: "a string", "an integer", ...
    pub fn describe(&self) -> &'static str {
        match self {
            Resolved::Null => "null",
            Resolved::Bool(_) => "a boolean",
            Resolved::Int(_) | Resolved::UInt(_) => "an integer",
            Resolved::Float(_) => "a number",
            Resolved::Str(_) => "a string",
        }
    }
}

impl Scalar {
    /// Resolves a plain scalar the way Kubernetes' YAML reader does (YAML 1.1 booleans such as
    /// `yes`/`on`, YAML 1.2 numbers and nulls), so a value that `kubectl apply` would reject as the
    /// wrong type is reported here too.
    pub fn resolve(&self) -> Resolved<'_> {
        resolve_scalar(&self.text, self.plain)
    }
}

/// What a scalar written as `text` means: a quoted or block scalar is always a string, a plain
/// one is resolved as [`Scalar::resolve`] says.
pub(crate) fn resolve_scalar(text: &str, plain: bool) -> Resolved<'_> {
    if plain {
        resolve_plain(text)
    } else {
        Resolved::Str(text)
    }
}

fn resolve_plain(t: &str) -> Resolved<'_> {
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" | "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Resolved::Bool(true);
        }
        "false" | "False" | "FALSE" | "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    let first = t.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Resolved::Str(t);
    }
    if let Some(v) = parse_int(t) {
        return v;
    }
    if is_float(t)
        && let Ok(f) = t.replace('_', "").parse::<f64>()
    {
        return Resolved::Float(f);
    }
    Resolved::Str(t)
}

fn parse_int(t: &str) -> Option<Resolved<'static>> {
    let (neg, body) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) = if let Some(h) = body.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = body.strip_prefix("0o") {
        (8, o)
    } else if let Some(b) = body.strip_prefix("0b") {
        (2, b)
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|b| b.is_ascii_digit()) {
        // YAML 1.1 octal, as Kubernetes' reader still treats `0755`.
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || digits.starts_with('_') {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u64::from_str_radix(&clean, radix).ok()?;
    if neg {
        if mag <= i64::MAX as u64 {
            Some(Resolved::Int(-(mag as i64)))
        } else if mag == i64::MAX as u64 + 1 {
            Some(Resolved::Int(i64::MIN))
        } else {
            None
        }
    } else if mag <= i64::MAX as u64 {
        Some(Resolved::Int(mag as i64))
    } else {
        Some(Resolved::UInt(mag))
    }
}

fn is_float(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let mantissa_ok = match frac {
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && digits(int),
    };
    let exp_ok = match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        }
    };
    mantissa_ok && exp_ok && (frac.is_some() || exp.is_some())
}

impl Node {
    pub fn scalar(pos: Pos, text: impl Into<Box<str>>, plain: bool) -> Self {
        Node {
            pos,
            value: Value::Scalar(Scalar {
                text: text.into(),
                plain,
            }),
        }
    }

    /// The scalar's text when this node is a scalar resolving to a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => match s.resolve() {
                Resolved::Str(v) => Some(v),
                _ => None,
            },
            _ => None,
        }
    }

    /// The raw text of any scalar (for map keys, which Kubernetes always reads as strings).
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.resolve() == Resolved::Null)
    }

    /// Looks up a key of a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.scalar_text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Mutable lookup, used when an input is normalised before typing.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(entries) => entries
                .iter_mut()
                .rev()
                .find(|(k, _)| k.scalar_text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short noun for the node's type, for messages.
    pub fn describe(&self) -> &'static str {
        match &self.value {
            Value::Scalar(s) => s.resolve().describe(),
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Number of nodes in this subtree (used to bound alias expansion).
    pub fn count(&self) -> usize {
        self.size().0
    }

    /// Number of nodes in this subtree and the length of its scalars' text (walked with a
    /// stack, so depth costs no recursion).
    pub fn size(&self) -> (usize, usize) {
        let (mut nodes, mut text) = (0, 0);
        let mut stack = vec![self];
        while let Some(n) = stack.pop() {
            nodes += 1;
            match &n.value {
                Value::Scalar(s) => text += s.text.len(),
                Value::Seq(items) => stack.extend(items.iter()),
                Value::Map(entries) => {
                    for (k, v) in entries.iter() {
                        stack.push(k);
                        stack.push(v);
                    }
                }
            }
        }
        (nodes, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str) -> Resolved<'_> {
        resolve_plain(t)
    }

    #[test]
    fn resolves_like_kubernetes() {
        assert_eq!(r(""), Resolved::Null);
        assert_eq!(r("~"), Resolved::Null);
        assert_eq!(r("yes"), Resolved::Bool(true));
        assert_eq!(r("Off"), Resolved::Bool(false));
        assert_eq!(r("80"), Resolved::Int(80));
        assert_eq!(r("-3"), Resolved::Int(-3));
        assert_eq!(r("0x1F"), Resolved::Int(31));
        assert_eq!(r("0755"), Resolved::Int(0o755));
        assert_eq!(r("1_000"), Resolved::Int(1000));
        assert_eq!(r("1.0"), Resolved::Float(1.0));
        assert_eq!(r(".5"), Resolved::Float(0.5));
        assert_eq!(r("1e3"), Resolved::Float(1000.0));
        assert_eq!(r("18446744073709551615"), Resolved::UInt(u64::MAX));
        assert_eq!(r("v1"), Resolved::Str("v1"));
        assert_eq!(r("1.2.3"), Resolved::Str("1.2.3"));
        assert_eq!(r("10s"), Resolved::Str("10s"));
        assert_eq!(r("-"), Resolved::Str("-"));
        assert_eq!(r("."), Resolved::Str("."));
        assert_eq!(r("+"), Resolved::Str("+"));
        assert_eq!(r("1e"), Resolved::Str("1e"));
        assert_eq!(r("0x"), Resolved::Str("0x"));
    }

    #[test]
    fn quoted_is_always_a_string() {
        let s = Scalar {
            text: "80".into(),
            plain: false,
        };
        assert_eq!(s.resolve(), Resolved::Str("80"));
    }
}
