//! Exact Kubernetes resource quantities.
//!
//! Kubernetes' grammar: `[+-]digits[.digits](suffix)` where the suffix is a binary SI
//! unit (`Ki`…`Ei`), a decimal SI unit (`n u m "" k M G T P E`) or a decimal exponent
//! (`e3`, `E-2`). Values are kept as an exact decimal fraction (no floating point), so
//! `0.5Gi`, `1.5Gi` and `1000m` convert exactly.

use std::fmt;

use serde_json::Value;
use thiserror::Error;

/// A non-negative quantity `numerator / 10^scale`, with the suffix it was written with
/// (for messages about unit mistakes). Equality compares values only: `1` equals `1000m`.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    numerator: u128,
    scale: u32,
    suffix: &'static str,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        (self.numerator, self.scale) == (other.numerator, other.scale)
    }
}

impl Eq for Quantity {}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuantityError {
    #[error("{0:?} is not a Kubernetes quantity (expected e.g. 500m, 1.5, 128Mi, 1G, 2e3)")]
    Syntax(String),
    #[error("{0:?} is negative")]
    Negative(String),
    #[error("{0:?} is out of range")]
    OutOfRange(String),
    #[error("expected a quantity string or number, found {0}")]
    WrongType(&'static str),
}

/// Scales beyond this are rejected: no resource is that small, and it keeps powers of ten
/// computable.
const MAX_SCALE: u32 = 60;

impl Quantity {
    /// Parses a quantity string with Kubernetes' grammar.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let syntax = || QuantityError::Syntax(text.to_owned());
        let out_of_range = || QuantityError::OutOfRange(text.to_owned());
        let bytes = text.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        if let Some(sign) = bytes.first() {
            if *sign == b'-' || *sign == b'+' {
                negative = *sign == b'-';
                pos = 1;
            }
        }
        let int_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_digits = &text[int_start..pos];
        let mut frac_digits = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_digits = &text[frac_start..pos];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(syntax());
        }
        let mut numerator: u128 = 0;
        for digit in int_digits.bytes().chain(frac_digits.bytes()) {
            numerator = numerator
                .checked_mul(10)
                .and_then(|n| n.checked_add(u128::from(digit - b'0')))
                .ok_or_else(out_of_range)?;
        }
        let mut scale = i64::try_from(frac_digits.len()).map_err(|_| out_of_range())?;
        let (suffix, binary_power, decimal_exponent) =
            parse_suffix(&text[pos..]).ok_or_else(syntax)?;
        for _ in 0..binary_power {
            numerator = numerator.checked_mul(1024).ok_or_else(out_of_range)?;
        }
        scale -= decimal_exponent;
        while scale < 0 {
            numerator = numerator.checked_mul(10).ok_or_else(out_of_range)?;
            scale += 1;
        }
        while scale > 0 && numerator % 10 == 0 {
            numerator /= 10;
            scale -= 1;
        }
        if numerator == 0 {
            scale = 0;
        }
        let scale = u32::try_from(scale)
            .ok()
            .filter(|s| *s <= MAX_SCALE)
            .ok_or_else(out_of_range)?;
        if negative && numerator != 0 {
            return Err(QuantityError::Negative(text.to_owned()));
        }
        Ok(Quantity {
            numerator,
            scale,
            suffix,
        })
    }

    /// Reads a quantity from JSON: a string, or a number as YAML writes it (`cpu: 0.5`).
    pub fn from_json(value: &Value) -> Result<Quantity, QuantityError> {
        match value {
            Value::String(text) => Quantity::parse(text),
            // Display of a JSON number is its shortest exact decimal form.
            Value::Number(number) => Quantity::parse(&number.to_string()),
            Value::Null => Err(QuantityError::WrongType("null")),
            Value::Bool(_) => Err(QuantityError::WrongType("a boolean")),
            Value::Array(_) => Err(QuantityError::WrongType("an array")),
            Value::Object(_) => Err(QuantityError::WrongType("an object")),
        }
    }

    /// `millis / 1000`, as a plain number.
    pub fn from_millis(millis: u128) -> Quantity {
        Quantity {
            numerator: millis,
            scale: 3,
            suffix: "",
        }
        .normalised()
    }

    pub fn is_zero(self) -> bool {
        self.numerator == 0
    }

    /// The value in thousandths, rounded up (Kubernetes' `MilliValue`): millicores.
    pub fn millis_ceil(self) -> u128 {
        self.shifted_ceil(3)
    }

    /// The value in whole units, rounded up (Kubernetes' `Value`): bytes.
    pub fn units_ceil(self) -> u128 {
        self.shifted_ceil(0)
    }

    /// The suffix it was written with (`"m"`, `"Mi"`, `""`; `"e"` for an exponent).
    pub fn suffix(self) -> &'static str {
        self.suffix
    }

    /// The quantity as written, normalised: `1000m`, `0.5Gi`, `512` (an exponent form is
    /// given as its plain value).
    pub fn written(self) -> String {
        match self.in_suffix_units() {
            Some(number) => format!("{number}{}", self.suffix),
            None => self.plain().to_string(),
        }
    }

    /// The same number with another suffix: `1000m` → `1000Mi`, for "did you mean".
    pub fn respelled(self, suffix: &str) -> Option<String> {
        self.in_suffix_units()
            .map(|number| format!("{number}{suffix}"))
    }

    /// The number before the suffix (`1000` for `1000m`), or `None` for an exponent form.
    fn in_suffix_units(self) -> Option<Quantity> {
        let (_, binary, decimal) = *SUFFIXES
            .iter()
            .find(|(known, _, _)| *known == self.suffix)?;
        let mut number = self.plain();
        // n / 2^(10b) = n × 5^(10b) / 10^(10b): exact in decimal.
        number.numerator = number
            .numerator
            .checked_mul(5u128.checked_pow(10 * binary)?)?;
        let scale = i64::from(number.scale) + i64::from(10 * binary) + decimal;
        if scale >= 0 {
            number.scale = u32::try_from(scale).ok()?;
        } else {
            let factor = 10u128.checked_pow(u32::try_from(-scale).ok()?)?;
            number.numerator = number.numerator.checked_mul(factor)?;
            number.scale = 0;
        }
        Some(number.normalised())
    }

    fn plain(self) -> Quantity {
        Quantity { suffix: "", ..self }
    }

    fn normalised(mut self) -> Quantity {
        while self.scale > 0 && self.numerator % 10 == 0 {
            self.numerator /= 10;
            self.scale -= 1;
        }
        self
    }

    /// `ceil(self × 10^digits)`, saturating.
    fn shifted_ceil(self, digits: u32) -> u128 {
        if self.scale <= digits {
            let factor = 10u128.checked_pow(digits - self.scale).unwrap_or(u128::MAX);
            self.numerator.saturating_mul(factor)
        } else {
            match 10u128.checked_pow(self.scale - digits) {
                Some(divisor) => self.numerator.div_ceil(divisor),
                // The divisor exceeds any numerator: the value is a tiny positive fraction.
                None => u128::from(self.numerator > 0),
            }
        }
    }
}

/// The suffixes of Kubernetes' grammar with (power of 1024, power of 10).
const SUFFIXES: [(&str, u32, i64); 16] = [
    ("", 0, 0),
    ("n", 0, -9),
    ("u", 0, -6),
    ("m", 0, -3),
    ("k", 0, 3),
    ("M", 0, 6),
    ("G", 0, 9),
    ("T", 0, 12),
    ("P", 0, 15),
    ("E", 0, 18),
    ("Ki", 1, 0),
    ("Mi", 2, 0),
    ("Gi", 3, 0),
    ("Ti", 4, 0),
    ("Pi", 5, 0),
    ("Ei", 6, 0),
];

/// Marks a quantity written with a decimal exponent (`2e3`).
const EXPONENT_SUFFIX: &str = "e";

/// Returns (suffix, power of 1024, power of 10) for a suffix, or `None` if it is not one.
fn parse_suffix(suffix: &str) -> Option<(&'static str, u32, i64)> {
    if let Some(found) = SUFFIXES.iter().find(|(known, _, _)| *known == suffix) {
        return Some(*found);
    }
    let exponent = suffix.strip_prefix(['e', 'E'])?;
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // unsigned_abs: i64::MIN has no i64 absolute value (found by fuzzing).
    let power = exponent
        .parse::<i64>()
        .ok()
        .filter(|e| e.unsigned_abs() <= 1000)?;
    Some((EXPONENT_SUFFIX, 0, power))
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.numerator);
        }
        let digits = format!(
            "{:0>width$}",
            self.numerator,
            width = self.scale as usize + 1
        );
        let (int, frac) = digits.split_at(digits.len() - self.scale as usize);
        write!(f, "{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn millis(text: &str) -> u128 {
        Quantity::parse(text).unwrap().millis_ceil()
    }

    fn bytes(text: &str) -> u128 {
        Quantity::parse(text).unwrap().units_ceil()
    }

    #[test]
    fn cpu_spellings() {
        assert_eq!(millis("500m"), 500);
        assert_eq!(millis("1.5"), 1500);
        assert_eq!(millis(".5"), 500);
        assert_eq!(millis("5."), 5000);
        assert_eq!(millis("2"), 2000);
        assert_eq!(millis("2e3"), 2_000_000);
        assert_eq!(millis("2E-3"), 2);
        assert_eq!(millis("+1"), 1000);
        assert_eq!(millis("0.0001"), 1, "rounds up like MilliValue");
        assert_eq!(millis("100u"), 1);
        assert_eq!(millis("250000000n"), 250);
        assert_eq!(millis("0"), 0);
        assert_eq!(millis("-0"), 0);
    }

    #[test]
    fn memory_spellings() {
        assert_eq!(bytes("128Mi"), 128 * 1024 * 1024);
        assert_eq!(bytes("0.5Gi"), 512 * 1024 * 1024);
        assert_eq!(bytes("1.5Gi"), 1536 * 1024 * 1024);
        assert_eq!(bytes("1G"), 1_000_000_000);
        assert_eq!(bytes("256M"), 256_000_000);
        assert_eq!(bytes("129e6"), 129_000_000);
        assert_eq!(bytes("128974848"), 128_974_848);
        assert_eq!(bytes("1k"), 1000);
        assert_eq!(bytes("1Ki"), 1024);
        assert_eq!(bytes("1Ei"), 1 << 60);
        assert_eq!(bytes("1000m"), 1);
        assert_eq!(bytes("1500m"), 2, "rounds up like Value");
    }

    #[test]
    fn yaml_numbers() {
        let q = |v: Value| Quantity::from_json(&v).unwrap();
        assert_eq!(q(json!(0.5)).millis_ceil(), 500);
        assert_eq!(q(json!(2)).millis_ceil(), 2000);
        assert_eq!(q(json!(1073741824)).units_ceil(), 1 << 30);
        assert_eq!(q(json!(0.1)).millis_ceil(), 100);
        assert!(matches!(
            Quantity::from_json(&json!(true)),
            Err(QuantityError::WrongType(_))
        ));
        assert!(matches!(
            Quantity::from_json(&json!(-1)),
            Err(QuantityError::Negative(_))
        ));
    }

    #[test]
    fn invalid_spellings_are_errors() {
        for text in [
            "", "1e3m", "12Mb", "1,5", "1.5.5", "Mi", ".", "m", "1K", "1e", "1 Gi", " 1", "1i",
            "1ki", "0x10", "1e3.5", "--1", "1mi", "1EE",
        ] {
            assert!(
                matches!(Quantity::parse(text), Err(QuantityError::Syntax(_))),
                "{text:?} should be a syntax error"
            );
        }
        assert!(matches!(
            Quantity::parse("-500m"),
            Err(QuantityError::Negative(_))
        ));
        assert!(matches!(
            Quantity::parse("1e999"),
            Err(QuantityError::OutOfRange(_))
        ));
        assert!(matches!(
            Quantity::parse("99999999999999999999999999999999999999999"),
            Err(QuantityError::OutOfRange(_))
        ));
    }

    #[test]
    fn e_alone_is_exa_and_with_digits_an_exponent() {
        assert_eq!(bytes("1E"), 1_000_000_000_000_000_000);
        assert_eq!(bytes("1E3"), 1000);
        for extreme in ["1e-9223372036854775808", "1e9223372036854775807", "1e-1001"] {
            assert!(Quantity::parse(extreme).is_err(), "{extreme}");
        }
    }

    #[test]
    fn spelling_is_kept_for_messages() {
        let written = |text: &str| Quantity::parse(text).unwrap().written();
        assert_eq!(written("1000m"), "1000m");
        assert_eq!(written("0.5Gi"), "0.5Gi");
        assert_eq!(written("1.50Gi"), "1.5Gi");
        assert_eq!(written("512"), "512");
        assert_eq!(written("2e3"), "2000");
        assert_eq!(written("1.5k"), "1.5k");
        let q = Quantity::parse("1000m").unwrap();
        assert_eq!(q.suffix(), "m");
        assert_eq!(q.respelled("Mi").as_deref(), Some("1000Mi"));
        assert_eq!(q, Quantity::parse("1").unwrap(), "equality compares values");
    }

    #[test]
    fn display_is_exact() {
        assert_eq!(Quantity::parse("500m").unwrap().to_string(), "0.5");
        assert_eq!(Quantity::parse("1.5Gi").unwrap().to_string(), "1610612736");
        assert_eq!(Quantity::parse("1n").unwrap().to_string(), "0.000000001");
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,24}") {
            let _ = Quantity::parse(&text);
        }

        #[test]
        fn millicore_strings_round_trip(m in 0u64..10_000_000) {
            prop_assert_eq!(millis(&format!("{m}m")), u128::from(m));
        }

        #[test]
        fn binary_and_plain_bytes_agree(n in 0u64..1_000_000, unit in 0u32..4) {
            let suffix = ["", "Ki", "Mi", "Gi"][unit as usize];
            let expected = u128::from(n) << (10 * unit);
            prop_assert_eq!(bytes(&format!("{n}{suffix}")), expected);
            prop_assert_eq!(bytes(&expected.to_string()), expected);
        }
    }
}
