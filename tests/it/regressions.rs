//! Defects found by kill, fault and fuzz trials (issue 14), one test each, named for what
//! broke: a panic, an abort, a leftover, or garbage accepted.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::build::{ok, query, run_results};
use crate::harness::{Output, project, spawn, xform};

/// Twenty views, so a build prints more than its pipe takes in one write.
fn twenty_views() -> tempfile::TempDir {
    let mut fixture = String::new();
    for i in 0..20 {
        fixture.push_str(&format!("-- file: models/v{i:02}.sql\nselect {i} as id\n"));
    }
    project(&fixture)
}

/// Exit 2 without a panic, and stderr says each of `said`.
fn refused(o: &Output, said: &[&str]) {
    assert_no_panic(o);
    assert_eq!(o.code, 2, "{}", o.stderr);
    for s in said {
        assert!(o.stderr.contains(s), "{s:?} not in:\n{}", o.stderr);
    }
}

fn assert_no_panic(o: &Output) {
    assert!(
        !o.stderr.contains("panicked") && o.code != 101,
        "exit {}: {}",
        o.code,
        o.stderr
    );
}

/// Runs xform with its stdout closed before it writes anything (`xform ... | head -0`).
fn with_stdout_closed(dir: &Path, args: &[&str]) -> Output {
    let mut child = spawn(dir, args);
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn with_stdout_full(dir: &Path, args: &[&str]) -> Output {
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = Command::new(crate::harness::bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::from(full))
        .output()
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_closed_stdout_ends_output_quietly_and_the_build_still_finishes() {
    let dir = twenty_views();
    for args in [&["build"][..], &["build", "--log-format", "json"]] {
        let o = with_stdout_closed(dir.path(), args);
        assert_no_panic(&o);
        assert_eq!(o.code, 0, "{args:?}: {}", o.stderr);
        assert_eq!(o.stderr, "", "a closed pipe is no error");
        let results = run_results(dir.path());
        assert_eq!(results["results"].as_array().unwrap().len(), 20);
    }
    // `xform build | head -1`: the reader goes away after the first line.
    let mut child = spawn(dir.path(), &["build"]);
    let mut first = [0u8; 1];
    use std::io::Read;
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    for args in [&["ls", "--output", "json"][..], &["compile"], &["ls"]] {
        let o = with_stdout_closed(dir.path(), args);
        assert_no_panic(&o);
        assert_eq!(o.code, 0, "{args:?}: {}", o.stderr);
    }
}

#[test]
fn a_full_stdout_is_reported_once_and_a_build_keeps_its_results() {
    let dir = twenty_views();
    let o = with_stdout_full(dir.path(), &["build"]);
    assert_no_panic(&o);
    assert_eq!(o.code, 0, "the build itself succeeded: {}", o.stderr);
    let said = o.stderr.matches("cannot write standard output").count();
    assert_eq!(said, 1, "reported once: {}", o.stderr);
    assert!(o.stderr.contains("No space left on device"), "{}", o.stderr);
    assert_eq!(
        run_results(dir.path())["results"].as_array().unwrap().len(),
        20
    );
    // Where the output is what was asked for, losing it fails the command.
    let o = with_stdout_full(dir.path(), &["ls"]);
    refused(&o, &["cannot write standard output"]);
}

fn xform_os(dir: &Path, args: &[OsString]) -> Output {
    let out = Command::new(crate::harness::bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn os(s: &str) -> OsString {
    OsString::from(s)
}

#[test]
fn a_path_argument_that_is_not_utf8_is_used_as_it_is() {
    let dir = twenty_views();
    let bad = OsString::from_vec(b"\xff\xfe".to_vec());
    // A project folder named so builds like any other.
    let weird = dir.path().join(&bad);
    std::fs::create_dir(&weird).unwrap();
    for f in ["project.yml", "models/v00.sql"] {
        std::fs::create_dir_all(weird.join(f).parent().unwrap()).unwrap();
        std::fs::copy(dir.path().join(f), weird.join(f)).unwrap();
    }
    let o = xform_os(
        dir.path(),
        &[os("compile"), os("--project-dir"), bad.clone()],
    );
    assert_no_panic(&o);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(weird.join("target/manifest.json").exists());
    // A folder that does not exist is the usual clear error, whatever its name.
    let missing = OsString::from_vec(b"nope\xff".to_vec());
    let o = xform_os(dir.path(), &[os("compile"), os("--project-dir"), missing]);
    refused(&o, &["no project.yml or dbt_project.yml in nope"]);
    let state = OsString::from_vec(b"state\xfe".to_vec());
    let o = xform_os(dir.path(), &[os("ls"), os("--state"), state]);
    refused(&o, &["--state"]);
    let o = xform_os(dir.path(), &[os("init"), bad.clone()]);
    // `init` refuses a folder that is not empty, and creates one that does not exist.
    refused(&o, &["is not empty"]);
    let fresh = OsString::from_vec(b"new\xff".to_vec());
    let o = xform_os(dir.path(), &[os("init"), fresh.clone()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(dir.path().join(&fresh).join("project.yml").exists());
}

#[test]
fn yaml_nested_thousands_deep_is_an_error_at_its_line_not_a_crash() {
    let deep_block = |levels: usize| {
        let mut s = String::new();
        for i in 0..levels {
            s.push_str(&" ".repeat(i));
            s.push_str("k:\n");
        }
        s
    };
    let dir = project("-- file: models/a.sql\nselect 1 as id\n");
    let settings = format!(
        "name: p\ntargets:\n  dev: {{ type: duckdb }}\nvars:\n{}",
        deep_block(3000)
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    );
    std::fs::write(dir.path().join("project.yml"), settings).unwrap();
    let o = xform(dir.path(), &["compile"]);
    refused(
        &o,
        &["YAML nested more than 200 levels deep", "project.yml:204:"],
    );
    let dir = project(&format!(
        "-- file: models/a.sql\nselect 1 as id\n-- file: models/deep.yml\nmodels:\n{}",
        deep_block(5000)
    ));
    let o = xform(dir.path(), &["compile"]);
    refused(&o, &["models/deep.yml:", "nested more than 200"]);
    assert!(!dir.path().join("target/manifest.json").exists());
}

#[test]
fn a_jinja_filter_chain_40000_long_is_an_error_not_a_crash() {
    let chain = "| lower ".repeat(40_000);
    let dir = project(&format!(
        "-- file: models/a.sql\nselect 1 as id\n-- file: models/b.sql\nselect '{{{{ 'x' {chain}}}}}' as s\n"
    ));
    let o = xform(dir.path(), &["compile"]);
    refused(&o, &["models/b.sql:1:", "too long"]);
    // The same in project.yml, rendered before anything else.
    let dir = project("-- file: models/a.sql\nselect 1 as id\n");
    std::fs::write(
        dir.path().join("project.yml"),
        format!(
            "name: p\ntargets:\n  dev: {{ type: duckdb, schema_prefix: \"{{{{ 'x' {chain}}}}}\" }}\n"
        ),
    )
    .unwrap();
    let o = xform(dir.path(), &["compile"]);
    refused(&o, &["too long"]);
}

const AUDITED: &str = "-- file: project.yml
name: audited
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb }
models:
  +materialized: table
  +schema: analytics
-- file: models/orders.sql
select 1 as id
-- file: models/orders.yml
models:
  - name: orders
    columns:
      - name: id
        data_tests: [unique]
";

#[test]
fn an_audit_table_a_killed_run_left_is_dropped_before_the_next_run_publishes() {
    let dir = project(AUDITED);
    ok(dir.path(), &["build"]);
    // What `kill -9` during the audit of a model leaves: its staged table, committed. (That
    // model has since been deleted, so no build would ever replace the table.)
    {
        let conn = duckdb::Connection::open(dir.path().join("target/dev.duckdb")).unwrap();
        conn.execute_batch("create table analytics.gone__xform_audit as select 2 as id")
            .unwrap();
    }
    let out = ok(dir.path(), &["build"]);
    assert!(
        out.contains("dropped 1 table left behind by an earlier run that was killed: analytics.gone__xform_audit"),
        "{out}"
    );
    let left = query(
        dir.path(),
        "select table_name from information_schema.tables where table_name like '%xform%'",
    );
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_project_yml_that_is_not_utf8_is_refused_at_its_line() {
    let dir = project("-- file: models/a.sql\nselect '{{ var(\"region\") }}' as region\n");
    // "서울" in CP949, as an Excel-minded editor saves it.
    let mut bytes = b"name: p\ntargets:\n  dev: { type: duckdb }\nvars:\n  region: ".to_vec();
    bytes.extend_from_slice(b"\xbc\xad\xbf\xef\n");
    std::fs::write(dir.path().join("project.yml"), bytes).unwrap();
    let o = xform(dir.path(), &["build"]);
    refused(&o, &["project.yml is not valid UTF-8 (line 5", "CP949"]);
    assert!(
        !dir.path().join("target").exists(),
        "nothing may be written"
    );
}

#[test]
fn broken_jinja_outside_a_snapshot_block_is_refused() {
    let dir = project(
        "-- file: models/a.sql\nselect 1 as id\n-- file: snapshots/s.sql\n{% if %}\n{% snapshot s %}\n{{ config(unique_key='id', strategy='check', check_cols='all') }}\nselect * from {{ ref('a') }}\n{% endsnapshot %}\n",
    );
    let o = xform(dir.path(), &["compile"]);
    refused(&o, &["outside the snapshot blocks", "snapshots/s.sql:1:"]);
    // Lines and columns stay the file's after Korean text, outside the block and in it.
    let dir = project(
        "-- file: models/a.sql\nselect 1 as id\n-- file: snapshots/s.sql\n-- 고객 스냅샷 {% if %}\n{% snapshot s %}\n{{ config(unique_key='id', strategy='check', check_cols='all') }}\n-- 고객 {{ nope }}\nselect * from {{ ref('a') }}\n{% endsnapshot %}\n",
    );
    let o = xform(dir.path(), &["compile"]);
    refused(
        &o,
        &["--> snapshots/s.sql:1:17\n", "--> snapshots/s.sql:4:10\n"],
    );
    // Well-formed Jinja there is fine (and renders to nothing).
    let dir = project(
        "-- file: models/a.sql\nselect 1 as id\n-- file: snapshots/s.sql\n{# customers, daily #}\n{% snapshot s %}\n{{ config(unique_key='id', strategy='check', check_cols='all') }}\nselect * from {{ ref('a') }}\n{% endsnapshot %}\n",
    );
    let o = xform(dir.path(), &["compile"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

/// Found by the fuzzer: `{%}` in a snapshot file (a tag that opens and is never closed) made
/// the search for snapshot blocks slice backwards and panic.
#[test]
fn a_tag_opened_and_never_closed_in_a_snapshot_file_is_an_error_not_a_crash() {
    let dir = project(
        "-- file: models/a.sql\nselect 1 as id\n-- file: snapshots/s.sql\n{% snapshot s %}\n{{ config(unique_key='id', strategy='check', check_cols='all') }}\nselect * from {{ ref('a') }}\n{%} endsnapshot %}\n",
    );
    let o = xform(dir.path(), &["compile"]);
    refused(&o, &["snapshots/s.sql:"]);
}

#[test]
fn show_limit_past_the_warehouse_range_is_a_command_line_error() {
    let dir = project("-- file: models/a.sql\nselect 1 as id\n");
    let o = xform(
        dir.path(),
        &["show", "a", "--limit", "18446744073709551615"],
    );
    refused(&o, &["--limit"]);
    assert!(!o.stderr.contains("failed"), "{}", o.stderr);
    let o = xform(dir.path(), &["show", "a", "--limit", "1"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn a_file_name_that_is_not_utf8_is_named_in_the_error() {
    let dir = project("-- file: models/a.sql\nselect 1 as id\n");
    let name = OsString::from_vec(b"models/\xb1\xe8.sql".to_vec());
    std::fs::write(dir.path().join(&name), "select 2 as id\n").unwrap();
    let o = xform(dir.path(), &["compile"]);
    refused(
        &o,
        &[r#"the file name "models/\xB1\xE8.sql" is not valid UTF-8"#],
    );
    assert!(!o.stderr.contains("No such file"), "{}", o.stderr);
}

#[test]
fn a_file_that_became_a_folder_of_the_same_name_still_compiles() {
    let test = "select * from {{ ref('a') }} where id < 0\n";
    let dir = project(&format!(
        "-- file: models/a.sql\nselect 1 as id\n-- file: tests/x.sql\n{test}"
    ));
    ok(dir.path(), &["build"]);
    // tests/x.sql was a test; now it is a folder of tests (target/compiled/tests/x.sql is in
    // the way), and then a file again.
    std::fs::remove_file(dir.path().join("tests/x.sql")).unwrap();
    std::fs::create_dir(dir.path().join("tests/x.sql")).unwrap();
    std::fs::write(dir.path().join("tests/x.sql/inner.sql"), test).unwrap();
    let out = ok(dir.path(), &["build"]);
    assert!(out.contains("inner"), "{out}");
    std::fs::remove_dir_all(dir.path().join("tests/x.sql")).unwrap();
    std::fs::write(dir.path().join("tests/x.sql"), test).unwrap();
    ok(dir.path(), &["build"]);
    assert!(dir.path().join("target/compiled/tests/x.sql").is_file());
}

#[test]
fn a_runaway_jinja_loop_stops_at_its_line() {
    let dir = project(
        "-- file: models/a.sql\nselect 1 as id\n-- file: models/b.sql\nselect 1 as x\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
    );
    let started = Instant::now();
    let o = xform(dir.path(), &["compile"]);
    refused(&o, &["stopped after", "models/b.sql:2:"]);
    assert!(started.elapsed() < Duration::from_secs(60));
    // A macro runs in a render of its own; calling one in a loop still stops.
    let dir = project(
        "-- file: macros/m.sql\n{% macro m() %}{% for j in range(100000) %}{% endfor %}x{% endmacro %}\n-- file: models/b.sql\nselect 1 as x\n{% for i in range(100000) %}{{ m() }}{% endfor %}\n",
    );
    let o = xform(dir.path(), &["compile"]);
    refused(&o, &["stopped after", "models/b.sql:2:"]);
}

#[test]
fn sql_too_large_to_check_is_built_unchecked_and_sql_too_deep_is_refused_not_a_crash() {
    let unions = " union all select 1".repeat(10_001);
    let nested = format!(
        "select * from {}select 1 as x{}",
        "(".repeat(200_000),
        ") t".repeat(200_000)
    );
    let dir = project(&format!(
        "-- file: models/wide.sql\n{{{{ config(materialized='table', sql_check='error') }}}}\nselect 1 as x{unions}\n-- file: models/deep.sql\n{nested}\n"
    ));
    let o = xform(dir.path(), &["build", "-s", "wide"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr.contains("the SQL of `wide` is not checked"),
        "{}",
        o.stderr
    );
    assert_eq!(
        query(dir.path(), "select count(*) from main.wide"),
        [["10002"]]
    );
    // Nested so deep that DuckDB's parser would overflow its stack: the node fails, alone.
    let o = xform(dir.path(), &["build", "-s", "deep"]);
    assert_no_panic(&o);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("nested 200000 parentheses deep"),
        "{}",
        o.stdout
    );
}

#[test]
fn an_empty_selector_is_an_error_not_everything() {
    let dir =
        project("-- file: models/a.sql\nselect 1 as id\n-- file: models/b.sql\nselect 2 as id\n");
    for args in [
        &["ls", "-s", ""][..],
        &["ls", "-s", "  "],
        &["ls", "--exclude", ""],
        &["ls", "-s", "a,,b"],
    ] {
        let o = xform(dir.path(), args);
        assert_eq!(o.code, 2, "{args:?}: {}", o.stdout);
        assert!(o.stdout.is_empty(), "{args:?}: {}", o.stdout);
    }
    let o = xform(dir.path(), &["ls", "-s", ""]);
    assert!(o.stderr.contains("empty selector"), "{}", o.stderr);
}

#[test]
fn two_models_with_one_alias_are_refused_naming_both_files() {
    let dir = project(
        "-- file: models/a.sql\n{{ config(alias='orders') }}\nselect 1 as id\n-- file: models/b.sql\n{{ config(alias='ORDERS') }}\nselect 2 as id\n-- file: models/c.sql\nselect 3 as id\n",
    );
    let o = xform(dir.path(), &["build"]);
    refused(
        &o,
        &[
            "both build `main.ORDERS`",
            "models/a.sql:1:",
            "models/b.sql:1:",
        ],
    );
    assert!(!dir.path().join("target/dev.duckdb").exists());
}

#[test]
fn check_cols_naming_no_column_is_refused() {
    let dir = project(
        "-- file: models/a.sql\nselect 1 as id\n-- file: snapshots/s.sql\n{% snapshot s %}\n{{ config(unique_key='id', strategy='check', check_cols='') }}\nselect * from {{ ref('a') }}\n{% endsnapshot %}\n",
    );
    let o = xform(dir.path(), &["build"]);
    refused(&o, &["`check_cols` names no column"]);
}

#[test]
fn compare_limit_past_the_warehouse_range_is_a_command_line_error() {
    let dir = project("-- file: models/a.sql\nselect 1 as id\n");
    let o = xform(
        dir.path(),
        &["compare", "a", "a", "--limit", "18446744073709551615"],
    );
    refused(&o, &["--limit"]);
}

#[test]
fn an_empty_unique_key_is_no_key() {
    let dir = project(
        "-- file: models/events.sql\n{{ config(materialized='incremental', unique_key='') }}\nselect 1 as id\n",
    );
    ok(dir.path(), &["build"]);
    let out = ok(dir.path(), &["build"]);
    assert!(out.contains("incremental"), "{out}");
    assert_eq!(
        query(dir.path(), "select count(*) from main.events"),
        [["2"]]
    );
}
