//! JWT verification for Istio's RequestAuthentication, with the behaviour Istio gets from
//! Envoy's `jwt_authn` filter.
//!
//! Each `jwtRules` entry that applies to the workload is a provider: an issuer, the audiences it
//! may address, its key set, and where its tokens travel. Per request:
//! 1. headers the providers *output* (payload and claim headers) are removed first, whatever
//!    else happens, so the application can trust them to come from this proxy;
//! 2. tokens are collected from every place some provider looks in; none at all is
//!    [`Authn::NoToken`], which RequestAuthentication alone lets through (requiring a token is
//!    an AuthorizationPolicy's job);
//! 3. each token is parsed without trust; its `iss` picks the provider among those that look
//!    where it was found; then, in Envoy's order, time (60 s skew), audience, signature;
//! 4. every token must pass, or the request is [`Authn::Rejected`] with Envoy's 401/403 body:
//!    a good token next to a bad one would otherwise let the application read the bad one;
//! 5. once all pass, headers are rewritten as Envoy does and the first token's [`Claims`] are
//!    returned for authorization.
//!
//! A provider whose key set is missing or unusable fails closed: its tokens are refused, never
//! let through unverified, and [`Verifier::problems`] says why.
//!
//! Not mirrored: a token in a query parameter stays in the request target (the proxy does not
//! rewrite the path here); `fromCookies` is not compiled.

mod claims;
mod extract;
mod jwks;
mod reason;
mod token;

#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use strait_config::JwtProvider;

pub use claims::Claims;
pub use reason::{Reason, Rejection};

use extract::Locations;
use jwks::KeySet;
use token::Token;

/// Envoy's default `clock_skew_seconds`, which Istio leaves alone.
const CLOCK_SKEW_SECS: u64 = 60;

/// The providers of one configuration, ready to verify. Built once per snapshot.
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    providers: Vec<Provider>,
    locations: Locations,
    /// Every provider's output headers.
    sanitize: Vec<HeaderName>,
    problems: Vec<String>,
    /// The first provider whose rule requires a token (`presence: REQUIRED`).
    required: Option<String>,
}

#[derive(Clone, Debug)]
struct Provider {
    /// `namespace/name issuer X`, for logs.
    name: String,
    issuer: String,
    /// Compared as Envoy does: without `http://`/`https://` and a trailing `/`.
    audiences: Vec<String>,
    keys: KeySet,
    payload_header: Option<HeaderName>,
    forward: bool,
    claim_headers: Vec<(HeaderName, String)>,
    space_delimited: Vec<String>,
}

/// The outcome for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authn {
    /// No token anywhere a provider looks.
    NoToken,
    /// Every token verified; the claims of the first.
    Verified(Claims),
    /// A token was refused: answer with [`Rejection::status`] and [`Rejection::body`].
    Rejected(Rejection),
}

impl Verifier {
    /// Prepares the providers. Never fails: a provider whose JWKS is empty or unusable refuses
    /// every token of its issuer, and the reason is kept for [`Verifier::problems`].
    pub fn new(providers: &[JwtProvider]) -> Verifier {
        let mut problems = Vec::new();
        let mut sanitize: Vec<HeaderName> = Vec::new();
        let mut out = Vec::with_capacity(providers.len());
        for p in providers {
            let name = format!("{} issuer {}", p.policy, p.issuer);
            let (keys, key_problems) = KeySet::parse(&p.jwks);
            problems.extend(
                key_problems
                    .into_iter()
                    .map(|k| format!("{name}: {k} (JWKS from {})", p.jwks_source)),
            );
            let mut header = |h: &str| match HeaderName::from_bytes(h.as_bytes()) {
                Ok(h) => {
                    if !sanitize.contains(&h) {
                        sanitize.push(h.clone());
                    }
                    Some(h)
                }
                Err(_) => {
                    problems.push(format!("{name}: output header {h:?} is not a header name"));
                    None
                }
            };
            let payload_header = Some(p.output_payload_to_header.as_str())
                .filter(|h| !h.is_empty())
                .and_then(&mut header);
            let claim_headers = p
                .output_claim_to_headers
                .iter()
                .filter_map(|(h, claim)| Some((header(h)?, claim.clone())))
                .collect();
            out.push(Provider {
                name,
                issuer: p.issuer.clone(),
                audiences: p.audiences.iter().map(|a| sanitize_audience(a)).collect(),
                keys,
                payload_header,
                forward: p.forward_original_token,
                claim_headers,
                space_delimited: p.space_delimited_claims.clone(),
            });
        }
        let locations = Locations::new(providers, &mut problems);
        let required = providers
            .iter()
            .find(|p| p.required)
            .map(|p| format!("{} issuer {}", p.policy, p.issuer));
        Verifier {
            providers: out,
            locations,
            sanitize,
            problems,
            required,
        }
    }

    /// No provider: nothing is looked for, every request is [`Authn::NoToken`].
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Why some providers cannot verify some or any tokens, for the proxy's log, e.g.
    /// `ns/name issuer X: JWKS is not valid JSON: ... (JWKS from https://...)`.
    pub fn problems(&self) -> Vec<String> {
        self.problems.clone()
    }

    /// Finds the request's tokens, verifies them, and rewrites the headers as Envoy does:
    /// removes the token's header unless `forwardOriginalToken`, sets
    /// `outputPayloadToHeader` to the payload as sent (base64url) and `outputClaimToHeaders`.
    /// Incoming copies of those output headers are always removed first. `query` is the
    /// request target's query, without `?`.
    pub fn authenticate(
        &self,
        headers: &mut HeaderMap,
        query: Option<&str>,
        now: SystemTime,
    ) -> Authn {
        for h in &self.sanitize {
            headers.remove(h);
        }
        if self.providers.is_empty() {
            return Authn::NoToken;
        }
        let found = self.locations.find(headers, query);
        if found.is_empty() {
            return match &self.required {
                Some(p) => Authn::Rejected(Rejection::new(Reason::Missing, Some(p))),
                None => Authn::NoToken,
            };
        }
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut verified = Vec::with_capacity(found.len());
        for f in &found {
            match self.verify(&f.token, self.locations.providers(f.location), now) {
                Ok((provider, token)) => verified.push((f.location, provider, token)),
                Err(rejection) => return Authn::Rejected(rejection),
            }
        }
        // Envoy adds (not sets) these per verified token, after the sanitizing above.
        for (location, p, token) in &verified {
            if let Some(h) = &p.payload_header
                && let Ok(v) = HeaderValue::from_str(token.payload_b64())
            {
                headers.append(h.clone(), v);
            }
            for (h, claim) in &p.claim_headers {
                if let Some(v) = claims::header_value(&token.payload, claim) {
                    headers.append(h.clone(), v);
                }
            }
            if !p.forward
                && let Some(h) = self.locations.header(*location)
            {
                headers.remove(h);
            }
        }
        match verified.first() {
            Some((_, p, t)) => Authn::Verified(Claims::new(
                &t.iss,
                &t.sub,
                &t.aud,
                &t.payload,
                &p.space_delimited,
            )),
            None => Authn::NoToken,
        }
    }

    /// One token against the providers that look where it was found. Several providers may
    /// share an issuer (two RequestAuthentications naming it): the first that accepts the
    /// token wins, and if none does the first refusal is reported.
    fn verify<'t>(
        &self,
        raw: &'t str,
        candidates: &[usize],
        now: u64,
    ) -> Result<(&Provider, Token<'t>), Rejection> {
        let token = Token::parse(raw).map_err(|r| Rejection::new(r, None))?;
        let mut refused = None;
        for p in candidates.iter().filter_map(|&i| self.providers.get(i)) {
            if p.issuer != token.iss {
                continue;
            }
            match check(p, &token, now) {
                Ok(()) => return Ok((p, token)),
                Err(r) => {
                    refused.get_or_insert(Rejection::new(r, Some(&p.name)));
                }
            }
        }
        Err(refused.unwrap_or(Rejection::new(Reason::UnknownIssuer, None)))
    }
}

/// Envoy's order: time, then audience, then the (costly) signature.
fn check(p: &Provider, token: &Token<'_>, now: u64) -> Result<(), Reason> {
    token.check_time(now, CLOCK_SKEW_SECS)?;
    if !p.audiences.is_empty()
        && !token
            .aud
            .iter()
            .any(|a| p.audiences.contains(&sanitize_audience(a)))
    {
        return Err(Reason::AudienceNotAllowed);
    }
    p.keys.verify(token)
}

/// Envoy compares audiences without an `http://` or `https://` scheme and a trailing `/`, so
/// `https://api.example.com/` in a token matches `api.example.com` in the policy.
fn sanitize_audience(a: &str) -> String {
    let a = a
        .strip_prefix("http://")
        .or_else(|| a.strip_prefix("https://"))
        .unwrap_or(a);
    a.strip_suffix('/').unwrap_or(a).to_string()
}
