//! Istio's pod annotations for traffic capture, mapped onto [`Settings`].
//!
//! In Istio the injector turns a pod's `traffic.sidecar.istio.io/*` annotations into
//! `istio-init`'s arguments. strait reads them where an init container finds them: a Kubernetes
//! downward-API annotations file (`key="value"` lines, what a `downwardAPI` volume of
//! `metadata.annotations` holds), or `key=value` pairs given on the command line.

use std::collections::BTreeMap;

use super::{
    InvalidSetting, Settings, parse_port_select, parse_ports, parse_range_select, parse_ranges,
};

pub const INCLUDE_INBOUND_PORTS: &str = "traffic.sidecar.istio.io/includeInboundPorts";
pub const EXCLUDE_INBOUND_PORTS: &str = "traffic.sidecar.istio.io/excludeInboundPorts";
pub const INCLUDE_OUTBOUND_IP_RANGES: &str = "traffic.sidecar.istio.io/includeOutboundIPRanges";
pub const EXCLUDE_OUTBOUND_IP_RANGES: &str = "traffic.sidecar.istio.io/excludeOutboundIPRanges";
pub const INCLUDE_OUTBOUND_PORTS: &str = "traffic.sidecar.istio.io/includeOutboundPorts";
pub const EXCLUDE_OUTBOUND_PORTS: &str = "traffic.sidecar.istio.io/excludeOutboundPorts";
pub const INTERCEPTION_MODE: &str = "sidecar.istio.io/interceptionMode";

/// What the annotations ask for.
#[derive(Debug, PartialEq, Eq)]
pub enum Capture {
    /// Install these rules.
    Redirect,
    /// `interceptionMode: NONE`: the pod's traffic is not captured at all.
    None,
}

/// Applies the capture annotations among `annotations` to `settings` (other keys are not
/// ours and are ignored). A capture annotation strait does not act on is an error, never
/// silently dropped: a pod that asked for TPROXY or excluded interfaces would otherwise get
/// different capture than it asked for.
pub fn apply(
    annotations: &BTreeMap<String, String>,
    settings: &mut Settings,
) -> Result<Capture, InvalidSetting> {
    let mut capture = Capture::Redirect;
    for (key, value) in annotations {
        match key.as_str() {
            INCLUDE_INBOUND_PORTS => settings.inbound_ports = parse_port_select(key, value)?,
            EXCLUDE_INBOUND_PORTS => settings.exclude_inbound_ports = parse_ports(key, value)?,
            INCLUDE_OUTBOUND_IP_RANGES => {
                settings.include_outbound_ranges = parse_range_select(key, value)?;
            }
            EXCLUDE_OUTBOUND_IP_RANGES => {
                settings.exclude_outbound_ranges = parse_ranges(key, value)?;
            }
            INCLUDE_OUTBOUND_PORTS => settings.include_outbound_ports = parse_ports(key, value)?,
            EXCLUDE_OUTBOUND_PORTS => settings.exclude_outbound_ports = parse_ports(key, value)?,
            INTERCEPTION_MODE => {
                capture = match value.trim() {
                    "REDIRECT" => Capture::Redirect,
                    "NONE" => Capture::None,
                    _ => {
                        return Err(InvalidSetting {
                            source_name: key.clone(),
                            value: value.clone(),
                            problem: "is not supported: strait captures with REDIRECT (or NONE for no capture); TPROXY is not implemented".into(),
                        });
                    }
                }
            }
            k if k.starts_with("traffic.sidecar.istio.io/") => {
                return Err(InvalidSetting {
                    source_name: key.clone(),
                    value: value.clone(),
                    problem: "is an Istio capture annotation strait does not act on; remove it or capture that traffic another way".into(),
                });
            }
            _ => {}
        }
    }
    Ok(capture)
}

/// Parses `key=value` pairs separated by commas, as `--annotations` takes them. A value may
/// itself hold commas (a port list) when the next item has no `=`: `k=80,443,j=v` is
/// `{k: "80,443", j: "v"}`.
pub fn parse_pairs(text: &str) -> Result<BTreeMap<String, String>, InvalidSetting> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for item in text.split(',') {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                let k = k.trim().to_string();
                out.insert(k.clone(), v.trim().to_string());
                last = Some(k);
            }
            _ => match last.as_ref().and_then(|k| out.get_mut(k)) {
                Some(v) => {
                    v.push(',');
                    v.push_str(item.trim());
                }
                None if item.trim().is_empty() => {}
                None => {
                    return Err(InvalidSetting {
                        source_name: "--annotations".into(),
                        value: item.to_string(),
                        problem: "is not KEY=VALUE, e.g. traffic.sidecar.istio.io/excludeOutboundPorts=5432".into(),
                    });
                }
            },
        }
    }
    Ok(out)
}

/// Parses a downward-API annotations file: one `key="value"` per line, the value quoted as a
/// Go string (`\"`, `\\`, `\n` escapes). `path` names the file in errors.
pub fn parse_downward(path: &str, text: &str) -> Result<BTreeMap<String, String>, InvalidSetting> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |problem: &str| InvalidSetting {
            source_name: format!("{path}:{}", i + 1),
            value: line.to_string(),
            problem: problem.to_string(),
        };
        let (key, quoted) = line
            .split_once('=')
            .ok_or_else(|| bad("is not key=\"value\" (a downward-API annotations file)"))?;
        let inner = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .ok_or_else(|| bad("has a value that is not in double quotes"))?;
        let mut value = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                value.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some(c @ ('"' | '\\')) => value.push(c),
                _ => return Err(bad("has an escape that is not \\\", \\\\, \\n or \\t")),
            }
        }
        out.insert(key.trim().to_string(), value);
    }
    Ok(out)
}
