//! The loader's fuzzing entry point, shared by `fuzz/` (libFuzzer) and the property tests.

use crate::embedded::parse_embedded;
use crate::istio::mesh_config::{MeshConfig, MeshNetworks};
use crate::load::Loader;

/// Loads `data` as a manifest file and checks the invariants every input must keep: no panic
/// (the caller would see it), and every diagnostic and object position inside the input.
pub fn load_bytes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = text.replace("\r\n", "\n").split(['\n', '\r']).count() as u32;
    let mut loader = Loader::new();
    loader.add_text("fuzz.yaml", &text);
    let loaded = loader.finish();
    // The same text as a kustomization: the patch files it names.
    let _ =
        crate::load::kustomize::fragments(std::path::Path::new("fuzz/kustomization.yaml"), &text);
    for d in &loaded.diagnostics {
        if let Some(p) = d.pos {
            assert!(
                p.line >= 1 && p.line <= lines + 1,
                "diagnostic line {} outside the input ({lines} lines)",
                p.line
            );
        }
    }
    for o in &loaded.objects {
        assert!(o.source.pos.line >= 1 && o.source.pos.line <= lines + 1);
        for key in ["data.mesh", "data.meshNetworks"] {
            let _ = parse_embedded::<MeshConfig>(&loaded.sources, o, key);
            let _ = parse_embedded::<MeshNetworks>(&loaded.sources, o, key);
        }
    }
}
