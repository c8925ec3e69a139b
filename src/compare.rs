//! `xform compare` and `build --compare-to`: the AS-IS / TO-BE check of two relations — row
//! counts; per column nulls, distinct values, min, max, sum and avg (numbers), min and max
//! length (text); and with a key, the rows only in one side and the rows that changed. The SQL
//! comes from the adapter; this module decides what to ask and what counts as a difference.

use std::fmt::Write;

use serde::Serialize;

use crate::adapter::{DbResult, Rows, Session};
use crate::sql::{ColumnClass, Dialect, KeyDiff, Kind};

/// A relation's columns: (name, type).
type Columns = [(String, String)];
/// A column whose type differs: (column, type in A, type in B).
type TypeChange = (String, String, String);

/// A query limit meaning every row (SQL limits are signed 64-bit).
const ALL_ROWS: usize = i64::MAX as usize;

/// One side of a comparison: a label for people and the FROM item for SQL.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Side {
    pub(crate) label: String,
    #[serde(skip)]
    pub(crate) sql: String,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct CompareOptions {
    pub(crate) key: Vec<String>,
    /// Only these columns (default: every column both sides have).
    pub(crate) columns: Vec<String>,
    /// Differing rows shown per kind (only in A, only in B, changed).
    pub(crate) limit: usize,
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) a: Side,
    pub(crate) b: Side,
    pub(crate) rows: [u64; 2],
    pub(crate) only_in_a: Vec<String>,
    pub(crate) only_in_b: Vec<String>,
    /// (column, type in A, type in B).
    pub(crate) type_changes: Vec<(String, String, String)>,
    pub(crate) columns: Vec<ColumnReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) keys: Option<KeyReport>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ColumnReport {
    pub(crate) name: String,
    pub(crate) class: ColumnClass,
    /// (stat, value in A, value in B, differs).
    pub(crate) stats: Vec<(String, Option<String>, Option<String>, bool)>,
}

#[derive(Debug, Serialize)]
pub(crate) struct KeyReport {
    pub(crate) key: Vec<String>,
    pub(crate) only_in_a: u64,
    pub(crate) only_in_b: u64,
    pub(crate) changed: u64,
    /// Key values occurring more than once, in A and in B (matching is then ambiguous).
    pub(crate) duplicate_keys: [u64; 2],
    pub(crate) samples: Vec<Sample>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Sample {
    /// `only_a`, `only_b` or `changed`.
    pub(crate) kind: String,
    pub(crate) key: Vec<(String, Option<String>)>,
    /// Changed rows: (column, A, B) of the columns that differ.
    pub(crate) changes: Vec<(String, Option<String>, Option<String>)>,
}

impl KeyReport {
    /// "1 only in A, 0 only in B, 2 changed".
    fn counts(&self) -> String {
        format!(
            "{} only in A, {} only in B, {} changed",
            self.only_in_a, self.only_in_b, self.changed
        )
    }

    /// "2 rows changed" and the like, for each kind of row that differs.
    fn row_differences(&self) -> Vec<String> {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.only_in_a, "only in A"),
            (self.only_in_b, "only in B"),
            (self.changed, "changed"),
        ] {
            if n > 0 {
                let rows = if n == 1 { "row" } else { "rows" };
                parts.push(format!("{n} {rows} {what}"));
            }
        }
        parts
    }
}

impl Report {
    pub(crate) fn identical(&self) -> bool {
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
    pub(crate) fn headline(&self) -> String {
        if self.identical() {
            return format!("identical ({} rows)", self.rows[0]);
        }
        let mut parts = Vec::new();
        if self.rows[0] != self.rows[1] {
            parts.push(format!("rows {} → {}", self.rows[0], self.rows[1]));
        }
        parts.extend(self.column_differences());
        if let Some(k) = &self.keys {
            parts.extend(k.row_differences());
        }
        parts.join("; ")
    }

    /// Columns only on one side, changed types, and the stats that differ, column by column.
    fn column_differences(&self) -> Vec<String> {
        let mut parts = Vec::new();
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
        parts
    }
}

/// Compares `a` with `b` on `session`.
pub(crate) fn compare(
    session: &mut dyn Session,
    kind: Kind,
    (a, b): (Side, Side),
    opts: &CompareOptions,
) -> DbResult<Report> {
    let p = profiled(
        (kind, kind),
        &mut |(qa, la), (qb, lb)| Ok((session.query(qa, la)?, session.query(qb, lb)?)),
        (&a, &b),
        opts,
    )?;
    let common = p.common();
    let keys = keys_compared(session, kind.dialect(), (&a.sql, &b.sql), &common, opts)?;
    Ok(p.report((a, b), keys))
}

/// What describing and profiling both sides found.
struct Profiled {
    rows: [u64; 2],
    only_in_a: Vec<String>,
    only_in_b: Vec<String>,
    type_changes: Vec<TypeChange>,
    /// The columns both sides have, each with how it is measured.
    common: Vec<(String, ColumnClass)>,
    columns: Vec<ColumnReport>,
}

impl Profiled {
    fn common(&self) -> Vec<(&str, ColumnClass)> {
        self.common.iter().map(|(n, c)| (n.as_str(), *c)).collect()
    }

    fn report(self, (a, b): (Side, Side), keys: Option<KeyReport>) -> Report {
        Report {
            rows: self.rows,
            a,
            b,
            only_in_a: self.only_in_a,
            only_in_b: self.only_in_b,
            type_changes: self.type_changes,
            columns: self.columns,
            keys,
        }
    }
}

/// A query on side A and one on side B, each returning at most its limit of rows.
type Read<'r> = dyn FnMut((&str, usize), (&str, usize)) -> DbResult<(Rows, Rows)> + 'r;

/// Describes and profiles both sides, each in its warehouse's dialect (`kinds`).
fn profiled(
    kinds: (Kind, Kind),
    read: &mut Read<'_>,
    (a, b): (&Side, &Side),
    opts: &CompareOptions,
) -> DbResult<Profiled> {
    let (da, db) = (kinds.0.dialect(), kinds.1.dialect());
    let (cols_a, cols_b) = read(
        (&da.describe(&a.sql), ALL_ROWS),
        (&db.describe(&b.sql), ALL_ROWS),
    )?;
    let (cols_a, cols_b) = (columns_of(cols_a), columns_of(cols_b));
    require_columns(opts, [(a, &cols_a), (b, &cols_b)])?;
    let wanted = |c: &str| opts.columns.is_empty() || opts.columns.iter().any(|w| w == c);
    let (type_changes, common) = common_columns(kinds, (&cols_a, &cols_b), &wanted);
    let (pa, pb) = read(
        (&da.profile(&a.sql, &common), 1),
        (&db.profile(&b.sql, &common), 1),
    )?;
    let (pa, pb) = (one_row(pa), one_row(pb));
    Ok(Profiled {
        rows: [first_count(&pa), first_count(&pb)],
        only_in_a: names_missing(&cols_a, &cols_b, &wanted),
        only_in_b: names_missing(&cols_b, &cols_a, &wanted),
        type_changes,
        columns: column_reports(&common, &pa, &pb),
        common: common.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
    })
}

/// An error unless both sides have every key column and every column asked for.
fn require_columns(
    opts: &CompareOptions,
    sides: [(&Side, &Vec<(String, String)>); 2],
) -> DbResult<()> {
    for name in opts.key.iter().chain(&opts.columns) {
        for (side, cols) in sides {
            if !cols.iter().any(|(c, _)| c == name) {
                return Err(no_such_column(side, cols, name));
            }
        }
    }
    Ok(())
}

fn no_such_column(side: &Side, cols: &[(String, String)], name: &str) -> crate::adapter::DbError {
    crate::adapter::DbError::Failed(format!(
        "{} has no column `{name}` (it has {})",
        side.label,
        cols.iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The wanted columns both sides have, each with how its stats are measured, and the
/// (column, type in A, type in B) of those whose types differ.
fn common_columns<'c>(
    (ka, kb): (Kind, Kind),
    (cols_a, cols_b): (&'c Columns, &Columns),
    wanted: &dyn Fn(&str) -> bool,
) -> (Vec<TypeChange>, Vec<(&'c str, ColumnClass)>) {
    let mut type_changes = Vec::new();
    let mut common: Vec<(&str, ColumnClass)> = Vec::new();
    for (name, ta) in cols_a.iter().filter(|(n, _)| wanted(n)) {
        let Some((_, tb)) = cols_b.iter().find(|(n, _)| n == name) else {
            continue;
        };
        // Stats are compared as text, so both sides must be measured alike. Two warehouses
        // name their types differently: there, a change of class is a change of type.
        let (ca, cb) = (ka.dialect().column_class(ta), kb.dialect().column_class(tb));
        if (ka == kb && ta != tb) || ca != cb {
            type_changes.push((name.clone(), ta.clone(), tb.clone()));
        }
        common.push((name, if ca == cb { ca } else { ColumnClass::Other }));
    }
    (type_changes, common)
}

/// Each common column's stats side by side, read from the two profile rows (which start with
/// the row count).
fn column_reports(
    common: &[(&str, ColumnClass)],
    pa: &[Option<String>],
    pb: &[Option<String>],
) -> Vec<ColumnReport> {
    let mut at = 1;
    let mut columns = Vec::new();
    for (name, class) in common {
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
    columns
}

/// With a key, the rows matched on it, comparing the common columns that are not part of
/// it; `None` without one.
fn keys_compared(
    session: &mut dyn Session,
    kind: &dyn Dialect,
    sides: (&str, &str),
    common: &[(&str, ColumnClass)],
    opts: &CompareOptions,
) -> DbResult<Option<KeyReport>> {
    if opts.key.is_empty() {
        return Ok(None);
    }
    let key: Vec<&str> = opts.key.iter().map(String::as_str).collect();
    let compared = compared_columns(common, &key);
    key_report(session, kind, sides, (&key, &compared), opts.limit).map(Some)
}

/// The common columns that are not part of the key.
fn compared_columns<'c>(common: &[(&'c str, ColumnClass)], key: &[&str]) -> Vec<&'c str> {
    common
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !key.contains(n))
        .collect()
}

/// The number in a row's first value (0 when there is none).
fn first_count(row: &[Option<String>]) -> u64 {
    row.first()
        .cloned()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The (name, type) rows of a `describe` query.
fn columns_of(rows: Rows) -> Vec<(String, String)> {
    rows.rows
        .into_iter()
        .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?)))
        .collect()
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

/// Equal as text, or as numbers (`1000` and `1000.00`, as two warehouses print one value);
/// sums and averages also when they agree to 1e-9 relative (floating-point sums depend on the
/// order rows are added in).
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
    x == y || matches!(stat, "sum" | "avg") && (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
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
        *slot = first_count(&row);
    }
    let counts = session.query(
        &kind.key_diff((a, b), key, columns, KeyDiff::Counts),
        ALL_ROWS,
    )?;
    let (only_in_a, only_in_b) = (count_of(&counts, "only_a"), count_of(&counts, "only_b"));
    let changed = count_of(&counts, "changed");
    let mut samples = Vec::new();
    if only_in_a + only_in_b + changed > 0 && limit > 0 {
        let rows = session.query(
            &kind.key_diff((a, b), key, columns, KeyDiff::Rows { limit }),
            ALL_ROWS,
        )?;
        samples = rows.rows.iter().map(|r| sample(r, key, columns)).collect();
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

/// The count on the row of the key-diff counts whose first value is `what`.
fn count_of(counts: &Rows, what: &str) -> u64 {
    counts
        .rows
        .iter()
        .find(|r| r.first().cloned().flatten().as_deref() == Some(what))
        .and_then(|r| r.get(1).cloned().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A sample row of the key diff: its kind, its key values, and for a changed row the
/// compared columns that differ.
fn sample(r: &[Option<String>], key: &[&str], columns: &[&str]) -> Sample {
    let kind_of = r.first().cloned().flatten().unwrap_or_default();
    let key_values = key
        .iter()
        .enumerate()
        .map(|(j, k)| (k.to_string(), r.get(1 + j).cloned().flatten()))
        .collect();
    let changes = if kind_of == "changed" {
        changed_values(r, key.len(), columns)
    } else {
        Vec::new()
    };
    Sample {
        kind: kind_of,
        key: key_values,
        changes,
    }
}

/// (column, A, B) of the compared columns whose two values, after the key's, differ.
fn changed_values(
    r: &[Option<String>],
    key_len: usize,
    columns: &[&str],
) -> Vec<(String, Option<String>, Option<String>)> {
    columns
        .iter()
        .enumerate()
        .filter_map(|(j, c)| {
            let at = 1 + key_len + 2 * j;
            let (va, vb) = (
                r.get(at).cloned().flatten(),
                r.get(at + 1).cloned().flatten(),
            );
            (va != vb).then(|| (c.to_string(), va, vb))
        })
        .collect()
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
pub(crate) fn text(r: &Report) -> String {
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
    write_stats_table(&mut out, &stats_rows(r));
    if let Some(k) = &r.keys {
        write_key_text(&mut out, k);
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

/// One row per column and stat: column, stat, A, B, and `≠` where they differ.
fn stats_rows(r: &Report) -> Vec<[String; 5]> {
    r.columns
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
        .collect()
}

/// The stats under a header, the first four columns aligned (wide characters count double).
fn write_stats_table(out: &mut String, table: &[[String; 5]]) {
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
    for row in [&header].into_iter().chain(table) {
        let mut line = String::new();
        for (k, cell) in row.iter().enumerate().take(4) {
            line.push_str(cell);
            let pad = widths[k] - unicode_width::UnicodeWidthStr::width(cell.as_str());
            line.push_str(&" ".repeat(pad + 2));
        }
        line.push_str(&row[4]);
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// The key's counts, a warning for each side where key values repeat, and the sample rows.
fn write_key_text(out: &mut String, k: &KeyReport) {
    let _ = writeln!(out, "key ({}): {}", k.key.join(", "), k.counts());
    write_duplicate_warnings(out, k.duplicate_keys);
    for s in &k.samples {
        let _ = writeln!(out, "  {}", sample_line(s));
    }
}

fn write_duplicate_warnings(out: &mut String, duplicate_keys: [u64; 2]) {
    for (side, n) in ["A", "B"].iter().zip(duplicate_keys) {
        if n > 0 {
            let _ = writeln!(
                out,
                "warning: {n} key values repeat in {side}; rows are matched on each pair"
            );
        }
    }
}

/// The report as a Markdown section (for a pull-request comment).
pub(crate) fn markdown(r: &Report) -> String {
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
    write_markdown_stats(&mut out, r);
    if let Some(k) = &r.keys {
        let _ = writeln!(out, "\nkey `{}`: {}\n", k.key.join(", "), k.counts());
        for s in &k.samples {
            let _ = writeln!(out, "- {}", sample_line(s).replace('|', "\\|"));
        }
    }
    out
}

fn write_markdown_stats(out: &mut String, r: &Report) {
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
}

/// Where one side of a comparison across warehouses is read.
pub(crate) struct Reader<'s> {
    pub(crate) session: &'s mut dyn Session,
    pub(crate) kind: Kind,
}

/// Compares `a` with `b` where they live in two warehouses (a PostgreSQL server and a DuckDB
/// file, say): each side is described and profiled where it is, and with a key both are read
/// in key order at once and merged here, so memory stays flat however large they are.
pub(crate) fn compare_apart(
    (ra, a): (Reader<'_>, Side),
    (rb, b): (Reader<'_>, Side),
    opts: &CompareOptions,
) -> DbResult<Report> {
    let kinds = (ra.kind, rb.kind);
    let (sa, sb) = (ra.session, rb.session);
    // Each side's query runs in its warehouse at the same time as the other's.
    let mut read = |(qa, la): (&str, usize), (qb, lb): (&str, usize)| {
        let (sa, sb) = (&mut *sa, &mut *sb);
        std::thread::scope(|scope| {
            let on_a = scope.spawn(move || sa.query(qa, la));
            let on_b = sb.query(qb, lb);
            Ok((joined(on_a)?, on_b?))
        })
    };
    let p = profiled(kinds, &mut read, (&a, &b), opts)?;
    let keys = match opts.key.is_empty() {
        true => None,
        false => {
            let (ra, rb) = (
                Reader {
                    session: sa,
                    kind: kinds.0,
                },
                Reader {
                    session: sb,
                    kind: kinds.1,
                },
            );
            Some(merged_keys((ra, &a.sql), (rb, &b.sql), &p.common(), opts)?)
        }
    };
    Ok(p.report((a, b), keys))
}

/// One row of a side read in key order: its key values, then the compared columns'.
type KeyedRow = Vec<Option<String>>;

/// The key report of two sides read in key order and merged.
fn merged_keys(
    (ra, a): (Reader<'_>, &str),
    (rb, b): (Reader<'_>, &str),
    common: &[(&str, ColumnClass)],
    opts: &CompareOptions,
) -> DbResult<KeyReport> {
    let key: Vec<&str> = opts.key.iter().map(String::as_str).collect();
    let compared = compared_columns(common, &key);
    let (da, db) = (ra.kind.dialect(), rb.kind.dialect());
    let side_a = (
        da.duplicate_keys(a, &key),
        da.in_key_order(a, &key, &compared),
    );
    let side_b = (
        db.duplicate_keys(b, &key),
        db.in_key_order(b, &key, &compared),
    );
    let mut merge = Merge::new(&key, &compared, opts.limit);
    let duplicate_keys = std::thread::scope(|scope| {
        // Rows cross between threads in batches: one hand-over per row cost more than the
        // merge itself (measured: 1M rows a side).
        let (ta, rx_a) = std::sync::mpsc::sync_channel::<Vec<KeyedRow>>(8);
        let (tb, rx_b) = std::sync::mpsc::sync_channel::<Vec<KeyedRow>>(8);
        let reader_a = scope.spawn(move || in_key_order(ra.session, &side_a, ta));
        let reader_b = scope.spawn(move || in_key_order(rb.session, &side_b, tb));
        let rows = |rx: std::sync::mpsc::Receiver<Vec<KeyedRow>>| rx.into_iter().flatten();
        merge.run(rows(rx_a).peekable(), rows(rx_b).peekable());
        DbResult::Ok([joined(reader_a)?, joined(reader_b)?])
    })?;
    Ok(KeyReport {
        key: opts.key.clone(),
        only_in_a: merge.counts[0],
        only_in_b: merge.counts[1],
        changed: merge.counts[2],
        duplicate_keys,
        samples: merge.samples,
    })
}

/// What a thread of a comparison returned; a panic there is an error here.
fn joined<T>(h: std::thread::ScopedJoinHandle<'_, DbResult<T>>) -> DbResult<T> {
    h.join()
        .unwrap_or_else(|_| Err(crate::adapter::DbError::Failed("a reader failed".into())))
}

/// One side of a key comparison on its session: how many keys repeat (`duplicates`), then
/// its rows in key order (`rows`), sent on in batches.
fn in_key_order(
    session: &mut dyn Session,
    (duplicates, rows): &(String, String),
    to: std::sync::mpsc::SyncSender<Vec<KeyedRow>>,
) -> DbResult<u64> {
    let repeated = first_count(&one_row(session.query(duplicates, 1)?));
    batched(session, rows, to)?;
    Ok(repeated)
}

/// Reads `sql`'s rows on `session` and sends them on in batches of 1,024, until the receiver
/// hangs up.
fn batched(
    session: &mut dyn Session,
    sql: &str,
    to: std::sync::mpsc::SyncSender<Vec<KeyedRow>>,
) -> DbResult<()> {
    const BATCH: usize = 1024;
    let mut batch = Vec::with_capacity(BATCH);
    let mut open = true;
    session.for_each_row(sql, &mut |row| {
        batch.push(row);
        if batch.len() == BATCH {
            open = to
                .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                .is_ok();
        }
        open
    })?;
    if open && !batch.is_empty() {
        let _ = to.send(batch);
    }
    Ok(())
}

/// The merge of two sides' rows in key order: counts of rows only in A, only in B and
/// changed, and up to `limit` samples of each.
struct Merge<'k> {
    key: &'k [&'k str],
    columns: &'k [&'k str],
    limit: usize,
    counts: [u64; 3],
    samples: Vec<Sample>,
}

impl<'k> Merge<'k> {
    fn new(key: &'k [&'k str], columns: &'k [&'k str], limit: usize) -> Self {
        Merge {
            key,
            columns,
            limit,
            counts: [0; 3],
            samples: Vec::new(),
        }
    }

    fn run<I: Iterator<Item = KeyedRow>>(
        &mut self,
        mut a: std::iter::Peekable<I>,
        mut b: std::iter::Peekable<I>,
    ) {
        let n = self.key.len();
        loop {
            let order = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => x[..n].cmp(&y[..n]),
            };
            match order {
                std::cmp::Ordering::Less => self.only(0, a.next()),
                std::cmp::Ordering::Greater => self.only(1, b.next()),
                std::cmp::Ordering::Equal => {
                    let (x, y) = (a.next().unwrap_or_default(), b.next().unwrap_or_default());
                    self.matched(&x, &y);
                }
            }
        }
    }

    /// A row only one side has (0: A, 1: B).
    fn only(&mut self, side: usize, row: Option<KeyedRow>) {
        self.counts[side] += 1;
        let kind = ["only_a", "only_b"][side];
        if let Some(row) = row.filter(|_| self.shown(kind) < self.limit) {
            let key = self.key_values(&row);
            self.samples.push(Sample {
                kind: kind.into(),
                key,
                changes: Vec::new(),
            });
        }
    }

    /// Two rows with one key: changed when a compared column differs.
    fn matched(&mut self, x: &KeyedRow, y: &KeyedRow) {
        let n = self.key.len();
        let changes: Vec<(String, Option<String>, Option<String>)> = self
            .columns
            .iter()
            .enumerate()
            .filter(|(j, _)| {
                !same_text(
                    x.get(n + j).and_then(Option::as_deref),
                    y.get(n + j).and_then(Option::as_deref),
                )
            })
            .map(|(j, c)| {
                (
                    c.to_string(),
                    x.get(n + j).cloned().flatten(),
                    y.get(n + j).cloned().flatten(),
                )
            })
            .collect();
        if changes.is_empty() {
            return;
        }
        self.counts[2] += 1;
        if self.shown("changed") < self.limit {
            let key = self.key_values(x);
            self.samples.push(Sample {
                kind: "changed".into(),
                key,
                changes,
            });
        }
    }

    fn shown(&self, kind: &str) -> usize {
        self.samples.iter().filter(|s| s.kind == kind).count()
    }

    fn key_values(&self, row: &KeyedRow) -> Vec<(String, Option<String>)> {
        self.key
            .iter()
            .enumerate()
            .map(|(j, k)| (k.to_string(), row.get(j).cloned().flatten()))
            .collect()
    }
}

/// One value as two warehouses print it: the same text, the same number (`1000` and
/// `1000.00`), or the same truth (`t` and `true`).
fn same_text(a: Option<&str>, b: Option<&str>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return a.is_none() && b.is_none();
    };
    let truth = |v: &str| match v {
        "t" | "true" => Some(true),
        "f" | "false" => Some(false),
        _ => None,
    };
    a == b
        || decimal(a).is_some() && decimal(a) == decimal(b)
        || truth(a).is_some() && truth(a) == truth(b)
        || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

/// A decimal number's canonical text (`+1.50` → `1.5`, `-0.0` → `0`), exact at any size;
/// None when `v` is not one.
fn decimal(v: &str) -> Option<String> {
    let (sign, digits) = match v.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", v.strip_prefix('+').unwrap_or(v)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let body = match (int.is_empty(), frac.is_empty()) {
        (true, true) => return Some("0".into()),
        (_, true) => int.to_string(),
        (true, false) => format!("0.{frac}"),
        (false, false) => format!("{int}.{frac}"),
    };
    Some(format!("{sign}{body}"))
}
