//! `xform compare` and `build --compare-to`: the AS-IS / TO-BE check of two relations — row
//! counts; per column nulls, distinct values, min, max, sum and avg (numbers), min and max
//! length (text); and with a key, the rows only in one side and the rows that changed. The SQL
//! comes from the adapter; this module decides what to ask and what counts as a difference.

use std::fmt::Write;

use serde::Serialize;

use crate::adapter::{DbResult, Rows, Session};
use crate::sql::{ColumnClass, Dialect, KeyDiff};

/// A query limit meaning every row (SQL limits are signed 64-bit).
const ALL_ROWS: usize = i64::MAX as usize;

/// One side of a comparison: a label for people and the FROM item for SQL.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    pub label: String,
    #[serde(skip)]
    pub sql: String,
}

#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    pub key: Vec<String>,
    /// Only these columns (default: every column both sides have).
    pub columns: Vec<String>,
    /// Differing rows shown per kind (only in A, only in B, changed).
    pub limit: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub a: Side,
    pub b: Side,
    pub rows: [u64; 2],
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
    /// (column, type in A, type in B).
    pub type_changes: Vec<(String, String, String)>,
    pub columns: Vec<ColumnReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<KeyReport>,
}

#[derive(Debug, Serialize)]
pub struct ColumnReport {
    pub name: String,
    pub class: ColumnClass,
    /// (stat, value in A, value in B, differs).
    pub stats: Vec<(String, Option<String>, Option<String>, bool)>,
}

#[derive(Debug, Serialize)]
pub struct KeyReport {
    pub key: Vec<String>,
    pub only_in_a: u64,
    pub only_in_b: u64,
    pub changed: u64,
    /// Key values occurring more than once, in A and in B (matching is then ambiguous).
    pub duplicate_keys: [u64; 2],
    pub samples: Vec<Sample>,
}

#[derive(Debug, Serialize)]
pub struct Sample {
    /// `only_a`, `only_b` or `changed`.
    pub kind: String,
    pub key: Vec<(String, Option<String>)>,
    /// Changed rows: (column, A, B) of the columns that differ.
    pub changes: Vec<(String, Option<String>, Option<String>)>,
}

impl KeyReport {
    /// "1 only in A, 0 only in B, 2 changed".
    fn counts(&self) -> String {
        format!(
            "{} only in A, {} only in B, {} changed",
            self.only_in_a, self.only_in_b, self.changed
        )
    }
}

impl Report {
    pub fn identical(&self) -> bool {
        self.rows[0] == self.rows[1]
            && self.only_in_a.is_empty()
            && self.only_in_b.is_empty()
            && self.type_changes.is_empty()
            && self.columns.iter().all(|c| c.stats.iter().all(|s| !s.3))
            && self
                .keys
                .as_ref()
                .is_none_or(|k| k.only_in_a + k.only_in_b + k.changed == 0)
    }

    /// "rows 100 → 102; amount: sum, avg; 2 changed keys", or "identical".
    pub fn headline(&self) -> String {
        if self.identical() {
            return format!("identical ({} rows)", self.rows[0]);
        }
        let mut parts = Vec::new();
        if self.rows[0] != self.rows[1] {
            parts.push(format!("rows {} → {}", self.rows[0], self.rows[1]));
        }
        if !self.only_in_a.is_empty() {
            parts.push(format!("columns only in A: {}", self.only_in_a.join(", ")));
        }
        if !self.only_in_b.is_empty() {
            parts.push(format!("columns only in B: {}", self.only_in_b.join(", ")));
        }
        for (c, a, b) in &self.type_changes {
            parts.push(format!("{c}: {a} → {b}"));
        }
        for c in &self.columns {
            let stats: Vec<&str> = c.stats.iter().filter(|s| s.3).map(|s| &*s.0).collect();
            if !stats.is_empty() {
                parts.push(format!("{}: {}", c.name, stats.join(", ")));
            }
        }
        if let Some(k) = &self.keys {
            for (n, what) in [
                (k.only_in_a, "only in A"),
                (k.only_in_b, "only in B"),
                (k.changed, "changed"),
            ] {
                if n > 0 {
                    let rows = if n == 1 { "row" } else { "rows" };
                    parts.push(format!("{n} {rows} {what}"));
                }
            }
        }
        parts.join("; ")
    }
}

/// Compares `a` with `b` on `session`.
pub fn compare(
    session: &mut dyn Session,
    kind: &dyn Dialect,
    (a, b): (Side, Side),
    opts: &CompareOptions,
) -> DbResult<Report> {
    let cols_a = describe(session, kind, &a.sql)?;
    let cols_b = describe(session, kind, &b.sql)?;
    for name in opts.key.iter().chain(&opts.columns) {
        for (side, cols) in [(&a, &cols_a), (&b, &cols_b)] {
            if !cols.iter().any(|(c, _)| c == name) {
                return Err(crate::adapter::DbError::Failed(format!(
                    "{} has no column `{name}` (it has {})",
                    side.label,
                    cols.iter()
                        .map(|(c, _)| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    let wanted = |c: &str| opts.columns.is_empty() || opts.columns.iter().any(|w| w == c);
    let only_in_a = names_missing(&cols_a, &cols_b, &wanted);
    let only_in_b = names_missing(&cols_b, &cols_a, &wanted);
    let mut type_changes = Vec::new();
    let mut common: Vec<(&str, ColumnClass)> = Vec::new();
    for (name, ta) in cols_a.iter().filter(|(n, _)| wanted(n)) {
        let Some((_, tb)) = cols_b.iter().find(|(n, _)| n == name) else {
            continue;
        };
        if ta != tb {
            type_changes.push((name.clone(), ta.clone(), tb.clone()));
        }
        // Stats are compared as text, so both sides must be measured alike.
        let (ca, cb) = (kind.column_class(ta), kind.column_class(tb));
        common.push((name, if ca == cb { ca } else { ColumnClass::Other }));
    }
    let pa = one_row(session.query(&kind.profile(&a.sql, &common), 1)?);
    let pb = one_row(session.query(&kind.profile(&b.sql, &common), 1)?);
    let count = |row: &[Option<String>]| {
        row.first()
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut at = 1;
    let mut columns = Vec::new();
    for (name, class) in &common {
        let stats = class
            .stats()
            .iter()
            .map(|stat| {
                let (va, vb) = (pa.get(at).cloned().flatten(), pb.get(at).cloned().flatten());
                at += 1;
                let differs = !same_value(stat, va.as_deref(), vb.as_deref());
                (stat.to_string(), va, vb, differs)
            })
            .collect();
        columns.push(ColumnReport {
            name: name.to_string(),
            class: *class,
            stats,
        });
    }
    let keys = if opts.key.is_empty() {
        None
    } else {
        let key: Vec<&str> = opts.key.iter().map(String::as_str).collect();
        let compared: Vec<&str> = common
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| !key.contains(n))
            .collect();
        Some(key_report(
            session,
            kind,
            (&a.sql, &b.sql),
            (&key, &compared),
            opts.limit,
        )?)
    };
    Ok(Report {
        rows: [count(&pa), count(&pb)],
        a,
        b,
        only_in_a,
        only_in_b,
        type_changes,
        columns,
        keys,
    })
}

fn describe(
    session: &mut dyn Session,
    kind: &dyn Dialect,
    rel: &str,
) -> DbResult<Vec<(String, String)>> {
    let rows = session.query(&kind.describe(rel), ALL_ROWS)?;
    Ok(rows
        .rows
        .into_iter()
        .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?)))
        .collect())
}

fn names_missing(
    from: &[(String, String)],
    other: &[(String, String)],
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    from.iter()
        .filter(|(n, _)| wanted(n) && !other.iter().any(|(o, _)| o == n))
        .map(|(n, _)| n.clone())
        .collect()
}

fn one_row(rows: Rows) -> Vec<Option<String>> {
    rows.rows.into_iter().next().unwrap_or_default()
}

/// Equal as text; sums and averages also when they agree to 1e-9 relative (floating-point
/// sums depend on the order rows are added in).
fn same_value(stat: &str, a: Option<&str>, b: Option<&str>) -> bool {
    if a == b {
        return true;
    }
    let (Some(x), Some(y)) = (
        a.and_then(|v| v.parse::<f64>().ok()),
        b.and_then(|v| v.parse::<f64>().ok()),
    ) else {
        return false;
    };
    matches!(stat, "sum" | "avg") && (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
}

fn key_report(
    session: &mut dyn Session,
    kind: &dyn Dialect,
    (a, b): (&str, &str),
    (key, columns): (&[&str], &[&str]),
    limit: usize,
) -> DbResult<KeyReport> {
    let mut duplicate_keys = [0; 2];
    for (slot, rel) in duplicate_keys.iter_mut().zip([a, b]) {
        let row = one_row(session.query(&kind.duplicate_keys(rel, key), 1)?);
        *slot = row
            .first()
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
    }
    let counts = session.query(
        &kind.key_diff((a, b), key, columns, KeyDiff::Counts),
        ALL_ROWS,
    )?;
    let n = |what: &str| -> u64 {
        counts
            .rows
            .iter()
            .find(|r| r.first().cloned().flatten().as_deref() == Some(what))
            .and_then(|r| r.get(1).cloned().flatten())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (only_in_a, only_in_b, changed) = (n("only_a"), n("only_b"), n("changed"));
    let mut samples = Vec::new();
    if only_in_a + only_in_b + changed > 0 && limit > 0 {
        let rows = session.query(
            &kind.key_diff((a, b), key, columns, KeyDiff::Rows { limit }),
            ALL_ROWS,
        )?;
        for r in rows.rows {
            let kind_of = r.first().cloned().flatten().unwrap_or_default();
            let key_values = key
                .iter()
                .enumerate()
                .map(|(j, k)| (k.to_string(), r.get(1 + j).cloned().flatten()))
                .collect();
            let changes = if kind_of == "changed" {
                columns
                    .iter()
                    .enumerate()
                    .filter_map(|(j, c)| {
                        let at = 1 + key.len() + 2 * j;
                        let (va, vb) = (
                            r.get(at).cloned().flatten(),
                            r.get(at + 1).cloned().flatten(),
                        );
                        (va != vb).then(|| (c.to_string(), va, vb))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            samples.push(Sample {
                kind: kind_of,
                key: key_values,
                changes,
            });
        }
    }
    Ok(KeyReport {
        key: key.iter().map(|k| k.to_string()).collect(),
        only_in_a,
        only_in_b,
        changed,
        duplicate_keys,
        samples,
    })
}

fn shown(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "NULL".into())
}

fn sample_line(s: &Sample) -> String {
    let key: Vec<String> = s
        .key
        .iter()
        .map(|(k, v)| format!("{k}={}", shown(v)))
        .collect();
    let changes: Vec<String> = s
        .changes
        .iter()
        .map(|(c, a, b)| format!("{c}: {} → {}", shown(a), shown(b)))
        .collect();
    let what = match s.kind.as_str() {
        "only_a" => "only in A",
        "only_b" => "only in B",
        _ => "changed",
    };
    if changes.is_empty() {
        format!("{what}: {}", key.join(", "))
    } else {
        format!("{what}: {}: {}", key.join(", "), changes.join("; "))
    }
}

/// The report for a terminal.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A: {}\nB: {}", r.a.label, r.b.label);
    let _ = writeln!(out, "rows: {} vs {}", r.rows[0], r.rows[1]);
    for (c, a, b) in &r.type_changes {
        let _ = writeln!(out, "type of {c}: {a} vs {b}");
    }
    if !r.only_in_a.is_empty() {
        let _ = writeln!(out, "columns only in A: {}", r.only_in_a.join(", "));
    }
    if !r.only_in_b.is_empty() {
        let _ = writeln!(out, "columns only in B: {}", r.only_in_b.join(", "));
    }
    let table: Vec<[String; 5]> = r
        .columns
        .iter()
        .flat_map(|c| {
            c.stats.iter().map(|(stat, a, b, differs)| {
                [
                    c.name.clone(),
                    stat.clone(),
                    shown(a),
                    shown(b),
                    if *differs {
                        "≠".into()
                    } else {
                        String::new()
                    },
                ]
            })
        })
        .collect();
    let header = ["column", "stat", "A", "B", ""].map(String::from);
    let width = |k: usize| {
        table
            .iter()
            .chain([&header])
            .map(|r| unicode_width::UnicodeWidthStr::width(r[k].as_str()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..4).map(width).collect();
    for row in [&header].into_iter().chain(&table) {
        let mut line = String::new();
        for (k, cell) in row.iter().enumerate().take(4) {
            line.push_str(cell);
            let pad = widths[k] - unicode_width::UnicodeWidthStr::width(cell.as_str());
            line.push_str(&" ".repeat(pad + 2));
        }
        line.push_str(&row[4]);
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if let Some(k) = &r.keys {
        let _ = writeln!(out, "key ({}): {}", k.key.join(", "), k.counts());
        for (side, n) in ["A", "B"].iter().zip(k.duplicate_keys) {
            if n > 0 {
                let _ = writeln!(
                    out,
                    "warning: {n} key values repeat in {side}; rows are matched on each pair"
                );
            }
        }
        for s in &k.samples {
            let _ = writeln!(out, "  {}", sample_line(s));
        }
    }
    let _ = writeln!(
        out,
        "{}",
        if r.identical() {
            "identical".to_string()
        } else {
            format!("different: {}", r.headline())
        }
    );
    out
}

/// The report as a Markdown section (for a pull-request comment).
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let verdict = if r.identical() {
        "identical"
    } else {
        "different"
    };
    let _ = writeln!(out, "#### `{}` vs `{}`: {verdict}\n", r.a.label, r.b.label);
    let _ = writeln!(
        out,
        "| | A | B |\n|---|---|---|\n| rows | {} | {} |",
        r.rows[0], r.rows[1]
    );
    for (c, a, b) in &r.type_changes {
        let _ = writeln!(out, "| type of `{c}` | {a} | {b} |");
    }
    for c in &r.only_in_a {
        let _ = writeln!(out, "| column `{c}` | yes | — |");
    }
    for c in &r.only_in_b {
        let _ = writeln!(out, "| column `{c}` | — | yes |");
    }
    out.push_str("\n| column | stat | A | B | |\n|---|---|---|---|---|\n");
    for c in &r.columns {
        for (stat, a, b, differs) in &c.stats {
            let _ = writeln!(
                out,
                "| `{}` | {stat} | {} | {} | {} |",
                c.name,
                shown(a).replace('|', "\\|"),
                shown(b).replace('|', "\\|"),
                if *differs { "≠" } else { "" }
            );
        }
    }
    if let Some(k) = &r.keys {
        let _ = writeln!(out, "\nkey `{}`: {}\n", k.key.join(", "), k.counts());
        for s in &k.samples {
            let _ = writeln!(out, "- {}", sample_line(s).replace('|', "\\|"));
        }
    }
    out
}
