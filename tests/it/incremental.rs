//! Incremental models (append, merge, delete+insert, on_schema_change), microbatch backfills,
//! snapshots, source freshness and external file sources, on DuckDB over several runs.
//! Each run's new data arrives by rewriting a seed, as a loader would land it.

use std::path::Path;

use crate::build::{ok, run_results};
use crate::harness::{project, write_files, xform};
use crate::warehouses::{Warehouse, both};

both!(
    each_strategy_over_three_runs_with_updates_and_late_rows,
    null_keys_merge_without_duplicates,
    a_merge_updates_only_the_columns_it_is_told,
    incremental_predicates_limit_the_rows_a_run_matches,
    a_merge_refuses_new_rows_that_repeat_a_key,
    on_schema_change_modes,
    a_failing_test_keeps_new_rows_out,
    a_broken_test_in_an_incremental_run_does_not_take_the_other_tests_with_it,
    a_test_whose_failing_rows_cannot_be_read_does_not_lose_the_new_rows,
    full_refresh_false_keeps_an_incremental_table_out_of_a_full_refresh,
    a_backfill_replaces_exactly_its_interval_and_is_idempotent,
    a_failing_batch_leaves_the_others_committed_and_is_reported,
    snapshots_record_a_change_a_revert_and_a_hard_delete,
    sized_text_widens_when_new_rows_outgrow_it
);

const PROJECT: &str = "
-- file: project.yml
name: shop
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, threads: 3 }
models:
  +materialized: incremental
seeds:
  +schema: raw
-- file: seeds/properties.yml
seeds:
  - name: events
    config:
      column_types: { id: integer, region: varchar, amount: integer, event_at: timestamp, loaded_at: timestamp }
";

/// A model over `events` that takes the rows loaded since its last run.
fn model(config: &str) -> String {
    format!(
        "{{{{ config({config}) }}}}
select id, region, amount, event_at, loaded_at from {{{{ ref('events') }}}}
{{% if is_incremental() %}}
where loaded_at > (select max(loaded_at) from {{{{ this }}}})
{{% endif %}}
"
    )
}

fn events(dir: &Path, rows: &[&str]) {
    let mut csv = String::from("id,region,amount,event_at,loaded_at\n");
    for r in rows {
        csv.push_str(r);
        csv.push('\n');
    }
    std::fs::write(dir.join("seeds/events.csv"), csv).unwrap();
}

/// The rows of `relation` (`schema.name`, `main` the default schema).
fn table(w: &Warehouse, dir: &Path, relation: &str) -> Vec<String> {
    let (schema, name) = relation.split_once('.').unwrap_or(("main", relation));
    let relation = w.rel(schema, name);
    w.query(
        dir,
        &format!("SELECT id, coalesce(region, '-'), amount FROM {relation} ORDER BY id, amount"),
    )
    .into_iter()
    .map(|r| r.join(" "))
    .collect()
}

const RUN_1: &[&str] = &[
    "1,seoul,10,2024-01-01 09:00,2024-01-01 10:00",
    "2,busan,20,2024-01-01 09:30,2024-01-01 10:00",
    "3,seoul,30,2024-01-01 09:40,2024-01-01 10:00",
];
/// Row 3 updated, row 4 inserted.
const RUN_2: &[&str] = &[
    "3,seoul,33,2024-01-01 09:40,2024-01-01 11:00",
    "4,daegu,40,2024-01-01 10:10,2024-01-01 11:00",
];
/// A late row (event of yesterday, loaded now) and row 2 updated.
const RUN_3: &[&str] = &[
    "5,seoul,50,2023-12-31 23:50,2024-01-01 12:00",
    "2,busan,22,2024-01-01 09:30,2024-01-01 12:00",
];

fn all(runs: &[&[&str]]) -> Vec<String> {
    runs.iter()
        .flat_map(|r| r.iter().map(|s| s.to_string()))
        .collect()
}

fn each_strategy_over_three_runs_with_updates_and_late_rows(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    write_files(
        d,
        &format!(
            "-- file: models/appended.sql\n{}-- file: models/merged.sql\n{}-- file: models/deleted_inserted.sql\n{}-- file: models/by_default.sql\n{}",
            model("incremental_strategy='append'"),
            model("incremental_strategy='merge', unique_key='id'"),
            model("incremental_strategy='delete+insert', unique_key=['id']"),
            model("unique_key='id'"),
        ),
    );
    let mut landed: Vec<String> = Vec::new();
    for run in [RUN_1, RUN_2, RUN_3] {
        landed.extend(run.iter().map(|s| s.to_string()));
        let rows: Vec<&str> = landed.iter().map(String::as_str).collect();
        events(d, &rows);
        let out = ok(d, &["build"]);
        assert!(out.contains("incr"), "{out}");
    }
    assert_eq!(
        table(w, d, "main.appended"),
        [
            "1 seoul 10",
            "2 busan 20",
            "2 busan 22",
            "3 seoul 30",
            "3 seoul 33",
            "4 daegu 40",
            "5 seoul 50"
        ]
    );
    let latest = [
        "1 seoul 10",
        "2 busan 22",
        "3 seoul 33",
        "4 daegu 40",
        "5 seoul 50",
    ];
    assert_eq!(table(w, d, "main.merged"), latest);
    assert_eq!(table(w, d, "main.deleted_inserted"), latest);
    assert_eq!(
        table(w, d, "main.by_default"),
        latest,
        "a unique_key means merge"
    );
    // The last run added 2 rows to the appended table and changed 2 in the merged one.
    let results = run_results(d);
    let rows_of = |name: &str| {
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == format!("model.shop.{name}"))
            .unwrap()["adapter_response"]["rows_affected"]
            .clone()
    };
    assert_eq!(rows_of("appended"), 2);
    assert_eq!(rows_of("merged"), 2);
    // --full-refresh rebuilds from everything landed: the appended table loses its history.
    ok(d, &["build", "--full-refresh", "-s", "appended"]);
    assert_eq!(
        table(w, d, "main.appended").len(),
        7,
        "all landed rows, once"
    );
}

fn null_keys_merge_without_duplicates(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    write_files(
        d,
        &format!(
            "-- file: models/merged.sql\n{}-- file: models/deleted_inserted.sql\n{}",
            model("unique_key=['id', 'region']"),
            model("incremental_strategy='delete+insert', unique_key=['id', 'region']"),
        ),
    );
    events(
        d,
        &[
            "1,,10,2024-01-01 09:00,2024-01-01 10:00",
            "2,seoul,20,2024-01-01 09:00,2024-01-01 10:00",
        ],
    );
    ok(d, &["build"]);
    // The loader re-sends row 1 (NULL region) with a new amount, twice over two runs.
    events(
        d,
        &[
            "1,,10,2024-01-01 09:00,2024-01-01 10:00",
            "2,seoul,20,2024-01-01 09:00,2024-01-01 10:00",
            "1,,11,2024-01-01 09:00,2024-01-01 11:00",
        ],
    );
    ok(d, &["build"]);
    events(
        d,
        &[
            "1,,10,2024-01-01 09:00,2024-01-01 10:00",
            "2,seoul,20,2024-01-01 09:00,2024-01-01 10:00",
            "1,,11,2024-01-01 09:00,2024-01-01 11:00",
            "1,,12,2024-01-01 09:00,2024-01-01 12:00",
        ],
    );
    ok(d, &["build"]);
    let expected = ["1 - 12", "2 seoul 20"];
    assert_eq!(
        table(w, d, "main.merged"),
        expected,
        "one row per key, NULL or not"
    );
    assert_eq!(table(w, d, "main.deleted_inserted"), expected);
}

fn a_merge_updates_only_the_columns_it_is_told(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    write_files(
        d,
        &format!(
            "-- file: models/only_amount.sql\n{}-- file: models/all_but_region.sql\n{}",
            model("unique_key='id', merge_update_columns=['amount', 'loaded_at']"),
            model("unique_key='id', merge_exclude_columns=['region']"),
        ),
    );
    events(d, &["1,seoul,10,2024-01-01 09:00,2024-01-01 10:00"]);
    ok(d, &["build"]);
    events(
        d,
        &[
            "1,seoul,10,2024-01-01 09:00,2024-01-01 10:00",
            "1,busan,15,2024-01-01 09:00,2024-01-01 11:00",
        ],
    );
    ok(d, &["build"]);
    assert_eq!(table(w, d, "main.only_amount"), ["1 seoul 15"]);
    assert_eq!(table(w, d, "main.all_but_region"), ["1 seoul 15"]);
}

/// dbt's `incremental_predicates`: only the table's rows that meet them are matched (dbt's
/// names for the table and the new rows, `DBT_INTERNAL_DEST`/`DBT_INTERNAL_SOURCE`), so a
/// new row for a key outside them is added, not merged, as in dbt.
fn incremental_predicates_limit_the_rows_a_run_matches(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    let recent = "incremental_predicates=[\"DBT_INTERNAL_DEST.amount >= 20\"]";
    write_files(
        d,
        &format!(
            "-- file: models/merged.sql\n{}-- file: models/replaced.sql\n{}",
            model(&format!("unique_key='id', {recent}")),
            model(
                "unique_key='id', incremental_strategy='delete+insert', predicates=[\"dbt_internal_dest.amount >= DBT_INTERNAL_SOURCE.amount - 100\", \"DBT_INTERNAL_DEST.amount >= 20\"]"
            ),
        ),
    );
    events(d, &RUN_1[..2]);
    ok(d, &["build"]);
    events(
        d,
        &[
            "1,seoul,11,2024-01-01 09:00,2024-01-01 11:00",
            "2,busan,21,2024-01-01 09:30,2024-01-01 11:00",
        ],
    );
    ok(d, &["build"]);
    // Row 2 (amount 20) meets the predicates and is replaced; row 1 (10) does not: added.
    let expected = ["1 seoul 10", "1 seoul 11", "2 busan 21"];
    assert_eq!(table(w, d, "main.merged"), expected);
    assert_eq!(table(w, d, "main.replaced"), expected);
}

fn a_merge_refuses_new_rows_that_repeat_a_key(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    write_files(
        d,
        &format!("-- file: models/merged.sql\n{}", model("unique_key='id'")),
    );
    events(d, &["1,seoul,10,2024-01-01 09:00,2024-01-01 10:00"]);
    ok(d, &["build"]);
    events(
        d,
        &[
            "1,seoul,10,2024-01-01 09:00,2024-01-01 10:00",
            "7,seoul,70,2024-01-01 09:00,2024-01-01 11:00",
            "7,busan,71,2024-01-01 09:00,2024-01-01 11:00",
        ],
    );
    let out = xform(d, &["build"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("same unique_key (id = 7)"),
        "{}",
        out.stdout
    );
    assert_eq!(
        table(w, d, "main.merged"),
        ["1 seoul 10"],
        "nothing half-merged"
    );
}

/// Runs a model whose second version adds `channel` and drops `amount`, under `mode`.
fn schema_change(w: &Warehouse, mode: &str) -> (tempfile::TempDir, i32, String) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    let first = model(&format!("unique_key='id', on_schema_change='{mode}'"));
    write_files(d, &format!("-- file: models/facts.sql\n{first}"));
    events(d, RUN_1);
    ok(d, &["build"]);
    write_files(
        d,
        &format!(
            "-- file: models/facts.sql
{{{{ config(unique_key='id', on_schema_change='{mode}') }}}}
select id, region, 'web' as channel, event_at, loaded_at from {{{{ ref('events') }}}}
{{% if is_incremental() %}} where loaded_at > (select max(loaded_at) from {{{{ this }}}}) {{% endif %}}
"
        ),
    );
    let rows: Vec<String> = all(&[RUN_1, RUN_2]);
    events(d, &rows.iter().map(String::as_str).collect::<Vec<_>>());
    let out = xform(d, &["build"]);
    (dir, out.code, out.stdout)
}

fn columns(w: &Warehouse, d: &Path) -> Vec<String> {
    w.columns(d, "main", "facts")
}

fn on_schema_change_modes(w: &Warehouse) {
    let (dir, code, _) = schema_change(w, "ignore");
    assert_eq!(code, 0);
    assert_eq!(
        columns(w, dir.path()),
        ["id", "region", "amount", "event_at", "loaded_at"]
    );
    let amounts = w.query(
        dir.path(),
        &format!(
            "SELECT id, coalesce(amount::VARCHAR, 'NULL') FROM {} WHERE id = 4",
            w.rel("main", "facts")
        ),
    );
    assert_eq!(amounts, [["4", "NULL"]], "the new row has no amount");

    let (dir, code, _) = schema_change(w, "append_new_columns");
    assert_eq!(code, 0);
    assert_eq!(
        columns(w, dir.path()),
        ["id", "region", "amount", "event_at", "loaded_at", "channel"]
    );
    let channels = w.query(
        dir.path(),
        &format!(
            "SELECT id, coalesce(channel, '-') FROM {} ORDER BY id",
            w.rel("main", "facts")
        ),
    );
    assert_eq!(
        channels,
        [["1", "-"], ["2", "-"], ["3", "web"], ["4", "web"]]
    );

    let (dir, code, _) = schema_change(w, "sync_all_columns");
    assert_eq!(code, 0);
    assert_eq!(
        columns(w, dir.path()),
        ["id", "region", "event_at", "loaded_at", "channel"]
    );

    let (dir, code, out) = schema_change(w, "fail");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("on_schema_change is `fail`"), "{out}");
    assert!(
        out.contains("added `channel`") && out.contains("removed `amount`"),
        "{out}"
    );
    assert_eq!(
        columns(w, dir.path()),
        ["id", "region", "amount", "event_at", "loaded_at"]
    );
    assert_eq!(
        table(w, dir.path(), "main.facts").len(),
        3,
        "the table is untouched"
    );
}

/// The project with a merged incremental model `merged` whose columns are `columns` (YAML
/// under `columns:`), and any more files.
fn merged_project(w: &Warehouse, columns: &str, more: &str) -> tempfile::TempDir {
    let dir = w.project(PROJECT);
    let files = format!(
        "-- file: models/merged.sql\n{}-- file: models/schema.yml
models:
  - name: merged
    columns:
{columns}{more}",
        model("unique_key='id'")
    );
    write_files(dir.path(), &files);
    dir
}

fn a_failing_test_keeps_new_rows_out(w: &Warehouse) {
    let dir = merged_project(
        w,
        "      - name: amount\n        data_tests: [not_null]\n",
        "",
    );
    let d = dir.path();
    events(d, RUN_1);
    ok(d, &["build"]);
    events(
        d,
        &[
            "1,seoul,10,2024-01-01 09:00,2024-01-01 10:00",
            "2,busan,,2024-01-01 09:30,2024-01-01 11:00",
            "8,busan,80,2024-01-01 09:30,2024-01-01 11:00",
        ],
    );
    let out = xform(d, &["build"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("not published"), "{}", out.stdout);
    assert_eq!(
        table(w, d, "main.merged"),
        ["1 seoul 10", "2 busan 20", "3 seoul 30"]
    );
}

/// Builds with RUN_1, then with RUN_1 and RUN_2 loaded; the second build's output.
fn two_runs(d: &Path) -> crate::harness::Output {
    events(d, RUN_1);
    xform(d, &["build"]);
    let rows = all(&[RUN_1, RUN_2]);
    events(d, &rows.iter().map(String::as_str).collect::<Vec<_>>());
    xform(d, &["build"])
}

/// The status and message run_results.json records for the node whose unique_id ends with
/// `name`.
fn result_of(d: &Path, name: &str) -> (String, String) {
    let results = run_results(d);
    let r = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"].as_str().is_some_and(|u| u.ends_with(name)))
        .unwrap_or_else(|| panic!("no result for {name}: {results}"))
        .clone();
    let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("message"))
}

/// A broken test (here one naming a column the model does not have) fails inside the open
/// transaction of an incremental run. It is reported with its own error, and the model's other
/// tests still get their verdicts on the new rows: they are not reported as errors of a
/// transaction the broken one aborted.
fn a_broken_test_in_an_incremental_run_does_not_take_the_other_tests_with_it(w: &Warehouse) {
    let columns = "      - name: id
        data_tests: [unique]
      - name: amount
        data_tests: [not_null]
";
    let broken = "-- file: tests/broken_check.sql
{{ config(severity='warn') }}
select * from {{ ref('merged') }} where no_such_column > 0
";
    let dir = merged_project(w, columns, broken);
    let d = dir.path();
    let out = two_runs(d);
    let status = |name: &str| result_of(d, name);
    let (broken, message) = status("broken_check");
    assert_eq!(broken, "error", "{}", out.stdout);
    assert!(message.contains("no_such_column"), "{message}");
    assert_eq!(status("not_null_merged_amount").0, "pass", "{}", out.stdout);
    assert_eq!(status("unique_merged_id").0, "pass", "{}", out.stdout);
    // The broken test warns only: the new rows are published.
    assert_eq!(
        table(w, d, "main.merged"),
        ["1 seoul 10", "2 busan 20", "3 seoul 33", "4 daegu 40"]
    );
}

/// A warning test whose count query runs but whose failing rows cannot be read (the sample
/// query errors inside the open transaction, which DuckDB then aborts): the run must not
/// report the model built while its new rows were silently rolled back.
fn a_test_whose_failing_rows_cannot_be_read_does_not_lose_the_new_rows(w: &Warehouse) {
    let columns = "      - name: id\n        data_tests: [unique]\n";
    let sample_breaks = "-- file: tests/sample_breaks.sql
{{ config(severity='warn') }}
select cast(region as int) as r from {{ ref('merged') }} where amount > 35
";
    let dir = merged_project(w, columns, sample_breaks);
    let d = dir.path();
    let out = two_runs(d);
    assert_eq!(
        table(w, d, "main.merged"),
        ["1 seoul 10", "2 busan 20", "3 seoul 33", "4 daegu 40"],
        "{}",
        out.stdout
    );
    let status = |name: &str| result_of(d, name).0;
    assert_eq!(status("merged"), "success", "{}", out.stdout);
    assert_eq!(status("sample_breaks"), "warn", "{}", out.stdout);
    assert_eq!(status("unique_merged_id"), "pass", "{}", out.stdout);
}

/// dbt's `full_refresh: false` protects a table that is costly to rebuild from `--full-refresh`.
fn full_refresh_false_keeps_an_incremental_table_out_of_a_full_refresh(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    let protected = model("unique_key='id', full_refresh=false");
    write_files(d, &format!("-- file: models/kept.sql\n{protected}"));
    events(d, RUN_1);
    ok(d, &["build"]);
    // The source loses row 1; a rebuild from scratch would lose it too.
    events(d, &RUN_1[1..]);
    let out = ok(d, &["build", "--full-refresh"]);
    assert_eq!(
        table(w, d, "main.kept"),
        ["1 seoul 10", "2 busan 20", "3 seoul 30"],
        "{out}"
    );
}

const MICROBATCH: &str = "
-- file: models/daily.sql
{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='event_at',
          batch_size='day', begin='2024-01-01') }}
select id, amount, event_at,
       case when amount < 0 then cast('negative amount ' || id as integer) else amount end as checked
from {{ ref('events') }}
";

fn day_rows(amounts: [i32; 3]) -> Vec<String> {
    amounts
        .iter()
        .enumerate()
        .flat_map(|(day, a)| {
            (0..2).map(move |k| {
                format!(
                    "{},x,{},2024-01-0{} 0{}:00,2024-01-05 00:00",
                    day * 10 + k,
                    a + k as i32,
                    day + 1,
                    k + 1
                )
            })
        })
        .collect()
}

fn daily(w: &Warehouse, d: &Path) -> Vec<String> {
    let sql = format!(
        "SELECT id, amount FROM {} ORDER BY id",
        w.rel("main", "daily")
    );
    w.query(d, &sql).into_iter().map(|r| r.join(" ")).collect()
}

fn a_backfill_replaces_exactly_its_interval_and_is_idempotent(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    write_files(d, MICROBATCH);
    let rows = day_rows([100, 200, 300]);
    events(d, &rows.iter().map(String::as_str).collect::<Vec<_>>());
    ok(d, &["build"]);
    assert_eq!(daily(w, d).len(), 6);
    // New figures land for every day; only 2024-01-02 is backfilled.
    let rows = day_rows([111, 222, 333]);
    events(d, &rows.iter().map(String::as_str).collect::<Vec<_>>());
    ok(d, &["seed"]);
    let out = ok(d, &["run", "--start", "2024-01-02", "--end", "2024-01-03"]);
    assert!(out.contains("(1 batch)"), "{out}");
    let once = daily(w, d);
    assert_eq!(
        once,
        ["0 100", "1 101", "10 222", "11 223", "20 300", "21 301"]
    );
    ok(d, &["run", "--start", "2024-01-02", "--end", "2024-01-03"]);
    assert_eq!(daily(w, d), once, "re-running the interval changes nothing");
    // A wider backfill runs one batch per day, in parallel.
    let out = ok(d, &["run", "--start", "2024-01-01", "--end", "2024-01-04"]);
    assert!(out.contains("(3 batches)"), "{out}");
    assert_eq!(
        daily(w, d),
        ["0 111", "1 112", "10 222", "11 223", "20 333", "21 334"]
    );
}

fn a_failing_batch_leaves_the_others_committed_and_is_reported(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    write_files(d, MICROBATCH);
    let rows = day_rows([100, 200, 300]);
    events(d, &rows.iter().map(String::as_str).collect::<Vec<_>>());
    ok(d, &["build"]);
    // Day 2 now holds a row the model refuses; days 1 and 3 have new figures.
    let rows = day_rows([111, -5, 333]);
    events(d, &rows.iter().map(String::as_str).collect::<Vec<_>>());
    ok(d, &["seed"]);
    let out = xform(d, &["run", "--start", "2024-01-01", "--end", "2024-01-04"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("1 of 3 batches failed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("batch [2024-01-02 00:00:00, 2024-01-03 00:00:00) failed"),
        "{}",
        out.stdout
    );
    assert_eq!(
        daily(w, d),
        ["0 111", "1 112", "10 200", "11 201", "20 333", "21 334"],
        "days 1 and 3 committed, day 2 kept"
    );
    let results = run_results(d);
    let entry = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "model.shop.daily")
        .unwrap()
        .clone();
    assert_eq!(
        entry["batch_results"]["successful"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        entry["batch_results"]["failed"][0]["start"],
        "2024-01-02 00:00:00"
    );
}

const SNAPSHOT: &str = "
-- file: seeds/customers.csv
id,name,tier,updated_at
1,김민지,silver,2024-01-01 00:00
2,이서준,gold,2024-01-01 00:00
-- file: seeds/properties.yml
seeds:
  - name: customers
    config:
      column_types: { updated_at: timestamp }
-- file: snapshots/customers_history.sql
{% snapshot customers_history %}
{{ config(unique_key='id', strategy='timestamp', updated_at='updated_at', invalidate_hard_deletes=true, schema='snapshots') }}
select * from {{ ref('customers') }}
{% endsnapshot %}
-- file: snapshots/snapshots.yml
snapshots:
  - name: tiers_checked
    relation: ref('customers')
    config:
      unique_key: id
      strategy: check
      check_cols: [tier]
      hard_deletes: invalidate
      snapshot_meta_column_names: { dbt_valid_from: valid_from, dbt_valid_to: valid_to }
";

fn history(w: &Warehouse, d: &Path, relation: &str, from: &str, to: &str) -> Vec<String> {
    let (schema, name) = relation.split_once('.').unwrap_or(("main", relation));
    let relation = w.rel(schema, name);
    w.query(
        d,
        &format!(
            "SELECT id, tier, CASE WHEN {to} IS NULL THEN 'current' ELSE 'closed' END \
             FROM {relation} ORDER BY id, {from}"
        ),
    )
    .into_iter()
    .map(|r| r.join(" "))
    .collect()
}

fn snapshots_record_a_change_a_revert_and_a_hard_delete(w: &Warehouse) {
    let dir = w.project(SNAPSHOT);
    let d = dir.path();
    let out = ok(d, &["build"]);
    assert!(out.contains("snapshot"), "{out}");
    // Customer 1 moves up to gold.
    write_files(
        d,
        "-- file: seeds/customers.csv
id,name,tier,updated_at
1,김민지,gold,2024-02-01 00:00
2,이서준,gold,2024-01-01 00:00
",
    );
    ok(d, &["seed"]);
    ok(d, &["snapshot"]);
    // ...and back to silver; customer 2 is deleted at the source.
    write_files(
        d,
        "-- file: seeds/customers.csv
id,name,tier,updated_at
1,김민지,silver,2024-03-01 00:00
",
    );
    ok(d, &["seed"]);
    ok(d, &["snapshot"]);
    let expected = [
        "1 silver closed",
        "1 gold closed",
        "1 silver current",
        "2 gold closed",
    ];
    assert_eq!(
        history(
            w,
            d,
            "snapshots.customers_history",
            "dbt_valid_from",
            "dbt_valid_to"
        ),
        expected
    );
    let periods = w.query(
        d,
        &format!(
            "SELECT dbt_valid_from::VARCHAR, coalesce(dbt_valid_to::VARCHAR, '') FROM {} \
             WHERE id = 1 ORDER BY dbt_valid_from",
            w.rel("snapshots", "customers_history")
        ),
    );
    assert_eq!(
        periods,
        [
            ["2024-01-01 00:00:00", "2024-02-01 00:00:00"],
            ["2024-02-01 00:00:00", "2024-03-01 00:00:00"],
            ["2024-03-01 00:00:00", ""]
        ]
    );
    assert_eq!(
        history(w, d, "main.tiers_checked", "valid_from", "valid_to"),
        expected,
        "the check strategy and renamed columns record the same story"
    );
    let korean = w.query(
        d,
        &format!(
            "SELECT DISTINCT name FROM {} WHERE id = 1",
            w.rel("snapshots", "customers_history")
        ),
    );
    assert_eq!(korean, [["김민지"]]);
    // A snapshot run with nothing changed adds nothing.
    ok(d, &["snapshot"]);
    assert_eq!(
        history(w, d, "main.tiers_checked", "valid_from", "valid_to").len(),
        4
    );
}

#[test]
fn a_snapshot_without_a_strategy_is_refused_at_its_line() {
    let dir = project(
        "
-- file: seeds/customers.csv
id,tier
1,gold
-- file: snapshots/broken.sql

{% snapshot broken %}
{{ config(unique_key='id', strategy='timestmap') }}
select * from {{ ref('customers') }}
{% endsnapshot %}
",
    );
    let out = xform(dir.path(), &["build"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("snapshots/broken.sql:3"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("timestamp"), "{}", out.stderr);
}

#[test]
fn freshness_passes_warns_and_errors() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = |ago: i64| {
        jiff::Timestamp::from_second(now - ago)
            .unwrap()
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let dir = project(&format!(
        "
-- file: seeds/fresh.csv
id,loaded_at
1,{}
-- file: seeds/stale.csv
id,loaded_at
1,{}
-- file: seeds/dead.csv
id,loaded_at
1,{}
-- file: models/sources.yml
sources:
  - name: loads
    schema: main
    loaded_at_field: loaded_at
    freshness:
      warn_after: {{count: 1, period: hour}}
      error_after: {{count: 1, period: day}}
    tables:
      - name: fresh
      - name: stale
      - name: dead
      - name: ignored
        freshness: null
",
        at(600),
        at(5 * 3600),
        at(3 * 86400)
    ));
    let d = dir.path();
    ok(d, &["seed"]);
    let out = xform(d, &["source", "freshness"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} in {}", out.stdout))
            .to_string()
    };
    assert!(line("loads.fresh").starts_with("PASS"), "{}", out.stdout);
    assert!(line("loads.stale").starts_with("WARN"), "{}", out.stdout);
    assert!(line("loads.dead").starts_with("ERROR"), "{}", out.stdout);
    assert!(!out.stdout.contains("ignored"), "{}", out.stdout);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("target/sources.json")).unwrap())
            .unwrap();
    assert_eq!(doc["results"].as_array().unwrap().len(), 3);
    // Only the fresh table selected: exit 0.
    let out = xform(d, &["source", "freshness", "-s", "source:loads.fresh"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn an_external_partitioned_parquet_source_is_read_with_its_partition_column() {
    let dir = project(
        "
-- file: models/sources.yml
sources:
  - name: lake
    tables:
      - name: events
        config:
          external_location: 'lake/events/*/*.parquet'
          hive_partitioning: true
-- file: models/daily_counts.sql
{{ config(materialized='table') }}
select dt, count(*) as events, sum(amount) as amount
from {{ source('lake', 'events') }}
group by dt order by dt
",
    );
    let d = dir.path();
    std::fs::create_dir_all(d.join("lake")).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "COPY (SELECT i AS id, i * 10 AS amount, '2023-08-0' || (i % 3 + 1) AS dt FROM range(9) t(i)) \
         TO '{}' (FORMAT parquet, PARTITION_BY (dt))",
        d.join("lake/events").display()
    ))
    .unwrap();
    assert!(d.join("lake/events/dt=2023-08-01").is_dir());
    // Run from another folder: the location is relative to the project, not the shell.
    let out = std::process::Command::new(crate::harness::bin())
        .args(["build", "--project-dir"])
        .arg(d)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = crate::build::query(
        d,
        "SELECT dt::VARCHAR, events, amount FROM main.daily_counts",
    );
    assert_eq!(
        rows,
        [
            ["2023-08-01", "3", "90"],
            ["2023-08-02", "3", "120"],
            ["2023-08-03", "3", "150"]
        ]
    );
}

/// A model casting to `varchar(n)` whose new rows need more: the column is widened (as dbt
/// does), whatever `on_schema_change` says, and a merge stays a merge.
fn sized_text_widens_when_new_rows_outgrow_it(w: &Warehouse) {
    let dir = w.project(PROJECT);
    let d = dir.path();
    let sized = "-- file: models/merged.sql
{{ config(unique_key='id', on_schema_change='fail') }}
select id, cast(region as varchar({{ var('width', 5) }})) as region, amount, loaded_at from {{ ref('events') }}
{% if is_incremental() %} where loaded_at > (select max(loaded_at) from {{ this }}) {% endif %}
";
    write_files(d, sized);
    events(d, RUN_1);
    ok(d, &["build"]);
    events(
        d,
        &[
            "1,seoul,10,2024-01-01 09:00,2024-01-01 10:00",
            "9,chungcheong,90,2024-01-01 09:00,2024-01-01 11:00",
        ],
    );
    ok(d, &["build", "--vars", "{width: 20}"]);
    assert_eq!(
        table(w, d, "main.merged"),
        ["1 seoul 10", "2 busan 20", "3 seoul 30", "9 chungcheong 90"]
    );
}
