//! `timestamptz` on DuckDB without its ICU extension, which the duckdb crate builds only from a
//! git checkout with cmake and DuckDB cannot download offline: without it, what ICU provides
//! is a stub that tries to download it. Registered here, in Rust over the IANA database
//! bundled with jiff, as ICU has it in a session whose time zone is UTC (the only one DuckDB
//! has without ICU):
//! - `timezone(zone, ts)`, which `AT TIME ZONE` calls: a `timestamp` read as wall-clock time
//!   in the zone gives a `timestamptz`; a `timestamptz` gives the wall-clock `timestamp`
//!   there. A wall-clock time the zone skips or repeats (DST) is the later instant, as ICU's
//!   calendar has it. Zones are IANA names, in any case (`asia/seoul`).
//! - casts to `date`, `time` and `timestamp` (also implicit, at DuckDB's own cost);
//! - the date functions on a `timestamptz` (`timestamptz.rs`).

use std::error::Error;

use duckdb::core::LogicalTypeId::{Timestamp as Ts, TimestampTZ as Tz, Varchar};
use duckdb::core::{DataChunkHandle, LogicalTypeHandle, LogicalTypeId};
use duckdb::ffi::duckdb_string_t;
use duckdb::types::DuckString;
use duckdb::vscalar::{ScalarFunctionSignature, VScalar};
use duckdb::vtab::arrow::WritableVector;
use duckdb::{Connection, ffi};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::native::{self, Database};
use super::timestamptz::{self, DAY_MICROS, infinite, out_of_range, utc_civil};

/// Registers the functions and casts above in the database, for every connection to it.
pub(super) fn register(conn: &Connection, db: &Database) -> Result<(), String> {
    let failed = |e: duckdb::Error| format!("cannot register time-zone functions: {e}");
    conn.register_scalar_function::<AtTimeZone>("timezone")
        .map_err(failed)?;
    timestamptz::register(conn).map_err(failed)?;
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
    unsafe { native::map_values(count, (input, output), |micros: i64| micros) };
    true
}

unsafe extern "C" fn to_date(
    _: ffi::duckdb_function_info,
    count: ffi::idx_t,
    input: ffi::duckdb_vector,
    output: ffi::duckdb_vector,
) -> bool {
    let date = |micros: i64| match micros {
        i64::MAX => i32::MAX,
        m if m == -i64::MAX => -i32::MAX,
        m => m.div_euclid(DAY_MICROS) as i32,
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
    // SAFETY: DuckDB calls this cast with TIMESTAMP_TZ in and TIME (i64 micros) out.
    unsafe { native::map_values(count, (input, output), |m: i64| m.rem_euclid(DAY_MICROS)) };
    true
}

/// Runs `f` on each row whose arguments are all non-NULL, writing what it gives (a value of
/// the function's return type as DuckDB stores it); a row with a NULL argument is NULL.
pub(super) fn per_row<T>(
    input: &DataChunkHandle,
    output: &mut dyn WritableVector,
    mut f: impl FnMut(usize) -> Result<T, String>,
) -> Result<(), Box<dyn Error>> {
    let rows = input.len();
    let mut out = output.flat_vector();
    for row in 0..rows {
        if (0..input.num_columns()).any(|c| input.flat_vector(c).row_is_null(row as u64)) {
            out.set_null(row);
            continue;
        }
        let value = f(row)?;
        // SAFETY: the output is a flat vector of at least `rows` rows of the return type,
        // which callers give as `T`.
        unsafe { out.as_mut_slice_with_len::<T>(rows)[row] = value };
    }
    Ok(())
}

/// Column `col`'s value at `row`, as the fixed-size type `T` its DuckDB type is stored as.
pub(super) fn value<T: Copy>(input: &DataChunkHandle, col: usize, row: usize) -> T {
    // SAFETY: callers name a column of the signature whose values are `T`s; DuckDB hands a
    // scalar function flat vectors of `input.len()` rows.
    unsafe { input.flat_vector(col).as_slice_with_len::<T>(input.len())[row] }
}

pub(super) fn text(input: &DataChunkHandle, col: usize, row: usize) -> String {
    let mut raw: duckdb_string_t = value(input, col, row);
    DuckString::new(&mut raw).as_str().into_owned()
}

pub(super) fn is_tz(input: &DataChunkHandle, col: usize) -> bool {
    input.flat_vector(col).logical_type().id() == LogicalTypeId::TimestampTZ
}

pub(super) fn signature(args: &[LogicalTypeId], to: LogicalTypeId) -> ScalarFunctionSignature {
    let args = args.iter().map(|a| LogicalTypeHandle::from(*a)).collect();
    ScalarFunctionSignature::exact(args, LogicalTypeHandle::from(to))
}

/// `timezone(zone, timestamp)` and `timezone(zone, timestamptz)`.
struct AtTimeZone;

impl VScalar for AtTimeZone {
    type State = ();

    fn invoke(
        _: &(),
        input: &mut DataChunkHandle,
        output: &mut dyn WritableVector,
    ) -> Result<(), Box<dyn Error>> {
        let to_wall_clock = is_tz(input, 1);
        let mut zone = Cached::default();
        per_row(input, output, |row| {
            let tz = zone.get(&text(input, 0, row))?;
            let micros = value(input, 1, row);
            match to_wall_clock {
                true => wall_clock(tz, micros),
                false => instant(tz, micros),
            }
        })
    }

    fn signatures() -> Vec<ScalarFunctionSignature> {
        vec![signature(&[Varchar, Ts], Tz), signature(&[Varchar, Tz], Ts)]
    }
}

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
