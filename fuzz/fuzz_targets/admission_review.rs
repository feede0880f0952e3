//! Arbitrary bytes as an AdmissionReview body, answered on both endpoints.
//!
//! Oracles: `review` never panics; an `Ok` body is JSON with `response.uid` (the request's
//! uid); `/validate` never patches; a `/mutate` patch is base64 of a JSON patch that
//! applies to `request.object`, and re-reviewing the patched object patches nothing more.

#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use deployguard_engine::admission::{Cluster, Endpoint, review};
use deployguard_engine::policy::Policy;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static DEFAULT: LazyLock<Policy> = LazyLock::new(Policy::default);
/// Also mutates the pod templates of controllers, so the template paths are fuzzed too.
static TEMPLATES: LazyLock<Policy> = LazyLock::new(|| {
    let mut policy = Policy::default();
    policy.go_runtime.mutate_templates = true;
    policy
});

fuzz_target!(|data: &[u8]| {
    check(&DEFAULT, Endpoint::Validate, data);
    check(&DEFAULT, Endpoint::Mutate, data);
    check(&TEMPLATES, Endpoint::Mutate, data);
});

/// A fixed day: a run (and a saved regression) judges the same whatever the date.
fn cluster() -> Cluster<'static> {
    Cluster::bare(jiff::civil::date(2026, 12, 8))
}

fn check(policy: &Policy, endpoint: Endpoint, data: &[u8]) {
    let Ok(outcome) = review(policy, cluster(), endpoint, data) else {
        return;
    };
    let body: Value = serde_json::from_slice(&outcome.body).expect("response body is not JSON");
    assert_eq!(body["kind"], "AdmissionReview", "{body}");
    let response = &body["response"];
    let uid = response["uid"].as_str().expect("response.uid missing");
    assert_eq!(uid, outcome.summary.uid);
    // The same bytes as a plain JSON value, to find the request's object.
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Some(sent) = input["request"]["uid"].as_str() {
        assert_eq!(uid, sent, "response.uid is not request.uid");
    }
    let Some(patch) = response.get("patch") else {
        assert_eq!(outcome.summary.patch_ops, 0, "patch_ops without a patch");
        return;
    };
    assert_eq!(
        endpoint,
        Endpoint::Mutate,
        "validate answered with a patch: {body}"
    );
    assert_eq!(response["patchType"], "JSONPatch");
    let encoded = patch.as_str().expect("patch is not a string");
    let decoded = BASE64.decode(encoded).expect("patch is not base64");
    let ops: json_patch::Patch =
        serde_json::from_slice(&decoded).expect("patch is not a JSON patch");
    assert_eq!(ops.0.len(), outcome.summary.patch_ops);
    assert!(!ops.0.is_empty(), "empty patch sent");
    let mut object = input["request"]["object"].clone();
    if let Err(error) = json_patch::patch(&mut object, &ops) {
        panic!(
            "patch does not apply: {error}\npatch: {}\nobject: {}",
            String::from_utf8_lossy(&decoded),
            input["request"]["object"]
        );
    }
    let mut again = input.clone();
    again["request"]["object"] = object;
    let again_bytes = serde_json::to_vec(&again).expect("serialise");
    let second = match review(policy, cluster(), endpoint, &again_bytes) {
        Ok(second) => second,
        Err(error) => panic!("the patched object is no longer reviewable: {error}"),
    };
    let second_body: Value = serde_json::from_slice(&second.body).expect("JSON");
    assert!(
        second_body["response"].get("patch").is_none(),
        "a reinvocation patches again: {}\nfirst patch: {}",
        second_body["response"],
        String::from_utf8_lossy(&decoded)
    );
}
