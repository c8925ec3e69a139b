//! Data tests and unit tests: `xform test`, tests inside `xform build`, write-audit-publish.

use std::path::Path;

use crate::build::run_results;
use crate::harness::{project, write_files, xform};
use crate::warehouses::{Warehouse, both};

/// One line of the run output that mentions `name`.
fn line_of<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{out}"))
}

/// Asserts that the output line for `name` shows `status`.
fn assert_line(out: &str, name: &str, status: &str) {
    assert!(line_of(out, name).contains(status), "{out}");
}

fn result_of(dir: &Path, name: &str) -> serde_json::Value {
    let doc = run_results(dir);
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["unique_id"]
                .as_str()
                .unwrap()
                .ends_with(&format!(".{name}"))
        })
        .unwrap_or_else(|| panic!("no result for {name}"))
        .clone()
}

both!(
    every_builtin_generic_test_passes_on_good_data,
    every_builtin_generic_test_fails_on_bad_data_with_rows_shown,
    severity_thresholds_where_limit_and_stored_failures,
    custom_generic_tests_and_singular_tests,
    write_audit_publish_keeps_the_previous_table_when_a_test_fails,
    a_failing_test_on_a_view_skips_its_children,
    unit_tests_run_the_model_on_mocked_inputs,
    a_failing_unit_test_prints_a_row_diff_and_blocks_the_model,
    a_test_that_cannot_run_is_reported_alone_and_blocks_publishing
);

/// Whether the warehouse has relation `name` in the default schema.
fn exists(w: &Warehouse, dir: &Path, name: &str) -> bool {
    !w.columns(dir, "main", name).is_empty()
}

const SHOP: &str = "
-- file: project.yml
name: shop
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 2 }
models:
  +materialized: table
seeds:
  +schema: raw
-- file: seeds/customers.csv
id,name,tier
1,김민지,gold
2,이서준,silver
3,박지훈,gold
-- file: seeds/orders.csv
order_id,customer_id,amount,status
10,1,100,paid
11,2,250,paid
12,3,80,refunded
-- file: models/order_facts.sql
select o.order_id, o.customer_id, c.tier, o.amount, o.status
from {{ ref('orders') }} o join {{ ref('customers') }} c on c.id = o.customer_id
-- file: models/schema.yml
models:
  - name: order_facts
    data_tests:
      - unique_combination_of_columns: {combination_of_columns: [order_id, customer_id]}
      - expression_is_true: {expression: amount > 0}
      - row_count: {min: 1, max: 10}
    columns:
      - name: order_id
        data_tests: [unique, not_null]
      - name: tier
        data_tests:
          - accepted_values: {values: [gold, silver]}
      - name: customer_id
        data_tests:
          - relationships: {to: ref('customers'), field: id}
";

fn every_builtin_generic_test_passes_on_good_data(w: &Warehouse) {
    let dir = w.project(SHOP);
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    for name in [
        "unique_order_facts_order_id",
        "not_null_order_facts_order_id",
        "accepted_values_order_facts_tier__gold__silver",
        "relationships_order_facts_customer_id__id__ref__customers__",
        "unique_combination_of_columns_order_facts__order_id__customer_id",
        "expression_is_true_order_facts__amount___0",
        "row_count_order_facts__10__1",
    ] {
        assert_line(&o.stdout, name, "PASS");
        assert_eq!(result_of(dir.path(), name)["status"], "pass");
    }
    assert!(o.stdout.contains("7 pass, 0 warn, 0 fail"), "{}", o.stdout);
}

/// Data that breaks every built-in test once, tested after the fact with `xform test`.
fn every_builtin_generic_test_fails_on_bad_data_with_rows_shown(w: &Warehouse) {
    let dir = w.project(SHOP);
    assert_eq!(xform(dir.path(), &["build"]).code, 0);
    write_files(
        dir.path(),
        "
-- file: seeds/orders.csv
order_id,customer_id,amount,status
10,1,100,paid
10,2,250,paid
,9,-5,paid
-- file: seeds/customers.csv
id,name,tier
1,김민지,gold
2,이서준,platinum
9,최유나,
",
    );
    // Publish the bad data without auditing, then test what is published.
    let built = xform(dir.path(), &["build", "--no-audit"]);
    assert_eq!(built.code, 1, "{}", built.stdout);
    let o = xform(dir.path(), &["test"]);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    let fails = [
        ("unique_order_facts_order_id", 1),
        ("not_null_order_facts_order_id", 1),
        ("accepted_values_order_facts_tier__gold__silver", 1),
        (
            "unique_combination_of_columns_order_facts__order_id__customer_id",
            0,
        ),
        ("expression_is_true_order_facts__amount___0", 1),
    ];
    for (name, failures) in fails {
        let r = result_of(dir.path(), name);
        if failures == 0 {
            assert_eq!(r["status"], "pass", "{name}");
            continue;
        }
        assert_eq!(r["status"], "fail", "{name}: {r}");
        assert_eq!(r["failures"], failures, "{name}");
        assert_line(&o.stdout, name, "FAIL");
    }
    // The failing rows are printed, with the compiled SQL to rerun.
    assert!(
        o.stdout.contains("| value_field | n_records |"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("platinum"), "{}", o.stdout);
    assert!(
        o.stdout.contains(
            "compiled SQL: target/compiled/models/schema.yml/unique_order_facts_order_id.sql"
        ),
        "{}",
        o.stdout
    );
    let rows =
        &result_of(dir.path(), "accepted_values_order_facts_tier__gold__silver")["failing_rows"];
    assert_eq!(rows[0]["value_field"], "platinum", "{rows}");

    // relationships: an order whose customer is missing; row_count: too many rows.
    write_files(
        dir.path(),
        "
-- file: models/order_facts.sql
select * from (values (1, 1, 'gold', 5, 'paid'), (2, 77, 'gold', 5, 'paid')) as t(order_id, customer_id, tier, amount, status)
-- file: models/more.yml
models:
  - name: order_facts
    config: {audit: false}
",
    );
    std::fs::write(
        dir.path().join("models/schema.yml"),
        "
models:
  - name: order_facts
    data_tests:
      - row_count: {max: 1}
    columns:
      - name: customer_id
        data_tests:
          - relationships: {to: ref('customers'), field: id}
",
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("models/more.yml")).unwrap();
    let o = xform(dir.path(), &["build", "--no-audit"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let rel = result_of(
        dir.path(),
        "relationships_order_facts_customer_id__id__ref__customers__",
    );
    assert_eq!(
        (rel["status"].as_str(), rel["failures"].as_u64()),
        (Some("fail"), Some(1))
    );
    assert_eq!(rel["failing_rows"][0]["from_field"], "77");
    let count = result_of(dir.path(), "row_count_order_facts__1");
    assert_eq!(count["status"], "fail");
    assert_eq!(count["failing_rows"][0]["row_count"], "2");
}

const THRESHOLDS: &str = "
-- file: project.yml
name: shop
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 1 }
models:
  +materialized: view
-- file: models/events.sql
select * from (values (1, null, 'web'), (2, null, 'app'), (3, null, 'app'), (4, 'x', 'app'))
  as t(id, referrer, source)
-- file: models/schema.yml
models:
  - name: events
    columns:
      - name: referrer
        data_tests:
          - not_null:
              name: referrer_mostly_set
              config: {warn_if: '>1', error_if: '>5'}
          - not_null:
              name: referrer_warn_only
              config: {severity: warn}
          - not_null:
              name: referrer_app_only
              config: {where: \"source = 'app'\", error_if: '>=3'}
          - not_null:
              name: referrer_limited
              config: {limit: 2, error_if: '>2'}
          - not_null:
              name: referrer_stored
              config: {store_failures: true, severity: warn}
";

fn severity_thresholds_where_limit_and_stored_failures(w: &Warehouse) {
    let dir = w.project(THRESHOLDS);
    let o = xform(dir.path(), &["build"]);
    // Nothing fails at error severity: warnings only, exit 0.
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let status = |name: &str| {
        let r = result_of(dir.path(), name);
        (
            r["status"].as_str().unwrap().to_string(),
            r["failures"].as_u64().unwrap(),
        )
    };
    // 3 failing rows: over warn_if (>1), under error_if (>5).
    assert_eq!(status("referrer_mostly_set"), ("warn".into(), 3));
    assert_eq!(status("referrer_warn_only"), ("warn".into(), 3));
    // `where` keeps the app rows: 2 failing, error_if >=3 does not hold, warn_if (!=0) does.
    assert_eq!(status("referrer_app_only"), ("warn".into(), 2));
    // `limit` caps the count at 2, so `>2` cannot hold.
    assert_eq!(status("referrer_limited"), ("warn".into(), 2));
    assert_line(&o.stdout, "referrer_mostly_set", "WARN");
    // Stored failures: the failing rows in test_failures.<test name>.
    let stored = w.rel("test_failures", "referrer_stored");
    assert_eq!(
        w.query(dir.path(), &format!("select id from {stored} order by id")),
        [["1"], ["2"], ["3"]]
    );
    assert!(
        o.stdout
            .contains(&format!("failing rows stored in {stored}")),
        "{}",
        o.stdout
    );

    // Over error_if: FAIL, exit 1.
    write_files(
        dir.path(),
        "
-- file: models/events.sql
select * from (values (1, null, 'app'), (2, null, 'app'), (3, null, 'app'), (4, null, 'app'), (5, null, 'app'), (6, null, 'app'))
  as t(id, referrer, source)
",
    );
    // `xform test` reads what is published: the old view until it is run again.
    assert_eq!(xform(dir.path(), &["test"]).code, 0);
    assert_eq!(xform(dir.path(), &["run"]).code, 0);
    let o = xform(dir.path(), &["test"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert_eq!(status("referrer_mostly_set"), ("fail".into(), 6));
    assert_eq!(status("referrer_warn_only"), ("warn".into(), 6));
    assert_eq!(status("referrer_app_only"), ("fail".into(), 6));
    assert_line(&o.stdout, "referrer_app_only", "FAIL");
}

#[test]
fn bad_test_config_is_a_project_error() {
    let dir = project(&THRESHOLDS.replace("{severity: warn}", "{severity: loud}"));
    let o = xform(dir.path(), &["test"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("`severity` is \"loud\""), "{}", o.stderr);
    assert!(o.stderr.contains("models/schema.yml:11"), "{}", o.stderr);
    let dir = project(&THRESHOLDS.replace("'>1'", "'more than one'"));
    let o = xform(dir.path(), &["compile"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("is not a comparison with a number"),
        "{}",
        o.stderr
    );
}

const CUSTOM: &str = "
-- file: project.yml
name: shop
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb }
models:
  +materialized: table
-- file: tests/generic/is_even.sql
{% test is_even(model, column_name, offset=0) %}
select {{ column_name }} from {{ model }} where ({{ column_name }} + {{ offset }}) % 2 <> 0
{% endtest %}
-- file: macros/tests.sql
{% test at_most(model, column_name, value) %}
select {{ column_name }} from {{ model }} where {{ column_name }} > {{ value }}
{% endtest %}
-- file: tests/no_negative_totals.sql
select * from {{ ref('numbers') }} where n < 0
-- file: models/numbers.sql
select * from (values (2), (4), (6)) as t(n)
-- file: models/schema.yml
models:
  - name: numbers
    columns:
      - name: n
        data_tests:
          - is_even
          - is_even: {offset: 1, config: {severity: warn}}
          - at_most: {value: 5}
";

fn custom_generic_tests_and_singular_tests(w: &Warehouse) {
    let dir = w.project(CUSTOM);
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert_eq!(result_of(dir.path(), "is_even_numbers_n")["status"], "pass");
    assert_eq!(
        result_of(dir.path(), "is_even_numbers_n__1")["status"],
        "warn"
    );
    assert_eq!(result_of(dir.path(), "is_even_numbers_n__1")["failures"], 3);
    let at_most = result_of(dir.path(), "at_most_numbers_n__5");
    assert_eq!(at_most["status"], "fail");
    assert_eq!(at_most["failing_rows"][0]["n"], "6");
    assert_eq!(
        result_of(dir.path(), "no_negative_totals")["status"],
        "pass"
    );
    assert_line(&o.stdout, "no_negative_totals", "PASS");
    // The audit failed: the first build of `numbers` was not published at all.
    assert!(
        o.stdout
            .contains("not published: `at_most_numbers_n__5` did not pass"),
        "{}",
        o.stdout
    );
    assert!(!exists(w, dir.path(), "numbers"));
    // An unknown test or a missing argument names the YAML line.
    write_files(
        dir.path(),
        "
-- file: models/more.yml
models:
  - name: other
    columns:
      - name: n
        data_tests: [is_evn]
-- file: models/other.sql
select 1 as n
",
    );
    let o = xform(dir.path(), &["test"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("unknown data test `is_evn`"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("models/more.yml:5"), "{}", o.stderr);
    assert!(
        o.stderr.contains("is_even"),
        "suggests the closest name: {}",
        o.stderr
    );
}

const WAP: &str = "
-- file: project.yml
name: shop
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 2 }
models:
  +materialized: table
-- file: models/customers.sql
select * from (values (1, 'kim'), (2, 'lee')) as t(id, name)
-- file: models/customer_count.sql
select count(*) as n from {{ ref('customers') }}
-- file: models/schema.yml
models:
  - name: customers
    columns:
      - name: id
        data_tests: [unique]
";

fn write_audit_publish_keeps_the_previous_table_when_a_test_fails(w: &Warehouse) {
    let dir = w.project(WAP);
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    // New data breaks `unique`: it is tested before it is published, and never published.
    write_files(
        dir.path(),
        "
-- file: models/customers.sql
select * from (values (1, 'kim'), (1, 'park'), (2, 'lee')) as t(id, name)
",
    );
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let (customers, count) = (w.rel("main", "customers"), w.rel("main", "customer_count"));
    assert_eq!(
        w.query(
            dir.path(),
            &format!("select id, name from {customers} order by id")
        ),
        [["1", "kim"], ["2", "lee"]]
    );
    assert_line(&o.stdout, "unique_customers_id", "FAIL");
    assert_line(&o.stdout, &count, "SKIP");
    assert_eq!(result_of(dir.path(), "customers")["status"], "error");
    assert_eq!(result_of(dir.path(), "customer_count")["status"], "skipped");
    assert!(
        o.stdout.contains("the previous version stays published"),
        "{}",
        o.stdout
    );
    // The failing rows are shown (they came from the staged table).
    assert!(
        o.stdout.contains("| unique_field | n_records |"),
        "{}",
        o.stdout
    );
    // No staging relation is left behind.
    let staged = format!(
        "select count(*) from information_schema.tables where table_schema = '{}' and table_name like '%xform%'",
        w.schema("main")
    );
    assert_eq!(w.query(dir.path(), &staged), [["0"]]);

    // `audit: false`: published first, tested after; the failure still skips the children.
    write_files(
        dir.path(),
        "
-- file: models/audit.yml
models:
  - name: customer_count
    description: children of an unaudited model
",
    );
    let yml = std::fs::read_to_string(dir.path().join("models/schema.yml")).unwrap();
    std::fs::write(
        dir.path().join("models/schema.yml"),
        yml.replace(
            "  - name: customers\n",
            "  - name: customers\n    config: {audit: false}\n",
        ),
    )
    .unwrap();
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert_eq!(
        w.query(dir.path(), &format!("select count(*) from {customers}")),
        [["3"]]
    );
    assert_line(&o.stdout, &customers, "OK");
    assert_line(&o.stdout, &count, "SKIP");
    assert_eq!(
        result_of(dir.path(), "customer_count")["message"],
        format!("skipped: upstream {customers} failed its tests")
    );
}

fn a_failing_test_on_a_view_skips_its_children(w: &Warehouse) {
    let dir = w.project(
        &WAP.replace("+materialized: table", "+materialized: view")
            .replace("(1, 'kim'), (2, 'lee')", "(1, 'kim'), (1, 'lee')"),
    );
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert_line(&o.stdout, &format!("{} ", w.rel("main", "customers")), "OK");
    assert_line(&o.stdout, "unique_customers_id", "FAIL");
    assert_line(&o.stdout, &w.rel("main", "customer_count"), "SKIP");
}

const UNIT: &str = "
-- file: project.yml
name: shop
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb }
models:
  +materialized: table
-- file: seeds/fx.csv
currency,rate
USD,1300
-- file: models/orders.sql
select * from (values (1, 10.5, 'USD', date '2024-01-01')) as t(id, amount, currency, ordered_at)
-- file: models/orders_krw.sql
select o.id, o.amount * fx.rate as amount_krw, date_trunc('month', o.ordered_at) as month
from {{ ref('orders') }} o join {{ ref('fx') }} fx on fx.currency = o.currency
-- file: models/unit.yml
unit_tests:
  - name: converts_to_krw
    model: orders_krw
    given:
      - input: ref('orders')
        rows:
          - {id: 1, amount: 2, currency: USD, ordered_at: 2024-03-05}
          - {id: 2, amount: 1.5, currency: USD, ordered_at: 2024-03-31}
          - {id: 3, amount: 9, currency: EUR}
      - input: ref('fx')
        format: csv
        rows: |
          currency,rate
          USD,1000
    expect:
      rows:
        - {id: 1, amount_krw: 2000, month: 2024-03-01}
        - {id: 2, amount_krw: 1500.0, month: 2024-03-01}
";

fn unit_tests_run_the_model_on_mocked_inputs(w: &Warehouse) {
    let dir = w.project(UNIT);
    // Built first, so the fixtures take the real inputs' column types (DATE, DECIMAL).
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert_line(&o.stdout, "converts_to_krw", "PASS");
    // Only unit tests; the real tables are not touched.
    let o = xform(dir.path(), &["test", "-s", "test_type:unit"]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("1 node"), "{}", o.stdout);
    let rate = format!("select rate from {}", w.rel("main", "fx"));
    assert_eq!(w.query(dir.path(), &rate), [["1300"]]);
}

fn a_failing_unit_test_prints_a_row_diff_and_blocks_the_model(w: &Warehouse) {
    let dir = w.project(&UNIT.replace("amount_krw: 1500.0", "amount_krw: 1600"));
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert_line(&o.stdout, "converts_to_krw", "FAIL");
    // Columns in the model's order; a midnight timestamp matches its date.
    assert!(
        o.stdout.contains("  | id | amount_krw | month |"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("- | 2 | 1600 | 2024-03-01 |"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("+ | 2 | 1500 | 2024-03-01 |"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("not built: unit test `converts_to_krw` failed"),
        "{}",
        o.stdout
    );
    assert!(!exists(w, dir.path(), "orders_krw"));
}

#[test]
fn malformed_unit_test_fixtures_name_the_file_and_line() {
    let dir = project(&UNIT.replace("          USD,1000\n", "          USD,1000,extra\n"));
    let o = xform(dir.path(), &["test"]);
    assert_eq!(o.code, 2, "{}\n{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("malformed csv rows"), "{}", o.stderr);
    assert!(o.stderr.contains("models/unit.yml:10"), "{}", o.stderr);
    let dir = project(&UNIT.replace(
        "          - {id: 3, amount: 9, currency: EUR}\n",
        "          - just text\n",
    ));
    let o = xform(dir.path(), &["test"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("malformed `rows`"), "{}", o.stderr);
    assert!(o.stderr.contains("models/unit.yml:5"), "{}", o.stderr);
    let dir = project(&UNIT.replace("      - input: ref('orders')\n        rows:\n          - {id: 1, amount: 2, currency: USD, ordered_at: 2024-03-05}\n          - {id: 2, amount: 1.5, currency: USD, ordered_at: 2024-03-31}\n          - {id: 3, amount: 9, currency: EUR}\n", ""));
    let o = xform(dir.path(), &["test"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("`orders` missing"), "{}", o.stderr);
}

fn a_test_that_cannot_run_is_reported_alone_and_blocks_publishing(w: &Warehouse) {
    let dir = w.project(WAP);
    assert_eq!(xform(dir.path(), &["build"]).code, 0);
    write_files(
        dir.path(),
        "
-- file: models/customers.sql
select * from (values (1, 'kim'), (2, 'lee'), (3, 'park')) as t(id, name)
",
    );
    let schema = std::fs::read_to_string(dir.path().join("models/schema.yml")).unwrap();
    let merged = schema.replace(
        "    columns:\n      - name: id\n",
        "    data_tests:\n      - expression_is_true: {expression: no_such_column > 0}\n    columns:\n      - name: id\n",
    );
    std::fs::write(dir.path().join("models/schema.yml"), merged).unwrap();
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    // The broken test is an error of its own; the other test of the same model still passes.
    assert_line(&o.stdout, "expression_is_true_customers", "ERROR");
    assert_line(&o.stdout, "unique_customers_id", "PASS");
    assert!(o.stdout.contains("no_such_column"), "{}", o.stdout);
    // Unverified data is not published: the previous two rows stay.
    let count = format!("select count(*) from {}", w.rel("main", "customers"));
    assert_eq!(w.query(dir.path(), &count), [["2"]]);
    assert_line(&o.stdout, &w.rel("main", "customer_count"), "SKIP");
}
