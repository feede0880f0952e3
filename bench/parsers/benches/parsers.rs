//! serde_json, sonic-rs and simd-json parsing the same typed, borrowed view of the
//! corpus's AdmissionReviews. Run: `cd bench/parsers && cargo bench`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use deployguard_parser_comparison::{Review, corpus_reviews};

const POD: &str = "kubewarden_policy-server__tests__data__pod_without_privileged_containers.json";

fn parsers(c: &mut Criterion) {
    let reviews = corpus_reviews();
    let pod = reviews
        .iter()
        .find(|(name, _)| name == POD)
        .map(|(_, body)| body.clone())
        .unwrap_or_default();
    let total: usize = reviews.iter().map(|(_, body)| body.len()).sum();
    println!("corpus: {} AdmissionReviews, {total} bytes; pod: {} bytes", reviews.len(), pod.len());
    for (what, bodies) in [("5.4 KB Pod", vec![pod]), ("corpus", reviews.into_iter().map(|(_, b)| b).collect())] {
        c.bench_function(&format!("serde_json {what}"), |b| {
            b.iter(|| {
                for body in &bodies {
                    black_box(serde_json::from_slice::<Review<'_>>(black_box(body)).ok());
                }
            })
        });
        c.bench_function(&format!("sonic-rs {what}"), |b| {
            b.iter(|| {
                for body in &bodies {
                    black_box(sonic_rs::from_slice::<Review<'_>>(black_box(body)).ok());
                }
            })
        });
        // simd-json parses in place: each iteration copies the body first, as a server
        // handing it the request buffer would not need to (the copy is measured below).
        let mut scratch: Vec<Vec<u8>> = bodies.clone();
        c.bench_function(&format!("simd-json {what}"), |b| {
            b.iter(|| {
                for (body, buffer) in bodies.iter().zip(scratch.iter_mut()) {
                    buffer.copy_from_slice(body);
                    black_box(simd_json::serde::from_slice::<Review<'_>>(buffer).ok());
                }
            })
        });
        c.bench_function(&format!("copy only {what}"), |b| {
            b.iter(|| {
                for (body, buffer) in bodies.iter().zip(scratch.iter_mut()) {
                    buffer.copy_from_slice(black_box(body));
                    black_box(&buffer);
                }
            })
        });
    }
}

criterion_group!(benches, parsers);
criterion_main!(benches);
