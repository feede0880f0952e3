//! The full HTTP handler without TLS or sockets: request → routes, middleware (timeout,
//! in-flight gauge, panic guard), body limit, review, metrics, the JSON log line → response
//! bytes. The same two corpus bodies as `bench/load.sh`, so the gap between this and the
//! load test is TLS, HTTP framing and the network stack.
//! Run: `cargo bench --bench http_handler`.

use std::hint::black_box;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, header};
use criterion::{Criterion, criterion_group, criterion_main};
use deployguard::policy::Policy;
use http_body_util::BodyExt;
use tower::ServiceExt;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/");

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!("{CORPUS}{name}"))
        .expect("corpus file (../shared/corpus beside the repo)")
}

fn http_handler(c: &mut Criterion) {
    // The server logs one JSON line per review; its formatting cost belongs in the figure.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::sink)
        .finish();
    let _log = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let router = deployguard::server::router(Policy::default(), 7 << 20, Duration::from_secs(4));
    let cases = [
        (
            "/mutate",
            "Pod CREATE",
            corpus("kubewarden_policy-server__tests__data__pod_without_privileged_containers.json"),
        ),
        (
            "/validate",
            "3-container Deployment CREATE",
            corpus("phenixblue_imageswap-webhook__testing__deployments__test-deploy04.json"),
        ),
    ];
    for (path, what, body) in cases {
        let body = Bytes::from(body);
        c.bench_function(&format!("POST {path} {what}"), |b| {
            b.iter(|| {
                let request = Request::post(path)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.clone()))
                    .expect("request");
                let response = runtime.block_on(async {
                    let response = router.clone().oneshot(request).await.expect("infallible");
                    assert!(response.status().is_success(), "{}", response.status());
                    response
                        .into_body()
                        .collect()
                        .await
                        .expect("body")
                        .to_bytes()
                });
                black_box(response)
            })
        });
    }
}

criterion_group!(benches, http_handler);
criterion_main!(benches);
