//! STR0308: HTTP methods written in lower case. A proxy matches `methods` and `notMethods`
//! exactly against the request's method, which clients send in upper case (`GET`), so `get`
//! matches no request: an ALLOW rule naming it allows nothing, a DENY rule naming it denies
//! nothing, and a `notMethods` entry excludes nothing.

use strait_api::istio::security::AuthorizationAction;

use super::Policy;
use crate::catalog::STR0308;
use crate::context::Ctx;
use crate::finding::Level;

pub(super) fn check_method_case(ctx: &mut Ctx, p: &Policy) {
    for (i, rule) in p.spec.rules.iter().enumerate() {
        for (j, to) in rule.to.iter().enumerate() {
            let Some(op) = &to.operation else { continue };
            for (field, values, negated) in [
                ("methods", &op.methods, false),
                ("notMethods", &op.not_methods, true),
            ] {
                for (k, m) in values.iter().enumerate() {
                    if !m.bytes().any(|b| b.is_ascii_lowercase()) {
                        continue;
                    }
                    let upper = m.to_ascii_uppercase();
                    let (effect, level) = consequence(p.action, negated, &upper);
                    let f = ctx.at(
                        STR0308,
                        p.id,
                        &format!("spec.rules[{i}].to[{j}].operation.{field}[{k}]"),
                        format!(
                            "method {m:?} matches no request: methods are compared exactly and requests carry {upper:?}, so {effect}; write {upper:?}"
                        ),
                    );
                    f.level(level);
                }
            }
        }
    }
}

/// What a method that never matches does to the rule, and how serious that is: a DENY that
/// lets requests through fails open.
fn consequence(action: AuthorizationAction, negated: bool, upper: &str) -> (String, Level) {
    match (action, negated) {
        (AuthorizationAction::Deny, false) => (
            format!("this DENY rule does not deny {upper} requests"),
            Level::Error,
        ),
        (AuthorizationAction::Deny, true) => (
            format!("this DENY rule denies {upper} requests too"),
            Level::Warning,
        ),
        (AuthorizationAction::Allow, false) => (
            format!("this ALLOW rule does not allow {upper} requests"),
            Level::Warning,
        ),
        (AuthorizationAction::Allow, true) => (
            format!("this ALLOW rule allows {upper} requests too"),
            Level::Error,
        ),
        (_, false) => (
            format!("this rule does not apply to {upper} requests"),
            Level::Warning,
        ),
        (_, true) => (
            format!("this rule applies to {upper} requests too"),
            Level::Warning,
        ),
    }
}
