//! JSON Patch (RFC 6902) operations, as the API server applies them to the pod it sent.
//!
//! The injector only adds: labels and annotations (an `add` of an existing member replaces it,
//! which the injector does only for `image: auto`), containers, init containers and volumes.
//! Each list is either created whole (absent from the pod) or extended at a position, so the
//! patch applies to exactly the pod that was reviewed and nothing else.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// One `add` operation (the only kind the injector needs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Op {
    op: &'static str,
    pub path: String,
    pub value: Value,
}

/// Escapes a map key for a JSON Pointer (`~` → `~0`, `/` → `~1`): label keys such as
/// `security.istio.io/tlsMode` hold a `/`.
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A patch under construction.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Patch(pub Vec<Op>);

impl Patch {
    pub fn add(&mut self, path: String, value: impl Serialize) {
        // A k8s-openapi value or a string map always serializes; `Null` would only hide a bug.
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.0.push(Op {
            op: "add",
            path,
            value,
        });
    }

    /// Sets `entries` in the string map at `path` (`/metadata/labels`), which `existing` says
    /// the pod has or lacks. Entries are added in key order, so a patch is reproducible.
    pub fn add_entries(
        &mut self,
        path: &str,
        existing: Option<&BTreeMap<String, String>>,
        entries: &BTreeMap<String, String>,
    ) {
        if entries.is_empty() {
            return;
        }
        match existing {
            None => self.add(path.to_string(), entries),
            Some(_) => {
                for (k, v) in entries {
                    self.add(format!("{path}/{}", escape(k)), v);
                }
            }
        }
    }

    /// Inserts `items` into the list at `path`, of which the pod has `existing` elements (`None`:
    /// the field is absent), at the front or at the end.
    pub fn insert(&mut self, path: &str, existing: Option<usize>, items: Vec<Value>, front: bool) {
        if items.is_empty() {
            return;
        }
        match existing {
            None => self.add(path.to_string(), items),
            Some(_) if front => {
                // Each insert at 0 pushes the previous ones back: insert in reverse.
                for item in items.into_iter().rev() {
                    self.add(format!("{path}/0"), item);
                }
            }
            Some(_) => {
                for item in items {
                    self.add(format!("{path}/-"), item);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_pointer_keys() {
        assert_eq!(
            escape("security.istio.io/tlsMode"),
            "security.istio.io~1tlsMode"
        );
        assert_eq!(escape("a~b/c"), "a~0b~1c");
    }

    #[test]
    fn front_inserts_keep_their_order() {
        let mut p = Patch::default();
        p.insert(
            "/spec/initContainers",
            Some(1),
            vec![1.into(), 2.into()],
            true,
        );
        let paths: Vec<_> =
            p.0.iter()
                .map(|o| (o.path.as_str(), o.value.clone()))
                .collect();
        assert_eq!(
            paths,
            vec![
                ("/spec/initContainers/0", Value::from(2)),
                ("/spec/initContainers/0", Value::from(1)),
            ]
        );
    }
}
