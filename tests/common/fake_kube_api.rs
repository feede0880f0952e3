//! A plain-HTTP stand-in for the Kubernetes API's LimitRange endpoints, as the API
//! documents them (api-concepts: "Efficient detection of changes", "Watch bookmarks"):
//!
//! - `GET /api/v1/limitranges`: a `LimitRangeList` with the current resourceVersion;
//! - `GET /api/v1/limitranges?watch=true&resourceVersion=N`: newline-delimited watch
//!   events after N (replayed from a log, then live), or one `ERROR` event with a 410
//!   `Status` when N is older than the log keeps ("too old resource version");
//! - `GET /api/v1/namespaces/NS/limitranges`: the namespace's list (deployguard's live read).
//!
//! Tests change the state with or without events (a change without an event stands for
//! one lost to compaction), close the watch streams, expire them with 410, and make lists
//! hang or the namespaced list fail. Plain HTTP, or HTTPS with a test certificate (for
//! the kubeconfig path: CA, bearer token, kube-rs's rustls).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::pki::CertPair;
use super::tls_server::{https_acceptor, serve_https};

/// How the fake answers a kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Normal,
    /// Never answers (until set back to Normal: requests waiting then proceed).
    Hang,
    /// 403 Forbidden with a Status, as the API answers without RBAC.
    Forbidden,
}

#[derive(Default)]
struct State_ {
    resource_version: u64,
    /// Objects by namespace and name.
    objects: BTreeMap<(String, String), Value>,
    /// Watch events by resourceVersion; a watch from before `compacted` gets 410.
    log: Vec<(u64, Value)>,
    compacted: u64,
    streams: Vec<mpsc::UnboundedSender<Bytes>>,
    /// Every request, `path?query`.
    requests: Vec<String>,
    /// The Authorization header of every request that had one.
    authorizations: Vec<String>,
}

#[derive(Clone)]
pub struct FakeApi {
    state: Arc<Mutex<State_>>,
    lists: Arc<watch::Sender<Answer>>,
    namespaced: Arc<watch::Sender<Answer>>,
    pub addr: SocketAddr,
    tls: bool,
}

/// A LimitRange object with one `Container` item made of `item` (`max`, `default`, ...).
pub fn limit_range(namespace: &str, name: &str, item: Value) -> Value {
    let mut item = item;
    item["type"] = json!("Container");
    json!({
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}")},
        "spec": {"limits": [item]}
    })
}

impl FakeApi {
    /// Serving plain HTTP on a loopback port, holding `objects` at resourceVersion 1.
    pub async fn start(objects: &[Value]) -> FakeApi {
        let (api, listener, router) = FakeApi::new(objects, false).await;
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        api
    }

    /// The same over HTTPS (HTTP/1.1) with `cert`.
    pub async fn start_tls(objects: &[Value], cert: &CertPair) -> FakeApi {
        let (api, listener, router) = FakeApi::new(objects, true).await;
        let acceptor = https_acceptor(cert);
        tokio::spawn(async move { serve_https(listener, router, acceptor).await });
        api
    }

    async fn new(objects: &[Value], tls: bool) -> (FakeApi, tokio::net::TcpListener, Router) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = FakeApi {
            state: Arc::new(Mutex::new(State_ {
                resource_version: 1,
                ..State_::default()
            })),
            lists: Arc::new(watch::channel(Answer::Normal).0),
            namespaced: Arc::new(watch::channel(Answer::Normal).0),
            addr,
            tls,
        };
        for object in objects {
            api.store(object.clone(), None);
        }
        let router = Router::new()
            .route("/api/v1/limitranges", get(cluster))
            .route(
                "/api/v1/namespaces/{namespace}/limitranges",
                get(namespaced),
            )
            .with_state(api.clone());
        (api, listener, router)
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// A kubeconfig for this API that trusts `ca_pem` and sends `token`.
    pub fn kubeconfig(&self, ca_pem: &str, token: &str) -> String {
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
        let server = self.url();
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: deployguard
  user:
    token: {token}
contexts:
- name: fake
  context: {{cluster: fake, user: deployguard}}
current-context: fake
"
        )
    }

    /// The Authorization headers received so far.
    pub fn authorizations(&self) -> Vec<String> {
        self.state.lock().unwrap().authorizations.clone()
    }

    pub fn set_lists(&self, answer: Answer) {
        self.lists.send_replace(answer);
    }

    pub fn set_namespaced(&self, answer: Answer) {
        self.namespaced.send_replace(answer);
    }

    /// Creates or replaces an object, with an ADDED or MODIFIED event.
    pub fn apply(&self, object: Value) {
        self.store(object, Some(()));
    }

    /// Creates or replaces an object without any event (as if compaction had lost it).
    pub fn apply_silently(&self, object: Value) {
        self.store(object, None);
    }

    fn store(&self, mut object: Value, event: Option<()>) {
        let mut state = self.state.lock().unwrap();
        state.resource_version += 1;
        let version = state.resource_version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let key = key_of(&object);
        let kind = if state.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        state.objects.insert(key, object.clone());
        if event.is_some() {
            emit(&mut state, version, json!({"type": kind, "object": object}));
        }
    }

    /// Deletes an object with a DELETED event (`silently`: without one).
    pub fn delete(&self, namespace: &str, name: &str, silently: bool) {
        let mut state = self.state.lock().unwrap();
        let Some(mut object) = state
            .objects
            .remove(&(namespace.to_owned(), name.to_owned()))
        else {
            return;
        };
        state.resource_version += 1;
        let version = state.resource_version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        if !silently {
            emit(
                &mut state,
                version,
                json!({"type": "DELETED", "object": object}),
            );
        }
    }

    /// A BOOKMARK event at the current resourceVersion on every open stream.
    pub fn bookmark(&self) {
        let mut state = self.state.lock().unwrap();
        let version = state.resource_version.to_string();
        let event = json!({
            "type": "BOOKMARK",
            "object": {"kind": "LimitRange", "apiVersion": "v1", "metadata": {"resourceVersion": version}}
        });
        broadcast(&mut state, &event);
    }

    /// Compacts the event log and sends every open stream the 410 ERROR event that the API
    /// sends a watch whose resourceVersion is too old, then closes it.
    pub fn expire(&self) {
        let mut state = self.state.lock().unwrap();
        state.compacted = state.resource_version;
        state.log.clear();
        let event = gone(state.resource_version);
        broadcast(&mut state, &event);
        state.streams.clear();
    }

    /// Closes every open watch stream, as a restarted API server or a load balancer does.
    pub fn close_streams(&self) {
        self.state.lock().unwrap().streams.clear();
    }

    /// Watch streams open now.
    pub fn open_streams(&self) -> usize {
        let mut state = self.state.lock().unwrap();
        state.streams.retain(|stream| !stream.is_closed());
        state.streams.len()
    }

    pub fn resource_version(&self) -> u64 {
        self.state.lock().unwrap().resource_version
    }

    /// The requests so far whose `path?query` satisfies `matches`.
    pub fn requests(&self, matches: impl Fn(&str) -> bool) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .requests
            .iter()
            .filter(|r| matches(r))
            .cloned()
            .collect()
    }

    /// Cluster-wide lists so far (not watches).
    pub fn cluster_lists(&self) -> usize {
        self.requests(|r| r.starts_with("/api/v1/limitranges") && !r.contains("watch=true"))
            .len()
    }

    /// Watch requests so far.
    pub fn watches(&self) -> Vec<String> {
        self.requests(|r| r.starts_with("/api/v1/limitranges") && r.contains("watch=true"))
    }

    fn record(&self, path: &str, query: &Option<String>, headers: &HeaderMap) {
        let line = match query {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        let mut state = self.state.lock().unwrap();
        state.requests.push(line);
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            state.authorizations.push(value);
        }
    }
}

fn key_of(object: &Value) -> (String, String) {
    let field = |name: &str| object["metadata"][name].as_str().unwrap().to_owned();
    (field("namespace"), field("name"))
}

fn emit(state: &mut State_, version: u64, event: Value) {
    state.log.push((version, event.clone()));
    broadcast(state, &event);
}

fn broadcast(state: &mut State_, event: &Value) {
    let line = Bytes::from(format!("{event}\n"));
    state
        .streams
        .retain(|stream| stream.send(line.clone()).is_ok());
}

fn gone(current: u64) -> Value {
    json!({
        "type": "ERROR",
        "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure",
            "message": format!("too old resource version: 1 ({current})"),
            "reason": "Expired", "code": 410
        }
    })
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16()
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Waits while `answer` is Hang; the answer to give then.
async fn when_answering(answer: &watch::Sender<Answer>) -> Answer {
    let mut receiver = answer.subscribe();
    // The borrow ends here: it must not live across an await (it is not Send).
    let answered = receiver.wait_for(|a| *a != Answer::Hang).await.map(|a| *a);
    match answered {
        Ok(answer) => answer,
        Err(_) => std::future::pending().await,
    }
}

fn list(state: &State_, namespace: Option<&str>) -> Response {
    let items: Vec<&Value> = state
        .objects
        .iter()
        .filter(|((ns, _), _)| namespace.is_none_or(|wanted| wanted == ns))
        .map(|(_, object)| object)
        .collect();
    let body = json!({
        "kind": "LimitRangeList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": state.resource_version.to_string()},
        "items": items
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn query_param<'q>(query: &'q Option<String>, name: &str) -> Option<&'q str> {
    query
        .as_deref()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

async fn cluster(
    State(api): State<FakeApi>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    api.record("/api/v1/limitranges", &query, &headers);
    if query_param(&query, "watch") != Some("true") {
        if when_answering(&api.lists).await == Answer::Forbidden {
            return status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "limitranges is forbidden",
            );
        }
        return list(&api.state.lock().unwrap(), None);
    }
    let from: u64 = query_param(&query, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (sender, receiver) = mpsc::unbounded_channel();
    {
        let mut state = api.state.lock().unwrap();
        if from < state.compacted {
            let _ = sender.send(Bytes::from(format!("{}\n", gone(state.resource_version))));
            drop(sender);
        } else {
            for (version, event) in &state.log {
                if *version > from {
                    let _ = sender.send(Bytes::from(format!("{event}\n")));
                }
            }
            state.streams.push(sender);
        }
    }
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let line = receiver.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(line), receiver))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn namespaced(
    State(api): State<FakeApi>,
    Path(namespace): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let path = format!("/api/v1/namespaces/{namespace}/limitranges");
    api.record(&path, &query, &headers);
    if when_answering(&api.namespaced).await == Answer::Forbidden {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "limitranges is forbidden",
        );
    }
    list(&api.state.lock().unwrap(), Some(&namespace))
}
