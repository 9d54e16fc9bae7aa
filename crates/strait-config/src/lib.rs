//! The compiled configuration of one proxy: what the control plane decides
//! (`strait_model::compile`) and the proxy runs (`strait-proxy`), and its wire form.
//!
//! The types are plain data. On the discovery stream each resource travels as a typed,
//! versioned protobuf message (`proto/strait/config/v1/config.proto`, generated into
//! [`proto`]); [`wire`] converts both ways and validates what it receives, naming the field
//! that is wrong. This crate depends on neither the Kubernetes types nor the mesh model, so
//! the data plane runs without them.

pub mod authz;
pub mod gateway;
pub mod outlier;
pub mod tracing;
pub mod types;
pub mod wire;

pub use authz::*;
pub use gateway::*;
pub use outlier::*;
pub use tracing::{Collector, CustomTag, OtlpProtocol, SAMPLING_SCALE, TracingSettings};
pub use types::*;
pub use wire::WireError;

/// The generated `strait.config.v1` messages.
#[allow(clippy::all, missing_debug_implementations)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/strait.config.v1.rs"));
}
