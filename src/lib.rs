//! xform: a SQL-first transformation tool. A project on disk flows through the modules in
//! this order: `project` (load) → `template` (render) → `sql` (parse) → `graph` (DAG,
//! selection) → `compile` (final SQL) → `artifacts` (target/). `adapter` holds everything that
//! differs between warehouses. `cli` is a thin layer over this library.

// A `Diagnostic` is returned by value on the cold, error path; boxing it buys nothing.
#![allow(clippy::result_large_err)]

pub(crate) mod adapter;
pub(crate) mod artifacts;
pub mod cli;
pub(crate) mod compare;
pub(crate) mod compile;
pub(crate) mod diagnostics;
pub(crate) mod execute;
pub(crate) mod graph;
pub(crate) mod lineage;
pub(crate) mod lint;
pub(crate) mod materialize;
pub(crate) mod project;
pub(crate) mod scaffold;
pub(crate) mod sql;
pub(crate) mod state;
pub(crate) mod template;
pub(crate) mod testing;

/// The stack of every thread xform starts (the command's, rayon's workers, the runner's):
/// user content decides how deep some work recurses (sqlparser's and minijinja's trees,
/// DuckDB's parser), within limits set where that content is read; main's 8 MiB and a spawned
/// thread's 2 MiB are not enough for them.
pub(crate) const STACK_SIZE: usize = 64 << 20;

/// Hex SHA-256 of a text, as dbt writes checksums.
pub(crate) fn checksum(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(text.as_bytes()))
}

/// Bytes as lower-case hexadecimal text (a digest's usual spelling).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}
