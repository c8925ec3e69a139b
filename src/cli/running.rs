//! `build`, `run`, `seed`, `show`, `debug` and `clean`: the commands that reach the warehouse.

use std::path::Path;
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::{Instant, SystemTime};

use super::output::{Printer, rows_table};
use super::warehouse::{connection, describe, open_session, open_warehouse};
use super::{
    ExitStatus, Global, Loaded, LogFormat, Select, load_and_compile, load_options, report,
    write_compile_artifacts,
};
use crate::adapter::{Connection, DbResult, Rows, Warehouse};
use crate::artifacts::{self, RunInfo};
use crate::compile::Compiled;
use crate::diagnostics::{Diagnostics, Files, did_you_mean};
use crate::execute::{self, RunOptions, Stop};
use crate::materialize::{self, Job};
use crate::project::{DBT_PROJECT_FILE, NodeKind, PROJECT_FILE, Project, Target, load};
use crate::state::State;
use crate::testing::freshness;

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) select: Select,
    /// Worker threads, each with its own connection (default: the target's `threads`).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Stop at the first failure: interrupt what is running and skip the rest.
    #[arg(long)]
    fail_fast: bool,
    /// Rebuild incremental models from scratch instead of adding to them (snapshots keep
    /// their history).
    #[arg(long)]
    full_refresh: bool,
    /// Backfill: rebuild the microbatches of microbatch models from this time (a date, or
    /// `2024-01-01 06:00`), up to --end.
    #[arg(long, requires = "end", value_parser = parse_time)]
    start: Option<jiff::civil::DateTime>,
    /// The end of a backfill (exclusive).
    #[arg(long, requires = "start", value_parser = parse_time)]
    end: Option<jiff::civil::DateTime>,
    /// Publish tables without first running their tests on the new data (as `+audit: false`).
    #[arg(long)]
    no_audit: bool,
    /// After the run, compare each rebuilt relation with the one recorded in DIR's
    /// manifest.json (production's): rows and per-column statistics; target/compare.json.
    #[arg(long, value_name = "DIR")]
    compare_to: Option<std::path::PathBuf>,
    /// Keep every data test's failing rows in the warehouse (as `+store_failures: true`).
    #[arg(long)]
    store_failures: bool,
    /// Build each model from its parents with no rows (dbt's `--empty`): its SQL runs and
    /// its relation gets its columns, without the cost.
    #[arg(long)]
    empty: bool,
    /// Reuse every relation whose SQL, config and inputs are unchanged since it was built
    /// instead of building it again (as the target's `reuse: true`; not with --full-refresh).
    #[arg(long, conflicts_with = "full_refresh")]
    reuse: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    Build,
    Run,
    Seed,
    Test,
    Snapshot,
}

fn parse_time(s: &str) -> Result<jiff::civil::DateTime, String> {
    materialize::incremental::parse_time(s).ok_or_else(|| {
        format!("`{s}` is not a date (2024-01-31) or a date and time (2024-01-31 06:00)")
    })
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Build => "build",
            Verb::Run => "run",
            Verb::Seed => "seed",
            Verb::Test => "test",
            Verb::Snapshot => "snapshot",
        }
    }

    fn includes(self, kind: NodeKind) -> bool {
        match self {
            Verb::Build => matches!(kind, NodeKind::Seed | NodeKind::Model | NodeKind::Snapshot),
            Verb::Run => kind == NodeKind::Model,
            Verb::Seed => kind == NodeKind::Seed,
            Verb::Snapshot => kind == NodeKind::Snapshot,
            Verb::Test => false,
        }
    }

    fn tests(self) -> bool {
        matches!(self, Verb::Build | Verb::Test)
    }
}

/// Runs `verb`; `argv` is the command line recorded in run_results.json for `xform retry`.
pub(crate) fn cmd_run(g: &Global, a: &RunArgs, verb: Verb, argv: &[String]) -> ExitStatus {
    let (clock, started_at) = (Instant::now(), SystemTime::now());
    let run = match prepare(g, a, verb) {
        Ok(ok) => ok,
        Err(code) => return code,
    };
    let (c, jobs) = (&run.c, &run.jobs);
    let warehouse = match open_for_run(&g.project_dir, c) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let (outcome, printer) = match execute_jobs(g, a, verb, (c, &run.files, jobs), &warehouse) {
        Ok(done) => done,
        Err(code) => return code,
    };
    let info = RunInfo {
        command: verb.name(),
        args: argv,
        started_at,
        elapsed: clock.elapsed(),
    };
    let written = write_run_artifacts(&g.project_dir, c, (jobs, &outcome), &info);
    printer.summary(jobs, &outcome, clock.elapsed().as_secs_f64());
    compare_after_run(g, &run, &outcome, &warehouse);
    if let Err(e) = written {
        errln!("warning: cannot write run artifacts under target/: {e}");
    }
    std::mem::forget(run.c);
    exit_code(&outcome)
}

/// Opens the warehouse, then writes the compile artifacts: when another process holds the
/// warehouse, nothing at all is written.
fn open_for_run(root: &Path, c: &Compiled) -> Result<Arc<dyn Warehouse>, ExitStatus> {
    let warehouse = open_warehouse(&c.project)?;
    if let Err(e) = warehouse.claim() {
        errln!("error: {e}");
        return Err(ExitStatus::Invalid);
    }
    write_compile_artifacts(root, c)?;
    Ok(warehouse)
}

/// run_results.json, and the SQL each node ran.
fn write_run_artifacts(
    root: &Path,
    c: &Compiled,
    (jobs, outcome): (&[Job], &execute::Outcome),
    info: &RunInfo<'_>,
) -> std::io::Result<()> {
    artifacts::write_run_results(root, c, jobs, &outcome.results, info)?;
    artifacts::write_run_sql(root, c, jobs, &outcome.results)
}

/// What a run has ready before it touches the warehouse.
struct Prepared {
    c: Compiled,
    files: Files,
    jobs: Vec<Job>,
    /// `--compare-to`'s state.
    compare_state: Option<Arc<State>>,
}

/// Compiles the project and plans the run's jobs; every mistake found is reported here.
fn prepare(g: &Global, a: &RunArgs, verb: Verb) -> Result<Prepared, ExitStatus> {
    let g = &Global {
        store_failures: a.store_failures,
        empty: a.empty,
        which: Some(verb.name()),
        full_refresh: a.full_refresh,
        ..g.clone()
    };
    let Loaded {
        c, files, state, ..
    } = load_and_compile(g, &a.select, None)?;
    let opts = plan_options(a)?;
    check_reuse(a, &c.project.target)?;
    let compare_state = a
        .compare_to
        .as_deref()
        .map(|dir| super::comparing::compare_state(g, state.as_ref(), dir))
        .transpose()?;
    let jobs = plan(&c, verb, (a.no_audit, opts), g.log_format, &files)?;
    Ok(Prepared {
        c,
        files,
        jobs,
        compare_state,
    })
}

/// Whether the run reuses what has not changed: `--reuse` or the target's `reuse: true`,
/// never with `--full-refresh` or `--empty`.
fn reuses(a: &RunArgs, target: &crate::project::Target) -> bool {
    (a.reuse || target.reuse) && !a.full_refresh && !a.empty
}

/// `--reuse` where the warehouse cannot record builds with what it publishes: an error.
fn check_reuse(a: &RunArgs, target: &crate::project::Target) -> Result<(), ExitStatus> {
    if !reuses(a, target) || target.dialect().transactional() {
        return Ok(());
    }
    let at = match a.reuse {
        true => "--reuse".to_string(),
        false => format!("target `{}`'s `reuse: true`", target.name),
    };
    errln!(
        "error: {at}: {} targets cannot reuse relations: xform records each build in the transaction that publishes it, and {} has no transactions",
        target.kind.name(),
        target.kind.name()
    );
    Err(ExitStatus::Invalid)
}

/// What the run asks of every job: `--full-refresh`, the `--start`/`--end` window (which must
/// not be empty), the time now.
fn plan_options(a: &RunArgs) -> Result<materialize::PlanOptions, ExitStatus> {
    if let (Some(start), Some(end)) = (a.start, a.end)
        && start >= end
    {
        errln!("error: --start {start} is not before --end {end}");
        return Err(ExitStatus::Invalid);
    }
    Ok(materialize::PlanOptions {
        full_refresh: a.full_refresh,
        window: a.start.zip(a.end),
        now: materialize::incremental::now_utc(),
    })
}

/// Runs the jobs, Ctrl-C stopping them, with a printer showing their progress; the printer is
/// returned for the summary.
fn execute_jobs<'c>(
    g: &Global,
    a: &RunArgs,
    verb: Verb,
    (c, files, jobs): (&'c Compiled, &'c Files, &[Job]),
    warehouse: &Arc<dyn Warehouse>,
) -> Result<(execute::Outcome, Printer<'c>), ExitStatus> {
    let stop = Stop::new(warehouse.clone());
    stop_on_ctrl_c(Some(&stop));
    let threads = a.threads.map_or(c.project.target.threads, usize::from);
    let mut printer = Printer::new(g.log_format, (c, files), jobs);
    printer.header(
        verb.name(),
        &describe(&c.project, warehouse.as_ref()),
        threads,
    );
    let opts = RunOptions {
        threads,
        fail_fast: a.fail_fast,
        reuse: reuses(a, &c.project.target),
    };
    let outcome = execute::run(c, &g.project_dir, jobs, opts, &stop, &mut |e| {
        printer.event(e)
    });
    stop_on_ctrl_c(None);
    match outcome {
        Ok(o) => Ok((o, printer)),
        Err(e) => {
            printer.finish_bar();
            errln!("error: {e}");
            Err(ExitStatus::Invalid)
        }
    }
}

/// `--compare-to`: the rebuilt relations compared with the state's, on a new session.
fn compare_after_run(
    g: &Global,
    run: &Prepared,
    outcome: &execute::Outcome,
    warehouse: &Arc<dyn Warehouse>,
) {
    let Some(state) = &run.compare_state else {
        return;
    };
    match warehouse.session() {
        Ok(mut s) => {
            super::comparing::compare_to(g, &run.c, state, (&run.jobs, outcome), s.as_mut())
        }
        Err(e) => errln!("warning: --compare-to: {e}"),
    }
}

/// `xform source freshness`: each selected source table that declares `freshness`, its latest
/// `loaded_at_field` against `warn_after`/`error_after`. Exit 1 when one is an error.
pub(crate) fn cmd_freshness(g: &Global, select: &Select) -> ExitStatus {
    let Loaded { c, files, .. } = match load_and_compile(g, select, None) {
        Ok(ok) => ok,
        Err(code) => return code,
    };
    let (checks, diags) = freshness_checks(&c);
    if let Err(code) = reported(g.log_format, diags, &files) {
        return code;
    }
    if checks.is_empty() {
        errln!("no selected source table declares `freshness` (with `loaded_at_field`)");
        return ExitStatus::Success;
    }
    let results = match check_freshness(&c, checks) {
        Ok(results) => results,
        Err(code) => return code,
    };
    let entries = print_freshness(g.log_format, &c, &results);
    let errors = freshness_summary(g.log_format, &results);
    let doc = serde_json::json!({ "results": entries });
    if let Err(e) = artifacts::write_json(&g.project_dir, "sources.json", &doc) {
        errln!("warning: cannot write target/sources.json: {e}");
    }
    if errors > 0 {
        ExitStatus::Failed
    } else {
        ExitStatus::Success
    }
}

/// The selected sources' `freshness` settings, and the mistakes in them.
fn freshness_checks(c: &Compiled) -> (Vec<(usize, freshness::Freshness)>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut checks = Vec::new();
    for &i in &c.selected {
        match freshness::spec(&c.nodes()[i]) {
            Ok(Some(spec)) => checks.push((i, spec)),
            Ok(None) => {}
            Err(d) => diags.push(d),
        }
    }
    (checks, diags)
}

/// Each source's freshness, queried now.
fn check_freshness(
    c: &Compiled,
    checks: Vec<(usize, freshness::Freshness)>,
) -> Result<Vec<freshness::FreshnessResult>, ExitStatus> {
    let (_warehouse, mut session) = open_session(&c.project)?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    Ok(checks
        .into_iter()
        .map(|(i, spec)| freshness::check(session.as_mut(), c, i, spec, now))
        .collect())
}

/// Prints each source's freshness (a line, or a JSON event) and returns the entries of
/// sources.json.
fn print_freshness(
    format: LogFormat,
    c: &Compiled,
    results: &[freshness::FreshnessResult],
) -> Vec<serde_json::Value> {
    let width = results
        .iter()
        .map(|r| c.nodes()[r.node].name.len())
        .max()
        .unwrap_or(0);
    let mut entries = Vec::new();
    for r in results {
        let name = &c.nodes()[r.node].name;
        let when = r.max_loaded_at.map(utc_text);
        let detail = freshness_detail(r, when.as_deref());
        let entry = freshness_entry(c, r, when.as_deref());
        match format {
            LogFormat::Text => outln!("{:<5}  {name:<width$}  {detail}", r.status.label()),
            LogFormat::Json => outln!(
                "{}",
                serde_json::json!({"event": "freshness", "result": &entry})
            ),
        }
        entries.push(entry);
    }
    entries
}

/// A source's entry in sources.json.
fn freshness_entry(
    c: &Compiled,
    r: &freshness::FreshnessResult,
    when: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "unique_id": c.nodes()[r.node].unique_id,
        "source": c.nodes()[r.node].name,
        "status": r.status,
        "max_loaded_at": when,
        "age_seconds": r.age,
        "warn_after_seconds": r.spec.warn_after,
        "error_after_seconds": r.spec.error_after,
        "message": r.message,
    })
}

/// What a source's freshness line says after its name: the error, or its latest load, age and
/// limits.
fn freshness_detail(r: &freshness::FreshnessResult, when: Option<&str>) -> String {
    let limits = [
        ("warn after", r.spec.warn_after),
        ("error after", r.spec.error_after),
    ]
    .iter()
    .filter_map(|(w, s)| s.map(|s| format!("{w} {}", freshness::human_age(s))))
    .collect::<Vec<_>>()
    .join(", ");
    match (when, r.age, &r.message) {
        (_, _, Some(m)) => m.clone(),
        (Some(w), Some(age), None) => {
            format!(
                "latest {w} UTC, {} ago ({limits})",
                freshness::human_age(age)
            )
        }
        _ => String::new(),
    }
}

/// Prints the tally of a freshness check (as text) and returns how many sources are errors.
fn freshness_summary(format: LogFormat, results: &[freshness::FreshnessResult]) -> usize {
    let count = |s| count_status(results, s);
    let errors =
        count(freshness::FreshnessStatus::Error) + count(freshness::FreshnessStatus::RuntimeError);
    if format == LogFormat::Text {
        outln!(
            "\n{} pass, {} warn, {errors} error",
            count(freshness::FreshnessStatus::Pass),
            count(freshness::FreshnessStatus::Warn)
        );
    }
    errors
}

fn count_status(results: &[freshness::FreshnessResult], s: freshness::FreshnessStatus) -> usize {
    results.iter().filter(|r| r.status == s).count()
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
fn utc_text(seconds: f64) -> String {
    jiff::Timestamp::from_second(seconds.floor() as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn exit_code(outcome: &execute::Outcome) -> ExitStatus {
    if let Some(e) = &outcome.records_failed {
        errln!(
            "warning: the tests that passed were not recorded for --reuse (they run again next time): {e}"
        );
    }
    if let Some(e) = &outcome.run_end_failed {
        errln!("error: on_run_end failed: {e}");
        return ExitStatus::Failed;
    }
    if outcome.interrupted {
        ExitStatus::Interrupted
    } else if outcome.results.iter().any(|r| r.failed()) {
        ExitStatus::Failed
    } else {
        ExitStatus::Success
    }
}

/// The jobs of the selected nodes this command builds and tests; invalid settings are
/// reported here, before anything touches the warehouse.
fn plan(
    c: &Compiled,
    verb: Verb,
    (no_audit, opts): (bool, materialize::PlanOptions),
    format: LogFormat,
    files: &Files,
) -> Result<Vec<Job>, ExitStatus> {
    let mut diags = Diagnostics::default();
    let (mut jobs, tests) = builds_and_tests(c, verb, opts, &mut diags);
    if no_audit {
        jobs.iter_mut().for_each(|j| j.audit = false);
    }
    if verb.tests() {
        materialize::attach_tests(c, &mut jobs, &tests);
    }
    reported(format, diags, files)?;
    Ok(jobs)
}

/// The jobs that build the selected nodes `verb` builds, and the selected tests.
fn builds_and_tests(
    c: &Compiled,
    verb: Verb,
    opts: materialize::PlanOptions,
    diags: &mut Diagnostics,
) -> (Vec<Job>, Vec<usize>) {
    let mut jobs = Vec::new();
    let mut tests = Vec::new();
    for &i in &c.selected {
        match c.nodes()[i].kind {
            NodeKind::Test | NodeKind::UnitTest => tests.push(i),
            kind if verb.includes(kind) => match materialize::plan(c, i, opts) {
                Ok(job) => jobs.extend(job),
                Err(ds) => diags.extend(ds),
            },
            _ => {}
        }
    }
    (jobs, tests)
}

/// Reports the diagnostics; exit code 2 when one is an error.
fn reported(format: LogFormat, diags: Diagnostics, files: &Files) -> Result<(), ExitStatus> {
    let failed = diags.has_errors();
    report(format, diags, files);
    if failed {
        Err(ExitStatus::Invalid)
    } else {
        Ok(())
    }
}

/// The materialization settings of the selected nodes (incremental strategies, snapshots,
/// seeds) and sources' freshness, checked as a run would, for `compile`.
pub(crate) fn check_settings(
    c: &Compiled,
    format: LogFormat,
    files: &Files,
) -> Result<(), ExitStatus> {
    let opts = materialize::PlanOptions {
        full_refresh: false,
        window: None,
        now: materialize::incremental::now_utc(),
    };
    let mut diags = Diagnostics::default();
    for &i in &c.selected {
        let kind = c.nodes()[i].kind;
        if Verb::Build.includes(kind)
            && let Err(ds) = materialize::plan(c, i, opts)
        {
            diags.extend(ds);
        }
        if let Err(d) = freshness::spec(&c.nodes()[i]) {
            diags.push(d);
        }
    }
    reported(format, diags, files)
}

/// The run a Ctrl-C stops. A second Ctrl-C, or one outside a run, ends the process at once
/// (DuckDB's write-ahead log keeps the database consistent even then).
static RUNNING: Mutex<Option<Stop>> = Mutex::new(None);

fn stop_on_ctrl_c(stop: Option<&Stop>) {
    static HANDLER: Once = Once::new();
    *RUNNING.lock().unwrap_or_else(PoisonError::into_inner) = stop.cloned();
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            let running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
            match running.as_ref() {
                Some(s) if !s.is_stopped() => {
                    errln!("\ninterrupting: running statements are rolled back, previous relations kept (Ctrl-C again to quit now)");
                    s.stop();
                }
                _ => std::process::exit(130),
            }
        });
    });
}

/// What `show` runs: a model's SQL, or SQL given on the command line.
pub(crate) enum Shown<'a> {
    Model(&'a str),
    Inline(&'a str),
}

pub(crate) fn cmd_show(g: &Global, shown: Shown, limit: usize) -> ExitStatus {
    let inline = match shown {
        Shown::Inline(sql) => Some(sql),
        Shown::Model(_) => None,
    };
    let Loaded { c, .. } = match load_and_compile(g, &Select::default(), inline) {
        Ok(ok) => ok,
        Err(code) => return code,
    };
    let (model, node) = match shown {
        Shown::Inline(_) => (
            "--inline",
            super::inline_node(&c).ok_or(ExitStatus::Invalid),
        ),
        Shown::Model(name) => (name, shown_node(&c, name)),
    };
    let i = match node {
        Ok(i) => i,
        Err(code) => return code,
    };
    let warehouse = match open_warehouse(&c.project) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let sql = match sql_to_show(&c, i, warehouse.as_ref()) {
        Ok(sql) => sql,
        Err(e) => {
            errln!("error: `{model}`: {e}");
            return ExitStatus::Failed;
        }
    };
    let rows = warehouse.session().and_then(|mut s| s.query(&sql, limit));
    print_rows(g.log_format, model, rows)
}

/// `show`'s rows as a table or JSON, or why the query failed.
fn print_rows(format: LogFormat, model: &str, rows: DbResult<Rows>) -> ExitStatus {
    match rows {
        Ok(rows) if format == LogFormat::Json => {
            outln!("{}", super::output::rows_json(&rows));
            ExitStatus::Success
        }
        Ok(rows) => {
            out!("{}", rows_table(&rows));
            ExitStatus::Success
        }
        Err(e) => {
            errln!("error: `{model}` failed: {e}");
            errln!(
                "note: its parents must exist in the warehouse; `xform build -s +{model}` builds them"
            );
            ExitStatus::Failed
        }
    }
}

/// The query `show` runs for a model or seed: its compiled SQL, else all of its relation.
/// The model or seed `show` runs, by name.
fn shown_node(c: &Compiled, model: &str) -> Result<usize, ExitStatus> {
    find_node(c, model).ok_or_else(|| {
        let names = c
            .nodes()
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Model | NodeKind::Seed))
            .map(|n| n.name.as_str());
        errln!("error: `{model}` is not a model or seed in this project");
        if let Some(help) = did_you_mean(model, names) {
            errln!("help: {help}");
        }
        ExitStatus::Invalid
    })
}

/// The query `show` runs for node `i`: its SQL (rendered against the warehouse when its
/// macros query it), else all of its relation.
fn sql_to_show(c: &Compiled, i: usize, warehouse: &dyn Warehouse) -> Result<String, String> {
    if c.at_run[i] {
        let session = warehouse.session().map_err(|e| e.to_string())?;
        return crate::materialize::rendered_at_run(c, i, session).map(|(sql, _)| sql);
    }
    match (&c.sql[i], c.relation_sql(i)) {
        (Some(sql), _) => Ok(sql.clone()),
        (None, Some(rel)) => Ok(c.project.target.dialect().select_all(&rel)),
        (None, None) => Err("it has no SQL to show".into()),
    }
}

fn find_node(c: &Compiled, name: &str) -> Option<usize> {
    c.nodes()
        .iter()
        .position(|n| n.name == name && matches!(n.kind, NodeKind::Model | NodeKind::Seed))
}

pub(crate) fn cmd_debug(g: &Global) -> ExitStatus {
    outln!("xform {}", env!("CARGO_PKG_VERSION"));
    let Some(p) = debug_project(g) else {
        outln!("project: invalid (see above)");
        return ExitStatus::Invalid;
    };
    let t = &p.target;
    print_project(&p);
    let connection = match connection(&p) {
        Ok(c) => c,
        Err(e) => {
            outln!("  warehouse: {e}");
            return ExitStatus::Invalid;
        }
    };
    outln!("  warehouse: {}", connection.describe(&p.root));
    outln!(
        "  schema: {}  schema_prefix: {:?}  threads: {}",
        t.schema,
        t.schema_prefix,
        t.threads
    );
    check_connection(&connection, t)
}

fn print_project(p: &Project) {
    outln!("project: {} ({})", p.name, p.root.join(p.file).display());
    outln!("target: {} (type {})", p.target.name, p.target.kind.name());
}

/// The project, loaded with its mistakes (its target's settings too) reported; `None` when it
/// has any.
fn debug_project(g: &Global) -> Option<Project> {
    let mut files = Files::default();
    let mut diags = Diagnostics::default();
    let project = load(&g.project_dir, &load_options(g), &mut files, &mut diags);
    if let Some(p) = &project {
        Connection::new(&p.target, &p.root, &mut diags);
    }
    let failed = diags.has_errors();
    report(g.log_format, diags, &files);
    project.filter(|_| !failed)
}

/// Opens the warehouse and runs a probe query, saying how it went.
fn check_connection(connection: &Connection, t: &Target) -> ExitStatus {
    let checked = connection.open().and_then(|w| {
        w.session()
            .and_then(|mut s| s.query(&t.dialect().probe(), 1))
            .and(w.version())
    });
    match checked {
        Ok(v) => {
            outln!("connection: ok ({v})");
            ExitStatus::Success
        }
        Err(e) => {
            outln!("connection: FAILED: {e}");
            ExitStatus::Invalid
        }
    }
}

pub(crate) fn cmd_clean(g: &Global) -> ExitStatus {
    let root: &Path = &g.project_dir;
    if ![PROJECT_FILE, DBT_PROJECT_FILE]
        .iter()
        .any(|f| root.join(f).is_file())
    {
        errln!(
            "error: no {PROJECT_FILE} or {DBT_PROJECT_FILE} in {}: not cleaning a folder that is not a project",
            root.display()
        );
        return ExitStatus::Invalid;
    }
    match artifacts::clean(root) {
        Ok(removed) if removed.is_empty() => outln!("nothing to clean"),
        Ok(removed) => outln!(
            "removed {} (the warehouse database is kept)",
            removed.join(", ")
        ),
        Err(e) => {
            errln!("error: cannot clean target/: {e}");
            return ExitStatus::Invalid;
        }
    }
    ExitStatus::Success
}
