//! The runner: a ready-queue over the DAG. A node starts as soon as every node it reads has
//! finished (not level by level); N worker threads each hold their own warehouse session. A
//! failed node's descendants are skipped; `--fail-fast` and Ctrl-C stop scheduling and
//! interrupt what runs, and an interrupted build leaves the previous relation in place.
//! Progress goes out as events; printing is the caller's business.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::adapter::{DbError, RelKind, Relation, Session, Warehouse};
use crate::compile::Compiled;
use crate::materialize::reuse::{Decision, Reuse, Settled};
use crate::materialize::{self, BatchResult, Failure, Job};
use crate::project::NodeKind;
use crate::testing::{self, TestResult, TestStatus};

#[derive(Clone, Copy, Debug)]
pub(crate) struct RunOptions {
    pub(crate) threads: usize,
    pub(crate) fail_fast: bool,
    /// Reuse what has not changed since it was built (`--reuse`).
    pub(crate) reuse: bool,
}

/// Stops a run from another thread (a Ctrl-C handler): no new node starts and running
/// statements are interrupted.
#[derive(Clone)]
pub(crate) struct Stop {
    flag: Arc<AtomicBool>,
    warehouse: Arc<dyn Warehouse>,
}

impl Stop {
    pub(crate) fn new(warehouse: Arc<dyn Warehouse>) -> Stop {
        Stop {
            flag: Arc::default(),
            warehouse,
        }
    }

    pub(crate) fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.warehouse.interrupt();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Success,
    /// Not built: what is published is what building it would make (`--reuse`).
    Reused,
    Error,
    Skipped,
}

#[derive(Debug)]
pub(crate) struct NodeResult {
    /// Index into the run's jobs.
    pub(crate) job: usize,
    pub(crate) status: Status,
    pub(crate) rows: Option<u64>,
    pub(crate) started_at: SystemTime,
    pub(crate) seconds: f64,
    pub(crate) message: Option<String>,
    /// The statements executed, in order (empty when skipped).
    pub(crate) statements: Vec<String>,
    /// The job's unit and data tests.
    pub(crate) tests: Vec<TestResult>,
    /// A microbatch model's batches (empty for other jobs).
    pub(crate) batches: Vec<BatchResult>,
}

impl NodeResult {
    /// Whether the nodes that read this job's node must be skipped: it did not build, or an
    /// error-severity test of it failed.
    pub(crate) fn blocks_children(&self) -> bool {
        !self.done() || self.tests.iter().any(|t| t.blocking)
    }

    /// Whether the job's relation is published as it should be: built, or reused.
    pub(crate) fn done(&self) -> bool {
        matches!(self.status, Status::Success | Status::Reused)
    }

    /// Whether the build or a test failed (what makes the run exit 1).
    pub(crate) fn failed(&self) -> bool {
        self.status == Status::Error
            || self
                .tests
                .iter()
                .any(|t| matches!(t.status, TestStatus::Fail | TestStatus::Error))
    }
}

pub(crate) enum Event<'a> {
    /// Tables an earlier, killed run left behind, dropped before anything was built.
    LeftoversDropped(&'a [Relation]),
    Started(&'a Job),
    Finished(&'a Job, &'a NodeResult),
}

pub(crate) struct Outcome {
    /// In the order nodes finished.
    pub(crate) results: Vec<NodeResult>,
    /// Stopped from outside (Ctrl-C), not by `--fail-fast`.
    pub(crate) interrupted: bool,
    /// Why the project's `on_run_end` statements failed.
    pub(crate) run_end_failed: Option<String>,
    /// Why the tests that passed could not be recorded for `--reuse`.
    pub(crate) records_failed: Option<String>,
}

/// Everything a worker needs, shared read-only.
struct Ctx<'a> {
    compiled: &'a Compiled,
    root: &'a Path,
    jobs: &'a [Job],
    stop: &'a Stop,
    threads: usize,
    reuse: Option<&'a Reuse>,
    /// The relations in the warehouse when the run began, and their kinds (a test is reused
    /// only on one that is there).
    existing: &'a HashMap<Relation, RelKind>,
    /// Each node's place in the graph's order (which node a test tests).
    position: Vec<usize>,
}

/// Runs `jobs` (in dependency order) on the warehouse. Fails only when the warehouse cannot be
/// prepared (sessions, schemas); a failing node is a result, not an error.
pub(crate) fn run(
    compiled: &Compiled,
    root: &Path,
    jobs: &[Job],
    opts: RunOptions,
    stop: &Stop,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome, DbError> {
    let threads = opts.threads.clamp(1, jobs.len().max(1));
    stop.warehouse.share_cores(threads)?;
    let mut sessions = (0..threads)
        .map(|_| stop.warehouse.session())
        .collect::<Result<Vec<_>, _>>()?;
    let prepared = prepare(sessions[0].as_mut(), compiled, jobs).and_then(|(existing, left)| {
        // A run that builds reads and writes build records; `xform test` only with `--reuse`.
        let reuse = match jobs.iter().any(Job::builds) || opts.reuse {
            true => Reuse::prepare(sessions[0].as_mut(), compiled, (root, jobs), opts.reuse)?,
            false => None,
        };
        Ok((existing, left, reuse))
    });
    let (existing, leftovers, reuse) = match prepared {
        Ok(prepared) => prepared,
        // Ctrl-C before anything was built: the scheduler reports every job as not run.
        Err(DbError::Interrupted) if stop.is_stopped() => (HashMap::new(), Vec::new(), None),
        Err(e) => return Err(e),
    };
    if !leftovers.is_empty() {
        on_event(Event::LeftoversDropped(&leftovers));
    }
    let graph = JobGraph::new(compiled, jobs);
    let ctx = Ctx {
        compiled,
        root,
        jobs,
        stop,
        threads,
        reuse: reuse.as_ref(),
        existing: &existing,
        position: compiled.graph.positions(),
    };
    let mut scheduler = Scheduler::new(&graph, opts, stop, on_event);
    let mut outcome = run_workers(&ctx, sessions, &mut scheduler, &existing)?;
    // What follows on one connection (`on_run_end`, `--compare-to`) has every core again; a
    // setting that could not be restored costs only speed.
    stop.warehouse.share_cores(1).ok();
    if let Some(reuse) = &reuse {
        let recorded = record_tests(&ctx, reuse, &outcome.results);
        outcome.records_failed = recorded.err().map(|e| e.to_string());
    }
    if !outcome.interrupted {
        let end = &compiled.hooks.on_run_end;
        let ran = stop
            .warehouse
            .session()
            .and_then(|mut s| run_hooks(s.as_mut(), end));
        outcome.run_end_failed = ran.err().map(|e| e.to_string());
    }
    Ok(outcome)
}

/// The project's `on_run_start` or `on_run_end` statements, in order, each on its own.
fn run_hooks(session: &mut dyn Session, statements: &[String]) -> Result<(), DbError> {
    statements.iter().try_for_each(|sql| session.execute(sql))
}

/// Starts a worker thread per session and has `scheduler` hand them the jobs.
fn run_workers(
    ctx: &Ctx<'_>,
    sessions: Vec<Box<dyn Session>>,
    scheduler: &mut Scheduler<'_>,
    existing: &HashMap<Relation, RelKind>,
) -> Result<Outcome, DbError> {
    let (job_tx, job_rx) = channel::<(usize, Option<RelKind>)>();
    let (res_tx, res_rx) = channel::<NodeResult>();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|scope| {
        for session in sessions {
            let (ctx, job_rx, res_tx) = (ctx, &job_rx, res_tx.clone());
            let worker = std::thread::Builder::new().stack_size(crate::STACK_SIZE);
            worker
                .spawn_scoped(scope, move || work(ctx, session, job_rx, res_tx))
                .map_err(|e| DbError::Failed(format!("cannot start a worker thread: {e}")))?;
        }
        drop(res_tx);
        let outcome = scheduler.drive(ctx.jobs, existing, &job_tx, &res_rx);
        drop(job_tx);
        Ok(outcome)
    })
}

/// Drops what a killed run left behind, creates the schemas the jobs need and reads what
/// exists in them.
fn prepare(
    session: &mut dyn Session,
    c: &Compiled,
    jobs: &[Job],
) -> Result<(HashMap<Relation, RelKind>, Vec<Relation>), DbError> {
    let mut schemas: Vec<String> = jobs
        .iter()
        .filter(|j| j.builds())
        .filter_map(|j| Some(j.relation.as_ref()?.schema.clone()))
        .collect();
    if stores_failures(c, jobs) {
        schemas.push(testing::failures_schema(c));
    }
    schemas.sort();
    schemas.dedup();
    let leftovers = session.drop_leftovers(&schemas, &mut Vec::new())?;
    session.create_schemas(&schemas, &mut Vec::new())?;
    session.grant_schemas(&schema_grants(c, &schemas), &mut Vec::new())?;
    run_hooks(session, &c.hooks.on_run_start)
        .map_err(|e| DbError::Failed(format!("on_run_start failed: {e}")))?;
    // And where tests alone read: `xform test --reuse` reuses tests only on relations there.
    let tested = jobs.iter().filter(|j| !j.builds()).flat_map(|j| &j.tests);
    let read = tested.flat_map(|&t| c.reads(t));
    schemas.extend(read.filter_map(|p| Some(c.relations[p].as_ref()?.schema.clone())));
    schemas.sort();
    schemas.dedup();
    let existing = session.relations(&schemas)?.into_iter().collect();
    Ok((existing, leftovers))
}

/// The declared privileges of those of `schemas` the project's `schema_grants` names (by
/// their name in configs, before the target's prefix).
fn schema_grants(c: &Compiled, schemas: &[String]) -> Vec<crate::adapter::SchemaGrants> {
    let target = &c.project.target;
    c.project
        .schema_grants
        .iter()
        .map(|g| (target.schema_name(&g.schema), g.grants.clone()))
        .filter(|(schema, _)| schemas.contains(schema))
        .collect()
}

/// Whether a test of the jobs stores its failing rows.
fn stores_failures(c: &Compiled, jobs: &[Job]) -> bool {
    jobs.iter()
        .flat_map(|j| &j.tests)
        .any(|&t| crate::project::test_config(&c.nodes()[t]).is_ok_and(|cfg| cfg.store_failures))
}

fn work(
    ctx: &Ctx<'_>,
    mut session: Box<dyn Session>,
    jobs: &Mutex<Receiver<(usize, Option<RelKind>)>>,
    results: Sender<NodeResult>,
) {
    loop {
        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok((j, replaces)) = next else { return };
        let result = build_one(ctx, session.as_mut(), j, replaces);
        if results.send(result).is_err() {
            return;
        }
    }
}

fn build_one(
    ctx: &Ctx<'_>,
    session: &mut dyn Session,
    j: usize,
    replaces: Option<RelKind>,
) -> NodeResult {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    if ctx.stop.is_stopped() {
        return skipped(&ctx.jobs[j], j, INTERRUPTED.to_string());
    }
    let mut statements = Vec::new();
    let (c, job) = (ctx.compiled, &ctx.jobs[j]);
    let (done, status, message) = match ctx.reuse.map(|r| r.decide(c, job, replaces)) {
        Some(Decision::Reuse(why)) => {
            let tests = reused_tests(ctx, session, job, &mut statements);
            (tests, Status::Reused, Some(format!("reused: {why}")))
        }
        // Tests alone (`xform test --reuse`): what passed on a relation as it is now is not
        // run again.
        _ if !job.builds() && ctx.reuse.is_some_and(Reuse::decides) => {
            let tests = reused_tests(ctx, session, job, &mut statements);
            (tests, Status::Success, None)
        }
        decision => {
            let why = match decision {
                Some(Decision::Build(why)) => why,
                _ => None,
            };
            build_job(ctx, session, (job, replaces), why, &mut statements)
        }
    };
    if let Some(reuse) = ctx.reuse.filter(|_| job.builds()) {
        reuse.settle(c, job, settled(status));
    }
    NodeResult {
        job: j,
        status,
        rows: done.built.ok().flatten(),
        started_at,
        seconds: clock.elapsed().as_secs_f64(),
        message,
        statements,
        tests: done.tests,
        batches: done.batches,
    }
}

/// Builds a job (recording it when the warehouse keeps records): what it did, its status and
/// message — on success, why it was built rather than reused.
fn build_job(
    ctx: &Ctx<'_>,
    session: &mut dyn Session,
    (job, replaces): (&Job, Option<RelKind>),
    why: Option<String>,
    log: &mut Vec<String>,
) -> (materialize::Done, Status, Option<String>) {
    let c = ctx.compiled;
    let more: &materialize::More<'_> = &|| ctx.stop.warehouse.session();
    let record = ctx.reuse.and_then(|r| r.record(c, job));
    let run = ((job, replaces), (more, ctx.threads), record);
    let mut done = materialize::run(session, c, ctx.root, run, log);
    let (status, rows, message) = status_of(done.built);
    done.built = Ok(rows);
    let why = why.filter(|_| status == Status::Success);
    (done, status, message.or(why.map(|w| format!("built: {w}"))))
}

fn settled(status: Status) -> Settled {
    match status {
        Status::Reused => Settled::Reused,
        Status::Success => Settled::Built,
        _ => Settled::Failed,
    }
}

/// The tests of a reused or test-only job: those that passed on their relation as it is are
/// reused, the others (and its unit tests) run on the published relation.
fn reused_tests(
    ctx: &Ctx<'_>,
    session: &mut dyn Session,
    job: &Job,
    log: &mut Vec<String>,
) -> materialize::Done {
    let (c, reuse) = (ctx.compiled, ctx.reuse.expect("a reused job has a reuse"));
    let (reused, pending): (Vec<usize>, Vec<usize>) = job.tests.iter().partition(|&&t| {
        let tested = tested_relation(ctx, t).filter(|r| ctx.existing.contains_key(*r));
        tested.is_some_and(|r| reuse.test_passed(c, r, t))
    });
    let tested = Job {
        tests: pending,
        unit_tests: job.unit_tests.clone(),
        ..Job::tests_of(c, job.node)
    };
    let more: &materialize::More<'_> = &|| ctx.stop.warehouse.session();
    let run = ((&tested, None), (more, ctx.threads), None);
    let mut done = materialize::run(session, c, ctx.root, run, log);
    done.tests
        .extend(reused.into_iter().map(TestResult::reused));
    done.tests
        .sort_by_key(|r| job.tests.iter().position(|&t| t == r.node));
    done
}

/// Records, for every relation built, reused or tested, the keys of the tests that passed on
/// it, for the next run to reuse; relations whose tests were all reused keep their record.
fn record_tests(ctx: &Ctx<'_>, reuse: &Reuse, results: &[NodeResult]) -> Result<(), DbError> {
    let c = ctx.compiled;
    let mut recorded: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tested: BTreeMap<&Relation, Vec<String>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.done()) {
        let job = &ctx.jobs[r.job];
        let passed = (r.tests.iter())
            .filter(|t| matches!(t.status, TestStatus::Pass | TestStatus::Reused))
            .filter(|t| job.builds() || t.status == TestStatus::Pass);
        if !job.builds() {
            // Tests alone: each on the relation it tests, with the passes recorded on it.
            for t in passed {
                let (Some(relation), Some(key)) =
                    (tested_relation(ctx, t.node), reuse.test_key(c, t.node))
                else {
                    continue;
                };
                tested.entry(relation).or_default().push(key);
            }
            continue;
        }
        let Some(relation) = job.relation.as_ref() else {
            continue;
        };
        if r.tests.iter().all(|t| t.status == TestStatus::Reused) && r.status == Status::Reused {
            continue;
        }
        let passed: Vec<String> = passed.filter_map(|t| reuse.test_key(c, t.node)).collect();
        if passed.is_empty() && r.status == Status::Success {
            continue; // recorded with none
        }
        recorded.insert(relation.to_string(), passed);
    }
    for (relation, keys) in tested {
        // With what its build recorded in this run, else what was recorded before (a key
        // names the data versions it ran on: one of another build never matches).
        let all =
            (recorded.entry(relation.to_string())).or_insert_with(|| reuse.tests_passed(relation));
        all.extend(keys);
        all.sort_unstable();
        all.dedup();
    }
    if recorded.is_empty() {
        return Ok(());
    }
    let recorded: Vec<(String, String)> = (recorded.into_iter())
        .map(|(r, keys)| (r, serde_json::to_string(&keys).unwrap_or_default()))
        .collect();
    let mut session = ctx.stop.warehouse.session()?;
    session.record_tests(&reuse.table, &recorded, &mut Vec::new())
}

/// The relation test `t` tests.
fn tested_relation<'c>(ctx: &Ctx<'c>, t: usize) -> Option<&'c Relation> {
    let owner = materialize::tested_node(ctx.compiled, t, &ctx.position);
    ctx.compiled.relations[owner].as_ref()
}

/// A build's status, rows and message.
fn status_of(built: Result<Option<u64>, Failure>) -> (Status, Option<u64>, Option<String>) {
    match built {
        Ok(rows) => (Status::Success, rows, None),
        Err(f) if f.interrupted => (Status::Skipped, None, Some(INTERRUPTED.to_string())),
        Err(f) => (Status::Error, None, Some(f.message)),
    }
}

const INTERRUPTED: &str = "interrupted; the previous version is kept";

/// Which jobs wait for which: a job waits for the build jobs of what it and its tests read,
/// looking through ephemeral models (inlined, so their parents are what the SQL reads). A
/// source whose table a job of the run builds (a seed loading it, as dbt projects do with
/// `load_source_data`) is read after that job, unless waiting for it would close a cycle.
struct JobGraph {
    parents: Vec<usize>,
    children: Vec<Vec<usize>>,
}

impl JobGraph {
    fn new(c: &Compiled, jobs: &[Job]) -> JobGraph {
        let mut job_of = vec![None; c.nodes().len()];
        for (j, job) in jobs.iter().enumerate().filter(|(_, job)| job.builds()) {
            job_of[job.node] = Some(j);
        }
        let loaded = loaded_sources(c, &job_of);
        let mut g = JobGraph {
            parents: vec![0; jobs.len()],
            children: vec![Vec::new(); jobs.len()],
        };
        let mut through_sources = Vec::new();
        for (j, job) in jobs.iter().enumerate() {
            let read = reads(c, job);
            let mut waits: Vec<usize> = read.iter().filter_map(|&p| job_of[p]).collect();
            waits.sort_unstable();
            waits.dedup();
            waits.iter().for_each(|&pj| g.add(pj, j));
            let loaders = read.iter().filter_map(|p| loaded.get(p).copied());
            through_sources.extend(loaders.filter(|pj| !waits.contains(pj)).map(|pj| (pj, j)));
        }
        through_sources.sort_unstable();
        through_sources.dedup();
        for (pj, j) in through_sources {
            if !g.reaches(j, pj) {
                g.add(pj, j);
            }
        }
        g
    }

    fn add(&mut self, parent: usize, child: usize) {
        self.parents[child] += 1;
        self.children[parent].push(child);
    }

    /// Whether job `to` waits, through any chain, for job `from` (or is it). A job that waits
    /// for nothing (a seed) is reached only from itself, without a walk.
    fn reaches(&self, from: usize, to: usize) -> bool {
        if self.parents[to] == 0 {
            return from == to;
        }
        let mut seen = vec![false; self.parents.len()];
        let mut stack = vec![from];
        while let Some(j) = stack.pop() {
            if j == to {
                return true;
            }
            if !std::mem::replace(&mut seen[j], true) {
                stack.extend(&self.children[j]);
            }
        }
        false
    }
}

/// Each source node whose relation a build job of the run makes, with that job.
fn loaded_sources(c: &Compiled, job_of: &[Option<usize>]) -> HashMap<usize, usize> {
    let built: HashMap<&Relation, usize> = (0..c.nodes().len())
        .filter_map(|i| Some((c.relations[i].as_ref()?, job_of[i]?)))
        .collect();
    (c.nodes().iter().enumerate())
        .filter(|(_, n)| n.kind == NodeKind::Source)
        .filter_map(|(i, _)| Some((i, *built.get(c.relations[i].as_ref()?)?)))
        .collect()
}

/// The nodes a job's build and tests read (besides the node it builds), once each.
fn reads(c: &Compiled, job: &Job) -> Vec<usize> {
    let own = job.builds().then_some(job.node);
    let mut reads: Vec<usize> = own
        .into_iter()
        .chain(job.tests.iter().copied())
        .chain(job.unit_tests.iter().copied())
        .flat_map(|r| c.reads(r))
        .filter(|&p| own != Some(p))
        .collect();
    reads.sort_unstable();
    reads.dedup();
    reads
}

struct Scheduler<'a> {
    graph: &'a JobGraph,
    opts: RunOptions,
    stop: &'a Stop,
    on_event: &'a mut dyn FnMut(Event<'_>),
    waiting: Vec<usize>,
    finished: Vec<bool>,
    results: Vec<NodeResult>,
    failed_fast: bool,
}

impl<'a> Scheduler<'a> {
    fn new(
        graph: &'a JobGraph,
        opts: RunOptions,
        stop: &'a Stop,
        on_event: &'a mut dyn FnMut(Event<'_>),
    ) -> Self {
        Scheduler {
            waiting: graph.parents.clone(),
            finished: vec![false; graph.parents.len()],
            graph,
            opts,
            stop,
            on_event,
            results: Vec::new(),
            failed_fast: false,
        }
    }

    fn drive(
        &mut self,
        jobs: &[Job],
        existing: &HashMap<Relation, RelKind>,
        send: &Sender<(usize, Option<RelKind>)>,
        receive: &Receiver<NodeResult>,
    ) -> Outcome {
        let mut ready: VecDeque<usize> =
            (0..jobs.len()).filter(|&j| self.waiting[j] == 0).collect();
        let mut running = 0;
        let mut stopping = false;
        loop {
            if !stopping {
                running += self.start(jobs, existing, send, &mut ready);
            }
            if running == 0 {
                break;
            }
            let Some(result) = self.next_result(receive) else {
                break;
            };
            running -= 1;
            if result.failed() && self.opts.fail_fast && !stopping {
                self.failed_fast = true;
                self.stop.stop();
            }
            stopping |= self.stop.is_stopped();
            self.settle(jobs, result, &mut ready);
        }
        self.skip_unfinished(jobs);
        Outcome {
            results: std::mem::take(&mut self.results),
            interrupted: stopping && !self.failed_fast,
            run_end_failed: None,
            records_failed: None,
        }
    }

    /// Hands the ready jobs to the workers; returns how many it handed.
    fn start(
        &mut self,
        jobs: &[Job],
        existing: &HashMap<Relation, RelKind>,
        send: &Sender<(usize, Option<RelKind>)>,
        ready: &mut VecDeque<usize>,
    ) -> usize {
        let mut started = 0;
        while let Some(j) = ready.pop_front() {
            (self.on_event)(Event::Started(&jobs[j]));
            let replaces = jobs[j].relation.as_ref().and_then(|r| existing.get(r));
            if send.send((j, replaces.copied())).is_err() {
                break;
            }
            started += 1;
        }
        started
    }

    /// Records a job's result; its children become ready, or are skipped when it did not build
    /// (or, for builds, when its tests failed).
    fn settle(&mut self, jobs: &[Job], result: NodeResult, ready: &mut VecDeque<usize>) {
        let j = result.job;
        if result.done() {
            let skip = self.release_children(jobs, j, result.blocks_children(), ready);
            self.finish(jobs, result);
            self.skip_descendants(jobs, j, skip, "failed its tests");
        } else {
            self.finish(jobs, result);
            let children = self.graph.children[j].clone();
            self.skip_descendants(jobs, j, children, "did not build");
        }
    }

    /// Counts job `j` as done for each of its children, queueing those it leaves waiting for
    /// nothing; returns the builds to skip instead when `blocked`.
    fn release_children(
        &mut self,
        jobs: &[Job],
        j: usize,
        blocked: bool,
        ready: &mut VecDeque<usize>,
    ) -> Vec<usize> {
        // Failed tests block the builds that read this node, not other tests of it.
        let mut skip = Vec::new();
        for &child in &self.graph.children[j] {
            if blocked && jobs[child].builds() {
                skip.push(child);
                continue;
            }
            self.waiting[child] -= 1;
            if self.waiting[child] == 0 && !self.finished[child] {
                ready.push_back(child);
            }
        }
        skip
    }

    /// Every job not finished when the run stops: skipped, saying why.
    fn skip_unfinished(&mut self, jobs: &[Job]) {
        let reason = self.unfinished_reason();
        for j in 0..jobs.len() {
            if !self.finished[j] {
                self.finish(jobs, skipped(&jobs[j], j, reason.to_string()));
            }
        }
    }

    fn unfinished_reason(&self) -> &'static str {
        if self.failed_fast {
            "not run: --fail-fast stopped the run"
        } else {
            "not run: the run was interrupted"
        }
    }

    /// Waits for a worker's result. Once stopped, interrupts again every 100 ms: a statement
    /// that began just after the first interrupt would otherwise run to its end.
    fn next_result(&self, receive: &Receiver<NodeResult>) -> Option<NodeResult> {
        loop {
            match receive.recv_timeout(Duration::from_millis(100)) {
                Ok(result) => return Some(result),
                Err(RecvTimeoutError::Timeout) if self.stop.is_stopped() => {
                    self.stop.warehouse.interrupt()
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn finish(&mut self, jobs: &[Job], result: NodeResult) {
        self.finished[result.job] = true;
        (self.on_event)(Event::Finished(&jobs[result.job], &result));
        self.results.push(result);
    }

    /// Skips `from` and everything downstream of them, because job `j` failed.
    fn skip_descendants(&mut self, jobs: &[Job], j: usize, from: Vec<usize>, why: &str) {
        let upstream = jobs[j].relation.as_ref().map(ToString::to_string);
        let message = format!("skipped: upstream {} {why}", upstream.unwrap_or_default());
        let mut stack = from;
        while let Some(j) = stack.pop() {
            if self.finished[j] {
                continue;
            }
            self.finish(jobs, skipped(&jobs[j], j, message.clone()));
            stack.extend(&self.graph.children[j]);
        }
    }
}

/// A job that did not run, and its tests with it.
fn skipped(job: &Job, index: usize, message: String) -> NodeResult {
    let tests = job
        .unit_tests
        .iter()
        .chain(&job.tests)
        .map(|&t| TestResult::skipped(t, &message))
        .collect();
    NodeResult {
        job: index,
        status: Status::Skipped,
        rows: None,
        started_at: SystemTime::now(),
        seconds: 0.0,
        message: Some(message),
        statements: Vec::new(),
        tests,
        batches: Vec::new(),
    }
}
