//! dbt projects as they are: dbt_project.yml and profiles.yml, a package in dbt_packages/,
//! adapter.dispatch with a `dispatch:` search order, dbt's cross-database macros, return(),
//! lists built in place, hooks and a generate_schema_name override — built unchanged, on
//! DuckDB and on PostgreSQL.

use crate::harness::{write_files, xform};
use crate::warehouses::{Warehouse, both};

const PROJECT: &str = r#"-- file: dbt_project.yml
name: 'shop_dbt'
version: '1.0'
config-version: 2
profile: 'shop'
require-dbt-version: [">=1.5.0", "<2.0.0"]
model-paths: ["models"]
seed-paths: ["seeds"]
macro-paths: ["macros"]
target-path: "target"
clean-targets: ["target", "dbt_packages"]
vars:
  min_amount: 0
dispatch:
  - macro_namespace: helpers
    search_order: ['shop_dbt', 'helpers']
on-run-start:
  - "create table if not exists {{ target.schema }}_landing.run_log (event varchar(20))"
on-run-end:
  - "insert into {{ target.schema }}_landing.run_log values ('finished')"
seeds:
  shop_dbt:
    +schema: landing
models:
  shop_dbt:
    +materialized: view
    marts:
      +materialized: table
      +schema: marts
-- file: macros/generate_schema_name.sql
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif node.resource_type == 'seed' -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- else -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
-- file: macros/money.sql
{# The project's own implementation wins over the package's, by `dispatch:`. #}
{% macro default__cents_to_amount(column) -%}
    round({{ column }} / 100.0, 1)
{%- endmacro %}
-- file: dbt_packages/helpers/dbt_project.yml
name: 'helpers'
version: '0.1.0'
config-version: 2
macro-paths: ["macros"]
-- file: dbt_packages/helpers/macros/money.sql
{% macro cents_to_amount(column) -%}
    {{ return(adapter.dispatch('cents_to_amount', 'helpers')(column)) }}
{%- endmacro %}

{% macro default__cents_to_amount(column) -%}
    ({{ column }} / 100)
{%- endmacro %}

{% macro measures(names) -%}
    {% set columns = [] %}
    {% for n in names %}
        {% do columns.append('sum(' ~ n ~ ') as total_' ~ n) %}
    {% endfor %}
    {{ return(columns) }}
{%- endmacro %}
-- file: seeds/raw_orders.csv
id,status,amount_cents,ordered_at
1,placed,1250,2024-01-15 10:00:00
2,shipped,990,2024-01-20 12:30:00
3,placed,4000,2024-02-03 08:15:00
-- file: models/staging/stg_orders.sql
select
    id as order_id,
    status,
    {{ helpers.cents_to_amount('amount_cents') }} as amount,
    {{ dbt.date_trunc('month', 'ordered_at') }} as order_month,
    cast({{ dbt.dateadd('day', 1, 'ordered_at') }} as date) as ship_by,
    {{ dbt.concat(["'o-'", dbt.safe_cast('id', dbt.type_string())]) }} as order_code
from {{ ref('raw_orders') }}
where amount_cents > {{ var('min_amount') }}
-- file: models/staging/schema.yml
version: 2
models:
  - name: stg_orders
    columns:
      - name: order_id
        tests: [unique, not_null]
      - name: status
        tests:
          - accepted_values:
              values: ['placed', 'shipped']
-- file: models/marts/monthly.sql
select
    order_month,
    {{ helpers.measures(['amount']) | join(',\n    ') }},
    {{ dbt.datediff("min(ship_by)", "max(ship_by)", 'day') }} as ship_span_days
from {{ ref('stg_orders') }}
group by order_month
"#;

/// The project with `profiles.yml` pointing its `dev` output at the warehouse.
fn dbt_project(w: &Warehouse) -> tempfile::TempDir {
    let output = match w {
        Warehouse::DuckDb => "type: duckdb\n      path: target/dev.duckdb".to_string(),
        Warehouse::Postgres(pg) => {
            let fields: Vec<String> = (pg.address.iter())
                .map(|(k, v)| format!("{k}: \"{v}\""))
                .collect();
            let schema = pg.schema("public");
            format!("type: postgres\n      {}\n      schema: {schema}", fields.join("\n      "))
        }
    };
    let profiles = format!(
        "-- file: profiles.yml\nshop:\n  target: dev\n  outputs:\n    dev:\n      {output}\n      threads: 2\n"
    );
    if let Warehouse::Postgres(pg) = w {
        pg.drop_schemas();
    }
    let dir = tempfile::tempdir().expect("temp dir");
    write_files(dir.path(), &format!("{PROJECT}{profiles}"));
    dir
}

fn query(w: &Warehouse, dir: &std::path::Path, sql: &str) -> Vec<Vec<String>> {
    w.query(dir, &sql.replace("{s}", &w.schema("main")))
}

fn dbt_project_builds_unchanged(w: &Warehouse) {
    let dir = dbt_project(w);
    let out = xform(dir.path(), &["build"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        !out.stderr.contains("warning"),
        "a dbt project as dbt runs it warns of nothing: {}",
        out.stderr
    );
    // dbt's test names, so `--select` and stored failures match dbt's.
    assert!(
        out.stdout
            .contains("accepted_values_stg_orders_status__placed__shipped"),
        "{}",
        out.stdout
    );
    // Named by the project's generate_schema_name: seeds and marts in `<schema>_<custom>`.
    let staged = query(w, dir.path(), "select order_id, amount, order_code, cast(ship_by as varchar) from {s}.stg_orders order by order_id");
    assert_eq!(
        staged,
        [
            ["1", "12.5", "o-1", "2024-01-16"],
            ["2", "9.9", "o-2", "2024-01-21"],
            ["3", "40.0", "o-3", "2024-02-04"],
        ]
        .map(|r| r.map(String::from).to_vec())
    );
    let monthly = query(w, dir.path(), "select cast(order_month as date), total_amount, ship_span_days from {s}_marts.monthly order by 1");
    assert_eq!(
        monthly,
        [["2024-01-01", "22.4", "5"], ["2024-02-01", "40.0", "0"]]
            .map(|r| r.map(String::from).to_vec())
    );
    // The hooks ran: on-run-start made the log, on-run-end wrote to it.
    let log = query(w, dir.path(), "select event from {s}_landing.run_log");
    assert_eq!(log, [["finished".to_string()]]);
}

both!(dbt_project_builds_unchanged);
