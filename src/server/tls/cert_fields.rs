//! Two fields of an X.509 certificate: `notAfter` for the expiry gauge, the serial number
//! for the handshake counter.
//!
//! rustls-webpki parses them but does not expose them; walking the few DER headers in
//! front of them is smaller than a second X.509 parser. Nothing is checked here: rustls
//! has already accepted the certificate.

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;

/// `notAfter` in seconds since the Unix epoch, or None if the DER is not a certificate.
pub fn not_after_unix(cert_der: &[u8]) -> Option<i64> {
    let (_serial, rest) = expect(from_serial(cert_der)?, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (_issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, _) = expect(rest, SEQUENCE)?;
    let (_, _not_before, rest) = tlv(validity)?;
    let (tag, not_after, _) = tlv(rest)?;
    parse_time(tag, not_after)
}

/// The serial number as lower-case hex without leading zero bytes (as `openssl x509
/// -serial` prints it, lower-cased), or None if the DER is not a certificate.
pub fn serial_hex(cert_der: &[u8]) -> Option<String> {
    let (serial, _) = expect(from_serial(cert_der)?, INTEGER)?;
    let significant = match serial.iter().position(|&byte| byte != 0) {
        Some(first) => &serial[first..],
        None => &serial[serial.len().saturating_sub(1)..],
    };
    Some(
        significant
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
    )
}

/// The TBSCertificate's fields from the serial number on (the optional version skipped).
fn from_serial(cert_der: &[u8]) -> Option<&[u8]> {
    const VERSION: u8 = 0xa0;
    let (certificate, _) = expect(cert_der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        return Some(tlv(tbs)?.2);
    }
    Some(tbs)
}

/// Splits one DER element off `input`: (tag, contents, rest). Single-byte tags only,
/// which is all a certificate uses up to the validity.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes
            .iter()
            .fold(0usize, |len, &byte| (len << 8) | usize::from(byte));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = tlv(input)?;
    (found == tag).then_some((contents, rest))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), as RFC 5280 requires.
fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    const UTC_TIME: u8 = 0x17;
    const GENERALIZED_TIME: u8 = 0x18;
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy: i64 = digits[..2].parse().ok()?;
            // RFC 5280 §4.1.2.5.1: 50..99 are 19xx, 00..49 are 20xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |at: usize| -> Option<i64> { rest.get(at..at + 2)?.parse().ok() };
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expiry_round_trip(year: i32, month: u8, day: u8) {
        let not_after = rcgen::date_time_ymd(year, month, day);
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_after = not_after;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            not_after_unix(cert.der()),
            Some(not_after.unix_timestamp()),
            "{year}-{month}-{day}"
        );
    }

    #[test]
    fn reads_the_serial_number() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x8f, 0x01, 0x2a]));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(serial_hex(cert.der()).as_deref(), Some("8f012a"));
        assert_eq!(serial_hex(b"not DER"), None);
    }

    #[test]
    fn reads_utc_time() {
        expiry_round_trip(2031, 5, 17);
        expiry_round_trip(1999, 12, 31);
        expiry_round_trip(2024, 2, 29);
    }

    #[test]
    fn reads_generalized_time() {
        expiry_round_trip(2050, 1, 1);
        expiry_round_trip(4096, 1, 1);
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        assert_eq!(not_after_unix(b""), None);
        assert_eq!(not_after_unix(b"not DER at all"), None);
        assert_eq!(not_after_unix(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(not_after_unix(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }
}
