//! STR0015: valid Istio configuration strait does not act on; STR0017: a whole API Istio
//! serves and strait's data path does not serve yet. The same report the control plane logs
//! when it loads the mesh ([`strait_model::unsupported`]), so nothing valid is silently ignored
//! before or after it is applied.

use crate::catalog::{STR0015, STR0017};
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    for n in strait_model::unsupported::report(ctx.mesh) {
        ctx.at(
            if n.not_served { STR0017 } else { STR0015 },
            n.object,
            &n.path,
            format!("{}: {}", n.path, n.what),
        );
    }
}
