//! `xform compare REL_A REL_B` and what `build --compare-to DIR` prints after a build.

use std::sync::Arc;

use serde_json::json;

use super::warehouse::{connection, open_session};
use super::{ExitStatus, Global, Loaded, LogFormat, Select, load_and_compile};
use crate::adapter::Session;
use crate::artifacts;
use crate::compare::{self, CompareOptions, Side};
use crate::compile::Compiled;
use crate::execute::{Outcome, Status};
use crate::materialize::Job;
use crate::project::NodeKind;
use crate::state::State;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompareFormat {
    Text,
    Json,
    Markdown,
}

#[derive(clap::Args, Debug)]
pub(crate) struct CompareArgs {
    /// The AS-IS relation: `schema.table`, a model or seed name, or either behind `TARGET:`
    /// to read it through another target of the same type (e.g. `prod:analytics.orders`).
    a: String,
    /// The TO-BE relation, written the same way.
    b: String,
    /// Match rows on these columns (comma-separated) and report rows only in A, only in B,
    /// and changed.
    #[arg(long, value_delimiter = ',')]
    key: Vec<String>,
    /// Compare only these columns (comma-separated; default: all both sides have).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Exit 1 when the relations differ.
    #[arg(long)]
    fail_on_diff: bool,
    #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
    format: CompareFormat,
    /// Differing rows shown of each kind.
    #[arg(long, default_value_t = 5, value_parser = super::row_limit())]
    limit: usize,
}

pub(crate) fn cmd_compare(g: &Global, a: &CompareArgs) -> ExitStatus {
    let Loaded { c, .. } = match load_and_compile(g, &Select::default(), None) {
        Ok(ok) => ok,
        Err(code) => return code,
    };
    let (_warehouse, mut session) = match open_session(&c.project) {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    let mut sides = Vec::new();
    for rel in [&a.a, &a.b] {
        match side(g, &c, session.as_mut(), rel) {
            Ok(s) => sides.push(s),
            Err(e) => {
                errln!("error: {e}");
                return ExitStatus::Invalid;
            }
        }
    }
    let (b, a_side) = (sides.pop(), sides.pop());
    let (Some(a_side), Some(b)) = (a_side, b) else {
        return ExitStatus::Invalid;
    };
    let opts = CompareOptions {
        key: a.key.clone(),
        columns: a.columns.clone(),
        limit: a.limit,
    };
    let report = match compare::compare(
        session.as_mut(),
        c.project.target.dialect(),
        (a_side, b),
        &opts,
    ) {
        Ok(r) => r,
        Err(e) => {
            errln!("error: cannot compare {} with {}: {e}", a.a, a.b);
            return ExitStatus::Invalid;
        }
    };
    match a.format {
        CompareFormat::Text => out!("{}", compare::text(&report)),
        CompareFormat::Markdown => out!("{}", compare::markdown(&report)),
        CompareFormat::Json => {
            let mut doc = json!(report);
            doc["identical"] = json!(report.identical());
            outln!("{doc}");
        }
    }
    if a.fail_on_diff && !report.identical() {
        ExitStatus::Failed
    } else {
        ExitStatus::Success
    }
}

/// `[TARGET:](schema.table | catalog.schema.table | model)` as a FROM item; another target's
/// warehouse is attached for reading when it is a different database.
fn side(g: &Global, c: &Compiled, session: &mut dyn Session, rel: &str) -> Result<Side, String> {
    let (target, name) = match rel.split_once(':') {
        Some((t, n)) => (Some(t), n),
        None => (None, rel),
    };
    let kind = c.project.target.kind;
    let dialect = kind.dialect();
    let mut prefix = String::new();
    let other = match target.filter(|t| *t != c.project.target.name) {
        Some(t) => {
            let global = Global {
                project_dir: g.project_dir.clone(),
                target: Some(t.to_string()),
                vars: g.vars.clone(),
                log_format: g.log_format,
            };
            let Loaded { c: other, .. } = load_and_compile(&global, &Select::default(), None)
                .map_err(|_| format!("cannot use target `{t}` (see above)"))?;
            let ot = &other.project.target;
            if ot.kind != kind {
                return Err(format!(
                    "target `{t}` is {}, `{}` is {}: compare reads both through one connection",
                    ot.kind.name(),
                    c.project.target.name,
                    kind.name()
                ));
            }
            if let Some(path) = connection(&c.project)?.attachable(&connection(&other.project)?) {
                if !path.exists() {
                    return Err(format!(
                        "target `{t}`'s database {} does not exist",
                        path.display()
                    ));
                }
                let alias = format!("xform_{t}");
                let attach = dialect
                    .attach(&path.to_string_lossy(), &alias)
                    .ok_or_else(|| {
                        format!(
                            "{} cannot read target `{t}` beside `{}`",
                            kind.name(),
                            c.project.target.name
                        )
                    })?;
                session
                    .execute(&attach)
                    .map_err(|e| format!("cannot attach target `{t}`: {e}"))?;
                prefix = format!("{}.", dialect.quote(&alias));
            }
            Some(other)
        }
        None => None,
    };
    let project = other.as_ref().unwrap_or(c);
    let sql = if name.contains('.') {
        name.split('.')
            .map(|p| dialect.quote(p))
            .collect::<Vec<_>>()
            .join(".")
    } else {
        let i = project
            .nodes()
            .iter()
            .position(|n| {
                n.name == name
                    && matches!(
                        n.kind,
                        NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot
                    )
            })
            .ok_or_else(|| {
                format!(
                    "`{name}` is neither schema.table nor a model, seed or snapshot of this project"
                )
            })?;
        project
            .relation_sql(i)
            .ok_or_else(|| format!("`{name}` is ephemeral: it has no relation to compare"))?
    };
    let sql = format!("{prefix}{sql}");
    session
        .query(&dialect.select_all(&sql), 0)
        .map_err(|e| format!("cannot read {rel}: {e}"))?;
    Ok(Side {
        label: rel.to_string(),
        sql,
    })
}

/// The state `--compare-to DIR` names: `--state`'s when it is the same folder, else read now,
/// before anything runs (a missing manifest is exit 2).
pub(crate) fn compare_state(
    g: &Global,
    state: Option<&Arc<State>>,
    dir: &std::path::Path,
) -> Result<Arc<State>, ExitStatus> {
    let dir = super::state_dir(g, dir);
    match state {
        Some(s) if s.dir == dir => Ok(s.clone()),
        _ => State::load(&dir).map(Arc::new).map_err(|e| {
            errln!("error: --compare-to: {e}");
            ExitStatus::Invalid
        }),
    }
}

/// `build --compare-to DIR`: each relation this run rebuilt, compared with the one the state
/// recorded (production's); a summary printed and `target/compare.json`.
pub(crate) fn compare_to(
    g: &Global,
    c: &Compiled,
    state: &State,
    (jobs, outcome): (&[Job], &Outcome),
    session: &mut dyn Session,
) {
    let kind = c.project.target.kind;
    let mut entries = Vec::new();
    let mut lines = Vec::new();
    for r in outcome
        .results
        .iter()
        .filter(|r| r.status == Status::Success)
    {
        let i = jobs[r.job].node;
        let n = &c.nodes()[i];
        if !jobs[r.job].builds()
            || !matches!(
                n.kind,
                NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot
            )
        {
            continue;
        }
        let (Some(new), Some(old)) = (
            c.relation_sql(i),
            state
                .nodes
                .get(&n.unique_id)
                .and_then(|o| o.relation_name.clone()),
        ) else {
            continue;
        };
        if new == old {
            continue;
        }
        let key = n
            .config
            .columns("unique_key")
            .ok()
            .flatten()
            .unwrap_or_default();
        let opts = CompareOptions {
            key,
            columns: Vec::new(),
            limit: 3,
        };
        let sides = (
            Side {
                label: old.clone(),
                sql: old,
            },
            Side {
                label: new.clone(),
                sql: new,
            },
        );
        let (verdict, doc) = match compare::compare(session, kind.dialect(), sides, &opts) {
            Ok(report) => {
                let mut doc = json!(report);
                doc["identical"] = json!(report.identical());
                (report.headline(), doc)
            }
            Err(e) => (
                format!("not compared: {e}"),
                json!({"error": e.to_string()}),
            ),
        };
        lines.push((n.name.clone(), verdict));
        entries.push(json!({"unique_id": n.unique_id, "name": n.name, "comparison": doc}));
    }
    let doc = json!({ "state": state.dir, "results": entries });
    if let Err(e) = artifacts::write_json(&g.project_dir, "compare.json", &doc) {
        errln!("warning: cannot write target/compare.json: {e}");
    }
    match g.log_format {
        LogFormat::Json => {
            for e in &entries {
                outln!("{}", json!({"event": "compare", "result": e}));
            }
        }
        LogFormat::Text => {
            outln!(
                "\nCompared with {} ({} relations):",
                state.dir.display(),
                lines.len()
            );
            let width = lines.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (name, verdict) in &lines {
                outln!("  {name:<width$}  {verdict}");
            }
        }
    }
}
