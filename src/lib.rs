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

/// Hex SHA-256 of a text, as dbt writes checksums.
pub fn checksum(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
