//! Tidy: the architecture's walls, read from `src/`. Modules keep to the layer table in
//! ARCHITECTURE.md, no files form an import cycle, SQL text lives only in `sql` and `adapter`,
//! and function bodies stay short (STYLE.md). The source is lexed by hand (no regex crate):
//! comments, literals and `#[cfg(test)]` modules are blanked first, keeping byte offsets and
//! lines, so each check reads only the code that ships. Each check is a function over
//! `(path, text)` pairs; the tests at the bottom feed it synthetic sources.

mod bodies;
mod lex;
mod refs;
mod sql_text;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use bodies::*;
use lex::*;
use refs::*;
use sql_text::*;

/// A source file: its path from the crate root (`src/cli/mod.rs`) and its text.
type File = (String, String);

#[test]
fn modules_use_only_lower_layers() {
    let layers = layers(&read("ARCHITECTURE.md"));
    let offences = layer_offences(&layers, &sources());
    assert!(
        offences.is_empty(),
        "{} references break the layer table in ARCHITECTURE.md (a module uses only modules on \
         rows above its own; `sql` and `diagnostics` use nothing of the crate). Move the item \
         down to a lower layer, or pass it in from the caller:\n{}",
        offences.len(),
        offences.join("\n")
    );
}

#[test]
fn no_cycles_between_files() {
    let cycles = file_cycles(&sources());
    assert!(
        cycles.is_empty(),
        "{} groups of files import each other in a cycle; move what they share into one of \
         them (or a new file below both) so the references point one way:\n{}",
        cycles.len(),
        cycles.join("\n")
    );
}

#[test]
fn sql_text_only_in_sql_and_adapter() {
    let offences = sql_offences(&sources());
    assert!(
        offences.is_empty(),
        "{} string literals outside src/sql and src/adapter/ look like SQL; xform's own SQL \
         belongs behind the adapter (a method on the adapter or its dialect) or in src/sql:\n{}",
        offences.len(),
        offences.join("\n")
    );
}

#[test]
fn function_bodies_are_short() {
    let f = figures(&sources());
    eprintln!("{}", f.summary());
    let over = f.over_30();
    assert!(
        f.median <= 8.0 && over.len() * 10 <= f.bodies.len(),
        "function bodies are long (STYLE.md: mostly under 10 lines, rarely over 30): median {} \
         (at most 8), {} of {} over 30 lines (at most 10%). Split these (lines file:line fn):\n{}",
        f.median,
        over.len(),
        f.bodies.len(),
        over.join("\n")
    );
}

pub(super) fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `.rs` file under src/, sorted by path.
pub(super) fn sources() -> Vec<File> {
    let mut paths = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "src",
        &mut paths,
    );
    paths.sort();
    paths.into_iter().map(|p| (p.clone(), read(&p))).collect()
}

pub(super) fn rust_files(dir: &Path, relative: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("dir entry"))
    {
        let name = format!("{relative}/{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            rust_files(&entry.path(), &name, out);
        } else if name.ends_with(".rs") {
            out.push(name);
        }
    }
}

/// The module a file defines: src/cli/mod.rs and src/cli.rs are `[cli]`, src/cli/out.rs is
/// `[cli, out]`, src/lib.rs is the crate root `[]`.
pub(super) fn module_of(path: &str) -> Vec<String> {
    let inner = path.trim_start_matches("src/").trim_end_matches(".rs");
    let mut module: Vec<String> = inner.split('/').map(String::from).collect();
    if module.last().is_some_and(|m| m == "mod") || path == "src/lib.rs" {
        module.pop();
    }
    module
}

/// src/main.rs is the binary's crate, which reaches the library only as `xform::`.
pub(super) fn in_library(file: &&File) -> bool {
    file.0 != "src/main.rs"
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    1 + text[..offset].matches('\n').count()
}

/// Files given as `-- file: path` sections of one string.
fn files(fixture: &str) -> Vec<File> {
    let sections = fixture.split("-- file: ").skip(1);
    let split = sections.map(|s| s.split_once('\n').expect("a path line"));
    split.map(|(p, t)| (p.to_string(), t.to_string())).collect()
}

const TABLE: &str = r"# xform

## Layers

Prose with `backticks` is not a row.

| layer | modules |
|---|---|
| 0 | `sql`, `diagnostics` |
| 1 | `project` |
| 2 | `adapter` |
| 3 | `cli` |

## Next

| 9 | `late` |
";

#[test]
fn layer_table_is_read_in_row_order() {
    let t = layers(TABLE);
    let ranks: Vec<(&str, usize)> = t.iter().map(|(m, l)| (m.as_str(), l.rank)).collect();
    let want = [
        ("adapter", 2),
        ("cli", 3),
        ("diagnostics", 0),
        ("project", 1),
        ("sql", 0),
    ];
    assert_eq!(ranks, want);
}

#[test]
fn upward_and_layer_zero_references_are_flagged() {
    let src = files(
        r#"-- file: src/adapter/mod.rs
fn f() { super::cli::run(); crate::checksum(""); }
#[cfg(test)]
mod tests { use crate::cli; }
-- file: src/extra/mod.rs
use crate::cli;
-- file: src/project/x.rs
//! uses crate::cli in a comment
use crate::cli::x;
fn f() { crate::diagnostics::g("crate::cli") }
-- file: src/project/y.rs
use crate::{
    diagnostics,
    cli::{self, out::{a, b as c}},
};
-- file: src/sql.rs
fn f() -> usize { crate::STACK_SIZE }
"#,
    );
    let found = layer_offences(&layers(TABLE), &src);
    let at: Vec<&str> = found
        .iter()
        .map(|o| o.split(": ").next().unwrap())
        .collect();
    let y = "src/project/y.rs:3";
    let want = [
        "src/adapter/mod.rs:1",
        "src/extra/mod.rs",
        "src/project/x.rs:2",
        y,
        y,
        y,
        "src/sql.rs:1",
    ];
    assert_eq!(at, want, "{found:#?}");
    assert!(found[1].contains("add it to the layer table"), "{found:#?}");
    let upward = "`project` (layer 1) uses `crate::cli::x` (layer 3), which is not above it";
    assert!(found[2].ends_with(upward), "{found:#?}");
    assert!(found[6].contains("`crate::STACK_SIZE`"), "{found:#?}");
}

#[test]
fn two_file_cycle_is_found_and_parent_child_is_not() {
    let src = files(
        r"-- file: src/cli/mod.rs
mod a;
use self::a::A;
pub struct G;
-- file: src/cli/a.rs
use super::G;
use super::b::B;
-- file: src/cli/b.rs
fn f() {
    crate::cli::a::run()
}
-- file: src/other.rs
use crate::cli::a;
",
    );
    let want = "cycle between cli::a, cli::b:
    cli::a -> cli::b at src/cli/a.rs:2
    cli::b -> cli::a at src/cli/b.rs:2";
    assert_eq!(file_cycles(&src), [want]);
}

#[test]
fn sql_literals_are_flagged_outside_sql_and_adapter() {
    let code = r#"fn f<'a>(rel: &'a str) -> (char, String) {
    let q = '"';
    (q, format!("SELECT * FROM {rel}"))
}
"#;
    let fixture = [
        "src/cli/x.rs",
        "src/adapter/x.rs",
        "src/sql/x.rs",
        "src/sql.rs",
    ]
    .map(|path| format!("-- file: {path}\n{code}"))
    .concat();
    let want = r#"src/cli/x.rs:3: `select … from` in "SELECT * FROM {rel}""#;
    assert_eq!(sql_offences(&files(&fixture)), [want]);
}

#[test]
fn sql_in_raw_and_byte_strings_is_flagged_but_not_in_tests() {
    let src = files(
        r###"-- file: src/compile/y.rs
const A: &str = r#"create or replace temp table "t" as"#;
const B: &[u8] = b"DROP VIEW v";
#[cfg(test)]
mod tests { const C: &str = "select 1"; }
"###,
    );
    let found = sql_offences(&src);
    let at: Vec<&str> = found
        .iter()
        .map(|o| o.split(" in ").next().unwrap())
        .collect();
    let want = [
        "src/compile/y.rs:1: `create or replace temp table`",
        "src/compile/y.rs:2: `drop view`",
    ];
    assert_eq!(at, want, "{found:#?}");
}

#[test]
fn english_about_sql_is_not_flagged() {
    let prose = [
        "a model is one SELECT statement",
        "write only the SELECT; xform creates the view or table around it",
        "wrap the query: {% snapshot x %} select ... {% endsnapshot %}",
        "selector `{}` needs --state DIR, a folder with {missing} from an earlier run",
        "cannot attach target `{t}`: {e}",
    ];
    for text in prose {
        assert_eq!(sql_phrase(text), None, "{text}");
    }
    let sql = [
        "select 1",
        "WITH a AS (select 2)",
        "x\nUNION ALL y",
        "CAST(x AS int)",
        "ATTACH 'f.db'",
    ];
    for text in sql {
        assert!(sql_phrase(text).is_some(), "{text}");
    }
}

#[test]
fn lexer_tells_chars_from_lifetimes_and_nests_comments() {
    let text = r####"fn a<'b>(x: &'b u8) -> u8 { /* a /* b */ " */ b'"' } // "
let s = "q\""; let r = r##"a"#b"##; let c = '\''; let k = '가';"####;
    let found: Vec<(Kind, &str)> = lex(text).into_iter().map(|(k, s)| (k, &text[s])).collect();
    use Kind::*;
    let want = [
        (Comment, r#"/* a /* b */ " */"#),
        (Char, r#"b'"'"#),
        (Comment, r#"// ""#),
        (Str, r#""q\"""#),
        (Str, r###"r##"a"#b"##"###),
        (Char, r"'\''"),
        (Char, "'가'"),
    ];
    assert_eq!(found, want);
}

#[test]
fn bodies_count_lines_between_braces_and_skip_tests() {
    let text = r#"fn one() { 1 }
fn two(
    x: [u8; 2],
) -> u8 {
    let y = "}";
    x[0]
}
trait T { fn declared(&self); }
#[cfg(test)]
mod tests {
    fn hidden() {}
}
"#;
    let found: Vec<(String, usize)> = bodies(&lexed(text).code)
        .into_iter()
        .map(|(name, _, lines)| (name, lines))
        .collect();
    assert_eq!(found, [("one".to_string(), 1), ("two".to_string(), 2)]);
}

#[test]
fn a_tidy_tree_passes_every_check() {
    let src = files(
        r##"-- file: src/lib.rs
pub mod adapter;
pub mod cli;
pub const STACK_SIZE: usize = 1;
-- file: src/sql.rs
//! No `crate::` here, only in comments: crate::cli.
pub fn parse(text: &str) -> &str {
    text
}
-- file: src/project/mod.rs
mod nodes;
use crate::{diagnostics::Diagnostic, sql};
pub(crate) fn load() -> usize {
    nodes::count() + crate::STACK_SIZE
}
-- file: src/project/nodes.rs
use super::load;
pub fn count() -> usize { 1 }
-- file: src/adapter/mod.rs
pub fn create(rel: &str) -> String {
    format!("CREATE OR REPLACE TABLE {rel} AS SELECT * FROM x")
}
#[cfg(test)]
mod tests {
    use crate::cli::run;
}
-- file: src/cli/mod.rs
mod out;
use crate::{adapter::create, project};
pub fn run<'a>(name: &'a str) -> char {
    out::say("write only the SELECT; xform creates the view or table around it");
    let _ = r#"a model is one SELECT statement"#;
    '"'
}
-- file: src/cli/out.rs
pub fn say(text: &str) {
    super::run(text);
}
"##,
    );
    let table = layers(TABLE);
    assert_eq!(layer_offences(&table, &src), Vec::<String>::new());
    assert_eq!(file_cycles(&src), Vec::<String>::new());
    assert_eq!(sql_offences(&src), Vec::<String>::new());
    let f = figures(&src);
    assert_eq!(
        (f.bodies.len(), f.median, f.over_30().len()),
        (6, 1.0, 0),
        "{}",
        f.summary()
    );
}

/// The repository root is the example project, and xform reads `.sql` and `.yml` files
/// under `tests/` as its data tests: no fixture of the Rust tests may look like one (it
/// broke `cargo run -- build` once).
#[test]
fn no_fixture_under_tests_it_is_read_by_the_example_project() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let read: Vec<String> = walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().display().to_string())
        .filter(|p| [".sql", ".yml", ".yaml"].iter().any(|x| p.ends_with(x)))
        .collect();
    assert!(
        read.is_empty(),
        "the example project would read these as tests: {read:?}"
    );
}
