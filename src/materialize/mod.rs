//! What building a node means: a seed becomes a table loaded from its CSV, a model a view or a
//! table from its compiled SQL, an incremental model new rows in its existing table, a
//! snapshot the new versions of its rows; an ephemeral model is nothing (it lives inlined in
//! its children). Every build is staged and then published through the adapter, so the
//! previous relation stays in place until the new one is complete. No SQL is written here.

pub(crate) mod incremental;
pub(crate) mod reuse;
pub(crate) mod seed;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jiff::civil::DateTime;

use crate::adapter::{
    Around, Build, BuildRecord, DbError, DbResult, Docs, Increment, Layout, RelKind, Relation,
    Session, SnapshotSpec, Staged,
};
use crate::compile::Compiled;
use crate::diagnostics::Diagnostic;
use crate::project::{self, NodeKind};
use crate::testing::{self, Swap, TestResult};
use incremental::{IncrementalSpec, StrategyKind};

/// How a node is built.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    Seed(seed::SeedSpec),
    View,
    Table,
    Incremental(Box<IncrementalSpec>),
    Snapshot(Box<SnapshotSpec>),
    /// Nothing is built: the job runs tests against what is published.
    Test,
}

impl Action {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Action::Seed(_) => "seed",
            Action::View => "view",
            Action::Table => "table",
            Action::Incremental(_) => "incremental",
            Action::Snapshot(_) => "snapshot",
            Action::Test => "test",
        }
    }
}

/// What a run asks of every job: rebuild incremental models from scratch, or (a backfill)
/// rebuild the microbatches of this interval; `now` is the run's time (UTC).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlanOptions {
    pub(crate) full_refresh: bool,
    pub(crate) window: Option<(DateTime, DateTime)>,
    pub(crate) now: DateTime,
}

/// One unit of work: a node to build (or, for `Action::Test`, the node whose tests run), its
/// unit tests (run first: a failure means it is not built) and its data tests (run after the
/// build — before publishing when `audit` is set).
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub(crate) node: usize,
    pub(crate) relation: Option<Relation>,
    pub(crate) action: Action,
    pub(crate) audit: bool,
    pub(crate) tests: Vec<usize>,
    pub(crate) unit_tests: Vec<usize>,
    /// How the warehouse lays the relation out.
    pub(crate) layout: Layout,
}

impl Job {
    /// A job that only tests: `node` is the tested node (or the test itself).
    pub(crate) fn tests_of(c: &Compiled, node: usize) -> Job {
        Job {
            node,
            relation: c.relations.get(node).cloned().flatten(),
            action: Action::Test,
            audit: false,
            tests: Vec::new(),
            unit_tests: Vec::new(),
            layout: Layout::default(),
        }
    }

    pub(crate) fn builds(&self) -> bool {
        !matches!(self.action, Action::Test)
    }

    /// What output lines call this job: its relation, or the node's name.
    pub(crate) fn label(&self, c: &Compiled) -> String {
        match &self.relation {
            Some(r) => r.to_string(),
            None => c.nodes()[self.node].name.clone(),
        }
    }
}

/// The job that builds node `i`, if building it does anything. Settings that cannot work (a
/// seed's unknown encoding, a merge without a key) are diagnostics, found before anything runs.
pub(crate) fn plan(
    c: &Compiled,
    i: usize,
    opts: PlanOptions,
) -> Result<Option<Job>, Vec<Diagnostic>> {
    let n = &c.nodes()[i];
    let Some(relation) = c.relations[i].clone() else {
        return Ok(None);
    };
    let action = match n.kind {
        NodeKind::Seed => {
            let dbt = c.project.style == project::Style::Dbt;
            Action::Seed(seed::spec(n, dbt)?)
        }
        NodeKind::Model => match n.config.materialized() {
            "view" => Action::View,
            "table" => Action::Table,
            "incremental" => Action::Incremental(Box::new(incremental::incremental_spec(
                n,
                opts,
                c.project.target.dialect().replaces(),
            )?)),
            _ => return Ok(None),
        },
        NodeKind::Snapshot => {
            let sql = c.sql[i].as_deref().unwrap_or_default();
            let replaces = c.project.target.dialect().replaces();
            Action::Snapshot(Box::new(incremental::snapshot_spec(
                n, sql, opts.now, replaces,
            )?))
        }
        _ => return Ok(None),
    };
    let audit = matches!(action, Action::Table | Action::Incremental(_))
        && n.config.get("audit").and_then(|v| v.as_bool()) != Some(false);
    let layout = incremental::layout(n, c.project.target.dialect().layout_keys())?;
    Ok(Some(Job {
        node: i,
        relation: Some(relation),
        action,
        audit,
        tests: Vec::new(),
        unit_tests: Vec::new(),
        layout,
    }))
}

/// A build that failed: what the user reads.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) interrupted: bool,
}

/// One microbatch of a run: its interval and what became of it.
#[derive(Debug, Clone)]
pub(crate) struct BatchResult {
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) rows: Option<u64>,
    pub(crate) error: Option<String>,
    pub(crate) interrupted: bool,
}

/// What a job did: the build's rows or failure, each microbatch, and every test's result.
pub(crate) struct Done {
    pub(crate) built: Result<Option<u64>, Failure>,
    pub(crate) batches: Vec<BatchResult>,
    pub(crate) tests: Vec<TestResult>,
}

/// Where a job may open more sessions (a microbatch model's batches run in parallel).
pub(crate) type MoreSessions<'a> = &'a More<'a>;
pub(crate) type More<'a> = dyn Fn() -> DbResult<Box<dyn Session>> + Sync + 'a;

/// A job to run: the job and what exists under its relation's name now; where it may open
/// more sessions, and how many; what its build records beside the relation it publishes.
pub(crate) type JobRun<'a> = (
    (&'a Job, Option<RelKind>),
    (MoreSessions<'a>, usize),
    Option<(Relation, BuildRecord)>,
);

/// Runs a job: unit tests, the build (staged, audited by its data tests when the job says so,
/// then published or discarded), data tests. Every statement that changes the warehouse is
/// appended to `log`.
pub(crate) fn run(
    session: &mut dyn Session,
    c: &Compiled,
    root: &Path,
    ((job, replaces), (more, threads), record): JobRun<'_>,
    log: &mut Vec<String>,
) -> Done {
    let mut tests: Vec<TestResult> = job
        .unit_tests
        .iter()
        .map(|&u| testing::unit::run(session, c, u))
        .collect();
    if let Some(failure) = unit_test_failure(c, &tests) {
        return skip_tests(
            job,
            failure,
            tests,
            "skipped: a unit test of its model failed",
        );
    }
    if !job.builds() {
        tests.extend(testing::run_data_tests(session, c, &job.tests, None, log));
        return done(Ok(None), tests);
    }
    if let Some(batches) = microbatches(job, replaces) {
        let job = (job, around(c, job, record));
        return run_batches(session, c, job, &batches, (more, threads), tests, log);
    }
    match input(c, (root, more), job, replaces) {
        Ok(input) => {
            let around = around(c, job, record);
            build(session, c, (job, replaces), (&input, around), tests, log)
        }
        Err(f) => not_built(job, f, tests),
    }
}

/// Why the job's model is not built when one of its unit tests blocks it.
fn unit_test_failure(c: &Compiled, tests: &[TestResult]) -> Option<Failure> {
    let failed = tests.iter().find(|t| t.blocking)?;
    Some(Failure {
        message: format!(
            "not built: unit test `{}` failed",
            c.nodes()[failed.node].name
        ),
        interrupted: failed.interrupted,
    })
}

/// Stages the job's relation and publishes it — after its data tests pass on it, when the job
/// audits — then runs the tests that did not audit it.
fn build(
    session: &mut dyn Session,
    c: &Compiled,
    (job, replaces): (&Job, Option<RelKind>),
    (input, around): (&Input, Around),
    mut tests: Vec<TestResult>,
    log: &mut Vec<String>,
) -> Done {
    let audit = job.audit && job.tests.iter().any(|&t| blocks(c, t));
    let relation = job
        .relation
        .as_ref()
        .expect("a building job has a relation");
    let stage = |s: &mut dyn Session, log: &mut Vec<String>| {
        let what = what_to_build(c, job, replaces, input);
        s.stage(relation, what, replaces, (audit, &around), log)
    };
    let staged = match stage(session, log) {
        Ok(s) => s,
        Err(e) => return not_built(job, failure(job, e), tests),
    };
    if !audit {
        return publish_then_test(session, c, job, staged, tests, log);
    }
    let (staged, mut audited) = match audit_staged(session, c, job, staged, &stage, log) {
        Ok(audited) => audited,
        Err(e) => return not_built(job, failure(job, e), tests),
    };
    let built = publish_if_passed(session, c, job, staged, &mut audited, log);
    tests.extend(audited);
    done(built, tests)
}

/// The job's hooks, grants, comments and layout, and what its build records.
fn around(c: &Compiled, job: &Job, record: Option<(Relation, BuildRecord)>) -> Around {
    let node = job.node;
    let hooks = |all: &[Vec<String>]| all.get(node).cloned().unwrap_or_default();
    Around {
        pre: hooks(&c.hooks.pre),
        post: hooks(&c.hooks.post),
        grants: c.nodes()[node].config.grants(),
        docs: docs(&c.nodes()[node]),
        layout: job.layout.clone(),
        record,
    }
}

/// The descriptions `persist_docs` asks to store (`relation: true`, `columns: true`).
fn docs(n: &crate::project::Node) -> Docs {
    let wants = |what: &str| {
        let persist = n.config.get("persist_docs");
        persist.and_then(|p| p.get(what)) == Some(&serde_json::Value::Bool(true))
    };
    let described = |d: &String| (!d.trim().is_empty()).then(|| d.clone());
    Docs {
        relation: described(&n.description).filter(|_| wants("relation")),
        columns: match wants("columns") {
            true => n
                .columns
                .iter()
                .filter_map(|c| Some((c.name.clone(), described(&c.description)?)))
                .collect(),
            false => Vec::new(),
        },
    }
}

/// Publishes an unaudited build, then runs the job's data tests on it.
fn publish_then_test(
    session: &mut dyn Session,
    c: &Compiled,
    job: &Job,
    staged: Staged,
    mut tests: Vec<TestResult>,
    log: &mut Vec<String>,
) -> Done {
    let published = session.publish(staged, log).map_err(|e| failure(job, e));
    if published.is_ok() {
        tests.extend(testing::run_data_tests(session, c, &job.tests, None, log));
    } else {
        tests.extend(skipped(job, "skipped: its model did not build"));
    }
    done(published.map(|s| s.rows), tests)
}

/// How a session stages the job's relation (again).
type Stage<'a> = dyn Fn(&mut dyn Session, &mut Vec<String>) -> DbResult<Staged> + 'a;

/// Runs the job's data tests on its staged relation, before anyone else can read it — a table
/// aside, or the build's open transaction, as the adapter staged it. A test that breaks inside
/// the open transaction takes the transaction with it (`lost`): the relation is staged again,
/// the tests run one by one to find the broken ones (staging again after each), and the others
/// run together on the last stage. Every test gets its own verdict, and a broken one keeps the
/// new rows out only when its severity says so.
fn audit_staged(
    session: &mut dyn Session,
    c: &Compiled,
    job: &Job,
    mut staged: Staged,
    stage: &Stage<'_>,
    log: &mut Vec<String>,
) -> DbResult<(Staged, Vec<TestResult>)> {
    let mut broken: Vec<TestResult> = Vec::new();
    loop {
        let pending = pending_tests(job, &broken);
        let results = run_tests(session, c, job, &staged, &pending, log);
        if results.iter().all(|r| !r.lost) {
            return Ok((staged, in_job_order(job, results, broken)));
        }
        let restaged = restage(session, staged, stage, log)?;
        let (now, alone, found) = tests_alone(session, c, job, (restaged, stage), &pending, log)?;
        staged = now;
        if found.is_empty() {
            // Nothing breaks alone: the verdicts of this one-by-one round stand.
            return Ok((staged, in_job_order(job, alone, broken)));
        }
        broken.extend(found);
    }
}

/// The verdicts of the job's tests, broken ones included, in the job's order.
fn in_job_order(
    job: &Job,
    mut results: Vec<TestResult>,
    broken: Vec<TestResult>,
) -> Vec<TestResult> {
    results.extend(broken);
    results.sort_by_key(|r| job.tests.iter().position(|&t| t == r.node));
    results
}

/// `tests` on the staged relation, in one round.
fn run_tests(
    session: &mut dyn Session,
    c: &Compiled,
    job: &Job,
    staged: &Staged,
    tests: &[usize],
    log: &mut Vec<String>,
) -> Vec<TestResult> {
    let swap = swap(c, job, staged);
    testing::run_data_tests(session, c, tests, swap.as_ref(), log)
}

/// Runs each of `tests` alone; one that loses the transaction is broken, and the relation is
/// staged again after it. Returns the last stage, the verdicts of the others and the broken.
fn tests_alone(
    session: &mut dyn Session,
    c: &Compiled,
    job: &Job,
    (mut staged, stage): (Staged, &Stage<'_>),
    tests: &[usize],
    log: &mut Vec<String>,
) -> DbResult<(Staged, Vec<TestResult>, Vec<TestResult>)> {
    let (mut passed, mut broken) = (Vec::new(), Vec::new());
    for &t in tests {
        let results = run_tests(session, c, job, &staged, &[t], log);
        if results.iter().any(|r| r.lost) {
            broken.extend(results);
            staged = restage(session, staged, stage, log)?;
        } else {
            passed.extend(results);
        }
    }
    Ok((staged, passed, broken))
}

/// The job's tests not found broken yet.
fn pending_tests(job: &Job, broken: &[TestResult]) -> Vec<usize> {
    job.tests
        .iter()
        .copied()
        .filter(|&t| !broken.iter().any(|b| b.node == t))
        .collect()
}

fn restage(
    session: &mut dyn Session,
    staged: Staged,
    stage: &Stage<'_>,
    log: &mut Vec<String>,
) -> DbResult<Staged> {
    session.discard(staged, log)?;
    stage(session, log)
}

/// Tests name the model's published relation; where the adapter staged it under another
/// name, they read that one instead.
fn swap(c: &Compiled, job: &Job, staged: &Staged) -> Option<Swap> {
    let published = job.relation.as_ref()?;
    (staged.readable_as != *published).then(|| Swap {
        published: c.relation_sql(job.node).unwrap_or_default(),
        staged: c.project.target.dialect().relation(&staged.readable_as),
        published_as: published.clone(),
        staged_as: staged.readable_as.clone(),
    })
}

/// Publishes an audited build whose blocking tests passed; else discards it, saying which
/// tests kept it back.
fn publish_if_passed(
    session: &mut dyn Session,
    c: &Compiled,
    job: &Job,
    staged: Staged,
    audited: &mut [TestResult],
    log: &mut Vec<String>,
) -> Result<Option<u64>, Failure> {
    let failed = blocking_failures(c, audited);
    if failed.is_empty() {
        return session
            .publish(staged, log)
            .map(|s| s.rows)
            .map_err(|e| failure(job, e));
    }
    let message = format!(
        "not published: {} did not pass on the new data; the previous version stays published",
        failed.join(", ")
    );
    let interrupted = audited.iter().any(|t| t.interrupted);
    if Some(&staged.readable_as) == job.relation.as_ref() {
        unstore_failures(c, audited);
    }
    match session.discard(staged, log) {
        Ok(()) => Err(Failure {
            message,
            interrupted,
        }),
        Err(e) => Err(failure(job, e)),
    }
}

/// Failing rows stored inside a build's transaction go with it when it is rolled back: the
/// tests that stored them say so.
fn unstore_failures(c: &Compiled, audited: &mut [TestResult]) {
    let stored = |t: &TestResult| {
        project::test_config(&c.nodes()[t.node]).is_ok_and(|cfg| cfg.store_failures)
    };
    for t in audited.iter_mut().filter(|t| t.rows.is_some() && stored(t)) {
        t.message = Some(
            "failing rows not stored: the new rows they were found in were rolled back".into(),
        );
    }
}

/// The tests (quoted names) whose failure keeps the build from being published.
fn blocking_failures(c: &Compiled, audited: &[TestResult]) -> Vec<String> {
    audited
        .iter()
        .filter(|t| t.blocking)
        .map(|t| format!("`{}`", c.nodes()[t.node].name))
        .collect()
}

fn done(built: Result<Option<u64>, Failure>, tests: Vec<TestResult>) -> Done {
    Done {
        built,
        batches: Vec::new(),
        tests,
    }
}

/// Whether an incremental model's table exists and is to be added to rather than rebuilt.
fn adds_to_existing(spec: &IncrementalSpec, replaces: Option<RelKind>) -> bool {
    replaces == Some(RelKind::Table) && !spec.run.full_refresh
}

/// The batches of a microbatch model's run on top of its table.
fn microbatches(job: &Job, replaces: Option<RelKind>) -> Option<Vec<(String, String)>> {
    let Action::Incremental(spec) = &job.action else {
        return None;
    };
    let StrategyKind::Microbatch(mb) = &spec.strategy else {
        return None;
    };
    adds_to_existing(spec, replaces).then(|| mb.batches(spec.run.window, spec.run.now))
}

/// What a build reads that the job does not hold: a seed's CSV (decoded when not UTF-8), a
/// microbatch model's SQL limited to its interval, the SQL of a model that renders against
/// the warehouse (and its incremental SQL).
enum Input {
    None,
    Csv(crate::adapter::CsvSource),
    Sql(String),
    Rendered(String, Option<String>),
}

fn input(
    c: &Compiled,
    (root, more): (&Path, MoreSessions<'_>),
    job: &Job,
    replaces: Option<RelKind>,
) -> Result<Input, Failure> {
    let fail = |message: String| Failure {
        message,
        interrupted: false,
    };
    if c.at_run[job.node] && !matches!(job.action, Action::Seed(_)) {
        let session = more().map_err(|e| fail(e.to_string()))?;
        let (sql, incremental) = rendered_at_run(c, job.node, session).map_err(fail)?;
        return Ok(Input::Rendered(sql, incremental));
    }
    Ok(match &job.action {
        Action::Seed(spec) => Input::Csv(seed::source(root, spec).map_err(fail)?),
        Action::Incremental(spec) if !adds_to_existing(spec, replaces) => match &spec.strategy {
            StrategyKind::Microbatch(mb) => {
                let (start, end) = mb.full_range(spec.run.window, spec.run.now);
                let sql = c.sql[job.node].as_deref().unwrap_or_default();
                let dialect = c.project.target.dialect();
                Input::Sql(dialect.time_range(sql, &mb.event_time, &start, Some(&end)))
            }
            _ => Input::None,
        },
        _ => Input::None,
    })
}

/// Node `i`'s SQL (and incremental SQL) rendered with its macros querying the warehouse
/// through `session`, for a node that needs it (`Compiled::at_run`).
pub(crate) fn rendered_at_run(
    c: &Compiled,
    i: usize,
    session: Box<dyn Session>,
) -> Result<(String, Option<String>), String> {
    let warehouse = Arc::new(SessionQuerier(Mutex::new(session)));
    (c.render_at_run(i, warehouse))
        .map_err(|d| format!("rendering it against the warehouse: {}", d.message))
}

/// The warehouse as a node's macros query it while it renders, on a session of its own.
struct SessionQuerier(Mutex<Box<dyn Session>>);

impl crate::template::Querier for SessionQuerier {
    fn query(&self, sql: &str) -> Result<crate::template::QueryRows, String> {
        let mut session = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let rows = session.query_typed(sql).map_err(|e| e.to_string())?;
        Ok((rows.columns, rows.rows, rows.types))
    }

    fn columns(&self, relation: &Relation) -> Result<Option<Vec<(String, String)>>, String> {
        let mut session = self.0.lock().unwrap_or_else(|e| e.into_inner());
        session.columns(relation).map_err(|e| e.to_string())
    }
}

/// The build a job's action asks for. An incremental model builds in full the first time and
/// with `--full-refresh` (a microbatch model from its `begin`), else adds its new rows.
fn what_to_build<'a>(
    c: &'a Compiled,
    job: &'a Job,
    replaces: Option<RelKind>,
    input: &'a Input,
) -> Build<'a> {
    let (sql, incremental_sql) = match input {
        Input::Rendered(sql, incremental) => (sql.as_str(), incremental.as_deref()),
        _ => (
            c.sql[job.node].as_deref().unwrap_or_default(),
            c.incremental_sql[job.node].as_deref(),
        ),
    };
    match (&job.action, input) {
        (_, Input::Csv(csv)) => Build::Seed(csv),
        (_, Input::Sql(sql)) => Build::Table(sql),
        (Action::View, _) => Build::View(sql),
        (Action::Incremental(spec), _) if adds_to_existing(spec, replaces) => {
            Build::Increment(Increment {
                sql: incremental_sql.unwrap_or(sql),
                strategy: spec.strategy(None),
                on_schema_change: spec.on_schema_change,
            })
        }
        (Action::Snapshot(spec), _) => Build::Snapshot(spec),
        _ => Build::Table(sql),
    }
}

/// A microbatch model's run: the first batch alone (it may change the table's columns), then
/// the others in parallel on up to `threads` sessions (one with `concurrent_batches: false`). Each batch is its own transaction —
/// delete its interval, insert its rows — so a failed batch leaves the others committed, and
/// re-running any interval gives the same table. The model's tests run once, after.
fn run_batches(
    session: &mut dyn Session,
    c: &Compiled,
    (job, around): (&Job, Around),
    batches: &[(String, String)],
    (more, threads): (MoreSessions<'_>, usize),
    mut tests: Vec<TestResult>,
    log: &mut Vec<String>,
) -> Done {
    let Action::Incremental(spec) = &job.action else {
        return done(Ok(None), tests);
    };
    let StrategyKind::Microbatch(mb) = &spec.strategy else {
        return done(Ok(None), tests);
    };
    let run = BatchRun {
        c,
        spec,
        event_time: &mb.event_time,
        base: increment_sql(c, job.node),
        relation: job
            .relation
            .as_ref()
            .expect("a building job has a relation"),
        around,
    };
    let mut results = Vec::with_capacity(batches.len());
    if let Some(first) = batches.first() {
        results.push(run.one(session, first, log));
    }
    let rest = &batches[batches.len().min(1)..];
    let threads = batch_threads(c, job, threads);
    results.extend(run.in_parallel(session, rest, (more, threads), log));
    let built = batches_built(session, c, job, &results, &mut tests, log);
    Done {
        built,
        batches: results,
        tests,
    }
}

/// The SQL of model `i`'s new rows: its incremental branch, or all of it.
fn increment_sql(c: &Compiled, i: usize) -> &str {
    c.incremental_sql[i]
        .as_deref()
        .or(c.sql[i].as_deref())
        .unwrap_or_default()
}

/// The sessions a microbatch model's batches may use: one with `concurrent_batches: false`
/// (dbt's switch), which runs them one after another.
/// Batches overwriting partitions of one table (Spark's) write one after the other: two
/// overwrites of one table at once may each clear the other's files.
fn batch_threads(c: &Compiled, job: &Job, threads: usize) -> usize {
    let concurrent = c.nodes()[job.node].config.get("concurrent_batches");
    let partitions = c.project.target.dialect().replaces() == crate::sql::Replaces::Partitions;
    match concurrent.and_then(|v| v.as_bool()) {
        Some(false) => 1,
        _ if partitions => 1,
        _ => threads,
    }
}

/// The batches run by parallel sessions, each with its index, and the statements they ran.
type Finished = Mutex<(Vec<(usize, BatchResult)>, Vec<String>)>;

/// What every batch of one microbatch model's run shares.
struct BatchRun<'a> {
    c: &'a Compiled,
    spec: &'a IncrementalSpec,
    event_time: &'a str,
    /// The model's SQL, before it is limited to a batch's interval.
    base: &'a str,
    relation: &'a Relation,
    around: Around,
}

impl BatchRun<'_> {
    /// Runs one batch in its own transaction: delete its interval, insert its rows.
    fn one(
        &self,
        s: &mut dyn Session,
        batch: &(String, String),
        log: &mut Vec<String>,
    ) -> BatchResult {
        let dialect = self.c.project.target.dialect();
        let sql = dialect.time_range(self.base, self.event_time, &batch.0, Some(&batch.1));
        let build = Build::Increment(Increment {
            sql: &sql,
            strategy: self.spec.strategy(Some(batch)),
            on_schema_change: self.spec.on_schema_change,
        });
        let result = s
            .stage(
                self.relation,
                build,
                Some(RelKind::Table),
                (false, &self.around),
                log,
            )
            .and_then(|staged| s.publish(staged, log));
        BatchResult {
            start: batch.0.clone(),
            end: batch.1.clone(),
            rows: result.as_ref().ok().and_then(|s| s.rows),
            interrupted: result.as_ref().err() == Some(&DbError::Interrupted),
            error: result.err().map(|e| e.to_string()),
        }
    }

    /// Runs `batches` on this session and up to `threads - 1` more opened with `more`; the
    /// results come back in the order of the batches.
    fn in_parallel(
        &self,
        session: &mut dyn Session,
        batches: &[(String, String)],
        (more, threads): (MoreSessions<'_>, usize),
        log: &mut Vec<String>,
    ) -> Vec<BatchResult> {
        let next = AtomicUsize::new(0);
        let finished: Finished = Mutex::new((Vec::new(), Vec::new()));
        let helpers = threads
            .saturating_sub(1)
            .min(batches.len().saturating_sub(1));
        std::thread::scope(|scope| {
            let work = |s: &mut dyn Session| self.take_turns(s, batches, &next, &finished);
            for _ in 0..helpers {
                if let Ok(mut s) = more() {
                    let helper = std::thread::Builder::new().stack_size(crate::STACK_SIZE);
                    let _ = helper.spawn_scoped(scope, move || work(s.as_mut()));
                }
            }
            work(session);
        });
        let (mut results, own_logs) = finished.into_inner().unwrap_or_else(|e| e.into_inner());
        results.sort_by_key(|(i, _)| *i);
        log.extend(own_logs);
        results.into_iter().map(|(_, r)| r).collect()
    }

    /// Runs the next batch nobody has taken, until none is left.
    fn take_turns(
        &self,
        s: &mut dyn Session,
        batches: &[(String, String)],
        next: &AtomicUsize,
        finished: &Finished,
    ) {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(batch) = batches.get(i) else { return };
            let mut own_log = Vec::new();
            let r = self.one(s, batch, &mut own_log);
            let mut out = finished.lock().unwrap_or_else(|e| e.into_inner());
            out.0.push((i, r));
            out.1.extend(own_log);
        }
    }
}

/// A microbatch model's build: its rows when every batch committed (then its tests run), else
/// how many batches failed and the first failure.
fn batches_built(
    session: &mut dyn Session,
    c: &Compiled,
    job: &Job,
    results: &[BatchResult],
    tests: &mut Vec<TestResult>,
    log: &mut Vec<String>,
) -> Result<Option<u64>, Failure> {
    let failed: Vec<&BatchResult> = results.iter().filter(|b| b.error.is_some()).collect();
    if failed.is_empty() {
        tests.extend(testing::run_data_tests(session, c, &job.tests, None, log));
        return Ok(Some(results.iter().filter_map(|b| b.rows).sum()));
    }
    tests.extend(skipped(job, "skipped: a batch of its model failed"));
    let interrupted = failed.iter().all(|b| b.interrupted);
    let first = failed[0];
    Err(Failure {
        message: format!(
            "{} of {} batches failed (the others are committed); first: [{}, {}): {}",
            failed.len(),
            results.len(),
            first.start,
            first.end,
            first.error.as_deref().unwrap_or("")
        ),
        interrupted,
    })
}

/// Whether a failure of test `t` keeps its model from being published.
fn blocks(c: &Compiled, t: usize) -> bool {
    let n = &c.nodes()[t];
    n.kind == NodeKind::UnitTest
        || project::test_config(n).is_ok_and(|cfg| cfg.severity == project::Severity::Error)
}

fn skipped(job: &Job, why: &str) -> Vec<TestResult> {
    job.tests
        .iter()
        .map(|&t| TestResult::skipped(t, why))
        .collect()
}

fn skip_tests(job: &Job, f: Failure, mut tests: Vec<TestResult>, why: &str) -> Done {
    tests.extend(skipped(job, why));
    done(Err(f), tests)
}

fn not_built(job: &Job, f: Failure, tests: Vec<TestResult>) -> Done {
    skip_tests(job, f, tests, "skipped: its model did not build")
}

fn failure(job: &Job, e: DbError) -> Failure {
    let message = match (&job.action, &e) {
        (
            Action::Seed(spec),
            DbError::BadRow {
                line,
                column,
                message,
            },
        ) => seed::bad_row_message(spec, *line, column.as_deref(), message),
        _ => e.to_string(),
    };
    Failure {
        message,
        interrupted: e == DbError::Interrupted,
    }
}

/// Gives each selected test (data or unit) to a job. A test runs in the job that builds the
/// node it tests when everything else it reads is upstream of that node (so it can audit the
/// new relation before it is published); otherwise, and for `xform test`, the tests of one node
/// share a test-only job, run after everything they read is built.
pub(crate) fn attach_tests(c: &Compiled, jobs: &mut Vec<Job>, tests: &[usize]) {
    let job_of: HashMap<usize, usize> = jobs
        .iter()
        .enumerate()
        .map(|(j, job)| (job.node, j))
        .collect();
    let mut test_job_of: HashMap<usize, usize> = HashMap::new();
    let position = c.graph.positions();
    for &t in tests {
        let owner = tested_node(c, t, &position);
        let j = if job_of.contains_key(&owner) && reads_upstream_only(c, t, owner) {
            job_of[&owner]
        } else {
            *test_job_of.entry(owner).or_insert_with(|| {
                jobs.push(Job::tests_of(c, owner));
                jobs.len() - 1
            })
        };
        match c.nodes()[t].kind {
            NodeKind::UnitTest => jobs[j].unit_tests.push(t),
            _ => jobs[j].tests.push(t),
        }
    }
    if jobs.iter().all(|j| !j.builds()) {
        merge_test_jobs(jobs);
    }
}

/// Whether everything test `t` reads besides `owner` is upstream of `owner`.
fn reads_upstream_only(c: &Compiled, t: usize, owner: usize) -> bool {
    let parents: Vec<usize> = c.graph.parents(t).filter(|&p| p != owner).collect();
    parents.is_empty() || {
        let upstream: HashSet<usize> = c.graph.walk(owner, true, None).into_iter().collect();
        parents.iter().all(|p| upstream.contains(p))
    }
}

/// With nothing built (`xform test`) no test waits for another, so the tests of several nodes
/// share one job and one counting query: each query costs DuckDB a round trip of its own.
fn merge_test_jobs(jobs: &mut Vec<Job>) {
    const TESTS_PER_JOB: usize = 32;
    let mut merged: Vec<Job> = Vec::new();
    for job in jobs.drain(..) {
        match merged.last_mut() {
            Some(last) if last.tests.len() + job.tests.len() <= TESTS_PER_JOB => {
                last.tests.extend(job.tests);
                last.unit_tests.extend(job.unit_tests);
            }
            _ => merged.push(job),
        }
    }
    *jobs = merged;
}

/// The node a test is about: the model (or seed, source) a generic or unit test is declared
/// on; for a singular test the last of what it reads; a test reading nothing is its own.
pub(crate) fn tested_node(c: &Compiled, t: usize, position: &[usize]) -> usize {
    let n = &c.nodes()[t];
    let declared_on = n
        .static_deps
        .first()
        .and_then(|dep| c.graph.parents(t).find(|&p| dep.names(&c.nodes()[p])));
    declared_on
        .or_else(|| c.graph.parents(t).max_by_key(|&p| position[p]))
        .unwrap_or(t)
}
