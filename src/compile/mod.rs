//! From a loaded project to compiled SQL and a dependency graph, offline.
//!
//! Every model and singular test is rendered once, in parallel. Relations render as
//! placeholders; once each model's own `config()` is known the final names are fixed, the graph
//! is built (and checked for cycles), placeholders become quoted names or ephemeral CTEs, the
//! selection is made (comparing with `--state` when given), `--defer` points unselected parents
//! at the state's relations, and sqlparser checks each selected result. Nothing here touches a
//! warehouse or writes a file.

mod check;
mod ephemeral;

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::adapter::Relation;
use crate::diagnostics::{Diagnostic, Diagnostics, Files, Loc, did_you_mean};
use crate::graph::Graph;
use crate::graph::select::{Facts, Selection, select};
use crate::project::config::MODEL_MATERIALIZATIONS;
use crate::project::{DepRef, Node, NodeKind, Project};
use crate::state::{Changes, State};
use crate::template::{self, Names, RelName, RenderLog, Rendered, Templates, scan};
use std::collections::HashSet;

/// Generic tests xform runs without a `{% test %}` definition, and the arguments each needs.
pub const BUILTIN_TESTS: &[(&str, &[&str])] = &[
    ("not_null", &[]),
    ("unique", &[]),
    ("accepted_values", &["values"]),
    ("relationships", &["to", "field"]),
    ("unique_combination_of_columns", &["combination_of_columns"]),
    ("expression_is_true", &["expression"]),
    ("row_count", &[]),
];

#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    /// Keys of SQL that an earlier run checked and found clean (see `Compiled::sql_clean`).
    pub sql_checked: HashSet<String>,
    /// Another run's artifacts (`--state DIR`): for `state:` selectors, `--defer` and diffs.
    pub state: Option<Arc<State>>,
    /// Statuses of an earlier run's results, for `result:` selectors.
    pub results: Option<Arc<HashMap<String, String>>>,
    /// `ref()`s to nodes that are not selected read the state's relations instead.
    pub defer: bool,
}

/// A compiled project: nodes with their final config, the graph, and per node (by index) its
/// relation, compiled SQL and parents.
pub struct Compiled {
    pub project: Project,
    pub graph: Graph,
    /// Each model's, seed's and source's relation (none for ephemerals and tests).
    pub relations: Vec<Option<Relation>>,
    pub sql: Vec<Option<String>>,
    /// An incremental model's SQL rendered with `is_incremental()` true: what runs on top of
    /// its existing table (`sql` builds it from scratch).
    pub incremental_sql: Vec<Option<String>>,
    /// SHA-256 of each node's compiled SQL.
    pub checksums: Vec<Option<String>>,
    /// Keys of the SQL that sqlparser found clean, for the next run to skip.
    pub sql_clean: Vec<String>,
    pub selected: Vec<usize>,
    /// The project macros each node's render called.
    pub macros_used: Vec<Vec<String>>,
    /// The `--state` run, when given, and how each node differs from it.
    pub state: Option<Arc<State>>,
    pub changes: Option<Changes>,
}

impl Compiled {
    pub fn nodes(&self) -> &[Node] {
        &self.project.nodes
    }

    /// The quoted relation name of node `i` (for an external source, the files' reader), as
    /// the SQL reads it.
    pub fn relation_sql(&self, i: usize) -> Option<String> {
        let kind = self.project.target.kind;
        if let Some(e) = self.nodes()[i].external() {
            return Some(kind.external_relation(&e));
        }
        let r = self.relations[i].as_ref()?;
        Some(kind.relation(&r.schema, &r.name))
    }

    /// Where node `i`'s compiled SQL is written, if it has SQL.
    pub fn compiled_path(&self, i: usize) -> Option<String> {
        self.sql[i]
            .as_ref()
            .map(|_| compiled_path(&self.nodes()[i]).to_string())
    }

    /// An ephemeral model: inlined into what reads it, nothing of its own in the warehouse.
    pub fn is_ephemeral(&self, i: usize) -> bool {
        self.nodes()[i].kind == NodeKind::Model && self.relations[i].is_none()
    }

    /// What node `i`'s compiled SQL reads: its parents, looking through ephemeral models.
    pub fn reads(&self, i: usize) -> Vec<usize> {
        self.graph.parents_through(i, |p| self.is_ephemeral(p))
    }

    pub fn parents(&self, i: usize) -> Vec<usize> {
        let mut p: Vec<usize> = self.graph.parents(i).collect();
        p.sort_unstable();
        p
    }
}

pub fn compile(
    mut project: Project,
    opts: &CompileOptions,
    files: &mut Files,
    diags: &mut Diagnostics,
) -> Option<Compiled> {
    let select_spec = Selection::parse(&opts.select);
    let exclude_spec = Selection::parse(&opts.exclude);
    let sources: Vec<Option<(Arc<str>, Arc<str>)>> = project
        .nodes
        .iter()
        .map(|n| n.raw.clone().map(|raw| (template_name(n), raw)))
        .collect();
    let templates = template::environment(&project, diags);
    let names = Arc::new(name_table(&project));
    let mut rendered = render_all(
        &templates,
        &names,
        (&project.nodes, &sources),
        false,
        |_, _| true,
    );
    apply_config(&mut project.nodes, &mut rendered, diags);
    check_tests(&project.nodes, &templates, diags);
    // Incremental models render a second time with `is_incremental()` true (the SQL of a run
    // on top of the existing table), once their own `config()` has said they are incremental.
    let mut incremental = render_all(
        &templates,
        &names,
        (&project.nodes, &sources),
        true,
        |i, n| n.is_incremental() && matches!(rendered[i], Some(Ok(_))),
    );
    for r in incremental.iter_mut().filter(|r| matches!(r, Some(Err(_)))) {
        if let Some(Err(d)) = r.take() {
            diags.push(d);
        }
    }
    drop(names);
    let final_names = Arc::new(name_table(&project));
    check_relations(&project, &final_names, diags);
    let edges = edges(
        &project.nodes,
        [&rendered, &incremental],
        &final_names,
        diags,
    );
    let graph = match Graph::new(project.nodes.len(), edges) {
        Ok(g) => g,
        Err(cycle) => {
            diags.push(cycle_diagnostic(&project.nodes, &cycle));
            return None;
        }
    };
    for (renders, is_incremental) in [(&mut rendered, false), (&mut incremental, true)] {
        rerender_late_bound(
            &templates,
            &final_names,
            (&project.nodes, &sources),
            renders,
            is_incremental,
            diags,
        );
    }
    drop(templates);
    let macros_used = macros_used(&rendered, &incremental);
    // `--defer` resolves some names again once the selection is known.
    let placeholders = opts
        .defer
        .then(|| (placeholder_sql(&rendered), placeholder_sql(&incremental)));
    let sql = ephemeral::finish(&project, &graph, &final_names, rendered, None);
    let incremental_sql =
        ephemeral::finish(&project, &graph, &final_names, incremental, Some(&sql));
    check_unit_tests(&project.nodes, &graph, &final_names, diags);
    let (select_spec, exclude_spec) = match (select_spec, exclude_spec) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(d), _) | (_, Err(d)) => {
            diags.push(d);
            return None;
        }
    };
    let mut c = Compiled {
        relations: relation_parts(&final_names),
        project,
        graph,
        sql,
        incremental_sql,
        checksums: Vec::new(),
        sql_clean: Vec::new(),
        selected: Vec::new(),
        macros_used,
        state: opts.state.clone(),
        changes: None,
    };
    c.changes = opts.state.as_deref().map(|s| crate::state::changes(&c, s));
    let facts = Facts {
        changes: c.changes.as_ref(),
        results: opts.results.as_deref(),
    };
    match select(&c.graph, c.nodes(), (&select_spec, &exclude_spec), &facts) {
        Ok((selected, warnings)) => {
            c.selected = selected;
            diags.extend(warnings);
        }
        Err(d) => {
            diags.push(d);
            return None;
        }
    }
    let mut final_names = Arc::unwrap_or_clone(final_names);
    if let (Some(state), Some(saved)) = (opts.state.as_deref(), placeholders) {
        defer(&mut c, &mut final_names, state, saved);
    }
    c.checksums = c
        .sql
        .par_iter()
        .map(|s| s.as_deref().map(crate::checksum))
        .collect();
    let mut selected = vec![false; c.nodes().len()];
    c.selected.iter().for_each(|&i| selected[i] = true);
    c.sql_clean = check::check_sql(
        &c.project,
        &final_names,
        &c.graph,
        (&c.sql, &c.checksums, &selected),
        &opts.sql_checked,
        files,
        diags,
    );
    if diags.has_errors() {
        return None;
    }
    Some(c)
}

/// Two nodes building one relation would overwrite each other (which one wins depends on
/// timing): the project is refused, naming both. Names with `__xform_` are xform's own.
fn check_relations(project: &Project, names: &Names, diags: &mut Diagnostics) {
    let kind = project.target.kind;
    let mut built: HashMap<(String, String), usize> = HashMap::new();
    for (i, n) in project.nodes.iter().enumerate() {
        let Some(r) = names.relations[i].as_ref().filter(|r| !r.ephemeral) else {
            continue;
        };
        if !matches!(
            n.kind,
            NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot
        ) {
            continue;
        }
        let at = named_at(n);
        if kind.fold_identifier(&r.identifier).contains("__xform_") {
            diags.push(
                Diagnostic::error(format!(
                    "{} `{}` would build `{}.{}`: names containing `__xform_` are reserved for xform's own staging tables",
                    n.kind.name(),
                    n.name,
                    r.schema,
                    r.identifier
                ))
                .at(at),
            );
            continue;
        }
        let key = (
            kind.fold_identifier(&r.schema),
            kind.fold_identifier(&r.identifier),
        );
        let Some(&first) = built.get(&key) else {
            built.insert(key, i);
            continue;
        };
        let other = &project.nodes[first];
        if other.name == n.name {
            continue; // two nodes of one name: reported as such when the project was read
        }
        diags.push(
            Diagnostic::error(format!(
                "{} `{}` and {} `{}` both build `{}.{}`",
                other.kind.name(),
                other.name,
                n.kind.name(),
                n.name,
                r.schema,
                r.identifier
            ))
            .at(at)
            .related(named_at(other), "the other one is here")
            .help("give one of them another `alias` or `schema`"),
        );
    }
}

/// Where a node's relation is named: its `alias`, else its declaration, else its file.
fn named_at(n: &Node) -> Loc {
    n.config
        .at("alias")
        .cloned()
        .or_else(|| n.at.clone())
        .unwrap_or_else(|| Loc::new(&n.path, 0..0))
}

/// The project macros each node's renders called.
fn macros_used(rendered: &Renders, incremental: &Renders) -> Vec<Vec<String>> {
    rendered
        .iter()
        .zip(incremental)
        .map(|(a, b)| {
            let mut used: Vec<String> = [a, b]
                .into_iter()
                .filter_map(|r| r.as_ref()?.as_ref().ok())
                .flat_map(|r| r.log.macros.iter().cloned())
                .collect();
            used.sort();
            used.dedup();
            used
        })
        .collect()
}

fn placeholder_sql(renders: &Renders) -> Vec<Option<String>> {
    renders
        .iter()
        .map(|r| Some(r.as_ref()?.as_ref().ok()?.sql.clone()))
        .collect()
}

/// `--defer`: a model, seed or snapshot that is not selected, and that the state recorded
/// a relation for, is read from that relation (production's) instead of this target's.
fn defer(
    c: &mut Compiled,
    names: &mut Names,
    state: &State,
    (base, incremental): (Vec<Option<String>>, Vec<Option<String>>),
) {
    let selected: HashSet<usize> = c.selected.iter().copied().collect();
    let mut deferred = 0;
    for (i, n) in c.project.nodes.iter().enumerate() {
        let buildable = matches!(
            n.kind,
            NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot
        ) && names.relations[i].as_ref().is_some_and(|r| !r.ephemeral);
        if selected.contains(&i) || !buildable {
            continue;
        }
        let Some(old) = state.nodes.get(&n.unique_id) else {
            continue;
        };
        if let (Some(schema), Some(alias)) = (&old.schema, &old.alias) {
            names.relations[i] = Some(RelName {
                schema: schema.clone(),
                identifier: alias.clone(),
                ephemeral: false,
                external: None,
            });
            deferred += 1;
        }
    }
    if deferred == 0 {
        return;
    }
    let renders = |sql: Vec<Option<String>>| -> Renders {
        sql.into_iter()
            .map(|s| {
                s.map(|sql| {
                    Ok(Rendered {
                        sql,
                        log: RenderLog::default(),
                    })
                })
            })
            .collect()
    };
    c.sql = ephemeral::finish(&c.project, &c.graph, names, renders(base), None);
    c.incremental_sql = ephemeral::finish(
        &c.project,
        &c.graph,
        names,
        renders(incremental),
        Some(&c.sql),
    );
    c.relations = relation_parts(names);
}

fn relation_of(project: &Project, n: &Node) -> Option<RelName> {
    match n.kind {
        NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot => {
            let schema = n
                .config
                .str("schema")
                .or_else(|| n.config.str("target_schema"))
                .unwrap_or(&project.target.schema);
            Some(RelName {
                schema: format!("{}{}", project.target.schema_prefix, schema),
                identifier: n.config.str("alias").unwrap_or(&n.name).to_string(),
                ephemeral: n.kind == NodeKind::Model && n.config.materialized() == "ephemeral",
                external: None,
            })
        }
        NodeKind::Source => n
            .source_relation
            .clone()
            .map(|(schema, identifier)| RelName {
                schema,
                identifier,
                ephemeral: false,
                external: n
                    .external()
                    .map(|e| project.target.kind.external_relation(&e)),
            }),
        NodeKind::Test | NodeKind::UnitTest => None,
    }
}

fn name_table(project: &Project) -> Names {
    let mut by_ref = HashMap::new();
    let mut by_source = HashMap::new();
    for (i, n) in project.nodes.iter().enumerate() {
        match n.kind {
            NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot => {
                by_ref.entry(n.name.clone()).or_insert(i);
            }
            NodeKind::Source => {
                let (s, t) = n.name.split_once('.').unwrap_or((&n.name, ""));
                by_source.insert((s.to_string(), t.to_string()), i);
            }
            _ => {}
        }
    }
    let relations = project
        .nodes
        .iter()
        .map(|n| relation_of(project, n))
        .collect();
    Names {
        kind: project.target.kind,
        by_ref,
        by_source,
        relations,
    }
}

pub(crate) type Renders = Vec<Option<Result<Rendered, Diagnostic>>>;

type Sources = [Option<(Arc<str>, Arc<str>)>];

/// Renders the nodes `wanted` accepts, in parallel; `incremental` is what `is_incremental()`
/// returns.
fn render_all<'s>(
    t: &Templates<'s>,
    names: &Arc<Names>,
    (nodes, sources): (&[Node], &'s Sources),
    incremental: bool,
    wanted: impl Fn(usize, &Node) -> bool + Sync,
) -> Renders {
    nodes
        .par_iter()
        .zip(sources.par_iter())
        .enumerate()
        .map(|(i, (n, src))| {
            let (path, raw) = src.as_ref().filter(|_| wanted(i, n))?;
            Some(template::render(t, names, (i, n), (path, raw), incremental))
        })
        .collect()
}

/// Applies each model's own `config(...)` calls and checks the values xform acts on.
fn apply_config(nodes: &mut [Node], rendered: &mut Renders, diags: &mut Diagnostics) {
    for (n, r) in nodes.iter_mut().zip(rendered.iter_mut()) {
        match r {
            Some(Ok(r)) => {
                let at = n
                    .raw
                    .as_ref()
                    .and_then(|raw| scan::find_call(raw, "config", None))
                    .map(|s| Loc::new(&n.path, s));
                for (k, v) in std::mem::take(&mut r.log.config) {
                    n.config
                        .set(&k, v, at.clone().or_else(|| Some(Loc::new(&n.path, 0..0))));
                }
            }
            Some(Err(d)) if n.test.is_some() => diags.extend(generic_test_diagnostic(d.clone(), n)),
            Some(Err(d)) => diags.push(d.clone()),
            None => {}
        }
        check_config(n, diags);
    }
}

fn check_config(n: &Node, diags: &mut Diagnostics) {
    let at = |key: &str| n.config.at(key).cloned().or_else(|| n.at.clone());
    if let Some(v) = n.config.get("materialized").filter(|v| !v.is_string()) {
        diags.push(
            Diagnostic::error(format!("`materialized` must be a string, found {v}"))
                .at_opt(at("materialized")),
        );
    } else if n.kind == NodeKind::Model
        && !MODEL_MATERIALIZATIONS.contains(&n.config.materialized())
    {
        let m = n.config.materialized();
        diags.push(
            Diagnostic::error(format!(
                "model `{}` has unknown materialization `{m}`",
                n.name
            ))
            .at_opt(at("materialized"))
            .help(
                did_you_mean(m, MODEL_MATERIALIZATIONS.iter().copied()).unwrap_or_else(|| {
                    format!("use one of: {}", MODEL_MATERIALIZATIONS.join(", "))
                }),
            ),
        );
    }
    if let Some(v) = n
        .config
        .get("sql_check")
        .filter(|v| !matches!(v.as_str(), Some("error" | "warn" | "off")))
    {
        diags.push(
            Diagnostic::error(format!("`sql_check` is {v}; use error, warn or off"))
                .at_opt(at("sql_check")),
        );
    }
    if let Some(v) = n.config.get("audit").filter(|v| !v.is_boolean()) {
        diags.push(
            Diagnostic::error(format!("`audit` must be true or false, found {v}"))
                .at_opt(at("audit")),
        );
    }
    if n.kind == NodeKind::Test
        && let Err(d) = crate::testing::config(n)
    {
        diags.push(d);
    }
    for key in ["schema", "alias"] {
        if let Some(v) = n.config.get(key).filter(|v| !v.is_string() && !v.is_null()) {
            diags.push(
                Diagnostic::error(format!("`{key}` must be a string, found {v}")).at_opt(at(key)),
            );
        }
    }
}

fn check_tests(nodes: &[Node], t: &Templates, diags: &mut Diagnostics) {
    for n in nodes {
        let Some(spec) = &n.test else { continue };
        let name = spec.test_name.as_str();
        if t.generic_tests.contains(name) {
            continue;
        }
        let known = t.generic_tests.iter().map(String::as_str);
        diags.push(
            Diagnostic::error(format!("unknown data test `{name}`"))
                .at_opt(n.at.clone())
                .help(did_you_mean(name, known).unwrap_or_else(|| {
                    let builtin: Vec<&str> = BUILTIN_TESTS.iter().map(|(n, _)| *n).collect();
                    format!("built-in tests: {}; define others with {{% test {name}(model, column_name) %}} in macros/", builtin.join(", "))
                })),
        );
    }
}

/// (parent, child) pairs: refs recorded while rendering (both ways, for incremental models)
/// and the static deps of YAML nodes.
fn edges(
    nodes: &[Node],
    renders: [&Renders; 2],
    names: &Names,
    diags: &mut Diagnostics,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for rendered in renders {
            if let Some(Some(Ok(r))) = rendered.get(i) {
                out.extend(r.log.refs.iter().map(|&p| (p, i)));
            }
        }
        for dep in &n.static_deps {
            match resolve_dep(dep, names) {
                Ok(p) => out.push((p, i)),
                Err(d) => diags.push(d),
            }
        }
    }
    out
}

fn resolve_dep(dep: &DepRef, names: &Names) -> Result<usize, Diagnostic> {
    match dep {
        DepRef::Ref(name, at) => names.by_ref.get(name).copied().ok_or_else(|| {
            Diagnostic::error(format!("`{name}` is not a model or seed in this project"))
                .at(at.clone())
                .help_opt(did_you_mean(name, names.by_ref.keys().map(String::as_str)))
        }),
        DepRef::Source(s, t, at) => names
            .by_source
            .get(&(s.clone(), t.clone()))
            .copied()
            .ok_or_else(|| {
                Diagnostic::error(format!("source `{s}.{t}` is not declared")).at(at.clone())
            }),
    }
}

fn cycle_diagnostic(nodes: &[Node], cycle: &[usize]) -> Diagnostic {
    let names: Vec<&str> = cycle.iter().map(|&i| nodes[i].name.as_str()).collect();
    let edge_loc = |parent: usize, child: usize| {
        let c = &nodes[child];
        let span = c
            .raw
            .as_ref()
            .and_then(|raw| scan::find_call(raw, "ref", Some(&nodes[parent].name)));
        match span {
            Some(s) => Loc::new(&c.path, s),
            None => c.at.clone().unwrap_or_else(|| Loc::new(&c.path, 0..0)),
        }
    };
    let first = edge_loc(cycle[0], cycle[1]);
    let mut d = Diagnostic::error(format!("dependency cycle: {}", names.join(" → ")))
        .at(first)
        .label(format!("`{}` reads `{}`", names[1], names[0]))
        .help(
            "a model cannot depend on itself, directly or through others: break one of these refs",
        );
    for w in cycle.windows(2).skip(1) {
        d = d.related(
            edge_loc(w[0], w[1]),
            format!("`{}` reads `{}`", nodes[w[1]].name, nodes[w[0]].name),
        );
    }
    d
}

/// Models that read a relation's attributes (`ref('x').schema`) see final names only now.
fn rerender_late_bound<'s>(
    t: &Templates<'s>,
    names: &Arc<Names>,
    (nodes, sources): (&[Node], &'s Sources),
    rendered: &mut Renders,
    incremental: bool,
    diags: &mut Diagnostics,
) {
    for (i, r) in rendered.iter_mut().enumerate() {
        if let (Some(Ok(prev)), Some((path, raw))) = (r.as_ref(), sources[i].as_ref())
            && prev.log.late_bound
        {
            let again = template::render(t, names, (i, &nodes[i]), (path, raw), incremental);
            if let Err(d) = &again {
                diags.push(d.clone());
            }
            *r = Some(again);
        }
    }
}

fn relation_parts(names: &Names) -> Vec<Option<Relation>> {
    names
        .relations
        .iter()
        .map(|r| {
            r.as_ref()
                .filter(|r| !r.ephemeral)
                .map(|r| Relation::new(&r.schema, &r.identifier))
        })
        .collect()
}

/// A unit test's `given` inputs must exist and be read by the model under test, every input
/// of the model but seeds must be given, and CSV fixtures must parse.
fn check_unit_tests(nodes: &[Node], graph: &Graph, names: &Names, diags: &mut Diagnostics) {
    for n in nodes {
        let Some(u) = &n.unit else { continue };
        let Some(&model) = names.by_ref.get(&u.model) else {
            continue;
        };
        let is_ephemeral = |p: usize| names.relations[p].as_ref().is_some_and(|r| r.ephemeral);
        let inputs = graph.parents_through(model, is_ephemeral);
        let mut given = HashSet::new();
        for g in &u.given {
            let dep = crate::project::parse_relation_arg(&g.input, &g.at);
            let resolved = match dep {
                Some(dep) => resolve_dep(&dep, names),
                None => Err(Diagnostic::error(format!(
                    "`input: {}` is not ref('...') or source('...', '...')",
                    g.input
                ))
                .at(g.at.clone())),
            };
            match resolved {
                Ok(p) if is_ephemeral(p) => diags.push(
                    Diagnostic::error(format!(
                        "unit test `{}`: `{}` is ephemeral, inlined into `{}`",
                        u.name, g.input, u.model
                    ))
                    .at(g.at.clone())
                    .help("give the inputs it reads instead"),
                ),
                Ok(p) if inputs.contains(&p) => {
                    given.insert(p);
                }
                Ok(_) => diags.push(
                    Diagnostic::error(format!(
                        "unit test `{}`: `{}` is not read by model `{}`",
                        u.name, g.input, u.model
                    ))
                    .at(g.at.clone())
                    .help(format!(
                        "mock what the model reads: {}",
                        inputs
                            .iter()
                            .map(|&q| format!("`{}`", nodes[q].name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                ),
                Err(d) => diags.push(d),
            }
        }
        let missing: Vec<&str> = inputs
            .iter()
            .filter(|p| !given.contains(*p) && nodes[**p].kind != NodeKind::Seed)
            .map(|&p| nodes[p].name.as_str())
            .collect();
        if !missing.is_empty() {
            diags.push(
                Diagnostic::error(format!(
                    "unit test `{}` does not give every input of `{}`: {} missing",
                    u.name,
                    u.model,
                    missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
                ))
                .at(u.at.clone())
                .help("add a `given` entry (`rows: []` for an empty input) for each; seeds not given are read as they are"),
            );
        }
        for f in u.given.iter().chain(&u.expect) {
            if let Err(e) = crate::testing::unit::fixture_table(f) {
                diags.push(
                    Diagnostic::error(format!("unit test `{}`: malformed {e}", u.name))
                        .at(f.at.clone()),
                );
            }
        }
    }
}

/// Where `xform compile` writes a node's SQL, relative to the project root; a generic test's
/// goes under its property file, as dbt does: `models/schema.yml/unique_orders_id.sql`.
pub fn compiled_path(n: &Node) -> Arc<str> {
    match n.test {
        Some(_) => Arc::from(format!("target/compiled/{}/{}.sql", n.path, n.name)),
        None => Arc::from(format!("target/compiled/{}", n.path)),
    }
}

/// The template name a node renders under: its file, or for a generic test (whose Jinja xform
/// writes) a name of its own that diagnostics then map back to the test's YAML line.
fn template_name(n: &Node) -> Arc<str> {
    match n.test {
        Some(_) => Arc::from(format!("{}#{}", n.path, n.name)),
        None => n.path.clone(),
    }
}

/// A generic test's render error, pointed at the line that declares the test unless it lies in
/// a project macro (a custom test's body). None for an unknown test: `check_tests` reports it.
fn generic_test_diagnostic(mut d: Diagnostic, n: &Node) -> Option<Diagnostic> {
    if let Some(spec) = &n.test
        && d.message
            .contains(&format!("test_{} is unknown", spec.test_name))
    {
        return None;
    }
    let own = template_name(n);
    let written_by_xform =
        |l: &Loc| l.file == own || &*l.file == crate::template::BUILTIN_TESTS_PATH;
    d.message = format!("data test `{}`: {}", n.name, d.message);
    if let Some(spec) = &n.test
        && let Some((_, needs)) = BUILTIN_TESTS.iter().find(|(t, _)| *t == spec.test_name)
    {
        let missing: Vec<String> = needs
            .iter()
            .filter(|a| !spec.kwargs.contains_key(**a))
            .map(|a| format!("`{a}`"))
            .collect();
        if !missing.is_empty() {
            d.message = format!(
                "data test `{}`: `{}` needs {}",
                n.name,
                spec.test_name,
                missing.join(" and ")
            );
            d.help = Some(format!(
                "e.g. `- {}: {{{}}}`",
                spec.test_name,
                needs
                    .iter()
                    .map(|a| format!("{a}: ..."))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if d.loc.as_ref().is_none_or(written_by_xform) {
        d.loc = n.at.clone();
        d.label = None;
    } else if let Some(at) = n.at.clone() {
        d.related.push((at, "the test is declared here".into()));
    }
    d.related.retain(|(l, _)| !written_by_xform(l));
    Some(d)
}
