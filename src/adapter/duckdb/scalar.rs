//! DuckDB scalar functions written in Rust (`zones.rs`, `timestamptz.rs`): the `scalar!`
//! declaration, the row loop that keeps NULL as NULL, reading arguments, and timestamps as
//! DuckDB stores them (microseconds since 1970, UTC; `±infinity` at the ends of `i64`).

use std::error::Error;

use duckdb::core::{DataChunkHandle, LogicalTypeHandle, LogicalTypeId};
use duckdb::ffi::duckdb_string_t;
use duckdb::types::DuckString;
use duckdb::vscalar::ScalarFunctionSignature;
use duckdb::vtab::arrow::WritableVector;
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

pub(super) const DAY_MICROS: i64 = 86_400_000_000;

/// `scalar!(Name, [signatures], |input| let x = setup; ... |row| value)` declares a DuckDB
/// scalar function type: each row whose arguments are all non-NULL gives `value`, a
/// `Result<Option<T>, String>` of the return type as DuckDB stores it (None: NULL); `setup`
/// runs once per chunk.
macro_rules! scalar {
    ($(#[$doc:meta])* $name:ident, [$($sig:expr),+ $(,)?],
     |$input:ident| $(let $var:ident = $init:expr;)* |$row:ident| $body:expr) => {
        $(#[$doc])*
        struct $name;

        impl duckdb::vscalar::VScalar for $name {
            type State = ();

            fn invoke(
                _: &(),
                input: &mut duckdb::core::DataChunkHandle,
                output: &mut dyn duckdb::vtab::arrow::WritableVector,
            ) -> Result<(), Box<dyn std::error::Error>> {
                let $input = &*input;
                $(#[allow(unused_mut)] let mut $var = $init;)*
                super::scalar::per_row($input, output, |$row| $body)
            }

            fn signatures() -> Vec<duckdb::vscalar::ScalarFunctionSignature> {
                vec![$($sig),+]
            }
        }
    };
}
pub(super) use scalar;

/// Runs `f` on each row whose arguments are all non-NULL, writing what it gives (a value of
/// the function's return type as DuckDB stores it, or None: NULL); a row with a NULL argument
/// is NULL.
pub(super) fn per_row<T: Copy>(
    input: &DataChunkHandle,
    output: &mut dyn WritableVector,
    mut f: impl FnMut(usize) -> Result<Option<T>, String>,
) -> Result<(), Box<dyn Error>> {
    let rows = input.len();
    let mut out = output.flat_vector();
    for row in 0..rows {
        if (0..input.num_columns()).any(|c| input.flat_vector(c).row_is_null(row as u64)) {
            out.set_null(row);
            continue;
        }
        let Some(value) = f(row)? else {
            out.set_null(row);
            continue;
        };
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

/// A VARCHAR argument.
pub(super) fn text(input: &DataChunkHandle, col: usize, row: usize) -> String {
    let mut raw: duckdb_string_t = value(input, col, row);
    DuckString::new(&mut raw).as_str().into_owned()
}

pub(super) fn signature(args: &[LogicalTypeId], to: LogicalTypeId) -> ScalarFunctionSignature {
    let args = args.iter().map(|a| LogicalTypeHandle::from(*a)).collect();
    ScalarFunctionSignature::exact(args, LogicalTypeHandle::from(to))
}

/// DuckDB's `infinity` and `-infinity` timestamps, which stay what they are.
pub(super) fn infinite(micros: i64) -> bool {
    micros == i64::MAX || micros == -i64::MAX
}

/// A timestamp that is not `±infinity`.
pub(super) fn finite(micros: i64) -> Option<i64> {
    (!infinite(micros)).then_some(micros)
}

/// Two timestamps, neither `±infinity`.
pub(super) fn both_finite(a: i64, b: i64) -> Option<(i64, i64)> {
    Some((finite(a)?, finite(b)?))
}

/// Microseconds since the epoch as UTC wall-clock time.
pub(super) fn utc_civil(micros: i64) -> Result<DateTime, String> {
    Ok(Timestamp::from_microsecond(micros)
        .map_err(|e| out_of_range(micros, e))?
        .to_zoned(TimeZone::UTC)
        .datetime())
}

/// UTC wall-clock time as microseconds since the epoch.
pub(super) fn utc_micros(dt: DateTime) -> Result<i64, String> {
    dt.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp().as_microsecond())
        .map_err(|e| format!("{dt}: {e}"))
}

pub(super) fn out_of_range(micros: i64, e: jiff::Error) -> String {
    format!("timestamp {micros} µs is outside the years xform can convert: {e}")
}
