//! From a loaded project to compiled SQL and a dependency graph, offline.
//!
//! Every model and singular test is rendered once, in parallel. Relations render as
//! placeholders; once each model's own `config()` is known the final names are fixed, the graph
//! is built (and checked for cycles), and placeholders become quoted names or ephemeral CTEs.
//! The steps after it — comparing with `--state`, selection, `--defer` (`Compiled::repoint`)
//! and the SQL checks (`check`) — are the caller's. Nothing here reads another run, touches a
//! warehouse or writes a file.

mod check;
mod ephemeral;
mod hooks;
mod naming;
mod validate;

pub(crate) use hooks::Hooks;

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::diagnostics::{Diagnostic, Diagnostics, Files, Loc, did_you_mean};
use crate::graph::Graph;
use crate::project::{DepRef, External, Node, NodeKind, Project};
use crate::sql::Relation;
use crate::template::{self, Names, RelName, RenderLog, Rendered, Templates, scan};
use std::collections::HashSet;
use validate::{
    check_config, check_external, check_relations, check_tests, check_unit_tests, cycle_diagnostic,
    generic_test_diagnostic, warn_not_applied,
};

/// Generic tests xform runs without a `{% test %}` definition, and the arguments each needs.
pub(crate) const BUILTIN_TESTS: &[(&str, &[&str])] = &[
    ("not_null", &[]),
    ("unique", &[]),
    ("accepted_values", &["values"]),
    ("relationships", &["to", "field"]),
    ("unique_combination_of_columns", &["combination_of_columns"]),
    ("expression_is_true", &["expression"]),
    ("row_count", &[]),
];

#[derive(Clone, Debug, Default)]
pub(crate) struct CompileOptions {
    /// Keep what it takes to point `ref()`s at other relations after compiling (`--defer`).
    pub(crate) repointable: bool,
    /// dbt's `--empty`: every model reads its parents with no rows (a dry run of the SQL).
    pub(crate) empty: bool,
}

/// A compiled project: nodes with their final config, the graph, and per node (by index) its
/// relation, compiled SQL and parents. `selected` and `sql_clean` are filled by the steps
/// after `compile` (selection, SQL checks).
pub(crate) struct Compiled {
    pub(crate) project: Project,
    pub(crate) graph: Graph,
    /// Each model's, seed's and source's relation (none for ephemerals and tests).
    pub(crate) relations: Vec<Option<Relation>>,
    pub(crate) sql: Vec<Option<String>>,
    /// An incremental model's SQL rendered with `is_incremental()` true: what runs on top of
    /// its existing table (`sql` builds it from scratch).
    pub(crate) incremental_sql: Vec<Option<String>>,
    /// SHA-256 of each node's compiled SQL.
    pub(crate) checksums: Vec<Option<String>>,
    /// Keys of the SQL that sqlparser found clean, for the next run to skip.
    pub(crate) sql_clean: Vec<String>,
    pub(crate) selected: Vec<usize>,
    /// The project macros each node's render called.
    pub(crate) macros_used: Vec<Vec<String>>,
    /// The nodes whose render asks the warehouse something (`run_query`, the columns of a
    /// relation): their SQL here is as dbt parses it (`execute` false); they render again,
    /// against the warehouse, when they are built (`render_at_run`).
    pub(crate) at_run: Vec<bool>,
    /// What renders said with `log(msg, info=True)`: (node, message).
    pub(crate) logs: Vec<(usize, String)>,
    /// The final names every node's SQL was resolved with.
    names: Arc<Names>,
    /// The macros, parsed once for the nodes that render again when built.
    run_templates: std::sync::OnceLock<Templates<'static>>,
    /// Each render with relations still as placeholders (plain, incremental), when asked
    /// to stay repointable.
    placeholders: Option<[Vec<Option<String>>; 2]>,
    /// Each node's `pre_hook`/`post_hook` statements and the run's `on_run_start`/`on_run_end`.
    pub(crate) hooks: Hooks,
}

impl Compiled {
    pub(crate) fn nodes(&self) -> &[Node] {
        &self.project.nodes
    }

    /// The quoted relation name of node `i` (for an external source, the files' reader), as
    /// the SQL reads it.
    pub(crate) fn relation_sql(&self, i: usize) -> Option<String> {
        if let Some(e) = self.nodes()[i].external() {
            return files_reader(&e, &self.project);
        }
        Some(
            self.project
                .target
                .dialect()
                .relation(self.relations[i].as_ref()?),
        )
    }

    /// Where node `i`'s compiled SQL is written, if it has SQL.
    pub(crate) fn compiled_path(&self, i: usize) -> Option<String> {
        self.sql[i]
            .as_ref()
            .map(|_| compiled_path(&self.nodes()[i]).to_string())
    }

    /// An ephemeral model: inlined into what reads it, nothing of its own in the warehouse.
    pub(crate) fn is_ephemeral(&self, i: usize) -> bool {
        self.nodes()[i].kind == NodeKind::Model && self.relations[i].is_none()
    }

    /// The CTE name (unquoted) an ephemeral model `i` is inlined under.
    pub(crate) fn ephemeral_cte(&self, i: usize) -> Option<String> {
        let r = self.names.relations.get(i)?.as_ref()?;
        r.ephemeral.then(|| ephemeral::cte_ident(&r.identifier))
    }

    /// Whether models read their parents with no rows (`--empty`).
    pub(crate) fn empty(&self) -> bool {
        self.names.empty
    }

    /// What node `i`'s compiled SQL reads: its parents, looking through ephemeral models.
    pub(crate) fn reads(&self, i: usize) -> Vec<usize> {
        self.graph.parents_through(i, |p| self.is_ephemeral(p))
    }

    pub(crate) fn parents(&self, i: usize) -> Vec<usize> {
        let mut p: Vec<usize> = self.graph.parents(i).collect();
        p.sort_unstable();
        p
    }

    /// Node `i`'s SQL rendered as it is built, its macros querying `warehouse`: the SQL that
    /// builds it, and (for an incremental model) the SQL that adds to it.
    pub(crate) fn render_at_run(
        &self,
        i: usize,
        warehouse: Arc<dyn template::Querier>,
    ) -> Result<(String, Option<String>), Diagnostic> {
        let n = &self.nodes()[i];
        let (path, raw) = (template_name(n), n.raw.clone().unwrap_or_default());
        let templates = (self.run_templates)
            .get_or_init(|| template::environment(&self.project, &mut Diagnostics::default()));
        let names = &self.names;
        // Each render leaves every other node out; ephemeral parents come from the compile.
        let render = |incremental: bool| -> Result<String, Diagnostic> {
            let online = (incremental, Some(warehouse.clone()));
            let r = template::render(templates, names, (i, n), (&path, &raw), online)?;
            let mut one = Some(Some(Ok(r)));
            let renders =
                (0..self.nodes().len()).map(|j| if j == i { one.take().flatten() } else { None });
            let (project, graph) = (&self.project, &self.graph);
            let mut sql =
                ephemeral::finish(project, graph, names, renders.collect(), Some(&self.sql));
            Ok(sql.swap_remove(i).unwrap_or_default())
        };
        let incremental = match n.is_incremental() {
            true => Some(render(true)?),
            false => None,
        };
        Ok((render(false)?, incremental))
    }

    /// Points what reads each of `moved` at another relation (`--defer`: production's) and
    /// resolves every node's SQL again. Needs a compile with `repointable`; once.
    pub(crate) fn repoint(&mut self, moved: &[(usize, Relation)]) {
        let Some([base, incremental]) = self.placeholders.take() else {
            return;
        };
        for (i, r) in moved {
            Arc::make_mut(&mut self.names).relations[*i] = Some(RelName {
                schema: r.schema.clone(),
                identifier: r.name.clone(),
                ephemeral: false,
                external: None,
            });
        }
        let renders = |sql: Vec<Option<String>>| -> Renders {
            let rendered = |sql| Rendered {
                sql,
                log: RenderLog::default(),
            };
            sql.into_iter()
                .map(|s| s.map(|sql| Ok(rendered(sql))))
                .collect()
        };
        let names = &self.names;
        let sql = ephemeral::finish(&self.project, &self.graph, names, renders(base), None);
        let again = renders(incremental);
        self.incremental_sql =
            ephemeral::finish(&self.project, &self.graph, names, again, Some(&sql));
        self.relations = relation_parts(names);
        self.checksums = checksums_again(&self.sql, &sql, std::mem::take(&mut self.checksums));
        self.sql = sql;
    }
}

/// Renders every node, applies its `config()`, builds the graph and resolves each node's
/// final SQL. Nothing here reads another run or the warehouse.
pub(crate) fn compile(
    mut project: Project,
    opts: &CompileOptions,
    diags: &mut Diagnostics,
) -> Option<Compiled> {
    drop_disabled(&mut project);
    let sources = template_sources(&project);
    let templates = template::environment(&project, diags);
    let mut renders = render_twice(&mut project, &templates, &sources, diags);
    warn_not_applied(&project, diags);
    let names = Names {
        empty: opts.empty,
        ..name_table(&project, Some(&templates), diags)
    };
    let names = Arc::new(names);
    check_relations(&project, &names, diags);
    check_external(&project, diags);
    let graph = graph(&project.nodes, [&renders[0], &renders[1]], &names, diags)?;
    for (r, is_incremental) in renders.iter_mut().zip([false, true]) {
        rerender_late_bound(
            &templates,
            &names,
            (&project.nodes, &sources),
            r,
            is_incremental,
            diags,
        );
    }
    let hooks = hooks::render(&project, &templates, &names, diags);
    drop(templates);
    let mut c = finish(project, graph, names, renders, opts, diags)?;
    c.hooks = hooks;
    Some(c)
}

/// Leaves out the models (seeds, snapshots) whose own `config(enabled=...)` renders false, as
/// dbt does when it parses them, with the tests of each. Only files that mention `enabled` are
/// rendered for it, once, before anything else reads the project; what their render says
/// otherwise is said by the compile itself.
fn drop_disabled(project: &mut Project) {
    let asks = |n: &Node| n.raw.as_deref().is_some_and(|raw| raw.contains("enabled"));
    if !project.nodes.iter().any(asks) {
        return;
    }
    let mut quiet = Diagnostics::default();
    let off: HashSet<String> = {
        let sources = template_sources(project);
        let templates = template::environment(project, &mut quiet);
        let names = Arc::new(name_table(project, None, &mut quiet));
        let nodes = (&project.nodes[..], &sources[..]);
        let renders = render_all(&templates, &names, nodes, false, |_, n| asks(n));
        (renders.iter().zip(&project.nodes))
            .filter_map(|(r, n)| {
                let Some(Ok(r)) = r else { return None };
                let enabled = r.log.config.iter().rev().find(|(k, _)| k == "enabled")?;
                (enabled.1 == serde_json::Value::Bool(false)).then(|| n.unique_id.clone())
            })
            .collect()
    };
    // The names no longer there (a package's disabled model may share its name with one kept).
    let kept = |n: &Node| n.kind.builds_relation() && !off.contains(&n.unique_id);
    let gone: HashSet<String> = (project.nodes.iter())
        .filter(|n| off.contains(&n.unique_id))
        .filter(|n| !project.nodes.iter().any(|m| kept(m) && m.name == n.name))
        .map(|n| n.name.clone())
        .collect();
    let tests_one = |n: &Node| {
        matches!(n.kind, NodeKind::Test | NodeKind::UnitTest)
            && (n.static_deps.iter())
                .any(|d| matches!(d, DepRef::Ref(name, _) if gone.contains(name)))
    };
    project
        .nodes
        .retain(|n| !off.contains(&n.unique_id) && !tests_one(n));
    project.disabled.extend(gone);
}

/// Each node's template name and Jinja source, for the nodes that have one.
fn template_sources(project: &Project) -> Vec<Option<(Arc<str>, Arc<str>)>> {
    project
        .nodes
        .iter()
        .map(|n| n.raw.clone().map(|raw| (template_name(n), raw)))
        .collect()
}

/// The compiled project from its final renders: ephemeral models inlined, the unit tests
/// checked against the graph; `None` when anything so far was an error.
fn finish(
    project: Project,
    graph: Graph,
    names: Arc<Names>,
    [rendered, incremental]: [Renders; 2],
    opts: &CompileOptions,
    diags: &mut Diagnostics,
) -> Option<Compiled> {
    let macros_used = macros_used(&rendered, &incremental);
    let at_run = rendered
        .iter()
        .map(|r| matches!(r, Some(Ok(r)) if r.log.needs_warehouse))
        .collect();
    let logs = (rendered.iter().enumerate())
        .filter_map(|(i, r)| Some((i, r.as_ref()?.as_ref().ok()?)))
        .flat_map(|(i, r)| r.log.messages.iter().map(move |m| (i, m.clone())))
        .collect();
    let placeholders = opts
        .repointable
        .then(|| [placeholder_sql(&rendered), placeholder_sql(&incremental)]);
    let sql = ephemeral::finish(&project, &graph, &names, rendered, None);
    let incremental_sql = ephemeral::finish(&project, &graph, &names, incremental, Some(&sql));
    check_unit_tests(&project.nodes, &graph, &names, diags);
    if diags.has_errors() {
        return None;
    }
    Some(Compiled {
        relations: relation_parts(&names),
        checksums: checksums(&sql),
        names,
        run_templates: std::sync::OnceLock::new(),
        project,
        graph,
        sql,
        incremental_sql,
        sql_clean: Vec::new(),
        selected: Vec::new(),
        macros_used,
        at_run,
        logs,
        placeholders,
        hooks: Hooks::default(),
    })
}

/// Renders every node, applies each model's own `config()`, then renders incremental models a
/// second time with `is_incremental()` true (the SQL of a run on top of the existing table),
/// once their own `config()` has said they are incremental.
fn render_twice(
    project: &mut Project,
    templates: &Templates<'_>,
    sources: &Sources,
    diags: &mut Diagnostics,
) -> [Renders; 2] {
    let names = Arc::new(name_table(project, None, diags));
    let nodes = (&project.nodes[..], sources);
    let mut rendered = render_all(templates, &names, nodes, false, |_, _| true);
    apply_config(&mut project.nodes, &mut rendered, diags);
    check_tests(&project.nodes, templates, diags);
    let nodes = (&project.nodes[..], sources);
    let wanted = |i: usize, n: &Node| n.is_incremental() && matches!(rendered[i], Some(Ok(_)));
    let mut incremental = render_all(templates, &names, nodes, true, wanted);
    for r in incremental.iter_mut().filter(|r| matches!(r, Some(Err(_)))) {
        if let Some(Err(d)) = r.take() {
            diags.push(d);
        }
    }
    [rendered, incremental]
}

/// The dependency graph of what each render referenced; a cycle is an error naming it.
fn graph(
    nodes: &[Node],
    renders: [&Renders; 2],
    names: &Names,
    diags: &mut Diagnostics,
) -> Option<Graph> {
    let edges = edges(nodes, renders, names, diags);
    Graph::new(nodes.len(), edges)
        .map_err(|cycle| diags.push(cycle_diagnostic(nodes, &cycle)))
        .ok()
}

/// The checksums of `now`, reusing those of `before` where the SQL is the same.
fn checksums_again(
    before: &[Option<String>],
    now: &[Option<String>],
    sums: Vec<Option<String>>,
) -> Vec<Option<String>> {
    (before, now, sums)
        .into_par_iter()
        .map(|(b, n, sum)| match b == n {
            true => sum,
            false => n.as_deref().map(crate::checksum),
        })
        .collect()
}

fn checksums(sql: &[Option<String>]) -> Vec<Option<String>> {
    sql.par_iter()
        .map(|s| s.as_deref().map(crate::checksum))
        .collect()
}

/// Checks the compiled SQL of the selected nodes with sqlparser (skipping SQL whose key is in
/// `known_clean`); findings point at the compiled files, which join `files`.
pub(crate) fn check(
    c: &mut Compiled,
    known_clean: &HashSet<String>,
    files: &mut Files,
    diags: &mut Diagnostics,
) {
    let mut selected = vec![false; c.nodes().len()];
    // What renders again when it is built is checked then, by the warehouse.
    (c.selected.iter().filter(|&&i| !c.at_run[i])).for_each(|&i| selected[i] = true);
    c.sql_clean = check::check_sql(
        &c.project,
        &c.names,
        &c.graph,
        (&c.sql, &c.checksums, &selected),
        known_clean,
        files,
        diags,
    );
}

/// The FROM item reading an external source's files, where the warehouse reads files (a
/// relative location made the project's, for a warehouse running elsewhere).
fn files_reader(e: &External, project: &Project) -> Option<String> {
    let dialect = project.target.dialect();
    // A URL (`s3a://lake/events`) is the warehouse's to resolve.
    let relative = std::path::Path::new(&e.location).is_relative() && !e.location.contains("://");
    let location = match dialect.absolute_paths() && relative {
        true => {
            let path = project.root.join(&e.location);
            let path = std::path::absolute(&path).unwrap_or(path);
            path.to_string_lossy().into_owned()
        }
        false => e.location.clone(),
    };
    dialect.read_files(&e.format, &location, e.hive_partitioning)
}

/// The project macros each node's renders called.
fn macros_used(rendered: &Renders, incremental: &Renders) -> Vec<Vec<String>> {
    rendered
        .iter()
        .zip(incremental)
        .map(|(a, b)| macros_called([a, b]))
        .collect()
}

/// The project macros one node's two renders called, sorted, once each.
fn macros_called(renders: [&Option<Result<Rendered, Diagnostic>>; 2]) -> Vec<String> {
    let mut used: Vec<String> = renders
        .into_iter()
        .filter_map(|r| r.as_ref()?.as_ref().ok())
        .flat_map(|r| r.log.macros.iter().cloned())
        .collect();
    used.sort();
    used.dedup();
    used
}

fn placeholder_sql(renders: &Renders) -> Vec<Option<String>> {
    renders
        .iter()
        .map(|r| Some(r.as_ref()?.as_ref().ok()?.sql.clone()))
        .collect()
}

/// Node `n`'s relation; `configured` is its (schema, name) as configured.
fn relation_of(
    project: &Project,
    n: &Node,
    configured: Option<(String, String)>,
) -> Option<RelName> {
    match n.kind {
        NodeKind::Source => source_relation(project, n),
        _ => configured.map(|(schema, name)| built_relation(project, n, (&schema, &name))),
    }
}

/// The relation a model, seed or snapshot builds, as the warehouse stores its names.
fn built_relation(project: &Project, n: &Node, (schema, name): (&str, &str)) -> RelName {
    let dialect = project.target.dialect();
    RelName {
        schema: dialect.stored_name(schema),
        identifier: dialect.stored_name(name),
        ephemeral: n.kind == NodeKind::Model && n.config.materialized() == "ephemeral",
        external: None,
    }
}

/// A source table's relation, or the reader of its files.
fn source_relation(project: &Project, n: &Node) -> Option<RelName> {
    n.source_relation
        .clone()
        .map(|(schema, identifier)| RelName {
            schema: project.target.dialect().stored_name(&schema),
            identifier: project.target.dialect().stored_name(&identifier),
            ephemeral: false,
            external: n.external().and_then(|e| files_reader(&e, project)),
        })
}

fn name_table(project: &Project, templates: Option<&Templates>, diags: &mut Diagnostics) -> Names {
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
    let configured = naming::configured_names(project, templates, diags);
    let relations = (project.nodes.iter().zip(configured))
        .map(|(n, c)| relation_of(project, n, c))
        .collect();
    Names {
        dialect: project.target.dialect(),
        disabled: project.disabled.clone(),
        by_ref,
        by_source,
        relations,
        empty: false,
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
            Some(template::render(
                t,
                names,
                (i, n),
                (path, raw),
                (incremental, None),
            ))
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
        DepRef::Ref(name, at) => resolve_ref(name, at, names),
        DepRef::Source(s, t, at) => resolve_source((s, t), at, names),
    }
}

/// The model, seed or snapshot `ref(name)` names.
fn resolve_ref(name: &str, at: &Loc, names: &Names) -> Result<usize, Diagnostic> {
    names.by_ref.get(name).copied().ok_or_else(|| {
        Diagnostic::error(format!("`{name}` is not a model or seed in this project"))
            .at(at.clone())
            .help_opt(did_you_mean(name, names.by_ref.keys().map(String::as_str)))
    })
}

/// The source table `source(s, t)` names.
fn resolve_source((s, t): (&str, &str), at: &Loc, names: &Names) -> Result<usize, Diagnostic> {
    names
        .by_source
        .get(&(s.to_string(), t.to_string()))
        .copied()
        .ok_or_else(|| {
            Diagnostic::error(format!("source `{s}.{t}` is not declared")).at(at.clone())
        })
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
            let again =
                template::render(t, names, (i, &nodes[i]), (path, raw), (incremental, None));
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

/// Where `xform compile` writes a node's SQL, relative to the project root; a generic test's
/// goes under its property file, as dbt does: `models/schema.yml/unique_orders_id.sql`.
pub(crate) fn compiled_path(n: &Node) -> Arc<str> {
    match declared_in_yaml(n) {
        true => Arc::from(format!("target/compiled/{}/{}.sql", n.path, n.name)),
        false => Arc::from(format!("target/compiled/{}", n.path)),
    }
}

/// A generic test, or a snapshot declared in a property file: many such nodes share a file.
fn declared_in_yaml(n: &Node) -> bool {
    n.test.is_some() || !n.path.ends_with(".sql")
}

/// The template name a node renders under: its file, or for a generic test (whose Jinja xform
/// writes) a name of its own that diagnostics then map back to the test's YAML line.
fn template_name(n: &Node) -> Arc<str> {
    match n.test {
        Some(_) => Arc::from(format!("{}#{}", n.path, n.name)),
        None => n.path.clone(),
    }
}
