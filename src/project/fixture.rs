//! A unit test fixture's rows, read from its `dict`, `csv` or `sql` form.

use serde_json::Value as Json;

use super::Fixture;

/// A fixture as rows of named values (`None` is NULL), or a SQL query.
#[derive(Debug)]
pub(crate) enum Table {
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Json>>,
    },
    Sql(String),
}

/// The rows of a `dict` or `csv` fixture; the error says what is wrong (with a 1-based line
/// inside the CSV text).
pub(crate) fn fixture_table(f: &Fixture) -> Result<Table, String> {
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
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let field = match chars.peek() {
            Some('"') => quoted_field(&mut chars)?,
            _ => bare_field(&mut chars),
        };
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// A field in quotes (`""` is a quote), up to the comma after it.
fn quoted_field(chars: &mut Chars) -> Result<String, String> {
    chars.next();
    let mut field = String::new();
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
    Ok(field)
}

/// A field without quotes, up to the next comma, trimmed.
fn bare_field(chars: &mut Chars) -> String {
    let mut field = String::new();
    while let Some(c) = chars.peek().filter(|c| **c != ',') {
        field.push(*c);
        chars.next();
    }
    field.trim().to_string()
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
}
