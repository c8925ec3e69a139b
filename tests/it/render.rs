//! Data-driven rendering snapshots: each `render/*.txt` is a whole project; its compiled SQL
//! (every file under target/compiled, in path order) must equal `render/*.out`. To accept a
//! change, run the tests with `UPDATE_SNAPSHOTS=1` and review the diff in git.

use super::harness::{project, xform};

fn compiled_sql(root: &std::path::Path) -> String {
    let base = root.join("target/compiled");
    let mut files: Vec<_> = walk(&base);
    files.sort();
    files
        .iter()
        .map(|p| {
            format!(
                "-- {}\n{}",
                p.strip_prefix(&base).unwrap().display(),
                std::fs::read_to_string(p).unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[test]
fn render_snapshots() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/render");
    let mut paths: Vec<_> = walk(&fixtures)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for path in paths {
        let fixture = std::fs::read_to_string(&path).unwrap();
        let dir = project(&fixture);
        let out = xform(dir.path(), &["compile"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        check_snapshot(
            &path.with_extension("out"),
            &format!("{}{}", out.stderr, compiled_sql(dir.path())),
        );
    }
}

fn check_snapshot(expected_path: &std::path::Path, actual: &str) {
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(expected_path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(expected_path).unwrap_or_default();
    assert!(
        expected.trim_end() == actual.trim_end(),
        "{} differs (UPDATE_SNAPSHOTS=1 cargo test to accept, then review the diff)\n\
         --- expected\n{expected}\n--- actual\n{actual}",
        expected_path.display()
    );
}

#[test]
fn inline_compiles_in_project_context() {
    let dir = project("-- file: models/orders.sql\nselect 1 as id\n");
    let out = xform(
        dir.path(),
        &[
            "compile",
            "--inline",
            "select * from {{ ref('orders') }} where {{ is_incremental() }}",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "select * from \"main\".\"orders\" where False");
    assert!(!dir.path().join("target").exists(), "--inline wrote files");
}

#[test]
fn init_scaffolds_a_project_that_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let out = xform(dir.path(), &["init", "shop"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = xform(&dir.path().join("shop"), &["compile"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("compiled 2 models, 1 seed, 5 tests in "),
        "{}",
        out.stdout
    );
    let again = xform(dir.path(), &["init", "shop"]);
    assert_eq!(again.code, 2, "init over a non-empty folder must refuse");
}

#[test]
fn manifest_records_nodes_with_checksums_and_dependencies() {
    let dir = project(
        "-- file: models/a.sql\nselect 1 as id\n-- file: models/b.sql\n{{ config(materialized='table', tags=['nightly']) }}\nselect * from {{ ref('a') }}\n-- file: models/schema.yml\nmodels:\n  - name: b\n    description: B\n    columns:\n      - name: id\n        description: the key\n        data_tests: [not_null]\n",
    );
    assert_eq!(xform(dir.path(), &["compile"]).code, 0);
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/manifest.json")).unwrap(),
    )
    .unwrap();
    let b = &m["nodes"]["model.fixture.b"];
    assert_eq!(
        b["depends_on"]["nodes"],
        serde_json::json!(["model.fixture.a"])
    );
    assert_eq!(b["config"]["materialized"], "table");
    assert_eq!(b["tags"], serde_json::json!(["nightly"]));
    assert_eq!(b["columns"]["id"]["description"], "the key");
    assert_eq!(b["checksum"]["compiled"].as_str().unwrap().len(), 64);
    assert_ne!(b["checksum"]["raw"], b["checksum"]["compiled"]);
    let t = &m["nodes"]["test.fixture.not_null_b_id"];
    assert_eq!(
        t["depends_on"]["nodes"],
        serde_json::json!(["model.fixture.b"])
    );
    assert_eq!(t["test_metadata"]["test_name"], "not_null");
}

#[test]
fn cli_vars_override_project_vars_and_env_var_reads_the_environment() {
    let dir = project(concat!(
        "-- file: project.yml\nname: p\ntargets:\n  dev: { type: duckdb, path: x.duckdb }\nvars:\n  start_date: '2023-01-01'\n",
        "-- file: models/a.sql\nselect '{{ var(\"start_date\") }}' as d, '{{ env_var(\"XFORM_IT_REGION\", \"kr\") }}' as region\n",
    ));
    let out = xform(dir.path(), &["compile", "--inline", "{{ ref('a') }}"]);
    assert_eq!(out.stdout, "\"main\".\"a\"");
    xform(
        dir.path(),
        &["compile", "--vars", "{start_date: '2024-06-01'}"],
    );
    let sql = std::fs::read_to_string(dir.path().join("target/compiled/models/a.sql")).unwrap();
    assert_eq!(sql, "select '2024-06-01' as d, 'kr' as region\n");
}
