//! The shape deployguard reads from an AdmissionReview (`src/admission/request.rs`,
//! `src/object.rs`, `src/policy/podspec/read.rs`), typed all the way down so that every
//! parser does the same work: deployguard itself keeps the pod spec as serde_json's
//! `RawValue`, which only serde_json can produce.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

type Map<'a> = BTreeMap<Cow<'a, str>, Cow<'a, str>>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review<'a> {
    #[serde(borrow)]
    pub api_version: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub request: Option<Request<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request<'a> {
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    pub kind: IgnoredAny,
    pub resource: IgnoredAny,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub operation: Cow<'a, str>,
    pub user_info: IgnoredAny,
    #[serde(borrow, default)]
    pub object: Option<Object<'a>>,
    #[serde(borrow, default)]
    pub old_object: Option<Object<'a>>,
}

#[derive(Deserialize)]
pub struct Object<'a> {
    #[serde(borrow, default)]
    pub metadata: Option<Meta<'a>>,
    #[serde(borrow, default)]
    pub spec: Option<Spec<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub labels: Option<Map<'a>>,
    #[serde(borrow, default)]
    pub annotations: Option<Map<'a>>,
}

/// A Pod's spec, or a controller's (whose `template.spec` is a Pod's).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec<'a> {
    #[serde(borrow, default)]
    pub containers: Option<Vec<Container<'a>>>,
    #[serde(borrow, default)]
    pub init_containers: Option<Vec<Container<'a>>>,
    #[serde(borrow, default)]
    pub template: Option<Box<Object<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(borrow, default)]
    pub env: Option<Vec<Env<'a>>>,
    #[serde(default)]
    pub liveness_probe: Option<Probe>,
    #[serde(default)]
    pub readiness_probe: Option<Probe>,
}

#[derive(Deserialize)]
pub struct Resources {
    pub limits: Option<BTreeMap<String, IgnoredAny>>,
    pub requests: Option<BTreeMap<String, IgnoredAny>>,
}

#[derive(Deserialize)]
pub struct Env<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub value: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub http_get: Option<IgnoredAny>,
    pub period_seconds: Option<i64>,
    pub timeout_seconds: Option<i64>,
}

/// Every AdmissionReview in the corpus (`../shared/corpus` beside the repository).
pub fn corpus_reviews() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut reviews = Vec::new();
    for path in entries.flatten().map(|entry| entry.path()) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let is_review = path.extension().is_some_and(|e| e == "json")
            && serde_json::from_slice::<Review<'_>>(&bytes)
                .is_ok_and(|review| review.kind == "AdmissionReview" && review.request.is_some());
        if is_review {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            reviews.push((name.unwrap_or_default(), bytes));
        }
    }
    reviews.sort();
    reviews
}
