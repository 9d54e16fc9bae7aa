//! Multi-cluster checks: what makes traffic cross (or fail to cross) between clusters and
//! networks. None of these exist in istioctl, which analyzes one cluster at a time.
//!
//! - [`networks`]: every network others must reach has a reachable east-west gateway, and the
//!   control plane serving it has an AUTO_PASSTHROUGH Gateway for it; remotes on another
//!   network reach their primary's control plane through it (STR0101, STR0102, STR0114,
//!   STR0115, IST0126).
//! - [`trust`]: one root of trust, valid plug-in CAs, remote secrets in place (STR0103–STR0107).
//! - [`facts`]: mesh ID, trust domain, cluster names and networks agree across `mesh.yaml` and
//!   the manifests (STR0108, STR0109, STR0110, STR0112).
//! - [`drift`]: primaries configure shared hosts alike; nothing relies on config applied to a
//!   remote; Services agree across clusters (STR0111, STR0113, IST0170).
//! - [`absent`]: pods whose Service exists only in other clusters (STR0116).

mod absent;
mod drift;
mod facts;
mod networks;
mod trust;

use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    networks::run(ctx);
    trust::run(ctx);
    facts::run(ctx);
    drift::run(ctx);
    absent::run(ctx);
}
