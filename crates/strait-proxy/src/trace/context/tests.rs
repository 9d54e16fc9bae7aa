use http::HeaderMap;
use proptest::prelude::*;

use super::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).expect("value"));
    }
    h
}

#[test]
fn traceparent_is_read() {
    let e = extract(&headers(&[(
        "traceparent",
        &format!("00-{TRACE}-{SPAN}-01"),
    )]));
    let p = e.parent.expect("parent");
    assert_eq!(hex(&p.trace_id), TRACE);
    assert_eq!(hex(&p.span_id), SPAN);
    assert_eq!(e.sampled, Some(true));
}

#[test]
fn bad_traceparents_are_ignored() {
    for bad in [
        format!("ff-{TRACE}-{SPAN}-01"),
        format!("00-{}-{SPAN}-01", "0".repeat(32)),
        format!("00-{TRACE}-{}-01", "0".repeat(16)),
        format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
        format!("00-{TRACE}-{SPAN}-01-extra"),
        format!("00-{TRACE}-{SPAN}"),
        "garbage".to_string(),
    ] {
        assert_eq!(parse_traceparent(&bad), None, "{bad}");
    }
    // A later version may carry more fields.
    assert!(parse_traceparent(&format!("01-{TRACE}-{SPAN}-00-more")).is_some());
}

#[test]
fn b3_forms_are_read() {
    let single = parse_b3_single(&format!("{TRACE}-{SPAN}-d-{SPAN}")).expect("b3");
    assert!(single.debug && single.sampled == Some(true));
    assert_eq!(
        parse_b3_single("0"),
        Some(Extracted {
            parent: None,
            sampled: Some(false),
            debug: false
        })
    );
    let multi = extract(&headers(&[
        ("x-b3-traceid", "a3ce929d0e0e4736"),
        ("x-b3-spanid", SPAN),
        ("x-b3-sampled", "0"),
    ]));
    let p = multi.parent.expect("parent");
    assert_eq!(hex(&p.trace_id), "0000000000000000a3ce929d0e0e4736");
    assert_eq!(multi.sampled, Some(false));
    // A trace id without a span id is no context.
    assert_eq!(extract(&headers(&[("x-b3-traceid", TRACE)])).parent, None);
}

#[test]
fn injected_formats_agree() {
    let mut h = headers(&[("b3", "1"), ("x-b3-flags", "1")]);
    let ctx = Outgoing {
        trace_id: [7; 16],
        span_id: [9; 8],
        parent: Some([3; 8]),
        sampled: true,
        debug: false,
    };
    inject(&mut h, &ctx);
    let w3c = extract(&h);
    let b3 = parse_b3_multi(
        h.get("x-b3-traceid").and_then(|v| v.to_str().ok()),
        h.get("x-b3-spanid").and_then(|v| v.to_str().ok()),
        h.get("x-b3-sampled").and_then(|v| v.to_str().ok()),
        None,
    );
    let single = h
        .get("b3")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_b3_single)
        .expect("b3");
    assert_eq!(w3c.parent, b3.parent);
    assert_eq!(w3c.parent, single.parent);
    assert!(!h.contains_key("x-b3-flags"));
    assert_eq!(
        h.get("x-b3-parentspanid").and_then(|v| v.to_str().ok()),
        Some("0303030303030303")
    );
}

proptest! {
    #[test]
    fn any_header_values_parse_without_panicking(
        tp in ".{0,80}", b3 in ".{0,80}", t in ".{0,40}", s in ".{0,20}", f in ".{0,3}"
    ) {
        let _ = parse_traceparent(&tp);
        let _ = parse_b3_single(&b3);
        let _ = parse_b3_multi(Some(&t), Some(&s), Some(&f), Some(&f));
    }

    #[test]
    fn what_is_injected_is_read_back(
        trace in any::<[u8; 16]>(), span in any::<[u8; 8]>(), sampled in any::<bool>()
    ) {
        prop_assume!(trace != [0; 16] && span != [0; 8]);
        let mut h = HeaderMap::new();
        inject(&mut h, &Outgoing { trace_id: trace, span_id: span, parent: None, sampled, debug: false });
        let e = extract(&h);
        prop_assert_eq!(e.parent, Some(Parent { trace_id: trace, span_id: span }));
        prop_assert_eq!(e.sampled, Some(sampled));
    }
}
