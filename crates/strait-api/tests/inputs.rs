//! What an input path yields: symlinked trees read once, and inputs with nothing in them told
//! apart from inputs with nothing wrong.

use std::path::Path;

use strait_api::{InputKind, Loader, Problem, Severity};

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";

fn load(path: &Path) -> strait_api::Loaded {
    let mut l = Loader::new();
    l.add_path(path);
    l.finish()
}

/// The error an input with nothing in it gets, if any.
fn nothing(path: &Path) -> Option<String> {
    let l = load(path);
    assert_eq!(l.inputs.len(), 1);
    l.inputs[0].nothing_to_analyze().map(|d| {
        assert_eq!(d.problem, Problem::Unreadable);
        assert_eq!(d.severity, Severity::Error);
        assert_eq!(d.path.as_deref(), Some(path));
        d.message
    })
}

#[cfg(unix)]
#[test]
fn a_tree_with_symlink_loops_is_read_once() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("d");
    std::fs::create_dir_all(d.join("sub")).expect("mkdir");
    std::fs::write(d.join("ns.yaml"), NAMESPACE).expect("write");
    symlink(".", d.join("s1")).expect("symlink");
    symlink(".", d.join("s2")).expect("symlink");
    symlink("..", d.join("sub/up")).expect("symlink");
    let l = load(&d);
    assert_eq!(l.objects.len(), 1, "{:?}", l.diagnostics);
    assert_eq!(l.sources.len(), 1, "one file read");
    let loops: Vec<String> = l
        .diagnostics
        .iter()
        .map(|d| {
            assert_eq!(d.severity, Severity::Warning, "{d:?}");
            let p = d.path.as_ref().expect("path").display().to_string();
            let named = format!("symlink loop: {p} leads back to ");
            assert!(d.message.starts_with(&named), "{}", d.message);
            p
        })
        .collect();
    assert_eq!(
        loops,
        ["s1", "s2", "sub/up"].map(|s| d.join(s).display().to_string())
    );
    assert_eq!(l.inputs[0].nothing_to_analyze(), None);
}

#[test]
fn an_empty_directory_is_nothing_to_analyze() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = nothing(tmp.path()).expect("error");
    assert!(m.contains("holds no manifest files"), "{m}");
    std::fs::write(tmp.path().join("README.md"), "# docs\n").expect("write");
    std::fs::write(tmp.path().join(".hidden.yaml"), NAMESPACE).expect("write");
    assert!(
        nothing(tmp.path()).is_some(),
        "other files and hidden ones do not count"
    );
}

#[test]
fn files_with_only_comments_are_nothing_to_analyze() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = tmp.path().join("empty.yaml");
    std::fs::write(&empty, "").expect("write");
    let m = nothing(&empty).expect("error");
    assert!(
        m.ends_with("empty.yaml is empty: nothing to analyze"),
        "{m}"
    );
    let comments = tmp.path().join("comments.yaml");
    std::fs::write(
        &comments,
        "# rendered by a tool that failed\n---\n\n---\n...\n",
    )
    .expect("write");
    let m = nothing(&comments).expect("error");
    assert!(
        m.contains("holds only comments and `---` separators"),
        "{m}"
    );
    let m = nothing(tmp.path()).expect("error");
    assert!(m.contains("(2 files)"), "{m}");
}

#[test]
fn any_document_or_an_earlier_error_is_enough() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("a.yaml"), "# header\n---\n{}\n").expect("write");
    assert_eq!(
        nothing(tmp.path()),
        None,
        "an invalid document is still a document"
    );
    let l = load(tmp.path());
    assert_eq!(l.inputs[0].kind, InputKind::Dir);
    assert_eq!((l.inputs[0].files, l.inputs[0].documents), (1, 1));
    assert_eq!(
        nothing(&tmp.path().join("missing.yaml")),
        None,
        "already unreadable"
    );
    let binary = tmp.path().join("b.yaml");
    std::fs::write(&binary, [0xff, 0xfe]).expect("write");
    assert_eq!(nothing(&binary), None, "already unreadable");
}
