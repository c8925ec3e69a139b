//! DuckDB's functions on a `timestamptz` that its ICU extension provides (it leaves stubs
//! that try to download ICU), as ICU computes them in a session whose time zone is UTC: the
//! parts (`extract`, `date_part`, `year()`... `epoch()`), `date_trunc`, `date_diff`, `age`,
//! `last_day` and `± interval`; of `infinity`, the parts, differences and ages are NULL and
//! the others `infinity` again, as with ICU. Each is an overload registered over the stub of the same
//! signature (`zones.rs` has the time zones and casts).

use std::error::Error;

use duckdb::Connection;
use duckdb::core::DataChunkHandle;
use duckdb::core::LogicalTypeId::{
    Bigint, Date as DateType, Double, Interval, TimestampTZ as Tz, Varchar,
};
use duckdb::ffi::duckdb_interval;
use duckdb::vscalar::{ScalarFunctionSignature, VScalar};
use duckdb::vtab::arrow::WritableVector;
use jiff::civil::{Date, DateTime, Time};
use jiff::{Span, Timestamp};

use super::scalar::{
    DAY_MICROS, both_finite, finite, infinite, per_row, scalar, signature, text, utc_civil,
    utc_micros, value,
};

/// Registers every function of this file under DuckDB's names.
pub(super) fn register(conn: &Connection) -> duckdb::Result<()> {
    for (name, part) in PART_FUNCTIONS {
        conn.register_scalar_function_with_state::<PartOf>(name, &part)?;
    }
    conn.register_scalar_function::<Epoch>("epoch")?;
    for name in ["date_part", "datepart"] {
        conn.register_scalar_function::<DatePart>(name)?;
    }
    for name in ["date_trunc", "datetrunc"] {
        conn.register_scalar_function::<Trunc>(name)?;
    }
    for name in ["date_diff", "datediff"] {
        conn.register_scalar_function::<Diff>(name)?;
    }
    conn.register_scalar_function::<Age>("age")?;
    conn.register_scalar_function::<AgeFromToday>("age")?;
    conn.register_scalar_function::<LastDay>("last_day")?;
    conn.register_scalar_function::<PlusInterval>("+")?;
    conn.register_scalar_function::<IntervalPlus>("+")?;
    conn.register_scalar_function::<MinusInterval>("-")
}

/// A part of a timestamp, as `extract`, `date_part` and `date_trunc` name it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Part {
    Millennium,
    Century,
    Decade,
    Year,
    Quarter,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
    Microsecond,
    DayOfWeek,
    IsoDayOfWeek,
    DayOfYear,
    IsoYear,
    YearWeek,
    Era,
    Epoch,
    Timezone,
    TimezoneHour,
    TimezoneMinute,
}

/// The one-argument functions, each a part.
const PART_FUNCTIONS: [(&str, Part); 25] = [
    ("millennium", Part::Millennium),
    ("century", Part::Century),
    ("decade", Part::Decade),
    ("year", Part::Year),
    ("quarter", Part::Quarter),
    ("month", Part::Month),
    ("week", Part::Week),
    ("weekofyear", Part::Week),
    ("day", Part::Day),
    ("dayofmonth", Part::Day),
    ("hour", Part::Hour),
    ("minute", Part::Minute),
    ("second", Part::Second),
    ("millisecond", Part::Millisecond),
    ("microsecond", Part::Microsecond),
    ("dayofweek", Part::DayOfWeek),
    ("weekday", Part::DayOfWeek),
    ("isodow", Part::IsoDayOfWeek),
    ("dayofyear", Part::DayOfYear),
    ("isoyear", Part::IsoYear),
    ("yearweek", Part::YearWeek),
    ("era", Part::Era),
    ("timezone", Part::Timezone),
    ("timezone_hour", Part::TimezoneHour),
    ("timezone_minute", Part::TimezoneMinute),
];

impl Part {
    /// DuckDB's names and abbreviations of a part, in any case.
    fn named(name: &str) -> Result<Part, String> {
        use Part::*;
        Ok(match name.to_ascii_lowercase().as_str() {
            "millennium" | "millennia" | "millenniums" | "millenium" | "mil" | "mils" => Millennium,
            "century" | "centuries" | "cent" | "c" => Century,
            "decade" | "decades" | "dec" | "decs" => Decade,
            "year" | "years" | "y" | "yr" | "yrs" => Year,
            "quarter" | "quarters" => Quarter,
            "month" | "months" | "mon" | "mons" => Month,
            "week" | "weeks" | "w" | "weekofyear" => Week,
            "day" | "days" | "d" | "dayofmonth" => Day,
            "hour" | "hours" | "h" | "hr" | "hrs" => Hour,
            "minute" | "minutes" | "m" | "min" | "mins" => Minute,
            "second" | "seconds" | "s" | "sec" | "secs" => Second,
            "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "msecond" | "mseconds" => {
                Millisecond
            }
            "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "usecond" | "useconds" => {
                Microsecond
            }
            "dow" | "dayofweek" | "weekday" => DayOfWeek,
            "isodow" => IsoDayOfWeek,
            "doy" | "dayofyear" => DayOfYear,
            "isoyear" => IsoYear,
            "yearweek" => YearWeek,
            "era" => Era,
            "epoch" => Epoch,
            "timezone" => Timezone,
            "timezone_hour" => TimezoneHour,
            "timezone_minute" => TimezoneMinute,
            _ => return Err(format!("unknown date part '{name}'")),
        })
    }

    /// The part's value in `micros`' UTC wall-clock time.
    fn of(self, micros: i64) -> Result<i64, String> {
        let dt = utc_civil(micros)?;
        let (year, date) = (i64::from(dt.year()), dt.date());
        let from_one = |every: i64| {
            if year > 0 {
                (year - 1) / every + 1
            } else {
                year / every - 1
            }
        };
        let iso = date.iso_week_date();
        let second = i64::from(dt.second());
        Ok(match self {
            Part::Millennium => from_one(1000),
            Part::Century => from_one(100),
            Part::Decade => year / 10,
            Part::Year => year,
            Part::Quarter => (i64::from(dt.month()) - 1) / 3 + 1,
            Part::Month => i64::from(dt.month()),
            Part::Week => i64::from(iso.week()),
            Part::Day => i64::from(dt.day()),
            Part::Hour => i64::from(dt.hour()),
            Part::Minute => i64::from(dt.minute()),
            Part::Second => second,
            Part::Millisecond => second * 1000 + i64::from(dt.millisecond()),
            Part::Microsecond => micros.rem_euclid(60_000_000),
            Part::DayOfWeek => i64::from(date.weekday().to_sunday_zero_offset()),
            Part::IsoDayOfWeek => i64::from(date.weekday().to_monday_one_offset()),
            Part::DayOfYear => i64::from(date.day_of_year()),
            Part::IsoYear => i64::from(iso.year()),
            Part::YearWeek => i64::from(iso.year()) * 100 + i64::from(iso.week()),
            Part::Era => i64::from(year > 0),
            Part::Timezone | Part::TimezoneHour | Part::TimezoneMinute => 0,
            Part::Epoch => {
                return Err(
                    "extract(epoch from a timestamptz) has a fraction that does not \
                            fit this function's bigint: use epoch(x)"
                        .into(),
                );
            }
        })
    }

    /// `micros` cut down to the start of its part.
    fn truncate(self, micros: i64) -> Result<i64, String> {
        let cut = |unit: i64| Ok(micros - micros.rem_euclid(unit));
        let date = utc_civil(micros)?.date();
        let floor_year = |every: i16| date.year() - date.year().rem_euclid(every);
        let start = match self {
            Part::Microsecond => return Ok(micros),
            Part::Millisecond => return cut(1_000),
            Part::Second => return cut(1_000_000),
            Part::Minute => return cut(60_000_000),
            Part::Hour => return cut(3_600_000_000),
            Part::Day => return cut(DAY_MICROS),
            Part::Week => date
                .checked_sub(Span::new().days(date.weekday().to_monday_zero_offset()))
                .map_err(|e| e.to_string())?,
            Part::Month => date.first_of_month(),
            Part::Quarter => first_of(date.year(), (date.month() - 1) / 3 * 3 + 1)?,
            Part::Year => date.first_of_year(),
            Part::Decade => first_of(floor_year(10), 1)?,
            Part::Century => first_of(floor_year(100), 1)?,
            Part::Millennium => first_of(floor_year(1000), 1)?,
            other => return Err(format!("date_trunc cannot cut a timestamptz to {other:?}")),
        };
        utc_micros(start.to_datetime(Time::midnight()))
    }

    /// How many of this part's boundaries lie between `start` and `end`, as `date_diff`
    /// counts them.
    fn between(self, start: i64, end: i64) -> Result<i64, String> {
        let floor = |unit: i64| end.div_euclid(unit) - start.div_euclid(unit);
        let months = |m: i64| -> Result<i64, String> {
            let month =
                |at: i64| Ok::<i64, String>(Part::Year.of(at)? * 12 + Part::Month.of(at)? - 1);
            Ok((month(end)? / m) - (month(start)? / m))
        };
        let by_part = |p: Part| Ok::<i64, String>(p.of(end)? - p.of(start)?);
        match self {
            Part::Microsecond => end
                .checked_sub(start)
                .ok_or_else(|| "date_diff in microseconds is out of range".into()),
            Part::Millisecond => Ok(floor(1_000)),
            Part::Second => Ok(floor(1_000_000)),
            Part::Minute => Ok(floor(60_000_000)),
            Part::Hour => Ok(floor(3_600_000_000)),
            Part::Day | Part::DayOfWeek | Part::IsoDayOfWeek | Part::DayOfYear => {
                Ok(floor(DAY_MICROS))
            }
            Part::Week => Ok(floor(DAY_MICROS) / 7),
            Part::Month => months(1),
            Part::Quarter => months(3),
            Part::Year => by_part(Part::Year),
            Part::IsoYear => by_part(Part::IsoYear),
            Part::Decade => Ok(Part::Year.of(end)? / 10 - Part::Year.of(start)? / 10),
            Part::Century => Ok(Part::Year.of(end)? / 100 - Part::Year.of(start)? / 100),
            Part::Millennium => Ok(Part::Year.of(end)? / 1000 - Part::Year.of(start)? / 1000),
            other => Err(format!(
                "date_diff cannot count {other:?} between timestamptz values"
            )),
        }
    }
}

/// `year(tstz)`, `hour(tstz)`... : the part the function is named for.
struct PartOf;

impl VScalar for PartOf {
    type State = Part;

    fn invoke(
        part: &Part,
        input: &mut DataChunkHandle,
        output: &mut dyn WritableVector,
    ) -> Result<(), Box<dyn Error>> {
        per_row(input, output, |row| {
            finite(value(input, 0, row)).map(|m| part.of(m)).transpose()
        })
    }

    fn signatures() -> Vec<ScalarFunctionSignature> {
        vec![signature(&[Tz], Bigint)]
    }
}

scalar!(
    /// `epoch(tstz)`: seconds since 1970 with their fraction.
    Epoch,
    [signature(&[Tz], Double)],
    |input| |row| Ok(finite(value(input, 0, row)).map(|m| m as f64 / 1e6))
);

scalar!(
    /// `date_part(part, tstz)`, which `extract(part from tstz)` calls.
    DatePart,
    [signature(&[Varchar, Tz], Bigint)],
    |input| |row| {
        let part = Part::named(&text(input, 0, row))?;
        finite(value(input, 1, row)).map(|m| part.of(m)).transpose()
    }
);

scalar!(
    /// `date_trunc(part, tstz)`.
    Trunc,
    [signature(&[Varchar, Tz], Tz)],
    |input| |row| match value(input, 1, row) {
        micros if infinite(micros) => Ok(Some(micros)),
        micros => Part::named(&text(input, 0, row))?.truncate(micros).map(Some),
    }
);

scalar!(
    /// `date_diff(part, start, end)`.
    Diff,
    [signature(&[Varchar, Tz, Tz], Bigint)],
    |input| |row| {
        let part = Part::named(&text(input, 0, row))?;
        both_finite(value(input, 1, row), value(input, 2, row))
            .map(|(start, end)| part.between(start, end))
            .transpose()
    }
);

scalar!(
    /// `age(end, start)`.
    Age,
    [signature(&[Tz, Tz], Interval)],
    |input| |row| {
        both_finite(value(input, 0, row), value(input, 1, row))
            .map(|(end, start)| age(end, start))
            .transpose()
    }
);

scalar!(
    /// `age(tstz)`: from today's midnight (UTC).
    AgeFromToday,
    [signature(&[Tz], Interval)],
    |input| let midnight = Timestamp::now().as_microsecond().div_euclid(DAY_MICROS) * DAY_MICROS;
    |row| finite(value(input, 0, row)).map(|start| age(midnight, start)).transpose()
);

scalar!(
    /// `last_day(tstz)`: the date of the last day of its month.
    LastDay,
    [signature(&[Tz], DateType)],
    |input| |row| {
        let last_day = |micros| {
            let last = utc_civil(micros)?.date().last_of_month();
            let days = last.since(Date::constant(1970, 1, 1)).map_err(|e| e.to_string())?;
            Ok::<i32, String>(days.get_days())
        };
        finite(value(input, 0, row)).map(last_day).transpose()
    }
);

scalar!(
    /// `timestamptz + interval`.
    PlusInterval,
    [signature(&[Tz, Interval], Tz)],
    |input| |row| add(value(input, 0, row), value(input, 1, row), 1).map(Some)
);

scalar!(
    /// `interval + timestamptz`.
    IntervalPlus,
    [signature(&[Interval, Tz], Tz)],
    |input| |row| add(value(input, 1, row), value(input, 0, row), 1).map(Some)
);

scalar!(
    /// `timestamptz - interval`.
    MinusInterval,
    [signature(&[Tz, Interval], Tz)],
    |input| |row| add(value(input, 0, row), value(input, 1, row), -1).map(Some)
);

/// As ICU counts it: the most whole months from `start` that do not pass `end` (a day past
/// a month's end is its last day), then whole days, then the time; negated when `end` is
/// earlier.
fn age(end: i64, start: i64) -> Result<duckdb_interval, String> {
    if end < start {
        let back = age(start, end)?;
        return Ok(duckdb_interval {
            months: -back.months,
            days: -back.days,
            micros: -back.micros,
        });
    }
    let (from, to) = (utc_civil(start)?, utc_civil(end)?);
    let month_index = |d: DateTime| i32::from(d.year()) * 12 + i32::from(d.month());
    let mut months = month_index(to) - month_index(from);
    let after = |months: i32| -> Result<i64, String> {
        utc_micros(
            from.checked_add(Span::new().try_months(months).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?,
        )
    };
    while months > 0 && after(months)? > end {
        months -= 1;
    }
    let rest = end - after(months)?;
    Ok(duckdb_interval {
        months,
        days: (rest / DAY_MICROS) as i32,
        micros: rest % DAY_MICROS,
    })
}

/// The first day of a month, if the year is one jiff can hold.
fn first_of(year: i16, month: i8) -> Result<Date, String> {
    Date::new(year, month, 1).map_err(|e| e.to_string())
}

/// `micros` (UTC) plus `sign` times the interval: months, then days, then microseconds, as
/// DuckDB adds an interval to a timestamp (a day past the month's end is its last day).
fn add(micros: i64, by: duckdb_interval, sign: i32) -> Result<i64, String> {
    if infinite(micros) {
        return Ok(micros);
    }
    let too_far = || format!("timestamp {micros} µs plus an interval is out of range");
    let months = by.months.checked_mul(sign).ok_or_else(too_far)?;
    let days = by.days.checked_mul(sign).ok_or_else(too_far)?;
    let span = Span::new()
        .try_months(months)
        .and_then(|s| s.try_days(days))
        .map_err(|e| e.to_string())?;
    let moved = utc_civil(micros)?
        .checked_add(span)
        .map_err(|e| e.to_string())?;
    (by.micros.checked_mul(i64::from(sign)))
        .and_then(|m| utc_micros(moved).ok()?.checked_add(m))
        .ok_or_else(too_far)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        utc_micros(text.parse().unwrap()).unwrap()
    }

    #[test]
    fn parts_and_truncation_are_duckdbs() {
        let t = at("2024-12-30T13:45:07.250");
        let of = |name: &str| Part::named(name).unwrap().of(t).unwrap();
        assert_eq!(
            (
                of("year"),
                of("ISOYEAR"),
                of("week"),
                of("dow"),
                of("isodow")
            ),
            (2024, 2025, 1, 1, 1)
        );
        assert_eq!(
            (of("ms"), of("quarter"), of("doy"), of("century")),
            (7250, 4, 365, 21)
        );
        let cut = |name: &str| Part::named(name).unwrap().truncate(t).unwrap();
        assert_eq!(cut("week"), at("2024-12-30T00:00"));
        assert_eq!(cut("quarter"), at("2024-10-01T00:00"));
        assert_eq!(cut("century"), at("2000-01-01T00:00"));
        assert_eq!(cut("hour"), at("2024-12-30T13:00"));
        assert!(Part::named("fortnight").is_err());
    }

    #[test]
    fn differences_count_boundaries_and_intervals_clamp_to_the_month() {
        let (a, b) = (at("2024-01-31T23:00"), at("2024-02-01T01:00"));
        let diff = |name: &str| Part::named(name).unwrap().between(a, b).unwrap();
        assert_eq!(
            (diff("month"), diff("day"), diff("hour"), diff("year")),
            (1, 1, 2, 0)
        );
        let month = duckdb_interval {
            months: 1,
            days: 0,
            micros: 0,
        };
        assert_eq!(
            add(at("2024-01-31T00:00"), month, 1),
            Ok(at("2024-02-29T00:00"))
        );
        let aged = age(at("2024-03-02T01:00"), at("2024-01-01T00:00")).unwrap();
        assert_eq!((aged.months, aged.days, aged.micros), (2, 1, 3_600_000_000));
        let aged = age(at("2024-03-31T00:00"), at("2024-02-29T12:00")).unwrap();
        assert_eq!(
            (aged.months, aged.days, aged.micros),
            (1, 1, 12 * 3_600_000_000)
        );
    }
}
