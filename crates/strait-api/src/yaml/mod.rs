//! YAML text to spanned trees: document splitting, template detection, parsing.

mod build;
mod helm;
mod node;
mod split;

pub use build::{MAX_DEPTH, MAX_NODES, Parsed, YamlIssue, parse};
pub use helm::{TemplateAction, find_helm_action, find_template};
pub use node::{Node, Resolved, Scalar, Value};
pub use split::{Chunk, is_blank, split_documents};
