//! Listing one resource in one namespace (or cluster-wide) in pages, as kubectl and
//! client-go do (`limit` and `continue`), so that a large cluster is never read in one
//! response.
//!
//! An expired continue token (410 Gone: etcd compacted the revision the list started at)
//! is handled as client-go's pager does with `FullListIfExpired`: the pages read so far
//! are dropped and the resource is listed again in one request without `limit`, which the
//! API server answers from its watch cache. Restarting the paged list could expire again
//! on a cluster that compacts faster than the pages arrive; the full list cannot.

use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, Error};
use serde_json::Value;

use super::kinds::Kind;

/// Items per page: kubectl's `--chunk-size` default.
pub const PAGE_SIZE: u32 = 500;

/// Every object of `kind` in `namespace` (all namespaces when `None`), each with its
/// `apiVersion` and `kind` (list items carry neither).
pub async fn list(
    client: &Client,
    kind: Kind,
    namespace: Option<&str>,
    page_size: u32,
) -> Result<Vec<Value>, Error> {
    let resource = kind.resource();
    let api: Api<DynamicObject> = match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let objects = match paged(&api, page_size).await? {
        Some(objects) => objects,
        None => api.list(&ListParams::default()).await?.items,
    };
    Ok(objects
        .into_iter()
        .map(|object| typed(object, kind))
        .collect())
}

/// The pages of a list; `None` when a continue token expired.
async fn paged(
    api: &Api<DynamicObject>,
    page_size: u32,
) -> Result<Option<Vec<DynamicObject>>, Error> {
    let mut objects = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(page_size);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(error) if token.is_some() && status_code(&error) == Some(410) => return Ok(None),
            Err(error) => return Err(error),
        };
        objects.extend(page.items);
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(Some(objects));
        }
    }
}

fn typed(object: DynamicObject, kind: Kind) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("apiVersion".into(), Value::String(kind.api_version()));
        map.insert("kind".into(), Value::String(kind.kind.to_owned()));
    }
    value
}

/// The HTTP status of an error the API server answered with.
pub fn status_code(error: &Error) -> Option<u16> {
    match error {
        Error::Api(status) => Some(status.code),
        _ => None,
    }
}
