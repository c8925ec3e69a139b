//! The mistakes in a project that compiling finds on its way, as diagnostics: settings
//! xform cannot apply, relations built twice or under reserved names, sources no target can
//! read, unknown tests, dependency cycles, unit tests whose inputs do not fit their model, and
//! generic tests' render errors pointed back at their YAML. Nothing here renders: these read
//! the nodes, names and graph as `compile` builds them.

use std::collections::{HashMap, HashSet};

use super::{BUILTIN_TESTS, files_reader, resolve_dep, template_name};
use crate::diagnostics::{Diagnostic, Diagnostics, Loc, did_you_mean};
use crate::graph::Graph;
use crate::project::config::{LAYOUT_KEYS, MODEL_MATERIALIZATIONS, NOT_APPLIED_KEYS};
use crate::project::{Fixture, Node, NodeKind, Project, TestSpec, UnitTestProps};
use crate::sql::Dialect;
use crate::template::{Names, RelName, Templates, scan};

/// A config key xform accepts but does not apply yet is a warning, once per key, where a node
/// first got it (the folder in project.yml, the property file, the `config()` call). So is an
/// enforced `contract` (kept for `state:modified.contract`, but not checked against the
/// columns built).
pub(super) fn warn_not_applied(project: &Project, diags: &mut Diagnostics) {
    let nodes = &project.nodes[..];
    let target = &project.target;
    if !target.dialect().has_privileges() {
        let what = format!(
            "config `grants` is not applied on {} targets, which have no users or privileges",
            target.kind.name()
        );
        let set = |n: &Node| n.config.get("grants").is_some();
        let then = "is built without them (they apply on postgres targets)";
        warn_setting(nodes, ("grants", &what, then), set, diags);
        if let Some(g) = project.schema_grants.first() {
            diags.push(
                Diagnostic::warning(format!(
                    "`schema_grants` are not applied on {} targets, which have no users or privileges",
                    target.kind.name()
                ))
                .at(g.at.clone()),
            );
        }
    }
    if !target.dialect().stores_comments() {
        let what = format!(
            "config `persist_docs` is not applied on {} targets",
            target.kind.name()
        );
        let set = |n: &Node| n.config.get("persist_docs").is_some();
        let then = "is built without comments (the descriptions stay in the docs)";
        warn_setting(nodes, ("persist_docs", &what, then), set, diags);
    }
    let applied = target.dialect().layout_keys();
    for key in LAYOUT_KEYS.iter().filter(|k| !applied.contains(k)) {
        let what = format!(
            "config `{key}` is not applied on {} targets (it lays out tables of {})",
            target.kind.name(),
            match *key {
                "indexes" => "PostgreSQL",
                "partition_by" | "file_format" => "Spark",
                _ => "Redshift",
            }
        );
        let set = |n: &Node| n.config.get(key).is_some();
        warn_setting(nodes, (key, &what, "is built without it"), set, diags);
    }
    for key in NOT_APPLIED_KEYS {
        let what = format!("config `{key}` is not applied by this version of xform");
        let set = |n: &Node| n.config.get(key).is_some();
        warn_setting(
            nodes,
            (key, &what, "runs as if it were not set"),
            set,
            diags,
        );
    }
    let enforced = |n: &Node| {
        let contract = n.config.get("contract");
        contract.and_then(|c| c.get("enforced")) == Some(&serde_json::Value::Bool(true))
    };
    let what = "an enforced `contract` is not checked by this version of xform";
    let then = "builds without checking its columns and types";
    warn_setting(nodes, ("contract", what, then), enforced, diags);
}

/// One warning at the first node that has setting `key`, counting the others.
fn warn_setting(
    nodes: &[Node],
    (key, what, then): (&str, &str, &str),
    set: impl Fn(&Node) -> bool,
    diags: &mut Diagnostics,
) {
    let mut using = nodes.iter().filter(|n| set(n));
    let Some(first) = using.next() else { return };
    let also = match using.count() {
        0 => String::new(),
        n => format!(" (and {n} more node{})", if n == 1 { "" } else { "s" }),
    };
    let (kind, name) = (first.kind.name(), &first.name);
    diags.push(
        Diagnostic::warning(format!("{what}: {kind} `{name}`{also} {then}"))
            .at_opt(first.config.at(key).cloned().or_else(|| first.at.clone())),
    );
}

/// Two nodes building one relation would overwrite each other (which one wins depends on
/// timing): the project is refused, naming both. Names with `__xform_` are xform's own.
pub(super) fn check_relations(project: &Project, names: &Names, diags: &mut Diagnostics) {
    let dialect = project.target.dialect();
    let mut built: HashMap<(String, String), usize> = HashMap::new();
    for (i, n) in project.nodes.iter().enumerate() {
        let Some(r) = names.relations[i].as_ref().filter(|r| !r.ephemeral) else {
            continue;
        };
        if !n.kind.builds_relation() {
            continue;
        }
        if dialect.fold_identifier(&r.identifier).contains("__xform_") {
            diags.push(reserved_name(n, r));
            continue;
        }
        if let Some(d) = too_long(dialect, n, r) {
            diags.push(d);
            continue;
        }
        let key = (
            dialect.fold_identifier(&r.schema),
            dialect.fold_identifier(&r.identifier),
        );
        let Some(&first) = built.get(&key) else {
            built.insert(key, i);
            continue;
        };
        let other = &project.nodes[first];
        if other.name == n.name {
            continue; // two nodes of one name: reported as such when the project was read
        }
        diags.push(built_twice(other, n, r));
    }
}

/// A schema or relation name longer than the warehouse keeps (PostgreSQL cuts names at 63
/// bytes without a word, so two long names could become one).
fn too_long(dialect: &dyn Dialect, n: &Node, r: &RelName) -> Option<Diagnostic> {
    let max = dialect.max_identifier_bytes()?;
    let name = [&r.schema, &r.identifier]
        .into_iter()
        .find(|p| p.len() > max)?;
    Some(
        Diagnostic::error(format!(
            "{} `{}` would build a relation named `{name}`, {} bytes long: the warehouse keeps at most {max}",
            n.kind.name(),
            n.name,
            name.len()
        ))
        .at(named_at(n))
        .help("shorten the name, or give the relation a shorter one with `alias` or `schema`"),
    )
}

/// Node `n` would build relation `r`, whose name is reserved for xform's staging tables.
fn reserved_name(n: &Node, r: &RelName) -> Diagnostic {
    Diagnostic::error(format!(
        "{} `{}` would build `{}.{}`: names containing `__xform_` are reserved for xform's own staging tables",
        n.kind.name(),
        n.name,
        r.schema,
        r.identifier
    ))
    .at(named_at(n))
}

/// Nodes `other` and `n` would both build relation `r`.
fn built_twice(other: &Node, n: &Node, r: &RelName) -> Diagnostic {
    Diagnostic::error(format!(
        "{} `{}` and {} `{}` both build `{}.{}`",
        other.kind.name(),
        other.name,
        n.kind.name(),
        n.name,
        r.schema,
        r.identifier
    ))
    .at(named_at(n))
    .related(named_at(other), "the other one is here")
    .help("give one of them another `alias` or `schema`")
}

/// A source of files (`external:`) on a warehouse that cannot read files is refused.
pub(super) fn check_external(project: &Project, diags: &mut Diagnostics) {
    for n in &project.nodes {
        let Some(e) = n.external().filter(|e| files_reader(e, project).is_none()) else {
            continue;
        };
        diags.push(
            Diagnostic::error(format!(
                "source `{}` reads files (`{}`), which {} targets cannot read themselves",
                n.name,
                e.location,
                project.target.kind.name()
            ))
            .at(named_at(n))
            .help("load the files into a table and declare that as the source"),
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

pub(super) fn check_config(n: &Node, diags: &mut Diagnostics) {
    check_materialized(n, diags);
    if let Some(v) = n
        .config
        .get("sql_check")
        .filter(|v| !matches!(v.as_str(), Some("error" | "warn" | "off")))
    {
        diags.push(
            Diagnostic::error(format!("`sql_check` is {v}; use error, warn or off"))
                .at_opt(setting_at(n, "sql_check")),
        );
    }
    if let Some(v) = n.config.get("audit").filter(|v| !v.is_boolean()) {
        diags.push(
            Diagnostic::error(format!("`audit` must be true or false, found {v}"))
                .at_opt(setting_at(n, "audit")),
        );
    }
    if n.kind == NodeKind::Test
        && let Err(d) = crate::project::test_config(n)
    {
        diags.push(d);
    }
    for key in ["schema", "alias"] {
        if let Some(v) = n.config.get(key).filter(|v| !v.is_string() && !v.is_null()) {
            diags.push(
                Diagnostic::error(format!("`{key}` must be a string, found {v}"))
                    .at_opt(setting_at(n, key)),
            );
        }
    }
}

/// Where node `n` got setting `key`, else where the node is declared.
fn setting_at(n: &Node, key: &str) -> Option<Loc> {
    n.config.at(key).cloned().or_else(|| n.at.clone())
}

/// `materialized` must be a string, and a model's one xform knows.
fn check_materialized(n: &Node, diags: &mut Diagnostics) {
    if let Some(v) = n.config.get("materialized").filter(|v| !v.is_string()) {
        diags.push(
            Diagnostic::error(format!("`materialized` must be a string, found {v}"))
                .at_opt(setting_at(n, "materialized")),
        );
    } else if n.kind == NodeKind::Model
        && !MODEL_MATERIALIZATIONS.contains(&n.config.materialized())
    {
        diags.push(unknown_materialization(n));
    }
}

/// Model `n`'s `materialized` is not one xform knows.
fn unknown_materialization(n: &Node) -> Diagnostic {
    let m = n.config.materialized();
    Diagnostic::error(format!(
        "model `{}` has unknown materialization `{m}`",
        n.name
    ))
    .at_opt(setting_at(n, "materialized"))
    .help(
        did_you_mean(m, MODEL_MATERIALIZATIONS.iter().copied())
            .unwrap_or_else(|| format!("use one of: {}", MODEL_MATERIALIZATIONS.join(", "))),
    )
}

pub(super) fn check_tests(nodes: &[Node], t: &Templates, diags: &mut Diagnostics) {
    for n in nodes {
        let Some(spec) = &n.test else { continue };
        let name = spec.test_name.as_str();
        let known = match &spec.namespace {
            Some(p) => t.package_test(p, name),
            None => t.generic_tests.contains(name),
        };
        if known {
            continue;
        }
        if let Some(p) = &spec.namespace {
            diags.push(
                Diagnostic::error(format!("unknown data test `{p}.{name}`"))
                    .at_opt(n.at.clone())
                    .help(format!(
                        "no installed package `{p}` defines {{% test {name} %}}: is it in packages.yml, and installed (`xform deps`)?"
                    )),
            );
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

pub(super) fn cycle_diagnostic(nodes: &[Node], cycle: &[usize]) -> Diagnostic {
    let names: Vec<&str> = cycle.iter().map(|&i| nodes[i].name.as_str()).collect();
    let first = ref_loc(nodes, cycle[0], cycle[1]);
    let mut d = Diagnostic::error(format!("dependency cycle: {}", names.join(" → ")))
        .at(first)
        .label(format!("`{}` reads `{}`", names[1], names[0]))
        .help(
            "a model cannot depend on itself, directly or through others: break one of these refs",
        );
    for w in cycle.windows(2).skip(1) {
        d = d.related(
            ref_loc(nodes, w[0], w[1]),
            format!("`{}` reads `{}`", nodes[w[1]].name, nodes[w[0]].name),
        );
    }
    d
}

/// Where `child` calls `ref()` on `parent`, else where it is declared, else its file.
fn ref_loc(nodes: &[Node], parent: usize, child: usize) -> Loc {
    let c = &nodes[child];
    let span = c
        .raw
        .as_ref()
        .and_then(|raw| scan::find_call(raw, "ref", Some(&nodes[parent].name)));
    match span {
        Some(s) => Loc::new(&c.path, s),
        None => c.at.clone().unwrap_or_else(|| Loc::new(&c.path, 0..0)),
    }
}

/// A unit test's `given` inputs must exist and be read by the model under test, every input
/// of the model but seeds must be given, and CSV fixtures must parse.
pub(super) fn check_unit_tests(
    nodes: &[Node],
    graph: &Graph,
    names: &Names,
    diags: &mut Diagnostics,
) {
    for n in nodes {
        let Some(u) = &n.unit else { continue };
        let Some(&model) = names.by_ref.get(&u.model) else {
            continue;
        };
        let inputs = graph.parents_through(model, |p| is_ephemeral(names, p));
        let given = check_given(nodes, names, u, &inputs, diags);
        check_all_given(nodes, u, &inputs, &given, diags);
        for f in u.given.iter().chain(&u.expect) {
            if let Err(e) = crate::project::fixture_table(f) {
                diags.push(
                    Diagnostic::error(format!("unit test `{}`: malformed {e}", u.name))
                        .at(f.at.clone()),
                );
            }
        }
    }
}

fn is_ephemeral(names: &Names, p: usize) -> bool {
    names.relations[p].as_ref().is_some_and(|r| r.ephemeral)
}

/// Checks each `given` input of unit test `u` against `inputs`, what its model reads; returns
/// the inputs given.
fn check_given(
    nodes: &[Node],
    names: &Names,
    u: &UnitTestProps,
    inputs: &[usize],
    diags: &mut Diagnostics,
) -> HashSet<usize> {
    let mut given = HashSet::new();
    for g in &u.given {
        match given_input(names, g) {
            Ok(p) if is_ephemeral(names, p) => diags.push(
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
            Ok(_) => diags.push(not_read(nodes, u, g, inputs)),
            Err(d) => diags.push(d),
        }
    }
    given
}

/// The node a `given` entry's `input` names.
fn given_input(names: &Names, g: &Fixture) -> Result<usize, Diagnostic> {
    match crate::project::parse_relation_arg(&g.input, &g.at) {
        Some(dep) => resolve_dep(&dep, names),
        None => Err(Diagnostic::error(format!(
            "`input: {}` is not ref('...') or source('...', '...')",
            g.input
        ))
        .at(g.at.clone())),
    }
}

/// A `given` input the model under test does not read, with what it does read.
fn not_read(nodes: &[Node], u: &UnitTestProps, g: &Fixture, inputs: &[usize]) -> Diagnostic {
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
    ))
}

/// Every input of the model under test but seeds must be given.
fn check_all_given(
    nodes: &[Node],
    u: &UnitTestProps,
    inputs: &[usize],
    given: &HashSet<usize>,
    diags: &mut Diagnostics,
) {
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
}

/// A generic test's render error, pointed at the line that declares the test unless it lies in
/// a project macro (a custom test's body). None for an unknown test: `check_tests` reports it.
pub(super) fn generic_test_diagnostic(mut d: Diagnostic, n: &Node) -> Option<Diagnostic> {
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
    if let Some(spec) = &n.test {
        say_missing_arguments(&mut d, n, spec);
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

/// When a built-in test lacks arguments it needs, the diagnostic names them instead, with an
/// example.
fn say_missing_arguments(d: &mut Diagnostic, n: &Node, spec: &TestSpec) {
    let Some((_, needs)) = BUILTIN_TESTS.iter().find(|(t, _)| *t == spec.test_name) else {
        return;
    };
    let missing: Vec<String> = needs
        .iter()
        .filter(|a| !spec.kwargs.contains_key(**a))
        .map(|a| format!("`{a}`"))
        .collect();
    if missing.is_empty() {
        return;
    }
    d.message = format!(
        "data test `{}`: `{}` needs {}",
        n.name,
        spec.test_name,
        missing.join(" and ")
    );
    d.help = Some(example_arguments(spec, needs));
}

/// A built-in test declared with the arguments it needs: `- accepted_values: {values: ...}`.
fn example_arguments(spec: &TestSpec, needs: &[&str]) -> String {
    format!(
        "e.g. `- {}: {{{}}}`",
        spec.test_name,
        needs
            .iter()
            .map(|a| format!("{a}: ..."))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
