//! The AdmissionReview request as deployguard reads it: derived structs borrowing their
//! strings from the request bytes. The object's metadata is read here (so a malformed one
//! is a 400 naming its position, as the API types would); its `spec` stays raw JSON until
//! the kind says where the pod spec is, and everything no rule reads is skipped.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::ReviewError;
use crate::object::Object;
use crate::strict::Strict;
use crate::text::Text;

pub const API_VERSION_V1: &str = "admission.k8s.io/v1";
pub const API_VERSION_V1BETA1: &str = "admission.k8s.io/v1beta1";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an AdmissionReview object")]
struct ReviewIn<'a> {
    #[serde(borrow)]
    api_version: Text<'a>,
    #[serde(borrow)]
    kind: Text<'a>,
    #[serde(borrow, default)]
    request: Option<Strict<Request<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an AdmissionRequest object")]
pub struct Request<'a> {
    #[serde(borrow)]
    pub uid: Text<'a>,
    #[serde(borrow)]
    pub kind: GroupVersionKind<'a>,
    // Required, as the API (and kube's types, which this model replaced) require it.
    #[serde(rename = "resource")]
    _resource: GroupVersionResource,
    #[serde(borrow, default)]
    pub sub_resource: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub namespace: Option<Text<'a>>,
    pub operation: Operation,
    #[serde(borrow)]
    pub user_info: Strict<UserInfo<'a>>,
    #[serde(borrow, default)]
    pub object: Option<Strict<Object<'a>>>,
    #[serde(borrow, default)]
    pub old_object: Option<Strict<Object<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
pub struct GroupVersionKind<'a> {
    #[serde(rename = "group")]
    _group: IgnoredAny,
    #[serde(rename = "version")]
    _version: IgnoredAny,
    #[serde(borrow)]
    pub kind: Text<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
struct GroupVersionResource {
    #[serde(rename = "group")]
    _group: IgnoredAny,
    #[serde(rename = "version")]
    _version: IgnoredAny,
    #[serde(rename = "resource")]
    _resource: IgnoredAny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
pub struct UserInfo<'a> {
    #[serde(borrow, default)]
    pub username: Option<Text<'a>>,
}

/// A parsed request and the AdmissionReview version to answer in.
pub struct Parsed<'a> {
    pub api_version: &'static str,
    pub request: Request<'a>,
}

/// Reads an AdmissionReview from the request bytes.
pub fn parse(body: &[u8]) -> Result<Parsed<'_>, ReviewError> {
    let Strict(review): Strict<ReviewIn<'_>> =
        serde_json::from_slice(body).map_err(|error| match error.classify() {
            serde_json::error::Category::Data => ReviewError::Shape(error.to_string()),
            _ => ReviewError::NotJson(error.to_string()),
        })?;
    let api_version = match &*review.api_version {
        API_VERSION_V1 => API_VERSION_V1,
        API_VERSION_V1BETA1 => API_VERSION_V1BETA1,
        other => return Err(ReviewError::ApiVersion(other.to_owned())),
    };
    if *review.kind != *"AdmissionReview" {
        return Err(ReviewError::Kind(review.kind.to_string()));
    }
    let Strict(request) = review.request.ok_or(ReviewError::MissingRequest)?;
    Ok(Parsed {
        api_version,
        request,
    })
}
