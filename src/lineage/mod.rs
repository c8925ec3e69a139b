//! Column lineage of a compiled project, offline: each model's output columns and the columns
//! of its parents each derives from, read from its compiled SQL (`sql::lineage`). Models are
//! read parents first, so `select *` expands from what a parent's SQL produces; seeds from
//! their CSV header; sources (and models whose SQL cannot say) from their property files or
//! the warehouse's catalog when the caller has one.

mod walk;

pub(crate) use walk::{Hop, Step, walk};

use std::collections::HashMap;

use rayon::prelude::*;

use crate::compile::Compiled;
use crate::project::NodeKind;
use crate::sql::{self, Origin};

/// How a column is made from one it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EdgeKind {
    /// The same value under the same name.
    Copy,
    /// The same value under another name.
    Rename,
    /// An expression of it (`expr` says which).
    Transform,
}

impl EdgeKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            EdgeKind::Copy => "copy",
            EdgeKind::Rename => "rename",
            EdgeKind::Transform => "transform",
        }
    }
}

/// One column a model's column reads: of node `node`; `column` is `*` for its rows
/// (`count(*)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edge {
    pub(crate) node: usize,
    pub(crate) column: String,
    pub(crate) kind: EdgeKind,
    /// The expressions applied, innermost first.
    pub(crate) expr: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ColumnLineage {
    pub(crate) name: String,
    pub(crate) from: Vec<Edge>,
    /// It reads no column at all (a literal, `current_date`).
    pub(crate) constant: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeLineage {
    pub(crate) columns: Vec<ColumnLineage>,
    /// What could not be resolved, for a person to read.
    pub(crate) unresolved: Vec<String>,
    /// A `*` could not be expanded: the relation has columns `columns` does not list.
    pub(crate) partial: bool,
}

/// Per node (by index): its lineage (models and snapshots with SQL), or None.
pub(crate) struct Lineage {
    pub(crate) nodes: Vec<Option<NodeLineage>>,
}

impl Lineage {
    /// Node `i`'s column `name`, if its lineage has it.
    pub(crate) fn column(&self, i: usize, name: &str) -> Option<&ColumnLineage> {
        self.nodes[i]
            .as_ref()?
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// The columns each node is known to have before reading any SQL, per node.
pub(crate) struct Known {
    /// What the warehouse's catalog (by unique id) or a seed's header says, else a source's
    /// property file: what a model's `*` reads.
    pub(crate) firm: Vec<Option<Vec<String>>>,
    /// A model's property file: its columns when its SQL cannot say.
    pub(crate) declared: Vec<Option<Vec<String>>>,
}

pub(crate) fn known_columns(c: &Compiled, catalog: Option<&HashMap<String, Vec<String>>>) -> Known {
    let (firm, declared) = c
        .nodes()
        .par_iter()
        .map(|n| {
            let declared = (!n.columns.is_empty())
                .then(|| n.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
            if let Some(cols) = catalog.and_then(|cat| cat.get(&n.unique_id)) {
                return (Some(cols.clone()), None);
            }
            match n.kind {
                NodeKind::Seed => (crate::project::seed_header(&c.project.root, n), None),
                NodeKind::Source => (declared, None),
                _ => (None, declared),
            }
        })
        .unzip();
    Known { firm, declared }
}

/// The lineage of every model and snapshot of `c`, parents before children, each level of
/// the graph in parallel.
pub(crate) fn compute(c: &Compiled, known: &Known) -> Lineage {
    let resolver = Relations::new(c);
    let mut nodes: Vec<Option<NodeLineage>> = vec![None; c.nodes().len()];
    for level in levels(c) {
        let done: Vec<(usize, NodeLineage)> = level
            .par_iter()
            .filter_map(|&i| {
                let sql = c.sql[i].as_deref()?;
                let reader = Reader {
                    c,
                    resolver: &resolver,
                    known,
                    done: &nodes,
                };
                Some((i, reader.read(sql)))
            })
            .collect();
        for (i, l) in done {
            nodes[i] = Some(l);
        }
    }
    Lineage { nodes }
}

/// Models and snapshots grouped by depth: each group reads only groups before it.
fn levels(c: &Compiled) -> Vec<Vec<usize>> {
    let mut depth = vec![0usize; c.nodes().len()];
    let mut out: Vec<Vec<usize>> = Vec::new();
    for &i in c.graph.order() {
        let d = c.graph.parents(i).map(|p| depth[p] + 1).max().unwrap_or(0);
        depth[i] = d;
        if matches!(c.nodes()[i].kind, NodeKind::Model | NodeKind::Snapshot) {
            if out.len() <= d {
                out.resize_with(d + 1, Vec::new);
            }
            out[d].push(i);
        }
    }
    out
}

/// Node indexes by the names compiled SQL reads them by.
struct Relations {
    by_schema_name: HashMap<(String, String), usize>,
    by_name: HashMap<String, Option<usize>>,
    ctes: HashMap<String, usize>,
    /// External sources by the call that reads their files, without blanks.
    calls: HashMap<String, usize>,
}

impl Relations {
    fn new(c: &Compiled) -> Relations {
        let mut r = Relations {
            by_schema_name: HashMap::new(),
            by_name: HashMap::new(),
            ctes: HashMap::new(),
            calls: HashMap::new(),
        };
        for (i, rel) in c.relations.iter().enumerate() {
            if c.nodes()[i].external().is_some()
                && let Some(call) = c.relation_sql(i)
            {
                r.calls.insert(without_blanks(&call), i);
            }
            if let Some(cte) = c.ephemeral_cte(i) {
                r.ctes.insert(cte.to_lowercase(), i);
            }
            let Some(rel) = rel else { continue };
            if c.nodes()[i].kind == NodeKind::Test {
                continue;
            }
            let (schema, name) = (rel.schema.to_lowercase(), rel.name.to_lowercase());
            r.by_schema_name.insert((schema, name.clone()), i);
            r.by_name
                .entry(name)
                .and_modify(|e| *e = None)
                .or_insert(Some(i));
        }
        r
    }

    fn node(&self, parts: &[String]) -> Option<usize> {
        match parts {
            [one] => {
                let lower = one.to_lowercase();
                (self.ctes.get(&lower).copied())
                    .or_else(|| self.by_name.get(&lower).copied().flatten())
                    .or_else(|| self.calls.get(&without_blanks(one)).copied())
            }
            [.., schema, name] => self
                .by_schema_name
                .get(&(schema.to_lowercase(), name.to_lowercase()))
                .copied(),
            [] => None,
        }
    }
}

fn without_blanks(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join("")
        .to_lowercase()
}

/// Reads one node's SQL with what is known so far.
struct Reader<'a> {
    c: &'a Compiled,
    resolver: &'a Relations,
    known: &'a Known,
    done: &'a [Option<NodeLineage>],
}

impl sql::Known for Reader<'_> {
    /// A parent's columns: the catalog's or a seed's, else what its own SQL produces, else
    /// its property file's.
    fn columns(&self, relation: &[String]) -> Option<Vec<String>> {
        let i = self.resolver.node(relation)?;
        if let Some(cols) = &self.known.firm[i] {
            return Some(cols.clone());
        }
        match &self.done[i] {
            Some(l) if !l.partial => Some(l.columns.iter().map(|c| c.name.clone()).collect()),
            _ => self.known.declared[i].clone(),
        }
    }

    fn opaque_cte(&self, name: &str) -> bool {
        self.resolver.ctes.contains_key(&name.to_lowercase())
    }
}

impl Reader<'_> {
    fn read(&self, sql: &str) -> NodeLineage {
        let dialect = self.c.project.target.dialect();
        let parsed = match sql::lineage(dialect, sql, self) {
            Ok(l) => l,
            Err(e) => {
                return NodeLineage {
                    columns: Vec::new(),
                    unresolved: vec![format!("its SQL could not be read: {e}")],
                    partial: true,
                };
            }
        };
        let mut unresolved = parsed.unresolved;
        let columns = parsed
            .columns
            .into_iter()
            .map(|col| {
                let from: Vec<Edge> = (col.origins.iter())
                    .filter_map(|o| self.edge(&col.name, o, &mut unresolved))
                    .collect();
                ColumnLineage {
                    constant: col.origins.is_empty() && !col.unresolved,
                    from,
                    name: col.name,
                }
            })
            .collect();
        NodeLineage {
            columns,
            unresolved,
            partial: parsed.partial,
        }
    }

    /// An origin as an edge to a node, or reported when it reads no node of the project.
    fn edge(&self, name: &str, o: &Origin, unresolved: &mut Vec<String>) -> Option<Edge> {
        let Some(node) = self.resolver.node(&o.relation) else {
            let what = format!(
                "`{}` is not a relation of the project (column `{}`)",
                o.relation.join("."),
                o.column
            );
            if !unresolved.contains(&what) {
                unresolved.push(what);
            }
            return None;
        };
        let kind = match (o.steps.is_empty(), o.column.eq_ignore_ascii_case(name)) {
            (false, _) => EdgeKind::Transform,
            (true, true) => EdgeKind::Copy,
            (true, false) => EdgeKind::Rename,
        };
        Some(Edge {
            node,
            column: o.column.clone(),
            kind,
            expr: (!o.steps.is_empty()).then(|| o.steps.join(" → ")),
        })
    }
}
