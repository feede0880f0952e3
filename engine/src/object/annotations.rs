//! An object's annotations as deployguard reads them: its own (`deployguard.io/…`) kept,
//! every other value checked to be a string, as the API types require, and dropped. Others' annotations can be large (`kubectl.kubernetes.io/last-applied-
//! configuration` holds the whole object, escaped), and nothing here reads them.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};

use crate::text::Text;
use crate::text::TextMap;

const OWN_PREFIX: &str = "deployguard.io/";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations<'a>(pub TextMap<'a>);

impl Annotations<'_> {
    /// One of deployguard's own annotations (`deployguard.io/…`).
    pub fn get(&self, key: &str) -> Option<&str> {
        debug_assert!(key.starts_with(OWN_PREFIX), "{key} is not kept");
        self.0.get(key).map(|value| &**value)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Annotations<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnnotationsVisitor;

        impl<'de> Visitor<'de> for AnnotationsVisitor {
            type Value = Annotations<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<M: MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Annotations<'de>, M::Error> {
                let mut own = TextMap::new();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    if key.starts_with(OWN_PREFIX) {
                        let value = map.next_value::<Text<'de>>()?;
                        own.insert(key, value);
                    } else {
                        map.next_value::<UnreadString>()?;
                    }
                }
                Ok(Annotations(own))
            }
        }

        deserializer.deserialize_map(AnnotationsVisitor)
    }
}

/// A JSON string, read without keeping it (serde_json unescapes into a reused buffer).
struct UnreadString;

impl<'de> Deserialize<'de> for UnreadString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StringVisitor;

        impl Visitor<'_> for StringVisitor {
            type Value = UnreadString;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: Error>(self, _: &str) -> Result<UnreadString, E> {
                Ok(UnreadString)
            }
        }

        deserializer.deserialize_str(StringVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_its_own_and_checks_the_rest() {
        let json = r#"{"deployguard.io/go-runtime": "off", "kubectl.kubernetes.io/last-applied-configuration": "{\"a\":\"\\n\"}", "x": ""}"#;
        let annotations: Annotations<'_> = serde_json::from_str(json).unwrap();
        assert_eq!(annotations.get("deployguard.io/go-runtime"), Some("off"));
        assert_eq!(annotations.0.len(), 1);
        let typed = |json: &str| {
            let typed = serde_json::from_str::<std::collections::BTreeMap<String, String>>(json);
            let ours = serde_json::from_str::<Annotations<'_>>(json);
            (
                typed.unwrap_err().to_string(),
                ours.unwrap_err().to_string(),
            )
        };
        for bad in [
            r#"{"a": 100}"#,
            r#"{"a": -1}"#,
            r#"{"a": 1.5}"#,
            r#"{"a": true}"#,
            r#"{"a": null}"#,
            r#"{"a": []}"#,
            r#"{"a": {}}"#,
        ] {
            let (typed, ours) = typed(bad);
            assert_eq!(ours, typed, "{bad}: the same words as a string field");
        }
        assert!(
            serde_json::from_str::<Annotations<'_>>(r#"{"deployguard.io/exempt": 1}"#).is_err()
        );
    }
}
