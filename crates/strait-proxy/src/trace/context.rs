//! Trace context on the wire: W3C `traceparent`/`tracestate` and Zipkin's B3, both the
//! multi-header form (`x-b3-*`) and the single `b3` header. Parsing is total: anything that is
//! not exactly a valid context is ignored (a new trace starts), never an error to the client.
//! A proxy continues the trace it was given, so it forwards every format with the same trace
//! id and its own span id: an application reading either format stays in the trace.

use http::{HeaderMap, HeaderValue};

pub type TraceId = [u8; 16];
pub type SpanId = [u8; 8];

/// What the incoming request says about its trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The caller's span, when the request carries a valid context.
    pub parent: Option<Parent>,
    /// The caller's sampling decision; `None` leaves it to this proxy.
    pub sampled: Option<bool>,
    /// B3's debug flag (`x-b3-flags: 1`, `b3: …-d`): sampled, and said so downstream.
    pub debug: bool,
}

/// The caller's trace and span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

/// The context this proxy sends on: its own span inside the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub sampled: bool,
    pub debug: bool,
}

/// Reads the request's trace context: W3C first (the OpenTelemetry default), then the single
/// `b3` header, then the multi-header form, as Envoy's tracers prefer them.
pub fn extract(h: &HeaderMap) -> Extracted {
    if let Some(e) = header(h, "traceparent").and_then(parse_traceparent) {
        return e;
    }
    if let Some(e) = header(h, "b3").and_then(parse_b3_single) {
        return e;
    }
    parse_b3_multi(
        header(h, "x-b3-traceid"),
        header(h, "x-b3-spanid"),
        header(h, "x-b3-sampled"),
        header(h, "x-b3-flags"),
    )
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// `version-traceid-spanid-flags` (W3C Trace Context level 1). A later version may append
/// fields after another `-`; version `ff` and all-zero ids are invalid.
pub fn parse_traceparent(s: &str) -> Option<Extracted> {
    let mut parts = s.split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    if version.len() != 2 || version == "ff" || !is_lower_hex(version) {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if flags.len() != 2 || !is_lower_hex(flags) {
        return None;
    }
    let trace_id = hex_id::<16>(trace, false)?;
    let span_id = hex_id::<8>(span, false)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(Extracted {
        parent: Some(Parent { trace_id, span_id }),
        sampled: Some(flags & 1 == 1),
        debug: false,
    })
}

/// `b3: {traceid}-{spanid}[-{sampling}[-{parentspanid}]]`, or a lone sampling state
/// (`0`, `1`, `d`).
pub fn parse_b3_single(s: &str) -> Option<Extracted> {
    let parts: Vec<&str> = s.split('-').collect();
    if let [only] = parts.as_slice() {
        let (sampled, debug) = b3_sampling(only)?;
        return Some(Extracted {
            parent: None,
            sampled: Some(sampled),
            debug,
        });
    }
    if parts.len() > 4 {
        return None;
    }
    let trace_id = b3_trace_id(parts.first()?)?;
    let span_id = hex_id::<8>(parts.get(1)?, true)?;
    let (sampled, debug) = match parts.get(2) {
        Some(s) => {
            let (s, d) = b3_sampling(s)?;
            (Some(s), d)
        }
        None => (None, false),
    };
    if let Some(p) = parts.get(3) {
        hex_id::<8>(p, true)?;
    }
    Some(Extracted {
        parent: Some(Parent { trace_id, span_id }),
        sampled,
        debug,
    })
}

/// The `x-b3-*` headers. A trace id without a valid span id (or the reverse) is no context;
/// a sampling decision alone still counts.
pub fn parse_b3_multi(
    trace: Option<&str>,
    span: Option<&str>,
    sampled: Option<&str>,
    flags: Option<&str>,
) -> Extracted {
    let debug = flags == Some("1");
    let sampled = match sampled {
        Some("1" | "true") => Some(true),
        Some("0" | "false") => Some(false),
        _ => None,
    };
    let parent = match (
        trace.and_then(b3_trace_id),
        span.and_then(|s| hex_id::<8>(s, true)),
    ) {
        (Some(trace_id), Some(span_id)) => Some(Parent { trace_id, span_id }),
        _ => None,
    };
    Extracted {
        parent,
        sampled: if debug { Some(true) } else { sampled },
        debug,
    }
}

fn b3_sampling(s: &str) -> Option<(bool, bool)> {
    match s {
        "1" => Some((true, false)),
        "0" => Some((false, false)),
        "d" => Some((true, true)),
        _ => None,
    }
}

/// A B3 trace id: 64 bits (16 hex, widened with leading zeros, which is how W3C reads it) or
/// 128 bits.
fn b3_trace_id(s: &str) -> Option<TraceId> {
    match s.len() {
        32 => hex_id::<16>(s, true),
        16 => {
            let low = hex_id::<8>(s, true)?;
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&low);
            Some(id)
        }
        _ => None,
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `N` bytes from exactly `2N` hex digits, not all zero (an invalid id in both formats). W3C
/// requires lowercase; B3 readers accept either case.
fn hex_id<const N: usize>(s: &str, any_case: bool) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    if !any_case && !is_lower_hex(s) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    (out != [0u8; N]).then_some(out)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Writes `ctx` in every format: `traceparent` (with `tracestate` left as received, the
/// vendors' part of W3C), the `x-b3-*` headers, and `b3` when the request came with one, so
/// no header still names the caller's span as the current one.
pub fn inject(h: &mut HeaderMap, ctx: &Outgoing) {
    let trace = hex(&ctx.trace_id);
    let span = hex(&ctx.span_id);
    let flags = if ctx.sampled { "01" } else { "00" };
    let sampled = if ctx.sampled { "1" } else { "0" };
    fn set(h: &mut HeaderMap, name: &'static str, v: String) {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(name, v);
        }
    }
    set(h, "traceparent", format!("00-{trace}-{span}-{flags}"));
    set(h, "x-b3-traceid", trace.clone());
    set(h, "x-b3-spanid", span.clone());
    set(h, "x-b3-sampled", sampled.to_string());
    if let Some(p) = &ctx.parent {
        set(h, "x-b3-parentspanid", hex(p));
    } else {
        h.remove("x-b3-parentspanid");
    }
    if ctx.debug {
        set(h, "x-b3-flags", "1".to_string());
    } else {
        h.remove("x-b3-flags");
    }
    if h.contains_key("b3") {
        let state = if ctx.debug { "d" } else { sampled };
        let single = match &ctx.parent {
            Some(p) => format!("{trace}-{span}-{state}-{}", hex(p)),
            None => format!("{trace}-{span}-{state}"),
        };
        if let Ok(v) = HeaderValue::from_str(&single) {
            h.insert("b3", v);
        }
    }
}

#[cfg(test)]
mod tests;
