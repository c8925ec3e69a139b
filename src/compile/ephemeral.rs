//! Turning rendered SQL into final SQL: placeholders become quoted relation names, and
//! ephemeral parents (and theirs, recursively) are inlined as CTEs ahead of the query.

use std::collections::BTreeSet;

use rayon::prelude::*;

use crate::graph::Graph;
use crate::project::{Node, Project};
use crate::template::{Names, PLACEHOLDER_CLOSE, PLACEHOLDER_OPEN, Rendered};

use super::Renders;

/// The final SQL of every rendered node (None for nodes without SQL or whose render failed).
/// Ephemeral parents are inlined from `base` (the primary renders) when given, else from
/// `rendered` itself.
pub fn finish(
    project: &Project,
    graph: &Graph,
    names: &Names,
    rendered: Renders,
    base: Option<&[Option<String>]>,
) -> Vec<Option<String>> {
    // Each render is consumed as it is substituted, so the two never coexist in full.
    let own: Vec<Option<String>> = rendered
        .into_par_iter()
        .map(|r| match r {
            Some(Ok(Rendered { sql, .. })) => Some(substitute(sql, names)),
            _ => None,
        })
        .collect();
    let bodies_of = base.unwrap_or(&own);
    let position = graph.positions();
    let injected: Vec<(usize, String)> = (0..project.nodes.len())
        .into_par_iter()
        .filter_map(|i| {
            let sql = own[i].as_ref()?;
            let ctes = ephemeral_ancestors(i, graph, &project.nodes, names, &position);
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
                            .unwrap_or("select 1")
                            .trim()
                            .trim_end_matches(';'),
                    )
                })
                .collect();
            Some((i, inject(sql, &bodies)))
        })
        .collect();
    let mut out = own;
    for (i, sql) in injected {
        out[i] = Some(sql);
    }
    out
}

pub fn cte_name(names: &Names, node: usize) -> String {
    let ident = names.relations[node]
        .as_ref()
        .map_or("", |r| r.identifier.as_str());
    names.kind.quote(&format!("__xform_cte__{ident}"))
}

/// Replaces each `\x01<index>\x02` with the relation's quoted name (or its CTE name).
fn substitute(sql: String, names: &Names) -> String {
    if !sql.contains(PLACEHOLDER_OPEN) {
        return sql;
    }
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql.as_str();
    while let Some(open) = rest.find(PLACEHOLDER_OPEN) {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(PLACEHOLDER_CLOSE) else {
            break;
        };
        let idx: Option<usize> = after[..close].parse().ok();
        match idx.and_then(|i| names.relations.get(i)?.as_ref().map(|r| (i, r))) {
            Some((i, r)) if r.ephemeral => out.push_str(&cte_name(names, i)),
            Some((_, r)) if r.external.is_some() => {
                out.push_str(r.external.as_deref().unwrap_or(""))
            }
            Some((_, r)) => out.push_str(&names.kind.relation(&r.schema, &r.identifier)),
            None => out.push_str(&after[..close]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
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

/// Puts `name as (body)` CTEs in front of `sql`, merging into its own leading `with`.
fn inject(sql: &str, ctes: &[(String, &str)]) -> String {
    let defs: Vec<String> = ctes
        .iter()
        .map(|(name, body)| format!("{name} as (\n{body}\n)"))
        .collect();
    let defs = defs.join(",\n");
    let start = skip_space_and_comments(sql);
    let head = &sql[start..];
    let word: String = head
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_lowercase();
    if word == "with" {
        let mut at = start + 4;
        let after = &sql[at..];
        let trimmed = after.trim_start();
        if trimmed
            .get(..9)
            .is_some_and(|w| w.eq_ignore_ascii_case("recursive"))
        {
            at += after.len() - trimmed.len() + 9;
        }
        format!("{} {defs},{}", &sql[..at], &sql[at..])
    } else {
        format!("{}with {defs}\n{}", &sql[..start], &sql[start..])
    }
}

fn skip_space_and_comments(sql: &str) -> usize {
    let mut i = 0;
    loop {
        let rest = &sql[i..];
        let trimmed = rest.trim_start();
        i += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            i += trimmed.find('\n').map_or(trimmed.len(), |n| n + 1);
        } else if trimmed.starts_with("/*") {
            i += trimmed.find("*/").map_or(trimmed.len(), |n| n + 2);
        } else {
            return i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_into_an_existing_with() {
        let out = inject(
            "-- hi\nWITH a as (select 1) select * from a",
            &[("\"e\"".into(), "select 2")],
        );
        assert_eq!(
            out,
            "-- hi\nWITH \"e\" as (\nselect 2\n), a as (select 1) select * from a"
        );
    }

    #[test]
    fn korean_text_after_with_is_not_sliced_mid_character() {
        let out = inject(
            "with a가나다 as (select 1) select * from a가나다",
            &[("\"e\"".into(), "select 2")],
        );
        assert_eq!(
            out,
            "with \"e\" as (\nselect 2\n), a가나다 as (select 1) select * from a가나다"
        );
    }

    #[test]
    fn prepends_a_with() {
        let out = inject("\nselect 1", &[("\"e\"".into(), "select 2")]);
        assert_eq!(out, "\nwith \"e\" as (\nselect 2\n)\nselect 1");
    }
}
