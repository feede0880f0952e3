//! The shared corpus and the repository's examples, as the tests read them.

use std::path::{Path, PathBuf};

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

pub fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every AdmissionReview of the corpus (bare AdmissionRequests wrapped) and the examples.
pub fn admission_reviews() -> Vec<(String, Vec<u8>)> {
    let mut reviews = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths.push(repo_path("examples/admission-review.json"));
    paths.push(repo_path("examples/admission-review-denied.json"));
    paths.push(repo_path("examples/admission-review-resize.json"));
    paths.push(repo_path("examples/admission-review-reinvocation.json"));
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if value["kind"] == "AdmissionReview" {
            reviews.push((name, bytes));
        } else if value.get("uid").is_some() && value.get("operation").is_some() {
            let wrapped = serde_json::json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": value,
            });
            reviews.push((name, serde_json::to_vec(&wrapped).unwrap()));
        }
    }
    reviews
}

pub const DENIED: &str = "admission-review-denied.json";
pub const ALLOWED: &str = "admission-review.json";

/// A real AdmissionReview of the corpus, by file name.
pub fn corpus_review(name: &str) -> Vec<u8> {
    admission_reviews()
        .into_iter()
        .find(|(file, _)| file == name)
        .unwrap_or_else(|| panic!("no {name} among the AdmissionReviews"))
        .1
}
