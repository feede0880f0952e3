//! A plain-HTTP stand-in for the Kubernetes API's list and apply endpoints, as the API
//! documents them (api-concepts: "Retrieving large results sets in chunks", "Server-Side
//! Apply"), for any resource: `GET /api/v1/[namespaces/NS/]PLURAL` and
//! `GET /apis/GROUP/VERSION/[namespaces/NS/]PLURAL` answer a List of the stored objects
//! (without their `apiVersion`/`kind`, as list items come), in pages of `limit` with
//! `metadata.continue`; `PATCH .../NAME` is recorded and answered with its body.
//!
//! Tests forbid namespaces (403 with a Status, as without RBAC), forbid cluster-wide lists,
//! and expire the next continue token (410 Gone with reason `Expired`, as after etcd
//! compaction). The LimitRange watch has its own fake (fake_kube_api.rs): this one has no
//! watch and no event log, only what one audit reads.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State_ {
    /// Stored objects with their plural resource name.
    objects: Vec<(String, Value)>,
    forbidden_namespaces: BTreeSet<String>,
    forbid_cluster_wide: bool,
    expire_next_continue: bool,
    requests: Vec<Request>,
}

#[derive(Clone)]
pub struct FakeLists {
    state: Arc<Mutex<State_>>,
    pub url: String,
}

impl FakeLists {
    /// Serving `objects` (each stored under the plural of its `kind`) on a loopback port.
    pub async fn start(objects: Vec<Value>) -> FakeLists {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let objects = objects
            .into_iter()
            .map(|object| (plural(object["kind"].as_str().unwrap()), object))
            .collect();
        let api = FakeLists {
            state: Arc::new(Mutex::new(State_ {
                objects,
                ..State_::default()
            })),
            url,
        };
        let router = Router::new().fallback(handle).with_state(api.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        api
    }

    pub fn forbid_namespace(&self, namespace: &str) {
        self.state
            .lock()
            .unwrap()
            .forbidden_namespaces
            .insert(namespace.to_owned());
    }

    pub fn forbid_cluster_wide(&self) {
        self.state.lock().unwrap().forbid_cluster_wide = true;
    }

    /// The next request carrying a continue token gets 410 Gone.
    pub fn expire_next_continue(&self) {
        self.state.lock().unwrap().expire_next_continue = true;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// `path?query` of every GET whose path ends with `/PLURAL`.
    pub fn lists_of(&self, plural: &str) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == Method::GET && r.path.ends_with(&format!("/{plural}")))
            .map(|r| format!("{}?{}", r.path, r.query))
            .collect()
    }
}

/// `Deployment` → `deployments`, `Policy` → `policies`.
fn plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    }
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
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

/// `(namespace, plural, name)` of a path under `/api/v1` or `/apis/GROUP/VERSION`.
fn route(path: &str) -> Option<(Option<String>, String, Option<String>)> {
    let rest = match path.strip_prefix("/api/v1/") {
        Some(rest) => rest,
        None => {
            let rest = path.strip_prefix("/apis/")?;
            let mut parts = rest.splitn(3, '/');
            let (_, _) = (parts.next()?, parts.next()?);
            parts.next()?
        }
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["namespaces", ns, plural] => Some((Some((*ns).to_owned()), (*plural).to_owned(), None)),
        ["namespaces", ns, plural, name] => Some((
            Some((*ns).to_owned()),
            (*plural).to_owned(),
            Some((*name).to_owned()),
        )),
        [plural] => Some((None, (*plural).to_owned(), None)),
        [plural, name] => Some((None, (*plural).to_owned(), Some((*name).to_owned()))),
        _ => None,
    }
}

async fn handle(
    State(api): State<FakeLists>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // kube-rs writes `?&limit=…`: empty pairs are dropped so tests compare parameters.
    let query = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .collect::<Vec<_>>()
        .join("&");
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let mut state = api.state.lock().unwrap();
    state.requests.push(Request {
        method: method.clone(),
        path: uri.path().to_owned(),
        query: query.clone(),
        content_type,
        body: body.to_vec(),
    });
    let Some((namespace, plural, name)) = route(uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    if method == Method::PATCH && name.is_some() {
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let forbidden = match &namespace {
        Some(ns) => state.forbidden_namespaces.contains(ns),
        None => state.forbid_cluster_wide && plural != "namespaces",
    };
    if forbidden {
        let scope = namespace.map_or("at the cluster scope".to_owned(), |ns| {
            format!("in the namespace \"{ns}\"")
        });
        let message = format!(
            "{plural} is forbidden: User \"dev\" cannot list resource \"{plural}\" {scope}"
        );
        return status(StatusCode::FORBIDDEN, "Forbidden", &message);
    }
    let continued = query_param(&query, "continue");
    if continued.is_some() && state.expire_next_continue {
        state.expire_next_continue = false;
        let message = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.";
        return status(StatusCode::GONE, "Expired", message);
    }
    let items: Vec<Value> = if plural == "namespaces" {
        let names: BTreeSet<&str> = state
            .objects
            .iter()
            .filter_map(|(_, o)| o["metadata"]["namespace"].as_str())
            .collect();
        names
            .into_iter()
            .map(|name| json!({"metadata": {"name": name}}))
            .collect()
    } else {
        state
            .objects
            .iter()
            .filter(|(p, o)| {
                *p == plural
                    && namespace
                        .as_deref()
                        .is_none_or(|ns| o["metadata"]["namespace"] == ns)
            })
            .map(|(_, object)| {
                let mut item = object.clone();
                let map = item.as_object_mut().unwrap();
                map.remove("apiVersion");
                map.remove("kind");
                item
            })
            .collect()
    };
    let start: usize = continued.and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = query_param(&query, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(items.len());
    let mut metadata = json!({"resourceVersion": "7"});
    if end < items.len() {
        metadata["continue"] = json!(end.to_string());
    }
    let page = items.get(start..end).unwrap_or_default();
    let body = json!({"apiVersion": "v1", "kind": "List", "metadata": metadata, "items": page});
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
