//! Column lineage read from the models' SQL (`xform lineage`, the manifest of `docs
//! generate`), the mapping sheet, `xform lint` against a naming standard, and the catalog
//! `docs generate` reads from each warehouse.

use serde_json::Value as Json;

use crate::harness::{project, xform};
use crate::warehouses::{Warehouse, both};

/// A corpus: seeds, a source with declared columns, an ephemeral model, a macro, CTEs with
/// `select *`, a join, an aggregate with `count(*)`, a window function, a union and constants.
const CORPUS: &str = r#"-- file: seeds/customers.csv
id,name,city
1,김철수,서울
2,이영희,부산
-- file: seeds/orders.csv
id,customer_id,amount,status
10,1,1500,paid
11,1,700,cancelled
12,2,300,paid
-- file: models/sources.yml
version: 2
sources:
  - name: raw
    tables:
      - name: events
        columns:
          - name: event_id
          - name: user_id
-- file: macros/money.sql
{% macro won(expr) %}round({{ expr }}, 0){% endmacro %}
-- file: models/eph_paid.sql
{{ config(materialized='ephemeral') }}
select id, customer_id, amount from {{ ref('orders') }} where status = 'paid'
-- file: models/stg_customers.sql
select id as customer_id, upper(name) as customer_nm, city from {{ ref('customers') }}
-- file: models/customer_orders.sql
with o as (select * from {{ ref('eph_paid') }}),
c as (select * from {{ ref('stg_customers') }})
select c.customer_id, c.customer_nm, {{ won('sum(o.amount)') }} as total_amt, count(*) as ord_cnt
from c left join o on o.customer_id = c.customer_id
group by 1, 2
-- file: models/ranked.sql
select customer_id, total_amt,
    row_number() over (partition by customer_nm order by total_amt desc) as rnk
from {{ ref('customer_orders') }}
-- file: models/all_ids.sql
select customer_id as any_id from {{ ref('stg_customers') }}
union all
select event_id from {{ source('raw', 'events') }}
-- file: models/consts.sql
select 1 as one, current_date as today
"#;

/// `xform lineage WHAT --format json` (with extra arguments), parsed.
fn lineage_json(dir: &std::path::Path, what: &str, extra: &[&str]) -> Json {
    let mut args = vec!["lineage", what, "--format", "json"];
    args.extend(extra);
    let out = xform(dir, &args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("lineage prints JSON")
}

/// Each edge as `to.column <- from.column (kind[: expression])`, node names without the
/// project's prefix, in the order printed.
fn edges(j: &Json) -> Vec<String> {
    let end = |e: &Json| {
        let node = e["node"].as_str().unwrap_or_default();
        let name = node.rsplit('.').next().unwrap_or_default();
        format!("{name}.{}", e["column"].as_str().unwrap_or_default())
    };
    let edges = j["edges"].as_array().cloned().unwrap_or_default();
    (edges.iter())
        .map(|e| {
            let how = match e["expression"].as_str() {
                Some(x) => format!("{}: {x}", e["kind"].as_str().unwrap_or_default()),
                None => e["kind"].as_str().unwrap_or_default().to_string(),
            };
            format!("{} <- {} ({how})", end(&e["to"]), end(&e["from"]))
        })
        .collect()
}

#[test]
fn column_lineage_follows_ctes_joins_aggregates_windows_unions_and_ephemerals() {
    let dir = project(CORPUS);
    let one_step = |what: &str| edges(&lineage_json(dir.path(), what, &["--depth", "1"]));
    assert_eq!(
        one_step("stg_customers"),
        [
            "stg_customers.customer_id <- customers.id (rename)",
            "stg_customers.customer_nm <- customers.name (transform: upper(name))",
            "stg_customers.city <- customers.city (copy)",
        ]
    );
    assert_eq!(
        one_step("customer_orders"),
        [
            "customer_orders.customer_id <- stg_customers.customer_id (copy)",
            "customer_orders.customer_nm <- stg_customers.customer_nm (copy)",
            "customer_orders.total_amt <- eph_paid.amount (transform: round(sum(o.amount), 0))",
            "customer_orders.ord_cnt <- stg_customers.* (transform: count(*))",
            "customer_orders.ord_cnt <- eph_paid.* (transform: count(*))",
        ]
    );
    let rnk = one_step("ranked.rnk");
    assert_eq!(rnk.len(), 2, "{rnk:?}");
    assert!(
        rnk[0]
            .starts_with("ranked.rnk <- customer_orders.customer_nm (transform: row_number() OVER")
    );
    assert!(
        rnk[1].starts_with("ranked.rnk <- customer_orders.total_amt (transform: row_number() OVER")
    );
    assert_eq!(
        one_step("all_ids"),
        [
            "all_ids.any_id <- stg_customers.customer_id (rename)",
            "all_ids.any_id <- events.event_id (rename)",
        ]
    );
}

#[test]
fn upstream_reaches_the_seeds_through_an_ephemeral_and_downstream_reaches_the_last_model() {
    let dir = project(CORPUS);
    let up = edges(&lineage_json(dir.path(), "ranked.total_amt", &[]));
    assert_eq!(
        up,
        [
            "ranked.total_amt <- customer_orders.total_amt (copy)",
            "customer_orders.total_amt <- eph_paid.amount (transform: round(sum(o.amount), 0))",
            "eph_paid.amount <- orders.amount (copy)",
        ]
    );
    let down = edges(&lineage_json(
        dir.path(),
        "customers.name",
        &["--downstream"],
    ));
    assert_eq!(
        down,
        [
            "stg_customers.customer_nm <- customers.name (transform: upper(name))",
            "customer_orders.customer_nm <- stg_customers.customer_nm (copy)",
            "ranked.rnk <- customer_orders.customer_nm (transform: row_number() OVER (PARTITION BY customer_nm ORDER BY total_amt DESC))",
        ]
    );
    let consts = lineage_json(dir.path(), "consts", &[]);
    let names: Vec<&str> = (consts["constants"].as_array().unwrap().iter())
        .filter_map(|c| c["column"].as_str())
        .collect();
    assert_eq!(names, ["one", "today"]);
}

#[test]
fn the_mapping_sheet_is_csv_from_source_to_target_and_bad_names_exit_2() {
    let dir = project(CORPUS);
    let out = xform(dir.path(), &["lineage", "--format", "csv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "source_relation,source_column,target_relation,target_column,kind,transformation"
    );
    assert!(
        lines.contains(&"main.customers,name,main.stg_customers,customer_nm,transform,upper(name)"),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"main.orders,amount,eph_paid,amount,copy,"),
        "{lines:#?}"
    );
    let bad = xform(dir.path(), &["lineage", "stg_customers.customer_name"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("`stg_customers` has no column `customer_name`"),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("customer_nm"),
        "a suggestion: {}",
        bad.stderr
    );
    let unknown = xform(dir.path(), &["lineage", "stg_customer"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("stg_customers"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn a_star_over_unknown_columns_is_reported_not_guessed() {
    let dir = project(
        "-- file: models/sources.yml
version: 2
sources:
  - name: raw
    tables: [{name: blobs}]
-- file: models/everything.sql
select * from {{ source('raw', 'blobs') }}
",
    );
    let out = xform(dir.path(), &["lineage", "everything"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`*` of raw.blobs: its columns are unknown"),
        "{}",
        out.stderr
    );
}

const NAMING: &str = r#"-- file: project.yml
name: std
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb }
naming:
  glossary: glossary.csv
  suffixes: [id, nm, amt, cnt]
  allowed: [stg]
-- file: glossary.csv
표준단어명,영문약어명,영문명
고객,cust,customer
주문,ord,order
금액,amt,amount
이름,nm,name
건수,cnt,count
식별자,id,identifier
-- file: seeds/raw_orders.csv
id,cust_id,amount
1,7,1000
"#;

#[test]
fn lint_points_at_each_nonstandard_name_with_the_standard_term() {
    let dir = project(&format!(
        "{NAMING}-- file: models/stg_ord.sql
select
    id as ord_id,
    cust_id,
    amount as order_amt,
    amount as total
from {{{{ ref('raw_orders') }}}}
"
    ));
    let out = xform(dir.path(), &["lint"]);
    assert_eq!(out.code, 0, "warnings by default: {}", out.stderr);
    assert!(
        out.stderr
            .contains("warning: column `order_amt` of `stg_ord`: `order` is not a standard word"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("models/stg_ord.sql:4:15"),
        "the alias's line: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("the standard word is `ord` (주문, order)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("column `total` of `stg_ord` does not end in a class word"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("models/stg_ord.sql:5:15"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("`ord_id`") && !out.stderr.contains("`cust_id`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("3 naming findings (0 errors)"),
        "{}",
        out.stdout
    );
}

#[test]
fn lint_is_quiet_on_a_clean_project_and_errors_stop_a_compile() {
    let clean = project(&format!(
        "{NAMING}-- file: models/stg_ord.sql
select id as ord_id, cust_id, amount as ord_amt from {{{{ ref('raw_orders') }}}}
"
    ));
    let out = xform(clean.path(), &["lint"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert!(
        out.stdout.contains("Names follow the naming standard"),
        "{}",
        out.stdout
    );

    let strict = NAMING.replace(
        "  allowed: [stg]",
        "  allowed: [stg]\n  severity: error\n  on_compile: true",
    );
    let dir = project(&format!(
        "{strict}-- file: models/stg_ord.sql\nselect amount as ord_total from {{{{ ref('raw_orders') }}}}\n"
    ));
    assert_eq!(xform(dir.path(), &["lint"]).code, 1);
    let compiled = xform(dir.path(), &["compile"]);
    assert_eq!(compiled.code, 2, "{}", compiled.stderr);
    assert!(
        compiled.stderr.contains("`total` is not a standard word"),
        "{}",
        compiled.stderr
    );
    assert!(
        !dir.path().join("target/manifest.json").exists(),
        "nothing written"
    );
}

#[test]
fn a_broken_glossary_is_an_error_at_its_line() {
    let dir = project(&format!(
        "{}-- file: models/m.sql\nselect 1 as one_cnt\n",
        NAMING.replace("건수,cnt,count\n", "건수,,count\n")
    ));
    let out = xform(dir.path(), &["lint"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("a glossary row without an abbreviation"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("glossary.csv:6"), "{}", out.stderr);
}

/// `docs generate` reads each relation's columns, types and rows from the warehouse into
/// target/catalog.json, and the docs' data carries them.
fn docs_catalog_has_the_warehouse_columns(w: &Warehouse) {
    let dir = w.project(
        CORPUS
            .split("-- file: models/sources.yml")
            .next()
            .unwrap_or_default(),
    );
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::write(
        dir.path().join("models/stg_customers.sql"),
        "{{ config(materialized='table') }}\nselect id as customer_id, upper(name) as customer_nm from {{ ref('customers') }}\n",
    )
    .unwrap();
    let built = xform(dir.path(), &["build"]);
    assert_eq!(built.code, 0, "{}{}", built.stdout, built.stderr);
    let out = xform(dir.path(), &["docs", "generate"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(dir.path().join("target/catalog.json")).unwrap();
    let catalog: Json = serde_json::from_str(&text).unwrap();
    let stg = (catalog["nodes"].as_object().unwrap().iter())
        .find(|(id, _)| id.ends_with(".stg_customers"))
        .map(|(_, v)| v.clone())
        .expect("stg_customers in the catalog");
    let cols = stg["columns"].as_object().unwrap();
    let names: Vec<&String> = cols.keys().collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let typ = cols
        .get("customer_id")
        .and_then(|c| c["type"].as_str())
        .unwrap_or_default()
        .to_lowercase();
    assert!(typ.contains("int"), "customer_id's type: {typ}");
    if matches!(w, Warehouse::DuckDb) {
        assert_eq!(stg["stats"]["row_count"]["value"], 2);
    }
    let manifest = std::fs::read_to_string(dir.path().join("target/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"column_lineage\""),
        "the manifest carries lineage"
    );
    assert!(dir.path().join("target/docs/index.html").is_file());
}

both!(docs_catalog_has_the_warehouse_columns);
