//! A compact JWS read without trusting it: the sections split, decoded and the registered
//! claims typed, with Envoy's checks in Envoy's order so that a bad token gets the same answer
//! it would get from an Istio sidecar. Nothing here is believed before `jwks` verifies the
//! signature.

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use super::Reason;

/// Base64url with or without padding: issuers differ, and Envoy accepts both.
pub(super) const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The `alg` values Envoy knows. ES512 and HS* parse here as there, but no key of a JWKS is
/// ever loaded for them (ring has no P-521; symmetric keys are refused), so such tokens end as
/// "Jwks doesn't have key to match kid or alg from Jwt".
const KNOWN_ALGS: [&str; 13] = [
    "ES256", "ES384", "ES512", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256",
    "PS384", "PS512", "EdDSA",
];

/// A parsed, not yet verified token.
#[derive(Debug)]
pub(super) struct Token<'a> {
    /// `header.payload`: the bytes the signature covers.
    signed: &'a str,
    payload_b64: &'a str,
    pub(super) alg: String,
    /// Absent or empty: any key may have signed it.
    pub(super) kid: Option<String>,
    pub(super) payload: Map<String, Value>,
    /// Empty when absent (then no provider matches).
    pub(super) iss: String,
    pub(super) sub: String,
    pub(super) aud: Vec<String>,
    /// 0 when absent, as in Envoy: no `exp` never expires, no `nbf` is always valid.
    pub(super) exp: u64,
    pub(super) nbf: u64,
    pub(super) signature: Vec<u8>,
}

impl<'a> Token<'a> {
    pub(super) fn parse(raw: &'a str) -> Result<Token<'a>, Reason> {
        let mut sections = raw.split('.');
        let (Some(h), Some(p), Some(s), None) = (
            sections.next(),
            sections.next(),
            sections.next(),
            sections.next(),
        ) else {
            return Err(Reason::BadFormat);
        };
        if h.is_empty() || p.is_empty() || s.is_empty() {
            return Err(Reason::BadFormat);
        }

        let header = B64.decode(h).map_err(|_| Reason::HeaderBadBase64)?;
        let header: Map<String, Value> =
            serde_json::from_slice(&header).map_err(|_| Reason::HeaderBadJson)?;
        let alg = match header.get("alg") {
            Some(Value::String(a)) => a.clone(),
            _ => return Err(Reason::HeaderBadAlg),
        };
        if !KNOWN_ALGS.contains(&alg.as_str()) {
            return Err(Reason::HeaderNotImplementedAlg);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()).filter(|k| !k.is_empty()),
            Some(_) => return Err(Reason::HeaderBadKid),
        };

        let payload = B64.decode(p).map_err(|_| Reason::PayloadBadBase64)?;
        let payload: Map<String, Value> =
            serde_json::from_slice(&payload).map_err(|_| Reason::PayloadBadJson)?;
        let iss = string(&payload, "iss", Reason::IssNotString)?;
        let sub = string(&payload, "sub", Reason::SubNotString)?;
        seconds(
            &payload,
            "iat",
            Reason::IatNotInteger,
            Reason::IatOutOfRange,
        )?;
        let nbf = seconds(
            &payload,
            "nbf",
            Reason::NbfNotInteger,
            Reason::NbfOutOfRange,
        )?;
        let exp = seconds(
            &payload,
            "exp",
            Reason::ExpNotInteger,
            Reason::ExpOutOfRange,
        )?;
        string(&payload, "jti", Reason::JtiNotString)?;
        let aud = match payload.get("aud") {
            None => Vec::new(),
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or(Reason::AudNotString)?,
            Some(_) => return Err(Reason::AudNotString),
        };

        let signature = B64.decode(s).map_err(|_| Reason::SignatureBadBase64)?;
        Ok(Token {
            signed: &raw[..h.len() + 1 + p.len()],
            payload_b64: p,
            alg,
            kid,
            payload,
            iss,
            sub,
            aud,
            exp,
            nbf,
            signature,
        })
    }

    pub(super) fn signed(&self) -> &str {
        self.signed
    }

    /// The payload section as the client sent it (what `outputPayloadToHeader` forwards).
    pub(super) fn payload_b64(&self) -> &str {
        self.payload_b64
    }

    /// Envoy's time check, `nbf` before `exp`, both widened by the clock skew.
    pub(super) fn check_time(&self, now: u64, skew: u64) -> Result<(), Reason> {
        if now.saturating_add(skew) < self.nbf {
            return Err(Reason::NotYetValid);
        }
        if self.exp != 0 && now > self.exp.saturating_add(skew) {
            return Err(Reason::Expired);
        }
        Ok(())
    }
}

/// An optional string claim: absent is empty, any other type is an error.
fn string(payload: &Map<String, Value>, name: &str, wrong: Reason) -> Result<String, Reason> {
    match payload.get(name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(wrong),
    }
}

/// An optional NumericDate. Envoy reads JSON numbers as doubles and truncates them, so `1.5`
/// is 1 and only negative or too large numbers are out of range.
fn seconds(
    payload: &Map<String, Value>,
    name: &str,
    wrong: Reason,
    range: Reason,
) -> Result<u64, Reason> {
    let Some(v) = payload.get(name) else {
        return Ok(0);
    };
    let Value::Number(n) = v else {
        return Err(wrong);
    };
    if let Some(u) = n.as_u64() {
        return Ok(u);
    }
    match n.as_f64() {
        // u64::MAX as f64 rounds up to 2^64, so `<` keeps the cast in range.
        Some(f) if f >= 0.0 && f < u64::MAX as f64 => Ok(f as u64),
        _ => Err(range),
    }
}
