//! What building a node means: a seed becomes a table loaded from its CSV, a model a view or a
//! table from its compiled SQL; an ephemeral model is nothing (it lives inlined in its
//! children). Every build is staged and then published through the adapter, so the previous
//! relation stays in place until the new one is complete. No SQL is written here.

pub mod seed;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::adapter::{Build, DbError, RelKind, Relation, Session, Staged};
use crate::compile::Compiled;
use crate::diagnostics::Diagnostic;
use crate::project::NodeKind;
use crate::testing::{self, Swap, TestResult};

/// How a node is built.
#[derive(Clone, Debug)]
pub enum Action {
    Seed(seed::SeedSpec),
    View,
    Table,
    /// Nothing is built: the job runs tests against what is published.
    Test,
}

impl Action {
    pub fn label(&self) -> &'static str {
        match self {
            Action::Seed(_) => "seed",
            Action::View => "view",
            Action::Table => "table",
            Action::Test => "test",
        }
    }
}

/// One unit of work: a node to build (or, for `Action::Test`, the node whose tests run), its
/// unit tests (run first: a failure means it is not built) and its data tests (run after the
/// build — before publishing when `audit` is set).
#[derive(Clone, Debug)]
pub struct Job {
    pub node: usize,
    pub relation: Option<Relation>,
    pub action: Action,
    pub audit: bool,
    pub tests: Vec<usize>,
    pub unit_tests: Vec<usize>,
}

impl Job {
    /// A job that only tests: `node` is the tested node (or the test itself).
    pub fn tests_of(c: &Compiled, node: usize) -> Job {
        Job {
            node,
            relation: c.relations.get(node).cloned().flatten(),
            action: Action::Test,
            audit: false,
            tests: Vec::new(),
            unit_tests: Vec::new(),
        }
    }

    pub fn builds(&self) -> bool {
        !matches!(self.action, Action::Test)
    }

    /// What output lines call this job: its relation, or the node's name.
    pub fn label(&self, c: &Compiled) -> String {
        match &self.relation {
            Some(r) => r.to_string(),
            None => c.nodes()[self.node].name.clone(),
        }
    }
}

/// The job that builds node `i`, if building it does anything. Settings that cannot work (a
/// seed's unknown encoding) are diagnostics, found before anything runs.
pub fn plan(c: &Compiled, i: usize) -> Result<Option<Job>, Vec<Diagnostic>> {
    let n = &c.nodes()[i];
    let Some(relation) = c.relations[i].clone() else {
        return Ok(None);
    };
    let action = match n.kind {
        NodeKind::Seed => Action::Seed(seed::spec(n)?),
        NodeKind::Model => match n.config.materialized() {
            "view" => Action::View,
            // Incremental strategies are not implemented yet: such models are rebuilt in full.
            "table" | "incremental" => Action::Table,
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let audit = matches!(action, Action::Table)
        && n.config.get("audit").and_then(|v| v.as_bool()) != Some(false);
    Ok(Some(Job {
        node: i,
        relation: Some(relation),
        action,
        audit,
        tests: Vec::new(),
        unit_tests: Vec::new(),
    }))
}

/// A build that failed: what the user reads.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub interrupted: bool,
}

/// What a job did: the build's rows or failure, and every test's result.
pub struct Done {
    pub built: Result<Option<u64>, Failure>,
    pub tests: Vec<TestResult>,
}

/// Runs a job: unit tests, the build (staged, audited by its data tests when the job says so,
/// then published or discarded), data tests. `replaces` is what exists under the relation's
/// name now. Every statement that changes the warehouse is appended to `log`.
pub fn run(
    session: &mut dyn Session,
    c: &Compiled,
    root: &Path,
    (job, replaces): (&Job, Option<RelKind>),
    log: &mut Vec<String>,
) -> Done {
    let mut tests: Vec<TestResult> = job
        .unit_tests
        .iter()
        .map(|&u| testing::unit::run(session, c, u))
        .collect();
    if let Some(failed) = tests.iter().find(|t| t.blocking) {
        let failure = Failure {
            message: format!(
                "not built: unit test `{}` failed",
                c.nodes()[failed.node].name
            ),
            interrupted: failed.interrupted,
        };
        return skip_tests(
            job,
            failure,
            tests,
            "skipped: a unit test of its model failed",
        );
    }
    if !job.builds() {
        tests.extend(testing::run_data_tests(session, c, &job.tests, None, log));
        return Done {
            built: Ok(None),
            tests,
        };
    }
    let audit = job.audit && job.tests.iter().any(|&t| blocks(c, t));
    let staged = match stage(session, c, root, (job, replaces), audit, log) {
        Ok(s) => s,
        Err(f) => return skip_tests(job, f, tests, "skipped: its model did not build"),
    };
    if !audit {
        let published = session.publish(staged, log).map_err(|e| failure(job, e));
        if published.is_ok() {
            tests.extend(testing::run_data_tests(session, c, &job.tests, None, log));
        } else {
            tests.extend(skipped(job, "skipped: its model did not build"));
        }
        return Done {
            built: published.map(|s| s.rows),
            tests,
        };
    }
    let swap = Swap {
        published: c.relation_sql(job.node).unwrap_or_default(),
        staged: c
            .project
            .target
            .kind
            .relation(&staged.readable_as.schema, &staged.readable_as.name),
    };
    let audited = testing::run_data_tests(session, c, &job.tests, Some(&swap), log);
    let failed: Vec<&str> = audited
        .iter()
        .filter(|t| t.blocking)
        .map(|t| c.nodes()[t.node].name.as_str())
        .collect();
    let built = if failed.is_empty() {
        session
            .publish(staged, log)
            .map(|s| s.rows)
            .map_err(|e| failure(job, e))
    } else {
        let message = format!(
            "not published: {} did not pass on the new data; the previous version stays published",
            failed
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let interrupted = audited.iter().any(|t| t.interrupted);
        match session.discard(staged, log) {
            Ok(()) => Err(Failure {
                message,
                interrupted,
            }),
            Err(e) => Err(failure(job, e)),
        }
    };
    tests.extend(audited);
    Done { built, tests }
}

/// Whether a failure of test `t` keeps its model from being published.
fn blocks(c: &Compiled, t: usize) -> bool {
    let n = &c.nodes()[t];
    n.kind == NodeKind::UnitTest
        || testing::config(n).is_ok_and(|cfg| cfg.severity == testing::Severity::Error)
}

fn skipped(job: &Job, why: &str) -> Vec<TestResult> {
    job.tests
        .iter()
        .map(|&t| TestResult::skipped(t, why))
        .collect()
}

fn skip_tests(job: &Job, f: Failure, mut tests: Vec<TestResult>, why: &str) -> Done {
    tests.extend(skipped(job, why));
    Done {
        built: Err(f),
        tests,
    }
}

/// Builds a job's relation in an open transaction (aside when audited).
fn stage(
    session: &mut dyn Session,
    c: &Compiled,
    root: &Path,
    (job, replaces): (&Job, Option<RelKind>),
    aside: bool,
    log: &mut Vec<String>,
) -> Result<Staged, Failure> {
    let sql = c.sql[job.node].as_deref().unwrap_or_default();
    let nothing = || Failure {
        message: "nothing to build".into(),
        interrupted: false,
    };
    let relation = job.relation.as_ref().ok_or_else(nothing)?;
    let csv;
    let what = match &job.action {
        Action::View => Build::View(sql),
        Action::Table => Build::Table(sql),
        Action::Seed(spec) => {
            csv = seed::source(root, spec).map_err(|message| Failure {
                message,
                interrupted: false,
            })?;
            Build::Seed(&csv)
        }
        Action::Test => return Err(nothing()),
    };
    session
        .stage(relation, what, replaces, aside, log)
        .map_err(|e| failure(job, e))
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
pub fn attach_tests(c: &Compiled, jobs: &mut Vec<Job>, tests: &[usize]) {
    let job_of: HashMap<usize, usize> = jobs
        .iter()
        .enumerate()
        .map(|(j, job)| (job.node, j))
        .collect();
    let mut test_job_of: HashMap<usize, usize> = HashMap::new();
    let position = c.graph.positions();
    for &t in tests {
        let owner = tested_node(c, t, &position);
        let parents: Vec<usize> = c.graph.parents(t).filter(|&p| p != owner).collect();
        let attachable = job_of.contains_key(&owner)
            && (parents.is_empty() || {
                let upstream: HashSet<usize> =
                    c.graph.walk(owner, true, None).into_iter().collect();
                parents.iter().all(|p| upstream.contains(p))
            });
        let j = if attachable {
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
pub fn tested_node(c: &Compiled, t: usize, position: &[usize]) -> usize {
    let n = &c.nodes()[t];
    let declared_on = n
        .static_deps
        .first()
        .and_then(|dep| c.graph.parents(t).find(|&p| dep.names(&c.nodes()[p])));
    declared_on
        .or_else(|| c.graph.parents(t).max_by_key(|&p| position[p]))
        .unwrap_or(t)
}
