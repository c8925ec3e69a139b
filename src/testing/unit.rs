//! Unit tests (dbt 1.8's shape): a model's SQL run on mocked inputs, compared with the
//! expected rows. Each `given` input becomes a CTE named in place of the input's relation, so
//! nothing real is read or written (seeds that are not given are read as they are). Fixture
//! values take the column types of the real input when it exists in the warehouse.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use serde_json::Value as Json;

use super::{TestResult, TestStatus};
use crate::adapter::{AdapterKind, Rows, Session};
use crate::compile::Compiled;
use crate::project::{Fixture, NodeKind, parse_relation_arg};

/// At most this many output rows are compared.
const MAX_ROWS: usize = 10_000;

/// A fixture as rows of named values (`None` is NULL), or a SQL query.
#[derive(Debug)]
pub enum Table {
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Json>>,
    },
    Sql(String),
}

/// The rows of a `dict` or `csv` fixture; the error says what is wrong (with a 1-based line
/// inside the CSV text).
pub fn fixture_table(f: &Fixture) -> Result<Table, String> {
    match f.format.as_str() {
        "sql" => Ok(Table::Sql(f.rows.as_str().unwrap_or_default().to_string())),
        "csv" => csv_table(f.rows.as_str().unwrap_or_default()),
        _ => {
            let items = f.rows.as_array().cloned().unwrap_or_default();
            let mut columns: Vec<String> = Vec::new();
            for item in &items {
                for k in item.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !columns.contains(k) {
                        columns.push(k.clone());
                    }
                }
            }
            let rows = items
                .iter()
                .map(|item| {
                    columns
                        .iter()
                        .map(|c| item.get(c).cloned().unwrap_or(Json::Null))
                        .collect()
                })
                .collect();
            Ok(Table::Rows { columns, rows })
        }
    }
}

/// A CSV fixture: a header line, then rows; fields may be quoted (`"a, b"`, `""` for a quote);
/// an empty field or `null` is NULL. (Not the csv crate: it changes the feature set of serde,
/// and with it the hash of the bundled DuckDB build — another 20-minute compile.)
fn csv_table(text: &str) -> Result<Table, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err("csv rows: no header line".into());
    };
    let columns = csv_fields(header).map_err(|e| format!("csv rows, line 1: {e}"))?;
    let mut rows = Vec::new();
    for (i, line) in lines {
        let fields = csv_fields(line).map_err(|e| format!("csv rows, line {}: {e}", i + 1))?;
        if fields.len() != columns.len() {
            return Err(format!(
                "csv rows, line {}: {} fields, but the header has {}",
                i + 1,
                fields.len(),
                columns.len()
            ));
        }
        rows.push(
            fields
                .into_iter()
                .map(|v| match v.as_str() {
                    "" | "null" | "NULL" => Json::Null,
                    _ => Json::String(v),
                })
                .collect(),
        );
    }
    Ok(Table::Rows { columns, rows })
}

fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.trim().chars().peekable();
    loop {
        let mut field = String::new();
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed".into()),
                }
            }
            while chars.peek().is_some_and(|c| *c != ',') {
                if chars.next() != Some(' ') {
                    return Err("text after a closing quote".into());
                }
            }
        } else {
            while let Some(c) = chars.peek().filter(|c| **c != ',') {
                field.push(*c);
                chars.next();
            }
            field = field.trim().to_string();
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

/// Runs unit test `u` on `session`.
pub fn run(session: &mut dyn Session, c: &Compiled, u: usize) -> TestResult {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let outcome = check(session, c, u);
    let (status, failures, message) = match outcome {
        Ok(None) => (TestStatus::Pass, Some(0), None),
        Ok(Some((differ, diff))) => (TestStatus::Fail, Some(differ), Some(diff)),
        Err(m) => (TestStatus::Error, None, Some(m)),
    };
    TestResult {
        node: u,
        status,
        failures,
        started_at,
        seconds: clock.elapsed().as_secs_f64(),
        interrupted: message.as_deref() == Some("interrupted"),
        message,
        rows: None,
        blocking: matches!(status, TestStatus::Fail | TestStatus::Error),
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
    let kind = c.project.target.kind;
    let model = c
        .graph
        .parents(u)
        .find(|&p| c.nodes()[p].kind == NodeKind::Model && c.nodes()[p].name == spec.model)
        .ok_or_else(|| format!("model `{}` not found", spec.model))?;
    let mut sql = c.sql[model].clone().unwrap_or_default();
    let mut ctes = Vec::new();
    for (k, given) in spec.given.iter().enumerate() {
        let input = input_node(c, model, given)
            .ok_or_else(|| format!("`{}` is not an input of `{}`", given.input, spec.model))?;
        let cte = kind.quote(&format!("__xform_given_{k}"));
        let types = match &c.relations[input] {
            Some(r) => session.columns(r).map_err(|e| e.to_string())?,
            None => None,
        };
        let table = fixture_table(given).map_err(|e| format!("{}: {e}", given.input))?;
        ctes.push(format!(
            "{cte} AS (\n{}\n)",
            fixture_sql(kind, &table, types.as_deref())
        ));
        if let Some(published) = c.relation_sql(input) {
            sql = sql.replace(&published, &cte);
        }
    }
    let expect = spec
        .expect
        .as_ref()
        .map(fixture_table)
        .transpose()?
        .unwrap_or(Table::Rows {
            columns: Vec::new(),
            rows: Vec::new(),
        });
    let model_cte = kind.quote("__xform_model");
    let body = sql.trim_end().trim_end_matches(';');
    ctes.push(format!("{model_cte} AS (\n{body}\n)"));
    let (columns, expected) = match &expect {
        Table::Rows { columns, rows } => (
            columns.clone(),
            rows.iter()
                .map(|r| r.iter().map(json_text).collect())
                .collect(),
        ),
        Table::Sql(q) => {
            let rows = session
                .query(
                    &format!("WITH {}\nSELECT * FROM ({q}) AS expected", ctes.join(",\n")),
                    MAX_ROWS,
                )
                .map_err(|e| format!("expected rows (sql): {e}"))?;
            (rows.columns, rows.rows)
        }
    };
    let query = format!("WITH {}\nSELECT * FROM {model_cte}", ctes.join(",\n"));
    let actual = session.query(&query, MAX_ROWS).map_err(|e| e.to_string())?;
    compare(&columns, expected, actual).map_err(|e| format!("{e} of `{}`", spec.model))
}
/// The node a `given` input names, among the model's parents.
fn input_node(c: &Compiled, model: usize, given: &Fixture) -> Option<usize> {
    let dep = parse_relation_arg(&given.input, &given.at)?;
    c.reads(model)
        .into_iter()
        .find(|&p| dep.names(&c.nodes()[p]))
}

/// A fixture as a query: one `SELECT` of literals per row, cast to the input's column types
/// when known (columns the fixture leaves out are NULL of their type).
fn fixture_sql(kind: AdapterKind, table: &Table, types: Option<&[(String, String)]>) -> String {
    let (columns, rows) = match table {
        Table::Sql(q) => return q.trim_end().trim_end_matches(';').to_string(),
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
    let value = |v: &Json, ty: Option<&str>| {
        let lit = literal(v);
        match ty {
            Some(t) => format!("CAST({lit} AS {t})"),
            None => lit,
        }
    };
    let select = |row: Option<&Vec<Json>>| {
        let items: Vec<String> = out_cols
            .iter()
            .enumerate()
            .map(|(i, (name, ty))| {
                let v = row.and_then(|r| r.get(i)).unwrap_or(&Json::Null);
                format!("{} AS {}", value(v, *ty), kind.quote(name))
            })
            .collect();
        format!("SELECT {}", items.join(", "))
    };
    if rows.is_empty() {
        return format!("{} WHERE false", select(None));
    }
    rows.iter()
        .map(|r| select(Some(r)))
        .collect::<Vec<_>>()
        .join("\nUNION ALL ")
}

fn literal(v: &Json) -> String {
    match v {
        Json::Null => "NULL".into(),
        Json::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => format!("'{}'", other.to_string().replace('\'', "''")),
    }
}

fn json_text(v: &Json) -> Option<String> {
    match v {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Values compare as numbers when both read as numbers (`12.50` = `12.5`), a midnight
/// timestamp as its date (`2024-03-01 00:00:00` = `2024-03-01`), else as text.
fn normalize(v: &Option<String>) -> String {
    let Some(s) = v else {
        return "NULL".into();
    };
    let t = s.trim();
    if let Ok(x) = t.parse::<f64>() {
        return format!("{x}");
    }
    match t {
        "True" | "TRUE" => return "true".into(),
        "False" | "FALSE" => return "false".into(),
        _ => {}
    }
    let t = t.replacen('T', " ", usize::from(looks_like_date(t)));
    match t.strip_suffix(" 00:00:00") {
        Some(date) if looks_like_date(date) => date.to_string(),
        _ => t,
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
    // (index in actual, index in expected) of each compared column, in the model's order.
    let pairs: Vec<(usize, Option<usize>)> = actual
        .columns
        .iter()
        .enumerate()
        .filter_map(|(a, name)| match columns.iter().position(|c| c == name) {
            Some(e) => Some((a, Some(e))),
            None if columns.is_empty() => Some((a, None)),
            None => None,
        })
        .collect();
    let line = |cells: Vec<&Option<String>>| {
        let cells: Vec<String> = cells.into_iter().map(normalize).collect();
        format!("| {} |", cells.join(" | "))
    };
    let mut want: Vec<String> = expected
        .iter()
        .map(|r| line(pairs.iter().filter_map(|(_, e)| r.get((*e)?)).collect()))
        .collect();
    let mut got: Vec<String> = actual
        .rows
        .iter()
        .map(|r| line(pairs.iter().map(|(a, _)| &r[*a]).collect()))
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
    Ok(Some((differ, out.trim_end().to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fixtures_read_quotes_and_nulls() {
        let Ok(Table::Rows { columns, rows }) = csv_table("id, name\n1, \"kim, \"\"jr\"\"\"\n2,\n")
        else {
            panic!("csv should parse");
        };
        assert_eq!(columns, ["id", "name"]);
        assert_eq!(rows[0], [Json::from("1"), Json::from("kim, \"jr\"")]);
        assert_eq!(rows[1], [Json::from("2"), Json::Null]);
        assert!(
            csv_table("a,b\n1\n")
                .unwrap_err()
                .contains("line 2: 1 fields")
        );
        assert!(csv_table("a\n\"open\n").unwrap_err().contains("not closed"));
    }

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
        };
        // Expected columns in another order than the model's.
        let cols = vec!["amount".to_string(), "id".to_string()];
        let same = compare(&cols, rows(&[&["3.0", "1"], &["12.5", "2"]]), actual);
        assert_eq!(same, Ok(None));
        let actual = Rows {
            columns: vec!["id".into(), "amount".into(), "extra".into()],
            rows: rows(&[&["1", "4", "x"]]),
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
}
