//! `type: redshift`, which cannot run here: xform's Redshift flavour is run against the local
//! PostgreSQL server through a wire proxy (`Proxy`) that records every statement xform sends.
//! The parts both servers accept run as they are; the few clauses only Redshift has (`BACKUP
//! NO`, `DISTSTYLE`/`DISTKEY`, `SORTKEY`, `WITH NO SCHEMA BINDING`, `TO ROLE`) are cut from
//! what PostgreSQL receives — never from the record — and `svv_relation_privileges` is a view
//! over PostgreSQL's own catalog. The record is checked three ways: against the snapshot files
//! in `tests/it/redshift/` (every statement each materialization emits; `UPDATE_SNAPSHOTS=1`
//! rewrites them), against the constructs Redshift lacks (`lacking`), and by the rows built.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::build::ok;
use crate::harness::{project, write_files, xform};
use crate::on_postgres::{Pg, role};

/// Statements as sent, each with the number of the connection that sent it.
type Record = Arc<Mutex<Vec<(usize, String)>>>;

/// A PostgreSQL wire proxy on a free port of 127.0.0.1: it records each query a client sends
/// (simple or extended protocol) and forwards it rewritten by `rewrite`; the rest passes as is.
struct Proxy {
    port: u16,
    record: Record,
}

impl Proxy {
    fn start(upstream: (String, u16), rewrite: Arc<dyn Fn(&str) -> String + Send + Sync>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let record: Record = Arc::default();
        let kept = record.clone();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let Ok(client) = client else { continue };
                let (upstream, record, rewrite) = (upstream.clone(), kept.clone(), rewrite.clone());
                std::thread::spawn(move || {
                    let _ = relay(client, &upstream, (n, &record), &*rewrite);
                });
            }
        });
        Proxy { port, record }
    }

    /// Everything recorded so far, and a fresh start.
    fn take(&self) -> Vec<(usize, String)> {
        std::mem::take(&mut *self.record.lock().unwrap())
    }
}

fn read_u32(s: &mut TcpStream) -> std::io::Result<u32> {
    let mut b = [0; 4];
    s.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_body(s: &mut TcpStream, len: u32) -> std::io::Result<Vec<u8>> {
    let mut body = vec![0; (len as usize).saturating_sub(4)];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// One client connection: the startup (TLS refused, a cancel request passed on), then each
/// message from the client, queries recorded and rewritten; the server's answers copied back.
fn relay(
    mut client: TcpStream,
    upstream: &(String, u16),
    (n, record): (usize, &Record),
    rewrite: &dyn Fn(&str) -> String,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect((upstream.0.as_str(), upstream.1))?;
    // Each message is written whole and at once: no small writes for Nagle to hold back.
    server.set_nodelay(true)?;
    client.set_nodelay(true)?;
    loop {
        let len = read_u32(&mut client)?;
        let body = read_body(&mut client, len)?;
        let code = u32::from_be_bytes(body[..4].try_into().unwrap_or_default());
        if code == 80877103 || code == 80877104 {
            client.write_all(b"N")?; // no TLS, no GSS: plain startup follows
            continue;
        }
        server.write_all(&[&len.to_be_bytes()[..], &body].concat())?;
        if code == 80877102 {
            return Ok(()); // a cancel request: the server acts and closes
        }
        break;
    }
    let (mut from_server, mut to_client) = (server.try_clone()?, client.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(std::net::Shutdown::Both);
    });
    loop {
        let mut tag = [0; 1];
        if client.read_exact(&mut tag).is_err() {
            break;
        }
        let len = read_u32(&mut client)?;
        let mut body = read_body(&mut client, len)?;
        body = match tag[0] {
            b'Q' => query(&body, 0, (n, record), rewrite),
            b'P' => {
                let name_end = body.iter().position(|&b| b == 0).unwrap_or(0) + 1;
                query(&body, name_end, (n, record), rewrite)
            }
            _ => body,
        };
        let mut message = tag.to_vec();
        message.extend((body.len() as u32 + 4).to_be_bytes());
        message.extend(body);
        server.write_all(&message)?;
    }
    let _ = server.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// The message `body` with the NUL-terminated query at `at` recorded and rewritten.
fn query(
    body: &[u8],
    at: usize,
    (n, record): (usize, &Record),
    rewrite: &dyn Fn(&str) -> String,
) -> Vec<u8> {
    let end = at
        + body[at..]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(body.len() - at);
    let sql = String::from_utf8_lossy(&body[at..end]).into_owned();
    let extended = if at > 0 { "-- extended protocol\n" } else { "" };
    record.lock().unwrap().push((n, format!("{extended}{sql}")));
    let mut out = body[..at].to_vec();
    out.extend(rewrite(&sql).into_bytes());
    out.extend(&body[end..]);
    out
}

/// What PostgreSQL is sent instead of Redshift statements (one message may hold several).
fn for_postgres(sql: &str, shim: &str) -> String {
    let each: Vec<String> = sql
        .split(";\n")
        .map(|s| for_postgres_one(s, shim))
        .collect();
    each.join(";\n")
}

/// One Redshift statement for PostgreSQL: the clauses only Redshift has cut, its privileges
/// view read from `shim`.
fn for_postgres_one(sql: &str, shim: &str) -> String {
    let mut sql = sql
        .replace("\nWITH NO SCHEMA BINDING", "")
        .replace(" TO ROLE ", " TO ")
        .replace(" FROM ROLE ", " FROM ")
        .replace(
            "svv_relation_privileges",
            &format!("{shim}.svv_relation_privileges"),
        );
    if sql.starts_with("CREATE TABLE") {
        let first_line = sql.find('\n').unwrap_or(sql.len());
        let attributes = [
            " BACKUP NO",
            " DISTSTYLE ",
            " COMPOUND SORTKEY",
            " INTERLEAVED SORTKEY",
        ]
        .iter()
        .filter_map(|a| sql[..first_line].find(a))
        .min();
        if let Some(at) = attributes {
            let end = sql[..first_line]
                .rfind(" AS")
                .filter(|&e| e > at)
                .unwrap_or(first_line);
            sql.replace_range(at..end, "");
        }
    }
    sql
}

/// The constructs Redshift lacks (or reads differently) in `sql`.
fn lacking(sql: &str) -> Vec<&'static str> {
    let flat = sql
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    let banned: &[(&str, &str)] = &[
        ("SAVEPOINT", "savepoints"),
        ("TRUNCATE", "TRUNCATE (it commits)"),
        ("DISTINCT FROM", "IS [NOT] DISTINCT FROM"),
        ("FROM STDIN", "COPY FROM STDIN"),
        ("TO STDOUT", "COPY TO STDOUT"),
        ("CREATE OR REPLACE TABLE", "CREATE OR REPLACE TABLE"),
        ("ON COMMIT DROP", "ON COMMIT DROP"),
        ("DO NOTHING", "MERGE … DO NOTHING"),
        ("MERGE INTO", "MERGE (no alias, equality only)"),
        ("REGCLASS", "regclass"),
        ("ACLEXPLODE", "aclexplode"),
        ("UNNEST(", "unnest"),
        ("ARRAY[", "arrays"),
        ("LOCK_TIMEOUT", "lock_timeout"),
        (
            "CLIENT_CONNECTION_CHECK_INTERVAL",
            "client_connection_check_interval",
        ),
        ("ADVISORY", "advisory locks"),
        ("HASHTEXT", "hashtext"),
        (" MODE", "LOCK … IN … MODE"),
        ("CONCAT_WS", "concat_ws"),
        ("STRING_AGG", "string_agg"),
        ("COLLATE", "COLLATE"),
        ("FILTER (WHERE", "aggregate FILTER"),
        ("ON CONFLICT", "ON CONFLICT"),
        ("RETURNING", "RETURNING"),
        ("DISTINCT ON", "DISTINCT ON"),
        ("GENERATE_SERIES", "generate_series (leader node only)"),
        (" AS TEXT)", "TEXT (VARCHAR(256) there)"),
        (" AS VARCHAR)", "VARCHAR without a size (256 bytes there)"),
        ("-- EXTENDED PROTOCOL", "the extended protocol"),
    ];
    let mut found: Vec<&str> = banned
        .iter()
        .filter(|(word, _)| flat.contains(word))
        .map(|(_, what)| *what)
        .collect();
    let aliased_delete = |s: &str| {
        let s = s.trim_start().to_uppercase();
        let head = s.split(" USING ").next().unwrap_or_default();
        s.starts_with("DELETE FROM") && head.contains(" AS ")
    };
    if sql.split(";\n").any(aliased_delete) {
        found.push("an alias of DELETE's table");
    }
    found
}

/// The record as a transcript: per connection, its statements, with the test's schema prefix
/// made constant.
fn transcript(record: &[(usize, String)], prefix: &str) -> String {
    let mut out = String::new();
    let first = record.first().map_or(0, |(n, _)| *n);
    let mut seen = Vec::new();
    for (n, sql) in record {
        if !seen.contains(n) {
            seen.push(*n);
            out.push_str(&format!("-- connection {}\n", n - first + 1));
        }
        out.push_str(&format!(
            "{};\n",
            run_time(&sql.replace(prefix, "xt_")).trim_end()
        ));
    }
    out
}

/// `sql` with the run's time (a check snapshot's version; every time in the test's data is
/// of 2024) made constant.
fn run_time(sql: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find("TIMESTAMP '") {
        let (head, tail) = rest.split_at(at + "TIMESTAMP '".len());
        out.push_str(head);
        let now = tail.len() >= 19 && tail[..4] > *"2024" && tail.as_bytes()[19] == b'\'';
        if now {
            out.push_str("<run time>");
            rest = &tail[19..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Compares `text` with the snapshot file `tests/it/redshift/<name>.out`, or writes it when
/// `UPDATE_SNAPSHOTS` is set.
fn snapshot(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/redshift")
        .join(format!("{name}.out"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    if want != text {
        let diff = similar::TextDiff::from_lines(want.as_str(), text);
        panic!(
            "the statements for Redshift changed (UPDATE_SNAPSHOTS=1 accepts them):\n{}",
            diff.unified_diff().context_radius(3)
        );
    }
}

/// A Redshift target through a proxy, and the project the tests build.
struct Redshift {
    pg: Pg,
    proxy: Proxy,
}

impl Redshift {
    fn new() -> Option<Redshift> {
        let pg = Pg::new()?;
        let shim = pg.schema("shim");
        pg.client()
            .batch_execute(&format!(
                "CREATE SCHEMA {shim}; CREATE VIEW {shim}.svv_relation_privileges AS \
                 SELECT n.nspname::text AS namespace_name, c.relname::text AS relation_name, \
                 lower(a.privilege_type) AS privilege_type, r.rolname::text AS identity_name, \
                 CASE WHEN r.rolcanlogin THEN 'user' WHEN r.rolname LIKE '%group%' THEN 'group' \
                 ELSE 'role' END AS identity_type \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, \
                 aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee"
            ))
            .expect("shim");
        let value = |k: &str| {
            pg.address
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let host = value("host").unwrap_or_else(|| "127.0.0.1".into());
        let port = value("port").and_then(|p| p.parse().ok()).unwrap_or(5432);
        let proxy = Proxy::start(
            (host, port),
            Arc::new(move |sql: &str| for_postgres(sql, &shim)),
        );
        Some(Redshift { pg, proxy })
    }

    fn project_yml(&self, rest: &str) -> String {
        let value = |k: &str| {
            let v = self.pg.address.iter().find(|(key, _)| key == k);
            v.map(|(_, v)| v.clone()).unwrap_or_default()
        };
        format!(
            "-- file: project.yml\nname: rstest\ndefault_target: dev\ntargets:\n  dev: {{ type: redshift, \
             host: 127.0.0.1, port: {}, user: \"{}\", dbname: \"{}\", sslmode: disable, threads: 1, \
             schema_prefix: {} }}\n  local: {{ type: duckdb, path: target/local.duckdb }}\n{rest}",
            self.proxy.port,
            value("user"),
            value("dbname"),
            self.pg.prefix
        )
    }
}

const PROJECT: &str = "schema_grants:
  analytics: { usage: ['group:xt_rs_group', 'role:xt_rs_role'], select: ['group:xt_rs_group'] }
models:
  +materialized: view
  raw: { +schema: raw_data }
  analytics:
    +schema: analytics
    +materialized: table
    +grants: { select: ['group:xt_rs_group', 'role:xt_rs_role'] }
seeds:
  +schema: raw_data
snapshots:
  +target_schema: snapshots
-- file: seeds/orders.csv
order_id,customer,amount,product,ordered_at
1,kim,1000.50,라면,2024-01-01 10:00:00
2,lee,2500,김치,2024-01-02 09:00:00
3,kim,700,\"떡볶이, 매운맛\",2024-01-03 12:00:00
,park,10,,2024-01-03 13:00:00
-- file: models/raw/stg_orders.sql
select order_id, customer, amount, product, ordered_at from {{ ref('orders') }}
-- file: models/raw/late_orders.sql
{{ config(bind=false) }}
select order_id, customer from {{ ref('orders') }}
-- file: models/analytics/by_customer.sql
{{ config(dist='customer', sort=['customer'], backup=false, persist_docs={'relation': true, 'columns': true}) }}
select customer, sum(amount) as total, count(*) as orders from {{ ref('stg_orders') }} group by customer
-- file: models/analytics/Big_Spenders.sql
{{ config(materialized='view') }}
select customer from {{ ref('by_customer') }} where total > 1000
-- file: models/analytics/merged.sql
{{ config(materialized='incremental', unique_key='order_id', dist='even') }}
select order_id, customer, amount from {{ ref('stg_orders') }}
-- file: models/analytics/replaced.sql
{{ config(materialized='incremental', unique_key='order_id', incremental_strategy='delete+insert', sort=['order_id'], sort_type='interleaved') }}
select order_id, product from {{ ref('stg_orders') }}
-- file: models/analytics/appended.sql
{{ config(materialized='incremental', dist='all') }}
select count(*) as n from {{ ref('stg_orders') }}
-- file: models/analytics/daily.sql
{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ordered_at', batch_size='day', begin='2024-01-01') }}
select order_id, amount, ordered_at from {{ ref('stg_orders') }}
-- file: models/analytics/schema.yml
models:
  - name: by_customer
    description: 고객별 매출 합계
    columns:
      - name: customer
        description: 고객 이름
        data_tests: [unique, not_null]
unit_tests:
  - name: sums_per_customer
    model: by_customer
    given:
      - input: ref('stg_orders')
        rows: [{ customer: a, amount: 1 }, { customer: a, amount: 2 }]
    expect:
      rows: [{ customer: a, total: 3, orders: 2 }]
-- file: snapshots/orders_history.sql
{% snapshot orders_history %}
{{ config(unique_key='order_id', strategy='check', check_cols=['amount']) }}
select order_id, customer, amount from {{ ref('orders') }}
{% endsnapshot %}
";

/// The second run's seed: order 2 changed, order 5 new with a customer a letter longer than
/// any before (the seed's and the incremental tables' `VARCHAR`s widen); and `by_customer`'s
/// total becomes a double (the view reading it cannot be re-pointed: it is dropped and
/// created again).
const CHANGED: &str = "-- file: models/analytics/by_customer.sql
{{ config(dist='customer', sort=['customer'], backup=false, persist_docs={'relation': true, 'columns': true}) }}
select customer, cast(sum(amount) as double precision) as total, count(*) as orders from {{ ref('stg_orders') }} group by customer
-- file: seeds/orders.csv
order_id,customer,amount,product,ordered_at
1,kim,1000.50,라면,2024-01-01 10:00:00
2,lee,3000,김치,2024-01-02 09:00:00
3,kim,700,\"떡볶이, 매운맛\",2024-01-03 12:00:00
,park,10,,2024-01-03 13:00:00
5,jeong,42,만두,2024-01-03 15:00:00
";

#[test]
fn redshift_statements_as_snapshots_without_what_redshift_lacks_and_right_on_postgres() {
    let Some(rs) = Redshift::new() else { return };
    role(&rs.pg, "xt_rs_group");
    role(&rs.pg, "xt_rs_role");
    let dir = project(&rs.project_yml(PROJECT));
    let merged = format!("{}.merged", rs.pg.schema("analytics"));
    let orders = format!("dev:{}.orders", rs.pg.schema("raw_data"));
    let runs: [(&str, &[&str]); 5] = [
        ("build", &["build", "--exclude", "daily"]),
        (
            "microbatch",
            &[
                "run",
                "-s",
                "daily",
                "--start",
                "2024-01-01",
                "--end",
                "2024-01-04",
            ],
        ),
        ("rebuild", &["build", "--exclude", "daily"]),
        (
            "compare",
            &["compare", &merged, &merged, "--key", "order_id"],
        ),
        // Across warehouses: the Redshift side is read through a cursor.
        (
            "compare_apart",
            &[
                "compare",
                &orders,
                "local:raw_data.orders",
                "--key",
                "order_id",
            ],
        ),
    ];
    let mut problems = Vec::new();
    for (name, args) in runs {
        if name == "rebuild" {
            write_files(dir.path(), CHANGED);
        }
        if name == "compare_apart" {
            ok(dir.path(), &["seed", "-t", "local"]);
            rs.proxy.take();
        }
        let out = ok(dir.path(), args);
        let record = rs.proxy.take();
        for (_, sql) in &record {
            let lacks = lacking(sql);
            if !lacks.is_empty() {
                problems.push(format!("{}: {sql}", lacks.join(", ")));
            }
        }
        snapshot(name, &transcript(&record, &rs.pg.prefix));
        assert!(!out.is_empty());
    }
    assert!(
        problems.is_empty(),
        "Redshift lacks:\n{}",
        problems.join("\n\n")
    );
    let (a, raw, snaps) = (
        rs.pg.schema("analytics"),
        rs.pg.schema("raw_data"),
        rs.pg.schema("snapshots"),
    );
    let q = |sql: String| rs.pg.query(&sql);
    assert_eq!(
        q(format!(
            "SELECT order_id, customer, amount FROM {a}.merged ORDER BY order_id NULLS FIRST"
        )),
        [
            ["NULL", "park", "10.00"],
            ["1", "kim", "1000.50"],
            ["2", "lee", "3000.00"],
            ["3", "kim", "700.00"],
            ["5", "jeong", "42.00"]
        ]
        .map(|r| r.map(String::from)),
        "the merge (a NULL key included) is not what the seed says"
    );
    assert_eq!(
        rs.pg.one(&format!("SELECT count(*) FROM {a}.replaced")),
        "5"
    );
    assert_eq!(
        rs.pg.one(&format!(
            "SELECT string_agg(n::text, ',' ORDER BY n) FROM {a}.appended"
        )),
        "4,5"
    );
    assert_eq!(rs.pg.one(&format!("SELECT count(*) FROM {a}.daily")), "4");
    assert_eq!(
        rs.pg.one(&format!(
            "SELECT string_agg(customer, ',' ORDER BY customer) FROM {a}.big_spenders"
        )),
        "kim,lee",
        "the view reading the swapped table"
    );
    assert_eq!(
        rs.pg.one(&format!(
            "SELECT product FROM {raw}.orders WHERE order_id = 3"
        )),
        "떡볶이, 매운맛"
    );
    assert_eq!(
        rs.pg.one(&format!(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{raw}.orders'::regclass AND attname = 'product'"
        )),
        "character varying(20)",
        "Redshift counts VARCHAR in bytes: the longest product is 20"
    );
    assert_eq!(
        rs.pg.one(&format!(
            "SELECT count(*) || '/' || count(dbt_valid_to) FROM {snaps}.orders_history"
        )),
        "6/1",
        "order 2's amount changed: one closed version, one new, one new order"
    );
    for who in ["xt_rs_group", "xt_rs_role"] {
        let can = format!("SELECT has_table_privilege('{who}', '{a}.by_customer', 'select')::text");
        assert_eq!(
            rs.pg.one(&can),
            "true",
            "{who} lost its grant on the swapped table"
        );
    }
    assert_eq!(
        rs.pg.one(&format!(
            "SELECT obj_description('{a}.by_customer'::regclass)"
        )),
        "고객별 매출 합계"
    );
    assert!(
        rs.pg
            .relations()
            .iter()
            .all(|(r, _)| !r.contains("__xform_"))
    );
    let lock = format!(
        "SELECT count(*) FROM pg_tables WHERE schemaname = '{}' AND tablename = 'xform_run_lock'",
        rs.pg.schema("public")
    );
    assert_eq!(
        rs.pg.one(&lock),
        "1",
        "the run lock is a table in the target's schema"
    );
}

#[test]
fn the_lint_finds_what_redshift_lacks_in_postgres_statements() {
    // The same project built as `type: postgres` uses savepoints, COPY and advisory locks:
    // the lint must see them, or it proves nothing about the Redshift record.
    let Some(rs) = Redshift::new() else { return };
    role(&rs.pg, "xt_rs_group");
    role(&rs.pg, "xt_rs_role");
    let yml = rs
        .project_yml(PROJECT)
        .replace("type: redshift", "type: postgres");
    let dir = project(&yml);
    for _ in 0..2 {
        let o = xform(dir.path(), &["build", "--exclude", "daily"]);
        assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    }
    let found: Vec<&str> = rs
        .proxy
        .take()
        .iter()
        .flat_map(|(_, sql)| lacking(sql))
        .collect();
    for expected in [
        "savepoints",
        "COPY FROM STDIN",
        "advisory locks",
        "MERGE (no alias, equality only)",
        "ON COMMIT DROP",
    ] {
        assert!(
            found.contains(&expected),
            "the lint missed {expected}: {found:?}"
        );
    }
}

#[test]
fn a_second_run_on_a_redshift_target_is_refused_by_the_lock_table() {
    let Some(rs) = Redshift::new() else { return };
    let dir = project(&rs.project_yml(
        "-- file: models/slow.sql\n{{ config(materialized='table') }}\nselect 1 as x from (select pg_sleep(3)) as s\n",
    ));
    let first = crate::harness::spawn(dir.path(), &["build"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let second = xform(dir.path(), &["build"]);
    assert_eq!(second.code, 2, "{}{}", second.stdout, second.stderr);
    assert!(
        (second.stdout.clone() + &second.stderr).contains("another xform run holds this target"),
        "{}{}",
        second.stdout,
        second.stderr
    );
    let done = crate::harness::wait_bounded(first, std::time::Duration::from_secs(30));
    let done = done.exited("the first build");
    assert_eq!(done.code, 0, "{}", done.stdout);
}
