//! sqlparser's view of each compiled model: one statement, a query, no relation read behind
//! ref()'s back. Findings take the model's `sql_check` severity (error, warn, off). A result
//! that was clean in the previous run, for the same inputs, is taken from the cache.

use std::collections::HashSet;
use std::sync::Arc;

use rayon::prelude::*;

use super::compiled_path;
use crate::diagnostics::{Diagnostic, Diagnostics, Files, Loc, offset_of};
use crate::graph::Graph;
use crate::project::{Node, Project};
use crate::sql::{Analysis, Dialect, analyze};
use crate::template::{Names, RelName};

/// sqlparser's view of every selected compiled model and singular test, with `sql_check`
/// severity. Returns the keys of the SQL found clean (and of unselected SQL the cache already
/// knows clean, so a narrow run does not forget them). SQL whose key is in `known_clean` (a
/// previous run's result for the same text, parents and dialect) is not parsed again.
pub(crate) fn check_sql(
    project: &Project,
    names: &Names,
    graph: &Graph,
    (sql, checksums, selected): (&[Option<String>], &[Option<String>], &[bool]),
    known_clean: &HashSet<String>,
    files: &mut Files,
    diags: &mut Diagnostics,
) -> Vec<String> {
    let results: Vec<(Option<String>, Vec<Diagnostic>)> = project
        .nodes
        .par_iter()
        .enumerate()
        .map(|(i, n)| {
            let (Some(text), Some(sum)) = (&sql[i], &checksums[i]) else {
                return (None, Vec::new());
            };
            check_node(
                (project, names, graph),
                (i, n),
                (text, sum, selected[i]),
                known_clean,
            )
        })
        .collect();
    let mut clean = Vec::new();
    for (i, (key, found)) in results.into_iter().enumerate() {
        clean.extend(key);
        if found.iter().any(points_at_compiled) {
            let n = &project.nodes[i];
            files.insert(
                &compiled_path(n),
                &Arc::from(sql[i].as_deref().unwrap_or("")),
            );
        }
        diags.extend(found);
    }
    clean
}

/// One node's check, unless `sql_check: off`: the findings, and its cache key when clean
/// (from the cache when known clean; an unselected node not known is not checked).
fn check_node(
    (project, names, graph): (&Project, &Names, &Graph),
    (i, n): (usize, &Node),
    (text, sum, selected): (&str, &str, bool),
    known_clean: &HashSet<String>,
) -> (Option<String>, Vec<Diagnostic>) {
    if n.config.str("sql_check") == Some("off") {
        return (None, Vec::new());
    }
    let key = cache_key(project, names, graph, i, sum);
    if known_clean.contains(&key) {
        return (Some(key), Vec::new());
    }
    if !selected {
        return (None, Vec::new());
    }
    let found = check_one(n, i, text, project.target.dialect(), names, graph);
    (found.is_empty().then_some(key), found)
}

/// Whether a finding points into the compiled SQL, which diagnostics then quote.
fn points_at_compiled(d: &Diagnostic) -> bool {
    d.loc
        .as_ref()
        .is_some_and(|l| l.file.starts_with("target/"))
}

/// What a check's result depends on: the SQL, the relations its parents have (a direct read
/// is judged against them), the dialect, the strictness and xform's version.
fn cache_key(
    project: &Project,
    names: &Names,
    graph: &Graph,
    i: usize,
    sql_checksum: &str,
) -> String {
    let mut key = format!(
        "{}|{}|{:?}|",
        env!("CARGO_PKG_VERSION"),
        project.target.kind.name(),
        project.nodes[i].config.str("sql_check")
    );
    key.push_str(sql_checksum);
    let mut parents: Vec<usize> = graph.parents(i).collect();
    parents.sort_unstable();
    for p in parents {
        if let Some(r) = &names.relations[p] {
            key.push_str(&format!("|{}.{}.{}", r.schema, r.identifier, r.ephemeral));
        }
    }
    crate::checksum(&key)
}

fn check_one(
    n: &Node,
    i: usize,
    text: &str,
    dialect: &dyn Dialect,
    names: &Names,
    graph: &Graph,
) -> Vec<Diagnostic> {
    let file_start = Loc::new(&n.path, 0..0);
    let what = n.kind.name();
    match analyze(dialect, text) {
        Analysis::Query { relations } => bypassing_refs(n, i, &relations, names, graph),
        Analysis::Statements(k) => vec![not_one_statement(n, k)],
        Analysis::NotAQuery(kind) => vec![
            Diagnostic::error(format!(
                "{what} `{}` is a {kind} statement, not a query",
                n.name
            ))
            .at(file_start)
            .help("write only the SELECT; xform creates the view or table around it"),
        ],
        Analysis::TooLarge(why) => vec![
            Diagnostic::warning(format!("the SQL of `{}` is not checked: {why}", n.name))
                .at(file_start)
                .help("the warehouse still builds it; only xform's own reading is skipped"),
        ],
        Analysis::Unparsed {
            message,
            line,
            column,
        } => vec![unparsed(n, text, &message, (line, column))],
    }
}

/// A compiled SQL of `k` statements, not one.
fn not_one_statement(n: &Node, k: usize) -> Diagnostic {
    let file_start = Loc::new(&n.path, 0..0);
    let what = n.kind.name();
    match k {
        0 => Diagnostic::error(format!("{what} `{}` has no SQL", n.name))
            .at(file_start)
            .help("a model is one SELECT statement"),
        k => Diagnostic::error(format!(
            "{what} `{}` has {k} SQL statements; it must be exactly one",
            n.name
        ))
        .at(file_start)
        .help("a model is one SELECT; remove the extra statements (or the `;` between them)"),
    }
}

/// sqlparser could not read the compiled SQL: an error with `sql_check: error`, else a warning.
fn unparsed(n: &Node, text: &str, message: &str, (line, column): (usize, usize)) -> Diagnostic {
    // sqlparser reports the end of input as line 0: point at the last character.
    let offset = match line {
        0 => text.trim_end().char_indices().last().map_or(0, |(i, _)| i),
        _ => offset_of(text, line, column.saturating_sub(1)),
    };
    let end = text[offset..]
        .chars()
        .next()
        .filter(|c| *c != '\n')
        .map_or(offset, |c| offset + c.len_utf8());
    let d = if n.config.str("sql_check") == Some("error") {
        Diagnostic::error(format!("SQL does not parse: {message}"))
    } else {
        Diagnostic::warning(format!("sqlparser cannot parse `{}`: {message}", n.name))
    };
    d.at(Loc::new(&compiled_path(n), offset..end))
        .related(Loc::new(&n.path, 0..0), "compiled from this file")
        .help("if this is valid SQL for your warehouse, set `+sql_check: off` for this model (sqlparser does not know every dialect feature)")
}

/// Relations a query reads that are neither a ref'd/sourced parent nor the model itself.
fn bypassing_refs(
    n: &Node,
    i: usize,
    relations: &[Vec<String>],
    names: &Names,
    graph: &Graph,
) -> Vec<Diagnostic> {
    let known = readable(i, names, graph);
    // Files a warehouse reads as a relation named by format and path (Spark's
    // `csv.`data/…``): an external source's reader.
    let reads_files = |parts: &[String]| {
        let readers = known.iter().filter_map(|r| r.external.as_deref());
        let (Some(format), Some(path)) = (parts.first(), parts.last()) else {
            return false;
        };
        readers
            .into_iter()
            .any(|e| e.starts_with(&format!("{format}.")) && e.contains(path.as_str()))
    };
    let is_known = |parts: &[String]| {
        reads_files(parts)
            || match parts {
                [.., schema, ident] => known
                    .iter()
                    .any(|r| &r.schema == schema && &r.identifier == ident),
                [ident] => known.iter().any(|r| &r.identifier == ident),
                [] => true,
            }
    };
    relations
        .iter()
        .filter(|parts| !is_known(parts))
        .map(|parts| bypassing(n, parts))
        .collect()
}

/// The relations node `i` may read: its own, its parents', and (an inlined ephemeral parent's
/// own parents being read too) those of ephemeral parents' parents.
fn readable<'n>(i: usize, names: &'n Names, graph: &Graph) -> Vec<&'n RelName> {
    let mut readable = vec![i];
    let mut stack: Vec<usize> = graph.parents(i).collect();
    while let Some(p) = stack.pop() {
        readable.push(p);
        if names.relations[p].as_ref().is_some_and(|r| r.ephemeral) {
            stack.extend(graph.parents(p));
        }
    }
    readable
        .iter()
        .filter_map(|&p| names.relations[p].as_ref())
        .collect()
}

/// Node `n` reads relation `parts` directly: a warning at the name in its file.
fn bypassing(n: &Node, parts: &[String]) -> Diagnostic {
    let name = parts.join(".");
    let last = parts.last().map(String::as_str).unwrap_or("");
    let raw = n.raw.as_deref().unwrap_or("");
    let span = find_word(raw, &name)
        .or_else(|| find_word(raw, last))
        .unwrap_or(0..0);
    Diagnostic::warning(format!(
        "`{}` reads `{name}` directly, bypassing ref() and source()",
        n.name
    ))
    .at(Loc::new(&n.path, span))
    .help("use {{ ref('model') }} or {{ source('source', 'table') }} so xform knows the dependency")
}

/// Where `word` stands alone in `text` (not inside a longer identifier), ignoring case.
fn find_word(text: &str, word: &str) -> Option<std::ops::Range<usize>> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let lower = text.to_lowercase();
    let want = word.to_lowercase();
    if lower.len() != text.len() || want.is_empty() {
        return None;
    }
    lower
        .match_indices(&want)
        .map(|(at, _)| at..at + want.len())
        .find(|r| {
            let before = text[..r.start]
                .chars()
                .next_back()
                .is_none_or(|c| !is_ident(c));
            let after = text[r.end..].chars().next().is_none_or(|c| !is_ident(c));
            before && after
        })
}
