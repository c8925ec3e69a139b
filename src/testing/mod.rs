//! Data tests and unit tests, run through a warehouse session.
//!
//! A data test is a query whose rows are failures. The tests of one job run together: one
//! query counts the failing rows of all of them (`Session::count_failures`), and only a test
//! that fails or warns costs a second query, for up to five of its rows. A test with
//! `store_failures` writes its rows to `<schema_prefix>test_failures.<test name>` instead.
//! Before publishing an audited table the tests read the staged relation: each test's SQL names
//! the model's relation, which is swapped for the staged one (`Swap`).

pub(crate) mod freshness;
mod replay;
pub(crate) mod unit;

use std::time::{Instant, SystemTime};

use crate::project::{Severity, TestConfig, Verdict, test_config as config};

use crate::adapter::{DbError, FailureQuery, Relation, Rows, Session};
use crate::compile::Compiled;

/// How many failing rows a report shows.
pub(crate) const SHOWN_ROWS: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TestStatus {
    Pass,
    /// Not run: it passed on the relation as it is, in the build recorded (`--reuse`).
    Reused,
    Warn,
    Fail,
    Error,
    Skipped,
}

#[derive(Debug)]
pub(crate) struct TestResult {
    pub(crate) node: usize,
    pub(crate) status: TestStatus,
    /// Failing rows counted (for a unit test: rows that differ).
    pub(crate) failures: Option<u64>,
    pub(crate) started_at: SystemTime,
    pub(crate) seconds: f64,
    pub(crate) message: Option<String>,
    /// Up to `SHOWN_ROWS` failing rows.
    pub(crate) rows: Option<Rows>,
    /// Whether this result keeps the tested model from being published (or its children from
    /// running): a failure, or an error, of an error-severity test.
    pub(crate) blocking: bool,
    pub(crate) interrupted: bool,
    /// The test failed inside the build's open transaction and took it with it: whatever ran
    /// after it there did not count.
    pub(crate) lost: bool,
}

impl TestResult {
    /// A passing result, to be amended by what the test found.
    fn passed(node: usize, started_at: SystemTime, seconds: f64) -> TestResult {
        TestResult {
            node,
            status: TestStatus::Pass,
            failures: None,
            started_at,
            seconds,
            message: None,
            rows: None,
            blocking: false,
            interrupted: false,
            lost: false,
        }
    }

    /// A test not run, for it passed on the relation as it is.
    pub(crate) fn reused(node: usize) -> TestResult {
        TestResult {
            status: TestStatus::Reused,
            ..TestResult::passed(node, SystemTime::now(), 0.0)
        }
    }

    pub(crate) fn skipped(node: usize, message: &str) -> TestResult {
        TestResult {
            status: TestStatus::Skipped,
            message: Some(message.to_string()),
            ..TestResult::passed(node, SystemTime::now(), 0.0)
        }
    }
}

/// Tests read `staged` wherever their SQL names `published` (quoted relation names).
pub(crate) struct Swap {
    pub(crate) published: String,
    pub(crate) staged: String,
    /// The same two relations by their parts.
    pub(crate) published_as: Relation,
    pub(crate) staged_as: Relation,
}

/// The schema failing rows are stored in.
pub(crate) fn failures_schema(c: &Compiled) -> String {
    c.project.target.schema_name("test_failures")
}

/// Runs data tests `tests` (node indexes) and judges each. Statements that write (stored
/// failures) are appended to `log`.
pub(crate) fn run_data_tests(
    session: &mut dyn Session,
    c: &Compiled,
    tests: &[usize],
    swap: Option<&Swap>,
    log: &mut Vec<String>,
) -> Vec<TestResult> {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let prepared: Vec<(Prepared, Option<String>)> = (tests.iter())
        .map(|&t| prepare(c, t, swap, session))
        .collect();
    let (prepared, render_errors): (Vec<Prepared>, Vec<Option<String>>) =
        prepared.into_iter().unzip();
    let mut counts: Vec<Count> = (render_errors.into_iter())
        .map(|e| e.map(|e| Err(DbError::Failed(e))))
        .collect();
    // Stored failures are written one by one; the others are counted in one query.
    let failures_schema = failures_schema(c);
    for (k, (t, cfg, sql, _)) in prepared.iter().enumerate() {
        if cfg.store_failures && counts[k].is_none() {
            let into = Relation::new(&failures_schema, &c.nodes()[*t].name);
            counts[k] = Some(session.store_failures(&into, sql, cfg.limit, log));
        }
    }
    count_the_rest(session, &prepared, &mut counts);
    let share = clock.elapsed().as_secs_f64() / prepared.len().max(1) as f64;
    prepared
        .into_iter()
        .zip(counts)
        .map(|((t, cfg, sql, _), count)| {
            let count = count.unwrap_or(Err(DbError::Interrupted));
            let r = judge(t, &cfg, count, started_at, share);
            with_failing_rows(session, c, r, (&cfg, &sql))
        })
        .collect()
}

/// A test ready to run: its node, its config and its SQL.
type Prepared = (usize, TestConfig, String, Option<String>);

/// A test's failing rows, once counted (or stored).
type Count = Option<Result<u64, DbError>>;

/// Test `t`'s config, SQL (reading the staged relation where `swap` says) and `fail_calc`;
/// and why it could not be rendered, for a test rendered against the warehouse.
fn prepare(
    c: &Compiled,
    t: usize,
    swap: Option<&Swap>,
    session: &mut dyn Session,
) -> (Prepared, Option<String>) {
    let n = &c.nodes()[t];
    // Checked when compiling: a test reaching here has a valid config.
    let cfg = config(n).unwrap_or(TestConfig::DEFAULT);
    let (mut sql, mut error) = (c.sql[t].clone().unwrap_or_default(), None);
    if c.at_run[t] {
        match replay::render(c, t, session, swap) {
            Ok(rendered) => sql = rendered,
            Err(e) => error = Some(e),
        }
    }
    if let Some(s) = swap {
        sql = sql.replace(&s.published, &s.staged);
    }
    let calc = n.config.str("fail_calc").map(str::to_string);
    ((t, cfg, sql, calc), error)
}

/// Counts the failing rows of every test not counted yet, in one query.
fn count_the_rest(session: &mut dyn Session, prepared: &[Prepared], counts: &mut [Count]) {
    let batch: Vec<usize> = (0..prepared.len())
        .filter(|&k| counts[k].is_none())
        .collect();
    if batch.is_empty() {
        return;
    }
    let queries: Vec<FailureQuery> = batch
        .iter()
        .map(|&k| {
            let (_, cfg, sql, calc) = &prepared[k];
            (sql.as_str(), cfg.limit, calc.as_deref())
        })
        .collect();
    match session.count_failures(&queries) {
        Ok(n) => {
            for (&k, n) in batch.iter().zip(n) {
                counts[k] = Some(Ok(n));
            }
        }
        // One broken test fails the whole query: count each alone to tell which (unless it
        // took the open transaction with it: then the caller stages again).
        Err(DbError::Failed(_)) if batch.len() > 1 => {
            for (&k, q) in batch.iter().zip(&queries) {
                counts[k] = Some(session.count_failures(&[*q]).map(|n| n[0]));
            }
        }
        Err(e) => {
            for &k in &batch {
                counts[k] = Some(Err(e.clone()));
            }
        }
    }
}

/// A failing or warning test's result with a sample of its rows (and where all of them are
/// stored).
fn with_failing_rows(
    session: &mut dyn Session,
    c: &Compiled,
    mut r: TestResult,
    (cfg, sql): (&TestConfig, &str),
) -> TestResult {
    if !matches!(r.status, TestStatus::Fail | TestStatus::Warn) {
        return r;
    }
    match session.query(sql, SHOWN_ROWS) {
        Ok(rows) => r.rows = Some(rows),
        Err(e) => {
            r.lost = matches!(e, DbError::TransactionLost(_));
            r.message = Some(format!("its failing rows could not be read: {e}"));
            return r;
        }
    }
    if cfg.store_failures {
        r.message = Some(format!(
            "failing rows stored in {}.{}",
            failures_schema(c),
            c.nodes()[r.node].name
        ));
    }
    r
}

fn status_of(verdict: Verdict) -> TestStatus {
    match verdict {
        Verdict::Pass => TestStatus::Pass,
        Verdict::Warn => TestStatus::Warn,
        Verdict::Fail => TestStatus::Fail,
    }
}

fn judge(
    node: usize,
    cfg: &TestConfig,
    count: Result<u64, DbError>,
    started_at: SystemTime,
    seconds: f64,
) -> TestResult {
    let mut r = TestResult::passed(node, started_at, seconds);
    match count {
        Ok(n) => {
            r.failures = Some(n);
            r.status = status_of(cfg.verdict(n));
            r.blocking = r.status == TestStatus::Fail;
        }
        Err(e) => {
            r.interrupted = e == DbError::Interrupted;
            r.lost = matches!(e, DbError::TransactionLost(_));
            r.status = TestStatus::Error;
            r.message = Some(e.to_string());
            r.blocking = cfg.severity == Severity::Error;
        }
    }
    r
}
