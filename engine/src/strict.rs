//! [`Strict`]: a derived struct read from a JSON object only. serde's derived structs
//! also accept an array and read it by position (`["app"]` as a container named `app`);
//! Kubernetes objects are never written that way, and reading one so would judge
//! something the user did not write.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strict<T>(pub T);

impl<T> Deref for Strict<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Strict<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Strict<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Strict<T>, M::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Strict)
            }
        }

        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Named {
        name: String,
    }

    #[test]
    fn objects_only() {
        let named: Strict<Named> = serde_json::from_str(r#"{"name": "app"}"#).unwrap();
        assert_eq!(named.name, "app");
        let error = serde_json::from_str::<Strict<Named>>(r#"["app"]"#).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid type: sequence, expected an object"),
            "{error}"
        );
        assert!(
            serde_json::from_str::<Named>(r#"["app"]"#).is_ok(),
            "what Strict is for"
        );
    }
}
