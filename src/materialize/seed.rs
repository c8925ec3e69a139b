//! A seed's settings (`column_types`, `delimiter`, `quote`, `header`, `encoding`), checked
//! before anything runs, and the CSV handed to the warehouse: Korean spreadsheets are exported
//! as CP949, so a file in another encoding is decoded with encoding_rs and its UTF-8 text handed
//! over with it (how it reaches the warehouse is the adapter's business).

use std::path::Path;

use encoding_rs::Encoding;
use serde_json::Value as Json;

use crate::adapter::CsvSource;
use crate::diagnostics::Diagnostic;
use crate::project;
use crate::project::Node;

#[derive(Clone, Debug)]
pub(crate) struct SeedSpec {
    /// The CSV file, relative to the project root.
    pub(crate) path: String,
    pub(crate) encoding: &'static Encoding,
    pub(crate) delimiter: String,
    pub(crate) quote: String,
    pub(crate) header: bool,
    pub(crate) quote_columns: bool,
    pub(crate) column_types: Vec<(String, String)>,
    /// A dbt project's seed: typed as dbt types it (whole numbers as `integer`).
    pub(crate) dbt_types: bool,
}

/// Reads and checks a seed's settings (`dbt`: a dbt project's seed); every mistake is a
/// diagnostic at the setting.
pub(crate) fn spec(n: &Node, dbt: bool) -> Result<SeedSpec, Vec<Diagnostic>> {
    let mut ck = Settings {
        node: n,
        errors: Vec::new(),
    };
    let label = encoding_label(&mut ck);
    let delimiter = delimiter(&mut ck);
    let quote = quote(&mut ck);
    let header = header(&mut ck);
    let quote_columns = quote_columns(&mut ck);
    let column_types = column_types(&mut ck);
    if !ck.errors.is_empty() {
        return Err(ck.errors);
    }
    Ok(SeedSpec {
        path: n.path.to_string(),
        encoding: project::encoding(&label).unwrap_or(encoding_rs::UTF_8),
        delimiter,
        quote,
        header,
        quote_columns,
        column_types,
        dbt_types: dbt,
    })
}

/// A seed's settings being read, with the mistakes found so far.
struct Settings<'a> {
    node: &'a Node,
    errors: Vec<Diagnostic>,
}

impl Settings<'_> {
    /// A true-or-false setting, true when unset.
    fn flag(&mut self, key: &str, help: &str) -> bool {
        match self.node.config.get(key) {
            None | Some(Json::Null) => true,
            Some(Json::Bool(b)) => *b,
            Some(other) => {
                let other = other.clone();
                self.bad(key, &other, "must be true or false", help);
                true
            }
        }
    }
}

impl Settings<'_> {
    fn bad(&mut self, key: &str, other: &Json, problem: &str, help: &str) {
        let n = self.node;
        let d = Diagnostic::error(format!("seed `{}`: `{key}: {other}` {problem}", n.name))
            .at_opt(n.config.at(key).cloned().or_else(|| n.at.clone()))
            .help(help.to_string());
        self.errors.push(d);
    }

    /// A string setting: `default` when unset, the value when `valid` accepts it.
    fn text(
        &mut self,
        key: &str,
        default: &str,
        valid: fn(&str) -> bool,
        problem: &str,
        help: &str,
    ) -> String {
        match self.node.config.get(key) {
            None | Some(Json::Null) => default.to_string(),
            Some(Json::String(s)) if valid(s) => s.clone(),
            Some(other) => {
                self.bad(key, other, problem, help);
                default.to_string()
            }
        }
    }
}

/// `encoding`, a label [`encoding`] knows; utf-8 when unset.
fn encoding_label(ck: &mut Settings<'_>) -> String {
    ck.text(
        "encoding",
        "utf-8",
        |l| project::encoding(l).is_some(),
        "is not an encoding xform knows",
        ENCODING_HELP,
    )
}

/// `delimiter`, up to four bytes; a comma when unset.
fn delimiter(ck: &mut Settings<'_>) -> String {
    ck.text(
        "delimiter",
        ",",
        |d| !d.is_empty() && d.len() <= 4 && d != "\n",
        "cannot separate columns",
        "use one character, e.g. `delimiter: \";\"` or `delimiter: \"\\t\"`",
    )
}

/// `quote`, one character or none; a double quote when unset.
fn quote(ck: &mut Settings<'_>) -> String {
    ck.text(
        "quote",
        "\"",
        |q| q.chars().count() <= 1,
        "must be one character (or empty)",
        "e.g. `quote: \"'\"`",
    )
}

/// `header`, true when unset.
fn header(ck: &mut Settings<'_>) -> bool {
    ck.flag("header", "`header: false` when the first line is data")
}

/// `quote_columns`: whether the columns keep the header's names exactly (the default) or are
/// named as the warehouse names an unquoted identifier (PostgreSQL: in lower case).
fn quote_columns(ck: &mut Settings<'_>) -> bool {
    ck.flag(
        "quote_columns",
        "`quote_columns: false` names the columns in lower case on PostgreSQL",
    )
}

/// `column_types`: column names mapped to type names.
fn column_types(ck: &mut Settings<'_>) -> Vec<(String, String)> {
    match ck.node.config.get("column_types") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Object(m)) if m.values().all(Json::is_string) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        Some(other) => {
            ck.bad(
                "column_types",
                other,
                "must map column names to type names",
                column_types_help(other),
            );
            Vec::new()
        }
    }
}

/// What to write instead of a bad `column_types`; a null value hints at a type with an
/// unquoted comma.
fn column_types_help(other: &Json) -> &'static str {
    if other
        .as_object()
        .is_some_and(|m| m.values().any(Json::is_null))
    {
        "a type with a comma must be quoted in YAML: `amount: \"decimal(12,2)\"`"
    } else {
        "e.g. `column_types: {amount: \"decimal(12,2)\", ordered_at: timestamp}`"
    }
}

const ENCODING_HELP: &str = "use utf-8 (the default), cp949 / euc-kr for Korean spreadsheets, utf-16, or another WHATWG label";

/// The seed's CSV for the warehouse: its file, and its text decoded to UTF-8 when it is in
/// another encoding. A file that is not valid in its encoding fails with the line of the first
/// bad byte.
pub(crate) fn source(root: &Path, s: &SeedSpec) -> Result<CsvSource, String> {
    let path = root.join(&s.path);
    let decoded = (s.encoding != encoding_rs::UTF_8)
        .then(|| project::read_encoded(&path, s.encoding))
        .transpose()
        .map_err(|(line, msg)| {
            format!(
                "{}:{line}: {msg}; is `encoding: {}` right?",
                s.path,
                s.encoding.name()
            )
        })?;
    Ok(CsvSource {
        path,
        decoded,
        delimiter: s.delimiter.clone(),
        quote: s.quote.clone(),
        header: s.header,
        quote_columns: s.quote_columns,
        column_types: s.column_types.clone(),
        dbt_types: s.dbt_types,
    })
}

/// Where a CSV load error points: `seeds/x.csv:5: column "amount": ...`.
pub(crate) fn bad_row_message(
    s: &SeedSpec,
    line: u64,
    column: Option<&str>,
    message: &str,
) -> String {
    let hint = encoding_hint(message);
    match column {
        Some(c) => format!("{}:{line}: column `{c}`: {message}{hint}", s.path),
        None => format!("{}:{line}: {message}{hint}", s.path),
    }
}

/// A word on `encoding:` when the warehouse could not read the text as Unicode.
fn encoding_hint(message: &str) -> &'static str {
    if message.to_ascii_lowercase().contains("unicode") {
        "; if the file is not UTF-8, set `encoding:` (e.g. cp949) on the seed"
    } else {
        ""
    }
}
