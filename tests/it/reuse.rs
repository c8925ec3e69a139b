//! `--reuse`: nothing changed, nothing rebuilt. What a build records beside each relation it
//! publishes decides, in the next run, which nodes are built and which are reused; these tests
//! change one thing at a time (a seed, a macro, a source's load, a model's SQL) and check that
//! exactly what depends on it is built, on DuckDB and PostgreSQL.

use std::collections::BTreeMap;
use std::path::Path;

use crate::build::{ok, run_results};
use crate::harness::{project, spawn, write_files, xform};
use crate::warehouses::{Warehouse, both};

both!(
    a_second_build_with_nothing_changed_reuses_every_relation_and_test,
    a_changed_seed_rebuilds_exactly_its_descendants,
    a_changed_macro_or_model_rebuilds_what_it_renders_into,
    a_source_loaded_again_rebuilds_what_reads_it,
    volatile_sql_and_full_refresh_always_build,
    a_new_or_changed_test_runs_on_the_reused_relation,
    tests_alone_are_reused_on_a_relation_as_it_was_tested,
    a_test_reading_two_relations_is_reused_with_both
);

const PROJECT: &str = "
-- file: project.yml
name: shop
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 2 }
models:
  +materialized: table
  staging: { +materialized: view }
seeds:
  +schema: raw
-- file: seeds/orders.csv
order_id,customer_id,amount
1,1,1000
2,2,2500
3,1,700
-- file: seeds/customers.csv
customer_id,name
1,김철수
2,이영희
-- file: macros/money.sql
{% macro won(x) %}({{ x }} * 1){% endmacro %}
-- file: models/staging/stg_orders.sql
select order_id, customer_id, {{ won('amount') }} as amount from {{ ref('orders') }}
-- file: models/staging/stg_customers.sql
select customer_id, name from {{ ref('customers') }}
-- file: models/by_customer.sql
select c.name, sum(o.amount) as total
from {{ ref('stg_orders') }} o join {{ ref('stg_customers') }} c using (customer_id)
group by c.name
-- file: models/customer_names.sql
select name from {{ ref('stg_customers') }}
-- file: models/big_orders.sql
select order_id from {{ ref('stg_orders') }} where amount > 800
-- file: models/properties.yml
models:
  - name: by_customer
    columns:
      - name: name
        tests: [unique, not_null]
  - name: customer_names
    columns:
      - name: name
        tests: [not_null]
";

/// Each node's status in the last run (`model.shop.by_customer` → `reused`).
fn statuses(dir: &Path) -> BTreeMap<String, String> {
    let results = run_results(dir);
    let entries = results["results"].as_array().unwrap().iter();
    entries
        .map(|r| {
            let id = r["unique_id"].as_str().unwrap().to_string();
            (id, r["status"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The unique ids of the nodes (models and seeds) the last run built rather than reused.
fn built(dir: &Path) -> Vec<String> {
    let mut built: Vec<String> = statuses(dir)
        .into_iter()
        .filter(|(id, s)| !id.starts_with("test.") && s == "success")
        .map(|(id, _)| id)
        .collect();
    built.sort();
    built
}

/// The unique ids of the models and seeds `selector` selects, from the graph.
fn selected(dir: &Path, selector: &str) -> Vec<String> {
    let out = ok(dir, &["ls", "--select", selector, "--output", "json"]);
    let mut ids: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|n| n["resource_type"] != "test")
        .map(|n| n["unique_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Adds `tests` (YAML) beside `customer_names.name`'s `not_null`.
fn add_tests(dir: &Path, tests: &str) {
    let path = dir.join("models/properties.yml");
    let props = std::fs::read_to_string(&path)
        .unwrap()
        .replace("tests: [not_null]", &format!("tests: [not_null, {tests}]"));
    std::fs::write(path, props).unwrap();
}

fn totals(w: &Warehouse, dir: &Path) -> Vec<String> {
    let rel = w.rel("main", "by_customer");
    let sql = format!("SELECT name, total FROM {rel} ORDER BY name");
    w.query(dir, &sql)
        .into_iter()
        .map(|r| r.join(" "))
        .collect()
}

fn a_second_build_with_nothing_changed_reuses_every_relation_and_test(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    let first = ok(d, &["build", "--reuse"]);
    assert!(!first.contains("REUSED"), "{first}");
    let before = totals(w, d);
    let second = ok(d, &["build", "--reuse"]);
    let s = statuses(d);
    assert!(s.values().all(|v| v == "reused"), "{s:?}\n{second}");
    assert_eq!(s.len(), 10, "{s:?}");
    assert!(second.contains("REUSED table "), "{second}");
    assert!(second.contains("(unchanged since "), "{second}");
    assert!(second.contains("10 reused"), "{second}");
    assert_eq!(totals(w, d), before);
    // Without --reuse everything is built, and recorded again.
    ok(d, &["build"]);
    assert_eq!(built(d).len(), 7);
    ok(d, &["build", "--reuse"]);
    assert!(built(d).is_empty(), "{:?}", statuses(d));
}

fn a_changed_seed_rebuilds_exactly_its_descendants(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    ok(d, &["build", "--reuse"]);
    write_files(
        d,
        "-- file: seeds/orders.csv\norder_id,customer_id,amount\n1,1,1000\n2,2,2500\n3,1,900\n",
    );
    ok(d, &["build", "--reuse"]);
    assert_eq!(built(d), selected(d, "orders+"));
    assert!(built(d).contains(&"model.shop.big_orders".to_string()));
    assert_eq!(totals(w, d), ["김철수 1900", "이영희 2500"]);
    let s = statuses(d);
    assert_eq!(s["model.shop.customer_names"], "reused", "{s:?}");
    assert_eq!(
        s["test.shop.not_null_customer_names_name"], "reused",
        "{s:?}"
    );
    assert_eq!(s["test.shop.unique_by_customer_name"], "pass", "{s:?}");
}

fn a_changed_macro_or_model_rebuilds_what_it_renders_into(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    ok(d, &["build", "--reuse"]);
    write_files(
        d,
        "-- file: macros/money.sql\n{% macro won(x) %}({{ x }} * 10){% endmacro %}\n",
    );
    ok(d, &["build", "--reuse"]);
    assert_eq!(built(d), selected(d, "stg_orders+"));
    assert_eq!(totals(w, d), ["김철수 17000", "이영희 25000"]);
    // A model's own SQL: it and what reads it.
    write_files(
        d,
        "-- file: models/staging/stg_customers.sql\nselect customer_id, upper(name) as name from {{ ref('customers') }}\n",
    );
    ok(d, &["build", "--reuse"]);
    assert_eq!(built(d), selected(d, "stg_customers+"));
    // A comment and the layout are no change; a string literal's case is.
    write_files(
        d,
        "-- file: models/staging/stg_customers.sql\n-- names in capitals\nselect customer_id,\n    upper(name) as name /* for the mart */\nfrom {{ ref('customers') }}\n",
    );
    ok(d, &["build", "--reuse"]);
    assert!(built(d).is_empty(), "{:?}", statuses(d));
    write_files(
        d,
        "-- file: models/big_orders.sql\nselect order_id, 'A' as grade from {{ ref('stg_orders') }} where amount > 800\n",
    );
    ok(d, &["build", "--reuse"]);
    write_files(
        d,
        "-- file: models/big_orders.sql\nselect order_id, 'a' as grade from {{ ref('stg_orders') }} where amount > 800\n",
    );
    ok(d, &["build", "--reuse"]);
    assert_eq!(built(d), ["model.shop.big_orders"], "{:?}", statuses(d));
}

const SOURCED: &str = "
-- file: project.yml
name: shop
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 2 }
models:
  +materialized: table
seeds:
  +schema: landing
-- file: seeds/events.csv
id,loaded_at
1,2024-01-01 10:00:00
-- file: models/sources.yml
sources:
  - name: landing
    schema: landing
    tables:
      - name: events
        loaded_at_field: loaded_at
-- file: models/event_count.sql
select count(*) as n from {{ source('landing', 'events') }}
-- file: models/constant.sql
select 1 as one
";

fn a_source_loaded_again_rebuilds_what_reads_it(w: &Warehouse) {
    let schema = format!("    schema: {}", w.schema("landing"));
    let dir = w.project(&SOURCED.replace("    schema: landing", &schema));
    let d = dir.path();
    ok(d, &["seed"]);
    ok(d, &["run", "--reuse"]);
    ok(d, &["run", "--reuse"]);
    assert!(built(d).is_empty(), "{:?}", statuses(d));
    // A new load: the source's latest loaded_at moves.
    write_files(
        d,
        "-- file: seeds/events.csv\nid,loaded_at\n1,2024-01-01 10:00:00\n2,2024-01-01 11:00:00\n",
    );
    ok(d, &["seed"]);
    ok(d, &["run", "--reuse"]);
    assert_eq!(built(d), ["model.shop.event_count"], "{:?}", statuses(d));
    let n = w.query(
        d,
        &format!("SELECT n FROM {}", w.rel("main", "event_count")),
    );
    assert_eq!(n, [["2"]]);
}

fn volatile_sql_and_full_refresh_always_build(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    write_files(
        d,
        "-- file: models/stamped.sql\nselect name, current_timestamp as at from {{ ref('by_customer') }}\n",
    );
    ok(d, &["build", "--reuse"]);
    let out = ok(d, &["build", "--reuse"]);
    assert_eq!(built(d), ["model.shop.stamped"], "{out}");
    let message = run_results(d)["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "model.shop.stamped")
        .map(|r| r["message"].clone())
        .unwrap();
    assert_eq!(message, "built: its SQL calls `current_timestamp`");
    // `reuse: true` on the target, and --full-refresh: everything is built.
    let reusing = std::fs::read_to_string(d.join("project.yml"))
        .unwrap()
        .replace("threads: 2", "threads: 2, reuse: true");
    std::fs::write(d.join("project.yml"), reusing).unwrap();
    ok(d, &["build"]);
    assert_eq!(built(d), ["model.shop.stamped"]);
    ok(d, &["build", "--full-refresh"]);
    assert_eq!(built(d).len(), 8);
    let both = xform(d, &["build", "--reuse", "--full-refresh"]);
    assert_eq!(both.code, 2, "{}", both.stderr);
}

fn a_new_or_changed_test_runs_on_the_reused_relation(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    ok(d, &["build", "--reuse"]);
    add_tests(d, "unique");
    ok(d, &["build", "--reuse"]);
    let s = statuses(d);
    assert!(built(d).is_empty(), "{s:?}");
    assert_eq!(s["test.shop.unique_customer_names_name"], "pass", "{s:?}");
    assert_eq!(
        s["test.shop.not_null_customer_names_name"], "reused",
        "{s:?}"
    );
    // Recorded: the next run reuses it too.
    ok(d, &["build", "--reuse"]);
    let s = statuses(d);
    assert_eq!(s["test.shop.unique_customer_names_name"], "reused", "{s:?}");
}

/// `xform test --reuse`: a test that passed on a relation as it is now is not run again; a new
/// test runs, and once the relation is built again, every test of it does.
fn tests_alone_are_reused_on_a_relation_as_it_was_tested(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    ok(d, &["build", "--reuse"]);
    let out = ok(d, &["test", "--reuse"]);
    let s = statuses(d);
    assert!(s.values().all(|v| v == "reused"), "{s:?}\n{out}");
    assert_eq!(s.len(), 3, "{s:?}");
    add_tests(d, "unique");
    ok(d, &["test", "--reuse"]);
    let s = statuses(d);
    assert_eq!(s["test.shop.unique_customer_names_name"], "pass", "{s:?}");
    assert_eq!(s["test.shop.not_null_by_customer_name"], "reused", "{s:?}");
    ok(d, &["test", "--reuse"]);
    assert!(
        statuses(d).values().all(|v| v == "reused"),
        "{:?}",
        statuses(d)
    );
    // Built again (without --reuse): its tests run again on the new relation.
    ok(d, &["run", "--select", "by_customer"]);
    ok(d, &["test", "--reuse"]);
    let s = statuses(d);
    assert_eq!(s["test.shop.not_null_by_customer_name"], "pass", "{s:?}");
    assert_eq!(s["test.shop.unique_customer_names_name"], "reused", "{s:?}");
}

/// A test that reads a relation besides the one it tests runs after both are built, on its
/// own; it is reused like the others, and recording it keeps what the build recorded.
fn a_test_reading_two_relations_is_reused_with_both(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    add_tests(
        d,
        "{relationships: {to: \"ref('by_customer')\", field: name}}",
    );
    ok(d, &["build", "--reuse"]);
    let related = "test.shop.relationships_customer_names_name__name__ref__by_customer__";
    assert_eq!(statuses(d)[related], "pass", "{:?}", statuses(d));
    ok(d, &["build", "--reuse"]);
    assert!(
        statuses(d).values().all(|v| v == "reused"),
        "{:?}",
        statuses(d)
    );
    // Both relations built again: every test runs once, then is reused.
    write_files(
        d,
        "-- file: models/staging/stg_customers.sql\nselect customer_id, name || '' as name from {{ ref('customers') }}\n",
    );
    ok(d, &["build", "--reuse"]);
    assert_eq!(statuses(d)[related], "pass", "{:?}", statuses(d));
    ok(d, &["build", "--reuse"]);
    assert!(
        statuses(d).values().all(|v| v == "reused"),
        "{:?}",
        statuses(d)
    );
}

/// A build killed while it publishes records nothing it did not publish: the next `--reuse`
/// run builds what the killed one did not finish, and ends with every relation as a build
/// from scratch makes it.
#[test]
fn a_killed_build_never_records_what_it_did_not_publish() {
    let slow = |marker: &str| {
        let mut files = String::from(
            "-- file: project.yml\nname: slow\ndefault_target: dev\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb, threads: 1 }\nmodels:\n  +materialized: table\n",
        );
        for i in 0..6 {
            let parent = match i {
                0 => String::new(),
                _ => format!(", (select count(*) from {{{{ ref('m{}') }}}}) as p", i - 1),
            };
            files.push_str(&format!(
                "-- file: models/m{i}.sql\nselect '{marker}' as marker, (select count(*) from range(60000000) t(x) where x % 7 = 3) as n{parent}\n"
            ));
        }
        files
    };
    let dir = project(&slow("old"));
    let d = dir.path();
    ok(d, &["build", "--reuse"]);
    write_files(d, &slow("new"));
    let mut child = spawn(d, &["build", "--reuse"]);
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    while let Some(Ok(line)) = lines.next() {
        if line.contains("main.m1") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    ok(d, &["build", "--reuse"]);
    let markers = crate::build::query(
        d,
        "select marker from m0 union all select marker from m1 union all select marker from m2 \
         union all select marker from m3 union all select marker from m4 union all select marker from m5",
    );
    assert!(markers.iter().all(|m| m[0] == "new"), "{markers:?}");
    let reused = statuses(d).values().filter(|s| *s == "reused").count();
    assert!((1..6).contains(&reused), "{:?}", statuses(d));
}

#[test]
fn reuse_is_refused_where_a_build_cannot_be_recorded_with_what_it_publishes() {
    let dir = project(
        "-- file: project.yml
name: lake
default_target: lake
targets:
  lake: { type: spark, url: \"sc://127.0.0.1:1\" }
  strange: { type: duckdb, path: target/dev.duckdb, reuse: sometimes }
-- file: models/m.sql
select 1 as one
",
    );
    let d = dir.path();
    let out = xform(d, &["build", "--reuse"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("spark targets cannot reuse"),
        "{}",
        out.stderr
    );
    assert!(!d.join("target/manifest.json").exists());
    let out = xform(d, &["build", "--target", "strange"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("`reuse` must be true or false"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("project.yml:5"), "{}", out.stderr);
}

/// A source of files in `dt=` partitions: its data version is their listing. A new
/// partition or a file written again rebuilds what reads it and nothing else; files left as
/// they were are reused. (In a project folder whose name is a glob pattern of its own.)
#[test]
fn a_new_partition_of_a_file_source_rebuilds_what_reads_it() {
    let dir = project("-- no-project\n");
    let d = &dir.path().join("proj[1]");
    write_files(
        d,
        "-- file: project.yml
name: shop
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 2 }
models:
  +materialized: table
-- file: models/sources.yml
sources:
  - name: lake
    tables:
      - name: events
        config:
          external_location: 'lake/events/dt=*/*.csv'
          hive_partitioning: true
-- file: models/daily.sql
select dt, count(*) as events from {{ source('lake', 'events') }} group by dt
-- file: models/constant.sql
select 1 as one
-- file: lake/events/dt=2024-01-01/part-0.csv
id,name
1,김철수
2,이영희
",
    );
    ok(d, &["build", "--reuse"]);
    ok(d, &["build", "--reuse"]);
    assert!(built(d).is_empty(), "{:?}", statuses(d));
    write_files(
        d,
        "-- file: lake/events/dt=2024-01-02/part-0.csv\nid,name\n3,박민수\n",
    );
    let out = ok(d, &["build", "--reuse"]);
    assert_eq!(built(d), ["model.shop.daily"], "{:?}\n{out}", statuses(d));
    let rows = crate::build::query(d, "select dt::varchar, events from daily order by dt");
    assert_eq!(rows, [["2024-01-01", "2"], ["2024-01-02", "1"]]);
    // A file written again in place, to the same size (a partition loaded again).
    write_files(
        d,
        "-- file: lake/events/dt=2024-01-02/part-0.csv\nid,name\n3,최민수\n",
    );
    ok(d, &["build", "--reuse"]);
    assert_eq!(built(d), ["model.shop.daily"], "{:?}", statuses(d));
    ok(d, &["build", "--reuse"]);
    assert!(built(d).is_empty(), "{:?}", statuses(d));
    // Files in a folder named like the project's own, but another: not its files.
    write_files(
        &dir.path().join("proj1"),
        "-- file: lake/events/dt=2024-01-03/part-0.csv\nid,name\n9,x\n",
    );
    ok(d, &["build", "--reuse"]);
    assert!(built(d).is_empty(), "{:?}", statuses(d));
}
