//! `parse_go_memlimit` against a transcription of the Go runtime's own `readGOMEMLIMIT`
//! and `parseByteCount` (runtime/mgcpacer.go, runtime/string.go), and
//! `format_go_memlimit` against the parser.

#![no_main]

use deployguard_engine::policy::gomemlimit::{GoMemLimit, format_go_memlimit, parse_go_memlimit};
use libfuzzer_sys::fuzz_target;

/// Go's runtime `atoi64`: an optional `-`, then decimal digits (none is 0), within int64.
fn go_atoi64(s: &[u8]) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let (neg, digits) = match s.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut un: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        un = un.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if !neg && un > i64::MAX as u64 {
        return None;
    }
    if neg && un > i64::MAX as u64 + 1 {
        return None;
    }
    Some(if neg {
        (un as i64).wrapping_neg()
    } else {
        un as i64
    })
}

/// Go's runtime `parseByteCount`, byte by byte.
fn go_parse_byte_count(s: &[u8]) -> Option<i64> {
    let &last = s.last()?;
    if last.is_ascii_digit() {
        return go_atoi64(s).filter(|n| *n >= 0);
    }
    if last != b'B' || s.len() < 2 {
        return None;
    }
    let c = s[s.len() - 2];
    if c.is_ascii_digit() {
        return go_atoi64(&s[..s.len() - 1]).filter(|n| *n >= 0);
    } else if c != b'i' {
        return None;
    }
    if s.len() < 4 {
        return None;
    }
    let power = match s[s.len() - 3] {
        b'K' => 1,
        b'M' => 2,
        b'G' => 3,
        b'T' => 4,
        _ => return None,
    };
    let m: u64 = 1 << (10 * power);
    let n = go_atoi64(&s[..s.len() - 3]).filter(|n| *n >= 0)?;
    let un = n as u64;
    if un > u64::MAX / m {
        return None;
    }
    let un = un * m;
    if un > i64::MAX as u64 {
        return None;
    }
    Some(un as i64)
}

/// What Go's `readGOMEMLIMIT` makes of the variable; `None` where the runtime aborts.
fn go_reference(text: &str) -> Option<GoMemLimit> {
    match text {
        "" => Some(GoMemLimit::Unset),
        "off" => Some(GoMemLimit::Off),
        _ => go_parse_byte_count(text.as_bytes()).map(|n| GoMemLimit::Bytes(n as u64)),
    }
}

fn check_format(bytes: u64) {
    let text = format_go_memlimit(bytes);
    let Ok(GoMemLimit::Bytes(parsed)) = parse_go_memlimit(&text) else {
        panic!("format_go_memlimit({bytes}) = {text:?} does not parse to bytes");
    };
    assert_eq!(
        go_reference(&text),
        Some(GoMemLimit::Bytes(parsed)),
        "{text:?}"
    );
    assert!(
        parsed <= bytes && bytes - parsed < 1 << 20,
        "format_go_memlimit({bytes}) = {text:?} = {parsed} bytes"
    );
}

fuzz_target!(|data: &[u8]| {
    // A byte count from the raw bytes; the injection clamps to i64::MAX (no Go syntax is
    // larger), so the formatter is checked on that range.
    let mut raw = [0u8; 8];
    let n = data.len().min(8);
    raw[..n].copy_from_slice(&data[..n]);
    check_format(u64::from_le_bytes(raw) & (i64::MAX as u64));

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = parse_go_memlimit(text);
    let go = go_reference(text);
    assert_eq!(
        ours.as_ref().ok(),
        go.as_ref(),
        "{text:?}: deployguard says {ours:?}, the Go runtime {go:?}"
    );
    if let Ok(GoMemLimit::Bytes(bytes)) = ours {
        check_format(bytes);
    }
});
