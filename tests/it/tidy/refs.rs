//! The paths into the crate that code names, and the two walls they must keep: the layer
//! table and no cycles between files.

use super::*;
use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;

/// A path into the crate that code names, from the crate root (`[cli, output, Printer]`),
/// with the offset of its last segment.
pub(super) struct Reference {
    pub(super) path: Vec<String>,
    pub(super) at: usize,
}

/// Every path into the crate in blanked code: `crate::…` in `use` trees (grouped and nested
/// too) and inline, and `super::…`/`self::…` resolved from `module`, the file's own module.
pub(super) fn references(module: &[String], code: &str) -> Vec<Reference> {
    let toks = tokens(code);
    let (mut out, mut i) = (Vec::new(), 0);
    while i < toks.len() {
        let starts = matches!(toks[i].1, "crate" | "super" | "self")
            && toks.get(i + 1).is_some_and(|t| t.1 == "::");
        if !starts {
            i += 1;
            continue;
        }
        let base = if toks[i].1 == "crate" {
            Vec::new()
        } else {
            module.to_vec()
        };
        i = use_tree(&toks, i, base, &mut out);
    }
    out
}

/// Reads `a::b::{…}` from token `i` onto `path`, pushing each leaf; returns the next token.
pub(super) fn use_tree(
    toks: &[(usize, &str)],
    mut i: usize,
    mut path: Vec<String>,
    out: &mut Vec<Reference>,
) -> usize {
    let mut at = toks[i].0;
    while let Some(&(offset, token)) = toks.get(i) {
        match token {
            "{" => return use_group(toks, i + 1, &path, out),
            "*" => i += 1,
            t if is_word(t) => {
                step(&mut path, t);
                (at, i) = (offset, i + 1);
            }
            _ => {}
        }
        if token == "*" || toks.get(i).is_none_or(|t| t.1 != "::") {
            break;
        }
        i += 1;
    }
    out.push(Reference { path, at });
    i
}

/// Reads the trees of a `{…}` group from token `i`; returns the token after its `}`.
pub(super) fn use_group(
    toks: &[(usize, &str)],
    mut i: usize,
    path: &[String],
    out: &mut Vec<Reference>,
) -> usize {
    while let Some(&(_, token)) = toks.get(i) {
        match token {
            "}" => return i + 1,
            "as" => i += 2,
            t if t == "{" || t == "*" || is_word(t) => i = use_tree(toks, i, path.to_vec(), out),
            _ => i += 1,
        }
    }
    i
}

pub(super) fn step(path: &mut Vec<String>, segment: &str) {
    match segment {
        "crate" | "self" => {}
        "super" => {
            path.pop();
        }
        _ => path.push(segment.to_string()),
    }
}

/// A row of the layer table: its position (0 = top) and its label (`0`, `1`, …).
pub(super) struct Layer {
    pub(super) rank: usize,
    pub(super) label: String,
}

/// The `## Layers` table of ARCHITECTURE.md: each module (in backticks) with its row.
pub(super) fn layers(doc: &str) -> BTreeMap<String, Layer> {
    let section = doc.split("\n## ").find(|s| s.starts_with("Layers\n"));
    let section = section.expect("ARCHITECTURE.md needs the `## Layers` table that tidy.rs reads");
    let rows = section
        .lines()
        .filter(|l| l.starts_with('|') && l.contains('`'));
    let mut table = BTreeMap::new();
    for (rank, row) in rows.enumerate() {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let modules = cells
            .get(1)
            .copied()
            .unwrap_or_default()
            .split('`')
            .skip(1)
            .step_by(2);
        for module in modules {
            let label = cells[0].to_string();
            table.insert(module.to_string(), Layer { rank, label });
        }
    }
    assert!(
        !table.is_empty(),
        "the `## Layers` section of ARCHITECTURE.md has no table rows"
    );
    table
}

/// Each reference that leaves its top-level module for one on its own or a higher row (or,
/// from row 0, for anything of the crate), and each module missing from the table.
pub(super) fn layer_offences(layers: &BTreeMap<String, Layer>, files: &[File]) -> Vec<String> {
    let (mut out, mut unknown) = (Vec::new(), BTreeSet::new());
    for (path, text) in files.iter().filter(in_library) {
        let module = module_of(path);
        let Some(top) = module.first() else { continue };
        let Some(own) = layers.get(top) else {
            if unknown.insert(top.clone()) {
                out.push(format!(
                    "{path}: module `{top}` is not in the layer table: add it to the layer \
                     table in ARCHITECTURE.md"
                ));
            }
            continue;
        };
        let code = lexed(text).code;
        for r in references(&module, &code) {
            if let Some(why) = layer_breach(layers, top, own, &r.path) {
                out.push(format!("{path}:{}: {why}", line_of(&code, r.at)));
            }
        }
    }
    out.dedup();
    out
}

pub(super) fn layer_breach(
    layers: &BTreeMap<String, Layer>,
    top: &str,
    own: &Layer,
    target: &[String],
) -> Option<String> {
    let used = target.first().filter(|t| *t != top)?;
    let (name, mine) = (format!("crate::{}", target.join("::")), &own.label);
    if own.rank == 0 {
        return Some(format!(
            "`{top}` (layer {mine}) uses `{name}`, but layer {mine} uses nothing of the crate"
        ));
    }
    let theirs = layers.get(used).filter(|l| l.rank >= own.rank)?;
    Some(format!(
        "`{top}` (layer {mine}) uses `{name}` (layer {}), which is not above it",
        theirs.label
    ))
}

/// One message per strongly connected group of file modules, naming its files and one
/// reference (file:line) for each edge inside it. Edges between a file and its own ancestor
/// or descendant are left out: a child using its parent's types is normal Rust.
pub(super) fn file_cycles(files: &[File]) -> Vec<String> {
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .filter(in_library)
        .map(|f| module_of(&f.0))
        .collect();
    let edges = file_edges(files, &modules);
    let graph: DiGraphMap<&str, ()> = edges
        .keys()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut groups: Vec<Vec<&str>> = tarjan_scc(&graph)
        .into_iter()
        .filter(|g| g.len() > 1)
        .collect();
    groups.iter_mut().for_each(|g| g.sort());
    groups.sort();
    groups.iter().map(|g| describe_cycle(g, &edges)).collect()
}

/// (from, to) file modules, each with its first reference as `file:line`.
pub(super) fn file_edges(
    files: &[File],
    modules: &BTreeSet<Vec<String>>,
) -> BTreeMap<(String, String), String> {
    let mut edges = BTreeMap::new();
    for (path, text) in files.iter().filter(in_library) {
        let from = module_of(path);
        let code = lexed(text).code;
        for r in references(&from, &code) {
            let to = owner(modules, &r.path);
            if !from.starts_with(&to) && !to.starts_with(&from) {
                let at = format!("{path}:{}", line_of(&code, r.at));
                edges.entry((display(&from), display(&to))).or_insert(at);
            }
        }
    }
    edges
}

/// The longest file module a path names.
pub(super) fn owner(modules: &BTreeSet<Vec<String>>, path: &[String]) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_default()
}

pub(super) fn display(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_string()
    } else {
        module.join("::")
    }
}

pub(super) fn describe_cycle(group: &[&str], edges: &BTreeMap<(String, String), String>) -> String {
    let inside =
        |(a, b): &&(String, String)| group.contains(&a.as_str()) && group.contains(&b.as_str());
    let lines = edges
        .keys()
        .filter(inside)
        .map(|(a, b)| format!("    {a} -> {b} at {}", edges[&(a.clone(), b.clone())]));
    format!(
        "cycle between {}:\n{}",
        group.join(", "),
        lines.collect::<Vec<_>>().join("\n")
    )
}
