//! Turning rendered SQL into final SQL: placeholders become quoted relation names, and
//! ephemeral parents (and theirs, recursively) are inlined as CTEs ahead of the query.

use std::collections::BTreeSet;

use rayon::prelude::*;

use crate::graph::Graph;
use crate::project::{Node, Project};
use crate::template::{Names, PLACEHOLDER_OPEN, Rendered, replace_placeholders};

use super::Renders;

/// The final SQL of every rendered node (None for nodes without SQL or whose render failed).
/// Ephemeral parents are inlined from `base` (the primary renders) when given, else from
/// `rendered` itself.
pub(crate) fn finish(
    project: &Project,
    graph: &Graph,
    names: &Names,
    rendered: Renders,
    base: Option<&[Option<String>]>,
) -> Vec<Option<String>> {
    // Each render is consumed as it is substituted, so the two never coexist in full.
    let own: Vec<Option<String>> = rendered
        .into_par_iter()
        .enumerate()
        .map(|(i, r)| match r {
            Some(Ok(Rendered { sql, .. })) => Some(substitute(sql, names, Some(i))),
            _ => None,
        })
        .collect();
    let bodies_of = base.unwrap_or(&own);
    let position = graph.positions();
    let empty = names.dialect.probe();
    let injected: Vec<(usize, String)> = (0..project.nodes.len())
        .into_par_iter()
        .filter_map(|i| {
            let sql = own[i].as_ref()?;
            let ancestors = (graph, &project.nodes[..], &position[..]);
            let bodies = (bodies_of, empty.as_str());
            Some((i, with_ctes(names, ancestors, bodies, (i, sql))?))
        })
        .collect();
    let mut out = own;
    for (i, sql) in injected {
        out[i] = Some(sql);
    }
    out
}

/// Node `i`'s SQL with its ephemeral ancestors inlined as CTEs, each body taken from
/// `bodies_of` (or `empty`); None when it has no ephemeral ancestor.
fn with_ctes(
    names: &Names,
    (graph, nodes, position): (&Graph, &[Node], &[usize]),
    (bodies_of, empty): (&[Option<String>], &str),
    (i, sql): (usize, &str),
) -> Option<String> {
    let ctes = ephemeral_ancestors(i, graph, nodes, names, position);
    if ctes.is_empty() {
        return None;
    }
    let bodies: Vec<(String, &str)> = ctes
        .iter()
        .map(|&e| {
            (
                cte_name(names, e),
                bodies_of[e]
                    .as_deref()
                    .unwrap_or(empty)
                    .trim()
                    .trim_end_matches(';'),
            )
        })
        .collect();
    Some(names.dialect.inject_ctes(sql, &bodies))
}

pub(crate) fn cte_name(names: &Names, node: usize) -> String {
    let ident = names.relations[node]
        .as_ref()
        .map_or("", |r| r.identifier.as_str());
    names.dialect.quote(&cte_ident(ident))
}

/// The name (unquoted) of the CTE an ephemeral model with this identifier is inlined as.
pub(crate) fn cte_ident(identifier: &str) -> String {
    format!("__xform_cte__{identifier}")
}

/// Replaces each `\x01<index>\x02` with the relation's quoted name (or its CTE name).
/// `reader` is the node whose SQL this is: with `--empty`, what it reads but itself is
/// limited to no rows, as dbt does (hooks, with no reader, never are).
pub(super) fn substitute(sql: String, names: &Names, reader: Option<usize>) -> String {
    if !sql.contains(PLACEHOLDER_OPEN) {
        return sql;
    }
    replace_placeholders(&sql, |i| {
        let r = names.relations.get(i)?.as_ref()?;
        let name = match (&r.external, r.ephemeral) {
            (_, true) => return Some(cte_name(names, i)),
            (Some(reader), false) => reader.clone(),
            (None, false) => names.dialect.relation_name(None, &r.schema, &r.identifier),
        };
        Some(match names.empty && reader.is_some_and(|own| own != i) {
            true => names.dialect.no_rows(&name, &r.identifier),
            false => name,
        })
    })
}

/// Ephemeral nodes reachable from `i` through ephemeral parents only, parents first.
fn ephemeral_ancestors(
    i: usize,
    graph: &Graph,
    nodes: &[Node],
    names: &Names,
    position: &[usize],
) -> Vec<usize> {
    let is_ephemeral = |p: usize| {
        names.relations[p].as_ref().is_some_and(|r| r.ephemeral) && nodes[p].raw.is_some()
    };
    let mut found = BTreeSet::new();
    let mut stack: Vec<usize> = graph.parents(i).filter(|&p| is_ephemeral(p)).collect();
    while let Some(e) = stack.pop() {
        if found.insert((position[e], e)) {
            stack.extend(graph.parents(e).filter(|&p| is_ephemeral(p)));
        }
    }
    found.into_iter().map(|(_, e)| e).collect()
}
