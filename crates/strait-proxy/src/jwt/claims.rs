//! What a verified token says, in the shape authorization reads it.
//!
//! Istio's AuthorizationPolicy reads claims from the payload Envoy stores after normalizing
//! it: space-delimited claims (`scope` and `permission` always, plus a rule's
//! `spaceDelimitedClaims`) become lists, so `request.auth.claims[scope]` can match one scope
//! among several. Headers copied from claims (`outputClaimToHeaders`) read the payload as sent.

use http::HeaderValue;
use serde_json::{Map, Value};

/// Claims Istio always splits on spaces (RFC 8693's `scope`, and Auth0's `permission`).
const ALWAYS_SPACE_DELIMITED: [&str; 2] = ["scope", "permission"];

/// The identity a verified token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// `iss`.
    pub issuer: String,
    /// `sub`; empty when the token has none.
    pub subject: String,
    /// `aud`, a single string read as a list of one.
    pub audiences: Vec<String>,
    /// `azp`, the party the token was issued to.
    pub presenter: Option<String>,
    /// The whole payload, space-delimited claims already split into lists.
    pub payload: Value,
}

impl Claims {
    pub(super) fn new(
        issuer: &str,
        subject: &str,
        audiences: &[String],
        payload: &Map<String, Value>,
        space_delimited: &[String],
    ) -> Claims {
        let mut payload = payload.clone();
        for name in ALWAYS_SPACE_DELIMITED
            .iter()
            .copied()
            .chain(space_delimited.iter().map(String::as_str))
        {
            split_claim(&mut payload, name);
        }
        Claims {
            issuer: issuer.to_string(),
            subject: subject.to_string(),
            audiences: audiences.to_vec(),
            presenter: payload
                .get("azp")
                .and_then(Value::as_str)
                .map(str::to_string),
            payload: Value::Object(payload),
        }
    }

    /// `<iss>/<sub>`: Istio's request principal.
    pub fn principal(&self) -> String {
        format!("{}/{}", self.issuer, self.subject)
    }

    /// The string values of a claim, nested names in order (`["a", "b"]` for
    /// `request.auth.claims[a][b]`): a string is one value (split on spaces for `scope` and
    /// `permission`, even in a payload built by hand), a list gives its string elements, a number
    /// or boolean its JSON text; anything else, or nothing there, gives none.
    pub fn claim(&self, path: &[String]) -> Vec<String> {
        let Some(v) = lookup(&self.payload, path.iter().map(String::as_str)) else {
            return Vec::new();
        };
        match v {
            Value::String(s)
                if path.len() == 1 && ALWAYS_SPACE_DELIMITED.contains(&path[0].as_str()) =>
            {
                split(s).map(str::to_string).collect()
            }
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Value::Number(n) => vec![n.to_string()],
            Value::Bool(b) => vec![b.to_string()],
            Value::Null | Value::Object(_) => Vec::new(),
        }
    }
}

/// The header value `outputClaimToHeaders` sets for `claim` (nested names joined by `.`), as
/// Envoy renders it: strings as they are, whole non-negative numbers as integers, other numbers
/// with six decimals, booleans as `true`/`false`. Lists, objects, empty strings and values that
/// cannot be header values give no header.
pub(super) fn header_value(payload: &Map<String, Value>, claim: &str) -> Option<HeaderValue> {
    let mut parts = claim.split('.');
    let first = payload.get(parts.next()?)?;
    let text = match lookup(first, parts)? {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_u64() {
            Some(u) => u.to_string(),
            None => format!("{:.6}", n.as_f64()?),
        },
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    };
    if text.is_empty() {
        return None;
    }
    HeaderValue::from_str(&text).ok()
}

/// Follows nested object members from `v`.
fn lookup<'v, 'p>(v: &'v Value, path: impl IntoIterator<Item = &'p str>) -> Option<&'v Value> {
    path.into_iter()
        .try_fold(v, |v, name| v.as_object()?.get(name))
}

/// Replaces a string claim by the list of its space-separated words.
fn split_claim(payload: &mut Map<String, Value>, name: &str) {
    if let Some(v) = member_mut(payload, name)
        && let Value::String(s) = v
    {
        *v = Value::Array(split(s).map(|w| Value::String(w.to_string())).collect());
    }
}

/// A top-level claim, or, when no claim has that name and it has dots, a nested one
/// (`realm.roles`).
fn member_mut<'v>(payload: &'v mut Map<String, Value>, name: &str) -> Option<&'v mut Value> {
    if payload.contains_key(name) {
        return payload.get_mut(name);
    }
    let mut parts = name.split('.');
    let mut v = payload.get_mut(parts.next()?)?;
    for p in parts {
        v = v.as_object_mut()?.get_mut(p)?;
    }
    Some(v)
}

fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(' ').filter(|w| !w.is_empty())
}
