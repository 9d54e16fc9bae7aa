//! EnvoyFilter checks: patch operations Istio ignores on some objects, and relative operations
//! whose outcome depends on the order filters are applied in.
//!
//! EnvoyFilters apply in order of `priority`, then creation time. A relative operation
//! (insert before/after, replace, remove) only works if the filter it is relative to is already
//! there, so without a priority it depends on creation order, and across an upgrade (a filter
//! matched by `proxyVersion`) on which version's filter exists at that moment.
//!
//! The rules mirror istioctl's `envoyfilter.EnvoyPatchAnalyzer`: a patch without `patch` ends
//! the walk of its filter; an unset `applyTo` counts as INVALID (so REPLACE on it is IST0152
//! and REMOVE on it is relative); INSERT_FIRST is absolute. IST0155 replaces IST0151 when the
//! patch changes a filter that an *earlier* `proxyVersion` patch changes: the patch's own
//! `proxyVersion` does not count. istioctl visits EnvoyFilters in no fixed order, so across
//! filters strait counts every other filter's `proxyVersion` patches, whatever their order.

use std::collections::BTreeSet;

use strait_api::Kind;
use strait_api::istio::envoy_filter::{ApplyTo, ConfigPatch, Operation};
use strait_model::ObjId;

use super::util;
use crate::catalog::{IST0151, IST0152, IST0153, IST0154, IST0155};
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in &mesh.clusters {
        let filters: Vec<_> = util::in_cluster(mesh, c.id, Kind::EnvoyFilter)
            .filter_map(|(id, o)| o.envoy_filter().map(|ef| (id, ef)))
            .collect();
        let versioned: Vec<BTreeSet<Name>> = filters
            .iter()
            .map(|(_, ef)| {
                walked(&ef.spec.config_patches)
                    .filter(|p| has_proxy_version(p))
                    .map(name_of)
                    .collect()
            })
            .collect();
        for (n, (id, ef)) in filters.iter().enumerate() {
            let elsewhere: BTreeSet<&Name> = versioned
                .iter()
                .enumerate()
                .filter(|(m, _)| *m != n)
                .flat_map(|(_, names)| names.iter())
                .collect();
            let mut earlier: BTreeSet<Name> = BTreeSet::new();
            for (i, p) in walked(&ef.spec.config_patches).enumerate() {
                let name = name_of(p);
                let after_versioned = earlier.contains(&name) || elsewhere.contains(&name);
                check_patch(ctx, *id, i, p, ef.spec.priority, &name, after_versioned);
                if has_proxy_version(p) {
                    earlier.insert(name);
                }
            }
        }
    }
}

/// The patches istioctl looks at: those before the first one without a `patch`.
fn walked(patches: &[ConfigPatch]) -> impl Iterator<Item = &ConfigPatch> {
    patches.iter().take_while(|p| p.patch.is_some())
}

/// The filter a patch is about, as istioctl compares them: the `name` in its value, else
/// (a value without `name`) the filter it matches, else nothing. A name taken from the value
/// never equals one taken from the match (istioctl compares the value's protobuf text form
/// against the plain match name), and every patch without a value shares the empty name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Name {
    Value(String),
    Plain(String),
}

impl Name {
    fn describe(&self) -> Option<&str> {
        match self {
            Name::Value(n) | Name::Plain(n) if !n.is_empty() => Some(n),
            _ => None,
        }
    }
}

fn name_of(p: &ConfigPatch) -> Name {
    let Some(fields) = p
        .patch
        .as_ref()
        .and_then(|pt| pt.value.as_ref())
        .and_then(|v| v.as_object())
    else {
        return Name::Plain(String::new());
    };
    if let Some(n) = fields.get("name") {
        return Name::Value(match n.as_str() {
            Some(s) => s.to_string(),
            None => n.to_string(),
        });
    }
    let from_match = p
        .matches
        .as_ref()
        .and_then(|m| m.listener.as_ref())
        .and_then(|l| l.filter_chain.as_ref())
        .and_then(|fc| fc.filter.as_ref())
        .map(|f| f.name.clone())
        .unwrap_or_default();
    Name::Plain(from_match)
}

fn has_proxy_version(p: &ConfigPatch) -> bool {
    p.matches
        .as_ref()
        .and_then(|m| m.proxy.as_ref())
        .is_some_and(|px| !px.proxy_version.is_empty())
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
    name: &Name,
    after_versioned: bool,
) {
    let Some(op) = p.patch.as_ref().and_then(|pt| pt.operation) else {
        return;
    };
    let apply_to = p.apply_to.unwrap_or(ApplyTo::Invalid);
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
            let what = if p.apply_to.is_none() {
                "a patch without applyTo".to_string()
            } else {
                apply_to_name(apply_to).to_string()
            };
            ctx.at(
                IST0152,
                id,
                &path,
                format!(
                    "REPLACE on {what} is not supported (only HTTP_FILTER, NETWORK_FILTER and VIRTUAL_HOST can be replaced), so this patch does nothing; use MERGE, or REMOVE plus ADD"
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
    let on = name
        .describe()
        .map(|n| format!(" on {n}"))
        .unwrap_or_default();
    if after_versioned {
        ctx.at(
            IST0155,
            id,
            &path,
            format!(
                "{}{on} without priority, where a patch limited by proxyVersion also changes that filter: during an upgrade the filter it is relative to may not be there yet, and the patch silently does not apply; set spec.priority, or use INSERT_FIRST or ADD",
                op_name(op)
            ),
        );
    } else {
        ctx.at(
            IST0151,
            id,
            &path,
            format!(
                "{}{on} without priority: the result depends on the order EnvoyFilters are applied in (creation time), which can change on re-creation; set spec.priority, or use INSERT_FIRST or ADD",
                op_name(op)
            ),
        );
    }
}
