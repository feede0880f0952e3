//! The one place the wall clock is read for policy decisions: the engine takes the date as
//! an input, so a judgement can be reproduced (`check --at DATE`).

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// Today's date in UTC, the calendar grant expiry dates are written in.
pub fn today_utc() -> Date {
    Timestamp::now().to_zoned(TimeZone::UTC).date()
}
