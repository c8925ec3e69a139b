//! `timestamptz` on DuckDB without its ICU extension, which the duckdb crate builds only from a
//! git checkout with cmake and DuckDB cannot download offline: without it, what ICU provides
//! is a stub that tries to download it. Registered here, in Rust over the IANA database
//! bundled with jiff, as ICU has it in a session whose time zone is UTC (the only one DuckDB
//! has without ICU):
//! - `timezone(zone, ts)`, which `AT TIME ZONE` calls: a `timestamp` read as wall-clock time
//!   in the zone gives a `timestamptz`; a `timestamptz` gives the wall-clock `timestamp`
//!   there. A wall-clock time the zone skips or repeats (DST) is the later instant, as ICU's
//!   calendar has it. Zones are IANA names, in any case (`asia/seoul`).
//! - casts to `date`, `time` and `timestamp` (also implicit, at DuckDB's own cost).
//!
//! The date functions on a `timestamptz` are in `timestamptz.rs`.

use duckdb::core::LogicalTypeId::{Timestamp as Ts, TimestampTZ as Tz, Varchar};
use duckdb::{Connection, ffi};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::native::{self, Database};
use super::scalar::{
    DAY_MICROS, finite, infinite, out_of_range, scalar, signature, text, utc_civil, value,
};

/// Registers the functions and casts above in the database, for every connection to it.
pub(super) fn register(conn: &Connection, db: &Database) -> Result<(), String> {
    let failed = |e: duckdb::Error| format!("cannot register time-zone functions: {e}");
    conn.register_scalar_function::<ToInstant>("timezone")
        .map_err(failed)?;
    conn.register_scalar_function::<ToWallClock>("timezone")
        .map_err(failed)?;
    use ffi::{
        DUCKDB_TYPE_DUCKDB_TYPE_DATE as DATE, DUCKDB_TYPE_DUCKDB_TYPE_TIME as TIME,
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP as TIMESTAMP,
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_TZ as TIMESTAMP_TZ,
    };
    // DuckDB's own cost of an implicit cast to `timestamp` (cast_rules.cpp).
    db.register_cast((TIMESTAMP_TZ, TIMESTAMP), Some(120), Some(to_timestamp))?;
    db.register_cast((TIMESTAMP_TZ, DATE), None, Some(to_date))?;
    db.register_cast((TIMESTAMP_TZ, TIME), None, Some(to_time))
}

unsafe extern "C" fn to_timestamp(
    _: ffi::duckdb_function_info,
    count: ffi::idx_t,
    input: ffi::duckdb_vector,
    output: ffi::duckdb_vector,
) -> bool {
    // SAFETY: DuckDB calls this cast with TIMESTAMP_TZ in and TIMESTAMP out (both i64).
    unsafe { native::map_values(count, (input, output), |micros: i64| Some(micros)) };
    true
}

unsafe extern "C" fn to_date(
    _: ffi::duckdb_function_info,
    count: ffi::idx_t,
    input: ffi::duckdb_vector,
    output: ffi::duckdb_vector,
) -> bool {
    let date = |micros: i64| match micros {
        i64::MAX => Some(i32::MAX),
        m if m == -i64::MAX => Some(-i32::MAX),
        m => Some(m.div_euclid(DAY_MICROS) as i32),
    };
    // SAFETY: DuckDB calls this cast with TIMESTAMP_TZ (i64) in and DATE (i32 days) out.
    unsafe { native::map_values(count, (input, output), date) };
    true
}

unsafe extern "C" fn to_time(
    _: ffi::duckdb_function_info,
    count: ffi::idx_t,
    input: ffi::duckdb_vector,
    output: ffi::duckdb_vector,
) -> bool {
    // Infinity has no time of day.
    let time = |m: i64| finite(m).map(|m| m.rem_euclid(DAY_MICROS));
    // SAFETY: DuckDB calls this cast with TIMESTAMP_TZ in and TIME (i64 micros) out.
    unsafe { native::map_values(count, (input, output), time) };
    true
}

scalar!(
    /// `timezone(zone, timestamp)`: wall-clock time in the zone, as the instant it names.
    ToInstant,
    [signature(&[Varchar, Ts], Tz)],
    |input| let zone = Cached::default();
    |row| instant(zone.get(&text(input, 0, row))?, value(input, 1, row)).map(Some)
);

scalar!(
    /// `timezone(zone, timestamptz)`: the instant as wall-clock time in the zone.
    ToWallClock,
    [signature(&[Varchar, Tz], Ts)],
    |input| let zone = Cached::default();
    |row| wall_clock(zone.get(&text(input, 0, row))?, value(input, 1, row)).map(Some)
);

/// The zone of the previous row: a column is nearly always converted to one zone.
#[derive(Default)]
struct Cached(Option<(String, TimeZone)>);

impl Cached {
    fn get(&mut self, name: &str) -> Result<&TimeZone, String> {
        let zone = match self.0.take() {
            Some((n, tz)) if n == name => (n, tz),
            _ => (name.to_string(), zone(name)?),
        };
        Ok(&self.0.insert(zone).1)
    }
}

/// An IANA zone name, in any case.
fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!("unknown time zone '{name}': use an IANA name such as 'Asia/Seoul' or 'UTC'")
    })
}

/// A `timestamptz` (microseconds since the epoch) as wall-clock microseconds in `tz`.
fn wall_clock(tz: &TimeZone, micros: i64) -> Result<i64, String> {
    if infinite(micros) {
        return Ok(micros);
    }
    let at = Timestamp::from_microsecond(micros).map_err(|e| out_of_range(micros, e))?;
    let shift = i64::from(tz.to_offset(at).seconds()) * 1_000_000;
    Ok(micros + shift)
}

/// Wall-clock microseconds in `tz` as the instant they name; a skipped or repeated time is the
/// later instant.
fn instant(tz: &TimeZone, micros: i64) -> Result<i64, String> {
    if infinite(micros) {
        return Ok(micros);
    }
    let at = tz
        .to_ambiguous_timestamp(utc_civil(micros)?)
        .later()
        .map_err(|e| out_of_range(micros, e))?;
    Ok(at.as_microsecond())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::DateTime;

    fn micros(text: &str) -> i64 {
        let dt: DateTime = text.parse().unwrap();
        dt.to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_microsecond()
    }

    #[test]
    fn wall_clock_and_instant_agree_with_the_zone_database() {
        let seoul = zone("asia/seoul").unwrap();
        assert_eq!(
            wall_clock(&seoul, micros("2024-01-01T00:00")),
            Ok(micros("2024-01-01T09:00"))
        );
        assert_eq!(
            instant(&seoul, micros("2024-01-01T09:00")),
            Ok(micros("2024-01-01T00:00"))
        );
        let la = zone("America/Los_Angeles").unwrap();
        // 02:30 does not exist on 2024-03-10 there; 01:30 on 2024-11-03 happens twice.
        assert_eq!(
            instant(&la, micros("2024-03-10T02:30")),
            Ok(micros("2024-03-10T10:30"))
        );
        assert_eq!(
            instant(&la, micros("2024-11-03T01:30")),
            Ok(micros("2024-11-03T09:30"))
        );
    }

    #[test]
    fn an_unknown_zone_is_named_in_the_error() {
        assert!(zone("Mars/Olympus").unwrap_err().contains("'Mars/Olympus'"));
        assert_eq!(wall_clock(&TimeZone::UTC, i64::MAX), Ok(i64::MAX));
    }
}
