//! The catalogue of broken projects: each must exit 2, write nothing, and name the file and
//! line of the mistake (`--> file:line:`) with a useful message.

use super::harness::{project, xform};

struct Case {
    name: &'static str,
    fixture: &'static str,
    args: &'static [&'static str],
    /// Every string must appear in stderr.
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "ref_to_a_disabled_model",
        fixture: "-- file: models/a.sql\n{{ config(enabled=1 > 2) }}\nselect 1 as x\n-- file: models/b.sql\nselect * from {{ ref('a') }}\n-- file: models/c.sql\nselect * from {{ ref('d') }}\n-- file: models/props.yml\nmodels:\n  - name: d\n    config: {enabled: false}\n-- file: models/d.sql\nselect 1 as y\n",
        args: &[],
        expect: &[
            "ref('a'): `a` is disabled",
            "models/b.sql:1:",
            "ref('d'): `d` is disabled",
            "models/c.sql:1:",
            "enabled: false",
        ],
    },
    Case {
        name: "cycle",
        fixture: "-- file: models/a.sql\nselect * from {{ ref('b') }}\n-- file: models/b.sql\nselect * from {{ ref('c') }}\n-- file: models/c.sql\nselect * from {{ ref('a') }}\n",
        args: &[],
        expect: &[
            "dependency cycle: a → c → b → a",
            "models/c.sql:1:",
            "models/b.sql:1:",
            "models/a.sql:1:",
        ],
    },
    Case {
        name: "self_ref",
        fixture: "-- file: models/a.sql\nselect 1 as x\nunion all select * from {{ ref('a') }}\n",
        args: &[],
        expect: &["dependency cycle: a → a", "models/a.sql:2:"],
    },
    Case {
        name: "missing_ref",
        fixture: "-- file: models/customers.sql\nselect 1 as id\n-- file: models/orders.sql\nselect *\nfrom {{ ref('custmers') }}\n",
        args: &[],
        expect: &[
            "no model or seed named `custmers`",
            "models/orders.sql:2:",
            "did you mean `customers`?",
        ],
    },
    Case {
        name: "duplicate_model_name",
        fixture: "-- file: models/a/orders.sql\nselect 1\n-- file: models/b/orders.sql\nselect 2\n",
        args: &[],
        expect: &[
            "two models are named `orders`",
            "models/a/orders.sql",
            "models/b/orders.sql",
        ],
    },
    Case {
        name: "bad_yaml_project",
        fixture: "-- file: project.yml\nname: p\ntargets:\n  dev: { type: duckdb\nmodels: {}\n",
        args: &[],
        expect: &["invalid YAML", "project.yml:4:"],
    },
    Case {
        name: "bad_yaml_property_file",
        fixture: "-- file: models/a.sql\nselect 1 as id\n-- file: models/schema.yml\nmodels:\n  - name: a\n    columns:\n      - name: id\n     data_tests: [unique]\n",
        args: &[],
        expect: &["invalid YAML", "models/schema.yml:5:"],
    },
    Case {
        name: "wrong_type_in_property_file",
        fixture: "-- file: models/a.sql\nselect 1 as id\n-- file: models/schema.yml\nmodels:\n  - name: a\n    columns: id\n",
        args: &[],
        expect: &[
            "`columns` must be a list, found a string",
            "models/schema.yml:3:14",
        ],
    },
    Case {
        name: "jinja_syntax_error",
        fixture: "-- file: models/a.sql\nselect 1 as x\n{% if true %}\nfrom t\n",
        args: &[],
        expect: &["Jinja syntax error", "models/a.sql:"],
    },
    Case {
        name: "unknown_macro",
        fixture: "-- file: macros/m.sql\n{% macro cents(x) %}{{ x }} * 100{% endmacro %}\n-- file: models/a.sql\nselect\n  {{ cent('amount') }} as c\nfrom t\n",
        args: &[],
        expect: &[
            "unknown function or macro",
            "models/a.sql:2:",
            "did you mean `cents`?",
        ],
    },
    Case {
        name: "undefined_var",
        fixture: "-- file: models/a.sql\nselect 1\nwhere d >= '{{ var(\"start_date\") }}'\n",
        args: &[],
        expect: &["var('start_date') is not defined", "models/a.sql:2:"],
    },
    Case {
        name: "undefined_source",
        fixture: "-- file: models/a.sql\nselect * from {{ source('raw_data', 'orders') }}\n",
        args: &[],
        expect: &[
            "source('raw_data', 'orders'): no such source table is declared",
            "models/a.sql:1:",
        ],
    },
    Case {
        name: "unknown_materialization_in_model",
        fixture: "-- file: models/a.sql\n-- header\n{{ config(materialized='tabel') }}\nselect 1\n",
        args: &[],
        expect: &[
            "unknown materialization `tabel`",
            "models/a.sql:2:",
            "did you mean `table`?",
        ],
    },
    Case {
        name: "unknown_materialization_in_project",
        fixture: "-- file: project.yml\nname: p\ntargets:\n  dev: { type: duckdb, path: x.duckdb }\nmodels:\n  +materialized: viewz\n-- file: models/a.sql\nselect 1\n",
        args: &[],
        expect: &["unknown materialization `viewz`", "project.yml:5:"],
    },
    Case {
        name: "materialized_not_a_string",
        fixture: "-- file: models/a.sql\n{{ config(materialized=1) }}\nselect 1\n",
        args: &[],
        expect: &[
            "`materialized` must be a string, found 1",
            "models/a.sql:1:",
        ],
    },
    Case {
        name: "two_statements",
        fixture: "-- file: models/a.sql\nselect 1;\nselect 2\n",
        args: &[],
        expect: &["has 2 SQL statements", "models/a.sql:1:"],
    },
    Case {
        name: "not_a_query",
        fixture: "-- file: models/a.sql\ninsert into t values (1)\n",
        args: &[],
        expect: &["not a query", "models/a.sql:1:"],
    },
    Case {
        name: "sql_check_error",
        fixture: "-- file: models/a.sql\n{{ config(sql_check='error') }}\nselect 1\nfrom t where (x\n",
        args: &[],
        expect: &["SQL does not parse", "target/compiled/models/a.sql:3:15"],
    },
    Case {
        name: "runaway_recursion_in_one_file",
        fixture: "-- file: macros/m.sql\n{% macro forever(n) %}{{ forever(n + 1) }}{% endmacro %}\n-- file: models/a.sql\nselect {{ forever(0) }}\n",
        args: &[],
        expect: &["nested more than 64 calls deep", "macros/m.sql:1:"],
    },
    Case {
        name: "runaway_recursion_across_files",
        fixture: "-- file: macros/a.sql\n{% macro ping(n) %}{{ pong(n) }}{% endmacro %}\n-- file: macros/b.sql\n{% macro pong(n) %}{{ ping(n) }}{% endmacro %}\n-- file: models/a.sql\nselect {{ ping(0) }}\n",
        args: &[],
        expect: &["nested more than 64 calls deep", "macros/"],
    },
    Case {
        name: "error_inside_macro_shows_call_chain",
        fixture: "-- file: macros/m.sql\n{% macro pick(col) %}\n  {{ col }} + {{ var('missing') }}\n{% endmacro %}\n-- file: models/a.sql\nselect\n  {{ pick('x') }} as y\nfrom t\n",
        args: &[],
        expect: &[
            "var('missing') is not defined",
            "macros/m.sql:2:",
            "models/a.sql:2:",
            "calls macro `pick`",
        ],
    },
    Case {
        name: "unknown_target",
        fixture: "-- file: models/a.sql\nselect 1\n",
        args: &["-t", "prd"],
        expect: &["unknown target `prd`", "targets in project.yml: dev"],
    },
    Case {
        name: "wrong_type_in_project",
        fixture: "-- file: project.yml\nname: p\ntargets:\n  dev: { type: duckdb, threads: many }\n-- file: models/a.sql\nselect 1\n",
        args: &[],
        expect: &[
            "`threads` must be a positive whole number",
            "project.yml:3:",
        ],
    },
    Case {
        name: "unknown_target_type",
        fixture: "-- file: project.yml\nname: p\ntargets:\n  dev:\n    type: snowflak\n-- file: models/a.sql\nselect 1\n",
        args: &[],
        expect: &["unknown type `snowflak`", "project.yml:4:"],
    },
    Case {
        name: "unknown_generic_test",
        fixture: "-- file: models/a.sql\nselect 1 as id\n-- file: models/schema.yml\nmodels:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [uniqe]\n",
        args: &[],
        expect: &[
            "unknown data test `uniqe`",
            "models/schema.yml:5:",
            "did you mean `unique`?",
        ],
    },
    Case {
        name: "relationship_to_missing_model",
        fixture: "-- file: models/a.sql\nselect 1 as id\n-- file: models/schema.yml\nmodels:\n  - name: a\n    columns:\n      - name: id\n        data_tests:\n          - relationships: {to: \"ref('custs')\", field: id}\n",
        args: &[],
        expect: &["`custs` is not a model or seed", "models/schema.yml:6:"],
    },
    Case {
        name: "invalid_utf8",
        fixture: "-- file: models/a.sql\nselect 1\n",
        args: &[],
        expect: &["not valid UTF-8", "models/b.sql:2:7", "CP949"],
    },
    Case {
        name: "missing_project_file",
        fixture: "-- no-project\n-- file: models/a.sql\nselect 1\n",
        args: &[],
        expect: &["no project.yml or dbt_project.yml in", "xform init"],
    },
    Case {
        name: "malformed_unit_test_rows",
        fixture: "-- file: models/a.sql\nselect * from {{ ref('b') }}\n-- file: models/b.sql\nselect 1 as id\n-- file: models/unit.yml\nunit_tests:\n  - name: t\n    model: a\n    given:\n      - input: ref('b')\n        rows: [1, 2]\n    expect:\n      rows: [{id: 1}]\n",
        args: &[],
        expect: &["malformed `rows` for format `dict`", "models/unit.yml:5:"],
    },
    Case {
        name: "unit_test_input_not_a_parent",
        fixture: "-- file: models/a.sql\nselect 1 as id\n-- file: models/b.sql\nselect 1 as id\n-- file: models/unit.yml\nunit_tests:\n  - name: t\n    model: a\n    given:\n      - input: ref('b')\n        rows: [{id: 1}]\n    expect:\n      rows: [{id: 1}]\n",
        args: &[],
        expect: &["`ref('b')` is not read by model `a`", "models/unit.yml:5:"],
    },
    Case {
        name: "bad_vars_flag",
        fixture: "-- file: models/a.sql\nselect 1\n",
        args: &["--vars", "[1, 2]"],
        expect: &["--vars must be a YAML mapping", "--vars:1:1"],
    },
    Case {
        name: "duplicate_macro",
        fixture: "-- file: macros/a.sql\n{% macro m() %}1{% endmacro %}\n-- file: macros/b.sql\n{% macro m() %}2{% endmacro %}\n-- file: models/a.sql\nselect {{ m() }}\n",
        args: &[],
        expect: &["macro `m` is defined twice", "macros/b.sql:1:"],
    },
    Case {
        name: "incremental_strategy_typo",
        fixture: "-- file: models/facts.sql\n-- hourly facts\n{{ config(materialized='incremental', incremental_strategy='merg', unique_key='id') }}\nselect 1 as id\n",
        args: &[],
        expect: &[
            "`incremental_strategy: merg`",
            "models/facts.sql:2:",
            "did you mean `merge`?",
        ],
    },
    Case {
        name: "merge_without_key",
        fixture: "-- file: models/facts.sql\n{{ config(materialized='incremental', incremental_strategy='delete+insert') }}\nselect 1 as id\n",
        args: &[],
        expect: &["strategy needs a `unique_key`", "models/facts.sql:1:"],
    },
    Case {
        name: "bad_on_schema_change",
        fixture: "-- file: models/facts.sql\n{{ config(materialized='incremental', on_schema_change='append') }}\nselect 1 as id\n",
        args: &[],
        expect: &[
            "`on_schema_change: append`",
            "models/facts.sql:1:",
            "append_new_columns",
        ],
    },
    Case {
        name: "microbatch_without_batch_size",
        fixture: "-- file: models/facts.sql\n{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ts', begin='2024-01-01') }}\nselect 1 as id\n",
        args: &[],
        expect: &[
            "needs `event_time`, `batch_size` and `begin`",
            "models/facts.sql:1:",
        ],
    },
    Case {
        name: "freshness_without_period",
        fixture: "-- file: models/sources.yml\nsources:\n  - name: raw\n    loaded_at_field: at\n    freshness:\n      warn_after: {count: 2}\n    tables: [{name: t}]\n",
        args: &[],
        expect: &["needs a `count` and a `period`", "models/sources.yml:"],
    },
    Case {
        name: "snapshot_without_endsnapshot",
        fixture: "-- file: snapshots/s.sql\n{% snapshot s %}\nselect 1 as id\n",
        args: &[],
        expect: &["has no {% endsnapshot %}", "snapshots/s.sql:1:"],
    },
];

#[test]
fn every_broken_project_exits_2_naming_file_and_line() {
    let mut failures = Vec::new();
    for case in CASES {
        let dir = project(case.fixture);
        if case.name == "invalid_utf8" {
            std::fs::write(
                dir.path().join("models/b.sql"),
                b"select 1\nwhere \xb1\xe8 = 1\n",
            )
            .unwrap();
        }
        let mut args = vec!["compile"];
        args.extend_from_slice(case.args);
        let out = xform(dir.path(), &args);
        let missing: Vec<_> = case
            .expect
            .iter()
            .filter(|e| !out.stderr.contains(*e))
            .collect();
        if out.code != 2 || !missing.is_empty() {
            failures.push(format!(
                "{}: exit {} missing {missing:?}\n{}",
                case.name, out.code, out.stderr
            ));
        }
        if dir.path().join("target/manifest.json").exists() {
            failures.push(format!("{}: wrote target/manifest.json", case.name));
        }
    }
    assert!(CASES.len() >= 20);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn huge_and_deeply_nested_inputs_do_not_panic() {
    let nested = format!("select {}1{}", "(".repeat(5000), ")".repeat(5000));
    let wide = format!(
        "select {}",
        (0..200_000)
            .map(|i| format!("{i} as c{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let dir = project(&format!(
        "-- file: models/nested.sql\n{nested}\n-- file: models/wide.sql\n{wide}\n-- file: models/jinja.sql\n{}x{}\n",
        "{% if true %}".repeat(300),
        "{% endif %}".repeat(300)
    ));
    let out = xform(dir.path(), &["compile"]);
    assert!(
        out.code == 0 || out.code == 2,
        "exit {}: {}",
        out.code,
        out.stderr
    );
}

#[test]
fn warnings_do_not_fail_the_compile() {
    let dir = project(
        "-- file: models/a.sql\n-- orders by day\nselect *\r\nfrom raw_data.orders\n-- file: models/schema.yml\nmodels:\n  - name: a\n    descripton: typo\n",
    );
    let out = xform(dir.path(), &["compile"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("reads `raw_data.orders` directly"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("models/a.sql:3:6"),
        "points at the name, not a word containing it:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("unknown key `descripton`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `description`?"),
        "{}",
        out.stderr
    );
}

/// Each adapter reads its own target settings: an unknown one is a warning at its line (once),
/// a bad value an error at its line.
#[test]
fn target_settings_are_checked_by_their_adapter_at_their_line() {
    let dir = project(
        "-- file: project.yml\nname: ts\ndefault_target: dev\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb, thraeds: 2 }\n  pg:\n    type: postgres\n    host: 127.0.0.1\n    user: me\n    port: not-a-port\n-- file: models/a.sql\nselect 1 as id\n",
    );
    let out = xform(dir.path(), &["compile"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`thraeds` is not a setting of duckdb targets")
            && out.stderr.contains("--> project.yml:4:"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("is not a setting").count(),
        1,
        "{}",
        out.stderr
    );
    let out = xform(dir.path(), &["compile", "--target", "pg"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`port` must be a whole number from 1 to 65535")
            && out.stderr.contains("--> project.yml:9:"),
        "{}",
        out.stderr
    );
}

#[test]
fn one_run_reports_every_mistake() {
    let dir = project(concat!(
        "-- file: models/a.sql\nselect * from {{ ref('nope') }}\n",
        "-- file: models/b.sql\nselect {{ undefined_macro() }}\n",
        "-- file: models/c.sql\n{{ config(materialized='tabel') }}\nselect 1\n",
        "-- file: models/schema.yml\nmodels:\n  - name: a\n    columns: 5\n",
    ));
    let out = xform(dir.path(), &["compile"]);
    assert_eq!(out.code, 2);
    for expected in [
        "models/a.sql:1:",
        "models/b.sql:1:",
        "models/c.sql:1:",
        "models/schema.yml:3:",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing {expected}:\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr
            .contains("xform: 4 errors in the project; nothing was written"),
        "{}",
        out.stderr
    );
}

/// A model rendered a second time (it reads `ref(..).schema`) can fail only on that render;
/// the failure must still be reported, not leave the model without SQL.
#[test]
fn late_bound_rerender_failure_is_reported() {
    let dir = project(concat!(
        "-- file: models/x.sql\n{{ config(schema='mart') }}\nselect 1 as id\n",
        "-- file: models/y.sql\nselect * from {{ ref('x') }}\n",
        "{% if ref('x').schema == 'mart' %}{{ no_such_macro() }}{% endif %}\n",
    ));
    let out = xform(dir.path(), &["compile"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("models/y.sql:2:"), "{}", out.stderr);
}
