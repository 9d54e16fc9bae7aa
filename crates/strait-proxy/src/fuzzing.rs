//! Entry points for fuzzing what the proxy reads from the network: configuration updates
//! from the control plane, the peer metadata header from other proxies and the TLS
//! ClientHello the east-west gateway routes by. Each must reject bad input with an error,
//! never panic.

use http::{HeaderMap, HeaderValue};
use strait_model::compile::{ProxyConfig, kinds};

use crate::snapshot::Snapshot;
use crate::sni::{self, Parse};

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

/// Any bytes as the start of a TLS stream reaching the east-west gateway. A hello it accepts
/// must carry an SNI the gateway can match routes against as is, and the parser must never ask
/// for more bytes than the gateway's peek buffer holds.
pub fn client_hello(data: &[u8]) {
    match sni::parse(data) {
        Ok(Parse::Complete(hello)) => {
            if let Some(name) = &hello.sni {
                assert!(
                    !name.is_empty() && name.len() <= 253,
                    "sni length: {name:?}"
                );
                assert!(!name.ends_with('.'), "sni trailing dot: {name:?}");
                assert!(
                    name.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || matches!(b, b'-' | b'_' | b'.')),
                    "sni characters: {name:?}"
                );
            }
            assert!(hello.alpn.iter().all(|p| !p.is_empty()), "empty alpn name");
        }
        Ok(Parse::Incomplete) => {
            assert!(
                data.len() < sni::PEEK_BUFFER,
                "incomplete at {} bytes",
                data.len()
            );
        }
        Err(_) => {}
    }
}
