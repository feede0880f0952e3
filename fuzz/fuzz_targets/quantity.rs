//! `Quantity::parse` on arbitrary text: never panics; accepted values convert without
//! panicking and print in a form that parses back to the same value.

#![no_main]

use deployguard_engine::policy::quantity::Quantity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(q) = Quantity::parse(text) else {
        return;
    };
    let millis = q.millis_ceil();
    let units = q.units_ceil();
    // ceil(ceil(1000x) / 1000) = ceil(x), unless the millis saturated.
    if millis != u128::MAX {
        assert_eq!(units, millis.div_ceil(1000), "{text:?}: {millis} millis");
    }
    assert_eq!(q.is_zero(), millis == 0, "{text:?}");
    let printed = q.to_string();
    assert!(
        printed.bytes().all(|b| b.is_ascii_digit() || b == b'.'),
        "{text:?} printed as {printed:?}"
    );
    match Quantity::parse(&printed) {
        Ok(back) => assert_eq!(back, q, "{text:?} printed as {printed:?}"),
        Err(error) => panic!("{text:?} printed as {printed:?}, which does not parse: {error}"),
    }
    let json = serde_json::Value::String(text.to_owned());
    assert_eq!(Quantity::from_json(&json), Ok(q));
});
