//! dbt projects as they are: dbt_project.yml and profiles.yml, a package in dbt_packages/,
//! adapter.dispatch with a `dispatch:` search order, dbt's cross-database macros, return(),
//! lists built in place, hooks and a generate_schema_name override — built unchanged, on
//! DuckDB and on PostgreSQL.

use std::time::Duration;

use crate::harness::{run_bounded, write_files, xform};
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
  helpers:
    +materialized: table
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
models:
  helpers:
    +materialized: view
-- file: dbt_packages/helpers/models/month_names.sql
select 1 as month_number, 'January' as month_name
union all select 2, 'February'
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
{{ log("staging the orders", info=True) }}
{{ log("a debug line dbt keeps to its log file") }}
{% set extra = [] %}
{% do extra.append('1 as one') %}
select
    {{ extra | join(', ') }},
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
        description: '{{ doc("order_status") }}'
        tests:
          - accepted_values:
              values: ['placed', 'shipped']
-- file: models/staging/sources.yml
version: 2
sources:
  - name: landing
    schema: "{{ target.schema }}_landing"
    tables:
      - name: raw_orders
models:
  - name: prod_only
    config:
      enabled: "{{ target.name == 'prod' }}"
-- file: models/staging/landing_count.sql
-- depends_on: {{ ref('raw_orders') }}
select count(*) as n from {{ source('landing', 'raw_orders') }}
-- file: models/staging/prod_only.sql
select 1 as only_in_prod
-- file: models/docs.md
# Shop
{% docs order_status %}
Where the order is: placed or shipped.
{% enddocs %}
-- file: models/marts/monthly.sql
select
    order_month,
    (select month_name from {{ ref('helpers', 'month_names') }} where month_number = extract(month from order_month)) as month_name,
    {{ helpers.measures(['amount']) | join(',\n    ') }},
    {{ dbt.datediff("min(ship_by)", "max(ship_by)", 'day') }} as ship_span_days
from {{ ref('stg_orders') }}
group by order_month
"#;

/// The project with `profiles.yml` pointing its `dev` output at the warehouse.
fn dbt_project(w: &Warehouse) -> tempfile::TempDir {
    dbt_project_of(w, PROJECT)
}

/// A dbt project of these files, with `profiles.yml` pointing its `dev` output at the
/// warehouse.
fn dbt_project_of(w: &Warehouse, files: &str) -> tempfile::TempDir {
    let output = match w {
        Warehouse::DuckDb => "type: duckdb\n      path: target/dev.duckdb".to_string(),
        Warehouse::Postgres(pg) => {
            let fields: Vec<String> = (pg.address.iter())
                .map(|(k, v)| format!("{k}: \"{v}\""))
                .collect();
            let schema = pg.schema("public");
            format!(
                "type: postgres\n      {}\n      schema: {schema}",
                fields.join("\n      ")
            )
        }
    };
    let profiles = format!(
        "-- file: profiles.yml\nshop:\n  target: dev\n  outputs:\n    dev:\n      {output}\n      threads: 2\n"
    );
    if let Warehouse::Postgres(pg) = w {
        pg.drop_schemas();
    }
    let dir = tempfile::tempdir().expect("temp dir");
    write_files(dir.path(), &format!("{files}{profiles}"));
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
    let staged = query(
        w,
        dir.path(),
        "select order_id, amount, order_code, cast(ship_by as varchar) from {s}.stg_orders order by order_id",
    );
    assert_eq!(
        staged,
        [
            ["1", "12.5", "o-1", "2024-01-16"],
            ["2", "9.9", "o-2", "2024-01-21"],
            ["3", "40.0", "o-3", "2024-02-04"],
        ]
        .map(|r| r.map(String::from).to_vec())
    );
    let monthly = query(
        w,
        dir.path(),
        "select cast(order_month as date), month_name, total_amount, ship_span_days from {s}_marts.monthly order by 1",
    );
    assert_eq!(
        monthly,
        [
            ["2024-01-01", "January", "22.4", "5"],
            ["2024-02-01", "February", "40.0", "0"]
        ]
        .map(|r| r.map(String::from).to_vec())
    );
    // Seeds typed as dbt's agate types them: whole numbers as integer.
    let sql = "select lower(data_type) from information_schema.columns where table_schema = '{s}_landing' \
               and table_name = 'raw_orders' and column_name = 'amount_cents'";
    assert_eq!(query(w, dir.path(), sql), [["integer".to_string()]]);
    // `doc()` in a description reads the project's `{% docs %}` blocks.
    let manifest = std::fs::read_to_string(dir.path().join("target/manifest.json")).unwrap();
    assert!(
        manifest.contains("Where the order is: placed or shipped."),
        "{manifest}"
    );
    // A list built in place in the model itself.
    let one = query(w, dir.path(), "select min(one) from {s}.stg_orders");
    assert_eq!(one, [["1".to_string()]]);
    // The package's model, a table as the root project configures it (over the package's view).
    let kinds = w.relations(dir.path());
    let month_names = kinds.iter().find(|(r, _)| r.ends_with(".month_names"));
    assert!(
        month_names.is_some_and(|(_, k)| k.contains("TABLE")),
        "{kinds:?}"
    );
    // Jinja in property files: the source's schema, a model enabled only in prod.
    let landed = query(w, dir.path(), "select n from {s}.landing_count");
    assert_eq!(landed, [["3".to_string()]]);
    assert!(
        !out.stdout.contains("prod_only"),
        "disabled outside prod: {}",
        out.stdout
    );
    // log(..., info=True) is printed; a debug log is not.
    assert!(
        out.stderr.contains("staging the orders") && !out.stderr.contains("debug line"),
        "{}",
        out.stderr
    );
    // The hooks ran: on-run-start made the log, on-run-end wrote to it.
    let log = query(w, dir.path(), "select event from {s}_landing.run_log");
    assert_eq!(log, [["finished".to_string()]]);
}

both!(dbt_project_builds_unchanged);

/// As in dbt-labs/jaffle-shop with `load_source_data`: the project's seeds load the tables its
/// sources name, and the staging models read them through `source()`. dbt runs such a model
/// whenever a thread is free, before the seed or after; xform runs it after the seed that
/// builds its source's table, so one `build` into an empty warehouse works every time.
fn a_source_a_seed_loads_is_read_after_the_seed(w: &Warehouse) {
    let mut files = String::from(
        r#"-- file: dbt_project.yml
name: 'landing'
config-version: 2
profile: 'shop'
seeds:
  landing:
    +schema: raw
-- file: models/sources.yml
version: 2
sources:
  - name: ecom
    schema: "{{ target.schema }}_raw"
    tables:
"#,
    );
    for k in 0..6 {
        files.push_str(&format!("      - name: raw_{k}\n"));
    }
    for k in 0..6 {
        files.push_str(&format!(
            "-- file: seeds/raw_{k}.csv\nid,amount\n1,{k}\n2,{k}\n-- file: models/stg_{k}.sql\n{{{{ config(materialized='view') }}}}\nselect id, amount from {{{{ source('ecom', 'raw_{k}') }}}}\n"
        ));
    }
    for round in 0..3 {
        let dir = dbt_project_of(w, &files.replace("threads: 2", "threads: 4"));
        let out = xform(dir.path(), &["build", "--threads", "4"]);
        assert_eq!(out.code, 0, "round {round}: {}{}", out.stdout, out.stderr);
        let rows = query(w, dir.path(), "select count(*) from {s}.stg_5");
        assert_eq!(rows, [["2".to_string()]]);
    }
    // A model reading, as a source, the table of a model built after it: waiting for that
    // model would wait for itself. It runs, fails on the missing table, and the run ends.
    let looped = r#"-- file: dbt_project.yml
name: 'looped'
config-version: 2
profile: 'shop'
-- file: models/sources.yml
version: 2
sources:
  - name: own
    schema: "{{ target.schema }}"
    tables: [{name: b}]
-- file: models/a.sql
{{ config(materialized='table') }}
select count(*) as n from {{ source('own', 'b') }}
-- file: models/b.sql
{{ config(materialized='table') }}
select n from {{ ref('a') }}
"#;
    let dir = dbt_project_of(w, looped);
    let args: Vec<std::ffi::OsString> = vec!["build".into()];
    let out = run_bounded(dir.path(), &args, Duration::from_secs(60)).exited("looped build");
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("does not exist"), "{}", out.stdout);
}

both!(a_source_a_seed_loads_is_read_after_the_seed);

/// Each of dbt's cross-database macros (xform's implementation for the warehouse), on
/// literal inputs, with the results dbt's own tests of these macros expect.
const CROSS_DB_CASES: &[(&str, &str)] = &[
    (
        "dbt.dateadd('day', 1, \"cast('2018-01-01' as date)\")",
        "2018-01-02 00:00:00",
    ),
    (
        "dbt.dateadd('month', -1, \"cast('2018-03-31' as date)\")",
        "2018-02-28 00:00:00",
    ),
    (
        "dbt.dateadd('hour', 2, \"cast('2018-01-01 23:00:00' as timestamp)\")",
        "2018-01-02 01:00:00",
    ),
    (
        "dbt.datediff(\"cast('2018-01-01' as date)\", \"cast('2018-01-20' as date)\", 'day')",
        "19",
    ),
    (
        "dbt.datediff(\"cast('2018-01-31' as date)\", \"cast('2018-02-01' as date)\", 'month')",
        "1",
    ),
    (
        "dbt.datediff(\"cast('2017-12-31' as date)\", \"cast('2018-01-01' as date)\", 'year')",
        "1",
    ),
    (
        "dbt.datediff(\"cast('2019-12-31' as date)\", \"cast('2019-12-27' as date)\", 'week')",
        "-1",
    ),
    (
        "dbt.datediff(\"cast('2019-12-31' as date)\", \"cast('2020-02-28' as date)\", 'week')",
        "8",
    ),
    (
        "dbt.datediff(\"cast('2019-12-31' as date)\", \"cast('2020-01-02' as date)\", 'week')",
        "0",
    ),
    (
        "dbt.datediff(\"cast('2018-01-01 01:59:00' as timestamp)\", \"cast('2018-01-01 02:00:00' as timestamp)\", 'hour')",
        "1",
    ),
    (
        "dbt.date_trunc('month', \"cast('2018-01-05 12:00:00' as timestamp)\")",
        "2018-01-01 00:00:00",
    ),
    (
        "dbt.last_day(\"cast('2018-02-05' as date)\", 'month')",
        "2018-02-28",
    ),
    ("dbt.concat([\"'a'\", \"'b'\"])", "ab"),
    ("dbt.hash(\"'abc'\")", "900150983cd24fb0d6963f7d28e17f72"),
    ("dbt.split_part(\"'a,b,c'\", \"','\", 2)", "b"),
    ("dbt.position(\"'b'\", \"'abc'\")", "2"),
    ("dbt.replace(\"'abc'\", \"'b'\", \"'x'\")", "axc"),
    ("dbt.right(\"'abcdef'\", 3)", "def"),
    ("dbt.length(\"'abc'\")", "3"),
    ("dbt.safe_cast(\"'12'\", dbt.type_int())", "12"),
    ("dbt.cast_bool_to_text('true')", "true"),
    (
        "dbt.string_literal(dbt.escape_single_quotes(\"it's\"))",
        "it's",
    ),
    ("dbt.cast(\"'1.5'\", dbt.type_float())", "1.5"),
    ("dbt.cast(\"'2.25'\", dbt.type_numeric())", "2.250000"),
    ("dbt.cast(\"'7'\", dbt.type_bigint())", "7"),
    ("dbt.cast(\"'true'\", dbt.type_boolean())", "true"),
    (
        "dbt.cast(\"'2018-01-01 10:00:00'\", dbt.type_timestamp())",
        "2018-01-01 10:00:00",
    ),
];

fn cross_database_macros_agree_with_dbt(w: &Warehouse) {
    let columns: Vec<String> = (CROSS_DB_CASES.iter().enumerate())
        .map(|(i, (call, _))| format!("    cast({{{{ {call} }}}} as varchar) as c{i}"))
        .collect();
    let fixture = format!(
        "-- file: models/calls.sql\nselect\n{}\n\
         -- file: models/aggregates.sql\n\
         select {{{{ dbt.listagg('x', \"','\", \"order by x\") }}}} as listed,\n\
             cast({{{{ dbt.bool_or('flag') }}}} as varchar) as any_true,\n\
             {{{{ dbt.any_value('v') }}}} as one_value\n\
         from (select 'b' as x, true as flag, 'z' as v union all select 'a', false, 'z') as t\n\
         -- file: models/sets.sql\n\
         select (select count(*) from (select 1 as a {{{{ dbt.except() }}}} select 2) as e) as excepted,\n\
             (select count(*) from (select 1 as a {{{{ dbt.intersect() }}}} select 1) as i) as intersected,\n\
             (select count(*) from ({{{{ dbt.generate_series(3) }}}}) as g) as series,\n\
             (select count(*) from ({{{{ dbt.date_spine('day', \"cast('2018-01-01' as date)\", \"cast('2018-01-04' as date)\") }}}}) as s) as days\n",
        columns.join(",\n")
    );
    let dir = w.project(&fixture);
    let out = xform(dir.path(), &["build"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let row = &w.query(
        dir.path(),
        &format!("select * from {}", w.rel("main", "calls")),
    )[0];
    for (((call, want), got), i) in CROSS_DB_CASES.iter().zip(row).zip(0..) {
        assert_eq!(got, want, "c{i}: {call}");
    }
    let agg = w.query(
        dir.path(),
        &format!("select * from {}", w.rel("main", "aggregates")),
    );
    assert_eq!(agg, [["a,b", "true", "z"].map(String::from).to_vec()]);
    let sets = w.query(
        dir.path(),
        &format!("select * from {}", w.rel("main", "sets")),
    );
    assert_eq!(sets.concat(), ["1", "1", "3", "3"]);
}

both!(cross_database_macros_agree_with_dbt);

/// Macros that ask the warehouse while their model renders — dbt_utils' `get_column_values`
/// and `star`, dbt_date's spine — run when the model is built, after its parents: compile
/// renders them as dbt parses them and says so.
fn models_query_the_warehouse_as_they_are_built(w: &Warehouse) {
    let dir = w.project(
        r#"-- file: seeds/payments.csv
id,method,amount
1,card,10
2,cash,5
3,card,7
-- file: macros/pivot.sql
{% macro column_values(relation, column) %}
    {% set rows = run_query('select distinct ' ~ column ~ ' from ' ~ relation ~ ' order by 1') %}
    {% if execute %}{{ return(rows.columns[0].values()) }}{% else %}{{ return([]) }}{% endif %}
{% endmacro %}
{% macro all_but(relation, excluded) %}
    {# dbt_utils checks its argument so before reading a relation's columns #}
    {% if not (relation is mapping and relation.get('metadata', {}).get('type', '').endswith('Relation')) %}
        {{ exceptions.raise_compiler_error('expected a relation: ' ~ relation) }}
    {% endif %}
    {% set names = [] %}
    {% for c in adapter.get_columns_in_relation(relation) %}
        {% if c.name not in excluded %}{% do names.append(c.quoted) %}{% endif %}
    {% endfor %}
    {{ return(names | join(', ') if names else '*') }}
{% endmacro %}
-- file: models/by_method.sql
select
{%- for m in column_values(ref('payments'), 'method') %}
    sum(case when method = '{{ m }}' then amount else 0 end) as {{ m }}_amount{{ "," if not loop.last }}
{%- endfor %}
{%- if not execute %} 1 as parsed{% endif %}
from {{ ref('payments') }}
-- file: models/slim.sql
{% call statement('biggest', fetch_result=True) %}
    select max(amount) as top from {{ ref('payments') }}
{% endcall %}
{% set top = load_result('biggest')['data'][0][0] if execute else 0 %}
select {{ all_but(ref('payments'), ['amount']) }}, {{ top }} as top_amount
from {{ ref('payments') }}
"#,
    );
    let compiled = xform(dir.path(), &["compile"]);
    assert_eq!(compiled.code, 0, "{}", compiled.stderr);
    assert!(
        compiled
            .stdout
            .contains("rendered again when built, against the warehouse")
            && compiled.stdout.contains("by_method, slim"),
        "{}",
        compiled.stdout
    );
    let out = xform(dir.path(), &["build"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let pivot = w.query(
        dir.path(),
        &format!("select * from {}", w.rel("main", "by_method")),
    );
    assert_eq!(pivot, [["17", "5"].map(String::from).to_vec()]);
    let cols = w.columns(dir.path(), "main", "slim");
    assert_eq!(cols, ["id", "method", "top_amount"]);
    let slim = w.query(
        dir.path(),
        &format!("select top_amount from {} limit 1", w.rel("main", "slim")),
    );
    assert_eq!(slim, [["10".to_string()]]);
    // `show` renders such SQL against the warehouse too.
    let inline =
        "select {{ all_but(ref('payments'), ['amount', 'method']) }} from {{ ref('payments') }}";
    let shown = xform(dir.path(), &["show", "--inline", inline]);
    let header = shown.stdout.lines().next().unwrap_or("");
    assert_eq!(
        header.split_whitespace().collect::<String>(),
        "|id|",
        "{}{}",
        shown.stdout,
        shown.stderr
    );
}

both!(models_query_the_warehouse_as_they_are_built);

/// What dbt users type: `show --select/--inline` with dbt's 5 rows by default and `--limit -1`
/// for all, `-m`, `test_name:`; a Python model is an error naming its file; a unit test's
/// booleans compare as booleans however the warehouse writes them.
fn dbt_command_line(w: &Warehouse) {
    let dir = w.project(
        "-- file: models/numbers.sql\nselect n, n % 2 = 0 as even from (select 1 as n union all select 2 union all select 3 union all select 4 union all select 5 union all select 6 union all select 7) as t\n\
         -- file: models/schema.yml\nversion: 2\nmodels:\n  - name: numbers\n    columns:\n      - name: n\n        tests: [unique, not_null]\n\
         unit_tests:\n  - name: evens\n    model: numbers\n    expect:\n      rows:\n        - {n: 1, even: false}\n        - {n: 2, even: true}\n        - {n: 3, even: false}\n        - {n: 4, even: true}\n        - {n: 5, even: false}\n        - {n: 6, even: true}\n        - {n: 7, even: false}\n",
    );
    let out = xform(dir.path(), &["build"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let rows = |o: &crate::harness::Output| {
        o.stdout
            .lines()
            .filter(|l| l.starts_with("| ") && !l.contains(" n "))
            .count()
    };
    let five = xform(dir.path(), &["show", "--select", "numbers"]);
    assert_eq!((five.code, rows(&five)), (0, 5), "{}", five.stdout);
    let all = xform(dir.path(), &["show", "numbers", "--limit", "-1"]);
    assert_eq!((all.code, rows(&all)), (0, 7), "{}", all.stdout);
    let inline = xform(
        dir.path(),
        &[
            "show",
            "--inline",
            "select max(n) as top from {{ ref('numbers') }}",
        ],
    );
    assert!(
        inline.stdout.contains("| 7 "),
        "{}{}",
        inline.stdout,
        inline.stderr
    );
    // dbt's `invocation_id` and `run_started_at`, one per run.
    let run = "select '{{ invocation_id }}' as id, '{{ run_started_at.strftime('%Y') }}' as y";
    let ids: Vec<String> = (0..2)
        .map(|_| xform(dir.path(), &["show", "--inline", run]).stdout)
        .collect();
    let id = |out: &str| {
        out.lines()
            .nth(2)
            .unwrap_or("")
            .split('|')
            .nth(1)
            .unwrap_or("")
            .trim()
            .to_string()
    };
    assert_eq!(id(&ids[0]).len(), 36, "{}", ids[0]);
    assert_ne!(id(&ids[0]), id(&ids[1]));
    assert!(ids[0].contains("| 20"), "{}", ids[0]);
    let listed = xform(dir.path(), &["ls", "-m", "test_name:unique"]);
    assert_eq!(
        listed.stdout.trim(),
        "unique_numbers_n",
        "{}",
        listed.stderr
    );
    std::fs::write(
        dir.path().join("models/scored.py"),
        "def model(dbt, session):\n    return dbt.ref('numbers')\n",
    )
    .unwrap();
    let python = xform(dir.path(), &["compile"]);
    assert_eq!(python.code, 2);
    assert!(
        python
            .stderr
            .contains("Python models are not supported by xform")
            && python.stderr.contains("models/scored.py"),
        "{}",
        python.stderr
    );
}

both!(dbt_command_line);

const CHECKS: &str = r#"-- file: dbt_project.yml
name: 'shop_checks'
config-version: 2
profile: 'shop'
-- file: dbt_packages/checks/dbt_project.yml
name: 'checks'
-- file: dbt_packages/checks/macros/tests.sql
{% test same_rows(model, compare_model) %}
{{ config(fail_calc = 'sum(diff_count)') }}
{%- if not execute -%}{{ return('') }}{%- endif -%}
{%- set mine = set(adapter.get_columns_in_relation(model) | map(attribute='name') | map('lower')) -%}
{%- set theirs = set(adapter.get_columns_in_relation(compare_model) | map(attribute='name') | map('lower')) -%}
{%- if mine != theirs -%}{{ exceptions.raise_compiler_error(compare_model ~ " has other columns") }}{%- endif -%}
{%- set cols = mine | join(', ') -%}
select count(*) as diff_count from (
  (select {{ cols }} from {{ model }} except select {{ cols }} from {{ compare_model }})
  union all
  (select {{ cols }} from {{ compare_model }} except select {{ cols }} from {{ model }})
) d
{% endtest %}

{% test at_least(model, column_name) %}
select {{ column_name }} from {{ model }} where {{ column_name }} < {{ kwargs.get('minimum', 0) }}
{% endtest %}
-- file: dbt_packages/checks/macros/helpers.sql
{% macro slug(text) %}{{ return(modules.re.sub('[^a-z0-9]+', '_', text | lower)) }}{% endmacro %}

{% macro relations_named(prefix) %}
  {%- set found = {} -%}
  {%- do found.update({'relations': []}) -%}
  {%- call statement('names', fetch_result=True) -%}
    select table_name from information_schema.tables
    where table_schema = '{{ target.schema }}' and table_name like '{{ prefix }}%'
    order by table_name
  {%- endcall -%}
  {%- if execute -%}
    {%- for row in load_result('names')['table'] -%}
      {%- set r = load_relation(api.Relation.create(schema=target.schema, identifier=row.table_name)) -%}
      {%- if r is not none -%}{%- do found['relations'].append(r) -%}{%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(found['relations']) }}
{% endmacro %}
-- file: models/part_a.sql
select 1 as id, 'x' as name
-- file: models/part_b.sql
select 2 as id, 'y' as name
-- file: models/same_as_a.sql
select 1 as id, 'x' as name
-- file: models/parts.sql
-- depends_on: {{ ref('part_a') }} {{ ref('part_b') }}
{%- set rels = checks.relations_named('part_') %}
{%- for r in rels %}
select id, name from {{ r }}{% if not loop.last %} union all{% endif %}
{%- endfor %}
{%- if rels | length == 0 %}select 0 as id, 'none' as name{% endif %}
-- file: models/labels.sql
select '{{ checks.slug("Hello World-1") }}' as slug,
       '{{ modules.datetime.date(2024, 1, 2).strftime("%Y/%m/%d") }}' as day,
       '{{ flags.WHICH }}' as which,
       '{{ not_defined_anywhere }}' as nothing,
       {{ "42" | as_number }} as answer,
       {{ set([3, 1, 3]) | length }} as distinct_count,
       '{{ modules.pytz.timezone("Asia/Seoul").localize(modules.datetime.datetime(2024, 3, 10, 2, 30)).astimezone(modules.pytz.timezone("America/Los_Angeles")) }}' as in_la,
       '{{ run_started_at.astimezone(modules.pytz.timezone("Asia/Seoul")).strftime("%z") }}' as kst,
       {{ shop_checks.twice(21) }} as twice,
       '{{ modules.datetime.datetime(year=2026, month=9, day=1, tzinfo=modules.pytz.utc).timestamp() }}' as epoch_s,
       '{{ modules.datetime.datetime.fromisoformat("9999-12-31T00:00:00+00:00").timestamp() > modules.datetime.datetime.fromisoformat("2026-08-15T12:00:00Z").timestamp() }}' as far_later,
       '{{ modules.datetime.datetime(2024, 5, 17, 10, 30).replace(hour=0, minute=0) }}' as midnight,
       {{ ['a', 'b'].index('b') }} as found_at,
       '{{ modules.datetime.datetime(2024, 1, 1, 0, 0, 0, 500) }}|{{ modules.pytz.timezone("asia/seoul").zone }}|{{ run_started_at.strftime("%Z") }}' as python_text
-- file: macros/own.sql
{% macro twice(x) %}{{ return(x * 2) }}{% endmacro %}
-- file: models/switched_off.sql
{{ config(enabled=checks.slug('A') == 'b') }}
select 1 as x
-- file: models/headed.sql
{{ config(materialized='table') }}
{% call set_sql_header(config) %}
{% if target.type == 'postgres' %}set local application_name = 'xform_header';
{% else %}create or replace temporary macro plus_one(x) as x + 1;{% endif %}
{% endcall %}
select {% if target.type == 'postgres' %}current_setting('application_name') = 'xform_header'
{%- else %}plus_one(1) = 2{% endif %} as header_ran
-- file: models/missing.sql
-- depends_on: {{ ref('part_a') }} {{ ref('labels') }}
select '{{ adapter.get_missing_columns(ref('labels'), ref('part_a')) | map(attribute='name') | map('lower') | sort | join(',') }}' as missing
-- file: models/typed.sql
{%- set r = run_query("select true as flag, cast('007' as varchar(3)) as code, 7 as n") -%}
{%- if execute -%}
select '{{ r.columns["flag"].values()[0] is sameas true }}' as flag_is_bool,
       '{{ r.columns["code"].values()[0] }}' as code, {{ r.columns["n"].values()[0] + 1 }} as n_plus_one
{%- else -%}
select 1 as x
{%- endif %}
-- file: models/graphed.sql
{%- set models = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | map(attribute='name') | sort -%}
select '{{ models | join(",") }}' as models,
       '{{ graph.nodes["model.shop_checks.parts"].depends_on.nodes | join(",") }}' as parts_reads
-- file: models/schema.yml
version: 2
models:
  - name: part_a
    data_tests:
      - checks.same_rows:
          compare_model: ref('same_as_a')
    columns:
      - name: id
        data_tests:
          - checks.at_least:
              minimum: 1
          - accepted_values:
              values: ["{{ 0 + 1 }}"]
  - name: part_b
    data_tests:
      - checks.same_rows:
          compare_model: ref('same_as_a')
          config:
            severity: warn
    columns:
      - name: id
        data_tests:
          - checks.at_least:
              minimum: "{{ shop_checks.twice(1) }}"
          - accepted_values:
              values: "{{ [1 + 1] }}"
  - name: switched_off
    columns:
      - name: x
        data_tests: [not_null]
"#;

/// What dbt packages' tests and macros count on, as dbt_utils' own test suite uses it: a
/// package's generic tests by namespace (arguments beyond its own through `kwargs`, a relation
/// argument as the relation and a dependency, the model's columns read from the warehouse
/// while the test renders, `fail_calc`), `modules.re`/`modules.datetime`/`modules.pytz`, `api.Relation`,
/// `load_relation`, `adapter.get_missing_columns`, `set_sql_header`, `graph`, query results iterated as
/// rows, lists inside dicts changed in place, `flags`, `set()`, `as_number`, an undefined
/// name printing as nothing, the project's own macros by its name (`shop_checks.twice`),
/// `{{ }}` in a test's arguments rendered, and a model whose `config(enabled=...)` renders
/// false left out with its tests (as dbt_date's own integration tests use them).
fn package_tests_and_macros_work_as_in_dbt(w: &Warehouse) {
    let dir = dbt_project_of(w, CHECKS);
    let out = xform(dir.path(), &["build"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let said = |status: &str, test: &str| {
        (out.stdout.lines()).any(|l| l.contains(status) && l.contains(test))
    };
    assert!(
        said("PASS", "checks_same_rows_part_a_ref_same_as_a_")
            && said("PASS", "checks_at_least_part_a_id__1"),
        "{}",
        out.stdout
    );
    // part_b differs from same_as_a in both of its rows: fail_calc counts 2.
    assert!(
        said("WARN", "checks_same_rows_part_b_ref_same_as_a_")
            && out.stdout.contains("2 failing rows"),
        "{}",
        out.stdout
    );
    assert_eq!(
        query(w, dir.path(), "select id, name from {s}.parts order by id"),
        [["1", "x"], ["2", "y"]]
    );
    assert_eq!(
        query(
            w,
            dir.path(),
            "select slug, day, which, nothing, answer, distinct_count, in_la, kst, twice, epoch_s, far_later, midnight, found_at, python_text from {s}.labels"
        ),
        [[
            "hello_world_1",
            "2024/01/02",
            "build",
            "",
            "42",
            "2",
            "2024-03-09 09:30:00-08:00",
            "+0900",
            "42",
            "1788220800.0",
            "True",
            "2024-05-17 00:00:00",
            "1",
            "2024-01-01 00:00:00.000500|Asia/Seoul|UTC"
        ]]
    );
    assert_eq!(
        query(w, dir.path(), "select missing from {s}.missing"),
        [[
            "answer,day,distinct_count,epoch_s,far_later,found_at,in_la,kst,midnight,nothing,python_text,slug,twice,which"
        ]]
    );
    // set_sql_header's SQL ran before the table was built, in its transaction.
    let ran = query(w, dir.path(), "select header_ran from {s}.headed");
    assert!(["true", "t"].contains(&ran[0][0].as_str()), "{ran:?}");
    // Query results typed by their columns, as agate types them: a boolean, text that
    // spells a number kept as text, a number.
    assert_eq!(
        query(
            w,
            dir.path(),
            "select flag_is_bool, code, n_plus_one from {s}.typed"
        ),
        [["True", "007", "8"]]
    );
    assert_eq!(
        query(w, dir.path(), "select models, parts_reads from {s}.graphed"),
        [[
            "graphed,headed,labels,missing,part_a,part_b,parts,same_as_a,typed",
            "model.shop_checks.part_a,model.shop_checks.part_b"
        ]]
    );
    // run_results.json as dbt tooling reads it: dbt's schema, each node's SQL, tests' failures.
    let text = std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap();
    let results: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        results["metadata"]["dbt_schema_version"],
        "https://schemas.getdbt.com/dbt/run-results/v6.json"
    );
    let entry = |id: &str| {
        let all = results["results"].as_array().unwrap().iter();
        all.clone().find(|r| r["unique_id"] == id).cloned().unwrap()
    };
    // A model that disables itself in its own config() is left out, with its tests.
    let all = results["results"].as_array().unwrap();
    assert!(
        !all.iter()
            .any(|r| r["unique_id"].as_str().unwrap().contains("switched_off"))
    );
    let warned = entry("test.shop_checks.checks_same_rows_part_b_ref_same_as_a_");
    assert_eq!(
        (&warned["status"], &warned["failures"]),
        (&"warn".into(), &2.into())
    );
    let model = entry("model.shop_checks.part_a");
    assert!(
        model["compiled_code"]
            .as_str()
            .unwrap()
            .contains("select 1 as id")
    );
    assert!(model["failures"].is_null());
}

both!(package_tests_and_macros_work_as_in_dbt);
