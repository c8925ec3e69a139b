//! Benchmark helper, not part of xform: executes SQL statements one after another, each in
//! autocommit, in one DuckDB process — the floor any tool running the same SQL pays. It links
//! the same DuckDB build as xform, so the two are compared on equal terms.
//!
//!   replay DATABASE SQL_FILE      statements in SQL_FILE are separated by lines holding `;;`
//! Prints the seconds spent executing (opening the database excluded).

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, file] = &args[..] else {
        eprintln!("usage: replay DATABASE SQL_FILE");
        std::process::exit(2);
    };
    let conn = duckdb::Connection::open(db).expect("open database");
    let text = std::fs::read_to_string(file).expect("read SQL file");
    let clock = Instant::now();
    for stmt in text.split("\n;;\n").filter(|s| !s.trim().is_empty()) {
        if let Err(e) = conn.execute_batch(stmt) {
            eprintln!("replay: {e}\n{stmt}");
            std::process::exit(1);
        }
    }
    println!("{:.3}", clock.elapsed().as_secs_f64());
}
