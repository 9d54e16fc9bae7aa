//! docs/analyzers.md must list every code strait reports, with an example.

use strait_analyze::catalog;

#[test]
fn analyzer_docs_cover_the_catalog() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/analyzers.md");
    let doc = std::fs::read_to_string(path).expect("docs/analyzers.md");
    let missing: Vec<&str> = catalog::ALL
        .iter()
        .map(|c| c.code)
        .filter(|c| !doc.contains(&format!("### {c}\n")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/analyzers.md lacks {missing:?}; run `python3 scripts/gen-analyzers-doc.py`"
    );
    for n in 1..=177 {
        let code = format!("IST{n:04}");
        if catalog::by_code(&code).is_some() {
            assert!(
                doc.contains(&format!("| [{code}](#")),
                "{code} is not marked done in the IST table"
            );
        }
    }
}
