//! The TLS port's routes in-process (`Router::oneshot`, no sockets): every kind of bad
//! input gets the status and the message that names the problem. Over real TLS,
//! tests/server_http.rs sends a few of these on both HTTP versions and checks the metrics.

#[allow(dead_code)]
mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use common::corpus::repo_path;
use deployguard::policy::Policy;
use http_body_util::BodyExt;
use tower::ServiceExt;

const MAX_BODY_BYTES: usize = 65536;

fn denied_example() -> Vec<u8> {
    std::fs::read(repo_path("examples/admission-review-denied.json")).unwrap()
}

/// The denied example with one top-level field replaced.
fn with_top_level(field: &str, value: &str) -> Vec<u8> {
    let mut review: serde_json::Value = serde_json::from_slice(&denied_example()).unwrap();
    review[field] = value.into();
    serde_json::to_vec(&review).unwrap()
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Each bad request: method, path, body, expected status, words the message must contain.
fn bad_requests() -> Vec<(&'static str, &'static str, Vec<u8>, u16, &'static str)> {
    let deep = 20_000;
    vec![
        ("POST", "/validate", b"not json".to_vec(), 400, "not valid JSON"),
        ("POST", "/mutate", Vec::new(), 400, "not valid JSON"),
        ("POST", "/validate", b"[1, 2]".to_vec(), 400, "not an AdmissionReview"),
        (
            "POST",
            "/validate",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"x"}"#.to_vec(),
            400,
            "not an AdmissionReview",
        ),
        (
            "POST",
            "/mutate",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            400,
            "AdmissionReview has no request",
        ),
        (
            "POST",
            "/validate",
            with_top_level("apiVersion", "admission.k8s.io/v2"),
            400,
            "unsupported AdmissionReview apiVersion \"admission.k8s.io/v2\"",
        ),
        (
            "POST",
            "/validate",
            with_top_level("kind", "Pod"),
            400,
            "unexpected kind \"Pod\": expected AdmissionReview",
        ),
        ("POST", "/validate", nested(deep).into_bytes(), 400, "not an AdmissionReview"),
        (
            "POST",
            "/mutate",
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Pod"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"operation":"CREATE","userInfo":{{}},"object":{{"metadata":{{"labels":{}}}}}}}}}"#,
                nested(deep)
            )
            .into_bytes(),
            400,
            "invalid type: sequence, expected a map",
        ),
        // Nesting where no rule reads is skipped without recursion.
        (
            "POST",
            "/validate",
            format!(r#"{{"unknown":{}}}"#, nested(deep)).into_bytes(),
            400,
            "missing field `apiVersion`",
        ),
        (
            "POST",
            "/validate",
            vec![b' '; MAX_BODY_BYTES + 1],
            413,
            "larger than the limit of 65536 bytes",
        ),
        ("GET", "/validate", Vec::new(), 405, "method GET is not allowed on /validate: use POST"),
        ("PUT", "/mutate", b"{}".to_vec(), 405, "use POST"),
        ("POST", "/healthz", Vec::new(), 405, "use GET"),
        ("DELETE", "/readyz", Vec::new(), 405, "use GET"),
        ("GET", "/", Vec::new(), 404, "no route /"),
        ("POST", "/validate/extra", b"{}".to_vec(), 404, "no route /validate/extra"),
    ]
}

#[tokio::test]
async fn bad_input_gets_a_4xx_that_names_the_problem() {
    let router =
        deployguard::server::router(Policy::default(), MAX_BODY_BYTES, Duration::from_secs(10));
    for (method, path, body, status, message) in bad_requests() {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        if status == 405 {
            let allow = response.headers()["allow"].to_str().unwrap().to_owned();
            assert!(message.ends_with(&allow), "{method} {path}: Allow: {allow}");
        }
        let text = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&text);
        assert!(
            text.contains(message),
            "{method} {path}: {text:?} does not say {message:?}"
        );
    }
}
