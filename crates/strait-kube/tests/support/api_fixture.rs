//! An API server made of recorded responses (`tests/data/read/<cluster>/`, see the README
//! there): what `strait_kube::read` and `strait analyze --context` are tested against.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One cluster's recorded responses.
pub struct Fixture {
    dir: PathBuf,
    index: Value,
}

impl Fixture {
    /// The responses of `cluster` under `root` (`.../tests/data/read`).
    pub fn open(root: &Path, cluster: &str) -> Fixture {
        let dir = root.join(cluster);
        let index = std::fs::read(dir.join("index.json")).expect("index.json");
        Fixture {
            index: serde_json::from_slice(&index).expect("index.json is JSON"),
            dir,
        }
    }

    /// The status and body answering `GET path?query`.
    pub fn answer(&self, path: &str, query: Option<&str>) -> (u16, Vec<u8>) {
        let token = query
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix("continue="))
            .map(percent_decode);
        let hit = self.index["responses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["path"] == path && r["continue"].as_str() == token.as_deref());
        if let Some(r) = hit {
            let file = self.dir.join(r["file"].as_str().expect("file"));
            let body = std::fs::read(&file).expect("recorded response");
            let v: Value = serde_json::from_slice(&body).expect("recorded JSON");
            let code = if v["kind"] == "Status" {
                v["code"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(500)
            } else {
                200
            };
            return (code, body);
        }
        let not_served = self.index["not_served"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|prefix| path.starts_with(prefix));
        if not_served {
            let body = std::fs::read(self.dir.join("../not-found.json")).expect("not-found.json");
            return (404, body);
        }
        let empty = serde_json::json!({
            "kind": "List", "apiVersion": "v1",
            "metadata": {"resourceVersion": "1"}, "items": [],
        });
        (200, empty.to_string().into_bytes())
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
