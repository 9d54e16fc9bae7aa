//! IST0002: load-balancer and outlier-detection settings Istio has deprecated.

use strait_api::istio::destination_rule::{
    DestinationRuleSpec, LoadBalancerSettings, OutlierDetection, SimpleLb,
};
use strait_model::ObjId;

use crate::catalog::IST0002;
use crate::context::Ctx;

/// IST0002: settings Istio still reads but has deprecated.
pub(super) fn check(ctx: &mut Ctx, id: ObjId, spec: &DestinationRuleSpec) {
    for (path, tp) in spec.traffic_policies() {
        deprecated_in(
            ctx,
            id,
            &path,
            tp.load_balancer.as_ref(),
            tp.outlier_detection.as_ref(),
        );
        for (j, pl) in tp.port_level_settings.iter().enumerate() {
            let p = format!("{path}.portLevelSettings[{j}]");
            deprecated_in(
                ctx,
                id,
                &p,
                pl.load_balancer.as_ref(),
                pl.outlier_detection.as_ref(),
            );
        }
    }
}

fn deprecated_in(
    ctx: &mut Ctx,
    id: ObjId,
    path: &str,
    lb: Option<&LoadBalancerSettings>,
    od: Option<&OutlierDetection>,
) {
    if let Some(lb) = lb {
        if lb.warmup_duration_secs.is_some() {
            ctx.at_key(
                IST0002,
                id,
                &format!("{path}.loadBalancer.warmupDurationSecs"),
                "loadBalancer.warmupDurationSecs is deprecated; use loadBalancer.warmup.duration",
            );
        }
        if lb.simple == Some(SimpleLb::LeastConn) {
            ctx.at(
                IST0002,
                id,
                &format!("{path}.loadBalancer.simple"),
                "load balancer LEAST_CONN is deprecated (it is LEAST_REQUEST under another name); write LEAST_REQUEST",
            );
        }
        if lb
            .consistent_hash
            .as_ref()
            .is_some_and(|c| c.minimum_ring_size.is_some())
        {
            ctx.at_key(
                IST0002,
                id,
                &format!("{path}.loadBalancer.consistentHash.minimumRingSize"),
                "consistentHash.minimumRingSize is deprecated; use consistentHash.ringHash.minimumRingSize",
            );
        }
    }
    if od.is_some_and(|o| o.consecutive_errors.is_some()) {
        ctx.at_key(
            IST0002,
            id,
            &format!("{path}.outlierDetection.consecutiveErrors"),
            "outlierDetection.consecutiveErrors is deprecated; use consecutive5xxErrors (or consecutiveGatewayErrors for 502/503/504 only)",
        );
    }
}
