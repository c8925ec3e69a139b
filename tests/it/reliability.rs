//! The reliability suite: xform on a hostile machine. SIGKILL and SIGINT at random moments of
//! builds, seed loads, incremental merges and snapshots, each followed by an old-or-new check
//! of every relation, a check for `__xform_*` leftovers and a rebuild that must succeed; two
//! builds at once and a reader during a build; a full disk; a read-only `target/`; a corrupt
//! database file. (A closed stdout is in `regressions`.)
//!
//! `cargo test` runs a few trials of each; `scripts/reliability` runs the full suite (the
//! ignored `reliability_suite_kill_trials`, `XFORM_KILLS` of them, 100 by default).
//!
//! `XFORM_SEED` replays a run. The trials see the warehouse through [`Warehouse`]: DuckDB, and
//! PostgreSQL (a database of its own on `XFORM_TEST_POSTGRES`) run the kill trials. Spark
//! cannot: the trial project merges rows and snapshots, which Spark refuses without Delta or
//! Iceberg; its own kill and leftover trials are in `on_spark`.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{
    Ended, Rng, env_count, random_seed, run_bounded, seed, wait_bounded, write_files,
};

/// What the trials need of a warehouse: the target to build into, and SQL to read back what
/// a run left (standard SQL: `count`, `min`, `max`, `information_schema.tables`).
pub trait Warehouse {
    fn name(&self) -> &str;
    /// The `targets:` entry (YAML flow mapping) of the trial project.
    fn target(&self) -> String;
    /// Every value as text (NULL as "NULL"), or why the query failed.
    fn try_query(&self, dir: &Path, sql: &str) -> Result<Vec<Vec<String>>, String>;

    fn query(&self, dir: &Path, sql: &str) -> Vec<Vec<String>> {
        self.try_query(dir, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

pub struct DuckDb;

impl Warehouse for DuckDb {
    fn name(&self) -> &str {
        "duckdb"
    }

    fn target(&self) -> String {
        "{ type: duckdb, path: target/dev.duckdb, threads: 2 }".into()
    }

    fn try_query(&self, dir: &Path, sql: &str) -> Result<Vec<Vec<String>>, String> {
        let e = |e: duckdb::Error| e.to_string();
        let conn = duckdb::Connection::open(dir.join("target/dev.duckdb")).map_err(e)?;
        let mut stmt = conn
            .prepare(&format!("SELECT COLUMNS(*)::VARCHAR FROM ({sql})"))
            .map_err(e)?;
        let mut rows = stmt.query([]).map_err(e)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(e)? {
            let n = row.as_ref().column_count();
            let values = (0..n).map(|i| {
                row.get::<_, Option<String>>(i)
                    .map(|v| v.unwrap_or_else(|| "NULL".into()))
            });
            out.push(values.collect::<Result<_, _>>().map_err(e)?);
        }
        Ok(out)
    }
}

/// A database of its own on the test server (`XFORM_TEST_POSTGRES`), so the trial project's
/// schemas are named as on DuckDB; dropped when the trials end.
pub struct Postgres {
    address: Vec<(String, String)>,
}

impl Postgres {
    /// None when no server is configured (the caller returns: skipped).
    pub fn new() -> Option<Postgres> {
        let Some(server) = crate::on_postgres::address() else {
            eprintln!("skipped: XFORM_TEST_POSTGRES not set");
            return None;
        };
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let db = format!("xform_trials_{}_{n}", std::process::id());
        let mut address: Vec<(String, String)> =
            server.into_iter().filter(|(k, _)| k != "dbname").collect();
        let mut admin = Postgres {
            address: address.clone(),
        };
        admin.address.push(("dbname".into(), "postgres".into()));
        admin.execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        admin.execute(&format!("CREATE DATABASE {db}"));
        address.push(("dbname".into(), db));
        Some(Postgres { address })
    }

    fn connect(&self) -> Result<postgres::Client, String> {
        let conninfo: Vec<String> = self
            .address
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        postgres::Client::connect(&conninfo.join(" "), postgres::NoTls).map_err(|e| e.to_string())
    }

    fn execute(&self, sql: &str) {
        let done = self
            .connect()
            .and_then(|mut c| c.batch_execute(sql).map_err(|e| e.to_string()));
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn db(&self) -> &str {
        let dbname = self.address.iter().find(|(k, _)| k == "dbname");
        dbname.map_or("", |(_, v)| v.as_str())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let db = self.db().to_string();
        if let Some(v) = self.address.iter_mut().find(|(k, _)| k == "dbname") {
            v.1 = "postgres".into();
        }
        let _ = self
            .connect()
            .map(|mut c| c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")));
    }
}

impl Warehouse for Postgres {
    fn name(&self) -> &str {
        "postgres"
    }

    fn target(&self) -> String {
        let fields: Vec<String> = self
            .address
            .iter()
            .map(|(k, v)| format!("{k}: \"{v}\""))
            .collect();
        format!("{{ type: postgres, {}, threads: 2 }}", fields.join(", "))
    }

    fn try_query(&self, _dir: &Path, sql: &str) -> Result<Vec<Vec<String>>, String> {
        let messages = self
            .connect()?
            .simple_query(sql)
            .map_err(|e| e.to_string())?;
        Ok(messages
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }
}

const SEED_ROWS: usize = 200_000;
const TABLE_ROWS: usize = 150_000;
const TABLES: usize = 8;
const INCREMENTAL_ROWS: usize = 100_000;
const SNAPSHOT_KEYS: usize = 20_000;

/// The trial project: a seed, a view, audited tables, a mart, an incremental merge and a
/// snapshot; every relation carries the `round` it was built in, and a fixed row count.
fn trial_project(w: &dyn Warehouse) -> String {
    let mut files = format!(
        "-- file: project.yml
name: trials
default_target: dev
targets:
  dev: {}
vars:
  round: 0
models:
  +materialized: table
  +schema: marts
  staging: {{ +schema: staging, +materialized: view }}
seeds:
  +schema: raw
-- file: models/staging/stg_people.sql
select id, name, round as seed_round, {{{{ var('round') }}}} as round from {{{{ ref('people') }}}}
-- file: models/mart.sql
select count(*) as n, {{{{ var('round') }}}} as round from {{{{ ref('t0') }}}} join {{{{ ref('stg_people') }}}} using (id)
-- file: models/inc.sql
{{{{ config(materialized='incremental', unique_key='id') }}}}
select i as id, {{{{ var('round') }}}} as round from generate_series(1, {INCREMENTAL_ROWS}) as g(i)
-- file: snapshots/snap.sql
{{% snapshot snap %}}
{{{{ config(unique_key='id', strategy='check', check_cols=['round'], target_schema='snapshots') }}}}
select i as id, {{{{ var('round') }}}} as round from generate_series(1, {SNAPSHOT_KEYS}) as g(i)
{{% endsnapshot %}}
-- file: models/tests.yml
models:
  - name: inc
    columns:
      - name: id
        data_tests: [unique, not_null]
",
        w.target()
    );
    for t in 0..TABLES {
        files.push_str(&format!(
            "-- file: models/t{t}.sql
select i as id, {{{{ var('round') }}}} as round, md5(cast(i as varchar)) as h from generate_series(1, {TABLE_ROWS}) as g(i)
-- file: models/t{t}.yml
models:
  - name: t{t}
    columns:
      - name: id
        data_tests: [unique, not_null]
"
        ));
    }
    files
}

/// The seed as a loader lands it for `round`, Korean names included.
fn write_seed(dir: &Path, round: usize) {
    let mut csv = String::with_capacity(SEED_ROWS * 24);
    csv.push_str("id,name,round\n");
    for i in 1..=SEED_ROWS {
        csv.push_str(&format!("{i},고객{i},{round}\n"));
    }
    std::fs::create_dir_all(dir.join("seeds")).unwrap();
    std::fs::write(dir.join("seeds/people.csv"), csv).unwrap();
}

/// Each relation and the rows it holds when complete.
fn expected() -> Vec<(String, usize)> {
    let mut r = vec![
        ("raw.people".to_string(), SEED_ROWS),
        ("staging.stg_people".to_string(), SEED_ROWS),
        ("marts.mart".to_string(), 1),
        ("marts.inc".to_string(), INCREMENTAL_ROWS),
    ];
    r.extend((0..TABLES).map(|t| (format!("marts.t{t}"), TABLE_ROWS)));
    r
}

/// What the checks found, over a whole suite run.
#[derive(Default, Debug)]
struct Tally {
    trials: usize,
    kills: usize,
    interrupts: usize,
    relations_checked: usize,
    /// Relations missing, partly built, of mixed rounds, or older than before.
    broken: Vec<String>,
    /// `__xform_*` relations a SIGKILL left (allowed until the next run drops them).
    left_by_kills: usize,
    /// `__xform_*` relations still there when none may be.
    leftovers: Vec<String>,
    /// Panics, aborts, hangs, unexpected exit codes.
    failures: Vec<String>,
}

impl Tally {
    fn assert_clean(&self) {
        if self.trials > 0 {
            eprintln!(
                "reliability: {} trials ({} SIGKILL, {} SIGINT), {} left behind by kills (each dropped by the next run)",
                self.trials, self.kills, self.interrupts, self.left_by_kills
            );
        }
        eprintln!(
            "reliability: {} relation checks: {} broken, {} leftovers, {} panics/aborts/hangs/bad exits",
            self.relations_checked,
            self.broken.len(),
            self.leftovers.len(),
            self.failures.len()
        );
        assert!(
            self.broken.is_empty() && self.leftovers.is_empty() && self.failures.is_empty(),
            "{self:#?}"
        );
    }
}

/// A trial project in a temp dir, built once at round 0, and the last round each relation
/// was seen at (a relation may never go back).
struct Trials<'w> {
    w: &'w dyn Warehouse,
    dir: tempfile::TempDir,
    seen: Vec<usize>,
    round: usize,
    rng: Rng,
    tally: Tally,
}

fn vars(round: usize) -> OsString {
    OsString::from(format!("{{round: {round}}}"))
}

fn args(words: &[&str], round: usize) -> Vec<OsString> {
    let mut a: Vec<OsString> = words.iter().map(OsString::from).collect();
    a.push("--vars".into());
    a.push(vars(round));
    a
}

const LIMIT: Duration = Duration::from_secs(120);

impl<'w> Trials<'w> {
    fn new(w: &'w dyn Warehouse, seed: u64) -> Trials<'w> {
        let dir = tempfile::tempdir().unwrap();
        Trials::in_dir(w, dir, seed)
    }

    fn in_dir(w: &'w dyn Warehouse, dir: tempfile::TempDir, seed: u64) -> Trials<'w> {
        write_files(dir.path(), &trial_project(w));
        write_seed(dir.path(), 0);
        let mut t = Trials {
            w,
            dir,
            seen: vec![0; expected().len()],
            round: 0,
            rng: Rng::new(seed),
            tally: Tally::default(),
        };
        t.must_succeed(&["build"]);
        t
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs a command at the current round; it must exit 0.
    fn must_succeed(&mut self, words: &[&str]) -> String {
        match run_bounded(self.path(), &args(words, self.round), LIMIT) {
            Ended::Exit(o) if o.code == 0 => o.stdout,
            Ended::Exit(o) => {
                self.fail(format!(
                    "{words:?} exited {}: {}{}",
                    o.code, o.stdout, o.stderr
                ));
                o.stdout
            }
            Ended::Signal(s, o) => {
                self.fail(format!("{words:?} died of signal {s}: {}", o.stderr));
                String::new()
            }
            Ended::Hung => {
                self.fail(format!("{words:?} hung"));
                String::new()
            }
        }
    }

    fn fail(&mut self, what: String) {
        self.tally
            .failures
            .push(format!("round {}: {what}", self.round));
    }

    /// The next round: the seed rewritten for it.
    fn next_round(&mut self) {
        self.round += 1;
        write_seed(self.path(), self.round);
    }

    /// Every relation complete, of one round, not older than before; `exact` when the last
    /// run finished, so everything must be at the current round.
    fn check_relations(&mut self, exact: bool) {
        let round = self.round;
        for (i, (rel, rows)) in expected().into_iter().enumerate() {
            self.tally.relations_checked += 1;
            let sql = format!("select count(*), min(round), max(round) from {rel}");
            let got = match self.w.try_query(self.path(), &sql) {
                Ok(got) => got,
                Err(e) => {
                    self.tally
                        .broken
                        .push(format!("round {round}: {rel} cannot be read: {e}"));
                    continue;
                }
            };
            let (n, lo, hi) = (&got[0][0], &got[0][1], &got[0][2]);
            let at: usize = lo.parse().unwrap_or(usize::MAX);
            let ok = *n == rows.to_string()
                && lo == hi
                && at >= self.seen[i]
                && at <= round
                && (!exact || at == round);
            if !ok {
                self.tally.broken.push(format!(
                    "round {round}: {rel} has {n} rows of rounds {lo}..{hi} (expected {rows} of one round, at least {})",
                    self.seen[i]
                ));
            } else {
                self.seen[i] = at;
            }
        }
        self.check_snapshot(exact);
    }

    /// Each key has one current version, all current versions are of one round, and every
    /// recorded round holds a version of every key.
    fn check_snapshot(&mut self, exact: bool) {
        self.tally.relations_checked += 1;
        let got = self.w.query(
            self.path(),
            "select count(*), count(distinct id), count(distinct round), \
             sum(case when dbt_valid_to is null then 1 else 0 end), \
             min(case when dbt_valid_to is null then round end), max(case when dbt_valid_to is null then round end) \
             from snapshots.snap",
        );
        let v: Vec<usize> = got[0]
            .iter()
            .map(|x| x.parse().unwrap_or(usize::MAX))
            .collect();
        let (total, keys, rounds, current, lo, hi) = (v[0], v[1], v[2], v[3], v[4], v[5]);
        let ok = keys == SNAPSHOT_KEYS
            && total == keys * rounds
            && current == keys
            && lo == hi
            && (!exact || lo == self.round);
        if !ok {
            self.tally.broken.push(format!(
                "round {}: snapshots.snap has {total} versions of {keys} keys over {rounds} rounds, {current} current of rounds {lo}..{hi}",
                self.round
            ));
        }
    }

    fn leftovers(&self) -> Vec<String> {
        self.w
            .query(
                self.path(),
                "select table_schema || '.' || table_name from information_schema.tables \
                 where strpos(table_name, '__xform_') > 0",
            )
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    }

    /// How long each command takes uninterrupted, to aim kills inside it.
    fn durations(&mut self) -> Vec<(Vec<&'static str>, Duration)> {
        let commands: [&[&'static str]; 5] = [
            &["build"],
            &["build", "--reuse"],
            &["seed"],
            &["run", "-s", "inc"],
            &["snapshot"],
        ];
        commands
            .iter()
            .map(|words| {
                self.next_round();
                let started = Instant::now();
                self.must_succeed(words);
                (words.to_vec(), started.elapsed())
            })
            .collect()
    }

    /// One trial: a command killed (SIGKILL) or interrupted (SIGINT) at a random moment, the
    /// checks, then a full build that must succeed and drop any leftover.
    fn trial(&mut self, commands: &[(Vec<&'static str>, Duration)]) {
        self.tally.trials += 1;
        self.next_round();
        let (words, took) = self.rng.pick(commands).clone();
        let sigint = self.rng.chance(30);
        let delay =
            Duration::from_micros(self.rng.below(took.as_micros() as usize * 11 / 10 + 1) as u64);
        let child = Command::new(crate::harness::bin())
            .args(args(&words, self.round))
            .current_dir(self.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let signal = if sigint { "-INT" } else { "-KILL" };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args([signal, &pid]).status();
        let ended = wait_bounded(child, Duration::from_secs(60));
        let what = format!("{words:?} {signal} after {delay:?}");
        match (&ended, sigint) {
            (Ended::Hung, _) => self.fail(format!("{what}: did not stop")),
            (Ended::Exit(o), _) | (Ended::Signal(_, o), _) if o.stderr.contains("panicked") => {
                self.fail(format!("{what}: {}", o.stderr))
            }
            // Interrupted (130), or done before the signal came (0).
            (Ended::Exit(o), true) if ![0, 130].contains(&o.code) => {
                self.fail(format!("{what}: exit {}: {}", o.code, o.stderr))
            }
            // SIGINT before the handler was installed ends the process by the signal: fine.
            (Ended::Signal(s, o), true) if *s != 2 => {
                self.fail(format!("{what}: signal {s}: {}", o.stderr))
            }
            _ => {}
        }
        if sigint {
            self.tally.interrupts += 1;
        } else {
            self.tally.kills += 1;
        }
        self.check_relations(false);
        let left = self.leftovers();
        if sigint && !left.is_empty() {
            self.tally
                .leftovers
                .push(format!("round {}: {what} left {left:?}", self.round));
        }
        if !sigint {
            self.tally.left_by_kills += left.len();
        }
        // With --reuse: what the killed run published and recorded is reused, the rest built;
        // every relation must then be of this round, so nothing was recorded unpublished.
        let out = self.must_succeed(&["build", "--reuse"]);
        if !left.is_empty() && !sigint && !out.contains("left behind") {
            self.fail(format!(
                "the build after {what} did not say it dropped {left:?}"
            ));
        }
        self.check_relations(true);
        let after = self.leftovers();
        if !after.is_empty() {
            self.tally.leftovers.push(format!(
                "round {}: after the rebuild: {after:?}",
                self.round
            ));
        }
    }
}

fn kill_trials(w: &dyn Warehouse, count: usize, seed: u64) {
    eprintln!("kill trials on {}: XFORM_SEED={seed}", w.name());
    let mut t = Trials::new(w, seed);
    let commands = t.durations();
    eprintln!("uninterrupted: {commands:?}");
    t.must_succeed(&["build"]);
    t.check_relations(true);
    for _ in 0..count {
        t.trial(&commands);
    }
    t.tally.assert_clean();
}

#[test]
fn killed_and_interrupted_runs_leave_every_relation_old_or_new() {
    kill_trials(&DuckDb, 4, seed());
}

#[test]
#[ignore = "the full suite: scripts/reliability"]
fn reliability_suite_kill_trials() {
    kill_trials(&DuckDb, env_count("XFORM_KILLS", 100), random_seed());
}

#[test]
fn killed_and_interrupted_runs_on_postgres_leave_every_relation_old_or_new() {
    let Some(pg) = Postgres::new() else {
        return;
    };
    kill_trials(&pg, 3, seed());
}

#[test]
#[ignore = "the full suite: scripts/reliability"]
fn reliability_suite_kill_trials_on_postgres() {
    let Some(pg) = Postgres::new() else {
        return;
    };
    kill_trials(&pg, env_count("XFORM_KILLS", 100), random_seed());
}

#[test]
fn two_builds_at_once_and_a_reader_during_a_build() {
    let w = DuckDb;
    let mut t = Trials::new(&w, seed());
    for _ in 0..2 {
        t.next_round();
        let spawn = |words: &[&str], round| {
            Command::new(crate::harness::bin())
                .args(args(words, round))
                .current_dir(t.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let first = spawn(&["build"], t.round);
        std::thread::sleep(Duration::from_millis(300));
        let second = spawn(&["build"], t.round);
        let reader = spawn(&["show", "mart"], t.round);
        let codes = [first, second, reader].map(|c| {
            let o = wait_bounded(c, LIMIT).exited("builds at once");
            if o.code == 2 {
                assert!(
                    o.stderr.contains("in use by another process"),
                    "{}",
                    o.stderr
                );
                assert!(o.stderr.contains("PID"), "names the holder: {}", o.stderr);
            }
            o.code
        });
        assert_eq!(codes[0], 0, "the first build finishes");
        assert!(
            codes[1] == 2 && codes[2] == 2,
            "the others refuse: {codes:?}"
        );
        t.check_relations(true);
    }
    t.tally.assert_clean();
}

/// A tmpfs mounted at a folder for the length of a test (root only), unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "CI=true but a tmpfs cannot be mounted (run CI as root)"
            );
            eprintln!("skipped: mounting a tmpfs needs root");
        }
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    fn remount(&self, how: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The first line that says what went wrong, for the suite's report.
fn first_error(o: &crate::harness::Output) -> String {
    let said = format!("{}{}", o.stdout, o.stderr);
    said.lines()
        .find(|l| l.contains("error") || l.contains("ERROR") || l.contains("FAILED"))
        .unwrap_or("")
        .trim()
        .to_string()
}

fn available_bytes(at: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(at)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_full_disk_fails_the_run_cleanly_and_the_next_one_succeeds() {
    let w = DuckDb;
    let outer = tempfile::tempdir().unwrap();
    let Some(_fs) = Tmpfs::mount(&outer.path().join("fs"), "200m") else {
        return;
    };
    let dir = tempfile::tempdir_in(outer.path().join("fs")).unwrap();
    let mut t = Trials::in_dir(&w, dir, seed());
    let mut failed_runs = 0;
    for free_kb in [64u64, 512, 2048, 8192] {
        t.next_round();
        let filler = t.path().join("filler");
        let free = available_bytes(t.path());
        let fill = free.saturating_sub(free_kb * 1024);
        std::fs::write(&filler, vec![0u8; fill as usize]).unwrap_or_default();
        let o = run_bounded(t.path(), &args(&["build"], t.round), LIMIT).exited("a full disk");
        eprintln!(
            "full disk, {free_kb} KB free: exit {}: {}",
            o.code,
            first_error(&o)
        );
        if o.code != 0 {
            assert!(
                [1, 2].contains(&o.code),
                "exit {}: {}{}",
                o.code,
                o.stdout,
                o.stderr
            );
            let said = format!("{}{}", o.stdout, o.stderr);
            assert!(said.contains("No space left on device"), "{said}");
            failed_runs += 1;
        }
        std::fs::remove_file(&filler).unwrap();
        t.check_relations(false);
        let manifest = std::fs::read_to_string(t.path().join("target/manifest.json")).unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(&manifest).is_ok(),
            "a torn manifest"
        );
        t.must_succeed(&["build"]);
        t.check_relations(true);
        assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
    }
    assert!(
        failed_runs > 0,
        "the disk was never full enough to fail a build"
    );
    t.tally.assert_clean();
}

#[test]
fn a_read_only_target_is_a_clear_error_and_nothing_is_lost() {
    let w = DuckDb;
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("target"), "200m") else {
        return;
    };
    let mut t = Trials::in_dir(&w, dir, seed());
    fs.remount("ro");
    t.next_round();
    for words in [&["build"][..], &["compile"], &["seed"], &["test"]] {
        let o = run_bounded(t.path(), &args(words, t.round), LIMIT).exited("read-only target/");
        assert_eq!(o.code, 2, "{words:?}: {}{}", o.stdout, o.stderr);
        assert!(
            o.stderr.contains("Read-only file system"),
            "{words:?}: {}",
            o.stderr
        );
    }
    fs.remount("rw");
    t.round -= 1;
    t.check_relations(true);
    t.round += 1;
    t.must_succeed(&["build"]);
    t.check_relations(true);
    t.tally.assert_clean();
}

#[test]
fn a_corrupt_database_file_is_a_clear_error_not_a_crash() {
    let w = DuckDb;
    let mut t = Trials::new(&w, seed());
    let db = t.path().join("target/dev.duckdb");
    let good = std::fs::read(&db).unwrap();
    let mut rng = Rng::new(seed());
    let mut garbage = |len: usize| (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>();
    let middle = good.len() / 2;
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("text", b"this is not a database\n".to_vec()),
        ("empty", Vec::new()),
        ("truncated", good[..middle].to_vec()),
        (
            "header garbage",
            [garbage(8192), good[8192..].to_vec()].concat(),
        ),
        (
            "middle garbage",
            [
                good[..middle].to_vec(),
                garbage(65536),
                good[middle + 65536..].to_vec(),
            ]
            .concat(),
        ),
    ];
    for (what, bytes) in variants {
        std::fs::write(&db, &bytes).unwrap();
        let _ = std::fs::remove_file(t.path().join("target/dev.duckdb.wal"));
        t.next_round();
        for words in [&["build"][..], &["show", "mart"], &["debug"]] {
            let o = run_bounded(t.path(), &args(words, t.round), LIMIT)
                .exited(&format!("{what} {words:?}"));
            eprintln!(
                "corrupt database ({what}), {words:?}: exit {}: {}",
                o.code,
                first_error(&o)
            );
            assert!(
                o.code == 0 || !o.stderr.trim().is_empty() || o.stdout.contains("FAILED"),
                "{what} {words:?}: exit {} without a word",
                o.code
            );
        }
    }
    // A fresh file builds again.
    std::fs::remove_file(&db).unwrap();
    t.seen = vec![0; t.seen.len()];
    t.must_succeed(&["build"]);
    t.check_relations(true);
    t.tally.assert_clean();
}
