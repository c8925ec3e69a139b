//! The settings of incremental models and snapshots, checked offline (`plan`), and the time
//! batches of a microbatch model.

use jiff::civil::{Date, DateTime};
use jiff::{Timestamp, ToSpan, tz::TimeZone};
use serde_json::Value as Json;

use super::PlanOptions;
use crate::adapter::{
    Index, Layout, SchemaChange, SnapshotColumns, SnapshotSpec, SnapshotStrategy, Strategy,
};
use crate::diagnostics::{Diagnostic, did_you_mean};
use crate::project::Node;
use crate::sql::Replaces;

const STRATEGIES: &[&str] = &[
    "append",
    "merge",
    "delete+insert",
    "insert_overwrite",
    "microbatch",
];

/// Why a warehouse that replaces whole partitions cannot run a strategy that changes rows.
const NEEDS_ROW_UPDATES: &str = "updates rows in place, which on Spark needs a Delta or Iceberg table; xform builds Spark's own tables (parquet by default), whose rows are replaced a partition at a time";
const PARTITION_HELP: &str = "use `incremental_strategy: insert_overwrite` with `partition_by` (the partitions the new rows touch are replaced), or `append`";

/// How an incremental model adds to its table.
#[derive(Clone, Debug)]
pub(crate) struct IncrementalSpec {
    pub(crate) strategy: StrategyKind,
    pub(crate) unique_key: Vec<String>,
    pub(crate) update_columns: Option<Vec<String>>,
    pub(crate) exclude_columns: Vec<String>,
    /// `incremental_predicates` (or `predicates`).
    pub(crate) predicates: Vec<String>,
    pub(crate) on_schema_change: SchemaChange,
    /// What this run asks: a full refresh, a backfill window, its time.
    pub(crate) run: PlanOptions,
}

#[derive(Clone, Debug)]
pub(crate) enum StrategyKind {
    Append,
    Merge,
    DeleteInsert,
    Overwrite,
    Microbatch(Microbatch),
}

impl IncrementalSpec {
    /// The adapter's strategy for one run (a microbatch's batch given as `range`).
    pub(crate) fn strategy<'a>(&'a self, range: Option<&'a (String, String)>) -> Strategy<'a> {
        match (&self.strategy, range) {
            (StrategyKind::Microbatch(mb), Some((start, end))) => Strategy::Range {
                column: &mb.event_time,
                start,
                end,
            },
            (StrategyKind::Merge, _) => Strategy::Merge {
                key: &self.unique_key,
                update: self.update_columns.as_deref(),
                exclude: &self.exclude_columns,
                predicates: &self.predicates,
            },
            (StrategyKind::DeleteInsert, _) => Strategy::DeleteInsert {
                key: &self.unique_key,
                predicates: &self.predicates,
            },
            (StrategyKind::Overwrite, _) => Strategy::Overwrite,
            _ => Strategy::Append,
        }
    }
}

/// A time-sliced incremental model: each batch replaces exactly its interval of `event_time`.
#[derive(Clone, Debug)]
pub(crate) struct Microbatch {
    pub(crate) event_time: String,
    pub(crate) batch_size: BatchSize,
    /// Where the first (full) build starts.
    pub(crate) begin: DateTime,
    /// How many batches before the current one a normal run rebuilds.
    pub(crate) lookback: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BatchSize {
    Hour,
    Day,
    Month,
    Year,
}

impl BatchSize {
    fn parse(s: &str) -> Option<BatchSize> {
        Some(match s {
            "hour" => BatchSize::Hour,
            "day" => BatchSize::Day,
            "month" => BatchSize::Month,
            "year" => BatchSize::Year,
            _ => return None,
        })
    }

    /// The start of the batch holding `t`.
    pub(crate) fn floor(self, t: DateTime) -> DateTime {
        let d = t.date();
        match self {
            BatchSize::Hour => d.at(t.hour(), 0, 0, 0),
            BatchSize::Day => d.at(0, 0, 0, 0),
            BatchSize::Month => d.first_of_month().at(0, 0, 0, 0),
            BatchSize::Year => d.first_of_year().at(0, 0, 0, 0),
        }
    }

    fn step(self, t: DateTime, n: i64) -> DateTime {
        let span = match self {
            BatchSize::Hour => n.hours(),
            BatchSize::Day => n.days(),
            BatchSize::Month => n.months(),
            BatchSize::Year => n.years(),
        };
        t.checked_add(span).unwrap_or(t)
    }
}

/// `YYYY-MM-DD HH:MM:SS`, as the adapter's timestamp literals take it.
pub(crate) fn timestamp_text(t: DateTime) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// A `--start`/`--end` or `begin` value: a date or a date and time.
pub(crate) fn parse_time(s: &str) -> Option<DateTime> {
    let s = s.trim();
    s.parse::<DateTime>()
        .ok()
        .or_else(|| s.replace(' ', "T").parse::<DateTime>().ok())
        .or_else(|| s.parse::<Date>().ok().map(|d| d.at(0, 0, 0, 0)))
}

/// Now, in UTC, as a civil time.
pub(crate) fn now_utc() -> DateTime {
    Timestamp::now().to_zoned(TimeZone::UTC).datetime()
}

impl Microbatch {
    /// The batches of a run: those covering `window` (a backfill), else the current batch and
    /// `lookback` before it.
    pub(crate) fn batches(
        &self,
        window: Option<(DateTime, DateTime)>,
        now: DateTime,
    ) -> Vec<(String, String)> {
        let size = self.batch_size;
        let (from, to) = self.span(window, now);
        let mut out = Vec::new();
        let mut t = from;
        while t < to && out.len() < 100_000 {
            let next = size.step(t, 1);
            out.push((timestamp_text(t), timestamp_text(next)));
            t = next;
        }
        out
    }

    /// Where a run's batches start and end: the window's whole batches, else the current
    /// batch and `lookback` before it.
    fn span(&self, window: Option<(DateTime, DateTime)>, now: DateTime) -> (DateTime, DateTime) {
        let size = self.batch_size;
        match window {
            Some((start, end)) => (size.floor(start), end),
            None => {
                let current = size.floor(now);
                (size.step(current, -self.lookback), size.step(current, 1))
            }
        }
    }

    /// The interval a full build covers: from `begin` to the end of the current batch (or of
    /// the window).
    pub(crate) fn full_range(
        &self,
        window: Option<(DateTime, DateTime)>,
        now: DateTime,
    ) -> (String, String) {
        let end = match window {
            Some((_, end)) => end,
            None => self.batch_size.step(self.batch_size.floor(now), 1),
        };
        (timestamp_text(self.begin), timestamp_text(end))
    }
}

/// Collects a node's setting problems as diagnostics at the setting's line.
struct Checker<'a> {
    node: &'a Node,
    errors: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    fn new(node: &'a Node) -> Checker<'a> {
        Checker {
            node,
            errors: Vec::new(),
        }
    }

    fn bad(&mut self, key: &str, problem: String, help: Option<String>) {
        let d = Diagnostic::error(format!(
            "{} `{}`: {problem}",
            self.node.kind.name(),
            self.node.name
        ))
        .at(self.at(key))
        .help_opt(help);
        self.errors.push(d);
    }

    /// Where the node got setting `key`, else where it is declared, else its file.
    fn at(&self, key: &str) -> crate::diagnostics::Loc {
        let n = self.node;
        n.config
            .at(key)
            .cloned()
            .or_else(|| n.at.clone())
            .unwrap_or_else(|| crate::diagnostics::Loc::new(&n.path, 0..0))
    }

    fn text(&mut self, key: &str) -> Option<String> {
        match self.node.config.get(key) {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(other) => {
                self.bad(
                    key,
                    format!("`{key}` must be a string, found {other}"),
                    None,
                );
                None
            }
        }
    }

    /// `true` or `false`, when set.
    fn flag(&mut self, key: &str) -> Option<bool> {
        match self.node.config.get(key) {
            None | Some(Json::Null) => None,
            Some(Json::Bool(b)) => Some(*b),
            Some(other) => {
                let problem = format!("`{key}` must be true or false, found {other}");
                self.bad(key, problem, None);
                None
            }
        }
    }

    /// A column name or a list of them.
    fn columns(&mut self, key: &str) -> Option<Vec<String>> {
        match self.node.config.columns(key) {
            Ok(columns) => columns,
            Err(other) => {
                self.bad(
                    key,
                    format!("`{key}` must be a column name or a list of them, found {other}"),
                    None,
                );
                None
            }
        }
    }

    /// SQL conditions: one, or a list of them.
    fn conditions(&mut self, key: &str) -> Option<Vec<String>> {
        match self.node.config.columns(key) {
            Ok(conditions) => conditions,
            Err(other) => {
                self.bad(
                    key,
                    format!("`{key}` must be a SQL condition or a list of them, found {other}"),
                    Some("e.g. [\"DBT_INTERNAL_DEST.day > current_date - 7\"]".into()),
                );
                None
            }
        }
    }

    fn one_of(&mut self, key: &str, allowed: &[&str]) -> Option<String> {
        let v = self.text(key)?;
        if allowed.contains(&v.as_str()) {
            return Some(v);
        }
        let help = did_you_mean(&v, allowed.iter().copied())
            .unwrap_or_else(|| format!("use one of: {}", allowed.join(", ")));
        self.bad(
            key,
            format!("`{key}: {v}` is not one of xform's"),
            Some(help),
        );
        None
    }

    fn done<T>(self, value: T) -> Result<T, Vec<Diagnostic>> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.errors)
        }
    }
}

/// A table's or view's physical layout (`dist`, `sort`, `sort_type`, `backup`, `bind`), read
/// where the target's warehouse has one (a key it lacks was warned of at compile time).
pub(crate) fn layout(n: &Node, keys: &[&str]) -> Result<Layout, Vec<Diagnostic>> {
    let mut ck = Checker::new(n);
    // Only the keys the warehouse applies: another's (`dist` on PostgreSQL, `indexes` on
    // Redshift) were warned of, and are left out of what is built.
    let applies = |key: &str| keys.contains(&key);
    let defaults = Layout::default();
    let layout = Layout {
        dist: applies("dist").then(|| ck.text("dist")).flatten(),
        sort: match applies("sort") {
            true => ck.columns("sort").unwrap_or_default(),
            false => Vec::new(),
        },
        sort_type: applies("sort_type")
            .then(|| ck.one_of("sort_type", &["compound", "interleaved"]))
            .flatten(),
        backup: applies("backup")
            .then(|| ck.flag("backup"))
            .flatten()
            .unwrap_or(defaults.backup),
        bind: applies("bind")
            .then(|| ck.flag("bind"))
            .flatten()
            .unwrap_or(defaults.bind),
        indexes: match applies("indexes") {
            true => indexes(&mut ck),
            false => Vec::new(),
        },
        partition_by: match applies("partition_by") {
            true => ck.columns("partition_by").unwrap_or_default(),
            false => Vec::new(),
        },
        file_format: applies("file_format")
            .then(|| ck.one_of("file_format", FILE_FORMATS))
            .flatten(),
    };
    ck.done(layout)
}

/// Spark's table formats (`USING …`); Delta, Iceberg and Hudi where the cluster has them.
const FILE_FORMATS: &[&str] = &[
    "parquet", "orc", "csv", "json", "avro", "text", "delta", "iceberg", "hudi",
];

/// `indexes: [{columns: [a, b], unique: true, type: btree}]`, as dbt-postgres reads it.
fn indexes(ck: &mut Checker) -> Vec<Index> {
    let Some(value) = ck.node.config.get("indexes") else {
        return Vec::new();
    };
    let one = |v: &Json| -> Option<Index> {
        let columns = match v.get("columns")? {
            Json::String(c) => vec![c.clone()],
            Json::Array(cs) => cs
                .iter()
                .map(|c| c.as_str().map(str::to_string))
                .collect::<Option<_>>()?,
            _ => return None,
        };
        let unique = match v.get("unique") {
            None | Some(Json::Null) => false,
            Some(u) => u.as_bool()?,
        };
        let method = match v.get("type") {
            None | Some(Json::Null) => None,
            // An access method's name goes into the statement as it is: a word, nothing else.
            Some(t) => Some(
                t.as_str()
                    .filter(|m| {
                        !m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })?
                    .to_string(),
            ),
        };
        (!columns.is_empty()).then_some(Index {
            columns,
            unique,
            method,
        })
    };
    let parsed = value
        .as_array()
        .and_then(|all| all.iter().map(one).collect::<Option<Vec<_>>>());
    parsed.unwrap_or_else(|| {
        let problem = format!("`indexes` must be a list of `{{columns: [...], unique: true|false, type: ...}}`, found {value}");
        ck.bad("indexes", problem, Some("for example `indexes: [{columns: ['id'], unique: true}]`".into()));
        Vec::new()
    })
}

/// An incremental model's settings: `incremental_strategy` (default `merge` with a
/// `unique_key`, else `append`), `unique_key`, `merge_update_columns` /
/// `merge_exclude_columns`, `on_schema_change`, and a microbatch's `event_time`, `batch_size`,
/// `begin`, `lookback`.
pub(crate) fn incremental_spec(
    n: &Node,
    run: PlanOptions,
    replaces: Replaces,
) -> Result<IncrementalSpec, Vec<Diagnostic>> {
    let mut ck = Checker::new(n);
    let unique_key = ck.columns("unique_key").unwrap_or_default();
    let strategy = ck.one_of("incremental_strategy", STRATEGIES);
    let strategy = strategy.as_deref().unwrap_or(if unique_key.is_empty() {
        "append"
    } else {
        "merge"
    });
    let on_schema_change = ck
        .one_of("on_schema_change", SchemaChange::NAMES)
        .and_then(|s| SchemaChange::parse(&s))
        .unwrap_or(SchemaChange::Ignore);
    let (update_columns, exclude_columns) = merge_columns(&mut ck);
    let predicates = ["incremental_predicates", "predicates"]
        .iter()
        .find_map(|k| ck.conditions(k))
        .unwrap_or_default();
    let kind = match replaceable(&mut ck, strategy, replaces) {
        true => strategy_kind(&mut ck, strategy, &unique_key),
        false => StrategyKind::Append,
    };
    // dbt's `full_refresh`: `false` keeps a table that is costly to rebuild out of
    // `--full-refresh`; `true` rebuilds it every run.
    let run = PlanOptions {
        full_refresh: ck.flag("full_refresh").unwrap_or(run.full_refresh),
        ..run
    };
    ck.done(IncrementalSpec {
        strategy: kind,
        unique_key,
        update_columns,
        exclude_columns,
        predicates,
        on_schema_change,
        run,
    })
}

/// `merge_update_columns` and `merge_exclude_columns`, of which at most one may be set.
fn merge_columns(ck: &mut Checker<'_>) -> (Option<Vec<String>>, Vec<String>) {
    // An empty list is no list, as in dbt: every column is updated.
    let update_columns = ck.columns("merge_update_columns").filter(|c| !c.is_empty());
    let exclude_columns = ck.columns("merge_exclude_columns").unwrap_or_default();
    if update_columns.is_some() && !exclude_columns.is_empty() {
        ck.bad(
            "merge_exclude_columns",
            "set `merge_update_columns` or `merge_exclude_columns`, not both".into(),
            None,
        );
    }
    (update_columns, exclude_columns)
}

/// Whether the warehouse can run `strategy` the way it replaces rows; if not, an error at
/// the setting.
fn replaceable(ck: &mut Checker<'_>, strategy: &str, replaces: Replaces) -> bool {
    let mut partitioned = || !ck.columns("partition_by").unwrap_or_default().is_empty();
    let problem = match (replaces, strategy) {
        (Replaces::Rows, "insert_overwrite") => (
            "the `insert_overwrite` strategy replaces whole partitions, which this target's warehouse does not have; it replaces rows".to_string(),
            "use `delete+insert` with a `unique_key`, or `microbatch`",
        ),
        (Replaces::Partitions, "merge" | "delete+insert") => (
            format!("the `{strategy}` strategy {NEEDS_ROW_UPDATES}"),
            PARTITION_HELP,
        ),
        (Replaces::Partitions, "microbatch") if !partitioned() => (
            "a microbatch on Spark overwrites the partitions its batch touches, so it needs `partition_by`".to_string(),
            "e.g. partition_by='dt', with dt the day of `event_time` and batch_size='day'",
        ),
        _ => return true,
    };
    ck.bad("incremental_strategy", problem.0, Some(problem.1.into()));
    false
}

/// The named strategy, checked against what it needs (append when it cannot be had).
fn strategy_kind(ck: &mut Checker<'_>, strategy: &str, unique_key: &[String]) -> StrategyKind {
    match strategy {
        "merge" | "delete+insert" if unique_key.is_empty() => {
            ck.bad(
                "incremental_strategy",
                format!("the `{strategy}` strategy needs a `unique_key`"),
                Some("e.g. config(unique_key='order_id') or unique_key=['day', 'shop_id']".into()),
            );
            StrategyKind::Append
        }
        "merge" => StrategyKind::Merge,
        "delete+insert" => StrategyKind::DeleteInsert,
        "insert_overwrite" => StrategyKind::Overwrite,
        "microbatch" => microbatch(ck).map_or(StrategyKind::Append, StrategyKind::Microbatch),
        _ => StrategyKind::Append,
    }
}

fn microbatch(ck: &mut Checker<'_>) -> Option<Microbatch> {
    let needs = "a microbatch model needs `event_time`, `batch_size` and `begin`";
    let example = "e.g. config(incremental_strategy='microbatch', event_time='ordered_at', batch_size='day', begin='2024-01-01')";
    let event_time = ck.text("event_time");
    let batch_size = ck.one_of("batch_size", &["hour", "day", "month", "year"]);
    let begin = begin(ck);
    let lookback = lookback(ck);
    match (event_time, batch_size, begin) {
        (Some(event_time), Some(size), Some(begin)) => Some(Microbatch {
            event_time,
            batch_size: BatchSize::parse(&size)?,
            begin,
            lookback,
        }),
        _ => {
            if ck.errors.is_empty() {
                ck.bad("incremental_strategy", needs.into(), Some(example.into()));
            }
            None
        }
    }
}

/// A microbatch's `begin`, a date or a date and time.
fn begin(ck: &mut Checker<'_>) -> Option<DateTime> {
    let begin_text = ck.text("begin");
    begin_text.as_deref().and_then(|b| {
        let t = parse_time(b);
        if t.is_none() {
            ck.bad(
                "begin",
                format!("`begin: {b}` is not a date or a date and time"),
                Some("write it as 2024-01-01 or 2024-01-01 00:00:00".into()),
            );
        }
        t
    })
}

/// A microbatch's `lookback`, 1 when unset.
fn lookback(ck: &mut Checker<'_>) -> i64 {
    match ck.node.config.get("lookback") {
        None | Some(Json::Null) => 1,
        Some(v) => match v.as_i64().filter(|n| *n >= 0) {
            Some(n) => n,
            None => {
                ck.bad(
                    "lookback",
                    format!("`lookback` must be a whole number ≥ 0, found {v}"),
                    None,
                );
                1
            }
        },
    }
}

/// A snapshot's settings: `unique_key`, `strategy` (timestamp with `updated_at`, or check
/// with `check_cols`), `invalidate_hard_deletes` / `hard_deletes`, and
/// `snapshot_meta_column_names`.
pub(crate) fn snapshot_spec(
    n: &Node,
    sql: &str,
    now: DateTime,
    replaces: Replaces,
) -> Result<SnapshotSpec, Vec<Diagnostic>> {
    let mut ck = Checker::new(n);
    if replaces == Replaces::Partitions {
        let problem = format!("a snapshot {NEEDS_ROW_UPDATES}");
        let help = "build it on a DuckDB or PostgreSQL target, or keep history with an `append` incremental model";
        ck.bad("materialized", problem, Some(help.into()));
        return Err(ck.errors);
    }
    let unique_key = ck.columns("unique_key").unwrap_or_default();
    if unique_key.is_empty() {
        ck.bad(
            "unique_key",
            "a snapshot needs a `unique_key`".into(),
            Some("e.g. config(unique_key='customer_id', strategy='timestamp', updated_at='updated_at')".into()),
        );
    }
    let strategy = snapshot_strategy(&mut ck);
    let invalidate = invalidates_hard_deletes(&mut ck);
    // When the names are not a mapping, `done` returns that error and the columns are unused.
    let meta = meta_columns(&mut ck);
    ck.done(SnapshotSpec {
        sql: sql.to_string(),
        unique_key,
        strategy,
        invalidate_hard_deletes: invalidate,
        meta,
        now: timestamp_text(now),
    })
}

/// A snapshot's `strategy`: check or timestamp, each with the setting it needs.
fn snapshot_strategy(ck: &mut Checker<'_>) -> SnapshotStrategy {
    match ck.one_of("strategy", &["timestamp", "check"]).as_deref() {
        Some("check") => check_strategy(ck),
        Some(_) => timestamp_strategy(ck),
        None => {
            if ck.errors.is_empty() {
                ck.bad(
                    "strategy",
                    "a snapshot needs a `strategy`: timestamp (with `updated_at`) or check (with `check_cols`)".into(),
                    None,
                );
            }
            SnapshotStrategy::Check { columns: None }
        }
    }
}

/// The check strategy with its `check_cols`: a list of columns, or 'all' (`None`).
fn check_strategy(ck: &mut Checker<'_>) -> SnapshotStrategy {
    let n = ck.node;
    let columns = match n.config.get("check_cols") {
        Some(Json::String(s)) if s == "all" => None,
        _ => ck.columns("check_cols"),
    };
    if n.config.get("check_cols").is_none() {
        ck.bad(
            "strategy",
            "the check strategy needs `check_cols` (a list of columns, or 'all')".into(),
            None,
        );
    } else if columns.as_ref().is_some_and(Vec::is_empty) {
        ck.bad(
            "check_cols",
            "`check_cols` names no column".into(),
            Some("list the columns whose change makes a new version, or 'all'".into()),
        );
    }
    SnapshotStrategy::Check { columns }
}

/// The timestamp strategy with its `updated_at` column.
fn timestamp_strategy(ck: &mut Checker<'_>) -> SnapshotStrategy {
    match ck.text("updated_at") {
        Some(updated_at) => SnapshotStrategy::Timestamp { updated_at },
        None => {
            ck.bad(
                "strategy",
                "the timestamp strategy needs `updated_at`, the column that moves when a row changes".into(),
                None,
            );
            SnapshotStrategy::Check { columns: None }
        }
    }
}

/// `invalidate_hard_deletes: true` or `hard_deletes: invalidate`.
fn invalidates_hard_deletes(ck: &mut Checker<'_>) -> bool {
    let hard = ck.one_of("hard_deletes", &["ignore", "invalidate"]);
    ck.node
        .config
        .get("invalidate_hard_deletes")
        .and_then(Json::as_bool)
        == Some(true)
        || hard.as_deref() == Some("invalidate")
}

/// The snapshot's own columns, renamed by `snapshot_meta_column_names`.
fn meta_columns(ck: &mut Checker<'_>) -> SnapshotColumns {
    let mut meta = SnapshotColumns::default();
    let Some(names) = ck.node.config.get("snapshot_meta_column_names") else {
        return meta;
    };
    let Some(map) = names.as_object() else {
        ck.bad(
            "snapshot_meta_column_names",
            "`snapshot_meta_column_names` must be a mapping, e.g. {dbt_valid_from: valid_from}"
                .into(),
            None,
        );
        return meta;
    };
    for (k, v) in map {
        rename_meta_column(ck, &mut meta, k, v);
    }
    meta
}

/// Renames the snapshot column `k` to `v`, or says why not.
fn rename_meta_column(ck: &mut Checker<'_>, meta: &mut SnapshotColumns, k: &str, v: &Json) {
    let Some(slot) = meta_slot(meta, k) else {
        ck.bad(
            "snapshot_meta_column_names",
            format!("`{k}` is not a snapshot column xform writes"),
            Some("rename dbt_scd_id, dbt_updated_at, dbt_valid_from or dbt_valid_to".into()),
        );
        return;
    };
    match v.as_str() {
        Some(s) => *slot = s.to_string(),
        None => ck.bad(
            "snapshot_meta_column_names",
            format!("the new name of `{k}` must be a string"),
            None,
        ),
    }
}

/// The name of the snapshot column dbt calls `dbt_name`.
fn meta_slot<'m>(meta: &'m mut SnapshotColumns, dbt_name: &str) -> Option<&'m mut String> {
    match dbt_name {
        "dbt_scd_id" => Some(&mut meta.scd_id),
        "dbt_updated_at" => Some(&mut meta.updated_at),
        "dbt_valid_from" => Some(&mut meta.valid_from),
        "dbt_valid_to" => Some(&mut meta.valid_to),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime {
        parse_time(s).unwrap()
    }

    #[test]
    fn a_window_becomes_whole_batches() {
        let mb = Microbatch {
            event_time: "ts".into(),
            batch_size: BatchSize::Day,
            begin: t("2024-01-01"),
            lookback: 1,
        };
        let b = mb.batches(
            Some((t("2024-01-30 12:00"), t("2024-02-02"))),
            t("2025-01-01"),
        );
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].0, "2024-01-30 00:00:00");
        assert_eq!(b[2].1, "2024-02-02 00:00:00");
        let normal = mb.batches(None, t("2024-03-05 10:30"));
        assert_eq!(
            normal,
            vec![
                (
                    "2024-03-04 00:00:00".to_string(),
                    "2024-03-05 00:00:00".to_string()
                ),
                (
                    "2024-03-05 00:00:00".to_string(),
                    "2024-03-06 00:00:00".to_string()
                )
            ]
        );
    }

    #[test]
    fn months_and_hours_step_by_the_calendar() {
        assert_eq!(
            BatchSize::Month.floor(t("2024-02-29 13:00")),
            t("2024-02-01")
        );
        assert_eq!(BatchSize::Month.step(t("2024-01-31"), 1), t("2024-02-29"));
        assert_eq!(
            BatchSize::Hour.floor(t("2024-02-29 13:59:59")),
            t("2024-02-29 13:00")
        );
    }
}
