//! EnvoyFilter checks: patch operations Istio ignores on some objects, and relative operations
//! whose outcome depends on the order filters are applied in.
//!
//! EnvoyFilters apply in order of `priority`, then creation time. A relative operation
//! (insert before/after, replace, remove) only works if the filter it is relative to is already
//! there, so without a priority it depends on creation order, and across an upgrade (a filter
//! matched by `proxyVersion`) on which version's filter exists at that moment.

use std::collections::BTreeSet;

use strait_api::Kind;
use strait_api::istio::envoy_filter::{ApplyTo, ConfigPatch, Operation};
use strait_model::{ClusterId, ObjId};

use super::util;
use crate::catalog::{IST0151, IST0152, IST0153, IST0154, IST0155};
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in &mesh.clusters {
        let versioned = versioned_filters(ctx, c.id);
        for (id, o) in util::in_cluster(mesh, c.id, Kind::EnvoyFilter) {
            let Some(ef) = o.envoy_filter() else { continue };
            for (i, p) in ef.spec.config_patches.iter().enumerate() {
                check_patch(ctx, id, i, p, ef.spec.priority, &versioned);
            }
        }
    }
}

/// The filter a patch is about: the `name` in its value, else the filter it matches.
fn target_name(p: &ConfigPatch) -> Option<String> {
    let from_value = p
        .patch
        .as_ref()
        .and_then(|pt| pt.value.as_ref())
        .and_then(|v| v.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string);
    let from_match = || {
        p.matches
            .as_ref()
            .and_then(|m| m.listener.as_ref())
            .and_then(|l| l.filter_chain.as_ref())
            .and_then(|fc| fc.filter.as_ref())
            .map(|f| f.name.clone())
    };
    from_value.or_else(from_match).filter(|n| !n.is_empty())
}

fn has_proxy_version(p: &ConfigPatch) -> bool {
    p.matches
        .as_ref()
        .and_then(|m| m.proxy.as_ref())
        .is_some_and(|px| !px.proxy_version.is_empty())
}

/// Filters that some patch in the cluster touches under a `proxyVersion` match.
fn versioned_filters(ctx: &Ctx, cluster: ClusterId) -> BTreeSet<String> {
    util::in_cluster(ctx.mesh, cluster, Kind::EnvoyFilter)
        .filter_map(|(_, o)| o.envoy_filter())
        .flat_map(|ef| ef.spec.config_patches.iter())
        .filter(|p| has_proxy_version(p))
        .filter_map(target_name)
        .collect()
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Invalid => "INVALID",
        Operation::Merge => "MERGE",
        Operation::Add => "ADD",
        Operation::Remove => "REMOVE",
        Operation::InsertBefore => "INSERT_BEFORE",
        Operation::InsertAfter => "INSERT_AFTER",
        Operation::InsertFirst => "INSERT_FIRST",
        Operation::Replace => "REPLACE",
        Operation::MergeAndReplaceList => "MERGE_AND_REPLACE_LIST",
    }
}

fn apply_to_name(a: ApplyTo) -> &'static str {
    match a {
        ApplyTo::Invalid => "INVALID",
        ApplyTo::Listener => "LISTENER",
        ApplyTo::FilterChain => "FILTER_CHAIN",
        ApplyTo::NetworkFilter => "NETWORK_FILTER",
        ApplyTo::HttpFilter => "HTTP_FILTER",
        ApplyTo::RouteConfiguration => "ROUTE_CONFIGURATION",
        ApplyTo::VirtualHost => "VIRTUAL_HOST",
        ApplyTo::HttpRoute => "HTTP_ROUTE",
        ApplyTo::Cluster => "CLUSTER",
        ApplyTo::ExtensionConfig => "EXTENSION_CONFIG",
        ApplyTo::Bootstrap => "BOOTSTRAP",
        ApplyTo::ListenerFilter => "LISTENER_FILTER",
    }
}

fn check_patch(
    ctx: &mut Ctx,
    id: ObjId,
    i: usize,
    p: &ConfigPatch,
    priority: i32,
    versioned: &BTreeSet<String>,
) {
    let Some(op) = p.patch.as_ref().and_then(|pt| pt.operation) else {
        return;
    };
    let Some(apply_to) = p.apply_to else { return };
    let path = format!("spec.configPatches[{i}].patch.operation");
    let route_level = matches!(apply_to, ApplyTo::RouteConfiguration | ApplyTo::HttpRoute);
    let relative = match op {
        Operation::Add if route_level => {
            ctx.at(
                IST0153,
                id,
                &path,
                format!(
                    "ADD on {} is ignored: route configurations and routes cannot be added this way; to add a route, INSERT_FIRST (or INSERT_BEFORE/AFTER) it into its virtual host, or ADD a VIRTUAL_HOST",
                    apply_to_name(apply_to)
                ),
            );
            false
        }
        Operation::Remove if route_level => {
            ctx.at(
                IST0154,
                id,
                &path,
                format!(
                    "REMOVE on {} is ignored: route configurations and routes cannot be removed by an EnvoyFilter; remove the VIRTUAL_HOST, or change the VirtualService that produces it",
                    apply_to_name(apply_to)
                ),
            );
            false
        }
        Operation::Replace
            if !matches!(
                apply_to,
                ApplyTo::HttpFilter | ApplyTo::NetworkFilter | ApplyTo::VirtualHost
            ) =>
        {
            ctx.at(
                IST0152,
                id,
                &path,
                format!(
                    "REPLACE on {} is not supported (only HTTP_FILTER and NETWORK_FILTER can be replaced), so this patch does nothing; use MERGE, or REMOVE plus ADD",
                    apply_to_name(apply_to)
                ),
            );
            false
        }
        Operation::Remove
        | Operation::Replace
        | Operation::InsertBefore
        | Operation::InsertAfter => true,
        _ => false,
    };
    if !relative || priority != 0 {
        return;
    }
    let target = target_name(p);
    let own_version = p
        .matches
        .as_ref()
        .and_then(|m| m.proxy.as_ref())
        .map(|px| px.proxy_version.as_str())
        .filter(|v| !v.is_empty());
    let other_version = target.as_ref().filter(|t| versioned.contains(*t));
    if own_version.is_some() || other_version.is_some() {
        let why = match (own_version, other_version) {
            (Some(v), _) => format!("in a patch limited to proxyVersion {v}"),
            (None, t) => format!(
                "on filter {}, which a patch limited by proxyVersion also changes",
                t.map(String::as_str).unwrap_or("")
            ),
        };
        ctx.at(
            IST0155,
            id,
            &path,
            format!(
                "{} without priority {why}: during an upgrade the filter it is relative to may not be there yet, and the patch silently does not apply; set spec.priority, or use INSERT_FIRST or ADD",
                op_name(op)
            ),
        );
    } else {
        ctx.at(
            IST0151,
            id,
            &path,
            format!(
                "{} without priority: the result depends on the order EnvoyFilters are applied in (creation time), which can change on re-creation; set spec.priority, or use INSERT_FIRST or ADD",
                op_name(op)
            ),
        );
    }
}
