//! The command line: clap types, reading the environment, printing, exit codes
//! (`ExitStatus`).

/// `println!` and friends that never panic on a closed or full stdout (see `out`).
macro_rules! outln {
    () => { $crate::cli::out::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::out::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out::stdout(format_args!($($arg)*)) };
}
macro_rules! errln {
    () => { $crate::cli::out::stderr(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::out::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}
macro_rules! err {
    ($($arg:tt)*) => { $crate::cli::out::stderr(format_args!($($arg)*)) };
}

mod comparing;
mod diff;
mod docs;
mod lineage;
mod out;
mod output;
mod running;
mod warehouse;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::adapter::Connection;
use crate::compile::{self, CompileOptions, Compiled, compile};
use crate::diagnostics::{Diagnostic, Diagnostics, Files, render};
use crate::graph::select::{Facts, Selection, select};
use crate::project::{LoadOptions, NodeKind, Project, load};
use crate::state::{Changes, State};
use crate::{artifacts, scaffold};

#[derive(Parser, Debug)]
#[command(
    name = "xform",
    version,
    about = "SQL-first data transformation: compile, build and test warehouse models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: Global,
}

#[derive(clap::Args, Clone, Debug)]
struct Global {
    /// The project folder (holding project.yml, or a dbt project's dbt_project.yml).
    #[arg(long, global = true, default_value = ".")]
    project_dir: PathBuf,
    /// dbt projects: the folder holding profiles.yml (default: $DBT_PROFILES_DIR, the
    /// project folder, ~/.dbt).
    #[arg(long, global = true, value_name = "DIR")]
    profiles_dir: Option<PathBuf>,
    /// dbt projects: the profile in profiles.yml (default: dbt_project.yml's `profile`).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Target from project.yml, or a dbt profile's output (default: `default_target`, the
    /// profile's `target`).
    #[arg(short, long, global = true)]
    target: Option<String>,
    /// Project vars as a YAML mapping, e.g. '{start_date: 2024-01-01}'.
    #[arg(long, global = true)]
    vars: Option<String>,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// `--store-failures` of the command that runs tests.
    #[arg(skip)]
    store_failures: bool,
    /// `--empty` of the command that builds.
    #[arg(skip)]
    empty: bool,
    /// The command that builds or tests, and its `--full-refresh` (dbt's `flags`).
    #[arg(skip)]
    which: Option<&'static str>,
    #[arg(skip)]
    full_refresh: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug, Default, Clone)]
struct Select {
    /// Nodes to select (dbt syntax: name, +name, name+, @name, tag:x, path:dir, ...); also
    /// dbt's older `-m/--models`.
    #[arg(short, long, short_alias = 'm', alias = "models", num_args = 1.., action = clap::ArgAction::Append)]
    select: Vec<String>,
    /// Nodes to leave out, same syntax.
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    exclude: Vec<String>,
    /// A folder with another run's manifest.json (and run_results.json), e.g. production's:
    /// what `state:` and `result:` selectors compare against.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Read models that are not selected from the --state run's relations (production)
    /// instead of this target's, so only what is selected needs building.
    #[arg(long, requires = "state")]
    defer: bool,
    /// Statuses `result:` selectors read instead of --state's (`xform retry`'s last run).
    #[arg(skip)]
    results: Option<Arc<HashMap<String, String>>>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Output {
    Name,
    Path,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Render and check every model; write target/compiled and target/manifest.json.
    Compile {
        #[command(flatten)]
        select: Select,
        /// Compile this SQL in the project's context and print it (writes nothing).
        #[arg(long)]
        inline: Option<String>,
    },
    /// List the selected nodes in dependency order.
    Ls {
        #[command(flatten)]
        select: Select,
        #[arg(long, short, value_enum, default_value_t = Output::Name)]
        output: Output,
    },
    /// Create a small working project in DIR.
    Init { dir: PathBuf },
    /// Install a dbt project's packages (packages.yml) into dbt_packages/, as `dbt deps`:
    /// the versions package-lock.yml pins, or resolved anew when packages.yml changed.
    Deps {
        /// Resolve packages.yml again (newest versions allowed), even with an up-to-date lock.
        #[arg(long)]
        upgrade: bool,
        /// Only resolve and write package-lock.yml; install nothing.
        #[arg(long)]
        lock: bool,
    },
    /// Load seeds and build models into the warehouse, in dependency order.
    Build(running::RunArgs),
    /// Build the selected models (views and tables).
    Run(running::RunArgs),
    /// Load the selected seeds (CSV files) into tables.
    Seed(running::RunArgs),
    /// Run the selected data tests and unit tests against what is in the warehouse.
    Test(running::RunArgs),
    /// Record the changes of the selected snapshots (SCD type 2 tables).
    Snapshot(running::RunArgs),
    /// Commands about sources: `xform source freshness`.
    Source {
        #[command(subcommand)]
        command: SourceCommand,
    },
    /// Run a model's SQL and print its first rows; nothing is materialized.
    Show {
        /// The model (or seed) to show.
        #[arg(required_unless_present_any = ["select", "inline"], conflicts_with_all = ["select", "inline"])]
        model: Option<String>,
        /// The model to show, as dbt's `show --select` names it.
        #[arg(short, long, conflicts_with = "inline")]
        select: Option<String>,
        /// SQL (with Jinja) to run instead of a model's.
        #[arg(long)]
        inline: Option<String>,
        /// How many rows to print; -1 prints every row.
        #[arg(long, default_value_t = 5, allow_negative_numbers = true, value_parser = show_limit())]
        limit: i64,
    },
    /// What changed against another run's manifest (--state DIR): new, modified and removed
    /// nodes with a unified diff of their compiled SQL, and the nodes downstream.
    Diff {
        #[command(flatten)]
        select: Select,
        /// `markdown` is ready to post as a pull-request comment.
        #[arg(long, value_enum, default_value_t = diff::DiffFormat::Text)]
        format: diff::DiffFormat,
    },
    /// Compare two relations, AS-IS with TO-BE: row counts, per-column nulls, distinct, min,
    /// max, sum, avg and text lengths, and with --key the rows only in one side or changed.
    Compare(comparing::CompareArgs),
    /// Run again the nodes that failed (error or failing test) or were skipped in the last
    /// run (target/run_results.json), with that run's command and arguments.
    Retry,
    /// Check model and column names against the naming standard (project.yml's `naming:`
    /// and its glossary); exits 1 when a finding is an error.
    Lint,
    /// The docs site: `xform docs generate`, `xform docs serve`.
    Docs {
        #[command(subcommand)]
        command: docs::DocsCommand,
    },
    /// Column lineage read from the models' SQL: where a column comes from (the default) or
    /// what reads it (--downstream); `--format csv` is the source → target mapping sheet.
    Lineage(lineage::LineageArgs),
    /// Show the resolved project and target, and check the connection.
    Debug,
    /// Remove what xform wrote under target/ (compiled SQL, run SQL, JSON artifacts).
    Clean,
}

/// A number of rows: at most what a warehouse's `LIMIT` takes (a signed 64-bit integer).
fn row_limit() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(0..=i64::MAX as u64)
}

/// `show --limit`: a number of rows, or -1 for all of them (as dbt's).
fn show_limit() -> clap::builder::RangedI64ValueParser<i64> {
    clap::builder::RangedI64ValueParser::new().range(-1..=i64::MAX)
}

#[derive(Subcommand, Debug)]
enum SourceCommand {
    /// How long ago each selected source table was loaded, against its `freshness`; writes
    /// target/sources.json and exits 1 when one is past `error_after`.
    Freshness {
        #[command(flatten)]
        select: Select,
    },
}

/// How a command ends: the process's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything asked for was done.
    Success = 0,
    /// The run went through and something in it failed: a node, a test, a freshness check.
    Failed = 1,
    /// The command line, the project or the connection is invalid; nothing was written.
    Invalid = 2,
    /// xform itself failed (a panic): a bug.
    Crashed = 101,
    /// Interrupted by Ctrl-C.
    Interrupted = 130,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        self as i32
    }
}

pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitStatus {
    let args: Vec<OsString> = args.into_iter().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitStatus::Invalid
            } else {
                ExitStatus::Success
            };
        }
    };
    // Recorded in run_results.json for `xform retry`; a path that is not UTF-8 is kept lossily
    // there, and used as it is by this run.
    let argv: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = run_on_big_stack(&cli, &argv);
    with_output_failure(&cli, code)
}

/// Runs the command on a thread (and rayon's pool) with xform's large stack.
fn run_on_big_stack(cli: &Cli, argv: &[String]) -> ExitStatus {
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(crate::STACK_SIZE)
        .build_global();
    std::thread::scope(|s| {
        let command = std::thread::Builder::new()
            .stack_size(crate::STACK_SIZE)
            .spawn_scoped(s, || dispatch(cli, argv));
        match command.map(|t| t.join()) {
            Ok(Ok(code)) => code,
            Ok(Err(_)) => ExitStatus::Crashed,
            Err(e) => {
                errln!("error: cannot start a thread: {e}");
                ExitStatus::Invalid
            }
        }
    })
}

/// The exit code once standard output could not be written: reported, and a failure of every
/// command but a run.
fn with_output_failure(cli: &Cli, code: ExitStatus) -> ExitStatus {
    match out::failure() {
        Some(e) => {
            errln!("error: cannot write standard output: {e}");
            without_output(cli, code)
        }
        None => code,
    }
}

/// The exit code of a command whose output was lost. A run's output is its log: the run is
/// done and target/run_results.json holds it. For every other command the output is what was
/// asked for.
fn without_output(cli: &Cli, code: ExitStatus) -> ExitStatus {
    if code == ExitStatus::Success && !cli.command.changes_the_warehouse() {
        ExitStatus::Invalid
    } else {
        code
    }
}

impl Command {
    fn changes_the_warehouse(&self) -> bool {
        matches!(
            self,
            Command::Build(_)
                | Command::Run(_)
                | Command::Seed(_)
                | Command::Test(_)
                | Command::Snapshot(_)
                | Command::Retry
        )
    }
}

fn dispatch(cli: &Cli, argv: &[String]) -> ExitStatus {
    let g = &cli.global;
    match &cli.command {
        Command::Compile { select, inline } => cmd_compile(g, select, inline.as_deref()),
        Command::Ls { select, output } => cmd_ls(g, select, *output),
        Command::Init { dir } => cmd_init(dir),
        Command::Deps { upgrade, lock } => cmd_deps(
            g,
            artifacts::deps::Mode {
                upgrade: *upgrade,
                lock_only: *lock,
            },
        ),
        Command::Build(a) => running::cmd_run(g, a, running::Verb::Build, argv),
        Command::Run(a) => running::cmd_run(g, a, running::Verb::Run, argv),
        Command::Seed(a) => running::cmd_run(g, a, running::Verb::Seed, argv),
        Command::Show {
            model,
            select,
            inline,
            limit,
        } => {
            let shown = match (model.as_deref().or(select.as_deref()), inline.as_deref()) {
                (_, Some(sql)) => running::Shown::Inline(sql),
                (Some(name), None) => running::Shown::Model(name),
                (None, None) => running::Shown::Model(""),
            };
            // -1: every row.
            let limit = usize::try_from(*limit).unwrap_or(i64::MAX as usize);
            running::cmd_show(g, shown, limit)
        }
        Command::Diff { select, format } => diff::cmd_diff(g, select, *format),
        Command::Retry => cmd_retry(g),
        Command::Compare(a) => comparing::cmd_compare(g, a),
        Command::Debug => running::cmd_debug(g),
        Command::Lineage(a) => lineage::cmd_lineage(g, a),
        Command::Docs { command } => docs::cmd_docs(g, command),
        Command::Lint => lineage::cmd_lint(g),
        Command::Clean => running::cmd_clean(g),
        Command::Test(a) => running::cmd_run(g, a, running::Verb::Test, argv),
        Command::Snapshot(a) => running::cmd_run(g, a, running::Verb::Snapshot, argv),
        Command::Source {
            command: SourceCommand::Freshness { select },
        } => running::cmd_freshness(g, select),
    }
}

fn load_options(g: &Global) -> LoadOptions {
    LoadOptions {
        target: g.target.clone(),
        vars: g.vars.clone(),
        env: std::env::vars().collect(),
        profiles_dir: g.profiles_dir.clone(),
        profile: g.profile.clone(),
        invocation: Some(invocation()),
        store_failures: g.store_failures,
        flags: dbt_flags(g),
    }
}

/// dbt's `flags` as macros read them: `WHICH` (the command; `compile` for those that do not
/// build), `FULL_REFRESH`, `STORE_FAILURES`, `EMPTY`.
fn dbt_flags(g: &Global) -> serde_json::Map<String, serde_json::Value> {
    let mut flags = serde_json::Map::new();
    flags.insert("WHICH".into(), g.which.unwrap_or("compile").into());
    flags.insert("FULL_REFRESH".into(), g.full_refresh.into());
    flags.insert("STORE_FAILURES".into(), g.store_failures.into());
    flags.insert("EMPTY".into(), g.empty.into());
    flags
}

/// This run's start and id: dbt's `run_started_at` and `invocation_id` (a UUID's form, from
/// the start and the process).
fn invocation() -> (jiff::Timestamp, String) {
    let now = jiff::Timestamp::now();
    let hash = crate::checksum(&format!("{now} {}", std::process::id()));
    let id = format!(
        "{}-{}-4{}-a{}-{}",
        &hash[0..8],
        &hash[8..12],
        &hash[13..16],
        &hash[17..20],
        &hash[20..32]
    );
    (now, id)
}

/// A compiled project with its selection made, and what the steps after compiling used.
pub(super) struct Loaded {
    pub(crate) c: Compiled,
    /// The files read, for later diagnostics to quote.
    pub(crate) files: Files,
    /// `--state`'s run and how each node differs from it.
    pub(crate) state: Option<Arc<State>>,
    pub(crate) changes: Option<Changes>,
}

/// Loads, compiles, compares with `--state`, selects, defers and checks the SQL; on failure
/// prints the diagnostics and returns the exit code.
fn load_and_compile(
    g: &Global,
    select: &Select,
    inline: Option<&str>,
) -> Result<Loaded, ExitStatus> {
    let state = load_state(g, select)?;
    let mut files = Files::default();
    let mut diags = Diagnostics::default();
    let loaded = load(&g.project_dir, &load_options(g), &mut files, &mut diags).and_then(|p| {
        compile_loaded(
            p,
            (g, select, inline),
            state.clone(),
            &mut files,
            &mut diags,
        )
    });
    let failed = diags.has_errors() || loaded.is_none();
    report(g.log_format, diags, &files);
    if let Some((c, _)) = &loaded {
        print_logs(g.log_format, c);
    }
    match loaded {
        Some((c, changes)) if !failed => Ok(Loaded {
            c,
            files,
            state,
            changes,
        }),
        _ => Err(ExitStatus::Invalid),
    }
}

/// What the renders said with `log(msg, info=True)`: on stderr (what `ls` or `compile
/// --inline` print stays clean to pipe), or as JSON events.
fn print_logs(format: LogFormat, c: &Compiled) {
    for (i, message) in &c.logs {
        let node = &c.nodes()[*i].name;
        match format {
            LogFormat::Text => errln!("{message}"),
            LogFormat::Json => outln!(
                "{}",
                json!({"event": "log", "node": node, "message": message})
            ),
        }
    }
}

/// `--state`'s run, read before anything else.
fn load_state(g: &Global, select: &Select) -> Result<Option<Arc<State>>, ExitStatus> {
    let Some(dir) = &select.state else {
        return Ok(None);
    };
    let state = State::load(&state_dir(g, dir)).map_err(|e| {
        errln!("error: --state: {e}");
        ExitStatus::Invalid
    })?;
    Ok(Some(Arc::new(state)))
}

/// Compiles a loaded project (with the `--inline` SQL as a node of its own), then takes the
/// steps after compiling.
fn compile_loaded(
    mut p: Project,
    (g, select, inline): (&Global, &Select, Option<&str>),
    state: Option<Arc<State>>,
    files: &mut Files,
    diags: &mut Diagnostics,
) -> Option<(Compiled, Option<Changes>)> {
    if let Some(text) = inline {
        p.add_inline(text, files);
    }
    Connection::new(&p.target, &p.root, diags)?;
    let specs = selections(select, diags);
    let opts = CompileOptions {
        repointable: select.defer,
        empty: g.empty,
    };
    let c = compile(p, &opts, diags)?;
    let known_clean = artifacts::read_sql_cache(&g.project_dir);
    after_compile(c, (select, &specs?, state), (&known_clean, files), diags)
}

/// `--select` and `--exclude`, read before compiling so that a bad one is reported with the
/// project's mistakes.
fn selections(s: &Select, diags: &mut Diagnostics) -> Option<(Selection, Selection)> {
    let parsed = Selection::parse(&s.select).and_then(|a| Ok((a, Selection::parse(&s.exclude)?)));
    parsed.map_err(|d| diags.push(d)).ok()
}

/// The steps after compiling: compare with `--state`, select, `--defer`, check the SQL.
fn after_compile(
    mut c: Compiled,
    (select, specs, state): (&Select, &(Selection, Selection), Option<Arc<State>>),
    (known_clean, files): (&HashSet<String>, &mut Files),
    diags: &mut Diagnostics,
) -> Option<(Compiled, Option<Changes>)> {
    let changes = state.as_deref().map(|s| crate::state::changes(&c, s));
    let results = select
        .results
        .clone()
        .or_else(|| state.as_ref().map(|s| Arc::new(s.results.clone())));
    let modified = changes.as_ref().map(Changes::modified);
    let facts = Facts {
        modified: modified.as_deref(),
        results: results.as_deref(),
    };
    c.selected = select_nodes(&c, specs, &facts, diags)?;
    if let (true, Some(state)) = (select.defer, state.as_deref()) {
        crate::state::defer(&mut c, state);
    }
    compile::check(&mut c, known_clean, files, diags);
    Some((c, changes))
}

/// The nodes `--select`/`--exclude` pick (every node when there is no `--select`).
fn select_nodes(
    c: &Compiled,
    (sel, exc): &(Selection, Selection),
    facts: &Facts,
    diags: &mut Diagnostics,
) -> Option<Vec<usize>> {
    match select(&c.graph, c.nodes(), (sel, exc), facts) {
        Ok((selected, warnings)) => {
            diags.extend(warnings);
            Some(selected)
        }
        Err(d) => {
            diags.push(d);
            None
        }
    }
}

/// A `--state` folder as given (relative to where xform runs), or else relative to the project.
fn state_dir(g: &Global, dir: &Path) -> PathBuf {
    if dir.is_absolute() || dir.exists() {
        dir.to_path_buf()
    } else {
        g.project_dir.join(dir)
    }
}

fn report(format: LogFormat, diags: Diagnostics, files: &Files) {
    let errors = diags.error_count();
    report_findings(format, diags, files);
    if errors > 0 && format == LogFormat::Text {
        errln!(
            "xform: {errors} error{} in the project; nothing was written",
            plural(errors)
        );
    }
}

/// Diagnostics rendered at their files and lines (or as JSON events), nothing more.
fn report_findings(format: LogFormat, diags: Diagnostics, files: &Files) {
    let sorted = diags.sorted();
    if sorted.is_empty() {
        return;
    }
    match format {
        LogFormat::Text => {
            err!(
                "{}",
                render(&sorted, files, std::io::stderr().is_terminal())
            );
        }
        LogFormat::Json => {
            for d in &sorted {
                outln!("{}", diagnostic_json(d, files));
            }
        }
    }
}

fn diagnostic_json(d: &Diagnostic, files: &Files) -> serde_json::Value {
    let (line, column) = d.loc.as_ref().map(|l| files.line_col(l)).unzip();
    json!({
        "event": "diagnostic",
        "level": d.severity,
        "message": d.message,
        "file": d.loc.as_ref().map(|l| l.file.to_string()),
        "line": line,
        "column": column,
        "help": d.help,
    })
}

fn cmd_compile(g: &Global, select: &Select, inline: Option<&str>) -> ExitStatus {
    let started = Instant::now();
    let Loaded { c, files, .. } = match load_and_compile(g, select, inline) {
        Ok(ok) => ok,
        Err(code) => return code,
    };
    if let Err(code) = running::check_settings(&c, g.log_format, &files) {
        return code;
    }
    if let Err(code) = lint_on_compile(g, &c, &files) {
        return code;
    }
    if inline.is_some() {
        out!("{}", inline_sql(&c).unwrap_or_default());
        return ExitStatus::Success;
    }
    if let Err(code) = write_compile_artifacts(&g.project_dir, &c) {
        return code;
    }
    print_compiled(g.log_format, &c, started.elapsed().as_secs_f64());
    // The process ends now: freeing tens of thousands of strings one by one only costs time.
    std::mem::forget(c);
    ExitStatus::Success
}

/// With `naming: {on_compile: true}`, names are checked as `xform lint` checks them: findings
/// are shown, and an error-severity one stops the compile before anything is written.
fn lint_on_compile(g: &Global, c: &Compiled, files: &Files) -> Result<(), ExitStatus> {
    if !c.project.naming.as_ref().is_some_and(|n| n.on_compile) {
        return Ok(());
    }
    let (l, _) = lineage::offline_lineage(g, c);
    let mut diags = Diagnostics::default();
    diags.extend(crate::lint::lint(c, &l));
    let failed = diags.has_errors();
    report(g.log_format, diags, files);
    if failed {
        Err(ExitStatus::Invalid)
    } else {
        Ok(())
    }
}

/// The compiled SQL of `--inline`'s text.
fn inline_sql(c: &Compiled) -> Option<String> {
    c.sql[inline_node(c)?].clone()
}

/// The node of `--inline`'s text.
pub(super) fn inline_node(c: &Compiled) -> Option<usize> {
    (c.nodes().iter()).position(|n| n.path.as_ref() == crate::project::INLINE_PATH)
}

/// What `compile` says when done: how many nodes of each kind, in how long.
fn print_compiled(format: LogFormat, c: &Compiled, secs: f64) {
    let counts = count(c);
    let at_run: Vec<&str> = (c.selected.iter())
        .filter(|&&i| c.at_run[i])
        .map(|&i| c.nodes()[i].name.as_str())
        .collect();
    match format {
        LogFormat::Text => {
            outln!("compiled {} in {secs:.2} s", counts_text(&counts));
            if !at_run.is_empty() {
                outln!(
                    "rendered again when built, against the warehouse (compiled as dbt parses them): {}",
                    at_run.join(", ")
                );
            }
        }
        LogFormat::Json => outln!(
            "{}",
            json!({"event": "compiled", "models": counts[0], "seeds": counts[1], "tests": counts[2], "seconds": secs, "render_when_built": at_run})
        ),
    }
}

/// target/compiled, manifest.json and the SQL-check cache.
fn write_compile_artifacts(root: &Path, c: &Compiled) -> Result<(), ExitStatus> {
    let written = artifacts::write_compiled(root, c)
        .and_then(|_| artifacts::write_manifest(root, c))
        .and_then(|_| artifacts::write_sql_cache(root, c));
    written.map_err(|e| {
        errln!("error: cannot write xform's files under target/: {e}");
        ExitStatus::Invalid
    })
}

fn count(c: &Compiled) -> [usize; 4] {
    let mut counts = [0; 4];
    for &i in &c.selected {
        match c.nodes()[i].kind {
            NodeKind::Model => counts[0] += 1,
            NodeKind::Seed => counts[1] += 1,
            NodeKind::Test | NodeKind::UnitTest => counts[2] += 1,
            NodeKind::Snapshot => counts[3] += 1,
            NodeKind::Source => {}
        }
    }
    counts
}

fn counts_text(c: &[usize; 4]) -> String {
    let item = |n: usize, what: &str| format!("{} {what}{}", thousands(n), plural(n));
    let snapshots = match c[3] {
        0 => String::new(),
        n => format!(", {}", item(n, "snapshot")),
    };
    format!(
        "{}, {}, {}{snapshots}",
        item(c[0], "model"),
        item(c[1], "seed"),
        item(c[2], "test")
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// 1234567 → "1,234,567".
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn cmd_ls(g: &Global, select: &Select, output: Output) -> ExitStatus {
    let Loaded { c, .. } = match load_and_compile(g, select, None) {
        Ok(ok) => ok,
        Err(code) => return code,
    };
    let mut out = String::new();
    for &i in &c.selected {
        let n = &c.nodes()[i];
        let line = match output {
            Output::Name if n.kind == NodeKind::Source => format!("source:{}", n.name),
            Output::Name => n.name.clone(),
            Output::Path => n.path.to_string(),
            Output::Json => json!({
                "name": n.name,
                "resource_type": n.kind,
                "unique_id": n.unique_id,
                "path": n.path.as_ref(),
                "materialized": (n.kind == NodeKind::Model).then(|| n.config.materialized()),
                "relation": c.relation_sql(i),
                "depends_on": c.parents(i).iter().map(|&p| c.nodes()[p].unique_id.clone()).collect::<Vec<_>>(),
            })
            .to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out!("{out}");
    std::mem::forget(c);
    ExitStatus::Success
}

/// `xform retry`: the last run's command again, selecting exactly what failed or was skipped.
fn cmd_retry(g: &Global) -> ExitStatus {
    let (argv, statuses) = match last_run(g) {
        Ok(run) => run,
        Err(code) => return code,
    };
    let (prev, verb, mut args) = match retryable(&argv) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let count = statuses.values().filter(|s| retried(s)).count();
    if count == 0 {
        outln!(
            "nothing to retry: `xform {}` had no failed or skipped nodes",
            argv.join(" ")
        );
        return ExitStatus::Success;
    }
    args.select.select = vec!["result:error result:fail result:skipped".into()];
    args.select.exclude.clear();
    args.select.results = Some(Arc::new(statuses));
    let global = retry_global(g, prev);
    if global.log_format == LogFormat::Text {
        outln!(
            "retrying {count} node{} of `xform {}`",
            plural(count),
            argv.join(" ")
        );
    }
    running::cmd_run(&global, &args, verb, &argv)
}

/// The last run's command line and the status of each node, from run_results.json.
fn last_run(g: &Global) -> Result<(Vec<String>, HashMap<String, String>), ExitStatus> {
    let path = g
        .project_dir
        .join(artifacts::TARGET_DIR)
        .join(crate::state::RUN_RESULTS);
    match crate::state::read_run(&path) {
        Ok(Some(run)) => Ok((run.argv, run.statuses)),
        Ok(None) => {
            errln!(
                "error: no previous run to retry: {} does not exist",
                path.display()
            );
            Err(ExitStatus::Invalid)
        }
        Err(e) => {
            errln!("error: {e}");
            Err(ExitStatus::Invalid)
        }
    }
}

/// The last run's command line parsed, when it is a run `retry` can repeat: its global
/// options, verb and arguments.
fn retryable(argv: &[String]) -> Result<(Global, running::Verb, running::RunArgs), ExitStatus> {
    let prev = match Cli::try_parse_from(std::iter::once("xform".to_string()).chain(argv.to_vec()))
    {
        Ok(cli) => cli,
        Err(_) => {
            errln!(
                "error: cannot read the last run's command line ({})",
                argv.join(" ")
            );
            return Err(ExitStatus::Invalid);
        }
    };
    match prev.command {
        Command::Build(a) => Ok((prev.global, running::Verb::Build, a)),
        Command::Run(a) => Ok((prev.global, running::Verb::Run, a)),
        Command::Seed(a) => Ok((prev.global, running::Verb::Seed, a)),
        Command::Test(a) => Ok((prev.global, running::Verb::Test, a)),
        Command::Snapshot(a) => Ok((prev.global, running::Verb::Snapshot, a)),
        _ => {
            errln!(
                "error: the last run (`xform {}`) is not one xform can retry",
                argv.join(" ")
            );
            Err(ExitStatus::Invalid)
        }
    }
}

/// Whether `retry` runs a node that ended with this status.
fn retried(status: &str) -> bool {
    matches!(status, "error" | "fail" | "skipped" | "runtime error")
}

/// The global options of a retry: this command's, else the last run's (JSON logs when
/// either asked for them).
fn retry_global(g: &Global, prev: Global) -> Global {
    Global {
        project_dir: g.project_dir.clone(),
        target: g.target.clone().or(prev.target),
        vars: g.vars.clone().or(prev.vars),
        log_format: retry_log_format(g.log_format, prev.log_format),
        profiles_dir: g.profiles_dir.clone().or(prev.profiles_dir),
        profile: g.profile.clone().or(prev.profile),
        store_failures: g.store_failures,
        empty: g.empty,
        which: g.which,
        full_refresh: g.full_refresh,
    }
}

/// JSON logs when this command or the last run asked for them.
fn retry_log_format(now: LogFormat, last: LogFormat) -> LogFormat {
    if now == LogFormat::Json {
        LogFormat::Json
    } else {
        last
    }
}

/// `xform deps`: packages.yml resolved (or package-lock.yml followed) and installed.
fn cmd_deps(g: &Global, mode: artifacts::deps::Mode) -> ExitStatus {
    let opts = load_options(g);
    let (mut files, mut diags) = (Files::default(), Diagnostics::default());
    let mut say = |line: String| outln!("{line}");
    let installed = artifacts::deps::install(
        &g.project_dir,
        &opts,
        mode,
        &mut say,
        (&mut files, &mut diags),
    );
    let failed = diags.has_errors();
    report(g.log_format, diags, &files);
    if failed {
        return ExitStatus::Invalid;
    }
    for p in &installed {
        outln!("installed {} ({})", p.name, p.detail());
    }
    if installed.is_empty() && !mode.lock_only {
        outln!("no packages to install (no packages.yml or dependencies.yml)");
    }
    ExitStatus::Success
}

fn cmd_init(dir: &Path) -> ExitStatus {
    match scaffold::init(dir) {
        Ok(()) => {
            outln!("created a project in {}", dir.display());
            outln!("next: cd {} && xform compile", dir.display());
            ExitStatus::Success
        }
        Err(e) => {
            errln!("error: {e}");
            ExitStatus::Invalid
        }
    }
}
