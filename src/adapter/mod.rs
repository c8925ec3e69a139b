//! Warehouses: everything that differs between DuckDB, PostgreSQL and later engines.
//!
//! The offline half (quoting, default schema, the SQL dialect used to check models) is
//! `AdapterKind`; the online half is a `Warehouse` (one per run) handing out `Session`s (one per
//! thread). A session builds a relation *staged* — inside an open transaction, invisible to
//! every other connection — and `publish` commits it, so a failed, interrupted or killed build
//! leaves the previous relation untouched. This module knows nothing of models, Jinja or the graph,
//! and nothing outside it writes warehouse-specific SQL or branches on the warehouse kind.

#[cfg(feature = "duckdb")]
mod duckdb;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;
use sqlparser::dialect::{Dialect, DuckDbDialect, PostgreSqlDialect};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    DuckDb,
    Postgres,
}

impl AdapterKind {
    pub const NAMES: &'static [&'static str] = &["duckdb", "postgres"];

    pub fn parse(name: &str) -> Option<AdapterKind> {
        match name {
            "duckdb" => Some(AdapterKind::DuckDb),
            "postgres" | "postgresql" => Some(AdapterKind::Postgres),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AdapterKind::DuckDb => "duckdb",
            AdapterKind::Postgres => "postgres",
        }
    }

    /// The schema a relation lands in when nothing configures one.
    pub fn default_schema(self) -> &'static str {
        match self {
            AdapterKind::DuckDb => "main",
            AdapterKind::Postgres => "public",
        }
    }

    /// A quoted identifier; embedded quotes are doubled, so any name is safe.
    pub fn quote(self, ident: &str) -> String {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }

    /// The form of an identifier under which two names are the same relation: DuckDB
    /// compares identifiers case-insensitively, quoted or not.
    pub fn fold_identifier(self, ident: &str) -> String {
        match self {
            AdapterKind::DuckDb => ident.to_lowercase(),
            AdapterKind::Postgres => ident.to_string(),
        }
    }

    /// `"schema"."name"`.
    pub fn relation(self, schema: &str, name: &str) -> String {
        format!("{}.{}", self.quote(schema), self.quote(name))
    }

    /// A query's FROM item reading an external source's files. Relative paths resolve against
    /// the project directory (the warehouse is opened with it as its file search path).
    pub fn external_relation(self, e: &crate::project::External) -> String {
        let reader = match e.format.as_str() {
            "csv" => "read_csv",
            "json" => "read_json",
            _ => "read_parquet",
        };
        let path = format!("'{}'", e.location.replace('\'', "''"));
        match e.hive_partitioning {
            true => format!("{reader}({path}, hive_partitioning = true)"),
            false => format!("{reader}({path})"),
        }
    }

    /// `sql`'s rows whose `column` lies in [start, end) (`YYYY-MM-DD HH:MM:SS` timestamps).
    pub fn time_range(self, sql: &str, column: &str, start: &str, end: Option<&str>) -> String {
        let col = self.quote(column);
        let upper = end
            .map(|e| format!(" AND {col} < TIMESTAMP '{e}'"))
            .unwrap_or_default();
        format!(
            "SELECT * FROM (\n{}\n) AS __xform_batch\nWHERE {col} >= TIMESTAMP '{start}'{upper}",
            sql.trim_end().trim_end_matches(';').trim_end()
        )
    }

    /// A query listing `column_name, column_type` of a relation (any FROM item).
    pub fn describe_sql(self, rel: &str) -> String {
        format!("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {rel})")
    }

    /// What `xform compare` can measure of a column of this warehouse type.
    pub fn column_class(self, data_type: &str) -> ColumnClass {
        let t = data_type.to_ascii_uppercase();
        const NUMERIC: &[&str] = &[
            "TINYINT",
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "HUGEINT",
            "UTINYINT",
            "USMALLINT",
            "UINTEGER",
            "UBIGINT",
            "UHUGEINT",
            "FLOAT",
            "REAL",
            "DOUBLE",
            "DECIMAL",
            "NUMERIC",
            "INT",
            "INT4",
            "INT8",
            "INT2",
        ];
        if t.contains('[')
            || ["STRUCT", "MAP", "UNION", "LIST"]
                .iter()
                .any(|p| t.starts_with(p))
        {
            ColumnClass::Nested
        } else if NUMERIC
            .iter()
            .any(|p| t == *p || t.starts_with(&format!("{p}(")))
        {
            ColumnClass::Numeric
        } else if ["VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR"]
            .iter()
            .any(|p| t.starts_with(p))
        {
            ColumnClass::Text
        } else {
            ColumnClass::Other
        }
    }

    /// One row: `count(*)`, then per column the stats of its class, in [`ColumnClass::stats`]
    /// order.
    pub fn profile_sql(self, rel: &str, columns: &[(&str, ColumnClass)]) -> String {
        let mut items = vec!["count(*)".to_string()];
        for (name, class) in columns {
            let c = self.quote(name);
            for stat in class.stats() {
                items.push(match *stat {
                    "nulls" => format!("count(*) - count({c})"),
                    "distinct" => format!("count(DISTINCT {c})"),
                    "min_length" => format!("min(length({c}))"),
                    "max_length" => format!("max(length({c}))"),
                    f => format!("{f}({c})"),
                });
            }
        }
        format!("SELECT {} FROM {rel}", items.join(", "))
    }

    /// How many key values occur more than once in `rel`.
    pub fn duplicate_keys_sql(self, rel: &str, key: &[&str]) -> String {
        let k: Vec<String> = key.iter().map(|c| self.quote(c)).collect();
        format!(
            "SELECT count(*) FROM (SELECT 1 FROM {rel} GROUP BY {} HAVING count(*) > 1) AS d",
            k.join(", ")
        )
    }

    /// Rows of `a` and `b` matched on `key` (NULL-safe) that differ: `__xform_diff` is
    /// `only_a`, `only_b` or `changed`, then the key columns, then `a.<col>`, `b.<col>` for each
    /// of `columns`. `counts` groups them instead; otherwise at most `limit` of each kind.
    pub fn key_diff_sql(
        self,
        (a, b): (&str, &str),
        key: &[&str],
        columns: &[&str],
        counts: bool,
        limit: usize,
    ) -> String {
        let q = |c: &str| self.quote(c);
        let on: Vec<String> = key
            .iter()
            .map(|k| format!("a.{0} IS NOT DISTINCT FROM b.{0}", q(k)))
            .collect();
        let mut select = vec![
            "CASE WHEN b.__xform_b IS NULL THEN 'only_a' WHEN a.__xform_a IS NULL THEN 'only_b' ELSE 'changed' END AS __xform_diff".to_string(),
        ];
        select.extend(
            key.iter()
                .map(|k| format!("coalesce(a.{0}, b.{0}) AS {0}", q(k))),
        );
        for c in columns {
            select.push(format!("a.{} AS {}", q(c), q(&format!("a.{c}"))));
            select.push(format!("b.{} AS {}", q(c), q(&format!("b.{c}"))));
        }
        let mut differ = vec![
            "a.__xform_a IS NULL".to_string(),
            "b.__xform_b IS NULL".to_string(),
        ];
        differ.extend(
            columns
                .iter()
                .map(|c| format!("a.{0} IS DISTINCT FROM b.{0}", q(c))),
        );
        let diff = format!(
            "SELECT {}\nFROM (SELECT *, true AS __xform_a FROM {a}) AS a\nFULL OUTER JOIN (SELECT *, true AS __xform_b FROM {b}) AS b ON {}\nWHERE {}",
            select.join(", "),
            on.join(" AND "),
            differ.join(" OR ")
        );
        if counts {
            return format!("SELECT __xform_diff, count(*) FROM ({diff}) AS d GROUP BY 1");
        }
        let order: Vec<String> = key.iter().map(|k| q(k)).collect();
        format!(
            "SELECT * FROM ({diff}) AS d QUALIFY row_number() OVER (PARTITION BY __xform_diff ORDER BY {0}) <= {limit} ORDER BY __xform_diff, {0}",
            order.join(", ")
        )
    }

    /// The statement making another DuckDB file readable as `alias`.
    pub fn attach_sql(self, path: &Path, alias: &str) -> String {
        format!(
            "ATTACH '{}' AS {} (READ_ONLY)",
            path.display().to_string().replace('\'', "''"),
            self.quote(alias)
        )
    }

    pub fn sql_dialect(self) -> Box<dyn Dialect + Send + Sync> {
        match self {
            AdapterKind::DuckDb => Box::new(DuckDbDialect {}),
            AdapterKind::Postgres => Box::new(PostgreSqlDialect {}),
        }
    }
}

/// What `xform compare` measures of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnClass {
    Numeric,
    Text,
    Other,
    Nested,
}

impl ColumnClass {
    pub fn stats(self) -> &'static [&'static str] {
        match self {
            ColumnClass::Numeric => &["nulls", "distinct", "min", "max", "sum", "avg"],
            ColumnClass::Text => &[
                "nulls",
                "distinct",
                "min",
                "max",
                "min_length",
                "max_length",
            ],
            ColumnClass::Other => &["nulls", "distinct", "min", "max"],
            ColumnClass::Nested => &["nulls", "distinct"],
        }
    }
}

/// A relation by its unquoted parts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Relation {
    pub schema: String,
    pub name: String,
}

impl Relation {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Relation {
        Relation {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelKind {
    Table,
    View,
}

/// What to build.
pub enum Build<'a> {
    View(&'a str),
    Table(&'a str),
    Seed(&'a CsvSource),
    /// New rows into the existing table (never aside: in place, in the open transaction).
    Increment(Increment<'a>),
    /// A snapshot: created with its validity columns, or its changes recorded.
    Snapshot(&'a SnapshotSpec),
}

/// An incremental model's run on top of its existing table.
pub struct Increment<'a> {
    /// The model's SQL with `is_incremental()` true: the new rows.
    pub sql: &'a str,
    pub strategy: Strategy<'a>,
    pub on_schema_change: SchemaChange,
}

/// How new rows enter the table. Keys match null-safely (`IS NOT DISTINCT FROM`): a NULL key
/// is a value like any other, so a re-run never duplicates such rows.
pub enum Strategy<'a> {
    Append,
    /// Update rows whose key matches (`update`: only these columns; else all but the key and
    /// `exclude`), insert the others.
    Merge {
        key: &'a [String],
        update: Option<&'a [String]>,
        exclude: &'a [String],
    },
    /// Delete the rows whose key matches, insert all.
    DeleteInsert {
        key: &'a [String],
    },
    /// Delete the rows whose `column` lies in [start, end), insert all (the new rows are
    /// already limited to that interval): a microbatch.
    Range {
        column: &'a str,
        start: &'a str,
        end: &'a str,
    },
}

/// What happens when the new rows' columns differ from the table's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaChange {
    Ignore,
    AppendNewColumns,
    SyncAllColumns,
    Fail,
}

impl SchemaChange {
    pub const NAMES: &'static [&'static str] =
        &["ignore", "append_new_columns", "sync_all_columns", "fail"];

    pub fn parse(s: &str) -> Option<SchemaChange> {
        Some(match s {
            "ignore" => SchemaChange::Ignore,
            "append_new_columns" => SchemaChange::AppendNewColumns,
            "sync_all_columns" => SchemaChange::SyncAllColumns,
            "fail" => SchemaChange::Fail,
            _ => return None,
        })
    }
}

/// A snapshot (SCD type 2): each version of a row with the interval it was current.
#[derive(Clone, Debug)]
pub struct SnapshotSpec {
    pub sql: String,
    pub unique_key: Vec<String>,
    pub strategy: SnapshotStrategy,
    /// Close the current version of rows that vanished from the source.
    pub invalidate_hard_deletes: bool,
    /// Names of the `dbt_scd_id`, `dbt_updated_at`, `dbt_valid_from`, `dbt_valid_to` columns.
    pub meta: SnapshotColumns,
    /// The run's time (UTC, `YYYY-MM-DD HH:MM:SS`): when check-strategy changes and hard
    /// deletes are recorded.
    pub now: String,
}

#[derive(Clone, Debug)]
pub enum SnapshotStrategy {
    /// A row changed when its `updated_at` column moved forward.
    Timestamp { updated_at: String },
    /// A row changed when one of these columns (None: all) differs.
    Check { columns: Option<Vec<String>> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotColumns {
    pub scd_id: String,
    pub updated_at: String,
    pub valid_from: String,
    pub valid_to: String,
}

impl Default for SnapshotColumns {
    fn default() -> Self {
        SnapshotColumns {
            scd_id: "dbt_scd_id".into(),
            updated_at: "dbt_updated_at".into(),
            valid_from: "dbt_valid_from".into(),
            valid_to: "dbt_valid_to".into(),
        }
    }
}

/// A CSV file, already UTF-8, and how to read it.
#[derive(Clone, Debug)]
pub struct CsvSource {
    pub path: PathBuf,
    pub delimiter: String,
    pub quote: String,
    pub header: bool,
    /// Column name → warehouse type, for the columns whose type is not to be inferred.
    pub column_types: Vec<(String, String)>,
}

/// A relation built but not yet published: in place, inside an open transaction (invisible to
/// every other connection until `publish`); or aside, as a table beside the published relation
/// that `publish` swaps in. The session reads it as `readable_as`; `discard` drops it.
#[derive(Debug)]
pub struct Staged {
    pub rows: Option<u64>,
    pub readable_as: Relation,
    /// Staged aside: the relation it becomes on publish, and what that replaces.
    #[cfg_attr(not(feature = "duckdb"), allow(dead_code))]
    aside: Option<(Relation, Option<RelKind>)>,
}

#[cfg_attr(not(feature = "duckdb"), allow(dead_code))]
impl Staged {
    /// A relation staged under its own name (`aside` None) or beside it.
    fn new(
        rows: Option<u64>,
        readable_as: Relation,
        aside: Option<(Relation, Option<RelKind>)>,
    ) -> Staged {
        Staged {
            rows,
            readable_as,
            aside,
        }
    }
}

/// The result of a query, every value as text (as the warehouse prints it) or NULL.
#[derive(Debug, Default)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// Each row as a JSON object from column name to value (text or null).
    pub fn objects(&self) -> Vec<serde_json::Map<String, Json>> {
        self.rows
            .iter()
            .map(|r| {
                let values = r.iter().map(|v| v.clone().map_or(Json::Null, Json::String));
                self.columns.iter().cloned().zip(values).collect()
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The warehouse refused or failed the statement.
    Failed(String),
    /// The statement was interrupted (Ctrl-C, fail-fast).
    Interrupted,
    /// A CSV row could not be loaded: 1-based line in the file, the column if known.
    BadRow {
        line: u64,
        column: Option<String>,
        message: String,
    },
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Failed(m) => f.write_str(m),
            DbError::Interrupted => f.write_str("interrupted"),
            DbError::BadRow {
                line,
                column,
                message,
            } => match column {
                Some(c) => write!(f, "line {line}, column `{c}`: {message}"),
                None => write!(f, "line {line}: {message}"),
            },
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// One open warehouse for the length of a run.
pub trait Warehouse: Send + Sync {
    /// A new connection; each thread of a run holds its own.
    fn session(&self) -> DbResult<Box<dyn Session>>;
    /// Interrupts every statement running on any session (they fail with `Interrupted`).
    fn interrupt(&self);
    /// "DuckDB v1.4.1" or the like.
    fn version(&self) -> DbResult<String>;
}

/// A connection. Methods that change the warehouse append each statement they execute to
/// `log` (also when it fails), which becomes `target/run/`.
pub trait Session: Send {
    /// The tables and views in these schemas.
    fn relations(&mut self, schemas: &[String]) -> DbResult<Vec<(Relation, RelKind)>>;
    /// Drops what a run of xform that was killed left behind (a table staged aside for its
    /// tests) anywhere in the warehouse, and returns what it dropped. Called before a run
    /// publishes anything.
    fn drop_leftovers(&mut self, log: &mut Vec<String>) -> DbResult<Vec<Relation>>;
    /// Creates the schemas that do not exist.
    fn create_schemas(&mut self, schemas: &[String], log: &mut Vec<String>) -> DbResult<()>;
    /// Builds `relation` in an open transaction, replacing `replaces` (what exists under its
    /// name now) — or, `aside`, as a table beside it (`readable_as`), leaving the previous
    /// relation in place until `publish` swaps it in, so tests can audit the new one first.
    /// On error nothing stays behind and the previous relation is untouched.
    fn stage(
        &mut self,
        relation: &Relation,
        build: Build<'_>,
        replaces: Option<RelKind>,
        aside: bool,
        log: &mut Vec<String>,
    ) -> DbResult<Staged>;
    /// Commits a staged relation: from now on everyone reads it.
    fn publish(&mut self, staged: Staged, log: &mut Vec<String>) -> DbResult<Staged>;
    /// Drops a staged relation; the previous one stays published. Not interrupted by
    /// `Warehouse::interrupt`: a Ctrl-C finishes the cleanup it started.
    fn discard(&mut self, staged: Staged, log: &mut Vec<String>) -> DbResult<()>;
    /// Runs a query and returns at most `limit` rows.
    fn query(&mut self, sql: &str, limit: usize) -> DbResult<Rows>;
    /// Runs a statement that returns nothing (`ATTACH`, settings).
    fn execute(&mut self, sql: &str) -> DbResult<()>;
    /// The number of rows of each query (each capped at its limit), in one round trip.
    fn count_failures(&mut self, queries: &[(&str, Option<u64>)]) -> DbResult<Vec<u64>>;
    /// Replaces table `into` with the rows of `sql` (at most `limit`) and counts them.
    fn store_failures(
        &mut self,
        into: &Relation,
        sql: &str,
        limit: Option<u64>,
        log: &mut Vec<String>,
    ) -> DbResult<u64>;
    /// A relation's columns and their types, or `None` when it does not exist.
    fn columns(&mut self, relation: &Relation) -> DbResult<Option<Vec<(String, String)>>>;
    /// The latest `loaded_at` (an expression over `from`'s columns) in seconds since the Unix
    /// epoch, over the rows `filter` keeps; None when there are no rows.
    fn max_loaded_at(
        &mut self,
        from: &str,
        loaded_at: &str,
        filter: Option<&str>,
    ) -> DbResult<Option<f64>>;
}

/// Opens the warehouse a target describes. `root` resolves relative paths; `settings` are the
/// target's adapter-specific fields (`path` for DuckDB).
pub fn open(
    kind: AdapterKind,
    root: &Path,
    target_name: &str,
    settings: &BTreeMap<String, Json>,
) -> DbResult<Arc<dyn Warehouse>> {
    match kind {
        AdapterKind::DuckDb => open_duckdb(&duckdb_path(root, target_name, settings), root),
        AdapterKind::Postgres => Err(DbError::Failed(
            "the PostgreSQL adapter is not available yet in this xform; use a duckdb target".into(),
        )),
    }
}

#[cfg(feature = "duckdb")]
fn open_duckdb(path: &Path, root: &Path) -> DbResult<Arc<dyn Warehouse>> {
    Ok(Arc::new(duckdb::DuckDb::open(path, root)?))
}

#[cfg(not(feature = "duckdb"))]
fn open_duckdb(_: &Path, _: &Path) -> DbResult<Arc<dyn Warehouse>> {
    Err(DbError::Failed(
        "this xform was built without DuckDB (cargo feature `duckdb`)".into(),
    ))
}

/// Where a target's warehouse lives, for messages (`target/dev.duckdb`, a server URL).
pub fn describe(
    kind: AdapterKind,
    root: &Path,
    target_name: &str,
    settings: &BTreeMap<String, Json>,
) -> String {
    match kind {
        AdapterKind::DuckDb => {
            let path = duckdb_path(root, target_name, settings);
            path.strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string()
        }
        AdapterKind::Postgres => settings
            .get("host")
            .and_then(Json::as_str)
            .unwrap_or("postgres")
            .to_string(),
    }
}

/// The file of another target's warehouse to attach for reading, when it is not `main`'s.
pub fn attachable(
    kind: AdapterKind,
    root: &Path,
    (main, other): (&str, &str),
    (main_settings, other_settings): (&BTreeMap<String, Json>, &BTreeMap<String, Json>),
) -> Option<PathBuf> {
    match kind {
        AdapterKind::DuckDb => {
            let a = duckdb_path(root, main, main_settings);
            let b = duckdb_path(root, other, other_settings);
            (a != b).then_some(b)
        }
        AdapterKind::Postgres => None,
    }
}

/// A DuckDB target's file: `path:` relative to the project, else `target/<target>.duckdb`;
/// `:memory:` stays as it is.
fn duckdb_path(root: &Path, target_name: &str, settings: &BTreeMap<String, Json>) -> PathBuf {
    match settings.get("path").and_then(Json::as_str) {
        Some(":memory:") => PathBuf::from(":memory:"),
        Some(p) => root.join(p),
        None => root.join("target").join(format!("{target_name}.duckdb")),
    }
}
