//! YAML text to spanned trees: document splitting, template detection, parsing.

mod build;
mod helm;
mod node;
mod paths;
mod split;
mod tree;

pub use build::{MAX_DEPTH, MAX_NODES, Parsed, YamlIssue, parse};
pub use helm::{TemplateAction, find_helm_action, find_template};
pub use node::{Node, Resolved, Scalar, Value};
pub use paths::{Hit, Paths, Step, steps};
pub use split::{Chunk, is_blank, split_documents};
pub use tree::{Children, NodeRef, ScalarRef, TooLarge, Tree, ValueRef};
