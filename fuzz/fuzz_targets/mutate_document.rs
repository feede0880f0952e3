//! Manifest documents from arbitrary text: `judge_document` and `mutate_document` never
//! panic, and mutation is idempotent (a second pass applies no operation and changes
//! nothing; a document the first pass read without error stays readable).

#![no_main]

use std::sync::LazyLock;

use deployguard_offline::documents::parse_documents;
use deployguard_offline::manifest::{judge_document, mutate_document};
use deployguard_engine::policy::Policy;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    let mut policy = Policy::default();
    policy.go_runtime.mutate_templates = true;
    policy
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_documents(text, false);
    if text.trim_start().starts_with(['{', '[']) {
        check_documents(text, true);
    }
});

fn check_documents(text: &str, json: bool) {
    for document in parse_documents(text, json).into_iter().flatten() {
        if let Some(value) = document.value {
            check(value);
        }
    }
}

fn check(original: Value) {
    let policy = &*POLICY;
    let _ = judge_document(&Policy::default(), &original);
    let _ = judge_document(policy, &original);
    let mut once = original.clone();
    let first = mutate_document(policy, &mut once);
    if first.ops == 0 {
        assert_eq!(
            once, original,
            "no operations applied but the document changed"
        );
    } else {
        assert_ne!(
            once, original,
            "{} operations applied but the document is unchanged",
            first.ops
        );
    }
    let mut twice = once.clone();
    let second = mutate_document(policy, &mut twice);
    assert!(
        second.ops == 0 && twice == once,
        "mutation is not idempotent: first {first:?}, second {second:?}\nafter first: {once}\nafter second: {twice}"
    );
    if first.errors.is_empty() {
        assert!(
            second.errors.is_empty(),
            "the mutated document became unreadable: {second:?}\n{once}"
        );
    }
    // The mutated document is still judgeable without panicking.
    let _ = judge_document(policy, &once);
}
