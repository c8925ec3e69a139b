//! Spark's engine (see the module doc of `adapter::spark` for how it keeps xform's guarantees).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field, Schema};

use super::Settings;
use super::client::Client;
use crate::adapter::statements::{self, Statements, limited};
use crate::adapter::{
    Around, Build, CsvSource, DbError, DbResult, Increment, Layout, RelKind, Relation, Rows,
    Session, Staged, Strategy, Warehouse, kind_built, seed,
};
use crate::sql::{Dialect, Kind};

fn dialect() -> &'static dyn Dialect {
    Kind::Spark.dialect()
}

fn rel(r: &Relation) -> String {
    dialect().relation(r)
}

fn lit(s: &str) -> String {
    dialect().literal(&serde_json::Value::from(s))
}

/// Where a table's versions are told apart from the name they are published under.
const VERSION: &str = "__xform_t";
/// The table property marking a version a flip replaced, kept for the queries reading it.
const RETIRED: &str = "xform_retired";
/// Rows of a seed sent in one Arrow batch.
const SEED_BATCH: usize = 50_000;

/// What every session of one run shares.
struct Shared {
    settings: Settings,
    /// Each open session's id, for `interrupt`.
    sessions: Mutex<Vec<String>>,
    /// Sessions dropping what they staged, which an interrupt leaves to finish.
    cleaning: Mutex<Vec<String>>,
    interrupted: AtomicBool,
    /// Names this run's table versions apart from earlier runs' (its start, base 36).
    run: String,
    versions: AtomicU32,
    /// The version each published table reads (its view's name → the version), as found when
    /// the run began and as this run flips them.
    live: Mutex<HashMap<Relation, Relation>>,
    /// The version each published table read before its last flip, kept (marked retired) so a
    /// query that started on it finishes; the relation's next publish drops it.
    kept: Mutex<HashMap<Relation, Relation>>,
}

pub(crate) struct Spark(Arc<Shared>);

impl Spark {
    pub(crate) fn open(settings: &Settings) -> DbResult<Spark> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Ok(Spark(Arc::new(Shared {
            settings: settings.clone(),
            sessions: Mutex::default(),
            cleaning: Mutex::default(),
            interrupted: AtomicBool::new(false),
            run: base36(millis),
            versions: AtomicU32::new(0),
            live: Mutex::default(),
            kept: Mutex::default(),
        })))
    }
}

fn base36(mut n: u64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 || out.is_empty() {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A random UUID (version 4), as Spark Connect wants its session ids.
fn uuid() -> String {
    let a = RandomState::new().hash_one(std::process::id());
    let b = RandomState::new().hash_one(std::time::Instant::now());
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

impl Warehouse for Spark {
    fn session(&self) -> DbResult<Box<dyn Session>> {
        let mut client = Client::connect(&self.0.settings, uuid())?;
        // Writing a partitioned table replaces the partitions written, not the whole table.
        client.sql(
            "SET spark.sql.sources.partitionOverwriteMode=dynamic",
            &mut |_| true,
        )?;
        (self
            .0
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
        .push(client.session_id().to_string());
        Ok(Box::new(SparkSession {
            client,
            shared: self.0.clone(),
            pending: HashMap::new(),
        }))
    }

    fn interrupt(&self) {
        self.0.interrupted.store(true, Ordering::SeqCst);
        let sessions = self
            .0
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let cleaning = self
            .0
            .cleaning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for id in sessions.iter().filter(|id| !cleaning.contains(id)) {
            let _ = Client::interrupt(&self.0.settings, id);
        }
    }

    fn version(&self) -> DbResult<String> {
        let mut s = self.session()?;
        let rows = s.query("SELECT version()", 1)?;
        let v = rows.rows.first().and_then(|r| r.first().cloned().flatten());
        let v = v.unwrap_or_default();
        Ok(format!(
            "Spark {}",
            v.split_whitespace().next().unwrap_or("?")
        ))
    }
}

/// What `publish` does with a staged relation.
enum Pending {
    /// Flip the published view to this version.
    Flip(Relation),
    /// Add the staged new rows to the table the published view reads.
    Increment {
        statement: String,
        /// The staged new rows and the view the tests read.
        staged: [Relation; 2],
        /// Columns were added: the published view is made again to show them.
        widened: Option<Relation>,
    },
}

struct SparkSession {
    client: Client,
    shared: Arc<Shared>,
    pending: HashMap<Relation, Pending>,
}

impl Drop for SparkSession {
    fn drop(&mut self) {
        self.client.release();
        let mut sessions = (self.shared.sessions.lock()).unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|s| s != self.client.session_id());
    }
}

/// Each value of a batch's rows as text (timestamps as `YYYY-MM-DD HH:MM:SS`), NULL as None.
fn text_rows(
    batch: &RecordBatch,
    each: &mut dyn FnMut(Vec<Option<String>>) -> bool,
) -> DbResult<bool> {
    let options = FormatOptions::default()
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f"));
    let columns = batch.columns();
    let formatters = columns
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DbError::Failed(format!("a value from Spark cannot be shown: {e}")))?;
    for row in 0..batch.num_rows() {
        let values = columns
            .iter()
            .zip(&formatters)
            .map(|(c, f)| (!c.is_null(row)).then(|| f.value(row).to_string()))
            .collect();
        if !each(values) {
            return Ok(false);
        }
    }
    Ok(true)
}

impl SparkSession {
    /// Runs a statement, appending it to `log`.
    fn run(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<()> {
        log.push(sql.to_string());
        self.sql(sql, &mut |_| true)
    }

    /// Runs each statement (the first error is returned once all ran), left to finish by an
    /// interrupt: a Ctrl-C finishes the cleanup it started.
    fn clean_up(&mut self, statements: &[String], log: &mut Vec<String>) -> DbResult<()> {
        let id = self.client.session_id().to_string();
        (self
            .shared
            .cleaning
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
        .push(id.clone());
        let results: Vec<DbResult<()>> = statements.iter().map(|s| self.run(s, log)).collect();
        (self
            .shared
            .cleaning
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
        .retain(|c| *c != id);
        results.into_iter().collect()
    }

    fn run_all(&mut self, statements: &[String], log: &mut Vec<String>) -> DbResult<()> {
        statements.iter().try_for_each(|s| self.run(s, log))
    }

    fn sql(&mut self, sql: &str, each: &mut dyn FnMut(RecordBatch) -> bool) -> DbResult<()> {
        let done = self.client.sql(sql, each);
        match done {
            Err(_) if self.shared.interrupted.load(Ordering::SeqCst) => Err(DbError::Interrupted),
            other => other,
        }
    }

    /// A query's rows as text, at most `limit`, with their column names and types.
    fn fetch(&mut self, sql: &str, limit: usize) -> DbResult<Rows> {
        let mut out = Rows::default();
        let mut failed = None;
        self.sql(sql, &mut |batch| {
            if out.columns.is_empty() {
                let schema = batch.schema();
                out.columns = schema.fields().iter().map(|f| f.name().clone()).collect();
                out.types = schema
                    .fields()
                    .iter()
                    .map(|f| f.data_type().to_string())
                    .collect();
            }
            let rows = &mut out.rows;
            let kept = text_rows(&batch, &mut |r| {
                if rows.len() < limit {
                    rows.push(r);
                }
                rows.len() < limit
            });
            kept.unwrap_or_else(|e| {
                failed = Some(e);
                false
            })
        })?;
        failed.map_or(Ok(out), Err)
    }

    /// The first column of each row.
    fn names(&mut self, sql: &str, column: usize) -> DbResult<Vec<String>> {
        let rows = self.fetch(sql, usize::MAX)?.rows;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().nth(column).flatten())
            .collect())
    }

    /// A new name for a version of `relation`'s table.
    fn new_version(&self, relation: &Relation) -> Relation {
        let n = self.shared.versions.fetch_add(1, Ordering::SeqCst);
        let name = format!("{}{VERSION}{}_{n}", relation.name, self.shared.run);
        Relation {
            name,
            ..relation.clone()
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<Relation, Relation>> {
        self.shared
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<Relation, Relation>> {
        self.shared
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The version the published view `relation` reads: known from the start of the run, or
    /// read from the view's own text (`SELECT * FROM `s`.`name__xform_t…``), which changes
    /// with the flip itself.
    fn version_of(&mut self, relation: &Relation) -> DbResult<Option<Relation>> {
        if let Some(v) = self.live().get(relation) {
            return Ok(Some(v.clone()));
        }
        let sql = format!("DESCRIBE TABLE EXTENDED {}", rel(relation));
        let rows = self.fetch(&sql, usize::MAX)?.rows;
        let text = rows.into_iter().find_map(|r| match &r[..] {
            [Some(k), Some(v), ..] if k == "View Text" => Some(v.clone()),
            _ => None,
        });
        Ok(text.and_then(|t| version_read(relation, &t)))
    }

    /// `CREATE TABLE … USING … [PARTITIONED BY …] AS sql`.
    fn create_table_as(
        &mut self,
        table: &Relation,
        layout: &Layout,
        sql: &str,
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let format = layout.file_format.as_deref().unwrap_or("parquet");
        let partitions = match layout.partition_by.is_empty() {
            true => String::new(),
            false => {
                let cols: Vec<&str> = layout.partition_by.iter().map(String::as_str).collect();
                format!(" PARTITIONED BY ({})", dialect().quoted_list(&cols))
            }
        };
        let create = format!(
            "CREATE TABLE {} USING {format}{partitions} AS\n{}",
            rel(table),
            statements::body(sql)
        );
        self.run(&create, log)
    }

    /// Publishes `version` under `relation`: one catalog update.
    fn flip(
        &mut self,
        (relation, now): (&Relation, Option<RelKind>),
        version: &Relation,
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let select = format!("SELECT * FROM {}", rel(version));
        self.define_view((relation, now), &select, log)
    }

    /// Makes `relation` the view of `select`. A view that is there already is altered:
    /// `ALTER VIEW … AS` is one update of its catalog entry, while Spark's `CREATE OR REPLACE
    /// VIEW` drops the view and creates it again, and a reader in between finds nothing.
    fn define_view(
        &mut self,
        (relation, now): (&Relation, Option<RelKind>),
        select: &str,
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let verb = match now {
            Some(RelKind::View) => "ALTER VIEW",
            _ => "CREATE VIEW",
        };
        self.run(&format!("{verb} {} AS\n{select}", rel(relation)), log)
    }

    /// What holds `relation` once `free_name` made room: a view (a plain one, or xform's over a
    /// version, which is listed as a table), or nothing.
    fn kept_kind(
        &mut self,
        relation: &Relation,
        replaces: Option<RelKind>,
    ) -> DbResult<Option<RelKind>> {
        let view = match replaces {
            Some(RelKind::View) => true,
            Some(RelKind::Table) => self.version_of(relation)?.is_some(),
            None => false,
        };
        Ok(view.then_some(RelKind::View))
    }

    /// Makes room for a view under a name a table (not xform's) holds now: Spark cannot
    /// replace a table by a view in one step, so for a moment the name is free. A table xform
    /// published is a view already.
    fn free_name(
        &mut self,
        relation: &Relation,
        replaces: Option<RelKind>,
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        if replaces != Some(RelKind::Table) || self.version_of(relation)?.is_some() {
            return Ok(());
        }
        self.run(&format!("DROP TABLE IF EXISTS {}", rel(relation)), log)
    }

    /// Keeps the version `relation` read before, now that it reads another (or is a plain
    /// view): marked retired, it stays until the relation's next publish, so a query that
    /// started on it before the flip finishes. The version kept from the publish before goes.
    fn retire_previous(
        &mut self,
        relation: &Relation,
        now: Option<&Relation>,
        log: &mut Vec<String>,
    ) {
        let before = match now {
            Some(v) => self.live().insert(relation.clone(), v.clone()),
            None => self.live().remove(relation),
        };
        let mut gone: Vec<Relation> = self.kept().remove(relation).into_iter().collect();
        if let Some(old) = before.filter(|old| Some(old) != now) {
            let mark = format!(
                "ALTER TABLE {} SET TBLPROPERTIES ('{RETIRED}' = 'true')",
                rel(&old)
            );
            match self.clean_up(&[mark], log) {
                Ok(()) => drop(self.kept().insert(relation.clone(), old)),
                Err(_) => gone.push(old),
            }
        }
        let drops: Vec<String> = gone
            .iter()
            .map(|v| format!("DROP TABLE IF EXISTS {}", rel(v)))
            .collect();
        // Left behind if this fails; the next run drops it.
        let _ = self.clean_up(&drops, log);
    }
}

impl SparkSession {
    /// Builds what `build` says; returns what tests read and what `publish` does.
    fn build(
        &mut self,
        relation: &Relation,
        build: Build<'_>,
        replaces: Option<RelKind>,
        layout: &Layout,
        log: &mut Vec<String>,
    ) -> DbResult<(Relation, Option<Pending>)> {
        match build {
            Build::View(sql) => {
                let pending = self.stage_view(relation, sql, replaces, log)?;
                Ok((relation.clone(), pending))
            }
            Build::Table(sql) => self.stage_table(relation, sql, layout, log),
            Build::Seed(csv) => self.stage_seed(relation, csv, layout, log),
            Build::Increment(inc) => self.stage_increment(relation, &inc, layout, log),
            Build::Snapshot(_) => Err(DbError::Failed(
                "snapshots need a Delta or Iceberg table on Spark".into(),
            )),
        }
    }

    /// Flips the published view to `version` and drops the one before; on failure the new
    /// version is dropped and the previous one stays published.
    fn publish_version(
        &mut self,
        relation: &Relation,
        version: &Relation,
        replaces: Option<RelKind>,
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let now = self.kept_kind(relation, replaces)?;
        let flipped = self
            .free_name(relation, replaces, log)
            .and_then(|()| self.flip((relation, now), version, log));
        match flipped {
            Ok(()) => {
                self.retire_previous(relation, Some(version), log);
                Ok(())
            }
            Err(e) => {
                let _ = self.clean_up(&[format!("DROP TABLE IF EXISTS {}", rel(version))], log);
                Err(e)
            }
        }
    }

    fn stage_view(
        &mut self,
        relation: &Relation,
        sql: &str,
        replaces: Option<RelKind>,
        log: &mut Vec<String>,
    ) -> DbResult<Option<Pending>> {
        let now = self.kept_kind(relation, replaces)?;
        self.free_name(relation, replaces, log)?;
        self.define_view((relation, now), statements::body(sql), log)?;
        self.retire_previous(relation, None, log);
        Ok(None)
    }

    fn stage_table(
        &mut self,
        relation: &Relation,
        sql: &str,
        layout: &Layout,
        log: &mut Vec<String>,
    ) -> DbResult<(Relation, Option<Pending>)> {
        let version = self.new_version(relation);
        self.create_table_as(&version, layout, sql, log)?;
        Ok((version.clone(), Some(Pending::Flip(version))))
    }

    fn stage_seed(
        &mut self,
        relation: &Relation,
        csv: &CsvSource,
        layout: &Layout,
        log: &mut Vec<String>,
    ) -> DbResult<(Relation, Option<Pending>)> {
        let data = match &csv.decoded {
            Some(text) => text.as_bytes().to_vec(),
            None => std::fs::read(&csv.path)
                .map_err(|e| DbError::Failed(format!("cannot read {}: {e}", csv.path.display())))?,
        };
        let columns = seed::columns(&data, csv)?;
        let records = seed::records(&data, csv, columns.len())?;
        let types = seed::sized(columns, &records);
        let version = self.new_version(relation);
        if let Err(e) = self.load_seed(&version, (csv, &types, &records), layout, log) {
            let _ = self.clean_up(&[format!("DROP TABLE IF EXISTS {}", rel(&version))], log);
            return Err(e);
        }
        Ok((version.clone(), Some(Pending::Flip(version))))
    }

    /// Creates table `version` from a seed's rows, sent as Arrow batches into a temporary view
    /// and cast to their types by the server.
    fn load_seed(
        &mut self,
        version: &Relation,
        (csv, types, records): (&CsvSource, &[(String, String)], &[seed::Record]),
        layout: &Layout,
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let view = format!("__xform_seed_{}", version.name);
        let select = seed_select(types, &view);
        let chunks: Vec<&[seed::Record]> = match records.is_empty() {
            true => vec![&[]],
            false => records.chunks(SEED_BATCH).collect(),
        };
        for (i, chunk) in chunks.into_iter().enumerate() {
            self.client.temp_view(&view, &seed_batch(types, chunk)?)?;
            log.push(format!(
                "-- {} rows of {} sent as Arrow, as temporary view {view}",
                chunk.len(),
                csv.path.display()
            ));
            match i {
                0 => self.create_table_as(version, layout, &select, log)?,
                _ => self.run(&format!("INSERT INTO {} {select}", rel(version)), log)?,
            }
        }
        self.run(
            &format!("DROP VIEW IF EXISTS {}", dialect().quote(&view)),
            log,
        )
    }
}

/// A seed's rows as text columns (empty values NULL), cast to their types on the server.
fn seed_batch(types: &[(String, String)], records: &[seed::Record]) -> DbResult<RecordBatch> {
    let fields: Vec<Field> = (0..types.len())
        .map(|i| Field::new(format!("c{i}"), DataType::Utf8, true))
        .collect();
    let arrays: Vec<ArrayRef> = (0..types.len())
        .map(|i| {
            let values = records.iter().map(|r| {
                r.values
                    .get(i)
                    .map(String::as_str)
                    .filter(|v| !v.is_empty())
            });
            Arc::new(StringArray::from_iter(values)) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| DbError::Failed(format!("a seed's rows cannot be sent: {e}")))
}

/// `SELECT CAST(c0 AS INT) AS `id`, …` from a seed's temporary view.
fn seed_select(types: &[(String, String)], view: &str) -> String {
    let d = dialect();
    let items: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            format!(
                "{} AS {}",
                d.cast(&format!("c{i}"), &spark_type(ty)),
                d.quote(name)
            )
        })
        .collect();
    format!("SELECT {} FROM {}", items.join(", "), d.quote(view))
}

/// Spark's name for a type a seed's values were found to have (PostgreSQL's name), or one
/// `column_types` gives as it is.
fn spark_type(ty: &str) -> String {
    let lower = ty.to_ascii_lowercase();
    match lower.as_str() {
        "integer" => "INT".into(),
        "varchar" | "character varying" | "string" => "STRING".into(),
        "double precision" => "DOUBLE".into(),
        "text" => "STRING".into(),
        _ if lower.starts_with("varchar(") => "STRING".into(),
        _ if lower.starts_with("numeric(") => format!("DECIMAL{}", &ty["numeric".len()..]),
        _ => ty.to_string(),
    }
}

impl SparkSession {
    /// New rows staged beside the table, checked against its columns; `publish` adds them.
    fn stage_increment(
        &mut self,
        relation: &Relation,
        inc: &Increment<'_>,
        layout: &Layout,
        log: &mut Vec<String>,
    ) -> DbResult<(Relation, Option<Pending>)> {
        let table = self
            .version_of(relation)?
            .unwrap_or_else(|| relation.clone());
        // Named apart from any other batch of the same model.
        let n = self.shared.versions.fetch_add(1, Ordering::SeqCst);
        let staged = |what: &str| Relation {
            name: format!("{}__xform_{what}{}_{n}", relation.name, self.shared.run),
            ..relation.clone()
        };
        let (new, audit) = (staged("new"), staged("audit"));
        self.create_table_as(&new, &Layout::default(), inc.sql, log)?;
        let staged = self.increment_statements(&table, &new, &audit, inc, layout, log);
        let (statement, widened) = match staged {
            Ok(s) => s,
            Err(e) => {
                let _ = self.clean_up(&[format!("DROP TABLE IF EXISTS {}", rel(&new))], log);
                return Err(e);
            }
        };
        let pending = Pending::Increment {
            statement,
            staged: [new, audit.clone()],
            widened: widened.then(|| table.clone()).filter(|t| t != relation),
        };
        Ok((audit, Some(pending)))
    }

    /// How many rows a relation has.
    fn count(&mut self, relation: &Relation) -> DbResult<Option<u64>> {
        let counted = self.fetch(&format!("SELECT count(*) FROM {}", rel(relation)), 1)?;
        let n = counted
            .rows
            .first()
            .and_then(|r| r.first().cloned().flatten());
        Ok(n.and_then(|n| n.parse().ok()))
    }

    /// The statement adding the new rows, after the table's columns are reconciled with
    /// theirs, and the audit view of the table as it will be.
    fn increment_statements(
        &mut self,
        table: &Relation,
        new: &Relation,
        audit: &Relation,
        inc: &Increment<'_>,
        layout: &Layout,
        log: &mut Vec<String>,
    ) -> DbResult<(String, bool)> {
        let target = rel(table);
        let incoming = self.describe(&rel(new))?;
        let before = self.describe(&target)?.len();
        self.reconcile_columns(&target, &incoming, inc.on_schema_change, log)?;
        let have = self.describe(&target)?;
        if let Strategy::Range { column, start, end } = inc.strategy {
            let kept = kept_outside(
                &target,
                (new, &incoming),
                &layout.partition_by,
                (column, start, end),
            );
            self.run(&kept, log)?;
        }
        let new_rows = in_table_order(&have, &incoming, &rel(new));
        let overwrite = matches!(inc.strategy, Strategy::Overwrite | Strategy::Range { .. });
        let kept = match (overwrite, layout.partition_by.is_empty()) {
            (false, _) => Some(format!("SELECT * FROM {target}")),
            (true, true) => None,
            (true, false) => Some(kept_partitions(&target, &rel(new), &layout.partition_by)),
        };
        let will_be = match kept {
            Some(k) => format!("{k}\nUNION ALL\n{new_rows}"),
            None => new_rows.clone(),
        };
        let audit_view = format!("CREATE OR REPLACE VIEW {} AS\n{will_be}", rel(audit));
        self.run(&audit_view, log)?;
        let verb = match overwrite {
            true => "INSERT OVERWRITE TABLE",
            false => "INSERT INTO",
        };
        Ok((format!("{verb} {target}\n{new_rows}"), have.len() > before))
    }
}

/// The new rows with the table's columns in its order, NULL (of the column's type) where the
/// new rows lack one.
fn in_table_order(have: &[(String, String)], incoming: &[(String, String)], new: &str) -> String {
    let d = dialect();
    let has = |c: &str| incoming.iter().any(|(n, _)| n.eq_ignore_ascii_case(c));
    let select: Vec<String> = have
        .iter()
        .map(|(c, ty)| match has(c) {
            true => format!("n.{}", d.quote(c)),
            false => format!("{} AS {}", d.cast("NULL", ty), d.quote(c)),
        })
        .collect();
    format!("SELECT {} FROM {new} AS n", select.join(", "))
}

/// A batch's partitions are overwritten whole: the rows they hold outside the batch's
/// interval [start, end) join the new rows first (an hourly batch into daily partitions keeps
/// the day's other hours).
fn kept_outside(
    target: &str,
    (new, incoming): (&Relation, &[(String, String)]),
    partition_by: &[String],
    (column, start, end): (&str, &str, &str),
) -> String {
    let d = dialect();
    let cols: Vec<String> = incoming
        .iter()
        .map(|(c, _)| format!("t.{}", d.quote(c)))
        .collect();
    let touched = partitions_join("LEFT SEMI", &rel(new), partition_by);
    let c = format!("t.{}", d.quote(column));
    format!(
        "INSERT INTO {}\nSELECT {} FROM {target} AS t {touched}\nWHERE NOT ({c} >= TIMESTAMP {} AND {c} < TIMESTAMP {})",
        rel(new),
        cols.join(", "),
        lit(start),
        lit(end),
    )
}

/// The rows of `target` in partitions the new rows do not touch.
fn kept_partitions(target: &str, new: &str, partition_by: &[String]) -> String {
    let untouched = partitions_join("LEFT ANTI", new, partition_by);
    format!("SELECT t.* FROM {target} AS t {untouched}")
}

/// A `kind` join of `t`'s rows to the partitions the rows of `new` touch (`k`).
fn partitions_join(kind: &str, new: &str, partition_by: &[String]) -> String {
    let d = dialect();
    let keys: Vec<&str> = partition_by.iter().map(String::as_str).collect();
    let on: Vec<String> = keys
        .iter()
        .map(|p| {
            d.null_safe_equal(
                &format!("t.{}", d.quote(p)),
                &format!("k.{}", d.quote(p)),
                None,
            )
        })
        .collect();
    format!(
        "{kind} JOIN (SELECT DISTINCT {} FROM {new}) AS k ON {}",
        d.quoted_list(&keys),
        on.join(" AND ")
    )
}

impl Statements for SparkSession {
    fn dialect(&self) -> &'static dyn Dialect {
        dialect()
    }

    fn run(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<()> {
        SparkSession::run(self, sql, log)
    }

    /// Spark reports no count of rows changed.
    fn exec(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<u64> {
        SparkSession::run(self, sql, log).map(|()| 0)
    }

    fn rows(&mut self, sql: &str) -> DbResult<Rows> {
        self.fetch(sql, usize::MAX)
    }

    /// A temporary view of the session (Spark has no temporary tables).
    fn temp_table(&mut self, name: &str, sql: &str, log: &mut Vec<String>) -> DbResult<String> {
        let quoted = dialect().quote(name);
        let create = format!(
            "CREATE OR REPLACE TEMPORARY VIEW {quoted} AS\n{}",
            statements::body(sql)
        );
        SparkSession::run(self, &create, log).map(|()| quoted)
    }

    fn create_table(
        &mut self,
        relation: &Relation,
        sql: &str,
        log: &mut Vec<String>,
    ) -> DbResult<u64> {
        self.create_table_as(relation, &Layout::default(), sql, log)
            .map(|()| 0)
    }
}

impl SparkSession {
    /// Every relation named `*__xform_*` in `schema`, with whether it is a view.
    fn xform_relations(&mut self, schema: &str) -> DbResult<Vec<(Relation, bool)>> {
        let q = dialect().quote(schema);
        let like = "LIKE '*__xform_*'";
        let tables = self.names(&format!("SHOW TABLES IN {q} {like}"), 1)?;
        let views = self.names(&format!("SHOW VIEWS IN {q} {like}"), 1)?;
        Ok(tables
            .into_iter()
            .map(|t| {
                let is_view = views.contains(&t);
                (Relation::new(schema, t), is_view)
            })
            .collect())
    }

    /// Sorts the versions in `schema`, in one `SHOW TABLE EXTENDED` (which gives each view's
    /// text and each table's properties): the one each published view reads is live; one a
    /// flip retired is kept for its readers while its relation is published; the rest are
    /// dropped: `(never published, so left by a killed run; retired and no longer needed)`.
    fn dead_versions(
        &mut self,
        schema: &str,
        versions: Vec<Relation>,
    ) -> DbResult<(Vec<Relation>, Vec<Relation>)> {
        let mut by_base: BTreeMap<Relation, Vec<Relation>> = BTreeMap::new();
        for v in versions {
            let base = v.name.split(VERSION).next().unwrap_or_default().to_string();
            by_base
                .entry(Relation::new(schema, base))
                .or_default()
                .push(v);
        }
        if by_base.is_empty() {
            return Ok(Default::default());
        }
        let pattern: Vec<String> = by_base
            .keys()
            .map(|b| format!("{0}|{0}{VERSION}*", b.name))
            .collect();
        let sql = format!(
            "SHOW TABLE EXTENDED IN {} LIKE {}",
            dialect().quote(schema),
            lit(&pattern.join("|"))
        );
        let info: HashMap<String, String> = self
            .fetch(&sql, usize::MAX)?
            .rows
            .into_iter()
            .filter_map(|r| Some((r.get(1)?.clone()?, r.get(3)?.clone()?)))
            .collect();
        let (mut unpublished, mut retired) = (Vec::new(), Vec::new());
        for (base, versions) in by_base {
            let published = info.get(&base.name);
            let live = published
                .and_then(|i| info_line(i, "View Text"))
                .and_then(|t| version_read(&base, t));
            for v in versions {
                let marked = info.get(&v.name).is_some_and(|i| {
                    info_line(i, "Table Properties").is_some_and(|p| p.contains(RETIRED))
                });
                match (Some(&v) == live.as_ref(), marked) {
                    (true, _) => drop(self.live().insert(base.clone(), v)),
                    (false, false) => unpublished.push(v),
                    (false, true) if published.is_some() && !self.kept().contains_key(&base) => {
                        self.kept().insert(base.clone(), v);
                    }
                    (false, true) => retired.push(v),
                }
            }
        }
        Ok((unpublished, retired))
    }
}

/// The value of a line `key: value` of what `SHOW TABLE EXTENDED` tells of a relation.
fn info_line<'a>(info: &'a str, key: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
}

/// The version of `relation` a view's text reads (`SELECT * FROM `s`.`name__xform_t…``), if
/// it is xform's view over a version.
fn version_read(relation: &Relation, view_text: &str) -> Option<Relation> {
    let (_, name) = view_text.trim().strip_suffix('`')?.rsplit_once('`')?;
    name.starts_with(&format!("{}{VERSION}", relation.name))
        .then(|| Relation {
            name: name.to_string(),
            ..relation.clone()
        })
}

impl Session for SparkSession {
    /// A view over a version of xform's is the table it publishes.
    fn relations(&mut self, schemas: &[String]) -> DbResult<Vec<(Relation, RelKind)>> {
        let mut out = Vec::new();
        for s in schemas {
            let q = dialect().quote(s);
            let tables = match self.names(&format!("SHOW TABLES IN {q}"), 1) {
                Err(DbError::Failed(m)) if m.contains("SCHEMA_NOT_FOUND") => continue,
                listed => listed?,
            };
            let views = self.names(&format!("SHOW VIEWS IN {q}"), 1)?;
            let versioned = |t: &str| {
                let prefix = format!("{t}{VERSION}");
                tables.iter().any(|v| v.starts_with(&prefix))
            };
            out.extend(tables.iter().filter(|t| !t.contains("__xform_")).map(|t| {
                let kind = match views.contains(t) && !versioned(t) {
                    true => RelKind::View,
                    false => RelKind::Table,
                };
                (Relation::new(s.as_str(), t.as_str()), kind)
            }));
        }
        Ok(out)
    }

    /// Spark lists a schema at a time: the run's schemas (those that exist).
    fn drop_leftovers(
        &mut self,
        schemas: &[String],
        log: &mut Vec<String>,
    ) -> DbResult<Vec<Relation>> {
        let mut dropped = Vec::new();
        let existing = self.names("SHOW SCHEMAS", 0)?;
        for schema in schemas
            .iter()
            .filter(|s| existing.contains(&s.to_lowercase()))
        {
            let found = self.xform_relations(schema)?;
            let (versions, others): (Vec<_>, Vec<_>) = found
                .into_iter()
                .partition(|(r, view)| !view && r.name.contains(VERSION));
            let (dead, retired) =
                self.dead_versions(schema, versions.into_iter().map(|(r, _)| r).collect())?;
            for (r, view) in others
                .into_iter()
                .chain(dead.into_iter().map(|r| (r, false)))
            {
                let word = if view { "VIEW" } else { "TABLE" };
                self.run(&format!("DROP {word} IF EXISTS {}", rel(&r)), log)?;
                dropped.push(r);
            }
            for r in retired {
                self.run(&format!("DROP TABLE IF EXISTS {}", rel(&r)), log)?;
            }
        }
        Ok(dropped)
    }

    fn create_schemas(&mut self, schemas: &[String], log: &mut Vec<String>) -> DbResult<()> {
        for s in schemas {
            self.run(
                &format!("CREATE SCHEMA IF NOT EXISTS {}", dialect().quote(s)),
                log,
            )?;
        }
        Ok(())
    }

    fn stage(
        &mut self,
        relation: &Relation,
        build: Build<'_>,
        replaces: Option<RelKind>,
        (_audited, around): (bool, &Around),
        log: &mut Vec<String>,
    ) -> DbResult<Staged> {
        self.run_all(&around.pre, log)?;
        let kind = kind_built(&build);
        let (readable_as, pending) = self.build(relation, build, replaces, &around.layout, log)?;
        let counted = match &pending {
            Some(Pending::Increment {
                staged: [new, _], ..
            }) => Some(new.clone()),
            _ => None,
        };
        // Recorded first: an interrupted count still leaves `discard` what to drop.
        if let Some(p) = pending {
            self.pending.insert(relation.clone(), p);
        }
        let rows = match counted {
            Some(new) => self.count(&new)?,
            None => None,
        };
        Ok(Staged {
            rows,
            readable_as,
            relation: relation.clone(),
            replaces,
            kind,
            around: around.clone(),
        })
    }

    fn publish(&mut self, staged: Staged, log: &mut Vec<String>) -> DbResult<Staged> {
        let relation = staged.relation.clone();
        match self.pending.remove(&relation) {
            None => {}
            Some(Pending::Flip(version)) => {
                self.publish_version(&relation, &version, staged.replaces, log)?
            }
            Some(Pending::Increment {
                statement,
                staged: [new, audit],
                widened,
            }) => {
                let added = self.run(&statement, log).and_then(|()| match &widened {
                    Some(table) => self.flip((&relation, Some(RelKind::View)), table, log),
                    None => Ok(()),
                });
                let _ = self.clean_up(
                    &[
                        format!("DROP VIEW IF EXISTS {}", rel(&audit)),
                        format!("DROP TABLE IF EXISTS {}", rel(&new)),
                    ],
                    log,
                );
                added?
            }
        }
        self.run_all(&staged.around.post, log)?;
        Ok(staged)
    }

    fn discard(&mut self, staged: Staged, log: &mut Vec<String>) -> DbResult<()> {
        let dropped: Vec<String> = match self.pending.remove(&staged.relation) {
            None => Vec::new(),
            Some(Pending::Flip(version)) => vec![format!("DROP TABLE IF EXISTS {}", rel(&version))],
            Some(Pending::Increment {
                staged: [new, audit],
                ..
            }) => vec![
                format!("DROP VIEW IF EXISTS {}", rel(&audit)),
                format!("DROP TABLE IF EXISTS {}", rel(&new)),
            ],
        };
        self.clean_up(&dropped, log)
    }

    fn count_failures(&mut self, queries: &[crate::adapter::FailureQuery]) -> DbResult<Vec<u64>> {
        let rows = self
            .fetch(&statements::failure_counts(queries), usize::MAX)?
            .rows;
        Ok(statements::counts_by_query(queries.len(), rows))
    }

    fn store_failures(
        &mut self,
        into: &Relation,
        sql: &str,
        limit: Option<u64>,
        log: &mut Vec<String>,
    ) -> DbResult<u64> {
        self.run(&format!("DROP TABLE IF EXISTS {}", rel(into)), log)?;
        self.create_table_as(into, &Layout::default(), &limited(sql, limit), log)?;
        Ok(self.count(into)?.unwrap_or(0))
    }

    fn columns(&mut self, relation: &Relation) -> DbResult<Option<Vec<(String, String)>>> {
        match self.describe(&rel(relation)) {
            Ok(columns) => Ok(Some(columns)),
            Err(DbError::Failed(m))
                if m.contains("TABLE_OR_VIEW_NOT_FOUND") || m.contains("SCHEMA_NOT_FOUND") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn max_loaded_at(
        &mut self,
        from: &str,
        loaded_at: &str,
        filter: Option<&str>,
    ) -> DbResult<Option<f64>> {
        let sql = dialect().latest_epoch(from, loaded_at, filter);
        let rows = self.fetch(&sql, 1)?;
        let v = rows.rows.first().and_then(|r| r.first().cloned().flatten());
        Ok(v.and_then(|v| v.parse().ok()))
    }

    fn for_each_row(
        &mut self,
        sql: &str,
        row: &mut dyn FnMut(Vec<Option<String>>) -> bool,
    ) -> DbResult<()> {
        let mut failed = None;
        self.sql(sql, &mut |batch| {
            text_rows(&batch, row).unwrap_or_else(|e| {
                failed = Some(e);
                false
            })
        })?;
        failed.map_or(Ok(()), Err)
    }

    fn execute(&mut self, sql: &str) -> DbResult<()> {
        self.sql(sql, &mut |_| true)
    }

    fn query(&mut self, sql: &str, limit: usize) -> DbResult<Rows> {
        self.fetch(sql, limit)
    }
}
