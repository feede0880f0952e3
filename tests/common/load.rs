//! Clients looping requests against a server (keep-alive and fresh connections, both
//! HTTP versions), the checks of what they got, and a request body fed chunk by chunk.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::clients::{Http, client, expected_version, peer_certificate};
use super::corpus::{ALLOWED, DENIED, corpus_review};
use super::wait::{PATIENCE, eventually};

/// How a looping client of a [`Load`] connects: one client reused for every request
/// (keep-alive), or a new client, so a new connection and handshake, for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    KeepAlive,
    Fresh,
}

/// Keep-alive and fresh-connection clients over both HTTP versions.
pub const EVERY_CLIENT: [(Http, Reuse); 4] = [
    (Http::One, Reuse::KeepAlive),
    (Http::Two, Reuse::KeepAlive),
    (Http::One, Reuse::Fresh),
    (Http::Two, Reuse::Fresh),
];

/// What one request of a [`Load`] got.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Index of the looping client in the list given to [`Load::start`].
    pub client: usize,
    pub http: Http,
    pub reuse: Reuse,
    /// Index of the request in the list given to [`Load::start`].
    pub request: usize,
    pub started: std::time::Instant,
    pub took: Duration,
    /// Status, body and the certificate presented on the connection; or the error.
    pub result: Result<(u16, Vec<u8>, Vec<u8>), String>,
}

/// Clients looping POSTs until stopped, each request's outcome recorded in completion order.
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    outcomes: Arc<std::sync::Mutex<Vec<Outcome>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// One task per `clients` entry, each POSTing the `requests` (path, body) in turn, from a
    /// different starting point, to `https://addr`, verifying `ca_pem`.
    pub fn start(
        addr: SocketAddr,
        ca_pem: &str,
        clients: &[(Http, Reuse)],
        requests: &[(&'static str, Vec<u8>)],
    ) -> Load {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = Arc::new(requests.to_vec());
        let tasks = clients
            .iter()
            .enumerate()
            .map(|(index, &(http, reuse))| {
                let (stop, outcomes, requests) = (stop.clone(), outcomes.clone(), requests.clone());
                let ca_pem = ca_pem.to_owned();
                tokio::spawn(async move {
                    let kept = client(&ca_pem, http);
                    let mut turn = index;
                    while !stop.load(Ordering::SeqCst) {
                        let request = turn % requests.len();
                        turn += 1;
                        let (path, body) = &requests[request];
                        let started = std::time::Instant::now();
                        let fresh;
                        let client = match reuse {
                            Reuse::KeepAlive => &kept,
                            Reuse::Fresh => {
                                fresh = client(&ca_pem, http);
                                &fresh
                            }
                        };
                        let result =
                            load_request(client, http, &format!("https://{addr}{path}"), body)
                                .await;
                        outcomes.lock().unwrap().push(Outcome {
                            client: index,
                            http,
                            reuse,
                            request,
                            started,
                            took: started.elapsed(),
                            result,
                        });
                    }
                })
            })
            .collect();
        Load {
            stop,
            outcomes,
            tasks,
        }
    }

    /// How many requests have completed.
    pub fn len(&self) -> usize {
        self.outcomes.lock().unwrap().len()
    }

    /// The outcomes of the requests completed after the first `from`.
    pub fn since(&self, from: usize) -> Vec<Outcome> {
        self.outcomes.lock().unwrap()[from..].to_vec()
    }

    /// Waits until every client has completed `count` more requests.
    pub async fn more(&self, count: usize) {
        let per_client = || {
            let outcomes = self.outcomes.lock().unwrap();
            let mut counts = vec![0; self.tasks.len()];
            for outcome in outcomes.iter() {
                counts[outcome.client] += 1;
            }
            counts
        };
        let targets: Vec<usize> = per_client().iter().map(|done| done + count).collect();
        eventually(
            &format!("{count} more requests from every client of the load"),
            || async {
                let counts = per_client();
                counts
                    .iter()
                    .zip(&targets)
                    .all(|(done, target)| done >= target)
                    .then_some(())
            },
        )
        .await;
    }

    /// Stops the clients (each finishes the request it is making) and returns every outcome.
    pub async fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for task in self.tasks {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("a looping client did not stop")
                .unwrap();
        }
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

async fn load_request(
    client: &reqwest::Client,
    http: Http,
    url: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>, Vec<u8>), String> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    if response.version() != expected_version(http) {
        return Err(format!("answered over {:?}", response.version()));
    }
    let status = response.status().as_u16();
    let cert = peer_certificate(&response);
    let body = response.bytes().await.map_err(|e| format!("{e:?}"))?;
    Ok((status, body.to_vec(), cert))
}

/// The outcomes that are not a 200 with `expected[request]` as the body, described.
pub fn wrong_answers(outcomes: &[Outcome], expected: &[Vec<u8>]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|outcome| {
            let what = format!(
                "client {} ({:?} {:?}) request {}",
                outcome.client, outcome.http, outcome.reuse, outcome.request
            );
            match &outcome.result {
                Err(error) => Some(format!("{what}: failed: {error}")),
                Ok((status, _, _)) if *status != 200 => Some(format!("{what}: status {status}")),
                Ok((_, body, _)) if *body != expected[outcome.request] => Some(format!(
                    "{what}: a different answer: {}",
                    String::from_utf8_lossy(body)
                )),
                Ok(_) => None,
            }
        })
        .collect()
}

/// What the well-behaved clients send: a review that is denied and one that is patched.
pub fn normal_requests() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("/validate", corpus_review(DENIED)),
        ("/mutate", corpus_review(ALLOWED)),
    ]
}

/// The chart's default `timeoutSeconds`: an answer later than this is a failed admission
/// call, however right it is. (A correctness bound, orders of magnitude above the
/// milliseconds a review takes; speed itself is measured in BENCHMARKS.md.)
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Every outcome is the right answer, within [`WEBHOOK_TIMEOUT`], and every client of
/// [`EVERY_CLIENT`] made requests.
pub fn assert_all_answered(outcomes: &[Outcome], expected: &[Vec<u8>]) {
    let wrong = wrong_answers(outcomes, expected);
    assert!(
        wrong.is_empty(),
        "{} of {} requests failed or were answered wrongly; the first ones:\n{}",
        wrong.len(),
        outcomes.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
    for client in 0..EVERY_CLIENT.len() {
        assert!(
            outcomes.iter().any(|outcome| outcome.client == client),
            "client {client} made no request"
        );
    }
    let slowest = outcomes.iter().map(|outcome| outcome.took).max();
    assert!(
        slowest < Some(WEBHOOK_TIMEOUT),
        "the slowest of {} answers took {slowest:?}, past the webhook timeout",
        outcomes.len()
    );
}

/// A request body whose chunks the test hands over one by one; it ends when the sender is
/// dropped. `send` returns once the previous chunk was taken, and fails once the client has
/// given up on the body.
pub fn body_channel() -> (tokio::sync::mpsc::Sender<hyper::body::Bytes>, reqwest::Body) {
    struct ChannelBody(tokio::sync::mpsc::Receiver<hyper::body::Bytes>);
    impl hyper::body::Body for ChannelBody {
        type Data = hyper::body::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|chunk| chunk.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
        }
    }
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    (sender, reqwest::Body::wrap(ChannelBody(receiver)))
}
