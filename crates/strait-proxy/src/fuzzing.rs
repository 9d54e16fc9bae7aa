//! Entry points for fuzzing what the proxy reads from the network: configuration updates
//! from the control plane and the peer metadata header from other proxies. Each must reject
//! bad input with an error, never panic.

use http::{HeaderMap, HeaderValue};
use strait_model::compile::{ProxyConfig, kinds};

use crate::snapshot::Snapshot;

const KINDS: [&str; 5] = [
    kinds::MESH,
    kinds::SERVICE,
    kinds::CLUSTER,
    kinds::INBOUND,
    "bogus",
];

/// Splits `data` at 0xff bytes into resources (first byte: type, up to the first 0xfe: name,
/// the rest: body), applies them as one update and validates the result.
pub fn config_update(data: &[u8]) {
    let mut cfg = ProxyConfig::default();
    for chunk in data.split(|b| *b == 0xff) {
        let Some((&t, rest)) = chunk.split_first() else {
            continue;
        };
        let kind = KINDS[usize::from(t) % KINDS.len()];
        let (name, body) = match rest.iter().position(|b| *b == 0xfe) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (&b""[..], rest),
        };
        let name = String::from_utf8_lossy(name);
        let body = String::from_utf8_lossy(body);
        let _ = cfg.apply(kind, &name, &body);
    }
    if let Ok(snap) = Snapshot::build("v".into(), cfg.clone(), &Snapshot::empty()) {
        // A valid snapshot must resolve and route without panicking.
        for sp in cfg.services.values() {
            let _ = snap.resolve(&sp.host, u16::try_from(sp.port).unwrap_or(0));
        }
    }
}

/// Any bytes as the peer metadata header.
pub fn peer_header(data: &[u8]) {
    if let Ok(v) = HeaderValue::from_bytes(data) {
        let mut h = HeaderMap::new();
        h.insert(crate::peer::HEADER, v);
        let _ = crate::peer::take(&mut h, Some("spiffe://cluster.local/ns/ns/sa/sa"));
    }
}
