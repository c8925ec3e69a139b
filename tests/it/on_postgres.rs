//! Building into a real PostgreSQL server: the address is `XFORM_TEST_POSTGRES` (libpq's
//! `key=value` form, as `.ci/run` exports it). Without it these tests say so and pass, except
//! `postgres_is_configured_in_ci`, which fails under `CI=true`. Each test builds into schemas
//! of its own (`xt_<pid>_<n>_…`) and drops them when it ends.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::build::{ok, run_results};
use crate::harness::{Rng, project, spawn, write_files, xform};

/// The server's address as `key=value` pairs, or None (the test is skipped).
pub fn address() -> Option<Vec<(String, String)>> {
    let text = std::env::var("XFORM_TEST_POSTGRES").ok()?;
    Some(
        text.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn postgres_is_configured_in_ci() {
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(
            address().is_some(),
            "CI=true but XFORM_TEST_POSTGRES is not set: the PostgreSQL tests would be skipped"
        );
    }
}

/// A test's own schemas on the server, dropped when it ends.
pub struct Pg {
    pub prefix: String,
    pub address: Vec<(String, String)>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Pg {
    /// None when no server is configured (the caller returns: skipped).
    pub fn new() -> Option<Pg> {
        let Some(address) = address() else {
            eprintln!("skipped: XFORM_TEST_POSTGRES not set");
            return None;
        };
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pg = Pg {
            prefix: format!("xt_{}_{n}_", std::process::id()),
            address,
        };
        pg.drop_schemas();
        Some(pg)
    }

    pub fn client(&self) -> postgres::Client {
        let conninfo: Vec<String> = self
            .address
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        postgres::Client::connect(&conninfo.join(" "), postgres::NoTls).expect("connect")
    }

    /// The target's settings as flow-style YAML.
    pub fn target(&self, threads: usize) -> String {
        let fields: Vec<String> = self
            .address
            .iter()
            .map(|(k, v)| format!("{k}: \"{v}\""))
            .collect();
        format!(
            "{{ type: postgres, {}, threads: {threads}, schema_prefix: {} }}",
            fields.join(", "),
            self.prefix
        )
    }

    /// A project.yml with this server as target `dev`.
    fn project_yml(&self, threads: usize, rest: &str) -> String {
        format!(
            "-- file: project.yml\nname: pgtest\ndefault_target: dev\ntargets:\n  dev: {}\n{rest}",
            self.target(threads)
        )
    }

    /// Every value of a query as text (NULL as "NULL").
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for m in self.client().simple_query(sql).expect(sql) {
            if let postgres::SimpleQueryMessage::Row(r) = m {
                out.push(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                );
            }
        }
        out
    }

    pub fn one(&self, sql: &str) -> String {
        self.query(sql)[0][0].clone()
    }

    /// A schema of this test: `analytics` → `xt_1_0_analytics`.
    pub fn schema(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// `schema.name, kind` of every relation in this test's schemas, sorted.
    pub fn relations(&self) -> Vec<(String, String)> {
        self.query(&format!(
            "SELECT n.nspname || '.' || c.relname, c.relkind::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE '{}%' \
             AND c.relkind IN ('r', 'v') ORDER BY 1",
            self.prefix
        ))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
    }

    pub fn no_staging_relations(&self) -> bool {
        !self.relations().iter().any(|(r, _)| r.contains("__xform_"))
    }

    pub fn drop_schemas(&self) {
        let mut client = self.client();
        let schemas = self.query(&format!(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE '{}%'",
            self.prefix
        ));
        for s in schemas {
            let _ = client.batch_execute(&format!("DROP SCHEMA \"{}\" CASCADE", s[0]));
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.drop_schemas();
    }
}

const LAYERS: &str = "
models:
  +materialized: view
  raw: { +schema: raw_data }
  analytics: { +schema: analytics, +materialized: table }
seeds:
  +schema: raw_data
-- file: seeds/orders.csv
order_id,customer,amount,product,ordered_at
1,kim,1000,라면,2024-01-01 10:00:00
2,lee,2500,김치,2024-01-02
3,kim,700,\"떡볶이, 매운맛\",2024-01-03 12:00:00
-- file: seeds/properties.yml
seeds:
  - name: orders
    config:
      column_types: { order_id: varchar(10) }
-- file: models/raw/stg_orders.sql
select order_id, customer, amount, product from {{ ref('orders') }}
-- file: models/analytics/by_customer_base.sql
{{ config(materialized='ephemeral') }}
select customer, sum(amount) as total, count(*) as orders from {{ ref('stg_orders') }} group by customer
-- file: models/analytics/by_customer.sql
select * from {{ ref('by_customer_base') }}
-- file: models/analytics/big_spenders.sql
{{ config(materialized='view') }}
select customer from {{ ref('by_customer') }} where total > 1000
-- file: models/analytics/schema.yml
models:
  - name: by_customer
    description: 고객별 매출 합계
    config: { persist_docs: { relation: true, columns: true } }
    columns:
      - name: customer
        description: \"고객 이름 (it's the key)\"
        data_tests: [unique, not_null]
";

#[test]
fn every_layer_lands_and_rebuilds_keep_the_views_that_read_a_swapped_table() {
    let Some(pg) = Pg::new() else { return };
    let dir = project(&pg.project_yml(2, LAYERS));
    ok(dir.path(), &["build"]);
    let a = pg.schema("analytics");
    let types = pg.query(&format!(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = '{}' \
         AND table_name = 'orders' ORDER BY ordinal_position",
        pg.schema("raw_data")
    ));
    let types: Vec<String> = types.iter().map(|r| format!("{} {}", r[0], r[1])).collect();
    assert_eq!(
        types,
        [
            "order_id character varying",
            "customer text",
            "amount integer",
            "product text",
            "ordered_at timestamp without time zone"
        ]
    );
    let product = pg.one(&format!(
        "SELECT product FROM {}.orders WHERE order_id = '3'",
        pg.schema("raw_data")
    ));
    assert_eq!(product, "떡볶이, 매운맛");
    let view_oid = |pg: &Pg| pg.one(&format!("SELECT '{a}.big_spenders'::regclass::oid"));
    let before = view_oid(&pg);
    // Rebuilds swap `by_customer` (read by the view `big_spenders`) and the seed (read by
    // `stg_orders`): the views stay the same objects and read the new tables.
    write_files(
        dir.path(),
        "-- file: seeds/orders.csv\norder_id,customer,amount,product,ordered_at\n1,kim,1000,라면,2024-01-01\n2,lee,2500,김치,2024-01-02\n3,kim,700,x,2024-01-03\n4,park,5000,y,2024-01-04\n",
    );
    for _ in 0..2 {
        ok(dir.path(), &["build"]);
    }
    assert_eq!(
        view_oid(&pg),
        before,
        "the view was dropped and created again"
    );
    let docs = pg.query(&format!(
        "SELECT obj_description('{a}.by_customer'::regclass), col_description('{a}.by_customer'::regclass, 1)"
    ));
    assert_eq!(docs, [["고객별 매출 합계", "고객 이름 (it's the key)"]]);
    let spenders = pg.query(&format!("SELECT customer FROM {a}.big_spenders ORDER BY 1"));
    assert_eq!(
        spenders,
        [["kim"], ["lee"], ["park"]].map(|r| r.map(String::from))
    );
    assert!(pg.no_staging_relations(), "{:?}", pg.relations());
    // A kind change (table → view) keeps the view that reads it too.
    write_files(
        dir.path(),
        "-- file: models/analytics/by_customer.sql\n{{ config(materialized='view') }}\nselect * from {{ ref('by_customer_base') }}\n",
    );
    ok(dir.path(), &["build"]);
    assert_eq!(
        pg.one(&format!("SELECT count(*) FROM {a}.big_spenders")),
        "3"
    );
    assert!(
        pg.relations()
            .contains(&(format!("{a}.by_customer"), "v".into()))
    );
}

#[test]
fn a_failing_test_keeps_the_previous_table_published() {
    let Some(pg) = Pg::new() else { return };
    let dir = project(&pg.project_yml(1, LAYERS));
    ok(dir.path(), &["build"]);
    write_files(
        dir.path(),
        "-- file: models/analytics/by_customer.sql\nselect * from {{ ref('by_customer_base') }} union all select null, 1, 1\n",
    );
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(o.stdout.contains("not published"), "{}", o.stdout);
    let a = pg.schema("analytics");
    assert_eq!(
        pg.one(&format!("SELECT count(*) FROM {a}.by_customer")),
        "2"
    );
    assert!(pg.no_staging_relations());
    // A test that is broken (bad SQL) is reported alone; the others still judge the data.
    write_files(
        dir.path(),
        "-- file: models/analytics/by_customer.sql\nselect * from {{ ref('by_customer_base') }}\n-- file: tests/broken.sql\nselect * from {{ ref('by_customer') }} where no_such_column = 1\n",
    );
    let o = xform(dir.path(), &["build"]);
    let results = run_results(dir.path());
    let status = |name: &str| {
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"].as_str().unwrap().ends_with(name))
            .map(|r| r["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status(".broken").as_deref(), Some("error"), "{}", o.stdout);
    assert_eq!(
        status("not_null_by_customer_customer").as_deref(),
        Some("pass"),
        "{}",
        o.stdout
    );
}

const INCREMENTAL: &str = "
-- file: models/source_rows.sql
{{ config(materialized='table') }}
select k, v from (values (1, 'a'), (2, 'b'), (null, 'n')) as t(k, v)
-- file: models/merged.sql
{{ config(materialized='incremental', unique_key='k', incremental_strategy='merge') }}
select k, v || '{{ var(\"round\", \"0\") }}' as v from {{ ref('source_rows') }}
-- file: models/replaced.sql
{{ config(materialized='incremental', unique_key='k', incremental_strategy='delete+insert') }}
select k, v from {{ ref('source_rows') }}
";

#[test]
fn incremental_null_keys_never_duplicate_and_key_joins_hash() {
    let Some(pg) = Pg::new() else { return };
    let dir = project(&pg.project_yml(2, INCREMENTAL));
    for round in 0..3 {
        ok(
            dir.path(),
            &["build", "--vars", &format!("{{round: '{round}'}}")],
        );
    }
    let s = pg.schema("public");
    for table in ["merged", "replaced"] {
        let counts = pg.one(&format!(
            "SELECT count(*) || '/' || count(DISTINCT k) FROM {s}.{table}"
        ));
        assert_eq!(counts, "3/2", "{table} duplicated a key");
    }
    let null_row = pg.one(&format!("SELECT v FROM {s}.merged WHERE k IS NULL"));
    assert_eq!(null_row, "n2", "the NULL key's row was not merged");
    // The statements xform ran, planned against a 50,000-row table: no nested loop on the key.
    let mut client = pg.client();
    client
        .batch_execute(&format!(
            "INSERT INTO {s}.merged SELECT g, 'x' FROM generate_series(10, 50000) g; ANALYZE {s}.merged;\
             INSERT INTO {s}.replaced SELECT g, 'x' FROM generate_series(10, 50000) g; ANALYZE {s}.replaced"
        ))
        .unwrap();
    for table in ["merged", "replaced"] {
        let run =
            std::fs::read_to_string(dir.path().join(format!("target/run/models/{table}.sql")))
                .unwrap();
        // The rows whose key has no NULL match with `=`, the NULL key's row null-safely.
        let statements: Vec<&str> = run
            .split(";\n")
            .filter(|s| s.trim_start().starts_with("MERGE") || s.trim_start().starts_with("DELETE"))
            .collect();
        assert_eq!(statements.len(), 2, "{run}");
        let mut tx = client.transaction().unwrap();
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE \"__xform_new__{table}\" AS SELECT * FROM {s}.{table} LIMIT 2000; ANALYZE \"__xform_new__{table}\""
        ))
        .unwrap();
        for statement in statements {
            let plan = explain(&mut tx, statement);
            assert!(
                !plan.contains("Nested Loop"),
                "{table}: {statement}\n{plan}"
            );
        }
        tx.rollback().unwrap();
    }
}

/// The plan PostgreSQL makes for `statement`.
fn explain(tx: &mut postgres::Transaction, statement: &str) -> String {
    let plan: Vec<String> = tx
        .simple_query(&format!("EXPLAIN {statement}"))
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
            _ => None,
        })
        .collect();
    plan.join("\n")
}

#[test]
fn indexes_are_made_with_each_table_and_serve_the_merge_of_new_keys() {
    let Some(pg) = Pg::new() else { return };
    let indexed = INCREMENTAL.replace(
        "incremental_strategy='merge'",
        "incremental_strategy='merge', indexes=[{'columns': ['k']}, {'columns': ['v'], 'type': 'hash'}]",
    );
    let dir = project(&pg.project_yml(1, &indexed));
    let s = pg.schema("public");
    let indexes = || {
        pg.query(&format!(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = '{s}' AND tablename = 'merged' ORDER BY indexdef"
        ))
    };
    ok(dir.path(), &["build"]);
    ok(dir.path(), &["build", "--full-refresh"]);
    let made = indexes();
    assert_eq!(made.len(), 2, "{made:?}");
    let has = |def: &str| made.iter().any(|i| i[1].contains(def));
    assert!(has("USING btree (k)") && has("USING hash (v)"), "{made:?}");
    assert!(
        made.iter()
            .all(|i| i[0].starts_with("merged_") && !i[0].contains("__xform")),
        "{made:?}"
    );
    // With its index, a few new keys merge into a big table without reading all of it.
    let mut client = pg.client();
    client
        .batch_execute(&format!(
            "INSERT INTO {s}.merged SELECT g, 'x' FROM generate_series(10, 200000) g; ANALYZE {s}.merged"
        ))
        .unwrap();
    ok(
        dir.path(),
        &["build", "-s", "merged", "--vars", "{round: '1'}"],
    );
    let run = std::fs::read_to_string(dir.path().join("target/run/models/merged.sql")).unwrap();
    let merge = run
        .split(";\n")
        .find(|s| s.trim_start().starts_with("MERGE"))
        .unwrap();
    assert!(merge.contains("ON t.\"k\" = n.\"k\""), "{merge}");
    let mut tx = client.transaction().unwrap();
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE \"__xform_new__merged\" AS SELECT * FROM {s}.merged WHERE k < 100; ANALYZE \"__xform_new__merged\""
    ))
    .unwrap();
    let plan = explain(&mut tx, merge);
    assert!(
        plan.contains("Index Scan") || plan.contains("Index Only Scan"),
        "{merge}\n{plan}"
    );
    assert!(!plan.contains("Seq Scan on merged"), "{plan}");
}

#[test]
fn a_snapshot_records_changes_over_runs() {
    let Some(pg) = Pg::new() else { return };
    let snapshot = "-- file: snapshots/snap.sql\n{% snapshot snap %}\n{{ config(target_schema='snapshots', unique_key='id', strategy='check', check_cols='all') }}\nselect * from (values (1, 'a'), (2, '{{ var(\"v\", \"b\") }}')) as t(id, v)\n{% endsnapshot %}\n";
    let dir = project(&pg.project_yml(1, snapshot));
    ok(dir.path(), &["snapshot"]);
    ok(dir.path(), &["snapshot", "--vars", "{v: c}"]);
    ok(dir.path(), &["snapshot", "--vars", "{v: c}"]);
    let s = pg.schema("snapshots");
    let versions = pg.query(&format!(
        "SELECT id, v, (dbt_valid_to IS NULL)::text FROM {s}.snap ORDER BY id, v"
    ));
    let expected = [["1", "a", "true"], ["2", "b", "false"], ["2", "c", "true"]];
    assert_eq!(versions, expected.map(|r| r.map(String::from)));
}

#[test]
fn a_bad_seed_value_names_its_line_and_column_and_keeps_the_old_table() {
    let Some(pg) = Pg::new() else { return };
    let dir = project(&pg.project_yml(1, LAYERS));
    ok(dir.path(), &["seed"]);
    write_files(
        dir.path(),
        "-- file: seeds/properties.yml\nseeds:\n  - name: orders\n    config:\n      column_types: { amount: integer }\n-- file: seeds/orders.csv\norder_id,customer,amount,product,ordered_at\n1,kim,1000,라면,2024-01-01\n2,lee,많이,김치,2024-01-02\n",
    );
    let o = xform(dir.path(), &["seed"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.contains("seeds/orders.csv:3: column `amount`"),
        "{}",
        o.stdout
    );
    assert_eq!(
        pg.one(&format!(
            "SELECT count(*) FROM {}.orders",
            pg.schema("raw_data")
        )),
        "3"
    );
}

/// dbt's `quote_columns: false`: a seed's columns are named as unquoted identifiers are, in
/// lower case; by default they keep the header's names.
#[test]
fn quote_columns_false_names_seed_columns_in_lower_case() {
    let Some(pg) = Pg::new() else { return };
    let dir = project(&pg.project_yml(1, LAYERS));
    write_files(
        dir.path(),
        "-- file: seeds/properties.yml\nseeds:\n  - name: folded\n    config:\n      quote_columns: false\n\
         -- file: seeds/folded.csv\nOrder_ID,Amount\n1,10\n\
         -- file: seeds/kept.csv\nOrder_ID,Amount\n1,10\n",
    );
    ok(dir.path(), &["seed", "-s", "folded", "kept"]);
    let columns = |table: &str| {
        pg.query(&format!(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = '{}' \
             AND table_name = '{table}' ORDER BY ordinal_position",
            pg.schema("raw_data")
        ))
    };
    assert_eq!(columns("folded"), [["order_id"], ["amount"]]);
    assert_eq!(columns("kept"), [["Order_ID"], ["Amount"]]);
}

/// A model that sleeps, for interrupting.
const SLOW: &str = "-- file: models/slow.sql\n{{ config(materialized='table') }}\nselect 'new' as marker from (select pg_sleep(60)) as s\n";

#[test]
fn ctrl_c_during_a_statement_exits_130_within_a_second_and_a_second_run_is_refused() {
    let Some(pg) = Pg::new() else { return };
    let dir = project(&pg.project_yml(
        1,
        "-- file: models/slow.sql\n{{ config(materialized='table') }}\nselect 'old' as marker\n",
    ));
    ok(dir.path(), &["build"]);
    write_files(dir.path(), SLOW);
    let mut child = spawn(dir.path(), &["build"]);
    let started = Instant::now();
    while pg.one("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND state = 'active' AND pid <> pg_backend_pid()") == "0" {
        assert!(started.elapsed() < Duration::from_secs(20), "the build never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = xform(dir.path(), &["build"]);
    assert_eq!(second.code, 2, "{}", second.stdout);
    assert!(
        second
            .stderr
            .contains("another xform run holds this target"),
        "{}",
        second.stderr
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let signalled = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(1),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        pg.one(&format!("SELECT marker FROM {}.slow", pg.schema("public"))),
        "old"
    );
    assert!(pg.no_staging_relations());
}

#[test]
fn killed_builds_leave_every_relation_old_or_new_and_stop_on_the_server() {
    let Some(pg) = Pg::new() else { return };
    let chain = |marker: &str| {
        let mut files = String::new();
        for i in 0..6 {
            let (kind, from) = match i {
                0 => (
                    "table",
                    format!("select '{marker}' as marker from (select pg_sleep(0.05)) as s"),
                ),
                _ => (
                    if i % 2 == 0 { "table" } else { "view" },
                    format!(
                        "select marker from {{{{ ref('m{}') }}}}, (select pg_sleep(0.05)) as s",
                        i - 1
                    ),
                ),
            };
            files.push_str(&format!(
                "-- file: models/m{i}.sql\n{{{{ config(materialized='{kind}') }}}}\n{from}\n"
            ));
        }
        files
    };
    let dir = project(&pg.project_yml(1, &chain("old")));
    ok(dir.path(), &["build"]);
    let s = pg.schema("public");
    let markers = |pg: &Pg| -> Vec<String> {
        (0..6)
            .map(|i| pg.one(&format!("SELECT marker FROM {s}.m{i}")))
            .collect()
    };
    let mut rng = Rng::new(crate::harness::seed());
    for trial in 0..20 {
        let marker = if trial % 2 == 0 { "new" } else { "old" };
        write_files(dir.path(), &chain(marker));
        let mut child = spawn(dir.path(), &["build"]);
        std::thread::sleep(Duration::from_millis(150 + rng.below(500) as u64));
        child.kill().unwrap();
        child.wait().unwrap();
        let seen = markers(&pg);
        assert!(
            seen.iter().all(|m| m == "old" || m == "new"),
            "trial {trial}: {seen:?}"
        );
        assert!(pg.no_staging_relations(), "trial {trial}");
    }
    // The killed run's statement stops on the server within about a second.
    write_files(dir.path(), SLOW);
    let mut child = spawn(dir.path(), &["build", "-s", "slow"]);
    std::thread::sleep(Duration::from_millis(800));
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    let active = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND state = 'active' AND pid <> pg_backend_pid()";
    while pg.one(active) != "0" {
        assert!(
            killed.elapsed() < Duration::from_millis(1500),
            "the statement outlived its client"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_file(dir.path().join("models/slow.sql")).unwrap();
    ok(dir.path(), &["build"]);
}

#[test]
fn readers_during_rebuilds_see_old_or_new_rows_and_no_error() {
    let Some(pg) = Pg::new() else { return };
    let model = |n: usize| {
        format!(
            "-- file: models/t.sql\n{{{{ config(materialized='table') }}}}\nselect g from generate_series(1, {n}) g\n-- file: models/v.sql\nselect * from {{{{ ref('t') }}}}\n"
        )
    };
    let dir = project(&pg.project_yml(1, &model(100)));
    ok(dir.path(), &["build"]);
    let s = pg.schema("public");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let seen = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut client = pg.client();
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(Ordering::SeqCst) {
                for rel in ["t", "v"] {
                    let rows = client.simple_query(&format!("SELECT count(*) FROM {s}.{rel}"));
                    let n = match rows
                        .map_err(|e| {
                            e.as_db_error()
                                .map_or(e.to_string(), |d| format!("{rel}: {}", d.message()))
                        })
                        .map(|ms| {
                            ms.into_iter().find_map(|m| match m {
                                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
                                _ => None,
                            })
                        }) {
                        Ok(Some(n)) => n,
                        other => format!("error: {other:?}"),
                    };
                    seen.insert(n);
                }
            }
            seen
        });
        for i in 0..20 {
            write_files(dir.path(), &model(if i % 2 == 0 { 200 } else { 100 }));
            ok(dir.path(), &["build"]);
        }
        stop.store(true, Ordering::SeqCst);
        reader.join().unwrap()
    });
    let expected: std::collections::BTreeSet<String> = ["100", "200"].map(String::from).into();
    assert_eq!(seen, expected);
}

#[test]
fn show_compile_debug_and_freshness_work_against_the_server() {
    let Some(pg) = Pg::new() else { return };
    let dir = project(&pg.project_yml(1, LAYERS));
    ok(dir.path(), &["build"]);
    let shown = ok(dir.path(), &["show", "by_customer", "--limit", "1"]);
    assert!(shown.contains("customer"), "{shown}");
    let debug = ok(dir.path(), &["debug"]);
    assert!(debug.contains("PostgreSQL"), "{debug}");
    assert!(ok_path(
        dir.path(),
        "target/compiled/models/analytics/by_customer.sql"
    ));
}

fn ok_path(dir: &Path, p: &str) -> bool {
    dir.join(p).exists()
}

/// Creates a role once for the whole server (roles are not per database).
pub fn role(pg: &Pg, name: &str) {
    let _ = pg.client().batch_execute(&format!(
        "DO $$ BEGIN CREATE ROLE {name}; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    ));
}

#[test]
fn hooks_run_in_order_in_the_build_and_grants_follow_the_config() {
    let Some(pg) = Pg::new() else { return };
    role(&pg, "xt_analytics_users");
    role(&pg, "xt_kim");
    let log = format!("{}public.hook_log", pg.prefix);
    let files = |grantees: &str| {
        pg.project_yml(
            1,
            &format!(
                "on_run_start:\n  - \"create table if not exists {log} (n serial, what text)\"\n  - \"insert into {log} (what) values ('start')\"\non_run_end:\n  - \"insert into {log} (what) values ('end')\"\n  - \"{{% for s in schemas %}}grant usage on schema {{{{ s }}}} to group xt_analytics_users;{{% endfor %}}\"\n\
                 models:\n  +materialized: table\n  +grants: {{ select: [{grantees}] }}\n  +pre_hook: \"insert into {log} (what) values ('pre {{{{ this.identifier }}}}')\"\n  +post_hook:\n    - \"insert into {log} (what) values ('post {{{{ this.identifier }}}}')\"\n\
                 -- file: models/a.sql\nselect 1 as x\n-- file: models/b.sql\nselect * from {{{{ ref('a') }}}}\n"
            ),
        )
    };
    let dir = project(&files("'group:xt_analytics_users', 'user:xt_kim'"));
    ok(dir.path(), &["build"]);
    ok(dir.path(), &["build"]);
    let seen: Vec<String> = pg
        .query(&format!("SELECT what FROM {log} ORDER BY n"))
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let run = ["start", "pre a", "post a", "pre b", "post b", "end"];
    assert_eq!(seen, [run, run].concat());
    let readable = |who: &str, t: &str| {
        pg.one(&format!(
            "SELECT has_table_privilege('{who}', '{}.{t}', 'select')::text",
            pg.schema("public")
        ))
    };
    let usage = format!(
        "SELECT has_schema_privilege('xt_analytics_users', '{}', 'usage')::text",
        pg.schema("public")
    );
    assert_eq!(
        pg.one(&usage),
        "true",
        "on_run_end's loop over `schemas` did not grant"
    );
    for t in ["a", "b"] {
        assert_eq!(readable("xt_analytics_users", t), "true");
        assert_eq!(readable("xt_kim", t), "true");
    }
    // Removing a grantee revokes it on the next run; a table swapped in keeps the others.
    write_files(dir.path(), &files("'group:xt_analytics_users'"));
    ok(dir.path(), &["build"]);
    assert_eq!(readable("xt_kim", "a"), "false");
    assert_eq!(readable("xt_analytics_users", "a"), "true");
    // A failing post hook keeps the previous table: it runs in the build's transaction.
    write_files(
        dir.path(),
        "-- file: models/a.sql\n{{ config(post_hook='select no_such_column') }}\nselect 2 as x\n",
    );
    let o = xform(dir.path(), &["build", "-s", "a"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert_eq!(
        pg.one(&format!("SELECT x FROM {}.a", pg.schema("public"))),
        "1"
    );
}

#[test]
fn compare_across_postgres_and_duckdb_finds_the_changed_and_missing_rows() {
    let Some(pg) = Pg::new() else { return };
    let files = format!(
        "{}  local: {{ type: duckdb, path: target/local.duckdb }}\n\
         -- file: seeds/orders.csv\nid,customer,amount,memo\n1,김철수,1000.50,라면\n2,이영희,2500,\n3,박민수,700,\"떡볶이, 매운맛\"\n",
        // `local` goes under `targets:`, after `dev`.
        pg.project_yml(1, "")
    );
    let dir = project(&files);
    ok(dir.path(), &["seed"]);
    ok(dir.path(), &["seed", "--target", "local"]);
    let same = ok(
        dir.path(),
        &[
            "compare",
            "orders",
            "local:orders",
            "--key",
            "id",
            "--fail-on-diff",
        ],
    );
    assert!(same.contains("identical"), "{same}");
    pg.client()
        .batch_execute(&format!(
            "UPDATE {s}.orders SET memo = '김치' WHERE id = 2; DELETE FROM {s}.orders WHERE id = 3",
            s = pg.schema("public")
        ))
        .unwrap();
    let o = xform(
        dir.path(),
        &[
            "compare",
            "orders",
            "local:orders",
            "--key",
            "id",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let report: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(report["keys"]["only_in_b"], 1, "{report}");
    assert_eq!(report["keys"]["changed"], 1, "{report}");
    assert_eq!(report["keys"]["only_in_a"], 0, "{report}");
    let changed = report["keys"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "changed")
        .unwrap();
    assert_eq!(
        changed["changes"][0],
        serde_json::json!(["memo", "김치", null]),
        "{report}"
    );
}

#[test]
fn microbatches_schema_changes_unit_tests_freshness_and_defer_work_on_the_server() {
    let Some(pg) = Pg::new() else { return };
    let s = pg.schema("public");
    let files = format!(
        "{}  pr: {}\n\
         -- file: models/events.sql\n{{{{ config(materialized='table') }}}}\nselect * from (values (1, 'a', timestamp '2024-01-01 10:00'), (2, 'b', timestamp '2024-01-02 10:00')) as t(id, v, at)\n\
         -- file: models/daily.sql\n{{{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='at', batch_size='day', begin='2024-01-01', unique_key='id', on_schema_change='append_new_columns') }}}}\nselect id, v, at from {{{{ ref('events') }}}}\n\
         -- file: models/sources.yml\nsources:\n  - name: app\n    schema: {s}\n    loaded_at_field: at\n    freshness: {{ error_after: {{ count: 1, period: day }} }}\n    tables: [{{ name: events }}]\n\
         -- file: models/unit.yml\nunit_tests:\n  - name: daily_copies\n    model: daily\n    given:\n      - input: ref('events')\n        rows: [{{ id: 7, v: x, at: '2024-01-01 00:00:00' }}]\n    expect:\n      rows: [{{ id: 7, v: x }}]\n",
        pg.project_yml(1, ""),
        pg.target(1).replace(
            &format!("schema_prefix: {}", pg.prefix),
            &format!("schema_prefix: {}pr_", pg.prefix)
        )
    );
    let dir = project(&files);
    ok(dir.path(), &["build"]);
    ok(
        dir.path(),
        &[
            "run",
            "-s",
            "daily",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-03",
        ],
    );
    assert_eq!(
        pg.one(&format!(
            "SELECT count(*) || '/' || count(DISTINCT id) FROM {s}.daily"
        )),
        "2/2"
    );
    // A new column is added to the incremental table, not rebuilt.
    write_files(
        dir.path(),
        "-- file: models/daily.sql\n{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='at', batch_size='day', begin='2024-01-01', unique_key='id', on_schema_change='append_new_columns') }}\nselect id, v, at, v || '!' as loud from {{ ref('events') }}\n",
    );
    ok(
        dir.path(),
        &[
            "run",
            "-s",
            "daily",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-03",
        ],
    );
    assert_eq!(
        pg.one(&format!(
            "SELECT string_agg(coalesce(loud, '-'), ',' ORDER BY id) FROM {s}.daily"
        )),
        "-,b!"
    );
    // The source was loaded long ago: freshness fails with exit 1.
    let fresh = xform(dir.path(), &["source", "freshness"]);
    assert_eq!(fresh.code, 1, "{}", fresh.stdout);
    // A pull request builds what changed into its own schemas and reads the rest from dev's.
    std::fs::create_dir_all(dir.path().join("prod")).unwrap();
    for f in ["manifest.json", "run_results.json"] {
        std::fs::copy(
            dir.path().join("target").join(f),
            dir.path().join("prod").join(f),
        )
        .unwrap();
    }
    write_files(
        dir.path(),
        "-- file: models/top.sql\nselect max(id) as top from {{ ref('daily') }}\n",
    );
    ok(
        dir.path(),
        &[
            "build",
            "-t",
            "pr",
            "-s",
            "state:modified+",
            "--defer",
            "--state",
            "prod",
        ],
    );
    let pr = format!("{}pr_public", pg.prefix);
    assert_eq!(pg.one(&format!("SELECT top FROM {pr}.top")), "2");
    assert!(
        !pg.relations()
            .iter()
            .any(|(r, _)| r == &format!("{pr}.daily")),
        "daily was rebuilt"
    );
}

#[test]
fn schema_grants_give_usage_and_reading_of_tables_now_and_later() {
    let Some(pg) = Pg::new() else { return };
    role(&pg, "xt_analytics_users");
    role(&pg, "xt_pii_users");
    let files = |models: &str| {
        pg.project_yml(
            1,
            &format!(
                "schema_grants:\n  analytics: {{ usage: ['group:xt_analytics_users'], select: ['group:xt_analytics_users'] }}\n  pii: {{ usage: [xt_pii_users] }}\n\
                 models:\n  +materialized: table\n  analytics: {{ +schema: analytics }}\n  pii: {{ +schema: pii }}\n{models}"
            ),
        )
    };
    let dir = project(&files(
        "-- file: models/analytics/a.sql\nselect 1 as x\n-- file: models/pii/p.sql\nselect 'kim' as name\n",
    ));
    ok(dir.path(), &["build"]);
    let (a, pii) = (pg.schema("analytics"), pg.schema("pii"));
    let can = |sql: String| pg.one(&sql);
    assert_eq!(
        can(format!(
            "SELECT has_schema_privilege('xt_analytics_users', '{a}', 'usage')::text"
        )),
        "true"
    );
    assert_eq!(
        can(format!(
            "SELECT has_schema_privilege('xt_analytics_users', '{pii}', 'usage')::text"
        )),
        "false"
    );
    assert_eq!(
        can(format!(
            "SELECT has_schema_privilege('xt_pii_users', '{pii}', 'usage')::text"
        )),
        "true"
    );
    assert_eq!(
        can(format!(
            "SELECT has_table_privilege('xt_analytics_users', '{a}.a', 'select')::text"
        )),
        "true"
    );
    assert_eq!(
        can(format!(
            "SELECT has_table_privilege('xt_pii_users', '{pii}.p', 'select')::text"
        )),
        "false"
    );
    // A table created later, and one swapped in, are readable too (default privileges).
    write_files(
        dir.path(),
        "-- file: models/analytics/b.sql\nselect 2 as x\n",
    );
    ok(dir.path(), &["build"]);
    for t in ["a", "b"] {
        assert_eq!(
            can(format!(
                "SELECT has_table_privilege('xt_analytics_users', '{a}.{t}', 'select')::text"
            )),
            "true",
            "{t}"
        );
    }
    // A privilege no schema has is refused where it is written, before anything runs.
    write_files(
        dir.path(),
        &files("").replace(
            "usage: [xt_pii_users]",
            "usage: [xt_pii_users], selekt: [x]",
        ),
    );
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("`selekt` is not a privilege")
            && o.stderr.contains("did you mean `select`"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_swap_waits_out_a_short_reader_and_gives_up_on_a_long_one_keeping_the_old_table() {
    let Some(pg) = Pg::new() else { return };
    let files = |version: &str| {
        pg.project_yml(1, &format!("-- file: models/t.sql\n{{{{ config(materialized='table') }}}}\nselect {version} as v\n"))
            .replace("threads: 1,", "threads: 1, lock_timeout: 200ms,")
    };
    let dir = project(&files("1"));
    ok(dir.path(), &["build"]);
    let t = format!("{}.t", pg.schema("public"));
    // A reader holds the table for 0.6 s: the first lock times out, a later one gets it.
    let hold = |seconds: f64| {
        let (pg_t, conninfo) = (t.clone(), pg.address.clone());
        std::thread::spawn(move || {
            let info: Vec<String> = conninfo.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut c = postgres::Client::connect(&info.join(" "), postgres::NoTls).unwrap();
            c.batch_execute(&format!(
                "BEGIN; LOCK TABLE {pg_t} IN ACCESS SHARE MODE; SELECT pg_sleep({seconds}); COMMIT"
            ))
            .unwrap();
        })
    };
    let reader = hold(0.6);
    std::thread::sleep(Duration::from_millis(100));
    write_files(dir.path(), &files("2"));
    let o = xform(dir.path(), &["build"]);
    reader.join().unwrap();
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert_eq!(pg.one(&format!("SELECT v FROM {t}")), "2");
    let run = std::fs::read_to_string(dir.path().join("target/run/models/t.sql")).unwrap();
    assert!(run.contains("lock timeout; trying again"), "{run}");
    // A reader holding it for 5 s outlasts every try: the node fails, the old table stays.
    let reader = hold(5.0);
    std::thread::sleep(Duration::from_millis(100));
    write_files(dir.path(), &files("3"));
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stdout
            .contains("held it past lock_timeout (200ms) 3 times"),
        "{}",
        o.stdout
    );
    reader.join().unwrap();
    assert_eq!(pg.one(&format!("SELECT v FROM {t}")), "2");
    assert!(pg.no_staging_relations());
}

#[test]
fn views_recreated_after_a_column_changes_type_keep_their_grants() {
    let Some(pg) = Pg::new() else { return };
    role(&pg, "xt_analytics_users");
    let files = |amount: &str| {
        pg.project_yml(
            1,
            &format!(
                "models:\n  +materialized: view\n  +grants: {{ select: ['group:xt_analytics_users'] }}\n\
                 -- file: models/t.sql\n{{{{ config(materialized='table') }}}}\nselect 1 as id, {amount} as amount\n\
                 -- file: models/v.sql\nselect id, amount from {{{{ ref('t') }}}}\n\
                 -- file: models/w.sql\nselect amount from {{{{ ref('v') }}}}\n"
            ),
        )
    };
    let dir = project(&files("10"));
    ok(dir.path(), &["build"]);
    // The amount becomes text: the views cannot be re-pointed, so they are dropped with the old
    // table and created again in the same transaction — with their privileges.
    write_files(dir.path(), &files("'ten'"));
    ok(dir.path(), &["build", "-s", "t"]);
    let s = pg.schema("public");
    for view in ["v", "w"] {
        assert_eq!(pg.one(&format!("SELECT amount FROM {s}.{view}")), "ten");
        let can = format!(
            "SELECT has_table_privilege('xt_analytics_users', '{s}.{view}', 'select')::text"
        );
        assert_eq!(pg.one(&can), "true", "{view} lost its grant");
    }
}

#[test]
fn concurrent_swaps_of_tables_read_by_the_same_views_never_collide() {
    let Some(pg) = Pg::new() else { return };
    // 30 tables; each view reads two neighbours, so two sessions swapping neighbours meet on
    // a view: its definition is read only under the locks (found by the 1,000-model rebuild).
    let mut files = String::from("models:\n  +materialized: table\n");
    for i in 0..30 {
        files.push_str(&format!("-- file: models/t{i}.sql\nselect {i} as id\n"));
        let (a, b) = (i, (i + 1) % 30);
        files.push_str(&format!(
            "-- file: models/v{i}.sql\n{{{{ config(materialized='view') }}}}\nselect id from {{{{ ref('t{a}') }}}} union all select id from {{{{ ref('t{b}') }}}}\n"
        ));
    }
    let dir = project(&pg.project_yml(2, &files));
    for _ in 0..4 {
        let out = ok(dir.path(), &["build"]);
        assert!(out.contains("60 OK, 0 errors"), "{out}");
    }
}

#[test]
fn redshift_layout_config_on_a_postgres_target_is_warned_of_and_left_out() {
    let Some(pg) = Pg::new() else { return };
    let files = "models:\n  +dist: all\n  +bind: false\n-- file: models/t.sql\n{{ config(materialized='table') }}\nselect 1 as x\n-- file: models/v.sql\nselect x from {{ ref('t') }}\n";
    let dir = project(&pg.project_yml(1, files));
    let o = xform(dir.path(), &["build"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr
            .contains("config `dist` is not applied on postgres targets"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("config `bind` is not applied on postgres targets"),
        "{}",
        o.stderr
    );
}
