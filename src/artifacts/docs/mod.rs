//! `xform docs generate`: `target/catalog.json` (dbt's shape), the manifest with column
//! lineage, and the static site under `target/docs/`: `index.html` (the page, embedded in
//! the binary), `docs-data.js` (every node with its columns, tests, lineage and a precomputed
//! layout) and `sql/<chunk>.js` (raw and compiled SQL, loaded when a page shows it). Plain
//! scripts rather than JSON files, so the site works from `file://`.

mod catalog;
mod layout;

pub(crate) use catalog::{Catalog, CatalogRelation};

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;
use serde_json::{Value as Json, json};

use super::{TARGET_DIR, atomic_write};
use crate::compile::Compiled;
use crate::lineage::Lineage;
use crate::project::{DepRef, NodeKind};

/// The page: one file, no network.
const SITE: &str = include_str!("site.html");
/// Nodes per SQL chunk file.
const CHUNK: usize = 200;

/// What `docs generate` wrote, for its summary line.
pub(crate) struct Written {
    pub(crate) nodes: usize,
    pub(crate) columns_with_lineage: usize,
    pub(crate) dir: std::path::PathBuf,
}

/// Writes the catalog, the manifest (with lineage) and the site.
pub(crate) fn write_docs(
    root: &Path,
    c: &Compiled,
    lineage: &Lineage,
    catalog: &Catalog,
    generated_at: &str,
) -> std::io::Result<Written> {
    let target = root.join(TARGET_DIR);
    catalog::write(&target.join("catalog.json"), c, catalog, generated_at)?;
    super::write_manifest_with(root, c, Some(lineage))?;
    let site = Site::new(c, lineage, catalog);
    let dir = target.join("docs");
    atomic_write(&dir.join("index.html"), |w| w.write_all(SITE.as_bytes()))?;
    atomic_write(&dir.join("docs-data.js"), |w| {
        site.write_data(w, generated_at)
    })?;
    site.write_sql(&dir.join("sql"))?;
    let lineage_js = &site.lineage_json();
    write_script(
        &dir.join("lineage.js"),
        ("window.XFORM_LINEAGE = ", ";"),
        lineage_js,
    )?;
    Ok(Written {
        nodes: site.entries.len(),
        columns_with_lineage: lineage
            .nodes
            .iter()
            .flatten()
            .map(|n| n.columns.len())
            .sum(),
        dir,
    })
}

/// One page of the site: a node of the project, an exposure or a macro.
struct Entry {
    id: String,
    kind: &'static str,
    name: String,
    package: String,
    path: String,
    description: String,
    parents: Vec<usize>,
    /// The project node it is, if it is one.
    node: Option<usize>,
    extra: Json,
    raw: Option<std::sync::Arc<str>>,
}

struct Site<'a> {
    c: &'a Compiled,
    lineage: &'a Lineage,
    catalog: &'a Catalog,
    entries: Vec<Entry>,
    /// (entry, column in lower case) → the tests of that column.
    column_tests: HashMap<(usize, String), Vec<usize>>,
}

impl<'a> Site<'a> {
    fn new(c: &'a Compiled, lineage: &'a Lineage, catalog: &'a Catalog) -> Site<'a> {
        let mut entries: Vec<Entry> = (0..c.nodes().len()).map(|i| node_entry(c, i)).collect();
        entries.extend(exposure_entries(c));
        entries.extend(macro_entries(c));
        let position = c.graph.positions();
        let mut column_tests: HashMap<(usize, String), Vec<usize>> = HashMap::new();
        for (k, n) in c.nodes().iter().enumerate() {
            if let Some(column) = n.test.as_ref().and_then(|t| t.column_name.as_deref()) {
                let on = crate::materialize::tested_node(c, k, &position);
                column_tests
                    .entry((on, column.to_lowercase()))
                    .or_default()
                    .push(k);
            }
        }
        Site {
            c,
            lineage,
            catalog,
            entries,
            column_tests,
        }
    }

    /// `window.XFORM_DOCS = {project, nodes}`, the nodes serialized in parallel a chunk at a
    /// time, so memory stays bounded.
    fn write_data(&self, w: &mut dyn std::io::Write, generated_at: &str) -> std::io::Result<()> {
        let children = self.children();
        let dag: Vec<bool> = self.entries.iter().map(|e| is_dag(e.kind)).collect();
        let parents: Vec<&[usize]> = self.entries.iter().map(|e| e.parents.as_slice()).collect();
        let places = layout::layers(&parents, &dag);
        let tests = self.tests();
        let project = json!({
            "name": self.c.project.name,
            "target": self.c.project.target.name,
            "adapter": self.c.project.target.kind.name(),
            "generated_at": generated_at,
            "overview": self.c.project.docs.get("__overview__").cloned().unwrap_or_default(),
        });
        w.write_all(b"window.XFORM_DOCS = {\"project\":")?;
        serde_json::to_writer(&mut *w, &project).map_err(std::io::Error::other)?;
        w.write_all(b",\"nodes\":[")?;
        let all: Vec<usize> = (0..self.entries.len()).collect();
        for (k, chunk) in all.chunks(2048).enumerate() {
            let parts: Vec<Vec<u8>> = chunk
                .par_iter()
                .map(|&i| {
                    serde_json::to_vec(&self.entry_json(i, (&children[i], &tests[i]), places[i]))
                })
                .collect::<Result<_, _>>()
                .map_err(std::io::Error::other)?;
            if k > 0 {
                w.write_all(b",")?;
            }
            w.write_all(&parts.join(&b","[..]))?;
        }
        w.write_all(b"]};\n")
    }

    fn children(&self) -> Vec<Vec<usize>> {
        let mut children = vec![Vec::new(); self.entries.len()];
        for (k, e) in self.entries.iter().enumerate() {
            for &p in &e.parents {
                children[p].push(k);
            }
        }
        children
    }

    /// Per entry, the tests of it (data tests and unit tests whose parent it is).
    fn tests(&self) -> Vec<Vec<usize>> {
        let mut tests = vec![Vec::new(); self.entries.len()];
        for (k, e) in self.entries.iter().enumerate() {
            if matches!(e.kind, "test" | "unit_test") {
                for &p in &e.parents {
                    tests[p].push(k);
                }
            }
        }
        tests
    }

    fn entry_json(
        &self,
        k: usize,
        (children, tests): (&[usize], &[usize]),
        place: Option<(usize, usize)>,
    ) -> Json {
        let e = &self.entries[k];
        let children: Vec<usize> = children
            .iter()
            .copied()
            .filter(|&ch| is_dag(self.entries[ch].kind))
            .collect();
        let relation = e.node.and_then(|i| self.c.relations[i].as_ref());
        let stats = relation.and_then(|r| self.catalog.get(r));
        compact(json!({
            "id": e.id, "kind": e.kind, "name": e.name, "package": e.package, "path": e.path,
            "description": e.description,
            "materialized": e.node.filter(|&i| self.c.nodes()[i].kind == NodeKind::Model)
                .map(|i| self.c.nodes()[i].config.materialized().to_string()),
            "relation": e.node.and_then(|i| self.c.relation_sql(i)),
            "tags": e.node.map(|i| self.c.nodes()[i].config.tags()).unwrap_or_default(),
            "fqn": e.node.map(|i| self.c.nodes()[i].fqn.clone()).unwrap_or_default(),
            "config": e.node.map_or_else(|| e.extra.clone(), |i| self.c.nodes()[i].config.to_json()),
            "columns": self.columns_json(k, stats),
            "parents": e.parents, "children": children, "tests": tests,
            "rows": stats.and_then(|s| s.rows),
            "layer": place.map(|p| p.0), "order": place.map(|p| p.1),
            "sql": self.has_sql(k).then_some(k / CHUNK),
        }))
    }

    /// A node's columns in the warehouse's order (else its SQL's, else its property file's),
    /// each with its type, description and tests.
    fn columns_json(&self, k: usize, stats: Option<&CatalogRelation>) -> Json {
        let Some(i) = self.entries[k].node else {
            return json!([]);
        };
        let n = &self.c.nodes()[i];
        let mut names: Vec<String> = match (stats, &self.lineage.nodes[i]) {
            (Some(s), _) => s.columns.iter().map(|c| c.0.clone()).collect(),
            (None, Some(l)) => l.columns.iter().map(|c| c.name.clone()).collect(),
            (None, None) => Vec::new(),
        };
        for declared in &n.columns {
            if !names.iter().any(|c| c.eq_ignore_ascii_case(&declared.name)) {
                names.push(declared.name.clone());
            }
        }
        let cols: Vec<Json> = names
            .iter()
            .map(|name| self.column_json(k, name, stats))
            .collect();
        Json::Array(cols)
    }

    fn column_json(&self, k: usize, name: &str, stats: Option<&CatalogRelation>) -> Json {
        let i = self.entries[k].node.unwrap_or_default();
        let declared = self.c.nodes()[i]
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name));
        let typ = stats
            .and_then(|s| s.columns.iter().find(|c| c.0.eq_ignore_ascii_case(name)))
            .map(|c| c.1.clone())
            .or_else(|| declared.and_then(|d| d.data_type.clone()));
        let tests = self.column_tests.get(&(k, name.to_lowercase()));
        let mut col = serde_json::Map::new();
        col.insert("name".into(), json!(name));
        if let Some(t) = typ {
            col.insert("type".into(), json!(t));
        }
        if let Some(d) = declared.filter(|d| !d.description.is_empty()) {
            col.insert("description".into(), json!(d.description));
        }
        if let Some(t) = tests {
            col.insert("tests".into(), json!(t));
        }
        Json::Object(col)
    }

    /// `window.XFORM_LINEAGE`: per node and column, `{from: [[node, column, kind, expr]],
    /// constant}`, each expression an index into `exprs` (one model's columns often share
    /// theirs); and what each node's SQL left unresolved.
    fn lineage_json(&self) -> Json {
        let mut exprs: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut out = serde_json::Map::new();
        for (i, l) in self.lineage.nodes.iter().enumerate() {
            let Some(l) = l else { continue };
            let mut cols = serde_json::Map::new();
            for c in &l.columns {
                let from: Vec<Json> = (c.from.iter())
                    .map(|e| {
                        let expr = e.expr.as_deref().map(|x| {
                            *index.entry(x).or_insert_with(|| {
                                exprs.push(x);
                                exprs.len() - 1
                            })
                        });
                        json!([e.node, e.column, e.kind.name(), expr])
                    })
                    .collect();
                cols.insert(
                    c.name.clone(),
                    json!({"from": from, "constant": c.constant}),
                );
            }
            out.insert(i.to_string(), Json::Object(cols));
        }
        json!({"lineage": out, "exprs": exprs, "unresolved": self.unresolved_json()})
    }

    fn unresolved_json(&self) -> Json {
        let out: serde_json::Map<String, Json> = (self.lineage.nodes.iter().enumerate())
            .filter_map(|(i, l)| {
                let l = l.as_ref().filter(|l| !l.unresolved.is_empty())?;
                Some((i.to_string(), json!(l.unresolved)))
            })
            .collect();
        Json::Object(out)
    }

    fn has_sql(&self, k: usize) -> bool {
        let e = &self.entries[k];
        e.raw.is_some() || e.node.is_some_and(|i| self.c.sql[i].is_some())
    }

    /// `sql/<chunk>.js`: each chunk's raw and compiled SQL.
    fn write_sql(&self, dir: &Path) -> std::io::Result<()> {
        let chunks: Vec<usize> = (0..self.entries.len().div_ceil(CHUNK)).collect();
        chunks.par_iter().try_for_each(|&chunk| {
            let mut texts = serde_json::Map::new();
            for k in chunk * CHUNK..((chunk + 1) * CHUNK).min(self.entries.len()) {
                if self.has_sql(k) {
                    let e = &self.entries[k];
                    let compiled = e.node.and_then(|i| self.c.sql[i].as_deref());
                    texts.insert(
                        k.to_string(),
                        json!({"raw": e.raw.as_deref(), "compiled": compiled}),
                    );
                }
            }
            let call = format!("window.XFORM_SQL({chunk}, ");
            write_script(&dir.join(format!("{chunk}.js")), (&call, ");"), &texts)
        })
    }
}

/// A script file that hands `value` to the page: `head`, the value as JSON, `tail`.
fn write_script(
    path: &Path,
    (head, tail): (&str, &str),
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    atomic_write(path, |w| {
        w.write_all(head.as_bytes())?;
        serde_json::to_writer(&mut *w, value).map_err(std::io::Error::other)?;
        writeln!(w, "{tail}")
    })
}

/// An object without its null, empty-text and empty-list values: the page reads a missing
/// field as empty, and at 10,000 models the keys alone are megabytes.
fn compact(v: Json) -> Json {
    let Json::Object(m) = v else { return v };
    let empty = |v: &Json| match v {
        Json::Null => true,
        Json::String(s) => s.is_empty(),
        Json::Array(a) => a.is_empty(),
        _ => false,
    };
    Json::Object(m.into_iter().filter(|(_, v)| !empty(v)).collect())
}

fn is_dag(kind: &str) -> bool {
    matches!(kind, "model" | "seed" | "source" | "snapshot" | "exposure")
}

fn node_entry(c: &Compiled, i: usize) -> Entry {
    let n = &c.nodes()[i];
    Entry {
        id: n.unique_id.clone(),
        kind: n.kind.name(),
        name: n.name.clone(),
        package: n.fqn.first().cloned().unwrap_or_default(),
        path: n.path.to_string(),
        description: n.description.clone(),
        parents: c.parents(i),
        node: Some(i),
        extra: Json::Null,
        raw: n.raw.clone(),
    }
}

/// Exposures, after the project's nodes, reading the nodes their `depends_on` names.
fn exposure_entries(c: &Compiled) -> Vec<Entry> {
    let nodes = c.nodes();
    let by_ref: HashMap<&str, usize> = (nodes.iter().enumerate())
        .filter(|(_, n)| n.kind.builds_relation())
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let p = &c.project;
    p.exposures
        .iter()
        .map(|e| {
            let parents = (e.depends_on.iter())
                .filter_map(|(text, at)| crate::project::parse_relation_arg(text, at))
                .filter_map(|d| match &d {
                    DepRef::Ref(name, _) => by_ref.get(name.as_str()).copied(),
                    DepRef::Source(..) => nodes.iter().position(|n| d.names(n)),
                })
                .collect();
            Entry {
                id: format!("exposure.{}.{}", p.name, e.name),
                kind: "exposure",
                name: e.name.clone(),
                package: p.name.clone(),
                path: e.at.file.to_string(),
                description: e.description.clone(),
                parents,
                node: None,
                extra: json!({"type": e.kind, "label": e.label, "url": e.url,
                    "maturity": e.maturity, "owner": e.owner, "tags": e.tags}),
                raw: None,
            }
        })
        .collect()
}

/// The project's macros, with their definitions.
fn macro_entries(c: &Compiled) -> Vec<Entry> {
    let p = &c.project;
    let mut out = Vec::new();
    for (path, text) in &p.macro_files {
        for (name, body) in crate::template::scan::macro_texts(text) {
            out.push(Entry {
                id: format!("macro.{}.{name}", p.name),
                kind: "macro",
                name,
                package: p.name.clone(),
                path: path.to_string(),
                description: String::new(),
                parents: Vec::new(),
                node: None,
                extra: Json::Null,
                raw: Some(body.into()),
            });
        }
    }
    out
}
