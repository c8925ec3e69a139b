//! dbt's `modules`: the Python modules dbt hands to Jinja, as far as packages use them.
//! `modules.re` is Python's regular expressions on the regex crate (no look-around or
//! back-references, which that crate does not have); `modules.datetime` has `datetime` and
//! `date` (constructors, `now()`/`utcnow()`/`today()` in UTC, `strptime`, `fromisoformat`, and
//! on values `strftime`, `isoformat`, `year`...) and `modules.pytz` are in `pytime.rs`.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Kwargs, Object, ObjectRepr, Rest, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use regex::Regex;

use super::pytime::{self, error};

/// The `modules` global.
pub(super) fn value() -> Value {
    minijinja::context! {
        re => Value::from_object(Re),
        datetime => minijinja::context! {
            datetime => Value::from_object(pytime::DateTimeType),
            date => Value::from_object(pytime::DateType),
            timedelta => Value::from_function(pytime::timedelta),
        },
        pytz => Value::from_object(pytime::Pytz),
    }
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
