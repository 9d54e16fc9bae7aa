//! What a check sees and how it reports.

use strait_api::Pos;
use strait_model::{ClusterId, Mesh, ObjId};

use crate::catalog::Code;
use crate::finding::{Finding, Level, Related, Resource};
use crate::suppress;

/// Handed to every check: the model, and a place to put findings.
#[derive(Debug)]
pub struct Ctx<'m> {
    pub mesh: &'m Mesh,
    /// The input may not hold everything (`--partial`): see [`Ctx::not_found`].
    pub partial: bool,
    pub(crate) findings: Vec<Finding>,
}

impl<'m> Ctx<'m> {
    pub fn new(mesh: &'m Mesh) -> Self {
        Ctx {
            mesh,
            partial: false,
            findings: Vec::new(),
        }
    }

    /// The resource identity of an object, with its cluster.
    pub fn resource(&self, obj: ObjId) -> Resource {
        let o = self.mesh.object(obj);
        Resource {
            kind: o.kind.to_string(),
            namespace: o.namespace().to_string(),
            name: o.name().to_string(),
            cluster: self.mesh.cluster(obj.cluster).name.clone(),
        }
    }

    /// Reports `code` on `obj`, pointing at the value of `field` (or its nearest ancestor
    /// present in the source; the whole object for an empty path).
    pub fn at(
        &mut self,
        code: &'static Code,
        obj: ObjId,
        field: &str,
        message: impl Into<String>,
    ) -> &mut Finding {
        let o = self.mesh.object(obj);
        let pos = if field.is_empty() {
            o.source.pos
        } else {
            o.locate(field)
        };
        self.push_obj(code, obj, field, pos, message.into())
    }

    /// Reports a reference to something the input does not hold ("referenced ... not found"),
    /// like [`Ctx::at`]. A mesh directory or a full dump is the whole world, as a cluster is
    /// to istioctl: what it lacks does not exist. Under `--partial` it may be in manifests that
    /// were not given, so the finding is lowered to Info and says so.
    pub fn not_found(
        &mut self,
        code: &'static Code,
        obj: ObjId,
        field: &str,
        message: impl Into<String>,
    ) -> &mut Finding {
        let partial = self.partial;
        let f = self.at(code, obj, field, message);
        if partial {
            f.level = Level::Info;
            f.message
                .push_str(" (Info under --partial: it may be in manifests not given)");
        }
        f
    }

    /// Reports `code` on `obj` at an explicit position (inside embedded YAML, say).
    pub fn at_pos(
        &mut self,
        code: &'static Code,
        obj: ObjId,
        pos: Pos,
        message: impl Into<String>,
    ) -> &mut Finding {
        self.push_obj(code, obj, "", pos, message.into())
    }

    /// Like [`Ctx::at`], pointing at the field's key.
    pub fn at_key(
        &mut self,
        code: &'static Code,
        obj: ObjId,
        field: &str,
        message: impl Into<String>,
    ) -> &mut Finding {
        let pos = self.mesh.object(obj).locate_key(field);
        self.push_obj(code, obj, field, pos, message.into())
    }

    fn push_obj(
        &mut self,
        code: &'static Code,
        obj: ObjId,
        field: &str,
        pos: Pos,
        message: String,
    ) -> &mut Finding {
        let o = self.mesh.object(obj);
        let suppressed = o
            .annotation(suppress::ANNOTATION)
            .is_some_and(|v| suppress::annotation_suppresses(v, code.code));
        let f = Finding {
            code: code.code,
            level: code.level,
            message,
            resource: Some(self.resource(obj)),
            pos: Some(pos),
            path: None,
            field: (!field.is_empty()).then(|| field.to_string()),
            related: Vec::new(),
        };
        self.push(f, suppressed)
    }

    /// Reports `code` about a whole cluster, pointing at its declaration in `mesh.yaml` (or at
    /// `fallback` when there is none).
    pub fn on_cluster(
        &mut self,
        code: &'static Code,
        cluster: ClusterId,
        fallback: Option<ObjId>,
        message: impl Into<String>,
    ) -> &mut Finding {
        let c = self.mesh.cluster(cluster);
        let pos = c
            .decl_pos
            .or_else(|| fallback.map(|o| self.mesh.object(o).source.pos));
        let resource = match fallback {
            Some(o) if c.decl_pos.is_none() => Some(self.resource(o)),
            _ => Some(Resource {
                kind: "Cluster".into(),
                namespace: String::new(),
                name: c.name.clone(),
                cluster: c.name.clone(),
            }),
        };
        let f = Finding {
            code: code.code,
            level: code.level,
            message: message.into(),
            resource,
            pos,
            path: None,
            field: None,
            related: Vec::new(),
        };
        self.push(f, false)
    }

    fn push(&mut self, f: Finding, suppressed: bool) -> &mut Finding {
        self.findings.push(f);
        let last = self.findings.len() - 1;
        if suppressed {
            // Kept out of the report, but still returned so builders can run.
            self.findings[last].code = "";
        }
        &mut self.findings[last]
    }

    /// Position of `field` in `obj`, for related locations.
    pub fn pos(&self, obj: ObjId, field: &str) -> Pos {
        let o = self.mesh.object(obj);
        if field.is_empty() {
            o.source.pos
        } else {
            o.locate(field)
        }
    }
}

impl Finding {
    /// Adds another location this finding involves.
    pub fn related(&mut self, message: impl Into<String>, pos: Pos) -> &mut Finding {
        self.related.push(Related {
            message: message.into(),
            pos,
        });
        self
    }

    /// Overrides the level (a check whose severity depends on the case).
    pub fn level(&mut self, level: crate::finding::Level) -> &mut Finding {
        self.level = level;
        self
    }
}
