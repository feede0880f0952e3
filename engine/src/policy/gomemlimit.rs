//! Go's own `GOMEMLIMIT` syntax (runtime `parseByteCount`): an integer with an optional
//! `B`, `KiB`, `MiB`, `GiB` or `TiB` suffix, or `off`; empty means unset. Anything else
//! makes the Go runtime abort at start-up. One quirk is kept: a `-` before a zero (or
//! before no digits at all, as in `-KiB`) is accepted by Go as 0.

use thiserror::Error;

/// What a `GOMEMLIMIT` value means to the Go runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoMemLimit {
    /// Empty: as if unset.
    Unset,
    /// `off`: no soft limit.
    Off,
    Bytes(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GoMemLimitError {
    #[error("{0:?} is not valid Go syntax")]
    Syntax(String),
    #[error("{0:?} overflows a 64-bit byte count")]
    Overflow(String),
}

const UNITS: [(&str, u32); 5] = [("KiB", 1), ("MiB", 2), ("GiB", 3), ("TiB", 4), ("B", 0)];

pub fn parse_go_memlimit(text: &str) -> Result<GoMemLimit, GoMemLimitError> {
    match text {
        "" => return Ok(GoMemLimit::Unset),
        "off" => return Ok(GoMemLimit::Off),
        _ => {}
    }
    let (digits, power) = UNITS
        .iter()
        .find_map(|(suffix, power)| text.strip_suffix(suffix).map(|digits| (digits, *power)))
        .unwrap_or((text, 0));
    if let Some(unsigned) = digits.strip_prefix('-') {
        return negative_zero(unsigned, power)
            .ok_or_else(|| GoMemLimitError::Syntax(text.to_owned()));
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GoMemLimitError::Syntax(text.to_owned()));
    }
    let overflow = || GoMemLimitError::Overflow(text.to_owned());
    let number: i64 = digits.parse().map_err(|_| overflow())?;
    let bytes = number.checked_mul(1 << (10 * power)).ok_or_else(overflow)?;
    u64::try_from(bytes)
        .map(GoMemLimit::Bytes)
        .map_err(|_| overflow())
}

/// Go's `atoi64` takes a sign, and `parseByteCount` only refuses a negative result, so
/// `-0`, `-0B` and even `-KiB` (no digits after the sign, read as 0) mean 0 bytes.
fn negative_zero(unsigned: &str, power: u32) -> Option<GoMemLimit> {
    let digits_ok = unsigned.bytes().all(|b| b == b'0');
    // Without a `KiB`-style suffix Go first checks that a digit ends the number.
    let has_number = power > 0 || !unsigned.is_empty();
    (digits_ok && has_number).then_some(GoMemLimit::Bytes(0))
}

/// Writes a byte count in a syntax Go accepts, rounded down to whole MiB (or GiB when
/// exact) for readability: never above `bytes`, at most 1 MiB below it.
pub fn format_go_memlimit(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    if bytes >= GIB && bytes % GIB == 0 {
        format!("{}GiB", bytes / GIB)
    } else if bytes >= MIB {
        format!("{}MiB", bytes / MIB)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn go_grammar_table() {
        let valid: [(&str, GoMemLimit); 16] = [
            ("", GoMemLimit::Unset),
            ("off", GoMemLimit::Off),
            ("0", GoMemLimit::Bytes(0)),
            ("1024", GoMemLimit::Bytes(1024)),
            ("1024B", GoMemLimit::Bytes(1024)),
            ("1KiB", GoMemLimit::Bytes(1024)),
            ("900MiB", GoMemLimit::Bytes(900 << 20)),
            ("2GiB", GoMemLimit::Bytes(2 << 30)),
            ("1TiB", GoMemLimit::Bytes(1 << 40)),
            ("007MiB", GoMemLimit::Bytes(7 << 20)),
            ("9223372036854775807", GoMemLimit::Bytes(i64::MAX as u64)),
            ("8388607TiB", GoMemLimit::Bytes(8_388_607 << 40)),
            // Go's sign handling, found by fuzzing against a transcription of the runtime.
            ("-0", GoMemLimit::Bytes(0)),
            ("-0B", GoMemLimit::Bytes(0)),
            ("-KiB", GoMemLimit::Bytes(0)),
            ("-000MiB", GoMemLimit::Bytes(0)),
        ];
        for (text, expected) in valid {
            assert_eq!(parse_go_memlimit(text), Ok(expected), "{text:?}");
        }
        for text in [
            "1Gi", "768Mi", "1G", "1GB", "1M", "1MB", "1kib", "1KB", "Off", "OFF", "-1", "+1",
            "1.5GiB", " 1", "1 ", "B", "MiB", "1PiB", "1iB", "1e9", "0x10", "1_000", "-", "-B",
            "--0", "-1KiB", "-01",
        ] {
            assert!(
                matches!(parse_go_memlimit(text), Err(GoMemLimitError::Syntax(_))),
                "{text:?} must be rejected"
            );
        }
        for text in ["9223372036854775808", "8388608TiB", "99999999999999999999"] {
            assert!(
                matches!(parse_go_memlimit(text), Err(GoMemLimitError::Overflow(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn formatting_is_readable() {
        assert_eq!(format_go_memlimit(9 << 30), "9GiB");
        assert_eq!(format_go_memlimit(120_795_955), "115MiB");
        assert_eq!(format_go_memlimit(1000), "1000");
    }

    proptest! {
        #[test]
        fn formatted_values_parse_back_within_one_mib(bytes in 0u64..(1 << 50)) {
            let text = format_go_memlimit(bytes);
            let GoMemLimit::Bytes(parsed) = parse_go_memlimit(&text).unwrap() else {
                panic!("{text} did not parse to bytes");
            };
            prop_assert!(parsed <= bytes && bytes - parsed < 1 << 20, "{bytes} -> {text}");
        }

        #[test]
        fn parser_never_panics(text in "\\PC{0,24}") {
            let _ = parse_go_memlimit(&text);
        }
    }
}
