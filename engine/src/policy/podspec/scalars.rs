//! The two scalars of a PodSpec with more than one JSON form: quantities (strings, or
//! numbers as YAML writes them) and probe ports (IntOrString).

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};

use super::ProbePort;
use crate::policy::quantity::Quantity;
use crate::text::Text;

/// A quantity as a string, or a number as YAML writes it (`cpu: 0.5`).
pub(super) struct QuantityWire(pub Quantity);

impl<'de> Deserialize<'de> for QuantityWire {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;

        impl Visitor<'_> for QuantityVisitor {
            type Value = QuantityWire;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity string or number")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<QuantityWire, E> {
                Quantity::parse(text).map(QuantityWire).map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<QuantityWire, E> {
                self.visit_str(&number.to_string())
            }

            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<QuantityWire, E> {
                self.visit_str(&number.to_string())
            }

            fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<QuantityWire, E> {
                // serde_json's shortest exact decimal form, as a JSON number displays.
                match serde_json::Number::from_f64(number) {
                    Some(number) => self.visit_str(&number.to_string()),
                    None => Err(E::custom("a quantity must be a finite number")),
                }
            }
        }

        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// A probe port (IntOrString): an all-digit string is a number, anything else a name;
/// a fractional number is no port at all.
pub(super) struct PortValue<'a>(pub Option<ProbePort<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for PortValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;

        impl<'de> Visitor<'de> for PortVisitor {
            type Value = PortValue<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a name")
            }

            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<PortValue<'de>, E> {
                Ok(PortValue(Some(ProbePort::Number(number))))
            }

            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<PortValue<'de>, E> {
                Ok(PortValue(i64::try_from(number).ok().map(ProbePort::Number)))
            }

            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<PortValue<'de>, E> {
                Ok(PortValue(None))
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                name: &'de str,
            ) -> Result<PortValue<'de>, E> {
                Ok(PortValue(Some(port_of(Text::from(name)))))
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<PortValue<'de>, E> {
                Ok(PortValue(Some(port_of(Text(name.to_owned().into())))))
            }
        }

        deserializer.deserialize_any(PortVisitor)
    }
}

fn port_of(name: Text<'_>) -> ProbePort<'_> {
    match name.parse::<i64>() {
        Ok(number) if name.bytes().all(|b| b.is_ascii_digit()) => ProbePort::Number(number),
        _ => ProbePort::Name(name),
    }
}
