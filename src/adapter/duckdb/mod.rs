//! DuckDB, embedded. Its target names a database file (`path:`, else
//! `target/<target>.duckdb`; `:memory:` as it is); the engine itself (`engine.rs`) is built with
//! the `duckdb` cargo feature.
//!
//! How DuckDB carries xform's guarantees: the file is opened once per process and each session
//! is a clone of that connection (a second process gets a clear "in use" error). DDL is
//! transactional, so a build is one transaction — drop the old relation only if its kind
//! changes, `CREATE OR REPLACE` the new one, count its rows, `COMMIT` — and every other
//! connection sees the previous relation until the commit, also when the process is killed.
//! One failing statement aborts a DuckDB transaction (there are no savepoints), so an audited
//! table is staged *aside*: committed as `<name>__xform_audit`, tested in autocommit, then
//! swapped in (drop old, rename, commit: one transaction) or dropped on a connection of its own
//! that Ctrl-C's interrupts do not reach. An incremental run's tests run inside its open
//! transaction; a broken one aborts it (`DbError::TransactionLost`) and the job stages again
//! without it. A run starts by dropping `__xform_audit` tables a killed run left. Ctrl-C calls
//! DuckDB's interrupt on every connection, again every 100 ms until the workers return.
//! An incremental run materializes the new rows as a temp table, reconciles columns
//! (`on_schema_change`), applies the strategy (keys match with `IS NOT DISTINCT FROM`) in the
//! open transaction; a microbatch is one transaction per batch (delete the interval, insert its
//! rows). A snapshot is created with `dbt_scd_id/updated_at/valid_from/valid_to`, then per run
//! changed rows' current versions are closed, vanished ones too (`invalidate_hard_deletes`),
//! and new versions inserted, in one transaction.
//! DuckDB reads CSV only as UTF-8 from a file: a seed decoded from CP949 or UTF-16 is written to
//! a temporary file for the load. Statements run unprepared: through the duckdb crate a
//! prepared CTAS costs 1.7 ms more (measured).

#[cfg(feature = "duckdb")]
mod engine;
#[cfg(feature = "duckdb")]
mod native;
#[cfg(feature = "duckdb")]
mod scalar;
#[cfg(feature = "duckdb")]
mod timestamptz;
#[cfg(feature = "duckdb")]
mod zones;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{DbResult, Warehouse};
use crate::diagnostics::Diagnostics;
use crate::project::Target;

/// A DuckDB target: its database file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    path: PathBuf,
    root: PathBuf,
}

impl Settings {
    pub(crate) fn new(target: &Target, root: &Path, diags: &mut Diagnostics) -> Settings {
        super::unknown_settings(target, &["path"], diags);
        let path = match super::text_setting(target, "path", diags).as_deref() {
            Some(":memory:") => PathBuf::from(":memory:"),
            Some(p) => root.join(p),
            None => root.join("target").join(format!("{}.duckdb", target.name)),
        };
        Settings {
            path,
            root: root.to_path_buf(),
        }
    }

    /// The file relative to the project: `target/dev.duckdb`.
    pub(crate) fn describe(&self, root: &Path) -> String {
        let p = &self.path;
        p.strip_prefix(root).unwrap_or(p).display().to_string()
    }

    pub(crate) fn attachable(&self, other: &Settings) -> Option<PathBuf> {
        (self.path != other.path).then(|| other.path.clone())
    }

    #[cfg(feature = "duckdb")]
    pub(crate) fn open(&self) -> DbResult<Arc<dyn Warehouse>> {
        Ok(Arc::new(engine::DuckDb::open(&self.path, &self.root)?))
    }

    #[cfg(not(feature = "duckdb"))]
    pub(crate) fn open(&self) -> DbResult<Arc<dyn Warehouse>> {
        Err(super::DbError::Failed(
            "this xform was built without DuckDB (cargo feature `duckdb`)".into(),
        ))
    }
}
