//! What a run leaves behind: `target/run_results.json`, `target/run/**.sql` (the statements as
//! executed), UTF-8 copies of seeds in other encodings, and `xform clean`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::json;

use super::{TARGET_DIR, atomic_write, write_derived};
use crate::compile::Compiled;
use crate::execute::NodeResult;
use crate::materialize::Job;
use crate::testing::TestResult;

/// How the run was invoked, for `run_results.json` (and a later `xform retry`).
pub(crate) struct RunInfo<'a> {
    pub(crate) command: &'a str,
    pub(crate) args: &'a [String],
    pub(crate) started_at: SystemTime,
    pub(crate) elapsed: Duration,
}

#[derive(Serialize)]
struct Timing {
    name: &'static str,
    started_at: String,
    completed_at: String,
}

#[derive(Serialize)]
struct ResultEntry<'a> {
    unique_id: &'a str,
    status: serde_json::Value,
    timing: Vec<Timing>,
    execution_time: f64,
    adapter_response: serde_json::Value,
    message: Option<&'a str>,
    relation_name: Option<String>,
    compiled_path: Option<String>,
    run_path: Option<String>,
    /// dbt's: whether the node has SQL, and that SQL (with relation names resolved).
    compiled: bool,
    compiled_code: Option<&'a str>,
    /// dbt's `thread_id` (xform's workers are not threads dbt names: always `Thread-1`).
    thread_id: &'static str,
    /// A test's failing rows counted (null for other nodes, as in dbt), and up to five of them.
    failures: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failing_rows: Option<serde_json::Value>,
    /// A microbatch model's batches: `successful` and `failed` intervals, as dbt records them.
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_results: Option<serde_json::Value>,
}

const THREAD: &str = "Thread-1";

fn timestamp(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Where the statements of a node's run are written, relative to the project root.
/// A seed's file is CSV; what ran for it is SQL, so it gets a `.sql` name.
pub(crate) fn run_path(c: &Compiled, node: usize) -> String {
    let n = &c.nodes()[node];
    if !n.path.ends_with(".sql") {
        // Declared in a property file, which may declare more.
        return format!("{TARGET_DIR}/run/{}/{}.sql", n.path, n.name);
    }
    let path = Path::new(&*n.path).with_extension("sql");
    format!("{TARGET_DIR}/run/{}", path.display())
}

/// `target/run_results.json`.
pub(crate) fn write_run_results(
    root: &Path,
    c: &Compiled,
    jobs: &[Job],
    results: &[NodeResult],
    info: &RunInfo<'_>,
) -> std::io::Result<()> {
    let entries: Vec<ResultEntry<'_>> = results
        .iter()
        .flat_map(|r| {
            let job = &jobs[r.job];
            let build = job.builds().then(|| result_entry(c, job, r));
            build
                .into_iter()
                .chain(r.tests.iter().map(|t| test_entry(c, t)))
        })
        .collect();
    let doc = json!({
        "metadata": {
            // What dbt tooling checks before it reads the file: this is dbt's run-results v6,
            // as dbt 1.11 (whose behaviour xform follows) writes it.
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": crate::project::DBT_VERSION,
            "invocation_id": c.project.invocation.1,
            "env": {},
            "xform_version": env!("CARGO_PKG_VERSION"),
            "generated_at": timestamp(SystemTime::now()),
            "invocation_started_at": timestamp(info.started_at),
            "project_name": c.project.name,
            "target": c.project.target.name,
        },
        "args": { "command": info.command, "argv": info.args },
        "elapsed_time": info.elapsed.as_secs_f64(),
        "results": entries,
    });
    atomic_write(&root.join(TARGET_DIR).join("run_results.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &doc).map_err(std::io::Error::other)
    })
}

fn timing(started_at: SystemTime, seconds: f64) -> Vec<Timing> {
    vec![Timing {
        name: "execute",
        started_at: timestamp(started_at),
        completed_at: timestamp(started_at + Duration::from_secs_f64(seconds)),
    }]
}

fn test_entry<'a>(c: &'a Compiled, t: &'a TestResult) -> ResultEntry<'a> {
    let n = &c.nodes()[t.node];
    ResultEntry {
        unique_id: &n.unique_id,
        status: json!(t.status),
        timing: timing(t.started_at, t.seconds),
        execution_time: t.seconds,
        adapter_response: json!({}),
        message: t.message.as_deref(),
        relation_name: None,
        compiled_path: c.compiled_path(t.node),
        run_path: None,
        compiled: c.sql[t.node].is_some(),
        compiled_code: c.sql[t.node].as_deref(),
        thread_id: THREAD,
        failures: t.failures,
        failing_rows: t.rows.as_ref().map(|rows| json!(rows.objects())),
        batch_results: None,
    }
}

fn result_entry<'a>(c: &'a Compiled, job: &Job, r: &'a NodeResult) -> ResultEntry<'a> {
    let n = &c.nodes()[job.node];
    ResultEntry {
        unique_id: &n.unique_id,
        status: json!(r.status),
        timing: timing(r.started_at, r.seconds),
        execution_time: r.seconds,
        adapter_response: json!({ "rows_affected": r.rows }),
        message: r.message.as_deref(),
        relation_name: c.relation_sql(job.node),
        compiled_path: c.compiled_path(job.node),
        run_path: (!r.statements.is_empty()).then(|| run_path(c, job.node)),
        compiled: c.sql[job.node].is_some(),
        compiled_code: c.sql[job.node].as_deref(),
        thread_id: THREAD,
        failures: None,
        failing_rows: None,
        batch_results: (!r.batches.is_empty()).then(|| {
            let (ok, failed): (Vec<_>, Vec<_>) = r.batches.iter().partition(|b| b.error.is_none());
            json!({
                "successful": ok.iter().map(|b| json!([b.start, b.end])).collect::<Vec<_>>(),
                "failed": failed
                    .iter()
                    .map(|b| json!({"start": b.start, "end": b.end, "message": b.error}))
                    .collect::<Vec<_>>(),
            })
        }),
    }
}

/// `target/run/<model path>`: each node's statements as executed, separated by `;`.
pub(crate) fn write_run_sql(
    root: &Path,
    c: &Compiled,
    jobs: &[Job],
    results: &[NodeResult],
) -> std::io::Result<()> {
    let files: Vec<(PathBuf, String)> = results
        .iter()
        .filter(|r| !r.statements.is_empty() && jobs[r.job].builds())
        .map(|r| {
            let text = r.statements.join(";\n\n") + ";\n";
            (root.join(run_path(c, jobs[r.job].node)), text)
        })
        .collect();
    write_derived(&root.join(TARGET_DIR).join("run"), &files)
}

/// Writes a new project's files (`xform init`) under `dir`, each with the user's usual
/// permissions.
pub(crate) fn write_new_project(dir: &Path, files: &[(&str, &str)]) -> Result<(), String> {
    for (path, text) in files {
        let full = dir.join(path);
        let parent = full.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .and_then(|_| std::fs::write(&full, text))
            .map_err(|e| format!("cannot write {}: {e}", full.display()))?;
    }
    Ok(())
}

/// Removes what xform wrote under `target/` (not the warehouse, and nothing of Cargo's);
/// returns the paths removed, relative to the root.
pub(crate) fn clean(root: &Path) -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in [
        "compiled",
        "run",
        ".xform",
        "manifest.json",
        "run_results.json",
    ] {
        let rel = format!("{TARGET_DIR}/{name}");
        let path = root.join(&rel);
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match gone {
            Ok(()) => removed.push(rel),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// `target/sources.json`: the result of `xform source freshness`, per source table.
/// `target/<name>`: a JSON document (`sources.json`, `compare.json`).
pub(crate) fn write_json(root: &Path, name: &str, doc: &serde_json::Value) -> std::io::Result<()> {
    let path = root.join(TARGET_DIR).join(name);
    atomic_write(&path, |w| {
        serde_json::to_writer_pretty(&mut *w, doc)?;
        writeln!(w)
    })
}
