//! `xform diff --state DIR`: what this project changes against another run's manifest — new,
//! modified and removed nodes, unified diffs of their compiled SQL, and the nodes downstream —
//! as text for a terminal or as Markdown for a pull-request comment.

use std::collections::BTreeSet;
use std::fmt::Write;

use similar::TextDiff;

use super::{ExitStatus, Global, Loaded, Select, load_and_compile};
use crate::compile::Compiled;
use crate::state::{Change, Changes, State, StateNode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DiffFormat {
    Text,
    Markdown,
}

/// One listed node: what happened to it, its kind, name, file and what changed.
struct Entry {
    what: &'static str,
    kind: String,
    name: String,
    path: String,
    detail: String,
    /// (before, after) compiled SQL, when its SQL changed.
    sql: Option<(String, String)>,
}

pub(crate) fn cmd_diff(g: &Global, select: &Select, format: DiffFormat) -> ExitStatus {
    if select.state.is_none() {
        errln!(
            "error: xform diff needs --state DIR, a folder with the manifest.json to compare against (e.g. production's)"
        );
        return ExitStatus::Invalid;
    }
    let Loaded {
        c, state, changes, ..
    } = match load_and_compile(g, select, None) {
        Ok(ok) => ok,
        Err(code) => return code,
    };
    let (Some(changes), Some(state)) = (&changes, state) else {
        return ExitStatus::Invalid;
    };
    let (entries, changed) = entries(&c, changes, &state);
    let downstream = selected_downstream(&c, &changed);
    let text = match format {
        DiffFormat::Text => text(&entries, &downstream, &state),
        DiffFormat::Markdown => markdown(&entries, &downstream),
    };
    out!("{text}");
    std::mem::forget(c);
    ExitStatus::Success
}

/// Every entry of the report in its order (changed nodes, then removed ones by kind and name),
/// and the changed nodes.
fn entries(c: &Compiled, changes: &Changes, state: &State) -> (Vec<Entry>, BTreeSet<usize>) {
    let (mut entries, changed) = changed_entries(c, changes, state);
    let removed = changes
        .removed
        .iter()
        .map(|id| removed_entry(&state.nodes[id]));
    entries.extend(removed);
    entries.sort_by_key(|e| (rank(&e.kind), e.what, e.name.clone()));
    (entries, changed)
}

/// An entry for each selected node that is new or modified, and the set of them.
fn changed_entries(
    c: &Compiled,
    changes: &Changes,
    state: &State,
) -> (Vec<Entry>, BTreeSet<usize>) {
    let mut entries = Vec::new();
    let mut changed = BTreeSet::new();
    for &i in &c.selected {
        let Some(change) = &changes.nodes[i] else {
            continue;
        };
        changed.insert(i);
        entries.push(changed_entry(c, state, i, change));
    }
    (entries, changed)
}

fn changed_entry(c: &Compiled, state: &State, i: usize, change: &Change) -> Entry {
    let n = &c.nodes()[i];
    let sql = (change.new || change.body)
        .then(|| crate::state::sql_before_after(c, state, i))
        .flatten()
        .filter(|(a, b)| a != b);
    Entry {
        what: if change.new { "new" } else { "modified" },
        kind: n.kind.name().to_string(),
        name: n.name.clone(),
        path: n.path.to_string(),
        detail: change.describe(),
        sql,
    }
}

fn removed_entry(old: &StateNode) -> Entry {
    Entry {
        what: "removed",
        kind: old.resource_type.clone(),
        name: old.name.clone(),
        path: old.original_file_path.clone(),
        detail: String::new(),
        sql: None,
    }
}

/// The names of the selected nodes downstream of the changed ones.
fn selected_downstream<'c>(c: &'c Compiled, changed: &BTreeSet<usize>) -> Vec<&'c str> {
    let selected: BTreeSet<usize> = c.selected.iter().copied().collect();
    downstream(c, changed)
        .into_iter()
        .filter(|i| selected.contains(i))
        .map(|i| c.nodes()[i].name.as_str())
        .collect()
}

/// Models first, then seeds, snapshots, sources, tests.
fn rank(kind: &str) -> usize {
    ["model", "seed", "snapshot", "source", "test", "unit_test"]
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(9)
}

/// Models, seeds and snapshots that read a changed node (directly or not) and did not change
/// themselves, in dependency order: what `state:modified+` rebuilds beyond the change.
fn downstream(c: &Compiled, changed: &BTreeSet<usize>) -> Vec<usize> {
    let mut below = BTreeSet::new();
    for &i in changed {
        below.extend(c.graph.walk(i, false, None));
    }
    c.graph
        .order()
        .iter()
        .copied()
        .filter(|i| below.contains(i) && !changed.contains(i))
        .filter(|&i| c.nodes()[i].kind.builds_relation())
        .collect()
}

fn summary(entries: &[Entry], downstream: usize) -> String {
    let count = |what: &str| entries.iter().filter(|e| e.what == what).count();
    format!(
        "{} modified, {} new, {} removed; {downstream} downstream",
        count("modified"),
        count("new"),
        count("removed")
    )
}

fn unified(path: &str, (before, after): &(String, String)) -> String {
    let before = with_newline(before);
    let after = with_newline(after);
    TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{path} (state)"), &format!("{path} (now)"))
        .to_string()
}

fn with_newline(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

fn text(entries: &[Entry], downstream: &[&str], state: &State) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "against {}", state.dir.join("manifest.json").display());
    if entries.is_empty() {
        out.push_str("no changes\n");
        return out;
    }
    let _ = writeln!(out, "{}\n", summary(entries, downstream.len()));
    text_table(&mut out, entries);
    if !downstream.is_empty() {
        let _ = writeln!(out, "downstream: {}", downstream.join(", "));
    }
    for e in entries {
        if let Some(sql) = &e.sql {
            let _ = write!(out, "\n{}", unified(&e.path, sql));
        }
    }
    out
}

/// One line per entry, its columns aligned.
fn text_table(out: &mut String, entries: &[Entry]) {
    let w = |f: fn(&Entry) -> usize| entries.iter().map(f).max().unwrap_or(0);
    let (kinds, names, paths) = (
        w(|e| e.kind.len()),
        w(|e| e.name.len()),
        w(|e| e.path.len()),
    );
    for e in entries {
        let line = format!(
            "{:<8}  {:<kinds$}  {:<names$}  {:<paths$}  {}",
            e.what, e.kind, e.name, e.path, e.detail
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn markdown(entries: &[Entry], downstream: &[&str]) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str("### xform diff: no changes\n");
        return out;
    }
    let _ = writeln!(
        out,
        "### xform diff: {}\n",
        summary(entries, downstream.len())
    );
    markdown_table(&mut out, entries);
    if !downstream.is_empty() {
        let names: Vec<String> = downstream.iter().map(|n| format!("`{n}`")).collect();
        let _ = writeln!(
            out,
            "\n**Downstream** ({}): {}",
            names.len(),
            names.join(", ")
        );
    }
    for e in entries {
        if let Some(sql) = &e.sql {
            markdown_sql_diff(&mut out, e, sql);
        }
    }
    out
}

fn markdown_table(out: &mut String, entries: &[Entry]) {
    out.push_str("| change | node | kind | what changed |\n|---|---|---|---|\n");
    for e in entries {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            e.what,
            e.name,
            e.kind,
            e.detail.replace('|', "\\|")
        );
    }
}

/// An entry's SQL diff, folded away in a `<details>` block.
fn markdown_sql_diff(out: &mut String, e: &Entry, sql: &(String, String)) {
    let _ = write!(
        out,
        "\n<details><summary><code>{}</code> ({})</summary>\n\n```diff\n{}```\n\n</details>\n",
        e.path,
        e.what,
        unified(&e.path, sql)
    );
}
