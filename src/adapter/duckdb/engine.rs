//! DuckDB's engine (see the module doc of `adapter::duckdb` for how it keeps xform's
//! guarantees).

use std::cell::Cell;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use duckdb::{Connection, InterruptHandle};

use crate::adapter::statements::{self, Statements, body, kind_word, limited, lit as literal};
use crate::adapter::{
    Around, Build, BuildRecord, CsvSource, DbError, DbResult, RelKind, Relation, Rows, Session,
    Staged, Warehouse, kind_built,
};
use crate::sql::{Dialect, Kind};

use super::native::Database;

fn dialect() -> &'static dyn Dialect {
    Kind::DuckDb.dialect()
}

fn quote(ident: &str) -> String {
    dialect().quote(ident)
}
/// Whether `staged` is a table beside the relation it replaces (committed, tested in
/// autocommit), rather than the relation itself in the open transaction.
fn aside(staged: &Staged) -> bool {
    staged.readable_as != staged.relation
}

/// A table staged aside is committed under its name with this suffix while its tests run; one
/// still there when a run starts was left by a run that was killed.
const AUDIT_SUFFIX: &str = "__xform_audit";

pub(crate) struct DuckDb {
    root: Mutex<Connection>,
    interrupts: Mutex<Vec<Arc<InterruptHandle>>>,
    /// Declared last: closed after the connections.
    _database: Database,
}

impl DuckDb {
    /// Opens the database file; relative paths in queries (external sources) resolve
    /// against `project`.
    pub(crate) fn open(path: &Path, project: &Path) -> DbResult<DuckDb> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        let database = Database::open(path).map_err(|e| open_error(path, &e))?;
        // SAFETY: the database stays open while this connection and its clones live: it is
        // `_database`, dropped after them.
        let conn = unsafe { Connection::open_from_raw(database.raw()) }.map_err(failed)?;
        let search = literal(&project.to_string_lossy());
        conn.execute_batch(&format!("SET GLOBAL file_search_path = {search}"))
            .map_err(failed)?;
        super::zones::register(&conn, &database).map_err(DbError::Failed)?;
        super::timestamptz::register(&conn).map_err(failed)?;
        Ok(DuckDb {
            root: Mutex::new(conn),
            interrupts: Mutex::default(),
            _database: database,
        })
    }
}

fn open_error(path: &Path, text: &str) -> DbError {
    if !text.contains("Could not set lock") {
        return DbError::Failed(format!("cannot open {}: {text}", path.display()));
    }
    let pid = text
        .split_once("(PID ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(pid, _)| format!(" (PID {pid})"))
        .unwrap_or_default();
    DbError::Failed(format!(
        "{} is in use by another process{pid}: DuckDB lets one process write a database file \
         at a time. Wait for that run to finish (or stop it), or use another target",
        path.strip_prefix(".").unwrap_or(path).display()
    ))
}

impl Warehouse for DuckDb {
    fn session(&self) -> DbResult<Box<dyn Session>> {
        let root = self.root.lock().unwrap_or_else(PoisonError::into_inner);
        let conn = root.try_clone().map_err(failed)?;
        self.interrupts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn.interrupt_handle());
        Ok(Box::new(DuckSession {
            conn,
            open: Cell::new(false),
            aborted: Cell::new(false),
        }))
    }

    fn interrupt(&self) {
        for h in self
            .interrupts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            h.interrupt();
        }
    }

    /// DuckDB's threads belong to the database, not to a connection: with `connections`
    /// statements running at once, it gets cores / connections threads. Left at every core,
    /// its idle workers spin between the small statements a build is made of.
    fn share_cores(&self, connections: usize) -> DbResult<()> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let threads = (cores / connections.max(1)).max(1);
        let conn = self.root.lock().unwrap_or_else(PoisonError::into_inner);
        conn.execute_batch(&format!("SET GLOBAL threads = {threads}"))
            .map_err(failed)
    }

    fn version(&self) -> DbResult<String> {
        let root = self.root.lock().unwrap_or_else(PoisonError::into_inner);
        let v = root.version().map_err(failed)?;
        Ok(format!("DuckDB {v}"))
    }
}

fn failed(e: duckdb::Error) -> DbError {
    let text = e.to_string();
    if text.contains("INTERRUPT Error") {
        DbError::Interrupted
    } else {
        DbError::Failed(text)
    }
}

struct DuckSession {
    conn: Connection,
    /// Whether a transaction is open (the duckdb crate cannot tell).
    open: Cell<bool>,
    /// A statement failed in the open transaction, which DuckDB then aborted: a `COMMIT` would
    /// quietly roll it back.
    aborted: Cell<bool>,
}

fn rel(r: &Relation) -> String {
    dialect().relation(r)
}

/// DuckDB's parser recurses once per level of parenthesis, so SQL nested deep enough (a
/// million subqueries) overflows the stack of the process. It refuses more than 1,000 levels
/// of expressions anyway: deeper than 10,000 is refused here, before it is parsed.
fn readable(sql: &str) -> DbResult<()> {
    const MAX_NESTING: usize = 10_000;
    let deepest = deepest_nesting(sql);
    if deepest > MAX_NESTING {
        return Err(DbError::Failed(format!(
            "the SQL is nested {deepest} parentheses deep; DuckDB reads at most 1,000 levels \
             of expressions, and xform does not hand it more than 10,000"
        )));
    }
    Ok(())
}

/// How deep `sql`'s parentheses nest, outside quotes and comments.
fn deepest_nesting(sql: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            '\'' | '"' => {
                let _ = chars.by_ref().find(|&d| d == c);
            }
            '-' if chars.peek() == Some(&'-') => {
                let _ = chars.by_ref().find(|&d| d == '\n');
            }
            '/' if chars.peek() == Some(&'*') => skip_block_comment(&mut chars),
            _ => {}
        }
    }
    deepest
}

/// Skips to the end of a `/* ... */` comment.
fn skip_block_comment(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(d) = chars.next() {
        if d == '*' && chars.peek() == Some(&'/') {
            chars.next();
            break;
        }
    }
}

impl DuckSession {
    /// Replaces `relation` (of kind `replaces`) with the table staged aside as `staged`.
    fn swap_in(
        &self,
        staged: &Relation,
        relation: &Relation,
        replaces: Option<RelKind>,
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        if let Some(old) = replaces {
            self.run(&format!("DROP {} {}", kind_word(old), rel(relation)), log)?;
        }
        self.run(
            &format!(
                "ALTER TABLE {} RENAME TO {}",
                rel(staged),
                quote(&relation.name)
            ),
            log,
        )
    }

    /// Runs hook statements, in order.
    fn run_all(&self, statements: &[String], log: &mut Vec<String>) -> DbResult<()> {
        statements.iter().try_for_each(|sql| self.run(sql, log))
    }

    /// Executes one statement unprepared: a prepared CTAS costs 1.7 ms more per statement
    /// (measured), more than xform's whole per-node overhead.
    fn run(&self, sql: &str, log: &mut Vec<String>) -> DbResult<()> {
        log.push(sql.to_string());
        readable(sql)?;
        self.conn
            .execute_batch(sql)
            .map_err(|e| self.lost(failed(e)))?;
        match sql {
            "BEGIN TRANSACTION" => {
                self.open.set(true);
                self.aborted.set(false);
            }
            "COMMIT" => self.open.set(false),
            _ => {}
        }
        Ok(())
    }

    /// Commits the open transaction, unless a statement in it failed: DuckDB would then roll
    /// it back and report success.
    fn commit(&self, log: &mut Vec<String>) -> DbResult<()> {
        if self.aborted.get() {
            return Err(DbError::TransactionLost(
                "a statement in the build's transaction failed, and DuckDB rolled it back".into(),
            ));
        }
        self.run("COMMIT", log)
    }

    /// A statement's error; inside an open transaction, which DuckDB has just aborted,
    /// `TransactionLost`.
    fn failed_here(&self, e: duckdb::Error) -> DbError {
        self.lost(failed(e))
    }

    fn lost(&self, e: DbError) -> DbError {
        match e {
            DbError::Failed(m) if self.open.get() => {
                self.aborted.set(true);
                DbError::TransactionLost(m)
            }
            other => other,
        }
    }

    /// Rolls back the open transaction, if any; an interrupt (Ctrl-C repeats them) does not
    /// leave it open.
    fn rollback(&self, log: &mut Vec<String>) {
        log.push("ROLLBACK".into());
        self.aborted.set(false);
        for _ in 0..100 {
            self.open.set(false);
            match self.conn.execute_batch("ROLLBACK").map_err(failed) {
                Err(DbError::Interrupted) => continue,
                _ => return,
            }
        }
    }

    /// The rows of a table just created. This query is most of xform's own cost per table: the
    /// duckdb crate prepares every query and reads it through Arrow, so it is prepared once per
    /// connection (`query_table` takes the name as a parameter). Catalog estimates were slower
    /// and report 0 inside the creating transaction (measured).
    fn count(&self, relation: &Relation) -> DbResult<u64> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT count(*) FROM query_table(?)")
            .map_err(failed)?;
        stmt.query_row([rel(relation)], |r| r.get::<_, u64>(0))
            .map_err(failed)
    }

    /// Creates the new relation under its own name, in the transaction `stage` opened: DuckDB
    /// keeps showing every other connection the previous one until `COMMIT`, and a rollback
    /// (or a kill, thanks to the write-ahead log) leaves it untouched — no temporary name
    /// needed. `aside`, it is a table named `<name>__xform_audit` instead (see `stage`).
    fn create(
        &mut self,
        relation: &Relation,
        build: Build<'_>,
        replaces: Option<RelKind>,
        aside: bool,
        log: &mut Vec<String>,
    ) -> DbResult<Staged> {
        let kind = kind_built(&build);
        let target = if aside {
            Relation::new(&relation.schema, format!("{}{AUDIT_SUFFIX}", relation.name))
        } else {
            relation.clone()
        };
        if let Some(old) = replaces.filter(|&old| old != kind && !aside) {
            self.run(&format!("DROP {} {}", kind_word(old), rel(relation)), log)?;
        }
        let rows = self.build(&target, build, replaces, log)?;
        Ok(Staged {
            rows,
            readable_as: target,
            relation: relation.clone(),
            replaces,
            kind,
            around: Around::default(),
        })
    }

    /// Builds `relation`; the rows of a table.
    fn build(
        &mut self,
        relation: &Relation,
        build: Build<'_>,
        replaces: Option<RelKind>,
        log: &mut Vec<String>,
    ) -> DbResult<Option<u64>> {
        Ok(match build {
            Build::View(sql) => {
                let create = format!("CREATE OR REPLACE VIEW {} AS\n{}", rel(relation), body(sql));
                self.run(&create, log)?;
                None
            }
            Build::Table(sql) => Some(self.create_table(relation, sql, log)?),
            Build::Seed(csv) => Some(self.load_csv(relation, csv, log)?),
            Build::Increment(inc) => Some(self.increment(relation, &inc, log)?),
            Build::Snapshot(spec) if replaces == Some(RelKind::Table) => {
                Some(self.update_snapshot(relation, spec, log)?)
            }
            Build::Snapshot(spec) => Some(self.create_snapshot(relation, spec, log)?),
        })
    }

    /// Loads through DuckDB's own CSV reader; rows it cannot read are collected in its
    /// rejects table, and the first one fails the load with its line and column.
    fn load_csv(&self, into: &Relation, csv: &CsvSource, log: &mut Vec<String>) -> DbResult<u64> {
        // DuckDB reads CSV only from a UTF-8 file: a decoded seed goes through a temporary copy.
        let copy = csv.decoded.as_deref().map(utf8_copy).transpose()?;
        let path = copy.as_ref().map_or(csv.path.as_path(), |c| c.path());
        let sql = format!(
            "CREATE OR REPLACE TABLE {} AS SELECT * FROM read_csv({}, {})",
            rel(into),
            literal(&path.to_string_lossy()),
            csv_options(csv)
        );
        self.run(&sql, log)?;
        if let Some((line, column, message)) = self.first_reject()? {
            return Err(DbError::BadRow {
                line,
                column,
                message: clean_reject_message(&message),
            });
        }
        if csv.dbt_types {
            self.narrow_integers(into, log)?;
        }
        self.count(into)
    }

    /// The BIGINT columns DuckDB's reader made whose values all fit in 32 bits, as INTEGER.
    fn narrow_integers(&self, table: &Relation, log: &mut Vec<String>) -> DbResult<()> {
        let mut stmt = (self.conn)
            .prepare(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() \
                 AND table_schema = ? AND table_name = ? AND data_type = 'BIGINT' ORDER BY ordinal_position",
            )
            .map_err(failed)?;
        let rows = stmt.query_map([&table.schema, &table.name], |r| r.get::<_, String>(0));
        let wide: Vec<String> = rows.and_then(|r| r.collect()).map_err(failed)?;
        if wide.is_empty() {
            return Ok(());
        }
        let fits = wide.iter().map(|c| {
            let c = quote(c);
            format!("coalesce(min({c}) >= -2147483648 AND max({c}) <= 2147483647, true)")
        });
        let sql = format!(
            "SELECT {} FROM {}",
            fits.collect::<Vec<_>>().join(", "),
            rel(table)
        );
        let narrow: Vec<bool> = (self.conn)
            .query_row(&sql, [], |r| {
                (0..wide.len()).map(|i| r.get::<_, bool>(i)).collect()
            })
            .map_err(failed)?;
        for (column, _) in wide.iter().zip(narrow).filter(|(_, fits)| *fits) {
            let alter = format!(
                "ALTER TABLE {} ALTER COLUMN {} TYPE INTEGER",
                rel(table),
                quote(column)
            );
            self.run(&alter, log)?;
        }
        Ok(())
    }

    /// The first row the CSV reader rejected: its line, column and error.
    fn first_reject(&self) -> DbResult<Option<Reject>> {
        self.conn
            .query_row(
                "SELECT line, column_name, error_message FROM reject_errors ORDER BY line LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, u64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .map(Some)
            .or_else(|e| match e {
                duckdb::Error::QueryReturnedNoRows => Ok(None),
                e => Err(failed(e)),
            })
    }
}

impl DuckSession {
    /// The rows of a query whose columns are all text.
    fn text_rows(&self, wrapped: &str) -> DbResult<Rows> {
        let mut rows = Vec::new();
        let (columns, types) = self.stream_text(wrapped, &mut |r| {
            rows.push(r);
            true
        })?;
        Ok(Rows {
            columns,
            rows,
            types,
        })
    }

    /// Runs a query whose columns are all text, handing each row to `each` until it returns
    /// false; returns the column names and types (Arrow's names: `Boolean`, `Int32`, `Utf8`).
    fn stream_text(
        &self,
        wrapped: &str,
        each: &mut dyn FnMut(Vec<Option<String>>) -> bool,
    ) -> DbResult<(Vec<String>, Vec<String>)> {
        readable(wrapped)?;
        let mut read = || -> Result<(Vec<String>, Vec<String>), duckdb::Error> {
            let mut stmt = self.conn.prepare(wrapped)?;
            let mut rows = stmt.query([])?;
            let types = (rows.as_ref())
                .map(|s| (0..s.column_count()).map(|i| format!("{:?}", s.column_type(i))))
                .map_or_else(Vec::new, Iterator::collect);
            while let Some(row) = rows.next()? {
                let n = row.as_ref().column_count();
                let values = (0..n).map(|i| row.get::<_, Option<String>>(i));
                if !each(values.collect::<Result<_, _>>()?) {
                    break;
                }
            }
            drop(rows);
            Ok((stmt.column_names(), types))
        };
        read().map_err(|e| self.failed_here(e))
    }
}

/// A row DuckDB's CSV reader rejected: its line, column and error message.
type Reject = (u64, Option<String>, String);

/// Incremental runs and snapshots: the shared statements over DuckDB's primitives.
impl Statements for DuckSession {
    fn dialect(&self) -> &'static dyn Dialect {
        dialect()
    }

    fn run(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<()> {
        DuckSession::run(self, sql, log)
    }

    fn exec(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<u64> {
        log.push(sql.to_string());
        readable(sql)?;
        self.conn.execute(sql, []).map(|n| n as u64).map_err(failed)
    }

    fn rows(&mut self, sql: &str) -> DbResult<Rows> {
        self.text_rows(&format!(
            "SELECT COLUMNS(*)::VARCHAR FROM (\n{}\n)",
            body(sql)
        ))
    }

    fn temp_table(&mut self, name: &str, sql: &str, log: &mut Vec<String>) -> DbResult<String> {
        let temp = quote(name);
        let create = format!("CREATE OR REPLACE TEMP TABLE {temp} AS\n{}", body(sql));
        DuckSession::run(self, &create, log)?;
        Ok(temp)
    }

    fn create_table(
        &mut self,
        relation: &Relation,
        sql: &str,
        log: &mut Vec<String>,
    ) -> DbResult<u64> {
        let create = format!(
            "CREATE OR REPLACE TABLE {} AS\n{}",
            rel(relation),
            body(sql)
        );
        DuckSession::run(self, &create, log)?;
        self.count(relation)
    }
}

/// `text` in a temporary file, deleted when dropped.
fn utf8_copy(text: &str) -> DbResult<tempfile::NamedTempFile> {
    use std::io::Write;
    let mut f = tempfile::Builder::new()
        .prefix("xform-seed-")
        .suffix(".csv")
        .tempfile()
        .map_err(|e| DbError::Failed(format!("cannot write a UTF-8 copy of the seed: {e}")))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.flush())
        .map_err(|e| DbError::Failed(format!("cannot write a UTF-8 copy of the seed: {e}")))?;
    Ok(f)
}

fn csv_options(csv: &CsvSource) -> String {
    let mut opts = vec![
        format!("header = {}", csv.header),
        format!("delim = {}", literal(&csv.delimiter)),
        format!("quote = {}", literal(&csv.quote)),
        "store_rejects = true".to_string(),
        "strict_mode = true".to_string(),
    ];
    if !csv.column_types.is_empty() {
        let types: Vec<String> = csv
            .column_types
            .iter()
            .map(|(c, t)| format!("{}: {}", literal(c), literal(t)))
            .collect();
        opts.push(format!("types = {{{}}}", types.join(", ")));
    }
    opts.join(", ")
}

/// DuckDB repeats the whole row and hints about reader options in its reject messages; the
/// first sentence is what a user needs.
fn clean_reject_message(m: &str) -> String {
    m.lines().next().unwrap_or(m).trim().to_string()
}

impl Session for DuckSession {
    fn relations(&mut self, schemas: &[String]) -> DbResult<Vec<(Relation, RelKind)>> {
        if schemas.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = schemas.iter().map(|s| literal(s)).collect();
        let sql = format!(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables \
             WHERE table_catalog = current_database() AND table_schema IN ({})",
            list.join(", ")
        );
        let mut stmt = self.conn.prepare(&sql).map_err(failed)?;
        let rows = stmt
            .query_map([], |r| {
                let kind = match r.get::<_, String>(2)?.as_str() {
                    "VIEW" => RelKind::View,
                    _ => RelKind::Table,
                };
                Ok((
                    Relation::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                    kind,
                ))
            })
            .map_err(failed)?;
        rows.collect::<Result<_, _>>().map_err(failed)
    }

    fn drop_leftovers(&mut self, _: &[String], log: &mut Vec<String>) -> DbResult<Vec<Relation>> {
        // Another process cannot have the file open (DuckDB locks it), so every such table
        // belongs to a run that is over.
        let sql = format!(
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' \
             AND suffix(table_name, {})",
            literal(AUDIT_SUFFIX)
        );
        let mut stmt = self.conn.prepare(&sql).map_err(failed)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Relation::new(
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                ))
            })
            .map_err(failed)?;
        let leftovers: Vec<Relation> = rows.collect::<Result<_, _>>().map_err(failed)?;
        for r in &leftovers {
            self.run(&format!("DROP TABLE IF EXISTS {}", rel(r)), log)?;
        }
        Ok(leftovers)
    }

    fn create_schemas(&mut self, schemas: &[String], log: &mut Vec<String>) -> DbResult<()> {
        for s in schemas {
            self.run(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(s)), log)?;
        }
        Ok(())
    }

    fn stage(
        &mut self,
        relation: &Relation,
        build: Build<'_>,
        replaces: Option<RelKind>,
        (audited, around): (bool, &Around),
        log: &mut Vec<String>,
    ) -> DbResult<Staged> {
        // Audited, a new table is staged aside, committed under its own name first: tests then
        // run outside any transaction (in DuckDB one failing statement aborts the transaction
        // it is in, so a broken test could not be told from the others), and `publish` swaps it
        // in within one short transaction. New rows of an existing table are tested in place.
        let aside = audited && !matches!(build, Build::Increment(_) | Build::Snapshot(_));
        if !aside {
            self.run("BEGIN TRANSACTION", log)?;
        }
        let staged = self
            .run_all(&around.pre, log)
            .and_then(|()| self.create(relation, build, replaces, aside, log))
            .map(|s| Staged {
                around: around.clone(),
                ..s
            });
        if staged.is_err() && !aside {
            self.rollback(log);
        }
        staged
    }

    fn publish(&mut self, staged: Staged, log: &mut Vec<String>) -> DbResult<Staged> {
        let swapped = match aside(&staged) {
            true => self.run("BEGIN TRANSACTION", log).and_then(|()| {
                self.swap_in(&staged.readable_as, &staged.relation, staged.replaces, log)
            }),
            false => Ok(()),
        };
        // DuckDB has no users or privileges: grants are warned about when compiling.
        let comments = statements::comments(
            dialect(),
            &staged.relation,
            staged.kind,
            &staged.around.docs,
        );
        let record = statements::record_build(dialect(), staged.around.record.as_ref());
        let swapped = swapped
            .and_then(|()| self.run_all(&staged.around.post, log))
            .and_then(|()| self.run_all(&comments, log))
            .and_then(|()| self.run_all(&record, log));
        match swapped.and_then(|()| self.commit(log)) {
            Ok(()) => Ok(staged),
            Err(e) => {
                self.rollback(log);
                if aside(&staged) {
                    let _ = self.discard(staged, log);
                }
                Err(e)
            }
        }
    }

    fn discard(&mut self, staged: Staged, log: &mut Vec<String>) -> DbResult<()> {
        match aside(&staged) {
            false => {
                self.rollback(log);
                Ok(())
            }
            true => {
                // On a connection of its own, which no interrupt reaches.
                let drop = format!("DROP TABLE IF EXISTS {}", rel(&staged.readable_as));
                log.push(drop.clone());
                let cleaner = self.conn.try_clone().map_err(failed)?;
                cleaner.execute_batch(&drop).map_err(failed)
            }
        }
    }

    fn count_failures(&mut self, queries: &[super::super::FailureQuery]) -> DbResult<Vec<u64>> {
        let sql = statements::failure_counts(queries);
        readable(&sql)?;
        let counted = || -> Result<Vec<u64>, duckdb::Error> {
            let mut stmt = self.conn.prepare(&sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, usize>(0)?, r.get::<_, u64>(1)?)))?;
            let mut out = vec![0; queries.len()];
            for row in rows {
                let (i, n) = row?;
                out[i] = n;
            }
            Ok(out)
        };
        counted().map_err(|e| self.failed_here(e))
    }

    fn store_failures(
        &mut self,
        into: &Relation,
        sql: &str,
        limit: Option<u64>,
        log: &mut Vec<String>,
    ) -> DbResult<u64> {
        let create = format!(
            "CREATE OR REPLACE TABLE {} AS\n{}",
            rel(into),
            limited(sql, limit)
        );
        self.run(&create, log).map_err(|e| self.lost(e))?;
        self.count(into)
    }

    fn columns(&mut self, relation: &Relation) -> DbResult<Option<Vec<(String, String)>>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT column_name, data_type FROM information_schema.columns \
                 WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? \
                 ORDER BY ordinal_position",
            )
            .map_err(failed)?;
        let rows = stmt
            .query_map([&relation.schema, &relation.name], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(failed)?;
        let columns: Vec<(String, String)> = rows.collect::<Result<_, _>>().map_err(failed)?;
        Ok((!columns.is_empty()).then_some(columns))
    }

    fn max_loaded_at(
        &mut self,
        from: &str,
        loaded_at: &str,
        filter: Option<&str>,
    ) -> DbResult<Option<f64>> {
        let sql = dialect().latest_epoch(from, loaded_at, filter);
        self.conn
            .query_row(&sql, [], |r| r.get::<_, Option<f64>>(0))
            .map_err(failed)
    }

    fn execute(&mut self, sql: &str) -> DbResult<()> {
        self.conn.execute_batch(sql).map_err(failed)
    }

    fn build_records(&mut self, table: &Relation) -> DbResult<Option<Vec<BuildRecord>>> {
        match self.columns(table)? {
            Some(_) => statements::read_records(self, table).map(Some),
            None => Ok(None),
        }
    }

    fn keep_build_records(&mut self, table: &Relation, log: &mut Vec<String>) -> DbResult<()> {
        self.run(&statements::create_records(dialect(), table), log)
    }

    fn record_tests(
        &mut self,
        table: &Relation,
        tests: &[(String, String)],
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let updates = statements::tests_recorded(dialect(), table, tests);
        let recorded = self
            .run("BEGIN TRANSACTION", log)
            .and_then(|()| self.run_all(&updates, log))
            .and_then(|()| self.commit(log));
        if recorded.is_err() {
            self.rollback(log);
        }
        recorded
    }

    fn for_each_row(
        &mut self,
        sql: &str,
        each: &mut dyn FnMut(Vec<Option<String>>) -> bool,
    ) -> DbResult<()> {
        let wrapped = format!("SELECT COLUMNS(*)::VARCHAR FROM (\n{}\n)", body(sql));
        self.stream_text(&wrapped, each).map(|_| ())
    }

    fn query(&mut self, sql: &str, limit: usize) -> DbResult<Rows> {
        let mut rows = self.text_rows(&format!(
            "SELECT COLUMNS(*)::VARCHAR FROM (\n{}\n) LIMIT {limit}",
            body(sql)
        ))?;
        // Every value is read as text: the query's own types, described, say what it was.
        let described = Statements::describe(self, &format!("(\n{}\n) AS q", body(sql)));
        rows.types =
            described.map_or_else(|_| Vec::new(), |d| d.into_iter().map(|(_, t)| t).collect());
        Ok(rows)
    }
}
