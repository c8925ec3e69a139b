//! `xform init DIR`: a small working project (DuckDB target, one seed, two models, tests).

use std::path::Path;

const FILES: &[(&str, &str)] = &[
    (
        "project.yml",
        r#"name: my_project
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 4 }
models:
  +materialized: view
  staging: { +schema: analytics }
  mart: { +schema: mart, +materialized: table }
seeds:
  +schema: raw_data
"#,
    ),
    (
        "seeds/raw_orders.csv",
        "order_id,customer_name,product_name,amount,ordered_at\n1,김민준,무선 이어폰,89000,2024-01-03\n2,이서연,노트북 거치대,32000,2024-01-03\n3,박도윤,기계식 키보드,129000,2024-01-04\n4,김민준,USB-C 케이블,9900,2024-01-05\n",
    ),
    (
        "models/staging/stg_orders.sql",
        "select\n    order_id,\n    customer_name,\n    product_name,\n    cast(amount as decimal(12, 0)) as amount,\n    cast(ordered_at as date) as order_date\nfrom {{ ref('raw_orders') }}\n",
    ),
    (
        "models/mart/daily_sales.sql",
        "select\n    order_date,\n    count(*) as orders,\n    sum(amount) as revenue\nfrom {{ ref('stg_orders') }}\ngroup by order_date\n",
    ),
    (
        "models/schema.yml",
        r#"version: 2
models:
  - name: stg_orders
    description: One row per order, typed.
    columns:
      - name: order_id
        data_tests: [unique, not_null]
  - name: daily_sales
    description: Orders and revenue per day.
    columns:
      - name: order_date
        data_tests: [unique, not_null]
"#,
    ),
    (
        "tests/assert_no_negative_revenue.sql",
        "-- a singular test: every returned row is a failure\nselect * from {{ ref('daily_sales') }} where revenue < 0\n",
    ),
];

/// Writes the scaffold into `dir`, which must be missing or empty.
pub fn init(dir: &Path) -> Result<(), String> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(format!(
            "{} exists and is not empty; choose a new folder",
            dir.display()
        ));
    }
    for (path, text) in FILES {
        let full = dir.join(path);
        let parent = full.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .and_then(|_| std::fs::write(&full, text))
            .map_err(|e| format!("cannot write {}: {e}", full.display()))?;
    }
    std::fs::write(dir.join(".gitignore"), "target/\n").map_err(|e| e.to_string())
}
