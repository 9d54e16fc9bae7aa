//! Entry points shared by `fuzz/` (libFuzzer) and the property tests. Not a stable API.

use super::config::Config;
use super::review::review;

/// Feeds `data` to the AdmissionReview parser and the injector behind it, as the webhook does
/// with a request body. It must never panic; whatever it answers must carry the request's uid
/// and, when it patches, a patch that decodes. Returns whether `data` was a review.
pub fn review_bytes(data: &[u8]) -> bool {
    // Every namespace injected, so that the patch builders see every input too.
    let mut config = Config::new("strait:fuzz");
    config.network = "network1".into();
    config.inject_by_default = true;
    let Ok(answer) = review(data, &config) else {
        return false;
    };
    let response = &answer.response;
    assert!(!response.uid.is_empty(), "answered a review without a uid");
    if response.patch.is_some() {
        assert!(
            response.decoded_patch().is_some_and(|p| p.is_array()),
            "the patch does not decode to a JSON array"
        );
    }
    true
}
