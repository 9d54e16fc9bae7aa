use super::re2_problem;

#[test]
fn re2_light_check() {
    for ok in [
        "/api/v[0-9]+/.*",
        "^(foo|bar)$",
        "a{2,3}",
        "[]a]",
        "(?i)abc",
        "(?P<n>x)+",
        "(?<n>x)",
        "(?i:ab)*",
        "x*?",
        "\\d+",
        "[[:alpha:]]+",
        "{",
        "a{x}",
    ] {
        assert_eq!(re2_problem(ok), None, "{ok}");
    }
    for bad in [
        "*.example.com",
        "(abc",
        "abc)",
        "[abc",
        "(?=x)",
        "(?<!x)y",
        "(a)\\1",
        "a**",
        "|+",
    ] {
        assert!(re2_problem(bad).is_some(), "{bad}");
    }
}
