//! A probe as the API server stores it: `SetDefaults_Probe` (timeoutSeconds 1,
//! periodSeconds 10, successThreshold 1, failureThreshold 3, each when 0 or unset),
//! `SetDefaults_HTTPGetAction` (path `/`, scheme `HTTP`), the gRPC `service` default
//! (`""`), and `omitempty` (a zero, empty or null field is the same as an absent one).
//! Comparing stored forms lets `deployguard check` on raw YAML and the webhook, which
//! receives defaulted objects, agree.
//!
//! The comparison reads both probes into a borrowed tree (strings point into the JSON
//! text) and compares them with the defaults applied on the fly: no copy of either
//! probe, no map per object (this runs for every container on every review).

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The probe's timings after defaulting, in the order the kubelet applies them.
pub const PROBE_DEFAULTS: [(&str, i64); 4] = [
    ("timeoutSeconds", 1),
    ("periodSeconds", 10),
    ("successThreshold", 1),
    ("failureThreshold", 3),
];

/// Defaults of the handlers' fields: (handler, field, value).
const HANDLER_DEFAULTS: [(&str, &str, &str); 3] = [
    ("httpGet", "path", "/"),
    ("httpGet", "scheme", "HTTP"),
    ("grpc", "service", ""),
];

/// Whether two probes are stored alike by the API server. Text that is not a JSON
/// object compares by its parsed value.
pub fn same_stored_probe(a: &RawValue, b: &RawValue) -> bool {
    match (Node::read(a), Node::read(b)) {
        (Some(a), Some(b)) => stored(a) == stored(b),
        _ => a.get() == b.get(),
    }
}

/// A JSON value borrowed from its text; numbers compare as numbers (`10` and `10.0` are
/// one value, as they are to the API server's decoder for a number field).
#[derive(Debug, Clone, PartialEq)]
enum Node<'a> {
    Null,
    Bool(bool),
    Number(f64),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Entries sorted by key after `stored` (JSON objects compare without order).
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    fn read(raw: &'a RawValue) -> Option<Node<'a>> {
        serde_json::from_str(raw.get()).ok()
    }

    /// `omitempty`: null, zero, `""`, `[]` and `{}` are the same as absent.
    fn is_empty(&self) -> bool {
        match self {
            Node::Null => true,
            Node::Bool(_) => false,
            Node::Number(n) => *n == 0.0,
            Node::String(s) => s.is_empty(),
            Node::Array(items) => items.is_empty(),
            Node::Object(entries) => entries.is_empty(),
        }
    }
}

/// The stored form: `omitempty` applied at every level, objects sorted by key, and at the
/// top (a probe object) the timing and handler defaults filled in.
fn stored(node: Node<'_>) -> Node<'_> {
    let mut probe = without_empty(node);
    if let Node::Object(entries) = &mut probe {
        for (field, default) in PROBE_DEFAULTS {
            if !entries.iter().any(|(key, _)| key == field) {
                entries.push((Cow::Borrowed(field), Node::Number(default as f64)));
            }
        }
        for (handler, field, default) in HANDLER_DEFAULTS {
            let handler = entries.iter_mut().find(|(key, _)| key == handler);
            if let Some((_, Node::Object(fields))) = handler
                && !fields.iter().any(|(key, _)| key == field)
            {
                fields.push((Cow::Borrowed(field), Node::String(Cow::Borrowed(default))));
                fields.sort_by(|(a, _), (b, _)| a.cmp(b));
            }
        }
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
    }
    probe
}

/// `omitempty` recursively (inside arrays too), objects sorted by key.
fn without_empty(node: Node<'_>) -> Node<'_> {
    match node {
        Node::Object(entries) => {
            let mut kept: Vec<_> = entries
                .into_iter()
                .map(|(key, value)| (key, without_empty(value)))
                .filter(|(_, value)| !value.is_empty())
                .collect();
            kept.sort_by(|(a, _), (b, _)| a.cmp(b));
            Node::Object(kept)
        }
        Node::Array(items) => Node::Array(items.into_iter().map(without_empty).collect()),
        other => other,
    }
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node<'de>, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v as f64))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v as f64))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        // Only a string with escapes is not borrowed from the text.
        Ok(Node::String(Cow::Owned(v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            entries.push((key.0, map.next_value()?));
        }
        Ok(Node::Object(entries))
    }
}

/// An object key, borrowed unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        Ok(Key(Cow::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same(a: serde_json::Value, b: serde_json::Value) -> bool {
        let a = RawValue::from_string(a.to_string()).unwrap();
        let b = RawValue::from_string(b.to_string()).unwrap();
        same_stored_probe(&a, &b)
    }

    #[test]
    fn cartservice_probes_are_identical_once_defaulted() {
        // microservices-demo's cartservice: readiness leaves periodSeconds to its default.
        let liveness =
            json!({"initialDelaySeconds": 15, "periodSeconds": 10, "grpc": {"port": 7070}});
        let readiness = json!({"initialDelaySeconds": 15, "grpc": {"port": 7070}});
        assert_ne!(liveness, readiness);
        assert!(same(liveness, readiness));
    }

    #[test]
    fn handler_defaults_and_omitempty() {
        let written = json!({"httpGet": {"port": 80, "host": "", "httpHeaders": []}, "initialDelaySeconds": 0,
            "timeoutSeconds": 0, "terminationGracePeriodSeconds": null});
        let stored = json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
            "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3});
        assert!(same(written.clone(), stored.clone()));
        assert!(
            same(stored.clone(), stored.clone()),
            "defaulting is idempotent"
        );
        let other_path = json!({"httpGet": {"port": 80, "path": "/ready"}});
        assert!(!same(other_path, stored));
        assert!(same(
            json!({"grpc": {"port": 1}}),
            json!({"grpc": {"port": 1, "service": ""}})
        ));
        assert!(!same(
            json!({"grpc": {"port": 1}}),
            json!({"grpc": {"port": 1, "service": "x"}})
        ));
    }

    #[test]
    fn order_escapes_and_numbers() {
        let a = RawValue::from_string(
            r#"{"exec": {"command": ["a\u0062", "c"]}, "periodSeconds": 10.0}"#.into(),
        )
        .unwrap();
        let b = RawValue::from_string(
            r#"{"periodSeconds": 10, "exec": {"command": ["ab", "c"]}}"#.into(),
        )
        .unwrap();
        assert!(same_stored_probe(&a, &b));
        let reordered =
            RawValue::from_string(r#"{"exec": {"command": ["c", "ab"]}}"#.into()).unwrap();
        assert!(!same_stored_probe(&a, &reordered), "array order matters");
        let nested = json!({"httpGet": {"port": 80, "httpHeaders": [{"name": "X", "value": ""}]}});
        let without_value = json!({"httpGet": {"port": 80, "httpHeaders": [{"name": "X"}]}});
        assert!(same(nested, without_value), "omitempty inside arrays");
    }
}
