//! Kubernetes and Istio resources as strait reads them.
//!
//! Text becomes typed objects in three steps: [`yaml`] splits a file into documents and parses
//! each into a spanned [`yaml::Node`] tree; [`de`] types a tree into serde structs, recording
//! every unknown field and wrong type with its field path and position instead of stopping;
//! [`load`] walks files, directories and stdin, recognises kinds and apiVersions, and returns
//! [`Object`]s (each keeping its tree in the compact [`yaml::Tree`] form) plus
//! [`Diagnostic`]s. Nothing here does network I/O, and nothing panics on input.

pub mod cache;
pub mod de;
pub mod gateway_api;
pub mod istio;
pub mod source;
pub mod suggest;
pub mod yaml;

pub use source::{FileId, Pos, SourceFile, SourceMap};
pub mod diag;
pub mod embedded;
pub mod fields;
pub mod fuzzing;
pub mod kind;
pub mod layout;
pub mod load;
pub mod object;
pub mod shape;

pub use cache::ParseCache;
pub use diag::{Diagnostic, ObjectRef, Problem, Severity};
pub use kind::Kind;
pub use layout::{
    ClusterDecl, ClusterInput, Input, MeshFile, Role, read_clusters, read_clusters_cached,
    read_input, read_input_with,
};
pub use load::{InputKind, InputSummary, Loaded, Loader};
pub use object::{Body, IstioObject, Object};
