//! Another run's artifacts (`--state DIR`, usually production's): what this project changes
//! against its `manifest.json` — new, modified (body, configs, contract, macros) and removed
//! nodes — the relations it built (for `--defer`), and its `run_results.json` statuses (for
//! `result:` selectors and `xform retry`).
//!
//! "Modified" compares compiled SQL, not the Jinja source, and not as text: each relation the
//! SQL reads is first written as a neutral `"__ref__"."name"` (so a `schema_prefix` or a
//! deferred parent is no change), then both sides are parsed and printed back by sqlparser,
//! so layout, comments and keyword case are no change either.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::compile::Compiled;
use crate::graph::select::Modified;
use crate::project::{Node, NodeKind, Project};
use crate::sql::Relation;

pub(crate) const MANIFEST: &str = "manifest.json";
pub(crate) const RUN_RESULTS: &str = "run_results.json";

/// A manifest (and run results, if any) read from a state folder.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) dir: PathBuf,
    pub(crate) nodes: HashMap<String, StateNode>,
    /// Project macro name → checksum of its normalized definition.
    pub(crate) macros: HashMap<String, String>,
    /// unique_id → status, from `run_results.json` (empty when there is none).
    pub(crate) results: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StateNode {
    pub(crate) resource_type: String,
    pub(crate) name: String,
    pub(crate) original_file_path: String,
    pub(crate) relation_name: Option<String>,
    pub(crate) schema: Option<String>,
    pub(crate) alias: Option<String>,
    pub(crate) config: serde_json::Map<String, Json>,
    pub(crate) columns: BTreeMap<String, StateColumn>,
    pub(crate) compiled_code: Option<String>,
    pub(crate) incremental_code: Option<String>,
    pub(crate) depends_on: StateDeps,
    pub(crate) checksum: StateChecksum,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StateColumn {
    pub(crate) data_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StateDeps {
    pub(crate) nodes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StateChecksum {
    pub(crate) file: Option<String>,
}

#[derive(Deserialize)]
struct ManifestFile {
    #[serde(default)]
    nodes: HashMap<String, StateNode>,
    #[serde(default)]
    macros: HashMap<String, MacroEntry>,
}

#[derive(Deserialize)]
struct MacroEntry {
    checksum: String,
}

#[derive(Deserialize)]
struct RunResultsFile {
    results: Vec<ResultEntry>,
    #[serde(default)]
    args: RunArgs,
}

#[derive(Deserialize, Default)]
struct RunArgs {
    #[serde(default)]
    argv: Vec<String>,
}

/// What a `run_results.json` says of its run: the command line and each node's status.
#[derive(Debug, Default)]
pub(crate) struct RunRecord {
    /// The arguments after `xform` (`["build", "-s", "orders"]`).
    pub(crate) argv: Vec<String>,
    /// unique_id → status.
    pub(crate) statuses: HashMap<String, String>,
}

#[derive(Deserialize)]
struct ResultEntry {
    unique_id: String,
    status: String,
}

impl State {
    /// Reads `DIR/manifest.json` (required) and `DIR/run_results.json` (if present).
    pub(crate) fn load(dir: &Path) -> Result<State, String> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {}: {e} (copy target/manifest.json of the run to compare against, e.g. production's, into that folder)",
                path.display()
            )
        })?;
        let manifest: ManifestFile = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a manifest: {e}", path.display()))?;
        Ok(State {
            dir: dir.to_path_buf(),
            nodes: manifest.nodes,
            macros: manifest
                .macros
                .into_iter()
                .map(|(k, m)| (k, m.checksum))
                .collect(),
            results: read_run(&dir.join(RUN_RESULTS))?
                .map(|r| r.statuses)
                .unwrap_or_default(),
        })
    }
}

/// A `run_results.json`; None when the file does not exist.
pub(crate) fn read_run(path: &Path) -> Result<Option<RunRecord>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let doc: RunResultsFile = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a run_results.json: {e}", path.display()))?;
    Ok(Some(RunRecord {
        argv: doc.args.argv,
        statuses: doc
            .results
            .into_iter()
            .map(|r| (r.unique_id, r.status))
            .collect(),
    }))
}

/// How one node differs from its state. `None` in [`Changes::nodes`] means unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    /// Not in the state manifest at all.
    pub(crate) new: bool,
    /// Its compiled SQL (or a seed's file, a source's relation) means something else.
    pub(crate) body: bool,
    /// Config keys whose effective value changed.
    pub(crate) configs: Vec<String>,
    /// Its contract (enforced columns and types) changed.
    pub(crate) contract: bool,
    /// Project macros it calls whose definitions changed.
    pub(crate) macros: Vec<String>,
}

impl Change {
    /// What `state:` selectors read of this change.
    fn modified(&self) -> Modified {
        Modified {
            new: self.new,
            body: self.body,
            configs: !self.configs.is_empty(),
            contract: self.contract,
            macros: !self.macros.is_empty(),
        }
    }

    /// "body, configs (materialized), macros (cents)"; empty for a new node.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.body {
            parts.push("body".to_string());
        }
        if !self.configs.is_empty() {
            parts.push(format!("configs ({})", self.configs.join(", ")));
        }
        if self.contract {
            parts.push("contract".to_string());
        }
        if !self.macros.is_empty() {
            parts.push(format!("macros ({})", self.macros.join(", ")));
        }
        parts.join(", ")
    }
}

/// This project against a state manifest.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Per node of the project (by index): how it changed, or None.
    pub(crate) nodes: Vec<Option<Change>>,
    /// unique_ids in the state that this project no longer has.
    pub(crate) removed: Vec<String>,
}

impl Changes {
    /// What `state:` selectors read of each node's change.
    pub(crate) fn modified(&self) -> Vec<Option<Modified>> {
        self.nodes
            .iter()
            .map(|c| c.as_ref().map(Change::modified))
            .collect()
    }
}

/// `--defer`: a model, seed or snapshot that is not selected, and that the state recorded
/// a relation for, is read from that relation (production's) instead of this target's.
pub(crate) fn defer(c: &mut Compiled, state: &State) {
    let selected: HashSet<usize> = c.selected.iter().copied().collect();
    let moved: Vec<(usize, Relation)> = c
        .nodes()
        .iter()
        .enumerate()
        .filter(|&(i, n)| {
            !selected.contains(&i) && n.kind.builds_relation() && c.relations[i].is_some()
        })
        .filter_map(|(i, n)| {
            let old = state.nodes.get(&n.unique_id)?;
            Some((i, Relation::new(old.schema.as_ref()?, old.alias.as_ref()?)))
        })
        .collect();
    if !moved.is_empty() {
        c.repoint(&moved);
    }
}

/// Compares every node of `c` with `state`.
pub(crate) fn changes(c: &Compiled, state: &State) -> Changes {
    let macros = macro_checksums(&c.project);
    let nodes = (0..c.nodes().len())
        .into_par_iter()
        .map(|i| node_change(c, state, &macros, i))
        .collect();
    let removed = removed(c, state);
    Changes { nodes, removed }
}

/// The unique_ids in the state that `c` no longer has, sorted.
fn removed(c: &Compiled, state: &State) -> Vec<String> {
    let current: BTreeSet<&str> = c.nodes().iter().map(|n| n.unique_id.as_str()).collect();
    let mut removed: Vec<String> = state
        .nodes
        .keys()
        .filter(|id| !current.contains(id.as_str()))
        .cloned()
        .collect();
    removed.sort();
    removed
}

fn node_change(
    c: &Compiled,
    state: &State,
    macros: &BTreeMap<String, (String, String)>,
    i: usize,
) -> Option<Change> {
    let n = &c.nodes()[i];
    let Some(old) = state.nodes.get(&n.unique_id) else {
        return Some(Change {
            new: true,
            ..Change::default()
        });
    };
    let config = n.config.to_json();
    let empty = serde_json::Map::new();
    let config = config.as_object().unwrap_or(&empty);
    let change = Change {
        new: false,
        body: body_changed(c, state, i, old),
        configs: changed_configs(config, &old.config),
        contract: contract_changed(n, config, old),
        macros: changed_macros(c, state, macros, i),
    };
    (change != Change::default()).then_some(change)
}

/// Whether node `i` means something else than `old`: its compiled SQL (either render), a
/// seed's file, a source's relation.
fn body_changed(c: &Compiled, state: &State, i: usize, old: &StateNode) -> bool {
    let n = &c.nodes()[i];
    match n.kind {
        NodeKind::Seed => n.checksum != old.checksum.file,
        NodeKind::Source => c.relation_sql(i) != old.relation_name,
        _ => {
            let pairs = [
                (c.sql[i].as_deref(), old.compiled_code.as_deref()),
                (
                    c.incremental_sql[i].as_deref(),
                    old.incremental_code.as_deref(),
                ),
            ];
            pairs
                .iter()
                .any(|&(new, was)| !same_sql(c, state, i, new, was))
        }
    }
}

/// The config keys whose values differ.
fn changed_configs(
    config: &serde_json::Map<String, Json>,
    old: &serde_json::Map<String, Json>,
) -> Vec<String> {
    let keys: BTreeSet<&String> = config.keys().chain(old.keys()).collect();
    keys.into_iter()
        .filter(|k| config.get(*k) != old.get(*k))
        .cloned()
        .collect()
}

/// Whether the contract changed: enforced or not, or the column types of an enforced one.
fn contract_changed(n: &Node, config: &serde_json::Map<String, Json>, old: &StateNode) -> bool {
    enforced(config) != enforced(&old.config)
        || (enforced(config) && declared_types(n) != recorded_types(old))
}

/// Each declared column's `data_type`.
fn declared_types(n: &Node) -> BTreeMap<&str, Option<&str>> {
    n.columns
        .iter()
        .map(|col| (col.name.as_str(), col.data_type.as_deref()))
        .collect()
}

/// Each column's `data_type` as the state recorded it.
fn recorded_types(old: &StateNode) -> BTreeMap<&str, Option<&str>> {
    old.columns
        .iter()
        .map(|(k, col)| (k.as_str(), col.data_type.as_deref()))
        .collect()
}

/// `contract: {enforced: true}`.
fn enforced(cfg: &serde_json::Map<String, Json>) -> bool {
    cfg.get("contract")
        .and_then(|v| v.get("enforced"))
        .and_then(Json::as_bool)
        .unwrap_or(false)
}

/// The project macros node `i` calls whose definitions changed.
fn changed_macros(
    c: &Compiled,
    state: &State,
    macros: &BTreeMap<String, (String, String)>,
    i: usize,
) -> Vec<String> {
    c.macros_used[i]
        .iter()
        .filter(|m| macro_changed(state, macros, m))
        .cloned()
        .collect()
}

/// Whether project macro `m`'s definition differs from the state's.
fn macro_changed(state: &State, macros: &BTreeMap<String, (String, String)>, m: &str) -> bool {
    macros
        .get(m)
        .is_some_and(|(_, sum)| state.macros.get(m) != Some(sum))
}

/// Whether two compiled SQL texts of node `i` mean the same: equal once the relations they
/// read are neutral, or equal as sqlparser prints them back.
fn same_sql(c: &Compiled, state: &State, i: usize, new: Option<&str>, was: Option<&str>) -> bool {
    let (new, was) = match (new, was) {
        (None, None) => return true,
        (Some(n), Some(w)) => (n, w),
        _ => return false,
    };
    let new = neutral_current(c, i, new);
    let was = neutral_state(c, state, i, was);
    if new == was {
        return true;
    }
    let dialect = c.project.target.dialect();
    crate::sql::canonical(dialect, &new) == crate::sql::canonical(dialect, &was)
}

/// The neutral name written for a node's relation.
fn neutral_name(c: &Compiled, name: &str) -> String {
    c.project
        .target
        .dialect()
        .relation(&Relation::new("__ref__", name))
}

/// Node `i`'s SQL with the relations of what it reads (and its own, for `{{ this }}`)
/// written neutrally.
fn neutral_current(c: &Compiled, i: usize, sql: &str) -> String {
    let mut pairs = Vec::new();
    for p in c.reads(i).into_iter().chain([i]) {
        let n = &c.nodes()[p];
        if n.kind.builds_relation()
            && let Some(rel) = c.relations[p].as_ref()
        {
            pairs.push((
                c.project.target.dialect().relation(rel),
                neutral_name(c, &n.name),
            ));
        }
    }
    replace_all(sql, pairs)
}

/// A state node's SQL with the relations it reads (through ephemeral parents) and its own
/// written neutrally.
fn neutral_state(c: &Compiled, state: &State, i: usize, sql: &str) -> String {
    let id = &c.nodes()[i].unique_id;
    let mut seen = BTreeSet::new();
    let mut stack = vec![id.as_str()];
    let mut pairs = Vec::new();
    while let Some(at) = stack.pop() {
        if !seen.insert(at) {
            continue;
        }
        let Some(node) = state.nodes.get(at) else {
            continue;
        };
        let refable = matches!(node.resource_type.as_str(), "model" | "seed" | "snapshot");
        match &node.relation_name {
            Some(rel) if refable => pairs.push((rel.clone(), neutral_name(c, &node.name))),
            _ => {}
        }
        // The node itself, and ephemeral models: what they read is inlined into the SQL.
        if at == id || (refable && node.relation_name.is_none()) {
            stack.extend(node.depends_on.nodes.iter().map(String::as_str));
        }
    }
    replace_all(sql, pairs)
}

fn replace_all(sql: &str, mut pairs: Vec<(String, String)>) -> String {
    // Longest first, so `"s"."orders_2"` is not taken for `"s"."orders"` plus text.
    pairs.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    let mut out = sql.to_string();
    for (from, to) in pairs {
        if from != to && out.contains(&from) {
            out = out.replace(&from, &to);
        }
    }
    out
}

/// Every project macro: name → (file, checksum of its normalized definition).
pub(crate) fn macro_checksums(p: &Project) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for (path, text) in &p.macro_files {
        for (name, body) in crate::template::scan::macro_bodies(text) {
            out.insert(name, (path.to_string(), crate::checksum(&body)));
        }
    }
    out
}

/// Node `i`'s compiled SQL before (in the state) and now, for a diff: the relations it reads
/// now are written as the state wrote them, so a `schema_prefix` or deferral shows no change.
/// A new node's "before" is empty; None when the node has no SQL on either side.
pub(crate) fn sql_before_after(c: &Compiled, state: &State, i: usize) -> Option<(String, String)> {
    let was = state
        .nodes
        .get(&c.nodes()[i].unique_id)
        .and_then(|o| o.compiled_code.clone());
    let now = c.sql[i].as_deref();
    if was.is_none() && now.is_none() {
        return None;
    }
    let dialect = c.project.target.dialect();
    let pairs = c
        .reads(i)
        .into_iter()
        .chain([i])
        .filter_map(|p| {
            let r = c.relations[p].as_ref()?;
            let old = state.nodes.get(&c.nodes()[p].unique_id)?;
            Some((dialect.relation(r), old.relation_name.clone()?))
        })
        .collect();
    Some((
        was.unwrap_or_default(),
        now.map(|s| replace_all(s, pairs)).unwrap_or_default(),
    ))
}

#[derive(Deserialize)]
struct CatalogFile {
    #[serde(default)]
    nodes: HashMap<String, CatalogEntry>,
    #[serde(default)]
    sources: HashMap<String, CatalogEntry>,
}

#[derive(Deserialize)]
struct CatalogEntry {
    #[serde(default)]
    columns: HashMap<String, CatalogColumn>,
}

#[derive(Deserialize)]
struct CatalogColumn {
    name: String,
    #[serde(default)]
    index: usize,
}

/// The columns of each relation in `target/catalog.json` (written by `xform docs generate`,
/// or dbt's), by unique id in the warehouse's order; None when there is no readable catalog.
pub(crate) fn read_catalog(root: &Path) -> Option<HashMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(root.join("target").join("catalog.json")).ok()?;
    let file: CatalogFile = serde_json::from_str(&text).ok()?;
    let entries = file.nodes.into_iter().chain(file.sources);
    Some(
        entries
            .map(|(id, e)| {
                let mut cols: Vec<CatalogColumn> = e.columns.into_values().collect();
                cols.sort_by_key(|c| c.index);
                (id, cols.into_iter().map(|c| c.name).collect())
            })
            .collect(),
    )
}
