//! Types shared by several Istio kinds: durations, selectors, target references.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};

/// Declares an Istio API message: every field optional with a default (proto3 semantics), JSON
/// names in camelCase, unknown fields reported by the loader.
macro_rules! spec {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
        #[serde(default, rename_all = "camelCase")]
        pub struct $name { $($body)* }
    };
}
pub(crate) use spec;

/// Declares an Istio enum read from its UPPER_CASE name.
macro_rules! istio_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $variant:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($(#[$vm])* $variant),* }
    };
}
pub(crate) use istio_enum;

/// A `google.protobuf.Duration` as Istio reads it from YAML: Go duration syntax (`500ms`,
/// `1.5s`, `1m`, `1h30m`), because istiod decodes specs with the legacy jsonpb decoder that calls
/// `time.ParseDuration`. Negative durations are rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub fn as_std(self) -> std::time::Duration {
        self.0
    }

    pub fn as_millis(self) -> u128 {
        self.0.as_millis()
    }

    /// Parses Go's duration syntax.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let t = s.trim();
        if t == "0" {
            return Ok(Duration(std::time::Duration::ZERO));
        }
        if t.starts_with('-') {
            return Err("durations cannot be negative".into());
        }
        let mut rest = t.strip_prefix('+').unwrap_or(t);
        if rest.is_empty() {
            return Err("empty duration".into());
        }
        let mut nanos: u128 = 0;
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("missing unit in \"{s}\" (use ms, s, m or h)"))?;
            let (num, tail) = rest.split_at(num_end);
            if num.is_empty() || num == "." {
                return Err(format!("expected a number in \"{s}\""));
            }
            let unit_end = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, next) = tail.split_at(unit_end);
            let scale: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                "d" => return Err(format!("unit \"d\" is not supported in \"{s}\"; use h")),
                _ => {
                    return Err(format!(
                        "unknown unit \"{unit}\" in \"{s}\" (use ms, s, m or h)"
                    ));
                }
            };
            let (int, frac) = num.split_once('.').unwrap_or((num, ""));
            let int: u128 = if int.is_empty() {
                0
            } else {
                int.parse()
                    .map_err(|_| format!("invalid number in \"{s}\""))?
            };
            let mut frac_nanos: u128 = 0;
            let mut div: u128 = 1;
            for c in frac.chars().take(18) {
                frac_nanos = frac_nanos * 10 + u128::from(c.to_digit(10).unwrap_or(0));
                div *= 10;
            }
            nanos = nanos
                .checked_add(int.checked_mul(scale).ok_or("duration too large")?)
                .and_then(|n| n.checked_add(frac_nanos * scale / div))
                .ok_or("duration too large")?;
            rest = next;
        }
        let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| "duration too large")?;
        Ok(Duration(std::time::Duration::new(
            secs,
            (nanos % 1_000_000_000) as u32,
        )))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"5s\" or \"100ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// Accepts any value and keeps nothing: for parts of an API that strait does not interpret but
/// must not reject (free-form structs, deep provider bodies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Opaque;

impl<'de> Deserialize<'de> for Opaque {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_ignored_any(de::IgnoredAny)?;
        Ok(Opaque)
    }
}

spec! {
    /// `istio.type.v1beta1.WorkloadSelector`, used by DestinationRule and the security and
    /// telemetry kinds.
    pub struct MatchLabels {
        pub match_labels: std::collections::BTreeMap<String, String>,
    }
}

spec! {
    /// `istio.networking.v1alpha3.WorkloadSelector`, used by ServiceEntry, Sidecar, EnvoyFilter.
    pub struct LabelSelector {
        pub labels: std::collections::BTreeMap<String, String>,
    }
}

spec! {
    /// A reference to the resource a policy attaches to (Gateway API style).
    pub struct PolicyTargetReference {
        pub group: String,
        pub kind: String,
        pub name: String,
        pub namespace: String,
    }
}

spec! {
    pub struct Percent {
        pub value: f64,
    }
}

spec! {
    pub struct PortSelector {
        pub number: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = |s: &str| Duration::parse(s).map(|d| d.as_millis());
        assert_eq!(ms("5s"), Ok(5000));
        assert_eq!(ms("1.5s"), Ok(1500));
        assert_eq!(ms("100ms"), Ok(100));
        assert_eq!(ms("1m"), Ok(60_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("0"), Ok(0));
        assert!(Duration::parse("5").is_err());
        assert!(Duration::parse("1d").is_err());
        assert!(Duration::parse("-1s").is_err());
        assert!(Duration::parse("s").is_err());
        assert!(Duration::parse("").is_err());
    }
}
