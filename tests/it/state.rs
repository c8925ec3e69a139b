//! CI on pull requests: `state:` selectors against a production manifest, `--defer` to
//! production's relations, `xform diff`, `xform compare`, `build --compare-to`, `xform retry`
//! and `result:` selectors. Production and the pull request are two schemas of one DuckDB file.

use std::path::Path;

use crate::build::{ok, run_results};
use crate::harness::{project, write_files, xform};
use crate::warehouses::{Warehouse, both};

both!(
    layout_and_comments_are_not_modifications_logic_config_and_macros_are,
    deferred_build_reads_production_for_parents_it_does_not_build,
    build_compare_to_summarises_each_rebuilt_model_against_production,
    retry_reruns_exactly_the_failed_and_skipped_nodes,
    json_log_points_failures_at_their_files_for_ci_annotations
);

const PROJECT: &str = "
-- file: project.yml
name: shop
default_target: prod
targets:
  prod: { type: duckdb, path: target/dev.duckdb }
  ci: { type: duckdb, path: target/dev.duckdb, schema_prefix: pr_7_ }
models:
  +materialized: table
  +schema: analytics
seeds:
  +schema: raw
-- file: seeds/orders.csv
id,amount,status
1,100,paid
2,250,paid
3,75,refunded
-- file: macros/money.sql
{# Amounts are stored in won. #}
{% macro won(col) -%}
    cast({{ col }} as bigint)
{%- endmacro %}
-- file: models/stg_orders.sql
select id, {{ won('amount') }} as amount, status
from {{ ref('orders') }}
-- file: models/paid_orders.sql
select id, amount from {{ ref('stg_orders') }} where status = 'paid'
-- file: models/revenue.sql
select sum(amount) as revenue, count(*) as orders from {{ ref('paid_orders') }}
-- file: models/schema.yml
models:
  - name: paid_orders
    columns:
      - name: id
        data_tests: [unique, not_null]
";

/// A project built into `prod`, its manifest copied to `prod-artifacts/` as CI would restore it.
fn production(w: &Warehouse) -> tempfile::TempDir {
    let dir = w.project(PROJECT);
    ok(dir.path(), &["build"]);
    save_artifacts(dir.path());
    dir
}

fn save_artifacts(dir: &Path) {
    std::fs::create_dir_all(dir.join("prod-artifacts")).unwrap();
    for f in ["manifest.json", "run_results.json"] {
        std::fs::copy(
            dir.join("target").join(f),
            dir.join("prod-artifacts").join(f),
        )
        .unwrap();
    }
}

/// The models `ls` selects (tests left out), in dependency order.
fn selected(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["ls", "--state", "prod-artifacts", "-t", "ci"];
    all.extend(args);
    ok(dir, &all)
        .lines()
        .filter(|l| !l.contains("_orders_id") && !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A pull request changing `paid_orders`, built as CI would: only what changed, into the `ci`
/// target's `pr_7_` schemas, unchanged parents read from production.
fn pr_build(dir: &Path, extra: &[&str]) -> String {
    edit(
        dir,
        "models/paid_orders.sql",
        "'paid'",
        "'paid' and amount > 100",
    );
    let mut args = vec![
        "build",
        "-t",
        "ci",
        "-s",
        "state:modified+",
        "--defer",
        "--state",
        "prod-artifacts",
    ];
    args.extend(extra);
    ok(dir, &args)
}

fn edit(dir: &Path, path: &str, from: &str, to: &str) {
    let p = dir.join(path);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{path} has no `{from}`");
    std::fs::write(&p, text.replace(from, to)).unwrap();
}

fn layout_and_comments_are_not_modifications_logic_config_and_macros_are(w: &Warehouse) {
    let dir = production(w);
    let d = dir.path();
    // Reformatted, re-commented, keywords upper-cased: the same query.
    write_files(
        d,
        "-- file: models/paid_orders.sql
-- only paid orders count as revenue
SELECT id,
       amount
  FROM {{ ref('stg_orders') }}   /* staged */
 WHERE status = 'paid'
",
    );
    edit(
        d,
        "macros/money.sql",
        "{# Amounts are stored in won. #}",
        "{# KRW #}",
    );
    edit(d, "macros/money.sql", "    cast(", "  cast(");
    // Nothing modified, under the pull request's schema prefix (`selected` uses `-t ci`) or not.
    assert_eq!(selected(d, &["-s", "state:modified"]), Vec::<String>::new());
    assert_eq!(
        ok(
            d,
            &["ls", "-s", "state:modified", "--state", "prod-artifacts"]
        ),
        ""
    );

    // Logic: the model, and with `+` its children.
    edit(
        d,
        "models/paid_orders.sql",
        "'paid'",
        "'paid' and amount > 0",
    );
    assert_eq!(selected(d, &["-s", "state:modified"]), ["paid_orders"]);
    assert_eq!(
        selected(d, &["-s", "state:modified+"]),
        ["paid_orders", "revenue"]
    );
    assert_eq!(selected(d, &["-s", "state:modified.body"]), ["paid_orders"]);
    assert_eq!(
        selected(d, &["-s", "state:modified.configs"]),
        Vec::<String>::new()
    );
    edit(
        d,
        "models/paid_orders.sql",
        "'paid' and amount > 0",
        "'paid'",
    );

    // Config.
    write_files(
        d,
        "-- file: models/revenue.sql
{{ config(materialized='view') }}
select sum(amount) as revenue, count(*) as orders from {{ ref('paid_orders') }}
",
    );
    assert_eq!(selected(d, &["-s", "state:modified"]), ["revenue"]);
    assert_eq!(selected(d, &["-s", "state:modified.configs"]), ["revenue"]);
    assert_eq!(
        selected(d, &["-s", "state:modified.body"]),
        Vec::<String>::new()
    );
    write_files(
        d,
        "-- file: models/revenue.sql
select sum(amount) as revenue, count(*) as orders from {{ ref('paid_orders') }}
",
    );

    // A macro the model calls.
    edit(d, "macros/money.sql", "as bigint", "as hugeint");
    assert_eq!(selected(d, &["-s", "state:modified"]), ["stg_orders"]);
    assert_eq!(
        selected(d, &["-s", "state:modified.macros"]),
        ["stg_orders"]
    );
    assert_eq!(
        selected(d, &["-s", "state:modified+"]),
        ["stg_orders", "paid_orders", "revenue"]
    );

    // A new model is new (and modified); `state:` without --state is exit 2.
    write_files(
        d,
        "-- file: models/big_orders.sql\nselect * from {{ ref('stg_orders') }} where amount > 200\n",
    );
    assert_eq!(selected(d, &["-s", "state:new"]), ["big_orders"]);
    let o = xform(d, &["ls", "-s", "state:modified"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("needs --state DIR"), "{}", o.stderr);
    let o = xform(
        d,
        &["ls", "-s", "state:modifed", "--state", "prod-artifacts"],
    );
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("did you mean `modified`"), "{}", o.stderr);
}

fn deferred_build_reads_production_for_parents_it_does_not_build(w: &Warehouse) {
    let dir = production(w);
    let d = dir.path();
    let out = pr_build(d, &[]);
    assert!(
        out.contains("paid_orders") && out.contains("revenue"),
        "{out}"
    );
    assert!(
        !out.contains("stg_orders"),
        "unchanged parent was built:\n{out}"
    );
    // Only the changed model and its child exist in the PR schema; the parent is production's.
    let pr: Vec<String> = w
        .query(
            d,
            &format!(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables \
                 WHERE table_schema LIKE '{}%' ORDER BY 1",
                w.schema("pr_7_")
            ),
        )
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let in_pr = |name: &str| w.rel("pr_7_analytics", name);
    assert_eq!(pr, [in_pr("paid_orders"), in_pr("revenue")]);
    let revenue = |rel: String| w.query(d, &format!("SELECT revenue, orders FROM {rel}"));
    assert_eq!(revenue(in_pr("revenue")), [["250", "1"]]);
    assert_eq!(
        revenue(w.rel("analytics", "revenue")),
        [["350", "2"]],
        "production untouched"
    );
    let compiled =
        std::fs::read_to_string(d.join("target/compiled/models/paid_orders.sql")).unwrap();
    let parent = format!("\"{}\".\"stg_orders\"", w.schema("analytics"));
    assert!(compiled.contains(&parent), "{compiled}");
    // Without --defer the parent would be read from the PR schema, where it does not exist.
    let o = xform(d, &["build", "-t", "ci", "-s", "paid_orders"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
}

#[test]
fn diff_lists_changes_with_sql_diffs_and_downstream() {
    let dir = production(&Warehouse::DuckDb);
    let d = dir.path();
    edit(
        d,
        "models/paid_orders.sql",
        "'paid'",
        "'paid' and amount > 100",
    );
    write_files(
        d,
        "-- file: models/big_orders.sql\nselect * from {{ ref('stg_orders') }} where amount > 200\n",
    );
    std::fs::remove_file(d.join("models/revenue.sql")).unwrap();
    let text = ok(d, &["diff", "-t", "ci", "--state", "prod-artifacts"]);
    let expected = "\
against prod-artifacts/manifest.json
1 modified, 1 new, 1 removed; 0 downstream

modified  model  paid_orders  models/paid_orders.sql  body
new       model  big_orders   models/big_orders.sql
removed   model  revenue      models/revenue.sql

--- models/paid_orders.sql (state)
+++ models/paid_orders.sql (now)
@@ -1 +1 @@
-select id, amount from \"analytics\".\"stg_orders\" where status = 'paid'
+select id, amount from \"analytics\".\"stg_orders\" where status = 'paid' and amount > 100

--- models/big_orders.sql (state)
+++ models/big_orders.sql (now)
@@ -0,0 +1 @@
+select * from \"analytics\".\"stg_orders\" where amount > 200
";
    assert_eq!(text, expected);

    write_files(
        d,
        "-- file: models/revenue.sql\nselect sum(amount) as revenue from {{ ref('paid_orders') }}\n",
    );
    std::fs::remove_file(d.join("models/big_orders.sql")).unwrap();
    let md = ok(
        d,
        &["diff", "--state", "prod-artifacts", "--format", "markdown"],
    );
    let expected = "\
### xform diff: 2 modified, 0 new, 0 removed; 0 downstream

| change | node | kind | what changed |
|---|---|---|---|
| modified | `paid_orders` | model | body |
| modified | `revenue` | model | body |

<details><summary><code>models/paid_orders.sql</code> (modified)</summary>

```diff
--- models/paid_orders.sql (state)
+++ models/paid_orders.sql (now)
@@ -1 +1 @@
-select id, amount from \"analytics\".\"stg_orders\" where status = 'paid'
+select id, amount from \"analytics\".\"stg_orders\" where status = 'paid' and amount > 100
```

</details>

<details><summary><code>models/revenue.sql</code> (modified)</summary>

```diff
--- models/revenue.sql (state)
+++ models/revenue.sql (now)
@@ -1 +1 @@
-select sum(amount) as revenue, count(*) as orders from \"analytics\".\"paid_orders\"
+select sum(amount) as revenue from \"analytics\".\"paid_orders\"
```

</details>
";
    assert_eq!(md, expected);

    // A change with children: the children are listed downstream.
    write_files(
        d,
        "-- file: models/revenue.sql\nselect sum(amount) as revenue, count(*) as orders from {{ ref('paid_orders') }}\n",
    );
    edit(
        d,
        "models/paid_orders.sql",
        "'paid' and amount > 100",
        "'paid'",
    );
    edit(d, "macros/money.sql", "as bigint", "as hugeint");
    let text = ok(d, &["diff", "--state", "prod-artifacts"]);
    assert!(
        text.contains("1 modified, 0 new, 0 removed; 2 downstream")
            && text.contains("body, macros (won)")
            && text.contains("downstream: paid_orders, revenue"),
        "{text}"
    );
}

const COMPARE: &str = "
-- file: project.yml
name: mig
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb }
  other: { type: duckdb, path: target/other.duckdb }
-- file: seeds/as_is.csv
id,name,amount
1,김철수,100.5
2,이영희,200
3,박민수,
4,Kim,50
-- file: seeds/to_be.csv
id,name,amount
1,김철수,100.5
2,이영희,210
4,Kim,50
5,최지우,10
-- file: seeds/same.csv
id,name,amount
4,Kim,50
3,박민수,
2,이영희,200
1,김철수,100.5
";

#[test]
fn compare_finds_count_aggregate_and_key_differences() {
    let dir = project(COMPARE);
    let d = dir.path();
    ok(d, &["seed"]);
    let o = xform(
        d,
        &["compare", "as_is", "to_be", "--key", "id", "--fail-on-diff"],
    );
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let t = &o.stdout;
    assert!(t.contains("rows: 4 vs 4"), "{t}");
    assert!(
        t.contains("key (id): 1 only in A, 1 only in B, 1 changed"),
        "{t}"
    );
    assert!(t.contains("only in A: id=3"), "{t}");
    assert!(t.contains("only in B: id=5"), "{t}");
    assert!(t.contains("changed: id=2: amount: 200.0 → 210.0"), "{t}");
    let line = |col: &str, stat: &str| {
        t.lines()
            .find(|l| l.split_whitespace().take(2).eq([col, stat]))
            .unwrap_or_else(|| panic!("no {col} {stat} line in\n{t}"))
            .to_string()
    };
    assert!(line("amount", "sum").ends_with('≠'), "{t}");
    assert!(line("amount", "nulls").ends_with('≠'), "{t}");
    assert!(!line("id", "distinct").ends_with('≠'), "{t}");
    // Korean text compared exactly: max of the names differs (최지우 is new), lengths do not.
    assert!(
        line("name", "max").contains("최지우") && line("name", "max").ends_with('≠'),
        "{t}"
    );
    assert!(!line("name", "max_length").ends_with('≠'), "{t}");

    // The same rows in another order are identical, exit 0 even with --fail-on-diff.
    let o = xform(
        d,
        &[
            "compare",
            "main.as_is",
            "same",
            "--key",
            "id",
            "--fail-on-diff",
        ],
    );
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.trim_end().ends_with("identical"), "{}", o.stdout);

    // JSON and Markdown forms; a relation through another target's database.
    let json = ok(
        d,
        &[
            "compare", "as_is", "to_be", "--key", "id", "--format", "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["identical"], false);
    assert_eq!(v["keys"]["changed"], 1);
    assert_eq!(v["rows"], serde_json::json!([4, 4]));
    let md = ok(d, &["compare", "as_is", "to_be", "--format", "markdown"]);
    assert!(md.starts_with("#### `as_is` vs `to_be`: different"), "{md}");
    ok(d, &["seed", "-t", "other"]);
    let o = xform(d, &["compare", "other:same", "as_is", "--fail-on-diff"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let o = xform(d, &["compare", "as_is", "to_be", "--key", "ident"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("has no column `ident`"), "{}", o.stderr);
    let o = xform(d, &["compare", "as_is", "nope.nothing"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("nope.nothing"), "{}", o.stderr);
}

fn build_compare_to_summarises_each_rebuilt_model_against_production(w: &Warehouse) {
    let dir = production(w);
    let d = dir.path();
    let out = pr_build(d, &["--compare-to", "prod-artifacts"]);
    assert!(
        out.contains("Compared with prod-artifacts (2 relations)"),
        "{out}"
    );
    let line = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("paid_orders").contains("rows 2 → 1"), "{out}");
    assert!(
        line("revenue").contains("revenue: min, max, sum, avg"),
        "{out}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("target/compare.json")).unwrap())
            .unwrap();
    assert_eq!(doc["results"].as_array().unwrap().len(), 2);
}

fn retry_reruns_exactly_the_failed_and_skipped_nodes(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    write_files(
        d,
        "-- file: models/side.sql\nselect 1 as x\n-- file: models/broken.sql\nselect * from {{ ref('stg_orders') }} where cast(status as integer) > 0\n-- file: models/after_broken.sql\nselect * from {{ ref('broken') }}\n",
    );
    let o = xform(d, &["build", "--threads", "2"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let statuses = |d: &Path| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = run_results(d)["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["unique_id"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let first = statuses(d);
    assert!(
        first.contains(&("model.shop.broken".into(), "error".into())),
        "{first:?}"
    );
    assert!(
        first.contains(&("model.shop.after_broken".into(), "skipped".into())),
        "{first:?}"
    );

    // `result:` selectors read a state folder's run_results.json.
    save_artifacts(d);
    assert_eq!(
        ok(
            d,
            &["ls", "-s", "result:error+", "--state", "prod-artifacts"]
        )
        .lines()
        .collect::<Vec<_>>(),
        ["broken", "after_broken"]
    );

    edit(
        d,
        "models/broken.sql",
        "cast(status as integer) > 0",
        "status <> ''",
    );
    let out = ok(d, &["retry"]);
    assert!(
        out.contains("retrying 2 nodes of `xform build --threads 2`"),
        "{out}"
    );
    let again = statuses(d);
    assert_eq!(
        again,
        [
            ("model.shop.after_broken".to_string(), "success".to_string()),
            ("model.shop.broken".to_string(), "success".to_string()),
        ]
    );
    assert_eq!(
        run_results(d)["args"]["argv"],
        serde_json::json!(["build", "--threads", "2"])
    );
    assert!(ok(d, &["retry"]).contains("nothing to retry"));
}

fn json_log_points_failures_at_their_files_for_ci_annotations(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    write_files(
        d,
        "-- file: seeds/orders.csv\nid,amount,status\n1,100,paid\n1,250,paid\n-- file: models/broken.sql\nselect cast('x' as integer) as id\n",
    );
    let o = xform(d, &["build", "--log-format", "json"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let events: Vec<serde_json::Value> = o
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == "node_finished" && e["name"] == name)
            .unwrap_or_else(|| panic!("no event for {name}: {}", o.stdout))
    };
    let test = of("unique_paid_orders_id");
    assert_eq!(
        (&test["level"], &test["file"], &test["line"]),
        (
            &serde_json::json!("error"),
            &serde_json::json!("models/schema.yml"),
            &serde_json::json!(5)
        )
    );
    let model = of("broken");
    assert_eq!(
        (&model["level"], &model["file"], &model["line"]),
        (
            &serde_json::json!("error"),
            &serde_json::json!("models/broken.sql"),
            &serde_json::json!(1)
        )
    );
    assert!(of("stg_orders").get("level").is_none());
}
