//! xform: a SQL-first transformation tool. A project on disk flows through the modules in
//! this order: `project` (load) → `template` (render) → `sql` (parse) → `graph` (DAG,
//! selection) → `compile` (final SQL) → `artifacts` (target/). `adapter` holds everything that
//! differs between warehouses. `cli` is a thin layer over this library.

// A `Diagnostic` is returned by value on the cold, error path; boxing it buys nothing.
#![allow(clippy::result_large_err)]

pub mod adapter;
pub mod artifacts;
pub mod cli;
pub mod compare;
pub mod compile;
pub mod diagnostics;
pub mod execute;
pub mod graph;
pub mod materialize;
pub mod project;
pub mod scaffold;
pub mod sql;
pub mod state;
pub mod template;
pub mod testing;

/// The stack of every thread xform starts (the command's, rayon's workers, the runner's):
/// user content decides how deep some work recurses (sqlparser's and minijinja's trees,
/// DuckDB's parser), within limits set where that content is read; main's 8 MiB and a spawned
/// thread's 2 MiB are not enough for them.
pub const STACK_SIZE: usize = 64 << 20;

/// Hex SHA-256 of a text, as dbt writes checksums.
pub fn checksum(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
