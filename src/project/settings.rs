//! `project.yml`: the project's name, targets, paths, vars and folder configs.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value as Json;

use super::config::{Config, FolderConfig, is_known_key, known_keys, normalize_key};
use super::yaml::{Node, Src, is_map, to_json};
use crate::diagnostics::{Diagnostic, Diagnostics, Loc, did_you_mean};
use crate::sql::{Dialect, Kind};

const TOP_KEYS: &[&str] = &[
    "name",
    "version",
    "config_version",
    "profile",
    "default_target",
    "targets",
    "paths",
    "vars",
    "models",
    "seeds",
    "tests",
    "data_tests",
    "snapshots",
    "sources",
    "sql_check",
    "on_run_start",
    "on_run_end",
    "schema_grants",
    "naming",
];

/// What `schema_grants` may give on a schema: `usage` (and `create`) on the schema itself;
/// the others on every table and view in it, now and created later.
const SCHEMA_PRIVILEGES: &[&str] = &[
    "usage",
    "create",
    "select",
    "insert",
    "update",
    "delete",
    "references",
    "trigger",
    "all",
];

/// A schema's declared privileges (`schema_grants: {analytics: {usage: [...], select:
/// [...]}}`), the schema named as configs name it (before the target's prefix).
#[derive(Clone, Debug)]
pub(crate) struct SchemaGrant {
    pub(crate) schema: String,
    pub(crate) grants: Vec<(String, Vec<String>)>,
    pub(crate) at: Loc,
}

/// Folders of each kind of file, relative to the project root.
#[derive(Clone, Debug)]
pub(crate) struct Paths {
    pub(crate) models: Vec<String>,
    pub(crate) seeds: Vec<String>,
    pub(crate) macros: Vec<String>,
    pub(crate) tests: Vec<String>,
    pub(crate) snapshots: Vec<String>,
}

impl Default for Paths {
    fn default() -> Paths {
        let one = |s: &str| vec![s.to_string()];
        Paths {
            models: one("models"),
            seeds: one("seeds"),
            macros: one("macros"),
            tests: one("tests"),
            snapshots: one("snapshots"),
        }
    }
}

/// A target as written: its fields (strings may still hold `{{ env_var(...) }}`).
#[derive(Clone, Debug)]
pub(crate) struct TargetDecl {
    pub(crate) loc: Loc,
    pub(crate) fields: BTreeMap<String, (Json, Loc)>,
}

/// Which tool's project this is: xform's own (`project.yml`) or dbt's (`dbt_project.yml`),
/// named as dbt names relations (`<target schema>_<custom schema>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Style {
    #[default]
    Xform,
    Dbt,
}

#[derive(Debug, Default)]
pub(crate) struct Settings {
    pub(crate) style: Style,
    pub(crate) name: String,
    /// dbt: the profile in profiles.yml whose outputs are the targets.
    pub(crate) profile: Option<(String, Loc)>,
    /// dbt: where `dbt deps` installs packages (`dbt_packages`).
    pub(crate) packages_path: String,
    /// dbt: `dispatch:` — per macro namespace, the packages searched in order.
    pub(crate) dispatch: Vec<(String, Vec<String>)>,
    /// dbt: the installed packages' names (their levels in `models:` are theirs).
    pub(crate) package_names: Vec<String>,
    pub(crate) default_target: Option<(String, Loc)>,
    pub(crate) targets: BTreeMap<String, TargetDecl>,
    pub(crate) paths: Paths,
    pub(crate) vars: serde_json::Map<String, Json>,
    pub(crate) models: FolderConfig,
    pub(crate) seeds: FolderConfig,
    pub(crate) tests: FolderConfig,
    pub(crate) snapshots: FolderConfig,
    /// Where `project.yml` declares the project (for diagnostics about the whole file).
    pub(crate) loc: Option<Loc>,
    /// Statements run before and after every run that builds (`on_run_start`, `on_run_end`),
    /// each with its place.
    pub(crate) on_run_start: Vec<(String, Loc)>,
    pub(crate) on_run_end: Vec<(String, Loc)>,
    pub(crate) schema_grants: Vec<SchemaGrant>,
    /// `naming:`: the standard `xform lint` checks names against.
    pub(crate) naming: Option<super::naming::Naming>,
}

pub(crate) fn parse(file: &Arc<str>, text: &str, diags: &mut Diagnostics) -> Settings {
    read(file, text, (Settings::default(), TOP_KEYS, set), diags)
}

/// How one top-level key of a project file is read into the settings.
pub(super) type SetKey = fn(&mut Settings, &Src, (&str, &Node, &Node), &mut Diagnostics);

/// Reads a project file (project.yml or dbt_project.yml, named by `file`) on top of `s`: each
/// of its `keys` with `set`; a file that is empty, not YAML or without a `name` is an error.
pub(super) fn read(
    file: &Arc<str>,
    text: &str,
    (mut s, keys, set): (Settings, &[&str], SetKey),
    diags: &mut Diagnostics,
) -> Settings {
    let src = Src::new(file, text);
    let Some(root) = root(&src, file, diags) else {
        return s;
    };
    s.loc = Some(src.loc(&root));
    for (key, knode, v) in src.fields(&root, file, keys, diags) {
        set(&mut s, &src, (key, knode, v), diags);
    }
    if s.name.is_empty() {
        diags.push(
            Diagnostic::error(format!("{file} has no `name`"))
                .at_opt(s.loc.clone())
                .help("add `name: my_project` at the top"),
        );
    }
    s
}

/// The document of a project file; `None` when it is empty or not YAML.
fn root<'t>(src: &Src<'t>, file: &Arc<str>, diags: &mut Diagnostics) -> Option<Node<'t>> {
    match src.parse() {
        Ok(Some(root)) => Some(root),
        Ok(None) => {
            diags.push(Diagnostic::error(format!("{file} is empty")).at(Loc::new(file, 0..0)).help(
                "a project needs at least `name:` and a target, e.g. run `xform init` for an example",
            ));
            None
        }
        Err(d) => {
            diags.push(d);
            None
        }
    }
}

/// Reads one top-level key of project.yml into `s`.
fn set(
    s: &mut Settings,
    src: &Src,
    (key, knode, v): (&str, &Node, &Node),
    diags: &mut Diagnostics,
) {
    match key {
        "name" => s.name = src.text(v, "`name`", diags).unwrap_or_default(),
        "default_target" => {
            s.default_target = src
                .text(v, "`default_target`", diags)
                .map(|t| (t, src.loc(v)))
        }
        "targets" => s.targets = targets(src, v, diags),
        "paths" => s.paths = paths(src, v, diags),
        "vars" => s.vars = vars(src, v, diags),
        "models" => s.models = folder_config(src, v, "models", diags),
        "seeds" => s.seeds = folder_config(src, v, "seeds", diags),
        "tests" | "data_tests" => s.tests = folder_config(src, v, key, diags),
        "snapshots" => s.snapshots = folder_config(src, v, key, diags),
        "sql_check" => {
            let value = src
                .text(v, "`sql_check`", diags)
                .map_or(Json::Null, Json::String);
            s.models.config.set("sql_check", value, Some(src.loc(v)));
        }
        "on_run_start" | "on_run_end" => {
            let hooks = src.strings(v, &format!("`{key}`"), diags);
            let hooks = hooks.into_iter().map(|h| (h, src.loc(v))).collect();
            match key {
                "on_run_start" => s.on_run_start = hooks,
                _ => s.on_run_end = hooks,
            }
        }
        "schema_grants" => {
            let entries = src.map(v, "`schema_grants`", diags).into_iter();
            let entries = entries.map(|(k, _, pv)| (k.to_string(), to_json(pv), src.loc(pv)));
            s.schema_grants = schema_grants(entries.collect(), diags);
        }
        "naming" => s.naming = Some(super::naming::parse(src, v, diags)),
        "sources" => diags.push(
            Diagnostic::warning(format!(
                "`{key}` in project.yml is not used yet by this xform"
            ))
            .at(src.loc(knode)),
        ),
        _ => {}
    }
}

pub(super) fn targets(
    src: &Src,
    node: &Node,
    diags: &mut Diagnostics,
) -> BTreeMap<String, TargetDecl> {
    let mut out = BTreeMap::new();
    for (name, knode, v) in src.map(node, "`targets`", diags) {
        let fields = src
            .map(v, &format!("target `{name}`"), diags)
            .into_iter()
            .map(|(k, _, fv)| (k.to_string(), (to_json(fv), src.loc(fv))))
            .collect();
        out.insert(
            name.to_string(),
            TargetDecl {
                loc: src.loc(knode),
                fields,
            },
        );
    }
    out
}

/// `schema_grants` (of the project or of a target): each schema's privileges and grantees,
/// each where it is written; a privilege xform cannot give is an error there.
fn schema_grants(entries: Vec<(String, Json, Loc)>, diags: &mut Diagnostics) -> Vec<SchemaGrant> {
    let mut out = Vec::new();
    for (schema, privileges, at) in entries {
        if !privileges.is_object() {
            diags.push(
                Diagnostic::error(format!(
                    "`schema_grants.{schema}` must map privileges to grantees"
                ))
                .at(at.clone())
                .help("for example `analytics: { usage: ['group:analytics_users'], select: ['group:analytics_users'] }`"),
            );
        }
        let grants = super::config::grant_list(&privileges);
        for (p, _) in &grants {
            if !SCHEMA_PRIVILEGES.contains(&p.to_lowercase().as_str()) {
                diags.push(
                    Diagnostic::error(format!(
                        "`schema_grants.{schema}`: `{p}` is not a privilege xform can give on a schema"
                    ))
                    .at(at.clone())
                    .help(did_you_mean(p, SCHEMA_PRIVILEGES.iter().copied()).unwrap_or_else(
                        || format!("use: {}", SCHEMA_PRIVILEGES.join(", ")),
                    )),
                );
            }
        }
        out.push(SchemaGrant { schema, grants, at });
    }
    out
}

fn paths(src: &Src, node: &Node, diags: &mut Diagnostics) -> Paths {
    let mut p = Paths::default();
    let known = ["models", "seeds", "macros", "tests", "snapshots"];
    for (key, _, v) in src.fields(node, "`paths`", &known, diags) {
        let dirs = src.strings(v, &format!("`paths.{key}`"), diags);
        match key {
            "models" => p.models = dirs,
            "seeds" => p.seeds = dirs,
            "macros" => p.macros = dirs,
            "tests" => p.tests = dirs,
            "snapshots" => p.snapshots = dirs,
            _ => {}
        }
    }
    p
}

pub(crate) fn vars(
    src: &Src,
    node: &Node,
    diags: &mut Diagnostics,
) -> serde_json::Map<String, Json> {
    src.map(node, "`vars`", diags)
        .into_iter()
        .map(|(k, _, v)| (k.to_string(), to_json(v)))
        .collect()
}

/// A `models:`-style tree: `+key` (or a scalar under a plain key) is config, a mapping under a
/// plain key is a sub-folder or a resource name.
pub(super) fn folder_config(
    src: &Src,
    node: &Node,
    what: &str,
    diags: &mut Diagnostics,
) -> FolderConfig {
    let mut fc = FolderConfig::default();
    for (key, knode, v) in src.map(node, &format!("`{what}`"), diags) {
        if key.starts_with('+') || !is_map(v) {
            config_entry(src, &mut fc.config, key, knode, v, diags);
        } else {
            let child = folder_config(src, v, &format!("{what}.{key}"), diags);
            fc.children.insert(key.to_string(), (src.loc(knode), child));
        }
    }
    fc
}

/// Sets one config key, warning about keys xform does not know.
pub(crate) fn config_entry(
    src: &Src,
    config: &mut Config,
    key: &str,
    knode: &Node,
    value: &Node,
    diags: &mut Diagnostics,
) {
    let norm = normalize_key(key);
    if !is_known_key(&norm) {
        diags.push(
            Diagnostic::warning(format!(
                "unknown config `{key}` (kept, but xform does not use it)"
            ))
            .at(src.loc(knode))
            .help_opt(did_you_mean(&norm, known_keys())),
        );
    }
    config.set(&norm, to_json(value), Some(src.loc(value)));
}

/// The `config:` block of a property-file entry.
pub(crate) fn config_block(src: &Src, node: &Node, diags: &mut Diagnostics) -> Config {
    let mut config = Config::default();
    for (key, knode, v) in src.map(node, "`config`", diags) {
        config_entry(src, &mut config, key, knode, v, diags);
    }
    config
}

impl Settings {
    /// The resolved target: `-t NAME` or `default_target`, strings rendered by `render`.
    pub(crate) fn target(
        &self,
        requested: Option<&str>,
        render: &dyn Fn(&str) -> Result<String, String>,
        diags: &mut Diagnostics,
    ) -> Option<Target> {
        let name = match (requested, &self.default_target) {
            (Some(n), _) => n.to_string(),
            (None, Some((n, _))) => n.clone(),
            (None, None) if self.targets.len() == 1 => self.targets.keys().next()?.clone(),
            (None, None) => {
                diags.push(
                    Diagnostic::error("no target chosen: pass `-t NAME` or set `default_target`")
                        .at_opt(self.loc.clone()),
                );
                return None;
            }
        };
        let Some(decl) = self.targets.get(&name) else {
            let known = self.targets.keys().map(String::as_str);
            let listed = self.targets.keys().cloned().collect::<Vec<_>>().join(", ");
            let at = match requested {
                Some(_) => self.loc.clone(),
                None => self.default_target.as_ref().map(|(_, l)| l.clone()),
            };
            diags.push(
                Diagnostic::error(format!("unknown target `{name}`"))
                    .at_opt(at)
                    .help(match did_you_mean(&name, known) {
                        Some(h) => format!("{h} (targets in project.yml: {listed})"),
                        None => format!("targets in project.yml: {listed}"),
                    }),
            );
            return None;
        };
        Target::resolve(&name, decl, render, diags)
    }
}

/// The warehouse a run talks to, with every `{{ env_var() }}` already rendered.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Target {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: Kind,
    pub(crate) schema: String,
    pub(crate) schema_prefix: String,
    pub(crate) threads: usize,
    /// Reuse what has not changed since it was built (as `--reuse` on every run).
    pub(crate) reuse: bool,
    /// dbt's `target.database`: the database connected to (`dbname`), or a DuckDB file's name.
    pub(crate) database: Option<String>,
    /// Everything else (`path`, `host`, ...), for the adapter to read. A password is not shown
    /// to templates (`{{ target }}`) or written anywhere.
    #[serde(flatten, serialize_with = "without_password")]
    pub(crate) settings: BTreeMap<String, Json>,
    /// Where each of `settings` is written.
    #[serde(skip)]
    settings_at: BTreeMap<String, Loc>,
    /// The target's own `schema_grants`, in place of the project's.
    #[serde(skip)]
    pub(crate) schema_grants: Option<Vec<SchemaGrant>>,
}

fn without_password<S: serde::Serializer>(
    settings: &BTreeMap<String, Json>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let shown = settings.iter().filter(|(k, _)| k.as_str() != "password");
    let mut map = s.serialize_map(None)?;
    for (k, v) in shown {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

impl Target {
    fn resolve(
        name: &str,
        decl: &TargetDecl,
        render: &dyn Fn(&str) -> Result<String, String>,
        diags: &mut Diagnostics,
    ) -> Option<Target> {
        let mut settings = rendered_fields(decl, render, diags);
        let settings_at = decl
            .fields
            .iter()
            .map(|(k, (_, l))| (k.clone(), l.clone()))
            .collect();
        let kind = target_kind(name, decl, settings.remove("type"), diags)?;
        let schema = take_text(&mut settings, "schema")
            .unwrap_or_else(|| kind.dialect().default_schema().into());
        let schema_prefix = take_text(&mut settings, "schema_prefix").unwrap_or_default();
        let schema_grants = settings.remove("schema_grants").map(|v| {
            let at = decl.fields.get("schema_grants").map(|(_, l)| l.clone());
            let at = at.unwrap_or_else(|| decl.loc.clone());
            let entries = match v {
                Json::Object(map) => map.into_iter().map(|(k, p)| (k, p, at.clone())).collect(),
                other => vec![(String::new(), other, at)],
            };
            schema_grants(entries, diags)
        });
        let threads = match settings.remove("threads") {
            Some(Json::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => n.as_u64()? as usize,
            None => 4,
            Some(_) => {
                let at = decl.fields.get("threads").map(|(_, l)| l.clone());
                diags.push(
                    Diagnostic::error("`threads` must be a positive whole number").at_opt(at),
                );
                4
            }
        };
        let reuse = match settings.remove("reuse") {
            Some(Json::Bool(b)) => b,
            None => false,
            Some(other) => {
                let at = decl.fields.get("reuse").map(|(_, l)| l.clone());
                diags.push(
                    Diagnostic::error(format!("`reuse` must be true or false, found {other}"))
                        .at_opt(at),
                );
                false
            }
        };
        let database = match (settings.get("dbname"), settings.get("path")) {
            (Some(Json::String(db)), _) => Some(db.clone()),
            (None, Some(Json::String(path))) => {
                (std::path::Path::new(path).file_stem()).map(|s| s.to_string_lossy().into_owned())
            }
            _ => None,
        };
        Some(Target {
            name: name.to_string(),
            kind,
            schema,
            schema_prefix,
            threads,
            reuse,
            database,
            settings,
            settings_at,
            schema_grants,
        })
    }

    /// Where setting `key` is written.
    pub(crate) fn at(&self, key: &str) -> Option<Loc> {
        self.settings_at.get(key).cloned()
    }

    /// The SQL dialect of the target's warehouse.
    pub(crate) fn dialect(&self) -> &'static dyn Dialect {
        self.kind.dialect()
    }

    /// The warehouse's name of a schema as configs name it: behind the target's prefix, as
    /// the warehouse stores it.
    pub(crate) fn schema_name(&self, configured: &str) -> String {
        let name = format!("{}{configured}", self.schema_prefix);
        self.dialect().stored_name(&name)
    }
}

/// The target's fields with `{{ ... }}` strings rendered.
fn rendered_fields(
    decl: &TargetDecl,
    render: &dyn Fn(&str) -> Result<String, String>,
    diags: &mut Diagnostics,
) -> BTreeMap<String, Json> {
    let mut out = BTreeMap::new();
    for (key, (value, loc)) in &decl.fields {
        let value = match value {
            Json::String(s) if s.contains("{{") || s.contains("{%") => match render(s) {
                Ok(r) => Json::String(r),
                Err(e) => {
                    diags.push(Diagnostic::error(e).at(loc.clone()));
                    continue;
                }
            },
            other => other.clone(),
        };
        out.insert(key.clone(), value);
    }
    out
}

fn target_kind(
    name: &str,
    decl: &TargetDecl,
    value: Option<Json>,
    diags: &mut Diagnostics,
) -> Option<Kind> {
    let Some(Json::String(t)) = value else {
        diags.push(
            Diagnostic::error(format!("target `{name}` has no `type`"))
                .at(decl.loc.clone())
                .help("add `type: duckdb` (with `path: target/dev.duckdb`)"),
        );
        return None;
    };
    let kind = Kind::parse(&t);
    if kind.is_none() {
        let at = decl.fields.get("type").map(|(_, l)| l.clone());
        diags.push(
            Diagnostic::error(format!("target `{name}` has unknown type `{t}`"))
                .at_opt(at)
                .help(format!("supported types: {}", Kind::NAMES.join(", "))),
        );
    }
    kind
}

fn take_text(fields: &mut BTreeMap<String, Json>, key: &str) -> Option<String> {
    match fields.remove(key) {
        Some(Json::String(v)) => Some(v),
        Some(other) if !other.is_null() => Some(other.to_string()),
        _ => None,
    }
}
