//! Time zones in Jinja, as dbt's Python has them: `modules.pytz` (`timezone(name)`, `utc`,
//! a zone's `localize(dt)` and `zone`) and datetimes that carry a zone (`run_started_at`,
//! `datetime.now(tz)`, `dt.astimezone(tz)`, `dt.replace(tzinfo=tz)`), over the IANA database
//! bundled with jiff. A wall-clock time a zone skips or repeats is its later instant, as
//! pytz's `localize` gives by default (`is_dst=False`).

use std::fmt;
use std::sync::Arc;

use jiff::Zoned;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};

use super::modules::{PyDate, PyDateTime, datetime_part, error, time_method};

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
pub(super) fn zone_of(value: &Value) -> Result<TimeZone, Error> {
    value
        .downcast_object_ref::<PyTz>()
        .map(|z| z.tz.clone())
        .ok_or_else(|| error(format!("expected a time zone (modules.pytz), got {value}")))
}

/// A naive datetime read as wall-clock time in `tz`.
pub(super) fn localize(dt: DateTime, tz: TimeZone) -> Result<Value, Error> {
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
            "replace" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                let tzinfo: Value = kwargs.get("tzinfo")?;
                kwargs.assert_all_used()?;
                match tzinfo.is_none() {
                    true => Ok(Value::from_object(PyDateTime(self.0.datetime()))),
                    false => localize(self.0.datetime(), zone_of(&tzinfo)?),
                }
            }
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
