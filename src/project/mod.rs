//! Loading a project from disk into plain data: settings, the chosen target, and one
//! [`Node`] per model, seed, source table, data test and unit test, each with its cascaded
//! config. This is the only module that reads project files. It renders nothing but settings
//! (`{{ env_var() }}`, `{{ var() }}`, `{{ target }}` in project files' values, as dbt does),
//! and never connects to a warehouse.

pub(crate) mod config;
mod dbt;
mod discover;
mod fixture;
pub(crate) mod jinja;
pub(crate) mod naming;
mod nodes;
mod packages;
pub(crate) mod properties;
pub(crate) mod settings;
mod test_config;
pub(crate) mod version;
pub(crate) mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

pub(crate) use config::Config;
pub(crate) use dbt::{DBT_PROJECT_FILE, DBT_VERSION, Package};
pub(crate) use discover::file_digest;
pub(crate) use fixture::{Table, fixture_table};
pub(crate) use nodes::{DepRef, External, Node, NodeKind, TestSpec, parse_relation_arg};
pub(crate) use packages::{
    LOCK_FILE, PackageSource, PackageSpec, package_lock, package_name, package_specs,
    package_specs_in, packages_path,
};
pub(crate) use properties::{Column, Exposure, Fixture, UnitTestProps};
pub(crate) use settings::{Style, Target};
pub(crate) use test_config::{Severity, TestConfig, Verdict, test_config};

use crate::diagnostics::{Diagnostic, Diagnostics, Files, Loc};

/// What the caller decides: the target, `--vars`, and the environment `env_var()` reads.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoadOptions {
    pub(crate) target: Option<String>,
    pub(crate) vars: Option<String>,
    pub(crate) env: BTreeMap<String, String>,
    /// dbt projects: where profiles.yml is (`--profiles-dir`) and which profile (`--profile`).
    pub(crate) profiles_dir: Option<PathBuf>,
    pub(crate) profile: Option<String>,
    /// When the run started and its id (dbt's `run_started_at`, `invocation_id`).
    pub(crate) invocation: Option<(jiff::Timestamp, String)>,
    /// `--store-failures`: every data test keeps its failing rows.
    pub(crate) store_failures: bool,
    /// dbt's `flags` (`flags.WHICH`, `flags.FULL_REFRESH`, ...) as templates see them.
    pub(crate) flags: serde_json::Map<String, Json>,
}

#[derive(Debug)]
pub(crate) struct Project {
    pub(crate) root: PathBuf,
    /// project.yml or dbt_project.yml.
    pub(crate) file: &'static str,
    pub(crate) style: Style,
    pub(crate) name: String,
    pub(crate) target: Target,
    pub(crate) vars: serde_json::Map<String, Json>,
    pub(crate) env: Arc<BTreeMap<String, String>>,
    pub(crate) nodes: Vec<Node>,
    /// `macros/**/*.sql` and `tests/generic/**/*.sql`: (path, text).
    pub(crate) macro_files: Vec<(Arc<str>, Arc<str>)>,
    /// project.yml's `on_run_start` and `on_run_end` statements (Jinja), with their places.
    pub(crate) on_run_start: Vec<(String, Loc)>,
    pub(crate) on_run_end: Vec<(String, Loc)>,
    /// The privileges each schema gives (the target's `schema_grants`, else the project's).
    pub(crate) schema_grants: Vec<settings::SchemaGrant>,
    /// dbt's `dispatch:` search orders per macro namespace.
    pub(crate) dispatch: Vec<(String, Vec<String>)>,
    /// dbt packages installed in `dbt_packages/`.
    pub(crate) packages: Vec<Package>,
    /// When the run started and its id, as templates see them.
    pub(crate) invocation: (jiff::Timestamp, String),
    /// dbt's `flags`.
    pub(crate) flags: serde_json::Map<String, Json>,
    /// `{% docs name %}` blocks of the project's .md files (`__overview__`: the docs site's
    /// first page).
    pub(crate) docs: BTreeMap<String, String>,
    /// Exposures declared in property files (descriptions rendered).
    pub(crate) exposures: Vec<Exposure>,
    /// Models, seeds and snapshots left out for `enabled: false` (said when a ref() names one).
    pub(crate) disabled: BTreeSet<String>,
    /// The naming standard (`naming:` with its glossary), if the project has one.
    pub(crate) naming: Option<naming::Naming>,
}

pub(crate) const PROJECT_FILE: &str = "project.yml";

/// Loads the project at `root`, recording every mistake in `diags` and every file read in
/// `files`. `None` only when it is too broken to compile at all (no project.yml, no usable
/// target); otherwise later stages run too, so one run reports as many mistakes as it can.
pub(crate) fn load(
    root: &Path,
    opts: &LoadOptions,
    files: &mut Files,
    diags: &mut Diagnostics,
) -> Option<Project> {
    load_into(root, opts, diags, files)
}

fn load_into(
    root: &Path,
    opts: &LoadOptions,
    diags: &mut Diagnostics,
    files: &mut Files,
) -> Option<Project> {
    let (file, text) = read_settings_file(root, diags)?;
    let settings_path: Arc<str> = Arc::from(file);
    files.insert(&settings_path, &text);
    let mut settings = match file {
        DBT_PROJECT_FILE => dbt::parse(&settings_path, &text, diags),
        _ => settings::parse(&settings_path, &text, diags),
    };
    if settings.style == Style::Dbt {
        let profile = (opts.profiles_dir.as_deref(), opts.profile.as_deref());
        dbt::profile_targets(root, profile, &mut settings, &opts.env, (files, diags));
    }
    let vars = merged_vars(&settings, opts, diags, files);
    let env = Arc::new(opts.env.clone());
    let no_docs = BTreeMap::new();
    let mut scope = SettingScope {
        env: &env,
        vars: &vars,
        target: None,
        docs: &no_docs,
    };
    let target = settings.target(opts.target.as_deref(), &|s| scope.render(s), diags);
    scope.target = target.as_ref();
    if target.is_some() {
        render_folder_configs(&mut settings, &|s| scope.render(s), diags);
    }

    let reads = read_project_files(root, &settings.paths, diags, files);
    if let Some(n) = settings.naming.as_mut() {
        naming::read_glossary(root, n, (files, diags));
    }
    let docs = dbt::docs_blocks(&reads);
    let mut packages = match settings.style {
        Style::Dbt => dbt::packages(root, &settings.packages_path, (files, diags)),
        Style::Xform => Vec::new(),
    };
    settings.package_names = packages.iter().map(|p| p.name.clone()).collect();
    // Property files are read even when the target is wrong, so one run reports both.
    let mut built = nodes::build(&settings, reads, diags);
    for package in &mut packages {
        built
            .nodes
            .extend(package_nodes(root, &settings, package, (files, diags)));
    }
    if opts.store_failures {
        let tests = built.nodes.iter_mut().filter(|n| n.kind == NodeKind::Test);
        tests.for_each(|n| n.config.set("store_failures", Json::Bool(true), None));
    }
    scope.docs = &docs;
    if scope.target.is_some() {
        let off = render_node_settings(&mut built.nodes, &|s| scope.render(s), diags);
        built.disabled.extend(off);
        for e in &mut built.exposures {
            if let Ok(text) = scope.render(&e.description) {
                e.description = text.trim().to_string();
            }
        }
    }
    let target = target?;
    let schema_grants = target
        .schema_grants
        .clone()
        .unwrap_or_else(|| settings.schema_grants.clone());
    Some(Project {
        root: root.to_path_buf(),
        file,
        style: settings.style,
        name: settings.name.clone(),
        target,
        vars,
        env,
        nodes: built.nodes,
        macro_files: built.macro_files,
        on_run_start: settings.on_run_start.clone(),
        on_run_end: settings.on_run_end.clone(),
        schema_grants,
        dispatch: settings.dispatch.clone(),
        packages,
        invocation: (opts.invocation.clone())
            .unwrap_or((jiff::Timestamp::UNIX_EPOCH, String::new())),
        flags: opts.flags.clone(),
        exposures: built.exposures,
        naming: settings.naming.clone(),
        docs,
        disabled: built.disabled,
    })
}

/// A package's models, seeds, snapshots and tests, configured by its dbt_project.yml with the
/// root project's `models: {package: ...}` (and the like) on top. Its nodes' warnings (config
/// paths the root project sets for itself, say) are the package's business; errors are said.
fn package_nodes(
    root: &Path,
    project: &settings::Settings,
    package: &mut Package,
    (files, diags): (&mut Files, &mut Diagnostics),
) -> Vec<Node> {
    let s = &mut package.settings;
    s.style = project.style;
    s.models.overlay_tree(&project.models);
    s.seeds.overlay_tree(&project.seeds);
    s.snapshots.overlay_tree(&project.snapshots);
    s.tests.overlay_tree(&project.tests);
    let mut own = Diagnostics::default();
    let reads = read_project_files(root, &s.paths, &mut own, files);
    let built = nodes::build(s, reads, &mut own);
    diags.extend(own.sorted().into_iter().filter(Diagnostic::is_error));
    built.nodes
}

/// Renders `{{ ... }}` in what property files set (a source's `schema: "{{ target.schema }}"`,
/// `enabled: "{{ target.name == 'prod' }}"`), as dbt does when it reads them; a node whose
/// rendered `enabled` is false is left out.
fn render_node_settings(
    nodes: &mut Vec<Node>,
    render: &dyn Fn(&str) -> Result<String, String>,
    diags: &mut Diagnostics,
) -> BTreeSet<String> {
    let templated = |s: &str| s.contains("{{") || s.contains("{%");
    for n in nodes.iter_mut() {
        n.config.render_strings(render, diags);
        let relation = n.source_relation.as_mut().map(|(s, i)| [s, i]);
        let columns = n.columns.iter_mut().map(|c| &mut c.description);
        let texts = std::iter::once(&mut n.description)
            .chain(columns)
            .chain(relation.into_iter().flatten());
        for text in texts.filter(|t| templated(t)) {
            match render(text) {
                Ok(out) => *text = out.trim().to_string(),
                Err(e) => diags.push(Diagnostic::error(e).at_opt(n.at.clone())),
            }
        }
    }
    nodes::leave_out_disabled(nodes)
}

/// Renders `{{ ... }}` in the folder configs of dbt_project.yml (`+enabled: "{{ var('x') }}"`),
/// as dbt does when it reads the file; hooks are rendered later, per node.
fn render_folder_configs(
    settings: &mut settings::Settings,
    render: &dyn Fn(&str) -> Result<String, String>,
    diags: &mut Diagnostics,
) {
    let trees = [
        &mut settings.models,
        &mut settings.seeds,
        &mut settings.tests,
        &mut settings.snapshots,
    ];
    for tree in trees {
        tree.render_strings(render, diags);
    }
}

/// The project file's name and text: project.yml, else dbt_project.yml; `None` (and an
/// error) when there is neither.
fn read_settings_file(root: &Path, diags: &mut Diagnostics) -> Option<(&'static str, Arc<str>)> {
    for file in [PROJECT_FILE, DBT_PROJECT_FILE] {
        if let Ok(bytes) = std::fs::read(root.join(file)) {
            let (text, not_utf8) = discover::decode(&Arc::from(file), bytes);
            diags.extend(not_utf8);
            return Some((file, text));
        }
    }
    diags.push(
        Diagnostic::error(format!("no {PROJECT_FILE} or {DBT_PROJECT_FILE} in {}", root.display()))
            .help("run xform inside a project, pass --project-dir DIR, or create one with `xform init DIR`"),
    );
    None
}

/// Every file under the configured folders, read and recorded in `files`.
fn read_project_files(
    root: &Path,
    paths: &settings::Paths,
    diags: &mut Diagnostics,
    files: &mut Files,
) -> Vec<discover::Read> {
    let (found, unnamed) = discover::discover(root, paths);
    diags.extend(unnamed);
    let (reads, read_diags) = discover::read_all(root, found);
    diags.extend(read_diags);
    for r in &reads {
        files.insert(&r.found.path, &r.text);
    }
    reads
}

/// project.yml's `vars`, overridden by `--vars '{key: value}'`.
fn merged_vars(
    settings: &settings::Settings,
    opts: &LoadOptions,
    diags: &mut Diagnostics,
    files: &mut Files,
) -> serde_json::Map<String, Json> {
    let mut vars = settings.vars.clone();
    if let Some(cli) = &opts.vars {
        vars.extend(cli_vars(cli, diags, files));
    }
    vars
}

/// The mapping given as `--vars`; empty when it is not one.
fn cli_vars(
    cli: &str,
    diags: &mut Diagnostics,
    files: &mut Files,
) -> serde_json::Map<String, Json> {
    let file: Arc<str> = Arc::from("--vars");
    let text: Arc<str> = Arc::from(cli);
    files.insert(&file, &text);
    let src = yaml::Src::new(&file, &text);
    match src.parse() {
        Ok(Some(node)) if yaml::is_map(&node) => return settings::vars(&src, &node, diags),
        Ok(None) => {}
        Ok(Some(_)) => diags.push(
            Diagnostic::error("--vars must be a YAML mapping")
                .at(Loc::new(&file, 0..text.len()))
                .help("e.g. --vars '{start_date: 2024-01-01}'"),
        ),
        Err(d) => diags.push(d),
    }
    serde_json::Map::new()
}

/// What Jinja in a project file's values sees: `env_var`, `var`, and once they are known
/// `target` and `doc('name')` (the project's `{% docs %}` blocks).
struct SettingScope<'a> {
    env: &'a BTreeMap<String, String>,
    vars: &'a serde_json::Map<String, Json>,
    target: Option<&'a Target>,
    docs: &'a BTreeMap<String, String>,
}

impl SettingScope<'_> {
    /// Renders a value such as `pr_{{ env_var('PR_NUMBER', 'local') }}_`.
    fn render(&self, text: &str) -> Result<String, String> {
        let mut jinja = minijinja::Environment::new();
        // A setting is one short string: a loop running this long is a mistake.
        jinja.set_fuel(Some(1_000_000));
        add_env_var(&mut jinja, self.env.clone());
        add_var(&mut jinja, self.vars.clone());
        // dbt's native-type filters: a setting is text until the reader types it.
        for filter in ["as_number", "as_bool", "as_native", "as_text"] {
            jinja.add_filter(filter, |v: minijinja::Value| v);
        }
        if let Some(t) = self.target {
            jinja.add_global("target", minijinja::Value::from(minijinja::value::Serde(t)));
        }
        let docs = self.docs.clone();
        jinja.add_function("doc", move |name: String| {
            docs.get(&name).cloned().ok_or_else(|| {
                let message = format!(
                    "doc('{name}'): no {{% docs {name} %}} block in the project's .md files"
                );
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message)
            })
        });
        if let Some((_, message)) = jinja::too_long(text) {
            return Err(message);
        }
        jinja
            .render_str(text, ())
            .map_err(|e| format!("cannot render `{text}`: {}", e.detail().unwrap_or("")))
    }
}

/// `env_var(name, default)`: an error when the variable is not set and there is no default.
fn add_env_var(jinja: &mut minijinja::Environment, env: BTreeMap<String, String>) {
    jinja.add_function("env_var", move |name: String, default: Option<String>| {
        env.get(&name)
            .cloned()
            .or(default)
            .ok_or_else(|| env_var_not_set(&name))
    });
}

fn env_var_not_set(name: &str) -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!("environment variable `{name}` is not set and has no default"),
    )
}

/// `var(name, default)`: an error when the var is not defined and there is no default.
fn add_var(jinja: &mut minijinja::Environment, vars: serde_json::Map<String, Json>) {
    jinja.add_function(
        "var",
        move |name: String, default: Option<minijinja::Value>| {
            vars.get(&name)
                .map(|v| minijinja::Value::from(minijinja::value::Serde(v)))
                .or(default)
                .ok_or_else(|| var_not_defined(&name))
        },
    );
}

fn var_not_defined(name: &str) -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!("var `{name}` is not defined"),
    )
}

/// The pseudo-file of `xform compile --inline`.
pub(crate) const INLINE_PATH: &str = "<inline>";

impl Project {
    /// Adds `--inline` SQL as a model, so it compiles exactly like one.
    pub(crate) fn add_inline(&mut self, text: &str, files: &mut Files) {
        let path: Arc<str> = Arc::from(INLINE_PATH);
        let raw: Arc<str> = Arc::from(text);
        files.insert(&path, &raw);
        let mut node = Node::ad_hoc("__inline__", &path, &raw);
        node.fqn = vec![self.name.clone(), node.name.clone()];
        self.nodes.push(node);
    }
}

/// An encoding by name; `cp949` and friends are the WHATWG `windows-949` (EUC-KR's superset).
pub(crate) fn encoding(label: &str) -> Option<&'static encoding_rs::Encoding> {
    let l = label.trim().to_ascii_lowercase();
    match l.as_str() {
        "cp949" | "ms949" | "uhc" | "euckr" => Some(encoding_rs::EUC_KR),
        "utf16" | "utf-16" => Some(encoding_rs::UTF_16LE),
        "utf8" => Some(encoding_rs::UTF_8),
        _ => encoding_rs::Encoding::for_label(l.as_bytes()),
    }
}

/// The column names of a seed's CSV header, read offline (its `encoding` and `delimiter`
/// honoured); None when the file cannot be read or has no header.
pub(crate) fn seed_header(root: &Path, n: &Node) -> Option<Vec<String>> {
    if n.config.get("header").and_then(Json::as_bool) == Some(false) {
        return None;
    }
    use std::io::Read;
    let label = n.config.str("encoding").unwrap_or("utf-8");
    let mut head = Vec::new();
    let file = std::fs::File::open(root.join(&*n.path)).ok()?;
    file.take(64 * 1024).read_to_end(&mut head).ok()?;
    let (text, _, _) = encoding(label)?.decode(&head);
    let delimiter = n.config.str("delimiter").unwrap_or(",");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(*delimiter.as_bytes().first()?)
        .from_reader(text.as_bytes());
    let header = reader.headers().ok()?;
    Some(
        header
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_string())
            .collect(),
    )
}

/// A text file in a declared encoding (a BOM, if any, wins), as UTF-8. A byte sequence that is
/// not valid in it fails with its 1-based line and a message.
pub(crate) fn read_encoded(
    path: &Path,
    encoding: &'static encoding_rs::Encoding,
) -> Result<String, (usize, String)> {
    let bytes = std::fs::read(path).map_err(|e| (0, format!("cannot read: {e}")))?;
    let mut decoder = encoding.new_decoder();
    let cap = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .unwrap_or(bytes.len() * 3);
    let mut out = String::with_capacity(cap);
    let (result, _) = decoder.decode_to_string_without_replacement(&bytes, &mut out, true);
    match result {
        encoding_rs::DecoderResult::InputEmpty => Ok(out),
        encoding_rs::DecoderResult::Malformed(..) => {
            let line = out.matches('\n').count() + 1;
            Err((
                line,
                format!("bytes that are not valid {}", decoder.encoding().name()),
            ))
        }
        encoding_rs::DecoderResult::OutputFull => Err((0, "decoding ran out of room".into())),
    }
}
