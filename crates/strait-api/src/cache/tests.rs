use std::path::Path;
use std::sync::Arc;

use super::ParseCache;
use crate::diag::{Diagnostic, Severity};
use crate::load::{Loaded, Loader};
use crate::object::Object;

const A: &str = "apiVersion: v1
kind: Service
metadata: {name: a, namespace: default}
spec:
  ports: [{name: http, port: 80}]
";

const B: &str = "apiVersion: v1
kind: Service
metadata: {name: b, namespace: default}
spec:
  ports: [{name: http, port: 80}]
";

fn load(dir: &Path, cache: &Arc<ParseCache>) -> Loaded {
    let mut l = Loader::with_cache(cache.clone());
    l.add_path(dir);
    l.finish()
}

/// What an object is and where it came from, to compare loads.
fn same(a: &Object, b: &Object) -> bool {
    a.body == b.body
        && a.kind == b.kind
        && a.source.file == b.source.file
        && a.source.pos == b.source.pos
        && *a.source.tree == *b.source.tree
}

fn names(l: &Loaded) -> Vec<String> {
    l.objects.iter().map(|o| o.name().to_string()).collect()
}

fn errors(l: &Loaded) -> Vec<String> {
    l.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d: &Diagnostic| match d.pos {
            Some(p) => format!("{}: {}", l.sources.display(p), d.message),
            None => d.message.clone(),
        })
        .collect()
}

#[test]
fn an_unchanged_file_is_not_parsed_again_and_a_changed_one_is() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("a.yaml"), A).expect("write");
    std::fs::write(dir.path().join("b.yaml"), B).expect("write");
    let cache = Arc::new(ParseCache::new());
    let first = load(dir.path(), &cache);
    assert_eq!(names(&first), ["a", "b"]);
    assert_eq!((cache.parsed(), cache.reused()), (2, 0));

    let again = load(dir.path(), &cache);
    assert_eq!((cache.parsed(), cache.reused()), (2, 2));
    assert_eq!(again.objects.len(), first.objects.len());
    assert!(
        again
            .objects
            .iter()
            .zip(&first.objects)
            .all(|(a, b)| same(a, b)),
        "same objects, same positions"
    );
    // The text is shared with the first load rather than held twice.
    let text = |l: &Loaded, i| l.sources.files().nth(i).map(|(_, f)| f.text.clone());
    assert!(Arc::ptr_eq(
        &text(&again, 0).expect("a"),
        &text(&first, 0).expect("a")
    ));

    // Same length, different text: seen by comparing the text, not a size or a time.
    std::fs::write(dir.path().join("b.yaml"), B.replace("port: 80", "port: 81")).expect("edit");
    let edited = load(dir.path(), &cache);
    assert_eq!((cache.parsed(), cache.reused()), (3, 3));
    assert_eq!(names(&edited), ["a", "b"]);
    assert!(!same(&edited.objects[1], &first.objects[1]));
    assert!(same(&edited.objects[0], &first.objects[0]));
}

#[test]
fn a_deleted_file_disappears_and_later_files_keep_exact_positions() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("a.yaml"), A).expect("write");
    std::fs::write(dir.path().join("b.yaml"), B).expect("write");
    let cache = Arc::new(ParseCache::new());
    load(dir.path(), &cache);
    assert_eq!(cache.len(), 2);

    std::fs::remove_file(dir.path().join("a.yaml")).expect("rm");
    let after = load(dir.path(), &cache);
    assert_eq!(names(&after), ["b"]);
    // b.yaml is now the first file of the load: its cached objects name it so.
    let b = &after.objects[0];
    assert_eq!(after.sources.name(b.source.file), dir.path().join("b.yaml"));
    assert_eq!(b.source.root().pos().file, b.source.file);
    assert_eq!(cache.reused(), 1);
    cache.forget_missing();
    assert_eq!(cache.len(), 1);
}

#[test]
fn errors_of_a_changed_file_are_reported_with_file_and_line_and_unchanged_ones_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = "apiVersion: v1\nkind: Service\nmetadata: {name: c}\nspec:\n  hots: x\n";
    std::fs::write(dir.path().join("a.yaml"), A).expect("write");
    std::fs::write(dir.path().join("c.yaml"), bad).expect("write");
    let cache = Arc::new(ParseCache::new());
    let first = errors(&load(dir.path(), &cache));
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0].contains("c.yaml:5:3") && first[0].contains("hots"),
        "{first:?}"
    );
    // Unchanged: the same error, from the cache.
    assert_eq!(errors(&load(dir.path(), &cache)), first);

    // The good file breaks: its error is found, with its position.
    std::fs::write(dir.path().join("a.yaml"), format!("{A}  bogusField: [\n")).expect("edit");
    let now = errors(&load(dir.path(), &cache));
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now[0].contains("a.yaml:7:1: YAML syntax error"), "{now:?}");
    assert_eq!(now[1], first[0]);
    // Exactly what a load without the cache reports.
    let mut fresh = Loader::new();
    fresh.add_path(dir.path());
    assert_eq!(errors(&fresh.finish()), now);
}
