//! Benchmark helper, not part of xform: what sqlparser alone costs to read the SQL that
//! `xform compile` checks — the floor of a cold compile's `sql_check`.
//!
//!   parse_floor DIR      every `.sql` file under DIR (`target/compiled`: models and tests)
//! Prints the files and bytes read, then the seconds sqlparser spends tokenizing and
//! tokenizing + parsing them all on one thread, in DuckDB's dialect, best of 3.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Tokenizer;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: parse_floor DIR");
        std::process::exit(2);
    };
    let mut files = Vec::new();
    collect(Path::new(&dir), &mut files);
    let texts: Vec<String> = files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    println!("{} files, {:.1} MB", texts.len(), bytes as f64 / 1e6);
    let dialect = DuckDbDialect {};
    let tokenize = |sql: &str| {
        Tokenizer::new(&dialect, sql)
            .with_unescape(true)
            .tokenize_with_location()
    };
    let tokens = best_of_3(|| {
        for t in &texts {
            let _ = tokenize(t);
        }
    });
    let parsed = best_of_3(|| {
        for t in &texts {
            if let Ok(tokens) = tokenize(t) {
                let _ = Parser::new(&dialect)
                    .with_tokens_with_locations(tokens)
                    .parse_statements();
            }
        }
    });
    println!("sqlparser, one thread: tokenize {tokens:.2} s, tokenize + parse {parsed:.2} s");
}

fn best_of_3(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let clock = Instant::now();
            f();
            clock.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// The `.sql` files under `dir`.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
}
