//! `xform compare REL_A REL_B` and what `build --compare-to DIR` prints after a build.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::warehouse::{connection, open_session};
use super::{ExitStatus, Global, Loaded, LogFormat, Select, load_and_compile};
use crate::adapter::{Session, Warehouse};
use crate::artifacts;
use crate::compare::{self, CompareOptions, Reader, Side};
use crate::compile::Compiled;
use crate::execute::{Outcome, Status};
use crate::materialize::Job;
use crate::sql::{Dialect, Kind};
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
    let sides = match sides(g, &c, session.as_mut(), a) {
        Ok(sides) => sides,
        Err(code) => return code,
    };
    let report = match compare_sides(session.as_mut(), &c, sides, a) {
        Ok(r) => r,
        Err(code) => return code,
    };
    print_report(a.format, &report);
    if a.fail_on_diff && !report.identical() {
        ExitStatus::Failed
    } else {
        ExitStatus::Success
    }
}

/// A side in a warehouse of its own (another server, another kind of warehouse), read
/// through a session there.
struct Apart {
    _warehouse: Arc<dyn Warehouse>,
    session: Box<dyn Session>,
    kind: Kind,
}

impl Apart {
    fn reader(&mut self) -> Reader<'_> {
        Reader {
            session: self.session.as_mut(),
            kind: self.kind,
        }
    }
}

type Sides = ((Side, Option<Apart>), (Side, Option<Apart>));

/// The two relations to compare, each checked to be readable.
fn sides(
    g: &Global,
    c: &Compiled,
    session: &mut dyn Session,
    a: &CompareArgs,
) -> Result<Sides, ExitStatus> {
    let mut read = |rel: &str| {
        side(g, c, session, rel).map_err(|e| {
            errln!("error: {e}");
            ExitStatus::Invalid
        })
    };
    Ok((read(&a.a)?, read(&a.b)?))
}

/// The comparison `a` asks for of the two sides: on one connection, or, when a side lives in
/// another warehouse, each where it is.
fn compare_sides(
    session: &mut dyn Session,
    c: &Compiled,
    ((side_a, apart_a), (side_b, apart_b)): Sides,
    a: &CompareArgs,
) -> Result<compare::Report, ExitStatus> {
    let opts = CompareOptions {
        key: a.key.clone(),
        columns: a.columns.clone(),
        limit: a.limit,
    };
    let kind = c.project.target.kind;
    let (mut apart_a, mut apart_b) = (apart_a, apart_b);
    let here = |session| Reader { session, kind };
    let readers = match (apart_a.as_mut(), apart_b.as_mut()) {
        (None, None) => None,
        (Some(pa), Some(pb)) => Some((pa.reader(), pb.reader())),
        (Some(pa), None) => Some((pa.reader(), here(session))),
        (None, Some(pb)) => Some((here(session), pb.reader())),
    };
    let compared = match readers {
        Some((ra, rb)) => compare::compare_apart((ra, side_a), (rb, side_b), &opts),
        None => compare::compare(session, kind, (side_a, side_b), &opts),
    };
    compared.map_err(|e| {
        errln!("error: cannot compare {} with {}: {e}", a.a, a.b);
        ExitStatus::Invalid
    })
}

fn print_report(format: CompareFormat, report: &compare::Report) {
    match format {
        CompareFormat::Text => out!("{}", compare::text(report)),
        CompareFormat::Markdown => out!("{}", compare::markdown(report)),
        CompareFormat::Json => {
            let mut doc = json!(report);
            doc["identical"] = json!(report.identical());
            outln!("{doc}");
        }
    }
}

/// `[TARGET:](schema.table | catalog.schema.table | model)` as a FROM item: read through this
/// target's connection (another DuckDB file attached beside it), or, when the target lives in
/// another warehouse, through a session of its own.
fn side(
    g: &Global,
    c: &Compiled,
    session: &mut dyn Session,
    rel: &str,
) -> Result<(Side, Option<Apart>), String> {
    let (target, name) = match rel.split_once(':') {
        Some((t, n)) => (Some(t), n),
        None => (None, rel),
    };
    let label = rel.to_string();
    let Some(t) = target.filter(|t| *t != c.project.target.name) else {
        let sql = named_relation(c, c, name)?;
        readable(session, c.project.target.dialect(), &sql, rel)?;
        return Ok((Side { label, sql }, None));
    };
    let other = other_target(g, t)?;
    let (here, there) = (connection(&c.project)?, connection(&other.project)?);
    if here.same_warehouse(&there) {
        let sql = named_relation(c, &other, name)?;
        readable(session, c.project.target.dialect(), &sql, rel)?;
        return Ok((Side { label, sql }, None));
    }
    if let Some(path) = here.attachable(&there) {
        let prefix = attach(c, session, t, &path)?;
        let sql = format!("{prefix}{}", named_relation(c, &other, name)?);
        readable(session, c.project.target.dialect(), &sql, rel)?;
        return Ok((Side { label, sql }, None));
    }
    let warehouse = there
        .open()
        .map_err(|e| format!("cannot open target `{t}`: {e}"))?;
    let mut apart = Apart {
        session: warehouse
            .session()
            .map_err(|e| format!("target `{t}`: {e}"))?,
        _warehouse: warehouse,
        kind: other.project.target.kind,
    };
    let sql = named_relation(&other, &other, name)?;
    readable(apart.session.as_mut(), apart.kind.dialect(), &sql, rel)?;
    Ok((Side { label, sql }, Some(apart)))
}

/// An error unless `sql` (a FROM item) can be read.
fn readable(
    session: &mut dyn Session,
    dialect: &dyn Dialect,
    sql: &str,
    rel: &str,
) -> Result<(), String> {
    session
        .query(&dialect.select_all(sql), 0)
        .map(|_| ())
        .map_err(|e| format!("cannot read {rel}: {e}"))
}

/// Target `t`'s project, compiled.
fn other_target(g: &Global, t: &str) -> Result<Compiled, String> {
    let global = Global {
        target: Some(t.to_string()),
        ..g.clone()
    };
    load_and_compile(&global, &Select::default(), None)
        .map(|l| l.c)
        .map_err(|_| format!("cannot use target `{t}` (see above)"))
}

/// Attaches target `t`'s database file for reading; the prefix of its relations.
fn attach(c: &Compiled, session: &mut dyn Session, t: &str, path: &Path) -> Result<String, String> {
    let kind = c.project.target.kind;
    let dialect = kind.dialect();
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
    Ok(format!("{}.", dialect.quote(&alias)))
}

/// What `name` names in `project`, quoted in `c`'s dialect: `schema.table` as written, or the
/// relation of a model, seed or snapshot.
fn named_relation(c: &Compiled, project: &Compiled, name: &str) -> Result<String, String> {
    let dialect = c.project.target.kind.dialect();
    if name.contains('.') {
        return Ok(name
            .split('.')
            .map(|p| dialect.quote(p))
            .collect::<Vec<_>>()
            .join("."));
    }
    let i = project
        .nodes()
        .iter()
        .position(|n| n.name == name && n.kind.builds_relation())
        .ok_or_else(|| {
            format!(
                "`{name}` is neither schema.table nor a model, seed or snapshot of this project"
            )
        })?;
    project
        .relation_sql(i)
        .ok_or_else(|| format!("`{name}` is ephemeral: it has no relation to compare"))
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
    let mut entries = Vec::new();
    let mut lines = Vec::new();
    for i in rebuilt(c, jobs, outcome) {
        let n = &c.nodes()[i];
        let Some(sides) = changed_relation(c, state, i) else {
            continue;
        };
        let (verdict, doc) = compare_relation(c, i, sides, session);
        lines.push((n.name.clone(), verdict));
        entries.push(json!({"unique_id": n.unique_id, "name": n.name, "comparison": doc}));
    }
    let doc = json!({ "state": state.dir, "results": entries });
    if let Err(e) = artifacts::write_json(&g.project_dir, "compare.json", &doc) {
        errln!("warning: cannot write target/compare.json: {e}");
    }
    print_comparisons(g.log_format, state, &lines, &entries);
}

/// The models, seeds and snapshots this run built.
fn rebuilt<'a>(
    c: &'a Compiled,
    jobs: &'a [Job],
    outcome: &'a Outcome,
) -> impl Iterator<Item = usize> + 'a {
    outcome
        .results
        .iter()
        .filter(|r| r.status == Status::Success)
        .filter(|r| jobs[r.job].builds())
        .map(|r| jobs[r.job].node)
        .filter(|&i| c.nodes()[i].kind.builds_relation())
}

/// Node `i`'s relation as the state recorded it and as this run built it, when they differ.
fn changed_relation(c: &Compiled, state: &State, i: usize) -> Option<(Side, Side)> {
    let n = &c.nodes()[i];
    let new = c.relation_sql(i)?;
    let old = state
        .nodes
        .get(&n.unique_id)
        .and_then(|o| o.relation_name.clone())?;
    if new == old {
        return None;
    }
    Some((
        Side {
            label: old.clone(),
            sql: old,
        },
        Side {
            label: new.clone(),
            sql: new,
        },
    ))
}

/// Compares the state's relation of node `i` with the new one, matching rows on its
/// `unique_key`: a one-line verdict and the report for compare.json.
fn compare_relation(
    c: &Compiled,
    i: usize,
    sides: (Side, Side),
    session: &mut dyn Session,
) -> (String, serde_json::Value) {
    let key = c.nodes()[i]
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
    match compare::compare(session, c.project.target.kind, sides, &opts) {
        Ok(report) => {
            let mut doc = json!(report);
            doc["identical"] = json!(report.identical());
            (report.headline(), doc)
        }
        Err(e) => (
            format!("not compared: {e}"),
            json!({"error": e.to_string()}),
        ),
    }
}

/// The comparisons after a run: JSON events, or a line per relation under a heading.
fn print_comparisons(
    format: LogFormat,
    state: &State,
    lines: &[(String, String)],
    entries: &[serde_json::Value],
) {
    match format {
        LogFormat::Json => {
            for e in entries {
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
            for (name, verdict) in lines {
                outln!("  {name:<width$}  {verdict}");
            }
        }
    }
}
