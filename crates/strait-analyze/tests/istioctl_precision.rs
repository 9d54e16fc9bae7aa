//! Where istioctl reports a finding on one resource of a pair, strait reports it on the same
//! one (checked on the fixtures, whose `EXPECT` files cannot say "and not on that one").

use std::path::Path;

use strait_analyze::{Options, analyze};
use strait_model::BuildOptions;

fn resources_with(code: &str, dir: &Path) -> Vec<String> {
    let input = strait_api::read_input(&[dir.to_path_buf()]);
    let (mesh, diags) = strait_model::build(input, &BuildOptions::default());
    let report = analyze(&mesh, &diags, &Options::default());
    let mut names: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.code == code)
        .filter_map(|f| f.resource.as_ref())
        .map(|r| format!("{}/{}", r.namespace, r.name))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn a_shared_certificate_is_reported_on_the_gateway_whose_selector_covers_the_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/IST0138/fires/narrower.yaml");
    std::fs::copy(&fixture, dir.path().join("narrower.yaml")).expect("copy");
    assert_eq!(
        resources_with("IST0138", dir.path()),
        ["partners/partners"],
        "not on tools/internal, whose selector is the narrower"
    );
}
