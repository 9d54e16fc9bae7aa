//! Istio's resource types, written from Istio's API definitions: the same field names and
//! enums, so Istio YAML is accepted unchanged, and nothing else, so typos are caught.

pub(crate) mod common;
pub mod destination_rule;
pub mod envoy_filter;
pub mod extensions;
pub mod gateway;
pub mod mesh_config;
pub mod operator;
pub mod security;
pub mod service_entry;
pub mod sidecar;
pub mod telemetry;
pub mod virtual_service;

pub use common::{
    Duration, LabelSelector, MatchLabels, Opaque, Percent, PolicyTargetReference, PortSelector,
};
