//! IST0176: a Gateway API CRD below the bundle version istiod needs. istiod does not watch a
//! CRD older than its minimum, so every object of that kind is ignored. As istioctl does, the
//! version is the CRD's `gateway.networking.k8s.io/bundle-version` annotation, compared
//! without its pre-release suffix; a CRD without the annotation, or with one that is not a
//! version, is not reported.

use strait_api::Kind;
use strait_api::gateway_api::BUNDLE_VERSION;

use crate::catalog::IST0176;
use crate::checks::util;
use crate::context::Ctx;

/// The minimum bundle version istiod needs, per CRD.
const MINIMUM: &[(&str, (u64, u64, u64))] = &[
    ("grpcroutes.gateway.networking.k8s.io", (1, 1, 0)),
    ("backendtlspolicies.gateway.networking.k8s.io", (1, 4, 0)),
    ("tlsroutes.gateway.networking.k8s.io", (1, 5, 0)),
    ("tcproutes.gateway.networking.k8s.io", (1, 6, 0)),
];

/// `v1.2.3`, `1.2.3-rc.1` or `1.2` as (major, minor, patch), pre-release and build dropped.
fn version(s: &str) -> Option<(u64, u64, u64)> {
    let core = s.strip_prefix('v').unwrap_or(s);
    let core = core.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    parts.next().is_none().then_some((major, minor, patch))
}

pub(super) fn run(ctx: &mut Ctx) {
    for (id, o) in util::objects(ctx.mesh, Kind::CustomResourceDefinition) {
        let Some((_, min)) = MINIMUM.iter().find(|(name, _)| *name == o.name()) else {
            continue;
        };
        let Some(annotated) = o.annotation(BUNDLE_VERSION) else {
            continue;
        };
        let Some(installed) = version(annotated) else {
            continue;
        };
        if installed < *min {
            let (a, b, c) = min;
            ctx.at(
                IST0176,
                id,
                &format!("metadata.annotations[\"{BUNDLE_VERSION}\"]"),
                format!(
                    "Gateway API CRD \"{}\" is at version \"{}\" but Istio requires at least \"{a}.{b}.{c}\"; resources of this kind will not be processed. Upgrade the Gateway API CRDs to satisfy the minimum version.",
                    o.name(),
                    annotated.strip_prefix('v').unwrap_or(annotated)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::version;

    #[test]
    fn versions_as_istio_compares_them() {
        assert_eq!(version("v1.4.0"), Some((1, 4, 0)));
        assert_eq!(version("1.5.0-rc.1"), Some((1, 5, 0)));
        assert_eq!(version("v1.2"), Some((1, 2, 0)));
        assert_eq!(version("main"), None);
        assert_eq!(version("1.2.3.4"), None);
    }
}
