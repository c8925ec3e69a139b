//! dbt's `graph`: every node of the project as a mapping (`graph.nodes`, `graph.sources`), for
//! the macros that walk the project (dbt_artifacts, dbt_project_evaluator, codegen). It is
//! built only when a template names it, as it costs a copy of every node's settings.

use minijinja::value::{Serde, Value};
use serde_json::{Map, Value as Json, json};

use std::collections::HashMap;

use crate::project::{DepRef, Node, NodeKind, Project};

/// The `graph` global: `nodes` (models, seeds, snapshots, tests) and `sources` by unique id;
/// `exposures`, `metrics`, `groups` and `semantic_models` empty. None when no template of the
/// project names `graph`.
pub(super) fn value(project: &Project) -> Option<Value> {
    let named = |text: &str| text.contains("graph");
    let macros = project.macro_files.iter().map(|(_, t)| &**t);
    let packages = project
        .packages
        .iter()
        .flat_map(|p| p.macro_files.iter().map(|(_, t)| &**t));
    let models = project.nodes.iter().filter_map(|n| n.raw.as_deref());
    let hooks = (project.on_run_start.iter())
        .chain(&project.on_run_end)
        .map(|(h, _)| h.as_str());
    if !macros.chain(packages).chain(models).chain(hooks).any(named) {
        return None;
    }
    let ids = Ids::of(project);
    let (mut nodes, mut sources) = (Map::new(), Map::new());
    for n in &project.nodes {
        let entry = (n.unique_id.clone(), node(project, n, &ids));
        match n.kind {
            NodeKind::Source => drop(sources.insert(entry.0, entry.1)),
            NodeKind::UnitTest => {}
            _ => drop(nodes.insert(entry.0, entry.1)),
        }
    }
    let graph = json!({
        "nodes": nodes,
        "sources": sources,
        "exposures": {},
        "metrics": {},
        "groups": {},
        "semantic_models": {},
        "saved_queries": {},
    });
    Some(Value::from(Serde(graph)))
}

/// The unique ids `ref('x')` and `source('a', 'b')` name.
struct Ids<'p> {
    by_ref: HashMap<&'p str, &'p str>,
    by_source: HashMap<String, &'p str>,
}

impl<'p> Ids<'p> {
    fn of(project: &'p Project) -> Ids<'p> {
        let (mut by_ref, mut by_source) = (HashMap::new(), HashMap::new());
        for n in &project.nodes {
            match n.kind {
                NodeKind::Source => drop(by_source.insert(n.name.clone(), n.unique_id.as_str())),
                NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot => {
                    by_ref.insert(n.name.as_str(), n.unique_id.as_str());
                }
                _ => {}
            }
        }
        Ids { by_ref, by_source }
    }

    /// What a node reads: its declared dependencies (a test's), else the `ref()` and
    /// `source()` calls written in its SQL.
    fn depends_on(&self, n: &Node) -> Vec<String> {
        let mut found: Vec<&str> = (n.static_deps.iter())
            .filter_map(|d| match d {
                DepRef::Ref(name, _) => self.by_ref.get(name.as_str()).copied(),
                DepRef::Source(s, t, _) => self.by_source.get(&format!("{s}.{t}")).copied(),
            })
            .collect();
        let raw = n.raw.as_deref().unwrap_or("");
        for args in calls(raw, "ref(") {
            found.extend(args.last().and_then(|name| self.by_ref.get(name.as_str())));
        }
        for args in calls(raw, "source(") {
            if let [s, t] = args.as_slice() {
                found.extend(self.by_source.get(&format!("{s}.{t}")));
            }
        }
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(str::to_string).collect()
    }
}

/// The quoted arguments of each call of `func` in `text` (`ref('a')`, `ref("pkg", "b")`).
fn calls(text: &str, func: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(func) {
        let word_before = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
        rest = &rest[at + func.len()..];
        let Some(end) = rest.find(')') else { break };
        let args: Vec<String> = (rest[..end].split(','))
            .map(|a| a.trim())
            .filter_map(|a| {
                a.strip_prefix(['\'', '"'])?
                    .strip_suffix(['\'', '"'])
                    .map(str::to_string)
            })
            .collect();
        if !word_before && !args.is_empty() {
            out.push(args);
        }
    }
    out
}

/// One node as dbt's manifest has it (the fields macros read).
fn node(project: &Project, n: &Node, ids: &Ids) -> Json {
    let package = n.unique_id.split('.').nth(1).unwrap_or(&project.name);
    let config = n.config.to_json();
    let columns: Map<String, Json> = (n.columns.iter())
        .map(|c| {
            let column = json!({"name": c.name, "description": c.description, "data_type": c.data_type, "meta": {}, "tags": []});
            (c.name.clone(), column)
        })
        .collect();
    let depends_on = ids.depends_on(n);
    let (schema, identifier) = n.source_relation.clone().unwrap_or_default();
    json!({
        "unique_id": n.unique_id,
        "name": n.name,
        "resource_type": n.kind.name(),
        "package_name": package,
        "path": n.path.as_ref(),
        "original_file_path": n.path.as_ref(),
        "fqn": n.fqn,
        "raw_code": n.raw.as_deref(),
        "description": n.description,
        "columns": columns,
        "config": config,
        "tags": config.get("tags").cloned().unwrap_or(json!([])),
        "meta": config.get("meta").cloned().unwrap_or(json!({})),
        "depends_on": {"nodes": depends_on, "macros": []},
        "schema": (n.kind == NodeKind::Source).then_some(schema),
        "identifier": (n.kind == NodeKind::Source).then_some(identifier),
        "source_name": (n.kind == NodeKind::Source).then(|| n.name.split('.').next().unwrap_or("")),
        "test_metadata": n.test.as_ref().map(|t| json!({"name": t.test_name, "namespace": t.namespace, "kwargs": t.kwargs})),
        "column_name": n.test.as_ref().and_then(|t| t.column_name.clone()),
    })
}
