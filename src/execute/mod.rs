//! The runner: a ready-queue over the DAG. A node starts as soon as every node it reads has
//! finished (not level by level); N worker threads each hold their own warehouse session. A
//! failed node's descendants are skipped; `--fail-fast` and Ctrl-C stop scheduling and
//! interrupt what runs, and an interrupted build leaves the previous relation in place.
//! Progress goes out as events; printing is the caller's business.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::adapter::{DbError, RelKind, Relation, Session, Warehouse};
use crate::compile::Compiled;
use crate::materialize::{self, Job};
use crate::project::NodeKind;

#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    pub threads: usize,
    pub fail_fast: bool,
}

/// Stops a run from another thread (a Ctrl-C handler): no new node starts and running
/// statements are interrupted.
#[derive(Clone)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    warehouse: Arc<dyn Warehouse>,
}

impl Stop {
    pub fn new(warehouse: Arc<dyn Warehouse>) -> Stop {
        Stop {
            flag: Arc::default(),
            warehouse,
        }
    }

    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.warehouse.interrupt();
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Error,
    Skipped,
}

#[derive(Debug)]
pub struct NodeResult {
    /// Index into the run's jobs.
    pub job: usize,
    pub status: Status,
    pub rows: Option<u64>,
    pub started_at: SystemTime,
    pub seconds: f64,
    pub message: Option<String>,
    /// The statements executed, in order (empty when skipped).
    pub statements: Vec<String>,
}

pub enum Event<'a> {
    Started(&'a Job),
    Finished(&'a Job, &'a NodeResult),
}

pub struct Outcome {
    /// In the order nodes finished.
    pub results: Vec<NodeResult>,
    /// Stopped from outside (Ctrl-C), not by `--fail-fast`.
    pub interrupted: bool,
}

/// Everything a worker needs, shared read-only.
struct Ctx<'a> {
    compiled: &'a Compiled,
    root: &'a Path,
    jobs: &'a [Job],
    stop: &'a Stop,
}

/// Runs `jobs` (in dependency order) on the warehouse. Fails only when the warehouse cannot be
/// prepared (sessions, schemas); a failing node is a result, not an error.
pub fn run(
    compiled: &Compiled,
    root: &Path,
    jobs: &[Job],
    opts: RunOptions,
    stop: &Stop,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome, DbError> {
    let threads = opts.threads.clamp(1, jobs.len().max(1));
    let mut sessions = (0..threads)
        .map(|_| stop.warehouse.session())
        .collect::<Result<Vec<_>, _>>()?;
    let existing = prepare(sessions[0].as_mut(), jobs)?;
    let graph = JobGraph::new(compiled, jobs);
    let ctx = Ctx {
        compiled,
        root,
        jobs,
        stop,
    };
    let (job_tx, job_rx) = channel::<(usize, Option<RelKind>)>();
    let (res_tx, res_rx) = channel::<NodeResult>();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|scope| {
        for session in sessions {
            let (ctx, job_rx, res_tx) = (&ctx, &job_rx, res_tx.clone());
            scope.spawn(move || work(ctx, session, job_rx, res_tx));
        }
        drop(res_tx);
        let mut s = Scheduler::new(&graph, opts, stop, on_event);
        let outcome = s.drive(jobs, &existing, &job_tx, &res_rx);
        drop(job_tx);
        Ok(outcome)
    })
}

/// Creates the schemas the jobs need and reads what exists in them.
fn prepare(session: &mut dyn Session, jobs: &[Job]) -> Result<HashMap<Relation, RelKind>, DbError> {
    let mut schemas: Vec<String> = jobs.iter().map(|j| j.relation.schema.clone()).collect();
    schemas.sort();
    schemas.dedup();
    session.create_schemas(&schemas, &mut Vec::new())?;
    Ok(session.relations(&schemas)?.into_iter().collect())
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
    let mut statements = Vec::new();
    let built = if ctx.stop.is_stopped() {
        Err(None)
    } else {
        let job = (&ctx.jobs[j], replaces);
        materialize::build(session, ctx.compiled, ctx.root, job, &mut statements)
            .map_err(|f| (!f.interrupted).then_some(f.message))
    };
    let (status, rows, message) = match built {
        Ok(staged) => (Status::Success, staged.rows, None),
        Err(Some(message)) => (Status::Error, None, Some(message)),
        Err(None) => (
            Status::Skipped,
            None,
            Some("interrupted; the previous version is kept".to_string()),
        ),
    };
    NodeResult {
        job: j,
        status,
        rows,
        started_at,
        seconds: clock.elapsed().as_secs_f64(),
        message,
        statements,
    }
}

/// Which jobs wait for which: a job's parents are the jobs it reads, looking through ephemeral
/// models (inlined, so their parents are what the SQL reads).
struct JobGraph {
    parents: Vec<usize>,
    children: Vec<Vec<usize>>,
}

impl JobGraph {
    fn new(c: &Compiled, jobs: &[Job]) -> JobGraph {
        let mut job_of = vec![None; c.nodes().len()];
        for (j, job) in jobs.iter().enumerate() {
            job_of[job.node] = Some(j);
        }
        let mut parents = vec![0; jobs.len()];
        let mut children = vec![Vec::new(); jobs.len()];
        for (j, job) in jobs.iter().enumerate() {
            let mut seen = std::collections::HashSet::new();
            let mut stack: Vec<usize> = c.graph.parents(job.node).collect();
            while let Some(p) = stack.pop() {
                if !seen.insert(p) {
                    continue;
                }
                match job_of[p] {
                    Some(pj) => {
                        parents[j] += 1;
                        children[pj].push(j);
                    }
                    None if is_ephemeral(c, p) => stack.extend(c.graph.parents(p)),
                    None => {}
                }
            }
        }
        JobGraph { parents, children }
    }
}

fn is_ephemeral(c: &Compiled, i: usize) -> bool {
    c.nodes()[i].kind == NodeKind::Model && c.relations[i].is_none()
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
            while !stopping && let Some(j) = ready.pop_front() {
                (self.on_event)(Event::Started(&jobs[j]));
                if send
                    .send((j, existing.get(&jobs[j].relation).copied()))
                    .is_err()
                {
                    break;
                }
                running += 1;
            }
            if running == 0 {
                break;
            }
            let Some(result) = self.next_result(receive) else {
                break;
            };
            running -= 1;
            let j = result.job;
            if result.status == Status::Error && self.opts.fail_fast && !stopping {
                self.failed_fast = true;
                self.stop.stop();
            }
            stopping |= self.stop.is_stopped();
            if result.status == Status::Success {
                for &child in &self.graph.children[j] {
                    self.waiting[child] -= 1;
                    if self.waiting[child] == 0 && !self.finished[child] {
                        ready.push_back(child);
                    }
                }
                self.finish(jobs, result);
            } else {
                self.finish(jobs, result);
                self.skip_descendants(jobs, j);
            }
        }
        let reason = if self.failed_fast {
            "not run: --fail-fast stopped the run"
        } else {
            "not run: the run was interrupted"
        };
        for j in 0..jobs.len() {
            if !self.finished[j] {
                self.finish(jobs, skipped(j, reason.to_string()));
            }
        }
        Outcome {
            results: std::mem::take(&mut self.results),
            interrupted: stopping && !self.failed_fast,
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

    fn skip_descendants(&mut self, jobs: &[Job], failed: usize) {
        let name = &jobs[failed].relation;
        let mut stack = self.graph.children[failed].clone();
        while let Some(j) = stack.pop() {
            if self.finished[j] {
                continue;
            }
            self.finish(
                jobs,
                skipped(j, format!("skipped: upstream {name} did not build")),
            );
            stack.extend(&self.graph.children[j]);
        }
    }
}

fn skipped(job: usize, message: String) -> NodeResult {
    NodeResult {
        job,
        status: Status::Skipped,
        rows: None,
        started_at: SystemTime::now(),
        seconds: 0.0,
        message: Some(message),
        statements: Vec::new(),
    }
}
