//! dbt's `modules`: the Python modules dbt hands to Jinja, as far as packages use them.
//! `modules.re` is Python's regular expressions on the regex crate (no look-around or
//! back-references, which that crate does not have); `modules.datetime` has `datetime` and
//! `date` (constructors, `now()`/`utcnow()`/`today()` in UTC, `strptime`, `fromisoformat`, and
//! on values `strftime`, `isoformat`, `year`...); `modules.pytz` and datetimes with a zone are in
//! `zoned.rs`.

use std::fmt;
use std::sync::Arc;

use jiff::civil::{Date, DateTime};
use minijinja::value::{Kwargs, Object, ObjectRepr, Rest, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use regex::Regex;

use super::zoned;

/// The `modules` global.
pub(super) fn value() -> Value {
    minijinja::context! {
        re => Value::from_object(Re),
        datetime => minijinja::context! {
            datetime => Value::from_object(DateTimeType),
            date => Value::from_object(DateType),
        },
        pytz => Value::from_object(super::zoned::Pytz),
    }
}

pub(super) fn error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// `modules.re`.
#[derive(Debug)]
struct Re;

/// Python's flags as the regex crate's inline ones.
const FLAGS: [(i64, char); 4] = [(2, 'i'), (8, 'm'), (16, 's'), (64, 'x')];

fn compile(pattern: &str, flags: i64) -> Result<Regex, Error> {
    let inline: String = FLAGS
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, c)| *c)
        .collect();
    let pattern = match inline.is_empty() {
        true => pattern.to_string(),
        false => format!("(?{inline}){pattern}"),
    };
    Regex::new(&pattern).map_err(|e| error(format!("modules.re: {e}")))
}

impl Object for Re {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let flag = match key.as_str()? {
            "I" | "IGNORECASE" => 2,
            "M" | "MULTILINE" => 8,
            "S" | "DOTALL" => 16,
            "X" | "VERBOSE" => 64,
            _ => return None,
        };
        Some(Value::from(flag))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method == "escape" {
            let (text,): (String,) = from_args(args)?;
            return Ok(Value::from(regex::escape(&text)));
        }
        let (Rest(args), kwargs): (Rest<Value>, Kwargs) = from_args(args)?;
        let (pattern, rest) = args
            .split_first()
            .ok_or_else(|| error("modules.re needs a pattern"))?;
        let pattern = pattern
            .as_str()
            .ok_or_else(|| error("modules.re: a pattern is text"))?;
        let flags_at = match method {
            "sub" => 3,
            "split" => 2,
            "compile" => 0,
            _ => 1,
        };
        let flags = (rest
            .get(flags_at)
            .and_then(|v| i64::try_from(v.clone()).ok()))
        .or_else(|| kwargs.get::<Option<i64>>("flags").ok().flatten())
        .unwrap_or(0);
        let regex = Arc::new(compile(pattern, flags)?);
        if method == "compile" {
            return Ok(Value::from_object(Pattern(regex)));
        }
        apply(&regex, method, &rest[..flags_at.min(rest.len())], &kwargs)
    }
}

/// `re.compile(...)`'s pattern: the module's functions without the pattern argument.
#[derive(Debug)]
struct Pattern(Arc<Regex>);

impl Object for Pattern {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (Rest(args), kwargs): (Rest<Value>, Kwargs) = from_args(args)?;
        apply(&self.0, method, &args, &kwargs)
    }
}

/// `sub`, `match`, `search`, `fullmatch`, `findall`, `split` with `args` after the pattern.
fn apply(
    regex: &Arc<Regex>,
    method: &str,
    args: &[Value],
    kwargs: &Kwargs,
) -> Result<Value, Error> {
    let text = |i: usize| -> Result<String, Error> {
        let v = args
            .get(i)
            .ok_or_else(|| error(format!("re.{method}: missing an argument")))?;
        Ok(v.as_str().map_or_else(|| v.to_string(), str::to_string))
    };
    let count = |i: usize, key: &str| -> usize {
        (args.get(i).and_then(|v| usize::try_from(v.clone()).ok()))
            .or_else(|| kwargs.get::<Option<usize>>(key).ok().flatten())
            .unwrap_or(0)
    };
    match method {
        "sub" => {
            let (repl, subject) = (python_replacement(&text(0)?), text(1)?);
            let out = regex.replacen(&subject, count(2, "count"), repl.as_str());
            Ok(Value::from(out.into_owned()))
        }
        "match" | "search" | "fullmatch" => {
            let subject = text(0)?;
            // `match` and `fullmatch` anchor the pattern itself, as Python does (a filter on
            // the leftmost match would miss `a|ab` fully matching `ab`).
            let anchored = match method {
                "match" => Some(format!(r"\A(?:{})", regex.as_str())),
                "fullmatch" => Some(format!(r"\A(?:{})\z", regex.as_str())),
                _ => None,
            };
            let anchored = anchored.map(|p| Regex::new(&p)).transpose();
            let anchored = anchored.map_err(|e| error(format!("modules.re: {e}")))?;
            let found = anchored.as_ref().unwrap_or(regex).captures(&subject);
            Ok(found.map_or(Value::from(()), |c| {
                let groups = (0..c.len()).map(|i| c.get(i).map(|m| m.as_str().to_string()));
                Value::from_object(Match(groups.collect()))
            }))
        }
        "findall" => {
            let subject = text(0)?;
            let found = regex.captures_iter(&subject).map(|c| {
                let group = |i: usize| Value::from(c.get(i).map_or("", |m| m.as_str()));
                match c.len() {
                    1 => group(0),
                    2 => group(1),
                    n => Value::from((1..n).map(group).collect::<Vec<_>>()),
                }
            });
            Ok(Value::from(found.collect::<Vec<_>>()))
        }
        "split" => {
            let subject = text(0)?;
            let parts: Vec<Value> = match count(1, "maxsplit") {
                0 => regex.split(&subject).map(Value::from).collect(),
                n => regex.splitn(&subject, n + 1).map(Value::from).collect(),
            };
            Ok(Value::from(parts))
        }
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

/// Python's replacement (`\1`, `\g<1>`, `\g<name>`) as the regex crate's (`${1}`), `$` kept.
fn python_replacement(repl: &str) -> String {
    let mut out = String::with_capacity(repl.len());
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    chars.next();
                    out.push_str(&format!("${{{d}}}"));
                }
                Some('g') => {
                    chars.next();
                    let name: String = match chars.next() {
                        Some('<') => chars.by_ref().take_while(|c| *c != '>').collect(),
                        _ => String::new(),
                    };
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// A match: `group(n)`, `groups()`, and `[n]`.
#[derive(Debug)]
struct Match(Vec<Option<String>>);

impl Object for Match {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = usize::try_from(key.clone()).ok()?;
        Some(Value::from(self.0.get(i)?.clone()))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "group" => {
                let (i,): (Option<usize>,) = from_args(args)?;
                let group = self
                    .0
                    .get(i.unwrap_or(0))
                    .ok_or_else(|| error("no such group"))?;
                Ok(Value::from(group.clone()))
            }
            "groups" => Ok(Value::from(
                self.0[1..]
                    .iter()
                    .cloned()
                    .map(Value::from)
                    .collect::<Vec<_>>(),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<re.Match {:?}>",
            self.0.first().cloned().flatten().unwrap_or_default()
        )
    }
}

/// `modules.datetime.datetime`: called, a datetime; its class methods.
#[derive(Debug)]
struct DateTimeType;

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
                return Ok(zoned::aware(
                    jiff::Timestamp::now().to_zoned(zoned::zone_of(&tz)?),
                ));
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
struct DateType;

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
pub(super) struct PyDateTime(pub(super) DateTime);

/// A Python `date`.
#[derive(Debug)]
pub(super) struct PyDate(pub(super) Date);

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
pub(super) fn time_method(
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
        return Ok(zoned::aware(utc.with_time_zone(zoned::zone_of(&tz)?)));
    }
    let (kwargs,): (Kwargs,) = from_args(args)?;
    let tzinfo: Value = kwargs.get("tzinfo")?;
    kwargs.assert_all_used()?;
    match tzinfo.is_none() {
        true => Ok(Value::from_object(PyDateTime(dt))),
        false => zoned::localize(dt, zoned::zone_of(&tzinfo)?),
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

#[cfg(test)]
mod tests {
    use super::python_replacement;

    #[test]
    fn python_replacements_read_as_the_regex_crate_reads_them() {
        assert_eq!(python_replacement(r"\1-\g<2>"), "${1}-${2}");
        assert_eq!(
            python_replacement(r"\g<name> costs $5"),
            "${name} costs $$5"
        );
        assert_eq!(python_replacement("_"), "_");
    }
}
