//! DuckDB, embedded: the database file is opened once per process and each session is a
//! clone of that connection (opening the file twice would give two unsynchronised instances).
//! DuckDB's DDL is transactional, so a staged build is one transaction that either commits the
//! new relation or leaves the previous one untouched — also when the process is killed.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use duckdb::{Connection, InterruptHandle};

use super::{
    AdapterKind, Build, CsvSource, DbError, DbResult, RelKind, Relation, Rows, Session, Staged,
    Warehouse,
};

const KIND: AdapterKind = AdapterKind::DuckDb;

pub struct DuckDb {
    root: Mutex<Connection>,
    interrupts: Mutex<Vec<Arc<InterruptHandle>>>,
}

impl DuckDb {
    pub fn open(path: &Path) -> DbResult<DuckDb> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        Ok(DuckDb {
            root: Mutex::new(conn),
            interrupts: Mutex::default(),
        })
    }
}

fn open_error(path: &Path, e: duckdb::Error) -> DbError {
    let text = e.to_string();
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
        Ok(Box::new(DuckSession { conn }))
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
}

fn rel(r: &Relation) -> String {
    KIND.relation(&r.schema, &r.name)
}

/// A model's SQL without the trailing `;` it may end with, to embed in a statement.
fn body(sql: &str) -> &str {
    sql.trim_end().trim_end_matches(';').trim_end()
}

/// `sql` as a subquery returning at most `limit` rows.
fn limited(sql: &str, limit: Option<u64>) -> String {
    match limit {
        Some(n) => format!("SELECT * FROM (\n{}\n) AS limited LIMIT {n}", body(sql)),
        None => format!("\n{}\n", body(sql)),
    }
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn kind_word(k: RelKind) -> &'static str {
    match k {
        RelKind::Table => "TABLE",
        RelKind::View => "VIEW",
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
                KIND.quote(&relation.name)
            ),
            log,
        )
    }

    /// Executes one statement unprepared: a prepared CTAS costs 1.7 ms more per statement
    /// (measured), more than xform's whole per-node overhead.
    fn run(&self, sql: &str, log: &mut Vec<String>) -> DbResult<()> {
        log.push(sql.to_string());
        self.conn.execute_batch(sql).map_err(failed)
    }

    fn rollback(&self) {
        let _ = self.conn.execute_batch("ROLLBACK");
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
        &self,
        relation: &Relation,
        build: Build<'_>,
        replaces: Option<RelKind>,
        aside: bool,
        log: &mut Vec<String>,
    ) -> DbResult<Staged> {
        let kind = match build {
            Build::View(_) => RelKind::View,
            Build::Table(_) | Build::Seed(_) => RelKind::Table,
        };
        let target = if aside {
            Relation::new(&relation.schema, format!("{}__xform_audit", relation.name))
        } else {
            relation.clone()
        };
        if let Some(old) = replaces.filter(|&old| old != kind && !aside) {
            self.run(&format!("DROP {} {}", kind_word(old), rel(relation)), log)?;
        }
        let published = aside.then(|| (relation.clone(), replaces));
        let relation = &target;
        let rows = match build {
            Build::View(sql) => {
                let create = format!("CREATE OR REPLACE VIEW {} AS\n{}", rel(relation), body(sql));
                self.run(&create, log)?;
                None
            }
            Build::Table(sql) => {
                let create = format!(
                    "CREATE OR REPLACE TABLE {} AS\n{}",
                    rel(relation),
                    body(sql)
                );
                self.run(&create, log)?;
                Some(self.count(relation)?)
            }
            Build::Seed(csv) => Some(self.load_csv(relation, csv, log)?),
        };
        Ok(Staged::new(rows, target.clone(), published))
    }

    /// Loads through DuckDB's own CSV reader; rows it cannot read are collected in its
    /// rejects table, and the first one fails the load with its line and column.
    fn load_csv(&self, into: &Relation, csv: &CsvSource, log: &mut Vec<String>) -> DbResult<u64> {
        let sql = format!(
            "CREATE OR REPLACE TABLE {} AS SELECT * FROM read_csv({}, {})",
            rel(into),
            literal(&csv.path.to_string_lossy()),
            csv_options(csv)
        );
        self.run(&sql, log)?;
        let first_reject = self
            .conn
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
            })?;
        match first_reject {
            Some((line, column, message)) => Err(DbError::BadRow {
                line,
                column,
                message: clean_reject_message(&message),
            }),
            None => self.count(into),
        }
    }
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

    fn create_schemas(&mut self, schemas: &[String], log: &mut Vec<String>) -> DbResult<()> {
        for s in schemas {
            self.run(
                &format!("CREATE SCHEMA IF NOT EXISTS {}", KIND.quote(s)),
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
        aside: bool,
        log: &mut Vec<String>,
    ) -> DbResult<Staged> {
        // Aside, the new table is committed under its own name first: tests then run outside
        // any transaction (in DuckDB one failing statement aborts the transaction it is in, so
        // a broken test could not be told from the others), and `publish` swaps it in within
        // one short transaction.
        if !aside {
            self.run("BEGIN TRANSACTION", log)?;
        }
        let staged = self.create(relation, build, replaces, aside, log);
        if staged.is_err() && !aside {
            self.rollback();
        }
        staged
    }

    fn publish(&mut self, staged: Staged, log: &mut Vec<String>) -> DbResult<Staged> {
        let swapped = match &staged.aside {
            Some((relation, replaces)) => self
                .run("BEGIN TRANSACTION", log)
                .and_then(|()| self.swap_in(&staged.readable_as, relation, *replaces, log)),
            None => Ok(()),
        };
        match swapped.and_then(|()| self.run("COMMIT", log)) {
            Ok(()) => Ok(staged),
            Err(e) => {
                self.rollback();
                if staged.aside.is_some() {
                    let _ = self.discard(staged, log);
                }
                Err(e)
            }
        }
    }

    fn discard(&mut self, staged: Staged, log: &mut Vec<String>) -> DbResult<()> {
        match staged.aside {
            None => {
                self.rollback();
                Ok(())
            }
            Some(_) => self.run(
                &format!("DROP TABLE IF EXISTS {}", rel(&staged.readable_as)),
                log,
            ),
        }
    }

    fn count_failures(&mut self, queries: &[(&str, Option<u64>)]) -> DbResult<Vec<u64>> {
        let parts: Vec<String> = queries
            .iter()
            .enumerate()
            .map(|(i, (sql, limit))| {
                format!(
                    "SELECT {i} AS i, count(*) AS n FROM ({}) AS t{i}",
                    limited(sql, *limit)
                )
            })
            .collect();
        let sql = parts.join("\nUNION ALL\n");
        let mut stmt = self.conn.prepare(&sql).map_err(failed)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, usize>(0)?, r.get::<_, u64>(1)?)))
            .map_err(failed)?;
        let mut out = vec![0; queries.len()];
        for row in rows {
            let (i, n) = row.map_err(failed)?;
            out[i] = n;
        }
        Ok(out)
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
        self.run(&create, log)?;
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

    fn query(&mut self, sql: &str, limit: usize) -> DbResult<Rows> {
        let wrapped = format!(
            "SELECT COLUMNS(*)::VARCHAR FROM (\n{}\n) LIMIT {limit}",
            body(sql)
        );
        let mut stmt = self.conn.prepare(&wrapped).map_err(failed)?;
        let mut out = Rows::default();
        let mut rows = stmt.query([]).map_err(failed)?;
        while let Some(row) = rows.next().map_err(failed)? {
            let n = row.as_ref().column_count();
            let values = (0..n)
                .map(|i| row.get::<_, Option<String>>(i))
                .collect::<Result<_, _>>()
                .map_err(failed)?;
            out.rows.push(values);
        }
        drop(rows);
        out.columns = stmt.column_names();
        Ok(out)
    }
}
