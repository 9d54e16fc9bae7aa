//! A provider's JSON Web Key Set, loaded once per configuration, and signature verification
//! against it.
//!
//! Loading is lenient like Envoy's: a key that cannot be used is skipped and reported, the
//! others still verify. A set left with no key refuses every token, so an issuer whose keys
//! could not be fetched is never trusted by accident. The arithmetic is `jsonwebtoken`'s (ring
//! underneath); this file only decides which key may verify which `alg`, because the crate
//! trusts its caller to pair them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::Reason;
use super::token::{B64, Token};

/// ring verifies RSA signatures only with moduli of 2048 to 8192 bits.
const RSA_MIN_BITS: usize = 2048;

/// The usable keys of one provider.
#[derive(Clone, Debug, Default)]
pub(super) struct KeySet {
    keys: Vec<Key>,
}

#[derive(Clone)]
struct Key {
    kid: Option<String>,
    /// When the JWK names an `alg`, only tokens of that `alg` are tried with it.
    alg: Option<String>,
    kind: Kind,
    key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Kind {
    /// The algorithm this key verifies a token of `alg` with, if it can.
    fn algorithm(self, alg: &str) -> Option<Algorithm> {
        match (self, alg) {
            (Kind::Rsa, "RS256") => Some(Algorithm::RS256),
            (Kind::Rsa, "RS384") => Some(Algorithm::RS384),
            (Kind::Rsa, "RS512") => Some(Algorithm::RS512),
            (Kind::Rsa, "PS256") => Some(Algorithm::PS256),
            (Kind::Rsa, "PS384") => Some(Algorithm::PS384),
            (Kind::Rsa, "PS512") => Some(Algorithm::PS512),
            (Kind::P256, "ES256") => Some(Algorithm::ES256),
            (Kind::P384, "ES384") => Some(Algorithm::ES384),
            (Kind::Ed25519, "EdDSA") => Some(Algorithm::EdDSA),
            _ => None,
        }
    }
}

impl KeySet {
    /// Loads a JWKS document; the second value says what could not be used, for logs.
    pub(super) fn parse(json: &str) -> (KeySet, Vec<String>) {
        let mut problems = Vec::new();
        let mut keys = Vec::new();
        match document_keys(json) {
            Err(problem) => problems.push(problem),
            Ok(list) => {
                for (i, jwk) in list.iter().enumerate() {
                    match Key::parse(jwk) {
                        Ok(key) => keys.push(key),
                        Err(why) => {
                            let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or("");
                            problems.push(format!("JWKS key {i} (kid {kid:?}) skipped: {why}"));
                        }
                    }
                }
            }
        }
        if keys.is_empty() {
            problems.push("no usable key, every token of this issuer is refused".to_string());
        }
        (KeySet { keys }, problems)
    }

    /// Envoy's rule: a key is tried when its `kid` equals the token's (or either has none) and
    /// its `alg`, if named, is the token's. None tried: no matching key; tried but none
    /// verified: the signature is wrong.
    pub(super) fn verify(&self, token: &Token<'_>) -> Result<(), Reason> {
        // jsonwebtoken wants the signature as unpadded base64url; the token may have padded it.
        let signature = URL_SAFE_NO_PAD.encode(&token.signature);
        let mut matched = false;
        for key in &self.keys {
            if let (Some(want), Some(have)) = (&token.kid, &key.kid)
                && want != have
            {
                continue;
            }
            if key.alg.as_ref().is_some_and(|a| *a != token.alg) {
                continue;
            }
            matched = true;
            let Some(alg) = key.kind.algorithm(&token.alg) else {
                continue;
            };
            if key.kind == Kind::Ed25519 && token.signature.len() != 64 {
                return Err(Reason::Ed25519SignatureWrongLength);
            }
            let ok =
                jsonwebtoken::crypto::verify(&signature, token.signed().as_bytes(), &key.key, alg);
            if ok.unwrap_or(false) {
                return Ok(());
            }
        }
        Err(if matched {
            Reason::VerificationFails
        } else {
            Reason::NoMatchingKey
        })
    }
}

/// The `keys` array of a JWKS document.
fn document_keys(json: &str) -> Result<Vec<Value>, String> {
    if json.trim().is_empty() {
        return Err("no JWKS (it could not be fetched or was never given)".to_string());
    }
    let doc: Value =
        serde_json::from_str(json).map_err(|e| format!("JWKS is not valid JSON: {e}"))?;
    match doc.get("keys") {
        None => Err("JWKS has no [keys] field".to_string()),
        Some(Value::Array(keys)) => Ok(keys.clone()),
        Some(_) => Err("[keys] in JWKS is not an array".to_string()),
    }
}

impl Key {
    fn parse(jwk: &Value) -> Result<Key, String> {
        let Value::Object(jwk) = jwk else {
            return Err("not a JSON object".to_string());
        };
        let kty = match jwk.get("kty") {
            Some(Value::String(k)) => k.as_str(),
            Some(_) => return Err("[kty] is not a string".to_string()),
            None => return Err("[kty] is missing".to_string()),
        };
        // Envoy ignores a `kid` or `alg` of another type rather than refusing the key.
        let kid = optional(jwk, "kid");
        let alg = optional(jwk, "alg");
        let a = alg.as_deref().unwrap_or("");
        let (kind, key) = match kty {
            "RSA" => {
                if !a.is_empty() && !a.starts_with("RS") && !a.starts_with("PS") {
                    return Err(format!("[alg] {a} is not RS* or PS* for an RSA key"));
                }
                (Kind::Rsa, rsa(jwk)?)
            }
            "EC" => ec(jwk, a)?,
            "OKP" => {
                if !a.is_empty() && a != "EdDSA" {
                    return Err(format!("[alg] {a} is not EdDSA for an OKP key"));
                }
                match jwk.get("crv").and_then(Value::as_str) {
                    Some("Ed25519") => {}
                    Some(c) => return Err(format!("[crv] {c} is not supported for an OKP key")),
                    None => return Err("[crv] is missing or not a string".to_string()),
                }
                let x = bytes(jwk, "x")?;
                if x.len() != 32 {
                    return Err("[x] is not a 32-byte Ed25519 key".to_string());
                }
                let key = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&x))
                    .map_err(|e| e.to_string())?;
                (Kind::Ed25519, key)
            }
            // Anyone who can read a JWKS could sign with a key in it.
            "oct" => return Err("symmetric (oct) keys are not supported".to_string()),
            other => return Err(format!("[kty] {other} is not supported")),
        };
        Ok(Key {
            kid,
            alg,
            kind,
            key,
        })
    }
}

fn rsa(jwk: &Map<String, Value>) -> Result<DecodingKey, String> {
    let n = bytes(jwk, "n")?;
    let e = bytes(jwk, "e")?;
    let n = strip_zeros(&n);
    let e = strip_zeros(&e);
    // The exponents Envoy accepts; anything else is a sign of a broken key.
    if e != [3] && e != [1, 0, 1] {
        return Err("[e] is not 3 or 65537".to_string());
    }
    let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
    if bits < RSA_MIN_BITS {
        return Err(format!(
            "the RSA modulus has {bits} bits, fewer than the {RSA_MIN_BITS} verified here"
        ));
    }
    Ok(DecodingKey::from_rsa_raw_components(n, e))
}

/// An EC key, its curve from `crv` or else from `alg` (P-256 when neither), as Envoy reads it.
fn ec(jwk: &Map<String, Value>, alg: &str) -> Result<(Kind, DecodingKey), String> {
    if !alg.is_empty() && !alg.starts_with("ES") {
        return Err(format!("[alg] {alg} is not ES* for an EC key"));
    }
    let crv = match jwk.get("crv") {
        None => "",
        Some(Value::String(c)) => c.as_str(),
        Some(_) => return Err("[crv] is not a string".to_string()),
    };
    let kind = match (crv, alg) {
        ("P-256", "ES256" | "") | ("", "ES256" | "") => Kind::P256,
        ("P-384", "ES384" | "") | ("", "ES384") => Kind::P384,
        ("P-521", "ES512" | "") | ("", "ES512") => {
            return Err("P-521 (ES512) keys are not supported".to_string());
        }
        (c, a) => return Err(format!("[crv] {c:?} and [alg] {a:?} do not fit")),
    };
    let size = if kind == Kind::P256 { 32 } else { 48 };
    let x = bytes(jwk, "x")?;
    let y = bytes(jwk, "y")?;
    if x.len() != size || y.len() != size {
        return Err(format!("[x] and [y] are not {size} bytes each"));
    }
    let key =
        DecodingKey::from_ec_components(&URL_SAFE_NO_PAD.encode(&x), &URL_SAFE_NO_PAD.encode(&y))
            .map_err(|e| e.to_string())?;
    Ok((kind, key))
}

fn optional(jwk: &Map<String, Value>, name: &str) -> Option<String> {
    jwk.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A required base64url member.
fn bytes(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let Some(Value::String(s)) = jwk.get(name) else {
        return Err(format!("[{name}] is missing or not a string"));
    };
    B64.decode(s)
        .map_err(|e| format!("[{name}] is not base64url: {e}"))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}
