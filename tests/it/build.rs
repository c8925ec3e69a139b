//! Building into DuckDB: seeds, materializations, atomic replace, failures, kills and locks.
//! Each test runs the real binary on a temp project and reads the database back itself.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::harness::{example_project, project, spawn, write_files, xform};
use crate::warehouses::{Warehouse, both};

/// Every value of a query as text (NULL as "NULL"), rows in the query's order.
pub fn query(dir: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = duckdb::Connection::open(dir.join("target/dev.duckdb")).expect("open database");
    let wrapped = format!("SELECT COLUMNS(*)::VARCHAR FROM ({sql})");
    let mut stmt = conn.prepare(&wrapped).expect(&wrapped);
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        let n = row.as_ref().column_count();
        out.push(
            (0..n)
                .map(|i| {
                    row.get::<_, Option<String>>(i)
                        .unwrap()
                        .unwrap_or_else(|| "NULL".into())
                })
                .collect(),
        );
    }
    out
}

fn one(dir: &Path, sql: &str) -> String {
    query(dir, sql)[0][0].clone()
}

/// (schema.name, TABLE|VIEW) of every relation in the database, sorted.
pub fn relations(dir: &Path) -> Vec<(String, String)> {
    query(
        dir,
        "SELECT table_schema || '.' || table_name, table_type FROM information_schema.tables \
         WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect()
}

/// No relation left under a staging name (`__xform_...`).
fn no_temporary_relations(dir: &Path) -> bool {
    !relations(dir).iter().any(|(r, _)| r.contains("__xform_"))
}

pub fn run_results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("target/run_results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = xform(dir, args);
    assert_eq!(
        o.code, 0,
        "xform {args:?} failed:\n{}\n{}",
        o.stdout, o.stderr
    );
    o.stdout
}

both!(
    every_layer_lands_with_its_materialization,
    a_ragged_csv_is_rejected_with_its_line_and_the_old_table_kept,
    a_failing_model_keeps_its_previous_table_and_its_children_are_skipped,
    rebuilding_is_idempotent_and_switches_kinds,
    schema_prefix_isolates_a_target,
    json_log_has_one_object_per_event,
    show_prints_rows_without_materializing,
    hooks_run_in_order_and_a_folders_come_before_a_models_own
);

const LAYERS: &str = "
-- file: project.yml
name: shop
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 3 }
  pr: { type: duckdb, path: target/dev.duckdb, schema_prefix: pr_7_ }
models:
  +materialized: view
  raw: { +schema: raw_data }
  analytics: { +schema: analytics, +materialized: table }
seeds:
  +schema: raw_data
-- file: seeds/orders.csv
order_id,customer,amount,product
1,kim,1000,라면
2,lee,2500,김치
3,kim,700,\"떡볶이, 매운맛\"
-- file: seeds/properties.yml
seeds:
  - name: orders
    config:
      column_types: { order_id: varchar, amount: \"decimal(12,2)\" }
-- file: models/raw/stg_orders.sql
select order_id, customer, amount from {{ ref('orders') }}
-- file: models/analytics/by_customer_base.sql
{{ config(materialized='ephemeral') }}
select customer, sum(amount) as total from {{ ref('stg_orders') }} group by customer
-- file: models/analytics/by_customer.sql
select * from {{ ref('by_customer_base') }} order by customer
";

fn every_layer_lands_with_its_materialization(w: &Warehouse) {
    let dir = w.project(LAYERS);
    let out = ok(dir.path(), &["build"]);
    assert!(out.contains("3 nodes"), "{out}");
    assert_eq!(
        w.relations(dir.path()),
        [
            ("analytics.by_customer".into(), "BASE TABLE".into()),
            ("raw_data.orders".into(), "BASE TABLE".into()),
            ("raw_data.stg_orders".into(), "VIEW".into()),
        ]
    );
    assert_eq!(
        w.query(
            dir.path(),
            &format!("select * from {}", w.rel("analytics", "by_customer"))
        ),
        [["kim", "1700.00"], ["lee", "2500.00"]]
    );
    // One line per node: status, kind, relation, rows for tables, seconds.
    assert!(
        out.lines().any(|l| l.contains("OK")
            && l.contains("seed")
            && l.contains("raw_data.orders")
            && l.contains("3 rows")),
        "{out}"
    );
    assert!(out.contains("Finished in"), "{out}");
}

#[test]
fn seed_column_types_override_inference_and_korean_text_round_trips() {
    let dir = project(LAYERS);
    ok(dir.path(), &["seed"]);
    let types = query(
        dir.path(),
        "select column_name, data_type from information_schema.columns \
         where table_name = 'orders' order by ordinal_position",
    );
    assert_eq!(
        types,
        [
            ["order_id", "VARCHAR"],
            ["customer", "VARCHAR"],
            ["amount", "DECIMAL(12,2)"],
            ["product", "VARCHAR"]
        ]
    );
    assert_eq!(
        one(
            dir.path(),
            "select string_agg(product, '|' order by order_id) from raw_data.orders"
        ),
        "라면|김치|떡볶이, 매운맛"
    );
}

#[test]
fn cp949_and_utf16_seeds_are_transcoded_byte_exact() {
    let dir = project(
        "-- file: seeds/properties.yml
seeds:
  - name: products_kr
    config: { encoding: cp949, delimiter: ';' }
  - name: stores
    config: { encoding: utf-16 }
",
    );
    let korean = "상품코드;상품명;비고\n1;신라면 120g;\"매운맛; 봉지\"\n2;햇반 210g;즉석밥\n";
    let (cp949, _, lossy) = encoding_rs::EUC_KR.encode(korean);
    assert!(!lossy);
    std::fs::write(dir.path().join("seeds/products_kr.csv"), &cp949).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in "id,name\n1,강남점\n2,부산 서면점\n".encode_utf16() {
        utf16.extend(unit.to_le_bytes());
    }
    std::fs::write(dir.path().join("seeds/stores.csv"), utf16).unwrap();
    ok(dir.path(), &["seed"]);
    let rows = query(dir.path(), "select * from main.products_kr order by 1");
    assert_eq!(
        rows,
        [
            ["1", "신라면 120g", "매운맛; 봉지"],
            ["2", "햇반 210g", "즉석밥"]
        ]
    );
    // Byte-exact: the UTF-8 bytes DuckDB holds are those of the original text.
    let hex = one(
        dir.path(),
        "select hex(encode(string_agg(\"상품명\", '|' order by 1))) from main.products_kr",
    );
    let expected: String = "신라면 120g|햇반 210g"
        .bytes()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(hex, expected);
    assert_eq!(
        query(dir.path(), "select name from main.stores order by id"),
        [["강남점"], ["부산 서면점"]]
    );
}

#[test]
fn a_cp949_file_read_as_utf8_fails_with_its_line_and_a_hint() {
    let dir = project("-- file: seeds/.keep\n");
    let (bytes, _, _) = encoding_rs::EUC_KR.encode("id,name\n1,ok\n2,신라면\n");
    std::fs::write(dir.path().join("seeds/products.csv"), &bytes).unwrap();
    let o = xform(dir.path(), &["seed"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(o.stdout.contains("seeds/products.csv:3"), "{}", o.stdout);
    assert!(o.stdout.contains("encoding"), "{}", o.stdout);
}

fn a_ragged_csv_is_rejected_with_its_line_and_the_old_table_kept(w: &Warehouse) {
    let orders = format!("select count(*) from {}", w.rel("raw_data", "orders"));
    let count = |d: &Path| w.query(d, &orders)[0][0].clone();
    let dir = w.project(LAYERS);
    ok(dir.path(), &["seed"]);
    write_files(
        dir.path(),
        "-- file: seeds/orders.csv
order_id,customer,amount,product
4,park,100,우유
5,choi,200,빵,extra
",
    );
    let o = xform(dir.path(), &["seed"]);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("seeds/orders.csv:3"), "{}", o.stdout);
    assert_eq!(count(dir.path()), "3");
    // A value that does not fit its declared type names the column.
    write_files(
        dir.path(),
        "-- file: seeds/orders.csv
order_id,customer,amount,product
4,park,100,우유
5,choi,lots,빵
",
    );
    let o = xform(dir.path(), &["seed"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.contains("seeds/orders.csv:3: column `amount`"),
        "{}",
        o.stdout
    );
    assert_eq!(count(dir.path()), "3");
    assert!(
        !w.relations(dir.path())
            .iter()
            .any(|(r, _)| r.contains("__xform_"))
    );
}

fn a_failing_model_keeps_its_previous_table_and_its_children_are_skipped(w: &Warehouse) {
    let dir = w.project(&format!(
        "{LAYERS}-- file: models/analytics/top_customer.sql
select * from {{{{ ref('by_customer') }}}} order by total desc limit 1
"
    ));
    ok(dir.path(), &["build"]);
    write_files(
        dir.path(),
        "-- file: models/analytics/by_customer.sql
select customer, cast('broken on purpose' as integer) as total from {{ ref('stg_orders') }}
",
    );
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(o.stdout.contains("broken on purpose"), "{}", o.stdout);
    assert!(
        o.stdout.contains("2 OK, 1 error, 1 skipped"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("SQL as executed: target/run/models/analytics/by_customer.sql")
    );
    assert_eq!(
        w.query(
            dir.path(),
            &format!("select * from {}", w.rel("analytics", "by_customer"))
        ),
        [["kim", "1700.00"], ["lee", "2500.00"]]
    );
    assert!(
        !w.relations(dir.path())
            .iter()
            .any(|(r, _)| r.contains("__xform_"))
    );
    let results = run_results(dir.path());
    let status = |id: &str| {
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == id)
            .map(|r| r["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("model.shop.by_customer").as_deref(), Some("error"));
    assert_eq!(
        status("model.shop.top_customer").as_deref(),
        Some("skipped")
    );
    assert_eq!(status("model.shop.stg_orders").as_deref(), Some("success"));
}

fn rebuilding_is_idempotent_and_switches_kinds(w: &Warehouse) {
    let dir = w.project(LAYERS);
    ok(dir.path(), &["build"]);
    let first = w.relations(dir.path());
    let out = ok(dir.path(), &["build"]);
    assert!(out.contains("3 OK, 0 errors, 0 skipped"), "{out}");
    assert_eq!(w.relations(dir.path()), first);
    assert_eq!(
        w.query(
            dir.path(),
            &format!("select count(*) from {}", w.rel("analytics", "by_customer"))
        )[0][0],
        "2"
    );
    // A view that becomes a table and back.
    write_files(
        dir.path(),
        "-- file: models/raw/stg_orders.sql
{{ config(materialized='table') }}
select order_id, customer, amount from {{ ref('orders') }}
",
    );
    ok(dir.path(), &["run"]);
    assert!(
        w.relations(dir.path())
            .contains(&("raw_data.stg_orders".into(), "BASE TABLE".into()))
    );
    write_files(
        dir.path(),
        "-- file: models/raw/stg_orders.sql
select order_id, customer, amount from {{ ref('orders') }}
",
    );
    ok(dir.path(), &["run", "-s", "stg_orders"]);
    assert!(
        w.relations(dir.path())
            .contains(&("raw_data.stg_orders".into(), "VIEW".into()))
    );
}

fn schema_prefix_isolates_a_target(w: &Warehouse) {
    let dir = w.project(LAYERS);
    ok(dir.path(), &["build", "--target", "pr"]);
    let rels: Vec<String> = w.relations(dir.path()).into_iter().map(|r| r.0).collect();
    assert_eq!(
        rels,
        [
            "pr_7_analytics.by_customer",
            "pr_7_raw_data.orders",
            "pr_7_raw_data.stg_orders"
        ]
    );
}

#[test]
fn run_artifacts_record_every_node() {
    let dir = project(LAYERS);
    ok(dir.path(), &["build"]);
    let results = run_results(dir.path());
    let list = results["results"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    let table = list
        .iter()
        .find(|r| r["unique_id"] == "model.shop.by_customer")
        .unwrap();
    assert_eq!(table["status"], "success");
    assert_eq!(table["adapter_response"]["rows_affected"], 2);
    assert_eq!(
        table["compiled_path"],
        "target/compiled/models/analytics/by_customer.sql"
    );
    let run_sql = std::fs::read_to_string(
        dir.path()
            .join("target/run/models/analytics/by_customer.sql"),
    )
    .unwrap();
    assert!(run_sql.contains("CREATE OR REPLACE TABLE"), "{run_sql}");
    assert!(
        run_sql.contains("__xform_cte__by_customer_base"),
        "{run_sql}"
    );
    assert!(run_sql.contains("COMMIT"), "{run_sql}");
}

fn json_log_has_one_object_per_event(w: &Warehouse) {
    let dir = w.project(LAYERS);
    let out = ok(dir.path(), &["build", "--log-format", "json"]);
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let finished: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "node_finished")
        .collect();
    assert_eq!(finished.len(), 3);
    assert!(
        finished
            .iter()
            .all(|e| e["status"] == "success" && e["seconds"].is_number())
    );
    assert_eq!(events.last().unwrap()["event"], "run_finished");
}

fn show_prints_rows_without_materializing(w: &Warehouse) {
    let dir = w.project(LAYERS);
    ok(dir.path(), &["seed"]);
    let out = ok(dir.path(), &["show", "stg_orders", "--limit", "2"]);
    assert!(out.contains("| order_id | customer | amount  |"), "{out}");
    assert!(out.contains("(2 rows)"), "{out}");
    assert!(
        !w.relations(dir.path())
            .iter()
            .any(|(r, _)| r.contains("stg_orders"))
    );
    let o = xform(dir.path(), &["show", "stg_order"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("did you mean `stg_orders`"),
        "{}",
        o.stderr
    );
}

#[test]
fn debug_checks_the_connection_and_clean_keeps_the_warehouse() {
    let dir = project(LAYERS);
    let out = ok(dir.path(), &["debug"]);
    assert!(out.contains("connection: ok (DuckDB"), "{out}");
    ok(dir.path(), &["build"]);
    let out = ok(dir.path(), &["clean"]);
    assert!(out.contains("target/compiled"), "{out}");
    assert!(!dir.path().join("target/run_results.json").exists());
    assert!(dir.path().join("target/dev.duckdb").exists());
}

/// A project whose models take a while each, chained so a single thread builds them in order.
fn slow_chain(marker: &str) -> String {
    let mut files = String::from(
        "-- file: project.yml
name: slow
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 1 }
models:
  +materialized: table
",
    );
    for i in 0..8 {
        let parent = if i == 0 {
            String::new()
        } else {
            format!(
                ", (select count(*) from {{{{ ref('m{}') }}}}) as parent_rows",
                i - 1
            )
        };
        files.push_str(&format!(
            "-- file: models/m{i}.sql
select '{marker}' as marker, (select count(*) from range(100000000) t(x) where x % 7 = 3) as n{parent}
"
        ));
    }
    files
}

/// Reads the child's stdout until a line matches, so the test acts mid-run.
fn wait_for_line(child: &mut Child, what: &str) -> Vec<String> {
    let stdout = child.stdout.as_mut().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let hit = line.contains(what);
        lines.push(line);
        if hit {
            return lines;
        }
    }
    panic!("xform ended before printing {what:?}: {lines:?}");
}

fn markers(dir: &Path) -> Vec<String> {
    (0..8)
        .map(|i| one(dir, &format!("select marker from main.m{i}")))
        .collect()
}

#[test]
fn a_build_killed_mid_run_leaves_every_relation_old_or_new() {
    let dir = project(&slow_chain("old"));
    ok(dir.path(), &["build"]);
    write_files(dir.path(), &slow_chain("new"));
    let mut child = spawn(dir.path(), &["build"]);
    wait_for_line(&mut child, "main.m1");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let seen = markers(dir.path());
    assert!(seen.iter().all(|m| m == "old" || m == "new"), "{seen:?}");
    assert!(
        seen.contains(&"new".to_string()),
        "nothing was built: {seen:?}"
    );
    assert!(
        seen.contains(&"old".to_string()),
        "the kill came too late: {seen:?}"
    );
    assert!(no_temporary_relations(dir.path()));
    // The next run finishes the job.
    ok(dir.path(), &["build"]);
    assert!(markers(dir.path()).iter().all(|m| m == "new"));
}

#[test]
fn ctrl_c_interrupts_the_running_statement_and_keeps_the_old_relation() {
    let dir = project(&slow_chain("old"));
    ok(dir.path(), &["build"]);
    write_files(dir.path(), &slow_chain("new"));
    let mut child = spawn(dir.path(), &["build"]);
    wait_for_line(&mut child, "main.m0");
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "Ctrl-C took too long"
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Interrupted"), "{stdout}");
    let seen = markers(dir.path());
    assert_eq!(seen[0], "new");
    assert!(
        seen[1..].iter().all(|m| m == "old" || m == "new"),
        "{seen:?}"
    );
    assert!(seen.contains(&"old".to_string()), "{seen:?}");
    assert!(no_temporary_relations(dir.path()));
}

#[test]
fn a_second_build_on_the_same_file_exits_2_with_a_clear_message() {
    let dir = project(&slow_chain("one"));
    let mut first = spawn(dir.path(), &["build"]);
    wait_for_line(&mut first, "xform build");
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 2, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("in use by another process"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("dev.duckdb"), "{}", o.stderr);
    let status = first.wait().unwrap();
    assert!(status.success());
}

#[test]
fn the_example_project_builds_every_layer() {
    let dir = example_project();
    let out = ok(dir.path(), &["build"]);
    assert!(!out.contains("ERROR"), "{out}");
    // Every kind of test ran and passed: built-in, custom generic, singular, unit.
    for name in [
        "unique_stg_orders_order_id",
        "positive_stg_orders_amount",
        "assert_revenue_matches_orders",
        "channel_revenue_sums_each_channel",
        "not_null_monthly_kpi_revenue_per_user",
    ] {
        assert!(
            out.lines().any(|l| l.contains(name) && l.contains("PASS")),
            "{name}: {out}"
        );
    }
    assert!(out.contains("24 pass, 0 warn, 0 fail, 0 errors"), "{out}");
    let schemas: std::collections::BTreeSet<String> = relations(dir.path())
        .into_iter()
        .map(|(r, _)| r.split('.').next().unwrap().to_string())
        .collect();
    assert_eq!(
        schemas.into_iter().collect::<Vec<_>>(),
        [
            "analytics",
            "mart",
            "raw_data",
            "snapshots",
            "test_failures"
        ]
    );
    // The hourly fact reads the external CSV files with their `dt=` folder as a column; the
    // daily microbatch and the customer snapshot are built on the first run.
    assert_eq!(
        query(
            dir.path(),
            "select load_date::varchar, count(*) from analytics.fct_page_views group by 1 order by 1"
        ),
        [
            ["2023-03-01", "8"],
            ["2023-03-02", "8"],
            ["2023-03-03", "8"]
        ]
    );
    assert_eq!(
        one(dir.path(), "select sum(views) from mart.daily_traffic"),
        "24"
    );
    assert_eq!(
        one(
            dir.path(),
            "select count(*) from snapshots.customers_snapshot where dbt_valid_to is null"
        ),
        "5"
    );
    // A second build adds to them instead of rebuilding: nothing new has landed.
    let again = ok(dir.path(), &["build"]);
    assert!(
        again
            .lines()
            .any(|l| l.contains("analytics.fct_page_views") && l.contains(" 0 rows")),
        "{again}"
    );
    assert!(again.contains("(2 batches)"), "{again}");
    assert_eq!(
        one(dir.path(), "select count(*) from analytics.fct_page_views"),
        "24"
    );
    // The CP949 export arrives intact and joins the UTF-8 orders on Korean product names.
    assert_eq!(
        one(
            dir.path(),
            "select category from mart.top_products where product_name = '생수 2L, 6개입'"
        ),
        "식품"
    );
    assert_eq!(
        one(
            dir.path(),
            "select count(*) from mart.top_products where category = '미분류'"
        ),
        "0"
    );
}

#[test]
fn bad_seed_settings_exit_2_before_anything_is_built() {
    let dir = project(
        "-- file: seeds/orders.csv
id
1
-- file: seeds/properties.yml
seeds:
  - name: orders
    config:
      encoding: latin-9000
      delimiter: ''
",
    );
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 2, "{}\n{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("seeds/properties.yml:4"), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("`encoding: \"latin-9000\"` is not an encoding"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("seeds/properties.yml:5"), "{}", o.stderr);
    assert!(!dir.path().join("target/dev.duckdb").exists());
}

#[test]
fn fail_fast_interrupts_what_runs_and_skips_the_rest() {
    let dir = project(
        "-- file: project.yml
name: ff
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 2 }
models:
  +materialized: table
-- file: models/slow.sql
select (select count(*) from range(3000000000) t(x) where x % 7 = 3) as n
-- file: models/broken.sql
select error('broken on purpose') as x from range(1)
-- file: models/after_slow.sql
select * from {{ ref('slow') }}
",
    );
    let started = Instant::now();
    let o = xform(dir.path(), &["run", "--fail-fast"]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the slow model was not interrupted"
    );
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("broken on purpose"), "{}", o.stdout);
    assert!(
        o.stdout.contains("0 OK, 1 error, 2 skipped"),
        "{}",
        o.stdout
    );
    assert!(relations(dir.path()).is_empty());
}

#[test]
fn identifiers_with_quotes_and_dots_are_built_and_counted() {
    let dir = project(
        "-- file: models/odd.sql
{{ config(materialized='table', alias='order \"items\".v2', schema='마트') }}
select * from range(2)
",
    );
    let out = ok(dir.path(), &["run"]);
    assert!(out.contains("2 rows"), "{out}");
    assert_eq!(
        one(
            dir.path(),
            "select count(*) from \"마트\".\"order \"\"items\"\".v2\""
        ),
        "2"
    );
}

/// This DuckDB has no ICU extension (the duckdb crate builds it only from a git checkout, and
/// it cannot be downloaded offline), yet `timestamptz` works as it does with ICU in a UTC
/// session: the values below are what DuckDB with ICU gives (pip's duckdb, `TimeZone` UTC).
#[test]
fn timestamps_with_time_zones_work_as_with_duckdbs_icu() {
    let dir = project(
        "-- file: models/zoned.sql
{{ config(materialized='table') }}
select
  timestamp '2024-03-10 02:30' at time zone 'America/Los_Angeles' as skipped_hour,
  timestamptz '2024-07-01 00:00+00' at time zone 'asia/seoul' as in_seoul,
  cast(cast(now() as timestamp) at time zone 'UTC' at time zone 'Asia/Seoul' as date)
    - cast(now() at time zone 'Asia/Seoul' as date) as same_day,
  date_trunc('quarter', timestamptz '2024-05-17 10:11:12+09') as quarter,
  extract(isoyear from timestamptz '2024-12-30 00:00+00') as isoyear,
  cast(timestamptz '2024-01-01 23:30-05' as date) as day,
  timestamptz '2024-01-31 10:00+00' + interval '1 month 2 days 3 hours' as later,
  date_diff('hour', timestamptz '2024-01-01 00:59+00', timestamptz '2024-01-01 01:00+00') as hours,
  age(timestamptz '2024-03-31 00:00+00', timestamptz '2024-02-29 12:00+00') as aged,
  typeof(now() - interval 1 day) as arithmetic_type,
  year('infinity'::timestamptz) is null and date_trunc('day', 'infinity'::timestamptz) > now()
    as infinity_as_icu
-- file: models/nowhere.sql
{{ config(materialized='table') }}
select timestamp '2024-01-01' at time zone 'Mars/Olympus' as t
",
    );
    let out = xform(dir.path(), &["build"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("unknown time zone 'Mars/Olympus'"),
        "{}",
        out.stdout
    );
    assert_eq!(
        query(dir.path(), "select * from main.zoned")[0],
        [
            "2024-03-10 10:30:00+00",
            "2024-07-01 09:00:00",
            "0",
            "2024-04-01 00:00:00+00",
            "2025",
            "2024-01-02",
            "2024-03-02 13:00:00+00",
            "1",
            "1 month 1 day 12:00:00",
            "TIMESTAMP WITH TIME ZONE",
            "true",
        ]
    );
}

/// A project whose hooks log what runs, in order, into `hook_log`.
const HOOKS: &str = "
-- file: project.yml
name: shop
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 1 }
on_run_start:
  - \"create table if not exists {{ schemas[0] }}.hook_log (n integer, what varchar(40))\"
on_run_end: \"insert into {{ schemas[0] }}.hook_log select count(*) + 1, 'end' from {{ schemas[0] }}.hook_log\"
models:
  +materialized: table
  +pre_hook: \"insert into {{ this.schema }}.hook_log select count(*) + 1, 'folder pre {{ this.identifier }}' from {{ this.schema }}.hook_log\"
-- file: models/a.sql
{{ config(
    pre_hook=\"insert into {{ this.schema }}.hook_log select count(*) + 1, 'own pre a' from {{ this.schema }}.hook_log\",
    post_hook=[\"insert into {{ this.schema }}.hook_log select count(*) + 1, 'post a ' || (select count(*) from {{ this }}) from {{ this.schema }}.hook_log\"]) }}
select 1 as x
";

fn hooks_run_in_order_and_a_folders_come_before_a_models_own(w: &Warehouse) {
    let dir = w.project(HOOKS);
    ok(dir.path(), &["build"]);
    let log = w.query(
        dir.path(),
        &format!("select what from {} order by n", w.rel("main", "hook_log")),
    );
    let log: Vec<&str> = log.iter().map(|r| r[0].as_str()).collect();
    // The post hook runs in the build's transaction: it sees the new table's row.
    assert_eq!(log, ["folder pre a", "own pre a", "post a 1", "end"]);
}
