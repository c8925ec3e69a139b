//! Unit tests (dbt 1.8's shape): a model's SQL run on mocked inputs, compared with the
//! expected rows. Each `given` input becomes a CTE named in place of the input's relation, so
//! nothing real is read or written (seeds that are not given are read as they are). Fixture
//! values take the column types of the real input when it exists in the warehouse.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use serde_json::Value as Json;

use super::{TestResult, TestStatus};
use crate::adapter::{Rows, Session};
use crate::compile::Compiled;
use crate::project::{Fixture, NodeKind, Table, UnitTestProps, fixture_table, parse_relation_arg};
use crate::sql::{Dialect, Fixture as SqlFixture};

/// At most this many output rows are compared.
const MAX_ROWS: usize = 10_000;

/// Runs unit test `u` on `session`.
pub(crate) fn run(session: &mut dyn Session, c: &Compiled, u: usize) -> TestResult {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let (status, failures, message) = verdict(check(session, c, u));
    TestResult {
        node: u,
        status,
        failures,
        started_at,
        seconds: clock.elapsed().as_secs_f64(),
        interrupted: message.as_deref() == Some("interrupted"),
        lost: false,
        message,
        rows: None,
        blocking: matches!(status, TestStatus::Fail | TestStatus::Error),
    }
}

/// A check's status, rows that differ, and diff or error.
fn verdict(
    outcome: Result<Option<(u64, String)>, String>,
) -> (TestStatus, Option<u64>, Option<String>) {
    match outcome {
        Ok(None) => (TestStatus::Pass, Some(0), None),
        Ok(Some((differ, diff))) => (TestStatus::Fail, Some(differ), Some(diff)),
        Err(m) => (TestStatus::Error, None, Some(m)),
    }
}

/// `Ok(None)` when the model's output matches; `Ok(Some((rows that differ, diff)))` when not.
fn check(
    session: &mut dyn Session,
    c: &Compiled,
    u: usize,
) -> Result<Option<(u64, String)>, String> {
    let n = &c.nodes()[u];
    let Some(spec) = n.unit.as_deref() else {
        return Err("not a unit test".into());
    };
    let model = c
        .graph
        .parents(u)
        .find(|&p| c.nodes()[p].kind == NodeKind::Model && c.nodes()[p].name == spec.model)
        .ok_or_else(|| format!("model `{}` not found", spec.model))?;
    let (mut ctes, sql) = given_inputs(session, c, model, spec)?;
    let d = c.project.target.dialect();
    ctes.push(("__xform_model".into(), sql));
    let (columns, expected) = expected_rows(session, d, &mut ctes, spec)?;
    let query = d.with_ctes(&ctes, &d.quote("__xform_model"));
    let actual = session.query(&query, MAX_ROWS).map_err(|e| e.to_string())?;
    compare(&columns, expected, actual).map_err(|e| format!("{e} of `{}`", spec.model))
}

/// The expected columns, and rows of values as text.
type Expected = (Vec<String>, Vec<Vec<Option<String>>>);

/// The `expect` columns and rows: as written, or (`format: sql`) queried beside the mocked
/// inputs in `ctes`.
fn expected_rows(
    session: &mut dyn Session,
    d: &dyn Dialect,
    ctes: &mut Vec<(String, String)>,
    spec: &UnitTestProps,
) -> Result<Expected, String> {
    match expected_table(spec)? {
        Table::Rows { columns, rows } => Ok((
            columns,
            rows.iter()
                .map(|r| r.iter().map(json_text).collect())
                .collect(),
        )),
        Table::Sql(q) => {
            ctes.push(("__xform_expected".into(), q));
            let rows = session
                .query(&d.with_ctes(ctes, &d.quote("__xform_expected")), MAX_ROWS)
                .map_err(|e| format!("expected rows (sql): {e}"))?;
            ctes.pop();
            Ok((rows.columns, rows.rows))
        }
    }
}

/// A CTE of fixture rows for each `given` input, and the model's SQL reading them in place
/// of the inputs' relations.
fn given_inputs(
    session: &mut dyn Session,
    c: &Compiled,
    model: usize,
    spec: &UnitTestProps,
) -> Result<(Vec<(String, String)>, String), String> {
    let d = c.project.target.dialect();
    let mut sql = c.sql[model].clone().unwrap_or_default();
    let mut ctes = Vec::new();
    for (k, given) in spec.given.iter().enumerate() {
        let input = input_node(c, model, given)
            .ok_or_else(|| format!("`{}` is not an input of `{}`", given.input, spec.model))?;
        let name = format!("__xform_given_{k}");
        let types = match &c.relations[input] {
            Some(r) => session.columns(r).map_err(|e| e.to_string())?,
            None => None,
        };
        let table = fixture_table(given).map_err(|e| format!("{}: {e}", given.input))?;
        ctes.push((name.clone(), fixture_sql(d, &table, types.as_deref())));
        if let Some(published) = c.relation_sql(input) {
            sql = sql.replace(&published, &d.quote(&name));
        }
    }
    Ok((ctes, sql))
}

/// The `expect` rows (none when not given).
fn expected_table(spec: &UnitTestProps) -> Result<Table, String> {
    Ok(spec
        .expect
        .as_ref()
        .map(fixture_table)
        .transpose()?
        .unwrap_or(Table::Rows {
            columns: Vec::new(),
            rows: Vec::new(),
        }))
}

/// The node a `given` input names, among the model's parents.
fn input_node(c: &Compiled, model: usize, given: &Fixture) -> Option<usize> {
    let dep = parse_relation_arg(&given.input, &given.at)?;
    c.reads(model)
        .into_iter()
        .find(|&p| dep.names(&c.nodes()[p]))
}

/// A fixture as a query, its values cast to the input's column types when known (columns the
/// fixture leaves out are NULL of their type).
fn fixture_sql(d: &dyn Dialect, table: &Table, types: Option<&[(String, String)]>) -> String {
    let (columns, rows) = match table {
        Table::Sql(q) => return q.clone(),
        Table::Rows { columns, rows } => (columns, rows),
    };
    let typed: HashMap<&str, &str> = types
        .unwrap_or_default()
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    let mut out_cols: Vec<(&str, Option<&str>)> = columns
        .iter()
        .map(|c| (c.as_str(), typed.get(c.as_str()).copied()))
        .collect();
    for (c, t) in types.unwrap_or_default() {
        if !columns.contains(c) {
            out_cols.push((c, Some(t)));
        }
    }
    d.fixture(&SqlFixture {
        columns: out_cols,
        rows,
    })
}

fn json_text(v: &Json) -> Option<String> {
    match v {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Values compare as numbers when both read as numbers (`12.50` = `12.5`), booleans as
/// `true`/`false` however the warehouse writes them, a midnight
/// timestamp as its date (`2024-03-01 00:00:00` = `2024-03-01`), a timestamp with a time zone
/// as it reads in the session's (`2024-03-01 00:00:00+09` = `2024-03-01`: dbt casts the
/// expected value to the column's type in the session), else as text.
fn normalize(v: &Option<String>) -> String {
    let Some(s) = v else {
        return "NULL".into();
    };
    let t = s.trim();
    if let Ok(x) = t.parse::<f64>() {
        return format!("{x}");
    }
    // PostgreSQL writes a boolean as `t`/`f` in text.
    match t {
        "True" | "TRUE" | "t" => return "true".into(),
        "False" | "FALSE" | "f" => return "false".into(),
        _ => {}
    }
    let t = t.replacen('T', " ", usize::from(looks_like_date(t)));
    let t = without_offset(&t);
    match t.strip_suffix(" 00:00:00") {
        Some(date) if looks_like_date(date) => date.to_string(),
        _ => t,
    }
}

/// A timestamp without its time zone offset (`…12:00:00+09`, `+05:30`, `Z`); anything else
/// as it is.
fn without_offset(t: &str) -> String {
    let timestamp = looks_like_date(t) && t.len() >= 19 && t.as_bytes()[13] == b':';
    let Some(time) = t.get(11..).filter(|_| timestamp) else {
        return t.to_string();
    };
    let cut = time
        .rfind(['+', '-'])
        .or_else(|| time.strip_suffix('Z').map(str::len));
    let offset = cut.map(|i| &time[i..]);
    let is_offset = offset.is_some_and(|o| {
        let digits = o.trim_start_matches(['+', '-']).replace(':', "");
        o == "Z" || (matches!(digits.len(), 2 | 4) && digits.bytes().all(|b| b.is_ascii_digit()))
    });
    match (cut, is_offset) {
        (Some(i), true) => t[..11 + i].to_string(),
        _ => t.to_string(),
    }
}

/// `2024-03-01…`
fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[5..7].iter().chain(&b[8..10]).all(u8::is_ascii_digit)
}

/// Expected and actual rows, on the expected columns in the model's order, as multisets; on a
/// difference, a diff of the sorted rows. Err when an expected column is not in the output.
fn compare(
    columns: &[String],
    expected: Vec<Vec<Option<String>>>,
    actual: Rows,
) -> Result<Option<(u64, String)>, String> {
    if let Some(missing) = columns.iter().find(|c| !actual.columns.contains(c)) {
        return Err(format!(
            "expected column `{missing}` is not in the output ({})",
            actual.columns.join(", ")
        ));
    }
    let pairs = compared_columns(columns, &actual);
    let mut want: Vec<String> = expected
        .iter()
        .map(|r| row_line(pairs.iter().filter_map(|(_, e)| r.get((*e)?)).collect()))
        .collect();
    let mut got: Vec<String> = actual
        .rows
        .iter()
        .map(|r| row_line(pairs.iter().map(|(a, _)| &r[*a]).collect()))
        .collect();
    want.sort();
    got.sort();
    if want == got {
        return Ok(None);
    }
    let header: Vec<&str> = pairs
        .iter()
        .map(|(a, _)| actual.columns[*a].as_str())
        .collect();
    Ok(Some(diff(&header, &want, &got)))
}

/// (index in actual, index in expected) of each compared column, in the model's order: the
/// expected columns, or every column when `expect` names none.
fn compared_columns(columns: &[String], actual: &Rows) -> Vec<(usize, Option<usize>)> {
    actual
        .columns
        .iter()
        .enumerate()
        .filter_map(|(a, name)| match columns.iter().position(|c| c == name) {
            Some(e) => Some((a, Some(e))),
            None if columns.is_empty() => Some((a, None)),
            None => None,
        })
        .collect()
}

/// A row as a table line of normalized values: `| 1 | 12.5 |`.
fn row_line(cells: Vec<&Option<String>>) -> String {
    let cells: Vec<String> = cells.into_iter().map(normalize).collect();
    format!("| {} |", cells.join(" | "))
}

/// The lines that differ between the sorted expected and actual rows, and how many.
fn diff(header: &[&str], want: &[String], got: &[String]) -> (u64, String) {
    let text_want = want.join("\n") + "\n";
    let text_got = got.join("\n") + "\n";
    let diff = similar::TextDiff::from_lines(&text_want, &text_got);
    let mut out = format!(
        "actual differs from expected (- expected, + actual):\n  | {} |\n",
        header.join(" | ")
    );
    let mut differ = 0;
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => " ",
        };
        if sign != " " {
            differ += 1;
        }
        out.push_str(&format!("{sign} {}", change.value()));
    }
    (differ, out.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_and_rows_as_multisets() {
        let rows = |v: &[&[&str]]| -> Vec<Vec<Option<String>>> {
            v.iter()
                .map(|r| r.iter().map(|s| Some(s.to_string())).collect())
                .collect()
        };
        let actual = Rows {
            columns: vec!["id".into(), "amount".into()],
            rows: rows(&[&["2", "12.50"], &["1", "3"]]),
            types: Vec::new(),
        };
        // Expected columns in another order than the model's.
        let cols = vec!["amount".to_string(), "id".to_string()];
        let same = compare(&cols, rows(&[&["3.0", "1"], &["12.5", "2"]]), actual);
        assert_eq!(same, Ok(None));
        let actual = Rows {
            columns: vec!["id".into(), "amount".into(), "extra".into()],
            rows: rows(&[&["1", "4", "x"]]),
            types: Vec::new(),
        };
        let (differ, diff) = compare(&cols, rows(&[&["3", "1"]]), actual)
            .unwrap()
            .unwrap();
        assert_eq!(differ, 2);
        assert!(
            diff.contains("- | 1 | 3 |") && diff.contains("+ | 1 | 4 |"),
            "{diff}"
        );
    }

    #[test]
    fn timestamps_compare_in_the_session_time_zone() {
        let n = |s: &str| normalize(&Some(s.to_string()));
        assert_eq!(n("2024-03-01 00:00:00+00"), "2024-03-01");
        assert_eq!(n("2024-03-01 00:00:00+09"), "2024-03-01");
        assert_eq!(n("2024-03-01T12:30:00+05:30"), "2024-03-01 12:30:00");
        assert_eq!(n("2024-03-01 12:30:00.5Z"), "2024-03-01 12:30:00.5");
        assert_eq!(n("2024-03-01"), "2024-03-01");
        assert_eq!(n("2024-03-01 x-12"), "2024-03-01 x-12");
    }
}
