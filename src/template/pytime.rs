//! Python's dates and times as dbt hands them to Jinja: `modules.datetime` (`datetime` and
//! `date`: constructors, `now()`/`utcnow()`/`today()` in UTC, `strptime`, `fromisoformat`;
//! on values `strftime`, `isoformat`, `year`...), `modules.pytz` (`timezone(name)`, `utc`, a
//! zone's `localize(dt)` and `zone`) and datetimes that carry a zone (`run_started_at`,
//! `datetime.now(tz)`, `dt.astimezone(tz)`, `dt.replace(tzinfo=tz)`), over the IANA database
//! bundled with jiff. A wall-clock time a zone skips or repeats is its later instant, as
//! pytz's `localize` gives by default (`is_dst=False`).

use std::fmt;
use std::sync::Arc;

use jiff::Zoned;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Rest, Value, from_args};
use minijinja::{Error, ErrorKind, State};

pub(super) fn error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// `modules.datetime.datetime`: called, a datetime; its class methods.
#[derive(Debug)]
pub(super) struct DateTimeType;

fn utc_now() -> DateTime {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .datetime()
}

impl Object for DateTimeType {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (y, mo, d, Rest(time)): (i16, i8, i8, Rest<i8>) = from_args(args)?;
        let at = |i: usize| time.get(i).copied().unwrap_or(0);
        let dt = DateTime::new(y, mo, d, at(0), at(1), at(2), 0)
            .map_err(|e| error(format!("datetime(): {e}")))?;
        Ok(Value::from_object(PyDateTime(dt)))
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
                let text = text.trim().replace('T', " ");
                let parsed = DateTime::strptime("%Y-%m-%d %H:%M:%S", &text)
                    .or_else(|_| DateTime::strptime("%Y-%m-%d %H:%M", &text))
                    .or_else(|_| {
                        text.parse::<Date>()
                            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
                    });
                parsed.map_err(|e| error(format!("fromisoformat: {e}")))?
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        };
        Ok(Value::from_object(PyDateTime(dt)))
    }
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
        datetime_part(self.0, key.as_str()?)
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "date" => Ok(Value::from_object(PyDate(self.0.date()))),
            "replace" | "astimezone" => naive_to_aware(self.0, method, args),
            _ => time_method(self.0, self.0.date(), (method, args), "%Y-%m-%dT%H:%M:%S"),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.strftime("%Y-%m-%d %H:%M:%S").to_string())
    }
}

/// `dt.replace(tzinfo=tz)` (the same wall-clock time in `tz`) and `dt.astimezone(tz)` (a naive
/// datetime is in the session's zone, UTC).
fn naive_to_aware(dt: DateTime, method: &str, args: &[Value]) -> Result<Value, Error> {
    if method == "astimezone" {
        let (tz,): (Value,) = from_args(args)?;
        let utc = dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| error(e.to_string()))?;
        return Ok(aware(utc.with_time_zone(zone_of(&tz)?)));
    }
    let (kwargs,): (Kwargs,) = from_args(args)?;
    let tzinfo: Value = kwargs.get("tzinfo")?;
    kwargs.assert_all_used()?;
    match tzinfo.is_none() {
        true => Ok(Value::from_object(PyDateTime(dt))),
        false => localize(dt, zone_of(&tzinfo)?),
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
                Ok(zone_value(tz, &name))
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

/// A naive datetime read as wall-clock time in `tz`.
fn localize(dt: DateTime, tz: TimeZone) -> Result<Value, Error> {
    let at = tz
        .to_ambiguous_timestamp(dt)
        .later()
        .map_err(|e| error(format!("{dt} in {}: {e}", tz.iana_name().unwrap_or("?"))))?;
    Ok(aware(at.to_zoned(tz)))
}

/// A datetime that carries its zone.
pub(super) fn aware(at: Zoned) -> Value {
    Value::from_object(PyZoned(at))
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

/// A Python `datetime` with a `tzinfo`.
#[derive(Debug)]
struct PyZoned(Zoned);

impl PyZoned {
    /// Python's `str()`/`isoformat()`: microseconds only when there are some.
    fn format(&self, separator: char) -> Result<String, Error> {
        let fraction = if self.0.subsec_nanosecond() == 0 {
            ""
        } else {
            "%.6f"
        };
        let pattern = format!("%Y-%m-%d{separator}%H:%M:%S{fraction}%:z");
        jiff::fmt::strtime::format(&pattern, &self.0).map_err(|e| error(e.to_string()))
    }
}

impl Object for PyZoned {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "tzinfo" => Some(zone_value(
                self.0.time_zone().clone(),
                self.0.time_zone().iana_name().unwrap_or("UTC"),
            )),
            "microsecond" => Some(Value::from(self.0.subsec_nanosecond() / 1000)),
            key => datetime_part(self.0.datetime(), key),
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
                Ok(aware(self.0.with_time_zone(zone_of(&tz)?)))
            }
            "replace" => naive_to_aware(self.0.datetime(), method, args),
            "isoformat" => self.format('T').map(Value::from),
            "timestamp" => Ok(Value::from(
                self.0.timestamp().as_microsecond() as f64 / 1e6,
            )),
            "date" => Ok(Value::from_object(PyDate(self.0.date()))),
            _ => time_method(&self.0, self.0.date(), (method, args), ""),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(' ').map_err(|_| fmt::Error)?)
    }
}
