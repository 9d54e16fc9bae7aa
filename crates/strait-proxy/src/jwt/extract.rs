//! Where tokens are looked for, and finding them in a request, as Envoy's extractor does.
//!
//! Each distinct place (a header with a prefix, a query parameter, a cookie) is searched once and
//! remembers which providers named it: a token found there may only be vouched for by one of
//! them, so a token smuggled into another issuer's header is refused ("Jwt issuer is not
//! configured") rather than verified by the wrong provider.

use http::{HeaderMap, HeaderName};
use strait_config::JwtProvider;

/// The header and prefix Istio looks in when a rule names no location.
const DEFAULT_HEADER: &str = "authorization";
const DEFAULT_PREFIX: &str = "Bearer ";
/// The query parameter Istio looks in when a rule names no location.
const DEFAULT_PARAM: &str = "access_token";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Place {
    Header { name: HeaderName, prefix: String },
    Param(String),
    Cookie(String),
}

#[derive(Clone, Debug)]
struct Location {
    place: Place,
    /// Indexes of the providers that look here, in configuration order.
    providers: Vec<usize>,
}

/// Every place some provider looks in: headers first, then query parameters, then cookies.
#[derive(Clone, Debug, Default)]
pub(super) struct Locations {
    list: Vec<Location>,
}

/// A token as found, not yet parsed.
#[derive(Debug)]
pub(super) struct Found {
    pub(super) token: String,
    pub(super) location: usize,
}

impl Locations {
    pub(super) fn new(providers: &[JwtProvider], problems: &mut Vec<String>) -> Locations {
        let mut headers = Vec::new();
        let mut params = Vec::new();
        let mut cookies = Vec::new();
        for (i, p) in providers.iter().enumerate() {
            if p.from_headers.is_empty() && p.from_params.is_empty() && p.from_cookies.is_empty() {
                add(
                    &mut headers,
                    Place::Header {
                        name: HeaderName::from_static(DEFAULT_HEADER),
                        prefix: DEFAULT_PREFIX.to_string(),
                    },
                    i,
                );
                add(&mut params, Place::Param(DEFAULT_PARAM.to_string()), i);
            }
            for h in &p.from_headers {
                match HeaderName::from_bytes(h.name.as_bytes()) {
                    Ok(name) => add(
                        &mut headers,
                        Place::Header {
                            name,
                            prefix: h.prefix.clone(),
                        },
                        i,
                    ),
                    // No request can carry such a header, so no token can come from it.
                    Err(_) => problems.push(format!(
                        "{} issuer {}: fromHeaders name {:?} is not a header name, ignored",
                        p.policy, p.issuer, h.name
                    )),
                }
            }
            for q in &p.from_params {
                add(&mut params, Place::Param(q.clone()), i);
            }
            for c in &p.from_cookies {
                add(&mut cookies, Place::Cookie(c.clone()), i);
            }
        }
        headers.append(&mut params);
        headers.append(&mut cookies);
        Locations { list: headers }
    }

    /// The tokens of a request, in location order. `query` is the part of the target after
    /// `?` (a leading `?` is tolerated).
    pub(super) fn find(&self, headers: &HeaderMap, query: Option<&str>) -> Vec<Found> {
        let mut found = Vec::new();
        let mut pairs: Option<Vec<(String, String)>> = None;
        for (location, loc) in self.list.iter().enumerate() {
            match &loc.place {
                Place::Header { name, prefix } => {
                    for value in headers.get_all(name) {
                        let value = String::from_utf8_lossy(value.as_bytes());
                        if let Some(token) = after_prefix(&value, prefix) {
                            found.push(Found {
                                token: token.to_string(),
                                location,
                            });
                        }
                    }
                }
                Place::Cookie(name) => {
                    if let Some(v) = cookie(headers, name) {
                        found.push(Found {
                            token: v.to_string(),
                            location,
                        });
                    }
                }
                Place::Param(param) => {
                    let Some(q) = query else { continue };
                    let pairs = pairs.get_or_insert_with(|| parse_query(q));
                    // Envoy reads the first value of a repeated parameter.
                    if let Some((_, v)) = pairs.iter().find(|(k, _)| k == param) {
                        found.push(Found {
                            token: v.clone(),
                            location,
                        });
                    }
                }
            }
        }
        found
    }

    pub(super) fn providers(&self, location: usize) -> &[usize] {
        self.list
            .get(location)
            .map_or(&[][..], |l| l.providers.as_slice())
    }

    /// The header a token was found in (`None` for a query parameter).
    pub(super) fn header(&self, location: usize) -> Option<&HeaderName> {
        match self.list.get(location).map(|l| &l.place) {
            Some(Place::Header { name, .. }) => Some(name),
            _ => None,
        }
    }
}

fn add(list: &mut Vec<Location>, place: Place, provider: usize) {
    match list.iter_mut().find(|l| l.place == place) {
        Some(l) => {
            if !l.providers.contains(&provider) {
                l.providers.push(provider);
            }
        }
        None => list.push(Location {
            place,
            providers: vec![provider],
        }),
    }
}

/// Envoy's reading of a header value: the prefix may stand anywhere in it (case-sensitive),
/// the token starts at the first base64url character or dot after it and runs to the end.
/// No prefix: the whole value. Prefix absent: no token here.
fn after_prefix<'v>(value: &'v str, prefix: &str) -> Option<&'v str> {
    if prefix.is_empty() {
        return Some(value);
    }
    let rest = &value[value.find(prefix)? + prefix.len()..];
    match rest.find(|c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        Some(start) => Some(&rest[start..]),
        // Nothing token-like follows: Envoy hands on the whole value, which then fails to parse.
        None => Some(value),
    }
}

/// The first cookie named `name` in the request's `Cookie` headers (`a=b; c=d`).
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// `a=b&c=d` into decoded pairs; a name without `=` has an empty value.
fn parse_query(query: &str) -> Vec<(String, String)> {
    let query = query.strip_prefix('?').unwrap_or(query);
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `%XX` escapes decoded; a malformed escape stays as written (no `+` to space, as in Envoy).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| hex(*c)),
                b.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}
