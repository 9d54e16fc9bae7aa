//! (being written)

use crate::context::Ctx;

pub fn run(_ctx: &mut Ctx) {}
