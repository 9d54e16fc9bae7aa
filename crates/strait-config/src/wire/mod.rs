//! The wire form of the configuration: each compiled type to its `strait.config.v1` message
//! (`From<&T>`, cannot fail) and back (`TryFrom<message>`, which validates: an enum value this
//! proxy does not know, an unset `oneof`, a number out of range). A refusal names the field by
//! its path in the resource (`http[0].action`), so a NACK tells the operator what was wrong.

mod authz;
mod cluster;
mod gateway;
mod mesh;
mod routes;
#[cfg(test)]
mod tests;
mod tracing;

use std::fmt;

use crate::proto;
use crate::types::{Kind, ProxyConfig};

/// Why a received message is not a valid configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    /// Where: field names and indexes from the resource down, outermost first.
    path: Vec<String>,
    problem: String,
}

impl WireError {
    pub fn new(problem: impl Into<String>) -> WireError {
        WireError {
            path: Vec::new(),
            problem: problem.into(),
        }
    }

    /// The same error, one level further out (`field` holds what failed).
    pub fn at(mut self, field: impl fmt::Display) -> WireError {
        self.path.insert(0, field.to_string());
        self
    }

    /// A `oneof` or message that must be set is not (or holds a kind this proxy does not know,
    /// which decodes as unset).
    pub fn unset() -> WireError {
        WireError::new("not set (or of a kind this proxy does not know: a newer control plane?)")
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.problem);
        }
        let mut first = true;
        for p in &self.path {
            if !first && !p.starts_with('[') {
                f.write_str(".")?;
            }
            f.write_str(p)?;
            first = false;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for WireError {}

/// Adds a field to the path of an error.
pub(crate) trait At<T> {
    fn at(self, field: &str) -> Result<T, WireError>;
}

impl<T> At<T> for Result<T, WireError> {
    fn at(self, field: &str) -> Result<T, WireError> {
        self.map_err(|e| e.at(field))
    }
}

/// Decodes every element of a list, naming the index of the first that fails.
pub(crate) fn list<P, T>(items: Vec<P>, field: &str) -> Result<Vec<T>, WireError>
where
    T: TryFrom<P, Error = WireError>,
{
    items
        .into_iter()
        .enumerate()
        .map(|(i, p)| T::try_from(p).map_err(|e| e.at(format!("[{i}]")).at(field)))
        .collect()
}

/// Encodes every element of a list.
pub(crate) fn encode_list<'a, T: 'a, P>(items: impl IntoIterator<Item = &'a T>) -> Vec<P>
where
    P: From<&'a T>,
{
    items.into_iter().map(P::from).collect()
}

/// A message field that must be present.
pub(crate) fn required<P, T>(v: Option<P>, field: &str) -> Result<T, WireError>
where
    T: TryFrom<P, Error = WireError>,
{
    T::try_from(v.ok_or_else(WireError::unset).at(field)?).at(field)
}

/// A message field whose absence means the type's default.
pub(crate) fn or_default<P, T>(v: Option<P>, field: &str) -> Result<T, WireError>
where
    T: TryFrom<P, Error = WireError> + Default,
{
    v.map_or_else(|| Ok(T::default()), |p| T::try_from(p).at(field))
}

/// An optional message field.
pub(crate) fn optional<P, T>(v: Option<P>, field: &str) -> Result<Option<T>, WireError>
where
    T: TryFrom<P, Error = WireError>,
{
    v.map(|p| T::try_from(p).at(field)).transpose()
}

/// An enum field: the generated enum for a known value, an error naming the field otherwise.
pub(crate) fn enum_value<E: TryFrom<i32>>(v: i32, field: &str) -> Result<E, WireError> {
    E::try_from(v).map_err(|_| {
        WireError::new(format!("unknown value {v} (a newer control plane?)")).at(field)
    })
}

/// An HTTP status code carried in a `uint32`.
pub(crate) fn status(v: u32, field: &str) -> Result<u16, WireError> {
    u16::try_from(v)
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| WireError::new(format!("{v} is not an HTTP status code")).at(field))
}

impl Kind {
    pub fn to_proto(self) -> proto::Kind {
        match self {
            Kind::Mesh => proto::Kind::Mesh,
            Kind::Service => proto::Kind::Service,
            Kind::Cluster => proto::Kind::Cluster,
            Kind::Inbound => proto::Kind::Inbound,
            Kind::Listener => proto::Kind::Listener,
            Kind::Secret => proto::Kind::Secret,
            Kind::Authz => proto::Kind::Authz,
        }
    }

    pub fn from_proto(v: i32) -> Result<Kind, WireError> {
        Ok(match enum_value(v, "kind")? {
            proto::Kind::Unspecified => return Err(WireError::unset().at("kind")),
            proto::Kind::Mesh => Kind::Mesh,
            proto::Kind::Service => Kind::Service,
            proto::Kind::Cluster => Kind::Cluster,
            proto::Kind::Inbound => Kind::Inbound,
            proto::Kind::Listener => Kind::Listener,
            proto::Kind::Secret => Kind::Secret,
            proto::Kind::Authz => Kind::Authz,
        })
    }

    /// The kind a resource's body makes it, if the body is one this proxy knows.
    pub fn of(r: &proto::Resource) -> Option<Kind> {
        use proto::resource::Body;
        Some(match r.body.as_ref()? {
            Body::Mesh(_) => Kind::Mesh,
            Body::Service(_) => Kind::Service,
            Body::Cluster(_) => Kind::Cluster,
            Body::Inbound(_) => Kind::Inbound,
            Body::Listener(_) => Kind::Listener,
            Body::Secret(_) => Kind::Secret,
            Body::Authz(_) => Kind::Authz,
        })
    }
}

impl ProxyConfig {
    /// Every resource in its wire form, in a stable order (kind, then name).
    pub fn resources(&self) -> Vec<proto::Resource> {
        use proto::resource::Body;
        let mut out = Vec::with_capacity(
            1 + self.services.len()
                + self.clusters.len()
                + self.inbound.len()
                + self.listeners.len()
                + self.secrets.len()
                + 1,
        );
        let mut push = |name: &str, body: Body| {
            out.push(proto::Resource {
                name: name.to_string(),
                body: Some(body),
            })
        };
        push("mesh", Body::Mesh((&self.mesh).into()));
        for (k, v) in &self.services {
            push(k, Body::Service(v.into()));
        }
        for (k, v) in &self.clusters {
            push(k, Body::Cluster(v.into()));
        }
        for (k, v) in &self.inbound {
            push(k, Body::Inbound(v.into()));
        }
        for (k, v) in &self.listeners {
            push(k, Body::Listener(v.into()));
        }
        for (k, v) in &self.secrets {
            push(k, Body::Secret(v.into()));
        }
        if !self.authz.is_empty() {
            push("policy", Body::Authz((&self.authz).into()));
        }
        out
    }

    /// Applies one received resource, validating it; on an error the configuration is
    /// unchanged.
    pub fn apply(&mut self, r: proto::Resource) -> Result<(), WireError> {
        use proto::resource::Body;
        let name = r.name;
        match r.body.ok_or_else(WireError::unset).at("body")? {
            Body::Mesh(m) => self.mesh = m.try_into()?,
            Body::Service(s) => {
                self.services.insert(name, s.try_into()?);
            }
            Body::Cluster(c) => {
                self.clusters.insert(name, c.try_into()?);
            }
            Body::Inbound(i) => {
                self.inbound.insert(name, i.try_into()?);
            }
            Body::Listener(l) => {
                self.listeners.insert(name, l.try_into()?);
            }
            Body::Secret(s) => {
                self.secrets.insert(name, s.into());
            }
            Body::Authz(a) => self.authz = a.try_into()?,
        }
        Ok(())
    }

    /// Removes one resource; unknown names are ignored.
    pub fn remove(&mut self, kind: Kind, name: &str) {
        match kind {
            Kind::Mesh => {}
            Kind::Service => {
                self.services.remove(name);
            }
            Kind::Cluster => {
                self.clusters.remove(name);
            }
            Kind::Inbound => {
                self.inbound.remove(name);
            }
            Kind::Listener => {
                self.listeners.remove(name);
            }
            Kind::Secret => {
                self.secrets.remove(name);
            }
            Kind::Authz => self.authz = Default::default(),
        }
    }
}
