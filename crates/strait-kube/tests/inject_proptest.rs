//! The AdmissionReview parser and the injector behind it against arbitrary input: never a
//! panic. The same entry point runs under libFuzzer (`fuzz/fuzz_targets/admission_review.rs`).

mod support;

use proptest::prelude::*;
use serde_json::Value;
use strait_kube::inject::fuzzing::review_bytes;
use support::review_json;

#[test]
fn the_hand_written_reviews_are_reviews() {
    for name in ["deployment-pod.json", "job-pod.json", "gateway-pod.json"] {
        assert!(
            review_bytes(review_json(name).to_string().as_bytes()),
            "{name}"
        );
    }
}

/// A JSON value of any shape, to put where the pod's fields go.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z/.~-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z/.~]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&[&str]] = &[
    &["metadata", "labels"],
    &["metadata", "annotations"],
    &["metadata", "ownerReferences"],
    &["metadata", "generateName"],
    &["spec", "containers"],
    &["spec", "initContainers"],
    &["spec", "volumes"],
    &["spec", "hostNetwork"],
    &["spec", "restartPolicy"],
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        review_bytes(&data);
    }

    #[test]
    fn any_field_of_a_real_pod_never_panics(
        field in 0..FIELDS.len(),
        value in any_json(),
        which in 0..3usize,
    ) {
        let name = ["deployment-pod.json", "job-pod.json", "gateway-pod.json"][which];
        let mut doc = review_json(name);
        let path = FIELDS[field];
        doc["request"]["object"][path[0]][path[1]] = value;
        prop_assert!(review_bytes(doc.to_string().as_bytes()));
    }
}
