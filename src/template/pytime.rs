//! Python's dates and times as dbt hands them to Jinja: `modules.datetime` (`datetime` and
//! `date`: constructors, `now()`/`utcnow()`/`today()` in UTC, `strptime`, `fromisoformat`;
//! on values `strftime`, `isoformat`, `year`...), `modules.pytz` (`timezone(name)`, `utc`, a
//! zone's `localize(dt)` and `zone`) and datetimes that carry a zone (`run_started_at`,
//! `datetime.now(tz)`, `dt.astimezone(tz)`, `dt.replace(tzinfo=tz)`), over the IANA database
//! bundled with jiff. A wall-clock time a zone skips or repeats is its later instant, as
//! pytz's `localize` gives by default (`is_dst=False`).

use std::fmt;
use std::sync::Arc;

use jiff::Span;
use jiff::Zoned;
use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};
use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Rest, Value, from_args};
use minijinja::{Error, ErrorKind, State};

pub(super) fn error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// `modules.datetime.datetime`: called, a datetime; its class methods.
#[derive(Debug)]
pub(super) struct DateTimeType;

fn utc_now() -> DateTime {
    to_micros(jiff::Timestamp::now().to_zoned(TimeZone::UTC).datetime())
}

/// Python's datetimes hold microseconds.
fn to_micros(dt: DateTime) -> DateTime {
    let nanos = dt.subsec_nanosecond();
    dt.with()
        .subsec_nanosecond(nanos - nanos % 1000)
        .build()
        .unwrap_or(dt)
}

/// A microsecond argument as nanoseconds, if Python would take it.
fn nanoseconds(micros: i64) -> Option<i32> {
    (0..1_000_000)
        .contains(&micros)
        .then(|| micros as i32 * 1000)
}

/// How Python prints a datetime (`str()` with a space, `isoformat()` with `T`): microseconds
/// only when there are some.
fn python_format(dt: DateTime, separator: char) -> String {
    let fraction = if dt.subsec_nanosecond() == 0 {
        ""
    } else {
        "%.6f"
    };
    format!("%Y-%m-%d{separator}%H:%M:%S{fraction}")
}

impl Object for DateTimeType {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    /// `datetime(year, month, day, hour=0, minute=0, second=0, microsecond=0, tzinfo=None)`,
    /// by position or by name.
    fn call(self: &Arc<Self>, _: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (Rest(given), kwargs): (Rest<Value>, Kwargs) = from_args(args)?;
        let mut parts = [0i64; 7];
        for (i, name) in FIELDS.iter().enumerate() {
            let value = match given.get(i) {
                Some(v) => Some(v.clone()),
                None => kwargs.get::<Option<Value>>(name)?,
            };
            match value {
                Some(v) => parts[i] = i64::try_from(v)?,
                None if i < 3 => return Err(error(format!("datetime(): {name} is required"))),
                None => {}
            }
        }
        let tzinfo = match given.get(7) {
            Some(v) => Some(v.clone()),
            None => kwargs.get::<Option<Value>>("tzinfo")?,
        };
        kwargs.assert_all_used()?;
        let small =
            |i: usize| i8::try_from(parts[i]).map_err(|_| error("datetime(): out of range"));
        let dt = DateTime::new(
            i16::try_from(parts[0]).map_err(|_| error("datetime(): year out of range"))?,
            small(1)?,
            small(2)?,
            small(3)?,
            small(4)?,
            small(5)?,
            nanoseconds(parts[6])
                .ok_or_else(|| error("datetime(): microsecond must be in 0..999999"))?,
        )
        .map_err(|e| error(format!("datetime(): {e}")))?;
        match tzinfo.filter(|t| !t.is_none()) {
            Some(tz) => localize(dt, zone_of(&tz)?),
            None => Ok(Value::from_object(PyDateTime(dt))),
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let dt = match method {
            "now" if !args.is_empty() => {
                let (tz,): (Value,) = from_args(args)?;
                return Ok(aware(jiff::Timestamp::now().to_zoned(zone_of(&tz)?)));
            }
            "now" | "utcnow" | "today" => utc_now(),
            "strptime" => {
                let (text, format): (String, String) = from_args(args)?;
                jiff::fmt::strtime::parse(&format, &text)
                    .and_then(|t| t.to_datetime())
                    .map_err(|e| error(format!("strptime: {e}")))?
            }
            "fromisoformat" => {
                let (text,): (String,) = from_args(args)?;
                return from_iso(text.trim());
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        };
        Ok(Value::from_object(PyDateTime(dt)))
    }
}

/// `modules.datetime.timedelta`: said not to be there, at the line that asks for it, for its
/// use is arithmetic (`date.today() - timedelta(2)`) and minijinja has no operators on objects.
pub(super) fn timedelta(_: Rest<Value>, _: Kwargs) -> Result<Value, Error> {
    Err(error(
        "modules.datetime.timedelta: date arithmetic in Jinja is not supported by xform; \
         compute the date in SQL (dbt.dateadd(...)) or write it out",
    ))
}

/// A datetime's fields, in the order Python's constructor takes them.
const FIELDS: [&str; 7] = [
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "microsecond",
];

/// Python's `datetime.fromisoformat`: a date, or a date and time (`T` or a space between,
/// seconds and their fraction optional) with an optional offset (`+09:00`, `Z`) that makes
/// it aware.
fn from_iso(text: &str) -> Result<Value, Error> {
    let failed = |e: &dyn std::fmt::Display| error(format!("fromisoformat('{text}'): {e}"));
    let (civil, offset) = match text.get(10..).and_then(|t| t.rfind(['+', '-', 'Z'])) {
        Some(at) => text.split_at(10 + at),
        None => (text, ""),
    };
    let dt = match civil.len() {
        10 => civil
            .parse::<Date>()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight())),
        _ => civil.replacen(' ', "T", 1).parse::<DateTime>(),
    }
    .map_err(|e| failed(&e))?;
    if offset.is_empty() {
        return Ok(Value::from_object(PyDateTime(dt)));
    }
    let offset = match offset {
        "Z" => jiff::tz::Offset::UTC,
        _ => jiff::fmt::strtime::parse("%:z", offset)
            .or_else(|_| jiff::fmt::strtime::parse("%z", offset))
            .ok()
            .and_then(|t| t.offset())
            .ok_or_else(|| failed(&"not an offset"))?,
    };
    localize(dt, TimeZone::fixed(offset))
}

/// `modules.datetime.date`: called, a date; `today()`.
#[derive(Debug)]
pub(super) struct DateType;

impl Object for DateType {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (y, m, d): (i16, i8, i8) = from_args(args)?;
        let date = Date::new(y, m, d).map_err(|e| error(format!("date(): {e}")))?;
        Ok(Value::from_object(PyDate(date)))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        _: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "today" => Ok(Value::from_object(PyDate(utc_now().date()))),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A Python `datetime` (naive).
#[derive(Debug)]
struct PyDateTime(DateTime);

/// A Python `date`.
#[derive(Debug)]
struct PyDate(Date);

fn strftime(
    t: impl Into<jiff::fmt::strtime::BrokenDownTime>,
    format: &str,
) -> Result<Value, Error> {
    jiff::fmt::strtime::format(format, t)
        .map(Value::from)
        .map_err(|e| error(format!("strftime: {e}")))
}

/// The methods a datetime and a date share: `strftime`, `isoformat` (`iso`), `weekday()`
/// (Monday 0) and `isoweekday()` (Monday 1).
fn time_method(
    t: impl Into<jiff::fmt::strtime::BrokenDownTime>,
    date: Date,
    (method, args): (&str, &[Value]),
    iso: &str,
) -> Result<Value, Error> {
    let weekday = || date.weekday();
    match method {
        "strftime" => {
            let (format,): (String,) = from_args(args)?;
            strftime(t, &format)
        }
        "isoformat" => strftime(t, iso),
        "weekday" => Ok(Value::from(weekday().to_monday_zero_offset())),
        "isoweekday" => Ok(Value::from(weekday().to_monday_one_offset())),
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

fn date_part(date: Date, key: &str) -> Option<Value> {
    Some(Value::from(match key {
        "year" => i64::from(date.year()),
        "month" => i64::from(date.month()),
        "day" => i64::from(date.day()),
        _ => return None,
    }))
}

/// A datetime's `year` ... `second` (dbt's `run_started_at` has them too).
pub(super) fn datetime_part(t: DateTime, key: &str) -> Option<Value> {
    date_part(t.date(), key).or_else(|| {
        Some(Value::from(match key {
            "hour" => t.hour(),
            "minute" => t.minute(),
            "second" => t.second(),
            _ => return None,
        }))
    })
}

impl Object for PyDateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "tzinfo" => Some(Value::from(())),
            "microsecond" => Some(Value::from(self.0.subsec_nanosecond() / 1000)),
            key => datetime_part(self.0, key),
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "date" => Ok(Value::from_object(PyDate(self.0.date()))),
            "replace" => replace(self.0, None, args),
            "astimezone" => naive_in_zone(self.0, args),
            // A naive datetime is in the session's zone, UTC.
            "timestamp" => epoch_seconds(self.0, Offset::UTC).map(Value::from),
            _ => time_method(
                self.0,
                self.0.date(),
                (method, args),
                &python_format(self.0, 'T'),
            ),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.strftime(&python_format(self.0, ' ')).to_string())
    }
}

/// `dt.astimezone(tz)` of a naive datetime, which is in the session's zone, UTC.
fn naive_in_zone(dt: DateTime, args: &[Value]) -> Result<Value, Error> {
    let (tz,): (Value,) = from_args(args)?;
    let utc = dt
        .to_zoned(TimeZone::UTC)
        .map_err(|e| error(e.to_string()))?;
    Ok(aware(utc.with_time_zone(zone_of(&tz)?)))
}

/// `dt.replace(hour=0, ..., tzinfo=tz)`: the fields given changed, the wall-clock time kept;
/// `tzinfo` given puts it in that zone (or none), else it stays in `zone`.
fn replace(dt: DateTime, zone: Option<TimeZone>, args: &[Value]) -> Result<Value, Error> {
    let (kwargs,): (Kwargs,) = from_args(args)?;
    let mut with = dt.with();
    for field in FIELDS {
        let Some(v) = kwargs.get::<Option<i64>>(field)? else {
            continue;
        };
        let small = |v: i64| i8::try_from(v).map_err(|_| error(format!("replace(): {field}")));
        with = match field {
            "year" => with.year(i16::try_from(v).map_err(|_| error("replace(): year"))?),
            "month" => with.month(small(v)?),
            "day" => with.day(small(v)?),
            "hour" => with.hour(small(v)?),
            "minute" => with.minute(small(v)?),
            "second" => with.second(small(v)?),
            _ => with.subsec_nanosecond(
                nanoseconds(v)
                    .ok_or_else(|| error("replace(): microsecond must be in 0..999999"))?,
            ),
        };
    }
    let dt = with.build().map_err(|e| error(format!("replace(): {e}")))?;
    let zone = match kwargs.get::<Option<Value>>("tzinfo")? {
        Some(tz) if tz.is_none() => None,
        Some(tz) => Some(zone_of(&tz)?),
        None => zone,
    };
    kwargs.assert_all_used()?;
    match zone {
        Some(tz) => localize(dt, tz),
        None => Ok(Value::from_object(PyDateTime(dt))),
    }
}

impl Object for PyDate {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        date_part(self.0, key.as_str()?)
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        time_method(self.0, self.0, (method, args), "%Y-%m-%d")
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_string())
    }
}

/// `modules.pytz`.
#[derive(Debug)]
pub(super) struct Pytz;

impl Object for Pytz {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        matches!(key.as_str()?, "utc" | "UTC").then(|| zone_value(TimeZone::UTC, "UTC"))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["utc", "UTC"])
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "timezone" => {
                let (name,): (String,) = from_args(args)?;
                let tz = TimeZone::get(&name).map_err(|_| {
                    error(format!(
                        "modules.pytz.timezone(): unknown time zone '{name}' (an IANA name such \
                         as 'Asia/Seoul')"
                    ))
                })?;
                let canonical = tz.iana_name().unwrap_or(&name).to_string();
                Ok(zone_value(tz, &canonical))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A pytz zone: `zone` (its name), `localize(naive)`; prints as its name.
#[derive(Debug)]
struct PyTz {
    tz: TimeZone,
    name: String,
}

fn zone_value(tz: TimeZone, name: &str) -> Value {
    Value::from_object(PyTz {
        tz,
        name: name.to_string(),
    })
}

/// The zone a Jinja value stands for, if it is one.
fn zone_of(value: &Value) -> Result<TimeZone, Error> {
    value
        .downcast_object_ref::<PyTz>()
        .map(|z| z.tz.clone())
        .ok_or_else(|| error(format!("expected a time zone (modules.pytz), got {value}")))
}

/// A naive datetime read as wall-clock time in `tz`. Past the instants jiff can hold (Python
/// goes to 9999-12-31 23:59 in every zone), a zone with one offset still works.
fn localize(dt: DateTime, tz: TimeZone) -> Result<Value, Error> {
    let offset = match tz.to_ambiguous_timestamp(dt).later() {
        // The offset that makes `dt` that instant: in a gap, the one before it, as pytz has it.
        Ok(at) => seconds_between(at, dt)?,
        Err(e) => match tz.to_fixed_offset() {
            Ok(offset) => offset,
            Err(_) => return Err(error(format!("{dt} in {}: {e}", zone_name(&tz, None)))),
        },
    };
    Ok(Value::from_object(PyZoned { dt, offset, tz }))
}

/// Python's `timestamp()`: seconds since 1970 (UTC) of wall-clock `dt` at `offset`, with the
/// fraction; from the calendar, so 9999-12-31 works.
fn epoch_seconds(dt: DateTime, offset: Offset) -> Result<f64, Error> {
    let epoch = jiff::civil::date(1970, 1, 1).to_datetime(jiff::civil::Time::midnight());
    let span = (dt.since((jiff::Unit::Second, epoch))).map_err(|e| error(e.to_string()))?;
    let seconds = span.get_seconds() - i64::from(offset.seconds());
    Ok(seconds as f64 + f64::from(dt.subsec_nanosecond()) / 1e9)
}

/// The offset of wall-clock `dt` from the instant `at`.
fn seconds_between(at: jiff::Timestamp, dt: DateTime) -> Result<Offset, Error> {
    let utc = (dt.to_zoned(TimeZone::UTC)).map_err(|e| error(e.to_string()))?;
    let seconds = utc.timestamp().as_second() - at.as_second();
    Offset::from_seconds(seconds as i32).map_err(|e| error(e.to_string()))
}

/// A datetime that carries its zone.
pub(super) fn aware(at: Zoned) -> Value {
    Value::from_object(PyZoned {
        dt: to_micros(at.datetime()),
        offset: at.offset(),
        tz: at.time_zone().clone(),
    })
}

fn zone_name(tz: &TimeZone, offset: Option<Offset>) -> String {
    match (tz.iana_name(), offset) {
        (Some(name), _) => name.to_string(),
        (None, Some(offset)) => offset.to_string(),
        (None, None) => "a fixed offset".into(),
    }
}

impl Object for PyTz {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "zone").then(|| Value::from(self.name.clone()))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "localize" => {
                let (naive,): (Value,) = from_args(args)?;
                let dt = naive
                    .downcast_object_ref::<PyDateTime>()
                    .ok_or_else(|| error("localize() takes a naive datetime"))?;
                localize(dt.0, self.tz.clone())
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A Python `datetime` with a `tzinfo`: wall-clock time, its offset from UTC, its zone.
#[derive(Debug)]
struct PyZoned {
    dt: DateTime,
    offset: Offset,
    tz: TimeZone,
}

impl PyZoned {
    /// Python's `str()`/`isoformat()`.
    fn format(&self, separator: char) -> Result<String, Error> {
        self.strftime(&format!("{}%:z", python_format(self.dt, separator)))
    }

    /// Its fields for `strftime`: from its instant in its zone (so `%Z` has the zone's
    /// abbreviation), else its wall-clock time and offset.
    fn broken_down(&self) -> jiff::fmt::strtime::BrokenDownTime {
        let utc = (self
            .dt
            .checked_sub(Span::new().seconds(self.offset.seconds())))
        .and_then(|utc| utc.to_zoned(TimeZone::UTC));
        match utc.map(|z| z.with_time_zone(self.tz.clone())) {
            Ok(zoned) if zoned.datetime() == self.dt => (&zoned).into(),
            _ => {
                let mut parts = jiff::fmt::strtime::BrokenDownTime::from(self.dt);
                parts.set_offset(Some(self.offset));
                parts
            }
        }
    }

    fn strftime(&self, format: &str) -> Result<String, Error> {
        jiff::fmt::strtime::format(format, self.broken_down()).map_err(|e| error(e.to_string()))
    }

    /// The same instant in `tz`.
    fn in_zone(&self, tz: TimeZone) -> Result<Value, Error> {
        let utc = self
            .dt
            .checked_sub(Span::new().seconds(self.offset.seconds()));
        let at = utc.and_then(|utc| utc.to_zoned(TimeZone::UTC));
        match at {
            Ok(at) => Ok(aware(at.with_time_zone(tz))),
            Err(_) => {
                let offset = tz.to_fixed_offset().map_err(|e| error(e.to_string()))?;
                let shift = Span::new().seconds(offset.seconds() - self.offset.seconds());
                let dt = self
                    .dt
                    .checked_add(shift)
                    .map_err(|e| error(e.to_string()))?;
                Ok(Value::from_object(PyZoned { dt, offset, tz }))
            }
        }
    }
}

impl Object for PyZoned {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "tzinfo" => Some(zone_value(
                self.tz.clone(),
                &zone_name(&self.tz, Some(self.offset)),
            )),
            "microsecond" => Some(Value::from(self.dt.subsec_nanosecond() / 1000)),
            key => datetime_part(self.dt, key),
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "astimezone" => {
                let (tz,): (Value,) = from_args(args)?;
                self.in_zone(zone_of(&tz)?)
            }
            "replace" => replace(self.dt, Some(self.tz.clone()), args),
            "isoformat" => self.format('T').map(Value::from),
            "timestamp" => epoch_seconds(self.dt, self.offset).map(Value::from),
            "date" => Ok(Value::from_object(PyDate(self.dt.date()))),
            _ => time_method(self.broken_down(), self.dt.date(), (method, args), ""),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(' ').map_err(|_| fmt::Error)?)
    }
}
