//! Warehouses: the only code that talks to one. A target's settings become a `Connection`
//! (typed and checked by its adapter: where the warehouse lives, what can be read beside it);
//! an open warehouse is a `Warehouse` (one per run) handing out `Session`s (one per thread). A
//! session builds a relation *staged* — invisible to every other connection, audited by its
//! tests in whatever way the adapter chooses — and `publish` makes it the published one, so a
//! failed, interrupted or killed build leaves the previous relation untouched. The SQL that is
//! the same everywhere is `sql::Dialect`'s; this module knows nothing of models, Jinja or the
//! graph.

// Built without an engine (`--no-default-features`), what only the engines read goes unread;
// so does what only the transactional engines read, built with Spark alone.
#![cfg_attr(not(any(feature = "duckdb", feature = "postgres")), allow(dead_code))]

mod duckdb;
mod postgres;
#[cfg(any(feature = "postgres", feature = "spark"))]
mod seed;
mod spark;
mod statements;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use crate::diagnostics::{Diagnostic, Diagnostics, did_you_mean};
use crate::project::Target;
use crate::sql::Kind;
pub(crate) use crate::sql::Relation;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RelKind {
    Table,
    View,
}

/// What to build.
pub(crate) enum Build<'a> {
    View(&'a str),
    Table(&'a str),
    Seed(&'a CsvSource),
    /// New rows into the existing table (never aside: in place, in the open transaction).
    Increment(Increment<'a>),
    /// A snapshot: created with its validity columns, or its changes recorded.
    Snapshot(&'a SnapshotSpec),
}

/// An incremental model's run on top of its existing table.
pub(crate) struct Increment<'a> {
    /// The model's SQL with `is_incremental()` true: the new rows.
    pub(crate) sql: &'a str,
    pub(crate) strategy: Strategy<'a>,
    pub(crate) on_schema_change: SchemaChange,
}

/// How new rows enter the table. Keys match null-safely (`IS NOT DISTINCT FROM`): a NULL key
/// is a value like any other, so a re-run never duplicates such rows.
pub(crate) enum Strategy<'a> {
    Append,
    /// Update rows whose key matches (`update`: only these columns; else all but the key and
    /// `exclude`), insert the others.
    Merge {
        key: &'a [String],
        update: Option<&'a [String]>,
        exclude: &'a [String],
        /// dbt's `incremental_predicates`: more conditions a matching row meets, naming the
        /// table `DBT_INTERNAL_DEST` and the new rows `DBT_INTERNAL_SOURCE`.
        predicates: &'a [String],
    },
    /// Delete the rows whose key matches (and `predicates`), insert all.
    DeleteInsert {
        key: &'a [String],
        predicates: &'a [String],
    },
    /// Replace the partitions (`Layout::partition_by`) the new rows touch, or the whole table
    /// when it has none: Spark's `insert_overwrite`.
    Overwrite,
    /// Delete the rows whose `column` lies in [start, end), insert all (the new rows are
    /// already limited to that interval): a microbatch. Where rows are replaced a partition at
    /// a time, the partitions the new rows touch are overwritten instead.
    Range {
        column: &'a str,
        start: &'a str,
        end: &'a str,
    },
}

/// What happens when the new rows' columns differ from the table's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SchemaChange {
    Ignore,
    AppendNewColumns,
    SyncAllColumns,
    Fail,
}

impl SchemaChange {
    pub(crate) const NAMES: &'static [&'static str] =
        &["ignore", "append_new_columns", "sync_all_columns", "fail"];

    pub(crate) fn parse(s: &str) -> Option<SchemaChange> {
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
pub(crate) struct SnapshotSpec {
    pub(crate) sql: String,
    pub(crate) unique_key: Vec<String>,
    pub(crate) strategy: SnapshotStrategy,
    /// Close the current version of rows that vanished from the source.
    pub(crate) invalidate_hard_deletes: bool,
    /// Names of the `dbt_scd_id`, `dbt_updated_at`, `dbt_valid_from`, `dbt_valid_to` columns.
    pub(crate) meta: SnapshotColumns,
    /// The run's time (UTC, `YYYY-MM-DD HH:MM:SS`): when check-strategy changes and hard
    /// deletes are recorded.
    pub(crate) now: String,
}

#[derive(Clone, Debug)]
pub(crate) enum SnapshotStrategy {
    /// A row changed when its `updated_at` column moved forward.
    Timestamp { updated_at: String },
    /// A row changed when one of these columns (None: all) differs.
    Check { columns: Option<Vec<String>> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotColumns {
    pub(crate) scd_id: String,
    pub(crate) updated_at: String,
    pub(crate) valid_from: String,
    pub(crate) valid_to: String,
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

/// A CSV file and how to read it.
#[derive(Clone, Debug)]
pub(crate) struct CsvSource {
    pub(crate) path: PathBuf,
    /// The file's text decoded to UTF-8, when the file is in another encoding.
    pub(crate) decoded: Option<String>,
    pub(crate) delimiter: String,
    pub(crate) quote: String,
    pub(crate) header: bool,
    /// The header's names kept exactly; else named as unquoted identifiers are (dbt's
    /// `quote_columns: false`: lower case on PostgreSQL).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) quote_columns: bool,
    /// Column name → warehouse type, for the columns whose type is not to be inferred.
    pub(crate) column_types: Vec<(String, String)>,
    /// Columns typed as dbt's seeds (agate) type them: whole numbers that all fit in 32 bits
    /// `integer` (DuckDB's reader would make them `bigint`), numbers with decimals `double
    /// precision` (dbt's `float8`; xform's own seeds keep them exact, `numeric`).
    pub(crate) dbt_types: bool,
}

/// What runs around a build, in its transaction: `pre` before it; when it is published, `post`
/// and then the grants.
#[derive(Clone, Debug, Default)]
pub(crate) struct Around {
    pub(crate) pre: Vec<String>,
    pub(crate) post: Vec<String>,
    /// Each privilege with exactly the grantees that hold it afterwards (`group:g`, `role:r`,
    /// `user:u` or a bare name); others are revoked. None: grants are left as they are.
    pub(crate) grants: Option<Vec<(String, Vec<String>)>>,
    /// Descriptions stored as comments on publish (`persist_docs`): the relation's, and each
    /// column's.
    pub(crate) docs: Docs,
    /// How the warehouse lays the relation out, where it has a say.
    pub(crate) layout: Layout,
    /// What the build records beside the relation, in the transaction that publishes it, and
    /// the table it is kept in.
    pub(crate) record: Option<(Relation, BuildRecord)>,
}

/// What a build records beside the relation it publishes, in the same transaction, for a
/// later run to decide whether to build it again (`--reuse`). Every field is text; `inputs`
/// is a JSON object (each input's unique id → `[shape, data version]`), `tests` a JSON list
/// of the keys of the tests that passed on the relation, recorded after they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BuildRecord {
    pub(crate) relation: String,
    pub(crate) node: String,
    pub(crate) run: String,
    pub(crate) built_at: String,
    /// A hash of everything that decides what the build does (its SQL, config, hooks, ...).
    pub(crate) logic: String,
    /// A hash of its logic and its inputs' shapes: equal shapes, equal columns.
    pub(crate) shape: String,
    /// Its data version: equal versions, equal rows.
    pub(crate) data: String,
    pub(crate) inputs: String,
    pub(crate) tests: String,
}

/// A schema and the privileges it gives: each privilege with its grantees.
pub(crate) type SchemaGrants = (String, Vec<(String, Vec<String>)>);

/// The physical layout of a relation (Redshift's `dist`, `sort`, `sort_type`, `backup`,
/// `bind`; PostgreSQL's `indexes`; Spark's `partition_by`, `file_format`); an adapter applies
/// what its warehouse has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// `all`, `even`, `auto` or a column (the distribution key).
    pub(crate) dist: Option<String>,
    pub(crate) sort: Vec<String>,
    /// `compound` or `interleaved`.
    pub(crate) sort_type: Option<String>,
    /// False: left out of snapshots of the cluster.
    pub(crate) backup: bool,
    /// False: a late-binding view, which depends on nothing until it is read.
    pub(crate) bind: bool,
    /// Indexes made on a table when it is created (PostgreSQL's `indexes`).
    pub(crate) indexes: Vec<Index>,
    /// The columns a table's files are partitioned by (`dt=…/` folders), last in its columns.
    pub(crate) partition_by: Vec<String>,
    /// The table's file format (`parquet`, `orc`, `delta`, ...), where the warehouse has a
    /// choice.
    pub(crate) file_format: Option<String>,
}

/// An index on a table's columns (dbt-postgres's `indexes: [{columns: [...], unique: true,
/// type: btree}]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) columns: Vec<String>,
    pub(crate) unique: bool,
    /// The access method (`btree`, `hash`, `brin`, ...), when not the default.
    pub(crate) method: Option<String>,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            dist: None,
            sort: Vec::new(),
            sort_type: None,
            backup: true,
            bind: true,
            indexes: Vec::new(),
            partition_by: Vec::new(),
            file_format: None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Docs {
    pub(crate) relation: Option<String>,
    pub(crate) columns: Vec<(String, String)>,
}

/// A relation built but not yet published: no other connection sees it until `publish`. The
/// session that staged it reads it as `readable_as` — `relation` itself, or another name the
/// adapter chose (a table beside the published one); `discard` drops it.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) rows: Option<u64>,
    pub(crate) readable_as: Relation,
    /// The relation it becomes on `publish`, and what exists under that name now.
    relation: Relation,
    replaces: Option<RelKind>,
    /// What it is built as.
    kind: RelKind,
    /// Run on `publish`.
    around: Around,
}

/// The result of a query, every value as text (as the warehouse prints it) or NULL.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Vec<Option<String>>>,
    /// Each column's type as the warehouse or its client names it (`bool`, `int4`, `Utf8`);
    /// empty where a query does not say.
    pub(crate) types: Vec<String>,
}

impl Rows {
    /// Each row as a JSON object from column name to value (text or null).
    pub(crate) fn objects(&self) -> Vec<serde_json::Map<String, Json>> {
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
pub(crate) enum DbError {
    /// The warehouse refused or failed the statement.
    Failed(String),
    /// The statement was interrupted (Ctrl-C, fail-fast).
    Interrupted,
    /// The statement failed inside an open transaction and took the transaction with it:
    /// what it had staged is gone.
    TransactionLost(String),
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
            DbError::Failed(m) | DbError::TransactionLost(m) => f.write_str(m),
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

pub(crate) type DbResult<T> = Result<T, DbError>;

/// One open warehouse for the length of a run.
pub(crate) trait Warehouse: Send + Sync {
    /// A new connection; each thread of a run holds its own.
    fn session(&self) -> DbResult<Box<dyn Session>>;
    /// Interrupts every statement running on any session (they fail with `Interrupted`).
    fn interrupt(&self);
    /// "DuckDB v1.4.1" or the like.
    fn version(&self) -> DbResult<String>;
    /// Claims the target for a run that will change it: a second run on the same target is
    /// refused with an error naming the holder, until this process ends. (Where opening the
    /// warehouse already claims it, as DuckDB's file lock does, there is nothing to do.)
    fn claim(&self) -> DbResult<()> {
        Ok(())
    }
    /// A run is about to use `connections` sessions at once. An engine inside this process
    /// shares the machine's cores among them rather than giving each statement every core
    /// (DuckDB: measured 25% faster on many small models); a server has cores of its own.
    fn share_cores(&self, _connections: usize) -> DbResult<()> {
        Ok(())
    }
}

/// A data test's query, the most failing rows counted (`limit`), and its `fail_calc` (an
/// aggregate over the rows in place of `count(*)`).
pub(crate) type FailureQuery<'a> = (&'a str, Option<u64>, Option<&'a str>);

/// A connection. Methods that change the warehouse append each statement they execute to
/// `log` (also when it fails), which becomes `target/run/`.
pub(crate) trait Session: Send {
    /// The tables and views in these schemas.
    fn relations(&mut self, schemas: &[String]) -> DbResult<Vec<(Relation, RelKind)>>;
    /// Drops what a run of xform that was killed left behind (a table staged aside for its
    /// tests) anywhere in the warehouse — or, where the warehouse lists one schema at a time,
    /// in `schemas` (the run's) — and returns what it dropped. Called before a run publishes
    /// anything.
    fn drop_leftovers(
        &mut self,
        schemas: &[String],
        log: &mut Vec<String>,
    ) -> DbResult<Vec<Relation>>;
    /// Creates the schemas that do not exist.
    fn create_schemas(&mut self, schemas: &[String], log: &mut Vec<String>) -> DbResult<()>;
    /// Gives each schema's privileges to its grantees (`usage`, `create` on the schema; the
    /// others on its tables and views, those there now and, as default privileges, those
    /// created later), in one transaction. Where the warehouse has no privileges, nothing.
    fn grant_schemas(&mut self, _grants: &[SchemaGrants], _log: &mut Vec<String>) -> DbResult<()> {
        Ok(())
    }
    /// Builds `relation`, replacing `replaces` (what exists under its name now), so that no
    /// other connection sees it before `publish`. An `audited` build is one whose tests will
    /// read it (as `Staged::readable_as`) before `publish`: the adapter chooses how — in the
    /// open transaction, or as a table beside the published relation that `publish` swaps
    /// in. `around`'s `pre` statements run before the build, its `post` statements and grants
    /// on `publish`. On error nothing stays behind and the previous relation is untouched.
    fn stage(
        &mut self,
        relation: &Relation,
        build: Build<'_>,
        replaces: Option<RelKind>,
        audited_around: (bool, &Around),
        log: &mut Vec<String>,
    ) -> DbResult<Staged>;
    /// Commits a staged relation: from now on everyone reads it.
    fn publish(&mut self, staged: Staged, log: &mut Vec<String>) -> DbResult<Staged>;
    /// Drops a staged relation; the previous one stays published. Not interrupted by
    /// `Warehouse::interrupt`: a Ctrl-C finishes the cleanup it started.
    fn discard(&mut self, staged: Staged, log: &mut Vec<String>) -> DbResult<()>;
    /// Runs a query and returns at most `limit` rows.
    fn query(&mut self, sql: &str, limit: usize) -> DbResult<Rows>;
    /// Runs a query and returns all its rows with each column's type (a macro's query, read
    /// as dbt's agate reads it); by default without the types.
    fn query_typed(&mut self, sql: &str) -> DbResult<Rows> {
        self.query(sql, i64::MAX as usize)
    }
    /// Runs a query and hands each row (every value as text) to `row` as it arrives, until
    /// `row` returns false: memory stays flat however many rows there are.
    fn for_each_row(
        &mut self,
        sql: &str,
        row: &mut dyn FnMut(Vec<Option<String>>) -> bool,
    ) -> DbResult<()>;
    /// Runs a statement that returns nothing (`ATTACH`, settings).
    fn execute(&mut self, sql: &str) -> DbResult<()>;
    /// The failures of each query (its rows, capped at its limit, or its `fail_calc`), in
    /// one round trip.
    fn count_failures(&mut self, queries: &[FailureQuery]) -> DbResult<Vec<u64>>;
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
    /// The build records kept in `table`, or None when there is no such table (no run kept
    /// any there, or the warehouse keeps none).
    fn build_records(&mut self, _table: &Relation) -> DbResult<Option<Vec<BuildRecord>>> {
        Ok(None)
    }
    /// Creates `table` (in a schema that exists) to keep build records in.
    fn keep_build_records(&mut self, _table: &Relation, _log: &mut Vec<String>) -> DbResult<()> {
        Err(DbError::Failed(
            "this warehouse has no transactions to keep build records in".into(),
        ))
    }
    /// Records, for each relation, the keys of the tests that passed on it (a JSON list), in
    /// one transaction.
    fn record_tests(
        &mut self,
        _table: &Relation,
        _tests: &[(String, String)],
        _log: &mut Vec<String>,
    ) -> DbResult<()> {
        Ok(())
    }
}

/// A target's connection settings, typed and checked by its adapter.
#[derive(Clone, Debug)]
pub(crate) enum Connection {
    DuckDb(duckdb::Settings),
    Postgres(postgres::Settings),
    Spark(spark::Settings),
}

impl Connection {
    /// The target's settings as its adapter reads them: a wrong or unknown one is a
    /// diagnostic at its line. `root` resolves relative paths.
    pub(crate) fn new(target: &Target, root: &Path, diags: &mut Diagnostics) -> Option<Connection> {
        let before = diags.error_count();
        let c = match target.kind {
            Kind::DuckDb => Connection::DuckDb(duckdb::Settings::new(target, root, diags)),
            Kind::Postgres | Kind::Redshift => {
                Connection::Postgres(postgres::Settings::new(target, root, diags))
            }
            Kind::Spark => Connection::Spark(spark::Settings::new(target, diags)),
        };
        (diags.error_count() == before).then_some(c)
    }

    /// Opens the warehouse.
    pub(crate) fn open(&self) -> DbResult<Arc<dyn Warehouse>> {
        match self {
            Connection::DuckDb(s) => s.open(),
            Connection::Postgres(s) => s.open(),
            Connection::Spark(s) => s.open(),
        }
    }

    /// Where the warehouse lives, for messages (`target/dev.duckdb`, a host).
    pub(crate) fn describe(&self, root: &Path) -> String {
        match self {
            Connection::DuckDb(s) => s.describe(root),
            Connection::Postgres(s) => s.describe(),
            Connection::Spark(s) => s.describe(),
        }
    }

    /// Whether `other` names the same warehouse (one file, one server's database): its
    /// relations are read through this connection as they are.
    pub(crate) fn same_warehouse(&self, other: &Connection) -> bool {
        match (self, other) {
            (Connection::DuckDb(a), Connection::DuckDb(b)) => a.attachable(b).is_none(),
            (Connection::Postgres(a), Connection::Postgres(b)) => {
                (a.flavour, &a.host, a.port, &a.dbname) == (b.flavour, &b.host, b.port, &b.dbname)
            }
            (Connection::Spark(a), Connection::Spark(b)) => (&a.host, a.port) == (&b.host, b.port),
            _ => false,
        }
    }

    /// The database file to attach so that `other`'s relations can be read beside this
    /// one's, when it is another file; None when they are one warehouse, or when this kind of
    /// warehouse cannot read another beside it.
    pub(crate) fn attachable(&self, other: &Connection) -> Option<PathBuf> {
        match (self, other) {
            (Connection::DuckDb(a), Connection::DuckDb(b)) => a.attachable(b),
            _ => None,
        }
    }
}

/// The kind of relation a build makes.
fn kind_built(build: &Build<'_>) -> RelKind {
    match build {
        Build::View(_) => RelKind::View,
        _ => RelKind::Table,
    }
}

/// A setting of a target that is not one of its adapter's: a warning at its line.
fn unknown_settings(target: &Target, known: &[&str], diags: &mut Diagnostics) {
    for key in target
        .settings
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
    {
        diags.push(
            Diagnostic::warning(format!(
                "target `{}`: `{key}` is not a setting of {} targets; it is ignored",
                target.name,
                target.kind.name()
            ))
            .at_opt(target.at(key))
            .help(did_you_mean(key, known.iter().copied()).unwrap_or_else(|| {
                let common = "type, schema, schema_prefix, threads, reuse";
                format!(
                    "{} targets read: {common}, {}",
                    target.kind.name(),
                    known.join(", ")
                )
            })),
        );
    }
}

/// A text setting; anything else is an error at its line.
fn text_setting(target: &Target, key: &str, diags: &mut Diagnostics) -> Option<String> {
    match target.settings.get(key)? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        other => {
            diags.push(
                Diagnostic::error(format!(
                    "target `{}`: `{key}` must be text, found {other}",
                    target.name
                ))
                .at_opt(target.at(key)),
            );
            None
        }
    }
}
