//! `xform lineage`: column lineage from the models' SQL, as text, JSON or the source → target
//! mapping sheet (CSV).

use clap::ValueEnum;
use serde_json::json;

use super::{ExitStatus, Global, Loaded, Select, load_and_compile};
use crate::compile::Compiled;
use crate::diagnostics::did_you_mean;
use crate::lineage::{self, Hop, Lineage, Step};
use crate::project::NodeKind;

#[derive(clap::Args, Debug)]
pub(super) struct LineageArgs {
    /// MODEL or MODEL.COLUMN (a seed, a snapshot or a source's `source.table` too); without
    /// it, every model's columns one step up: the whole project's mapping sheet.
    what: Option<String>,
    /// Where the columns come from, to the seeds and sources (the default).
    #[arg(long, conflicts_with = "downstream")]
    upstream: bool,
    /// What reads the columns, to the last model.
    #[arg(long)]
    downstream: bool,
    /// At most this many steps.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    depth: Option<u32>,
    #[arg(long, value_enum, default_value_t = LineageFormat::Text)]
    format: LineageFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum LineageFormat {
    Text,
    Json,
    /// The mapping sheet: source relation and column → target relation and column.
    Csv,
}

pub(super) fn cmd_lineage(g: &Global, a: &LineageArgs) -> ExitStatus {
    let Loaded { c, .. } = match load_and_compile(g, &Select::default(), None) {
        Ok(ok) => ok,
        Err(code) => return code,
    };
    let (l, known) = offline_lineage(g, &c);
    let (named, start, step, depth) = match &a.what {
        None => (None, every_model_column(&c, &l), Step::Up, Some(1)),
        Some(what) => match starting_columns(&c, &l, &known, what) {
            Ok((node, start)) => {
                let step = if a.downstream { Step::Down } else { Step::Up };
                (Some(node), start, step, a.depth.map(|d| d as usize))
            }
            Err(message) => {
                errln!("error: {message}");
                return ExitStatus::Invalid;
            }
        },
    };
    let hops = lineage::walk(&l, &start, step, depth);
    report_unresolved(&c, &l, &hops, named);
    match a.format {
        LineageFormat::Text => print_text(&c, &l, &hops, &start),
        LineageFormat::Json => outln!("{}", hops_json(&c, &l, &hops, &start)),
        LineageFormat::Csv => out!("{}", mapping_sheet(&c, &hops)),
    }
    ExitStatus::Success
}

/// The project's lineage with what the last `docs generate` read of the warehouse
/// (target/catalog.json), if anything.
pub(super) fn offline_lineage(g: &Global, c: &Compiled) -> (Lineage, lineage::Known) {
    let catalog = crate::state::read_catalog(&g.project_dir);
    let known = lineage::known_columns(c, catalog.as_ref());
    (lineage::compute(c, &known), known)
}

/// `xform lint`: names against the naming standard; exit 1 when a finding is an error.
pub(super) fn cmd_lint(g: &Global) -> ExitStatus {
    let Loaded { c, files, .. } = match load_and_compile(g, &Select::default(), None) {
        Ok(ok) => ok,
        Err(code) => return code,
    };
    if c.project.naming.is_none() {
        errln!(
            "error: {} has no `naming:` standard to check names against",
            c.project.file
        );
        errln!(
            "help: add e.g. `naming: {{glossary: glossary.csv, suffixes: [id, nm, dt, amt, cnt]}}`"
        );
        return ExitStatus::Invalid;
    }
    let (l, _) = offline_lineage(g, &c);
    let found = crate::lint::lint(&c, &l);
    let errors = found.iter().filter(|d| d.is_error()).count();
    let n = found.len();
    let mut diags = crate::diagnostics::Diagnostics::default();
    diags.extend(found);
    super::report_findings(g.log_format, diags, &files);
    match (n, errors) {
        (0, _) => outln!("Names follow the naming standard."),
        (n, e) => outln!(
            "{n} naming finding{} ({e} error{})",
            super::plural(n),
            super::plural(e)
        ),
    }
    if errors > 0 {
        ExitStatus::Failed
    } else {
        ExitStatus::Success
    }
}

/// Every column of every model, for the project's mapping sheet.
fn every_model_column(c: &Compiled, l: &Lineage) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for &i in c.graph.order() {
        for col in l.nodes[i].iter().flat_map(|n| &n.columns) {
            out.push((i, col.name.clone()));
        }
    }
    out
}

/// The node `MODEL` or `MODEL.COLUMN` names, and the (node, column) pairs.
fn starting_columns(
    c: &Compiled,
    l: &Lineage,
    known: &lineage::Known,
    what: &str,
) -> Result<(usize, Vec<(usize, String)>), String> {
    let columns_of = |i: usize| -> Vec<String> {
        match (&l.nodes[i], &known.firm[i]) {
            (_, Some(cols)) => cols.clone(),
            (Some(nl), None) => nl.columns.iter().map(|c| c.name.clone()).collect(),
            (None, None) => known.declared[i].clone().unwrap_or_default(),
        }
    };
    if let Some(i) = node_named(c, what) {
        return Ok((i, columns_of(i).into_iter().map(|col| (i, col)).collect()));
    }
    let Some((node, column)) = what.rsplit_once('.') else {
        return Err(not_a_node(c, what));
    };
    let i = node_named(c, node).ok_or_else(|| not_a_node(c, node))?;
    let columns = columns_of(i);
    match columns.iter().find(|col| col.eq_ignore_ascii_case(column)) {
        Some(col) => Ok((i, vec![(i, col.clone())])),
        None => {
            let mut m = format!("`{node}` has no column `{column}`");
            if let Some(help) = did_you_mean(column, columns.iter().map(String::as_str)) {
                m.push_str(&format!("; {help}"));
            }
            Err(m)
        }
    }
}

fn node_named(c: &Compiled, name: &str) -> Option<usize> {
    c.nodes().iter().position(|n| {
        n.name == name
            && matches!(
                n.kind,
                NodeKind::Model | NodeKind::Seed | NodeKind::Source | NodeKind::Snapshot
            )
    })
}

fn not_a_node(c: &Compiled, name: &str) -> String {
    let names = c
        .nodes()
        .iter()
        .filter(|n| !matches!(n.kind, NodeKind::Test | NodeKind::UnitTest))
        .map(|n| n.name.as_str());
    match did_you_mean(name, names) {
        Some(help) => format!("`{name}` is not a model, seed, snapshot or source; {help}"),
        None => format!("`{name}` is not a model, seed, snapshot or source in this project"),
    }
}

/// The name a node's columns are shown under: its relation, or its name (ephemeral models).
fn shown(c: &Compiled, i: usize) -> String {
    c.relations[i]
        .as_ref()
        .map_or_else(|| c.nodes()[i].name.clone(), ToString::to_string)
}

/// What the node asked about and those the walk met (without one: every node) left
/// unresolved, on stderr, once each.
fn report_unresolved(c: &Compiled, l: &Lineage, hops: &[Hop], named: Option<usize>) {
    let mut nodes: Vec<usize> = match named {
        Some(n) => vec![n],
        None => (0..c.nodes().len()).collect(),
    };
    nodes.extend(hops.iter().flat_map(|h| [h.from.0, h.to.0]));
    nodes.sort_unstable();
    nodes.dedup();
    for i in nodes {
        for u in l.nodes[i].iter().flat_map(|n| &n.unresolved) {
            errln!(
                "warning: {} ({}): {u}",
                c.nodes()[i].name,
                c.nodes()[i].path
            );
        }
    }
}

fn print_text(c: &Compiled, l: &Lineage, hops: &[Hop], start: &[(usize, String)]) {
    for (i, col) in start {
        match l.column(*i, col) {
            Some(cl) if cl.constant => outln!("{}.{col}  is a constant", shown(c, *i)),
            Some(cl) if cl.from.is_empty() => {
                outln!("{}.{col}  is not resolved (see the warnings)", shown(c, *i));
            }
            _ => {}
        }
    }
    for h in hops {
        let how = match &h.edge.expr {
            Some(e) => format!("{}: {e}", h.edge.kind.name()),
            None => h.edge.kind.name().to_string(),
        };
        outln!(
            "{:indent$}{}.{}  ←  {}.{}  ({how})",
            "",
            shown(c, h.to.0),
            h.to.1,
            shown(c, h.from.0),
            h.from.1,
            indent = 2 * (h.depth - 1)
        );
    }
}

/// `{"edges": [...], "constants": [...], "unresolved": [...]}`: the hops, and which of the
/// columns asked about are constants or could not be resolved.
fn hops_json(
    c: &Compiled,
    l: &Lineage,
    hops: &[Hop],
    start: &[(usize, String)],
) -> serde_json::Value {
    let end = |(i, col): (usize, &str)| json!({"node": c.nodes()[i].unique_id, "relation": shown(c, i), "column": col});
    let (mut constants, mut unresolved) = (Vec::new(), Vec::new());
    for (i, col) in start {
        match l.column(*i, col) {
            Some(cl) if cl.constant => constants.push(end((*i, col))),
            Some(cl) if cl.from.is_empty() => unresolved.push(end((*i, col))),
            _ => {}
        }
    }
    let edges: Vec<serde_json::Value> = hops
        .iter()
        .map(|h| {
            json!({
                "from": end(h.from),
                "to": end(h.to),
                "kind": h.edge.kind.name(),
                "expression": h.edge.expr,
                "depth": h.depth,
            })
        })
        .collect();
    json!({ "edges": edges, "constants": constants, "unresolved": unresolved })
}

/// The mapping sheet: one row per column read, source first.
fn mapping_sheet(c: &Compiled, hops: &[Hop]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "source_relation",
        "source_column",
        "target_relation",
        "target_column",
        "kind",
        "transformation",
    ];
    let _ = w.write_record(header);
    for h in hops {
        let (from, to) = (shown(c, h.from.0), shown(c, h.to.0));
        let expr = h.edge.expr.as_deref().unwrap_or("");
        let _ = w.write_record([&from, h.from.1, &to, h.to.1, h.edge.kind.name(), expr]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}
