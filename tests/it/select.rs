//! Selection on a generated 1,000-model project, checked against a graph built independently
//! from the model files' `ref('...')` calls; and every compiled file must parse.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::harness::{project, xform};

/// The 1,000-model project from ../shared/bench/gen_project.py, compiled once.
fn generated() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/gen_project.py");
        assert!(
            script.exists(),
            "the benchmark generator is missing: {}",
            script.display()
        );
        // Cargo's scratch folder for integration tests: regenerated in place on every run.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("generated_1000");
        let ok = std::process::Command::new("python3")
            .arg(&script)
            .args(["--models", "1000", "--out"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("python3");
        assert!(ok.success());
        let out = xform(&dir, &["compile"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stderr.is_empty(),
            "warnings on the generated project:\n{}",
            out.stderr
        );
        dir
    })
}

/// model/seed name → names it refs, read with plain text search.
fn ref_graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut g = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root.join("models"))
        .into_iter()
        .flatten()
    {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "sql") {
            let text = std::fs::read_to_string(p).unwrap();
            let refs = text
                .split("ref('")
                .skip(1)
                .map(|r| r.split('\'').next().unwrap().to_string())
                .collect();
            g.insert(p.file_stem().unwrap().to_string_lossy().into_owned(), refs);
        }
    }
    for seed in [
        "seed_companies",
        "seed_customers",
        "seed_products",
        "seed_orders",
    ] {
        g.insert(seed.to_string(), BTreeSet::new());
    }
    g
}

fn closure(
    g: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    up: bool,
    depth: usize,
) -> BTreeSet<String> {
    let mut out = BTreeSet::from([start.to_string()]);
    let mut frontier = vec![start.to_string()];
    for _ in 0..depth {
        if frontier.is_empty() {
            break;
        }
        let next: Vec<String> = frontier
            .iter()
            .flat_map(|n| -> Vec<String> {
                if up {
                    g[n].iter().cloned().collect()
                } else {
                    g.iter()
                        .filter(|(_, ps)| ps.contains(n))
                        .map(|(c, _)| c.clone())
                        .collect()
                }
            })
            .filter(|n| out.insert(n.clone()))
            .collect();
        frontier = next;
    }
    out
}

fn ls(args: &[&str]) -> BTreeSet<String> {
    let mut full = vec!["ls", "--exclude", "resource_type:test"];
    full.extend_from_slice(args);
    let out = xform(generated(), &full);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn graph_selectors_match_the_ref_graph() {
    let g = ref_graph(generated());
    let mart = g
        .keys()
        .find(|k| k.starts_with("mart_00007"))
        .unwrap()
        .clone();
    let an = g
        .keys()
        .find(|k| k.starts_with("an_00150"))
        .unwrap()
        .clone();
    let all = usize::MAX;
    assert_eq!(
        ls(&["-s", &format!("+{mart}")]),
        closure(&g, &mart, true, all)
    );
    assert_eq!(
        ls(&["-s", &format!("2+{mart}")]),
        closure(&g, &mart, true, 2)
    );
    assert_eq!(ls(&["-s", &format!("{an}+")]), closure(&g, &an, false, all));
    assert_eq!(ls(&["-s", &format!("{an}+1")]), closure(&g, &an, false, 1));
    let mut at = BTreeSet::new();
    for d in closure(&g, &an, false, all) {
        at.extend(closure(&g, &d, true, all));
    }
    assert_eq!(ls(&["-s", &format!("@{an}")]), at);
    let union: BTreeSet<String> = closure(&g, &mart, true, 1)
        .union(&closure(&g, &an, false, 1))
        .cloned()
        .collect();
    assert_eq!(ls(&["-s", &format!("1+{mart} {an}+1")]), union);
    let without: BTreeSet<String> = closure(&g, &mart, true, all)
        .into_iter()
        .filter(|n| !n.starts_with("seed_"))
        .collect();
    assert_eq!(
        ls(&["-s", &format!("+{mart}"), "--exclude", "resource_type:seed"]),
        without
    );
}

#[test]
fn attribute_selectors_match_the_files() {
    let root = generated();
    let marts: BTreeSet<String> = ref_graph(root)
        .into_keys()
        .filter(|k| k.starts_with("mart_"))
        .collect();
    assert_eq!(ls(&["-s", "path:models/mart"]), marts);
    let views: BTreeSet<String> = walkdir::WalkDir::new(root.join("models/analytics"))
        .into_iter()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("materialized='view'"))
        })
        .map(|e| e.path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(!views.is_empty());
    assert_eq!(
        ls(&["-s", "path:models/analytics,config.materialized:view"]),
        views
    );
    assert_eq!(ls(&["-s", "resource_type:seed"]).len(), 4);
    assert_eq!(
        ls(&["-s", "raw"]).len(),
        4,
        "a folder name selects the models in it"
    );
}

#[test]
fn every_compiled_model_and_test_parses_as_duckdb_sql() {
    let base = generated().join("target/compiled");
    let mut n = 0;
    for entry in walkdir::WalkDir::new(&base)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
    {
        let sql = std::fs::read_to_string(entry.path()).unwrap();
        let parsed =
            sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::DuckDbDialect {}, &sql);
        assert!(
            matches!(parsed.as_deref(), Ok([_])),
            "{}: {parsed:?}",
            entry.path().display()
        );
        // Generic tests are compiled under their property file: `schema.yml/<test>.sql`.
        let is_test = entry
            .path()
            .parent()
            .is_some_and(|d| d.extension().is_some_and(|e| e == "yml"));
        n += usize::from(!is_test);
    }
    assert_eq!(n, 1000);
}

#[test]
fn tests_follow_their_models_into_a_selection() {
    let dir = project(
        "-- file: models/a.sql\nselect 1 as id\n-- file: models/b.sql\nselect * from {{ ref('a') }}\n-- file: models/schema.yml\nmodels:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [unique]\n  - name: b\n    config: { tags: [nightly] }\n",
    );
    let out = xform(dir.path(), &["ls", "-s", "a"]);
    assert_eq!(out.stdout, "a\nunique_a_id\n");
    let out = xform(dir.path(), &["ls", "-s", "tag:nightly", "--output", "path"]);
    assert_eq!(out.stdout, "models/b.sql\n");
    let out = xform(dir.path(), &["ls", "-s", "a+", "--exclude", "unique_a_id"]);
    assert_eq!(out.stdout, "a\nb\n");
    let out = xform(dir.path(), &["ls", "-s", "nope"]);
    assert!(
        out.stderr.contains("selector `nope` matches no node"),
        "{}",
        out.stderr
    );
    let out = xform(dir.path(), &["ls", "-s", "wat:x"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("unknown method `wat`"),
        "{}",
        out.stderr
    );
}

#[test]
fn source_tests_and_model_level_tests_become_nodes() {
    let dir = project(concat!(
        "-- file: models/sources.yml\nsources:\n  - name: raw_data\n    tables:\n      - name: orders\n        columns:\n          - name: id\n            data_tests: [not_null]\n",
        "-- file: models/a.sql\nselect * from {{ source('raw_data', 'orders') }}\n",
        "-- file: models/schema.yml\nmodels:\n  - name: a\n    data_tests:\n      - unique_combination_of_columns: {combination_of_columns: [id, day]}\n",
    ));
    let out = xform(dir.path(), &["ls", "-s", "source:raw_data+"]);
    assert_eq!(
        out.stdout,
        "source:raw_data.orders\na\nunique_combination_of_columns_a__id__day\nsource_not_null_raw_data_orders_id\n",
        "{}",
        out.stderr
    );
}
