//! Turning discovered files and property entries into nodes with cascaded config.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value as Json;

use super::config::{Config, FolderConfig};
use super::discover::{FileKind, Read};
use super::properties::{self, Column, Props, ResourceProps, SourceTable, TestDecl, UnitTestProps};
use super::settings::Settings;
use crate::diagnostics::{Diagnostic, Diagnostics, Loc, did_you_mean};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NodeKind {
    Seed,
    Source,
    Model,
    Test,
    UnitTest,
    Snapshot,
}

impl NodeKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            NodeKind::Seed => "seed",
            NodeKind::Source => "source",
            NodeKind::Model => "model",
            NodeKind::Test => "test",
            NodeKind::UnitTest => "unit_test",
            NodeKind::Snapshot => "snapshot",
        }
    }

    /// Whether nodes of this kind build a relation (and `ref()` names them): a model, seed or
    /// snapshot.
    pub(crate) fn builds_relation(self) -> bool {
        matches!(self, NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot)
    }
}

/// A dependency known without rendering (tests, unit tests): `ref('x')` or `source('a','b')`.
#[derive(Clone, Debug)]
pub(crate) enum DepRef {
    Ref(String, Loc),
    Source(String, String, Loc),
}

impl DepRef {
    /// Whether `n` is the node this `ref()` or `source()` names.
    pub(crate) fn names(&self, n: &Node) -> bool {
        match self {
            DepRef::Ref(name, _) => n.kind != NodeKind::Source && &n.name == name,
            DepRef::Source(s, t, _) => {
                n.kind == NodeKind::Source
                    && n.name.split_once('.') == Some((s.as_str(), t.as_str()))
            }
        }
    }
}

/// Files a source reads: a path or glob relative to the project, their format (parquet, csv,
/// json) and whether `key=value/` folders become columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct External {
    pub(crate) location: String,
    pub(crate) format: String,
    pub(crate) hive_partitioning: bool,
}

/// A generic data test applied to a node (and maybe a column).
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct TestSpec {
    pub(crate) test_name: String,
    /// The installed package whose `{% test %}` it runs (`dbt_utils.equality`); None for the
    /// project's own tests and xform's built-in ones.
    pub(crate) namespace: Option<String>,
    pub(crate) column_name: Option<String>,
    pub(crate) kwargs: BTreeMap<String, Json>,
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) name: String,
    pub(crate) unique_id: String,
    /// The file the node comes from, relative to the project root.
    pub(crate) path: Arc<str>,
    pub(crate) fqn: Vec<String>,
    /// The Jinja SQL of a model or singular test.
    pub(crate) raw: Option<Arc<str>>,
    /// A seed's file checksum.
    pub(crate) checksum: Option<String>,
    pub(crate) config: Config,
    pub(crate) description: String,
    pub(crate) columns: Vec<Column>,
    /// Where a node declared in YAML (test, source, unit test) is written.
    pub(crate) at: Option<Loc>,
    /// `(schema, identifier)` of a source table; models and seeds get theirs when compiled.
    pub(crate) source_relation: Option<(String, String)>,
    pub(crate) test: Option<TestSpec>,
    /// Model-level data tests from property files, until they become test nodes.
    pub(crate) model_tests: Vec<TestDecl>,
    pub(crate) unit: Option<Box<UnitTestProps>>,
    pub(crate) static_deps: Vec<DepRef>,
}

impl Node {
    fn new(kind: NodeKind, name: String, unique_id: String, path: Arc<str>) -> Node {
        Node {
            kind,
            name,
            unique_id,
            path,
            fqn: Vec::new(),
            raw: None,
            checksum: None,
            config: Config::default(),
            description: String::new(),
            columns: Vec::new(),
            at: None,
            source_relation: None,
            test: None,
            model_tests: Vec::new(),
            unit: None,
            static_deps: Vec::new(),
        }
    }

    /// An incremental model: built once, then added to on each run.
    pub(crate) fn is_incremental(&self) -> bool {
        self.kind == NodeKind::Model && self.config.materialized() == "incremental"
    }

    /// A source read from files rather than a warehouse table: `external_location` in its
    /// config or meta (dbt-duckdb), or `external: {location}` (dbt-external-tables). A
    /// `{name}` in the location is the table's name.
    pub(crate) fn external(&self) -> Option<External> {
        if self.kind != NodeKind::Source {
            return None;
        }
        let location = self.external_setting("external_location")?.as_str()?;
        let table = self.name.split_once('.').map_or(&*self.name, |(_, t)| t);
        let location = location.replace("{name}", table);
        let format = self
            .external_setting("format")
            .and_then(Json::as_str)
            .map(str::to_lowercase)
            .unwrap_or_else(|| format_of_extension(&location).to_string());
        let hive_partitioning = self
            .external_setting("hive_partitioning")
            .and_then(Json::as_bool)
            == Some(true);
        Some(External {
            location,
            format,
            hive_partitioning,
        })
    }

    /// A setting of an external source: in its config, its meta, or its `external:` block
    /// (where `external_` may be left off the key).
    fn external_setting(&self, key: &str) -> Option<&Json> {
        let external = self.config.get("external");
        let meta = self.config.get("meta");
        let short = key.trim_start_matches("external_");
        self.config
            .get(key)
            .or_else(|| meta.and_then(|m| m.get(key)))
            .or_else(|| external.and_then(|e| e.get(short).or_else(|| e.get(key))))
    }

    /// A model that exists only for this run (`compile --inline`).
    pub(crate) fn ad_hoc(name: &str, path: &Arc<str>, raw: &Arc<str>) -> Node {
        let mut n = Node::new(
            NodeKind::Model,
            name.to_string(),
            format!("model.inline.{name}"),
            path.clone(),
        );
        n.raw = Some(raw.clone());
        n
    }
}

/// The file format an external location's extension implies, parquet unless it says otherwise.
fn format_of_extension(location: &str) -> &'static str {
    let ext = location.rsplit('.').next().unwrap_or("").to_lowercase();
    match ext.as_str() {
        "csv" | "tsv" | "txt" | "gz" => "csv",
        "json" | "jsonl" | "ndjson" => "json",
        _ => "parquet",
    }
}

pub(crate) struct Built {
    pub(crate) nodes: Vec<Node>,
    pub(crate) macro_files: Vec<(Arc<str>, Arc<str>)>,
    pub(crate) exposures: Vec<properties::Exposure>,
    /// Models, seeds and snapshots left out for `enabled: false`.
    pub(crate) disabled: BTreeSet<String>,
}

pub(crate) fn build(settings: &Settings, reads: Vec<Read>, diags: &mut Diagnostics) -> Built {
    let project = settings.name.as_str();
    python_models(&reads, diags);
    let mut props = parse_properties(&reads, diags);
    let sorted = sort_reads(reads);
    let (mut nodes, used_paths) = file_nodes(settings, sorted.files);
    for r in sorted.snapshots {
        nodes.extend(snapshot_nodes(settings, r, diags));
    }
    let (declared, described): (Vec<_>, Vec<_>) = std::mem::take(&mut props.snapshots)
        .into_iter()
        .partition(|p| p.relation.is_some());
    nodes.extend(yaml_snapshots(settings, declared, diags));
    check_duplicate_names(&nodes, diags);
    attach_props(&mut nodes, &props.models, NodeKind::Model, diags);
    attach_props(&mut nodes, &props.seeds, NodeKind::Seed, diags);
    attach_props(&mut nodes, &described, NodeKind::Snapshot, diags);
    add_sources(project, &mut nodes, &props, diags);
    let dbt_names = settings.style == super::settings::Style::Dbt;
    let packages = &settings.package_names;
    add_generic_tests((project, dbt_names, packages), &settings.tests, &mut nodes);
    add_unit_tests(project, &mut nodes, props.unit_tests);
    let disabled = leave_out_disabled(&mut nodes);
    warn_unused_config_paths(settings, &used_paths, diags);
    Built {
        disabled,
        nodes,
        macro_files: sorted.macros,
        exposures: props.exposures,
    }
}

/// Leaves out the nodes whose config says `enabled: false`; the names of the models, seeds and
/// snapshots among them, for the error of a `ref()` to one.
pub(crate) fn leave_out_disabled(nodes: &mut Vec<Node>) -> BTreeSet<String> {
    let off = (nodes.iter())
        .filter(|n| n.kind.builds_relation() && !n.config.enabled())
        .map(|n| n.name.clone())
        .collect();
    nodes.retain(|n| n.config.enabled());
    off
}

/// Every property file parsed (in parallel), merged in the order the files were read.
fn parse_properties(reads: &[Read], diags: &mut Diagnostics) -> Props {
    let parsed: Vec<(Props, Diagnostics)> = reads
        .par_iter()
        .filter(|r| r.found.kind == FileKind::Properties)
        .map(|r| {
            let (mut p, mut d) = (Props::default(), Diagnostics::default());
            properties::parse(&r.found.path, &r.text, &mut p, &mut d);
            (p, d)
        })
        .collect();
    let mut props = Props::default();
    for (p, d) in parsed {
        props.extend(p);
        diags.extend(d);
    }
    props
}

/// The files other than property files, by what becomes of them.
struct SortedReads {
    /// `(path, text)` of each macro file.
    macros: Vec<(Arc<str>, Arc<str>)>,
    snapshots: Vec<Read>,
    /// Models, seeds and singular tests: one node per file.
    files: Vec<Read>,
}

fn sort_reads(reads: Vec<Read>) -> SortedReads {
    let (macros, files): (Vec<Read>, Vec<Read>) = reads
        .into_iter()
        .filter(|r| {
            let other = [FileKind::Properties, FileKind::PythonModel, FileKind::Docs];
            !other.contains(&r.found.kind)
        })
        .partition(|r| r.found.kind == FileKind::Macro);
    let (snapshots, files): (Vec<Read>, Vec<Read>) = files
        .into_iter()
        .partition(|r| r.found.kind == FileKind::Snapshot);
    SortedReads {
        macros: macros.into_iter().map(|r| (r.found.path, r.text)).collect(),
        snapshots,
        files,
    }
}

/// Each dbt Python model: an error at its file.
fn python_models(reads: &[Read], diags: &mut Diagnostics) {
    for r in reads
        .iter()
        .filter(|r| r.found.kind == FileKind::PythonModel)
    {
        diags.push(
            Diagnostic::error(format!(
                "Python models are not supported by xform: `{}`",
                r.found.stem
            ))
            .at(Loc::new(&r.found.path, 0..0))
            .help("write the model in SQL, or build it with dbt and read it as a source"),
        );
    }
}

/// The nodes of model, seed and singular test files, and the config path each was found at.
fn file_nodes(settings: &Settings, files: Vec<Read>) -> (Vec<Node>, Vec<(FileKind, Vec<String>)>) {
    files
        .into_par_iter()
        .map(|r| file_node(settings, r))
        .unzip()
}

/// The node of a model, seed or singular test file, and the config path it was found at.
fn file_node(settings: &Settings, r: Read) -> (Node, (FileKind, Vec<String>)) {
    let project = settings.name.as_str();
    let f = r.found;
    let mut parts = f.folders;
    parts.push(f.stem.clone());
    let (kind, folder_config, id_kind) = match f.kind {
        FileKind::Seed => (NodeKind::Seed, &settings.seeds, "seed"),
        FileKind::SingularTest => (NodeKind::Test, &settings.tests, "test"),
        _ => (NodeKind::Model, &settings.models, "model"),
    };
    let unique_id = format!("{id_kind}.{project}.{}", f.stem);
    let mut node = Node::new(kind, f.stem, unique_id, f.path);
    node.config = folder_config.resolve(project, &parts);
    node.fqn = std::iter::once(project.to_string())
        .chain(parts.iter().cloned())
        .collect();
    if kind != NodeKind::Seed {
        node.raw = Some(r.text);
    }
    node.checksum = r.checksum;
    (node, (f.kind, parts))
}

/// The snapshots of a `snapshots/*.sql` file: each `{% snapshot name %}...{% endsnapshot %}`
/// block is a node whose template is the file with everything outside the block blanked, so
/// line numbers stay those of the file.
fn snapshot_nodes(settings: &Settings, r: Read, diags: &mut Diagnostics) -> Vec<Node> {
    let text = &*r.text;
    let mut out = Vec::new();
    let mut blocks = Vec::new();
    let mut rest = 0;
    while let Some((open, name, body_start)) = next_tag(text, rest, "snapshot") {
        let Some((close, _, after)) = next_tag(text, body_start, "endsnapshot") else {
            diags.push(unclosed_snapshot(&r.found.path, &name, open..body_start));
            return out;
        };
        out.push(snapshot_block_node(
            settings,
            &r,
            name,
            open..body_start,
            close,
        ));
        blocks.push(open..after);
        rest = after;
    }
    diags.extend(check_outside_blocks(&r.found.path, text, &blocks));
    if out.is_empty() {
        diags.push(no_snapshot_block(&r.found.path));
    }
    out
}

fn unclosed_snapshot(path: &Arc<str>, name: &str, tag: std::ops::Range<usize>) -> Diagnostic {
    Diagnostic::error(format!("snapshot `{name}` has no {{% endsnapshot %}}"))
        .at(Loc::new(path, tag))
}

fn no_snapshot_block(path: &Arc<str>) -> Diagnostic {
    Diagnostic::error("a file under snapshots/ holds no {% snapshot name %} block")
        .at(Loc::new(path, 0..0))
        .help("wrap the query: {% snapshot customers_snapshot %} select ... {% endsnapshot %}")
}

/// The node of one `{% snapshot name %}` block whose opening tag spans `tag` and whose body
/// ends at `close`.
fn snapshot_block_node(
    settings: &Settings,
    r: &Read,
    name: String,
    tag: std::ops::Range<usize>,
    close: usize,
) -> Node {
    let project = settings.name.as_str();
    let blanked = blank(&r.text, |i| (tag.end..close).contains(&i));
    let mut parts = r.found.folders.clone();
    parts.push(name.clone());
    let mut n = Node::new(
        NodeKind::Snapshot,
        name.clone(),
        format!("snapshot.{project}.{name}"),
        r.found.path.clone(),
    );
    n.config = settings.snapshots.resolve(project, &parts);
    n.fqn = std::iter::once(project.to_string()).chain(parts).collect();
    n.raw = Some(Arc::from(blanked));
    n.at = Some(Loc::new(&r.found.path, tag));
    n
}

/// The Jinja of a snapshot file outside its blocks renders to nothing, but broken Jinja there
/// is still a mistake: it is parsed (blocks blanked, so lines stay the file's) and a syntax
/// error reported where it is.
fn check_outside_blocks(
    path: &Arc<str>,
    text: &str,
    blocks: &[std::ops::Range<usize>],
) -> Option<Diagnostic> {
    let outside = blank(text, |i| !blocks.iter().any(|b| b.contains(&i)));
    if !outside.contains(['{', '%', '#']) {
        return None;
    }
    if let Err(d) = super::jinja::check_length(path, &outside) {
        return Some(d);
    }
    let env = minijinja::Environment::new();
    let e = env.template_from_str(&outside).err()?;
    Some(outside_syntax_error(path, text, &e))
}

fn outside_syntax_error(path: &Arc<str>, text: &str, e: &minijinja::Error) -> Diagnostic {
    let span = e
        .range()
        .or_else(|| e.line().map(|l| crate::diagnostics::line_span(text, l)))
        .unwrap_or(0..0);
    Diagnostic::error(format!(
        "Jinja syntax error outside the snapshot blocks: {}",
        e.detail().unwrap_or("invalid syntax")
    ))
    .at(Loc::new(path, span))
}

/// `text` with every character at a byte offset `keep` refuses turned into as many spaces as
/// it has bytes (line breaks stay), so offsets and lines into it are the file's.
fn blank(text: &str, keep: impl Fn(usize) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        match c {
            '\n' => out.push('\n'),
            _ if keep(i) => out.push(c),
            _ => (0..c.len_utf8()).for_each(|_| out.push(' ')),
        }
    }
    out
}

/// The next `{% tag word %}` at or after `from`: where it starts, the word, where it ends.
fn next_tag(text: &str, from: usize, tag: &str) -> Option<(usize, String, usize)> {
    let mut at = from;
    while let Some(found) = text.get(at..)?.find("{%") {
        let start = at + found;
        // The closing `%}` after the opening one: `{%}` opens a tag and does not close it.
        let end = start + 2 + text[start + 2..].find("%}")? + 2;
        let inner = text[start + 2..end - 2].trim_matches(['-', '+', ' ', '\t', '\n', '\r']);
        let mut words = inner.split_whitespace();
        if words.next() == Some(tag) {
            return Some((start, words.next().unwrap_or("").to_string(), end));
        }
        at = end;
    }
    None
}

/// Snapshots declared in YAML (`relation: source('crm', 'customers')`): the query is every
/// column of that relation.
fn yaml_snapshots(
    settings: &Settings,
    declared: Vec<ResourceProps>,
    diags: &mut Diagnostics,
) -> Vec<Node> {
    let mut out = Vec::new();
    for mut p in declared {
        let Some((relation, at)) = p.relation.take() else {
            continue;
        };
        if parse_relation_arg(&relation, &at).is_none() {
            diags.push(
                Diagnostic::error(format!(
                    "snapshot `{}`: `relation: {relation}` is not ref('...') or source('...', '...')",
                    p.name
                ))
                .at(at),
            );
            continue;
        }
        out.push(yaml_snapshot_node(settings, p, &relation));
    }
    out
}

/// The node of a snapshot declared in YAML whose query selects all of `relation`.
fn yaml_snapshot_node(settings: &Settings, p: ResourceProps, relation: &str) -> Node {
    let project = settings.name.as_str();
    let mut n = Node::new(
        NodeKind::Snapshot,
        p.name.clone(),
        format!("snapshot.{project}.{}", p.name),
        p.at.file.clone(),
    );
    n.config = settings
        .snapshots
        .resolve(project, std::slice::from_ref(&p.name));
    n.config.overlay(&p.config);
    n.fqn = vec![project.to_string(), p.name.clone()];
    n.raw = Some(Arc::from(format!(
        "{{{{ __xform_select_all({relation}) }}}}\n"
    )));
    n.description = p.description;
    n.columns = p.columns;
    n.model_tests = p.tests;
    n.at = Some(p.at);
    n
}

fn check_duplicate_names(nodes: &[Node], diags: &mut Diagnostics) {
    let mut seen: HashMap<(bool, &str), &Node> = HashMap::new();
    for n in nodes {
        // Models and seeds share the ref() namespace; singular tests have their own.
        let key = (n.kind == NodeKind::Test, n.name.as_str());
        if let Some(first) = seen.insert(key, n) {
            diags.push(
                Diagnostic::error(format!("two {}s are named `{}`", n.kind.name(), n.name))
                    .at(Loc::new(&n.path, 0..0))
                    .related(Loc::new(&first.path, 0..0), "the other one is here")
                    .help("names come from file names and must be unique in a project: rename one file"),
            );
        }
    }
}

/// Each property entry's description, config, columns and tests onto the node of `kind` it
/// names; an entry for no such node is a warning, a second entry for one an error.
fn attach_props(
    nodes: &mut [Node],
    entries: &[ResourceProps],
    kind: NodeKind,
    diags: &mut Diagnostics,
) {
    let index = index_by_name(nodes, kind);
    let mut described: HashMap<String, Loc> = HashMap::new();
    for p in entries {
        let Some(&i) = index.get(&p.name) else {
            diags.push(no_such_node(kind, p, index.keys().map(String::as_str)));
            continue;
        };
        if let Some(first) = described.insert(p.name.clone(), p.at.clone()) {
            diags.push(
                Diagnostic::error(format!("{} `{}` is described twice", kind.name(), p.name))
                    .at(p.at.clone())
                    .related(first, "first described here"),
            );
            continue;
        }
        describe(&mut nodes[i], p);
    }
}

/// Where each node of `kind` is in `nodes`, by name.
fn index_by_name(nodes: &[Node], kind: NodeKind) -> HashMap<String, usize> {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.kind == kind)
        .map(|(i, n)| (n.name.clone(), i))
        .collect()
}

/// The warning for properties of a node that does not exist.
fn no_such_node<'a>(
    kind: NodeKind,
    p: &ResourceProps,
    names: impl Iterator<Item = &'a str>,
) -> Diagnostic {
    Diagnostic::warning(format!(
        "properties for {} `{}`, but there is no such {}",
        kind.name(),
        p.name,
        kind.name()
    ))
    .at(p.at.clone())
    .help_opt(did_you_mean(&p.name, names))
}

fn describe(n: &mut Node, p: &ResourceProps) {
    n.description = p.description.clone();
    n.config.overlay(&p.config);
    n.columns = p.columns.clone();
    n.at = Some(p.at.clone());
    n.model_tests = p.tests.clone();
}

fn add_sources(project: &str, nodes: &mut Vec<Node>, props: &Props, diags: &mut Diagnostics) {
    let mut seen: HashMap<String, Loc> = HashMap::new();
    for t in &props.sources {
        let name = format!("{}.{}", t.source, t.name);
        if let Some(first) = seen.insert(name.clone(), t.at.clone()) {
            diags.push(
                Diagnostic::error(format!("source table `{name}` is declared twice"))
                    .at(t.at.clone())
                    .related(first, "first declared here"),
            );
            continue;
        }
        nodes.push(source_node(project, name, t));
    }
    attach_source_tests(nodes, props);
}

fn source_node(project: &str, name: String, t: &SourceTable) -> Node {
    let mut n = Node::new(
        NodeKind::Source,
        name.clone(),
        format!("source.{project}.{name}"),
        t.at.file.clone(),
    );
    n.fqn = vec![project.to_string(), t.source.clone(), t.name.clone()];
    n.description = t.description.clone();
    n.config = t.config.clone();
    n.columns = t.columns.clone();
    n.at = Some(t.at.clone());
    n.source_relation = Some((t.schema.clone(), t.identifier.clone()));
    n
}

/// Source tests are attached by add_generic_tests through the columns/tests set here.
fn attach_source_tests(nodes: &mut [Node], props: &Props) {
    for t in &props.sources {
        let target = format!("{}.{}", t.source, t.name);
        if let Some(n) = nodes
            .iter_mut()
            .find(|n| n.kind == NodeKind::Source && n.name == target)
        {
            n.columns = t.columns.clone();
            n.model_tests = t.tests.clone();
        }
    }
}

/// One test node per data test declared on a node (model-level) or on one of its columns.
/// `project` is its name, whether test names follow dbt exactly, and the installed packages.
fn add_generic_tests(
    project: (&str, bool, &[String]),
    folder: &FolderConfig,
    nodes: &mut Vec<Node>,
) {
    let tests: Vec<Node> = nodes
        .par_iter_mut()
        .flat_map_iter(|n| {
            let decls = take_test_decls(n);
            let parent: &Node = n;
            decls
                .into_iter()
                .map(|(column, decl)| test_node(project, folder, parent, column, &decl))
                .collect::<Vec<_>>()
        })
        .collect();
    nodes.reserve_exact(tests.len());
    nodes.extend(tests);
}

/// The data tests declared on `n` and on its columns (with the column's name), taken out.
fn take_test_decls(n: &mut Node) -> Vec<(Option<String>, TestDecl)> {
    let model_level = std::mem::take(&mut n.model_tests)
        .into_iter()
        .map(|d| (None, d));
    let columns = n.columns.iter_mut().flat_map(take_column_tests);
    model_level.chain(columns).collect()
}

/// A column's data tests, taken out, each with the column's name.
fn take_column_tests(c: &mut Column) -> impl Iterator<Item = (Option<String>, TestDecl)> {
    let name = c.name.clone();
    std::mem::take(&mut c.tests)
        .into_iter()
        .map(move |d| (Some(name.clone()), d))
}

/// A generic test's node. `package.test` runs the installed package's test (dbt_utils' common
/// ones are built in, for a project without the package: `dbt_utils.expression_is_true`).
fn test_node(
    (project, dbt_names, packages): (&str, bool, &[String]),
    folder: &FolderConfig,
    parent: &Node,
    column: Option<String>,
    decl: &TestDecl,
) -> Node {
    // dbt_utils' common tests are built in: its namespace is dropped when it is not installed.
    let (namespace, test_name) = match decl.test_name.split_once('.') {
        Some(("dbt_utils", name)) if !packages.iter().any(|p| p == "dbt_utils") => (None, name),
        Some((ns, name)) => (Some(ns.to_string()), name),
        None => (None, decl.test_name.as_str()),
    };
    let test_name = test_name.to_string();
    let name = match (decl.config.str("name"), dbt_names) {
        (Some(n), _) => n.to_string(),
        (None, true) => dbt_test_name(&decl.test_name, parent, column.as_deref(), &decl.args),
        (None, false) => test_node_name(&test_name, parent, column.as_deref(), &decl.args),
    };
    let mut n = declared_test_node(project, folder, name, decl);
    n.static_deps = test_deps(parent, decl);
    n.raw = Some(Arc::from(generic_test_call(
        (namespace.as_deref(), &test_name),
        &n.static_deps[0],
        column.as_deref(),
        &decl.args,
        n.config.str("where"),
        &decl.at,
    )));
    n.test = Some(TestSpec {
        test_name,
        namespace,
        column_name: column,
        kwargs: decl.args.clone(),
    });
    n
}

/// A test node named `name`, configured by the tests folder and then by its declaration.
fn declared_test_node(project: &str, folder: &FolderConfig, name: String, decl: &TestDecl) -> Node {
    let mut n = Node::new(
        NodeKind::Test,
        name.clone(),
        format!("test.{project}.{name}"),
        decl.at.file.clone(),
    );
    n.fqn = vec![project.to_string(), name];
    n.config = folder.resolve(project, &[]);
    n.config.overlay(&decl.config);
    n.at = Some(decl.at.clone());
    n
}

/// What a generic test depends on: the tested node first, then the relation its `to:`
/// argument names, if any.
fn test_deps(parent: &Node, decl: &TestDecl) -> Vec<DepRef> {
    let mut deps = vec![match parent.kind {
        NodeKind::Source => {
            let (src, tbl) = parent.name.split_once('.').unwrap_or((&parent.name, ""));
            DepRef::Source(src.to_string(), tbl.to_string(), decl.at.clone())
        }
        _ => DepRef::Ref(parent.name.clone(), decl.at.clone()),
    }];
    // `to: ref('x')`, `compare_model: ref('y')`: any argument naming a relation.
    for v in decl.args.values() {
        if let Json::String(s) = v
            && let Some(dep) = parse_relation_arg(s, &decl.at)
        {
            deps.push(dep);
        }
    }
    deps
}

/// The Jinja that renders a generic test: a call of its `test_<name>` macro with `model` (the
/// tested relation, or dbt's `dbt_subquery` when the test has a `where`), `column_name` and the
/// declared arguments as literals (`to: ref('x')` and any other relation as the relation).
fn generic_test_call(
    (namespace, test): (Option<&str>, &str),
    model: &DepRef,
    column: Option<&str>,
    args: &BTreeMap<String, Json>,
    filter: Option<&str>,
    at: &Loc,
) -> String {
    let mut model = relation_call(model);
    if let Some(cond) = filter {
        model = format!("__xform_filtered({model}, {})", Json::from(cond));
    }
    let prefix = namespace.map_or(String::new(), |ns| format!("{ns}."));
    let mut call = format!("{{{{ {prefix}test_{test}(model={model}");
    if let Some(c) = column {
        call.push_str(&format!(", column_name={}", Json::from(c)));
    }
    for (k, v) in args {
        call.push_str(&format!(", {k}={}", test_arg(v, at)));
    }
    call.push_str(") }}");
    call
}

/// The Jinja call that names a relation: `ref("x")` or `source("a", "b")`.
fn relation_call(dep: &DepRef) -> String {
    match dep {
        DepRef::Ref(name, _) => format!("ref({})", Json::from(name.as_str())),
        DepRef::Source(s, t, _) => {
            format!(
                "source({}, {})",
                Json::from(s.as_str()),
                Json::from(t.as_str())
            )
        }
    }
}

/// A test's argument as Jinja: a literal, but `ref('x')` or `source(...)` as the relation, a
/// text with `{{ ... }}` in it rendered (as dbt renders a test's arguments), and a list as one
/// the test may change in place (`{% do cols.append(c) %}`, as dbt's tests do).
fn test_arg(v: &Json, at: &Loc) -> String {
    match v {
        Json::String(s) if s.contains("{{") => rendered_text(s),
        Json::String(s) => {
            parse_relation_arg(s, at).map_or_else(|| jinja_literal(v), |d| relation_call(&d))
        }
        Json::Array(items) if templated(v) => {
            let items: Vec<String> = items.iter().map(|i| test_arg(i, at)).collect();
            format!("_l([{}])", items.join(", "))
        }
        Json::Array(_) => format!("_l({})", jinja_literal(v)),
        _ => jinja_literal(v),
    }
}

/// Whether a list holds text with `{{ }}` in it, at any depth.
fn templated(v: &Json) -> bool {
    match v {
        Json::String(s) => s.contains("{{"),
        Json::Array(items) => items.iter().any(templated),
        _ => false,
    }
}

/// `a = {{ f(x) }}` as the Jinja expression `("a = " ~ (f(x)))`: the text with each `{{ }}`
/// evaluated where the test renders; a text that is one `{{ f(x) }}` is its value as it is
/// (a list stays a list), as dbt renders a test's arguments natively.
fn rendered_text(text: &str) -> String {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some((before, after)) = rest.split_once("{{") {
        let Some((expr, tail)) = after.split_once("}}") else {
            break;
        };
        // `{{-` and `-}}` trim whitespace; the `-` is not the expression's.
        let expr = expr.strip_prefix('-').unwrap_or(expr);
        let expr = expr.strip_suffix('-').unwrap_or(expr);
        if !before.is_empty() {
            parts.push(Json::from(before).to_string());
        }
        parts.push(format!("({})", expr.trim()));
        rest = tail;
    }
    if !rest.is_empty() {
        parts.push(Json::from(rest).to_string());
    }
    match parts.len() {
        1 => parts.remove(0),
        _ => format!("({})", parts.join(" ~ ")),
    }
}

/// A YAML value as a Jinja literal (JSON's syntax but `none` for null).
fn jinja_literal(v: &Json) -> String {
    match v {
        Json::Null => "none".into(),
        Json::Array(items) => {
            let parts: Vec<String> = items.iter().map(jinja_literal).collect();
            format!("[{}]", parts.join(", "))
        }
        Json::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", Json::from(k.as_str()), jinja_literal(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// dbt-style names: `unique_orders_order_id`, `accepted_values_orders_status__a__b`.
fn test_node_name(
    test: &str,
    parent: &Node,
    column: Option<&str>,
    args: &BTreeMap<String, Json>,
) -> String {
    let prefix = if parent.kind == NodeKind::Source {
        "source_"
    } else {
        ""
    };
    let mut name = format!("{prefix}{test}_{}", parent.name.replace('.', "_"));
    if let Some(c) = column {
        name.push('_');
        name.push_str(c);
    }
    for v in args.values() {
        name.push_str("__");
        name.push_str(&arg_name_part(v));
    }
    shorten_name(sanitize_name(&name))
}

/// A test's name exactly as dbt gives it: `{test}_{parent}_{args}`, the arguments (the
/// column's name among them) in the order of their names, list and mapping values flattened,
/// each with runs of characters other than ASCII letters, digits and `_` made one `_`;
/// `pkg.test` is `pkg_test`, a source's tests begin with `source_`.
fn dbt_test_name(
    test: &str,
    parent: &Node,
    column: Option<&str>,
    args: &BTreeMap<String, Json>,
) -> String {
    let mut all: BTreeMap<&str, Json> = args.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    if let Some(c) = column {
        all.insert("column_name", Json::String(c.to_string()));
    }
    let flat = all.values().flat_map(|v| match v {
        Json::Array(items) => items.clone(),
        Json::Object(map) => map.values().cloned().collect(),
        one => vec![one.clone()],
    });
    let parts: Vec<String> = flat.map(|v| dbt_clean(&python_str(&v))).collect();
    // dbt: `source_` before the test's name, its package before both.
    let source = if parent.kind == NodeKind::Source {
        "source_"
    } else {
        ""
    };
    let test = match test.split_once('.') {
        Some((package, name)) => format!("{package}_{source}{name}"),
        None => format!("{source}{test}"),
    };
    let target = parent.name.replace('.', "_");
    format!("{test}_{target}_{}", parts.join("__"))
}

/// A value as Python's `str()` writes it (how dbt sees YAML values).
fn python_str(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Null => "None".into(),
        other => other.to_string(),
    }
}

/// dbt's `re.sub("[^0-9a-zA-Z_]+", "_", text)`.
fn dbt_clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for c in text.chars() {
        let kept = c.is_ascii_alphanumeric() || c == '_';
        if kept {
            out.push(c);
        } else if !in_run {
            out.push('_');
        }
        in_run = !kept;
    }
    out
}

/// How an argument's value shows in a test's name: list items joined by `__`.
fn arg_name_part(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Array(items) => joined_items(items),
        other => other.to_string(),
    }
}

/// List items joined by `__`, strings without their quotes.
fn joined_items(items: &[Json]) -> String {
    items
        .iter()
        .map(|i| i.as_str().map_or(i.to_string(), str::to_string))
        .collect::<Vec<_>>()
        .join("__")
}

/// `name` with every character but letters, digits and `_` turned into `_`.
fn sanitize_name(name: &str) -> String {
    name.chars().map(name_char).collect()
}

fn name_char(c: char) -> char {
    if c.is_alphanumeric() || c == '_' {
        c
    } else {
        '_'
    }
}

/// A name over 80 characters cut to 60 and a hash of the whole.
fn shorten_name(clean: String) -> String {
    if clean.chars().count() <= 80 {
        return clean;
    }
    let hash = crate::checksum(&clean);
    let head: String = clean.chars().take(60).collect();
    format!("{head}_{}", &hash[..12])
}

/// `ref('customers')`, `ref("customers")` or `source('raw', 'orders')` written in YAML.
pub(crate) fn parse_relation_arg(text: &str, at: &Loc) -> Option<DepRef> {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix("ref(").and_then(|r| r.strip_suffix(')')) {
        let a = quoted_args(inner);
        return (a.len() == 1 && !a[0].is_empty()).then(|| DepRef::Ref(a[0].clone(), at.clone()));
    }
    if let Some(inner) = t.strip_prefix("source(").and_then(|r| r.strip_suffix(')')) {
        let a = quoted_args(inner);
        return (a.len() == 2).then(|| DepRef::Source(a[0].clone(), a[1].clone(), at.clone()));
    }
    None
}

/// The comma-separated arguments of a call, trimmed of spaces and quotes.
fn quoted_args(inner: &str) -> Vec<String> {
    inner
        .split(',')
        .map(|a| a.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .collect()
}

fn add_unit_tests(project: &str, nodes: &mut Vec<Node>, units: Vec<UnitTestProps>) {
    for u in units {
        let id = format!("unit_test.{project}.{}.{}", u.model, u.name);
        let mut n = Node::new(NodeKind::UnitTest, u.name.clone(), id, u.at.file.clone());
        n.fqn = vec![project.to_string(), u.model.clone(), u.name.clone()];
        n.description = u.description.clone();
        n.config = u.config.clone();
        n.at = Some(u.at.clone());
        n.static_deps
            .push(DepRef::Ref(u.model.clone(), u.model_at.clone()));
        n.unit = Some(Box::new(u));
        nodes.push(n);
    }
}

/// A `models: analytics: ...` path in project.yml that matches no file is probably a typo.
fn warn_unused_config_paths(
    settings: &Settings,
    used: &[(FileKind, Vec<String>)],
    diags: &mut Diagnostics,
) {
    let sections = [
        (&settings.models, FileKind::Model, "models"),
        (&settings.seeds, FileKind::Seed, "seeds"),
    ];
    for (folder, kind, section) in sections {
        for (path, loc) in folder.paths() {
            let project_level = path.len() == 1 && path[0] == settings.name;
            // A package's level is the package's (its files are not this project's).
            let package = path
                .first()
                .is_some_and(|p| settings.package_names.contains(p));
            let matches = |p: &[String]| {
                p.starts_with(&path)
                    || (path.first() == Some(&settings.name) && p.starts_with(&path[1..]))
            };
            if project_level || package || used.iter().any(|(k, p)| *k == kind && matches(p)) {
                continue;
            }
            diags.push(unused_path_warning(section, &path, loc));
        }
    }
}

fn unused_path_warning(section: &str, path: &[String], loc: Loc) -> Diagnostic {
    Diagnostic::warning(format!(
        "`{section}: {}` in {} matches no file",
        path.join(": "),
        loc.file
    ))
    .at(loc)
    .help(format!(
        "config paths name folders under {section}/ (or file names without .sql)"
    ))
}
