//! A "billion laughs" document is refused at the alias that crosses the expansion budget, as a
//! syntax error costing only its own document; the documents around it still load.

use strait_api::{Kind, Loader, Problem};

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: app}\nspec:\n  ports: [{port: 80}]\n";

#[test]
fn alias_bomb_is_a_syntax_error_at_its_alias() {
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n  a: &a [x, x, x, x, x, x, x, x, x]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(", ");
        bomb.push_str(&format!("  {}: &{} [{refs}]\n", w[1], w[1]));
    }
    let text = format!("{SERVICE}---\n{bomb}---\n{SERVICE}");
    let mut l = Loader::new();
    l.add_text("dump.yaml", text.as_str());
    let loaded = l.finish();

    let syntax: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.problem == Problem::Syntax)
        .collect();
    assert_eq!(syntax.len(), 1, "{:?}", loaded.diagnostics);
    let d = syntax[0];
    assert!(d.message.contains("alias bomb"), "{}", d.message);
    let pos = d.pos.expect("a position");
    let line = text
        .lines()
        .nth(pos.line as usize - 1)
        .expect("the line exists");
    assert_eq!(
        line.as_bytes().get(pos.column as usize - 1),
        Some(&b'*'),
        "{pos:?} should point at an alias in {line:?}"
    );
    // The bomb cost only its own document.
    let services = loaded
        .objects
        .iter()
        .filter(|o| o.kind == Kind::Service)
        .count();
    assert_eq!(services, 2);
    assert!(!loaded.objects.iter().any(|o| o.kind == Kind::ConfigMap));
}
