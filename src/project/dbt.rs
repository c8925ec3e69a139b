//! A dbt project as it is: `dbt_project.yml` read into the same [`Settings`] as project.yml,
//! and the targets from `profiles.yml` (its outputs are xform's targets). Keys dbt reads that
//! change nothing xform builds are accepted; one xform cannot honour is a warning at its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use super::settings::{Settings, Style, TargetDecl, folder_config, read, targets, vars};
use super::version::{Version, constraints};
use super::yaml::{Node, Src, to_json};
use crate::diagnostics::{Diagnostic, Diagnostics, Files, Loc};

pub(crate) const DBT_PROJECT_FILE: &str = "dbt_project.yml";
pub(crate) const PROFILES_FILE: &str = "profiles.yml";

/// The dbt version whose behaviour xform follows, for `require-dbt-version` and for the
/// package versions `xform deps` may install.
pub(crate) const DBT_VERSION: &str = "1.11.0";

const TOP_KEYS: &[&str] = &[
    "name",
    "version",
    "config-version",
    "profile",
    "model-paths",
    "seed-paths",
    "test-paths",
    "macro-paths",
    "snapshot-paths",
    "analysis-paths",
    "docs-paths",
    "asset-paths",
    "function-paths",
    "target-path",
    "log-path",
    "packages-install-path",
    "clean-targets",
    "require-dbt-version",
    "vars",
    "models",
    "seeds",
    "snapshots",
    "tests",
    "data_tests",
    "sources",
    "unit_tests",
    "analyses",
    "exposures",
    "metrics",
    "semantic-models",
    "saved-queries",
    "functions",
    "on-run-start",
    "on-run-end",
    "dispatch",
    "flags",
    "quoting",
    "query-comment",
    "restrict-access",
    "dbt-cloud",
];

/// Reads dbt_project.yml.
pub(crate) fn parse(file: &Arc<str>, text: &str, diags: &mut Diagnostics) -> Settings {
    let s = Settings {
        style: Style::Dbt,
        packages_path: "dbt_packages".into(),
        ..Settings::default()
    };
    read(file, text, (s, TOP_KEYS, set), diags)
}

/// Reads one top-level key of dbt_project.yml into `s`.
fn set(s: &mut Settings, src: &Src, (key, _, v): (&str, &Node, &Node), diags: &mut Diagnostics) {
    let paths = |d: &mut Diagnostics| src.strings(v, &format!("`{key}`"), d);
    match key {
        "name" => s.name = src.text(v, "`name`", diags).unwrap_or_default(),
        "profile" => s.profile = src.text(v, "`profile`", diags).map(|p| (p, src.loc(v))),
        "model-paths" => s.paths.models = paths(diags),
        "seed-paths" => s.paths.seeds = paths(diags),
        "test-paths" => s.paths.tests = paths(diags),
        "macro-paths" => s.paths.macros = paths(diags),
        "snapshot-paths" => s.paths.snapshots = paths(diags),
        "packages-install-path" => {
            s.packages_path = src
                .text(v, "`packages-install-path`", diags)
                .unwrap_or_default()
        }
        "vars" => s.vars = vars(src, v, diags),
        "models" | "seeds" | "snapshots" | "tests" | "data_tests" => {
            let tree = folder_config(src, v, key, diags);
            match key {
                "models" => s.models = tree,
                "seeds" => s.seeds = tree,
                "snapshots" => s.snapshots = tree,
                _ => s.tests = tree,
            }
        }
        "on-run-start" | "on-run-end" => {
            let hooks = src.strings(v, &format!("`{key}`"), diags);
            let hooks = hooks.into_iter().map(|h| (h, src.loc(v))).collect();
            match key {
                "on-run-start" => s.on_run_start = hooks,
                _ => s.on_run_end = hooks,
            }
        }
        "dispatch" => s.dispatch = dispatch(src, v, diags),
        "require-dbt-version" => require_version(src, v, diags),
        "target-path" => {
            let path = src.text(v, "`target-path`", diags).unwrap_or_default();
            if path.trim_end_matches('/') != "target" {
                diags.push(
                    Diagnostic::warning(format!(
                        "xform writes its artifacts to `target/`, not `{path}`"
                    ))
                    .at(src.loc(v)),
                );
            }
        }
        "quoting" => quoting(src, v, diags),
        _ => {}
    }
}

/// `dispatch: [{macro_namespace: dbt_utils, search_order: [my_project, dbt_utils]}]`.
fn dispatch(src: &Src, node: &Node, diags: &mut Diagnostics) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for item in src.seq(node, "`dispatch`", diags) {
        let mut namespace = None;
        let mut order = Vec::new();
        let known = ["macro_namespace", "search_order"];
        for (key, _, v) in src.fields(item, "a `dispatch` entry", &known, diags) {
            match key {
                "macro_namespace" => namespace = src.text(v, "`macro_namespace`", diags),
                _ => order = src.strings(v, "`search_order`", diags),
            }
        }
        match namespace {
            Some(ns) => out.push((ns, order)),
            None => diags.push(src.err(item, "a `dispatch` entry needs `macro_namespace`")),
        }
    }
    out
}

/// dbt's identifiers are quoted as written unless `quoting` says otherwise; xform quotes
/// every name the warehouse stores, so only quoting turned off for identifiers changes
/// nothing, and anything else is said.
fn quoting(src: &Src, node: &Node, diags: &mut Diagnostics) {
    for (key, _, v) in src.map(node, "`quoting`", diags) {
        if to_json(v) == Json::Bool(true) {
            diags.push(
                Diagnostic::warning(format!(
                    "`quoting.{key}: true` is not applied: xform quotes names as the warehouse stores them (lower case on PostgreSQL)"
                ))
                .at(src.loc(v)),
            );
        }
    }
}

/// `require-dbt-version: ">=1.5.0"` or a list of such ranges: an error when the dbt version
/// xform follows is outside any of them.
fn require_version(src: &Src, node: &Node, diags: &mut Diagnostics) {
    let ranges = src.strings(node, "`require-dbt-version`", diags);
    let outside: Vec<&String> = ranges
        .iter()
        .filter(|r| !version_allows(r).unwrap_or(true))
        .collect();
    if !outside.is_empty() {
        diags.push(
            Diagnostic::error(format!(
                "this project requires dbt {}; xform runs projects as dbt {DBT_VERSION} does",
                outside
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .at(src.loc(node)),
        );
    }
}

/// Whether one range (`>=1.0.0`, `<2.0.0`, `1.8.0`, comma-separated) allows [`DBT_VERSION`];
/// `None` when it cannot be read.
fn version_allows(range: &str) -> Option<bool> {
    let dbt = Version::parse(DBT_VERSION)?;
    Some(constraints(range)?.iter().all(|c| c.allows(&dbt)))
}

/// An installed dbt package: its settings (its folders relative to the root project) and its
/// macro files (path, text).
#[derive(Debug)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) settings: Settings,
    pub(crate) macro_files: Vec<(Arc<str>, Arc<str>)>,
}

/// The packages `dbt deps` installed under `dir` (`dbt_packages/`): each folder with a
/// dbt_project.yml, named by it, with its macro files read.
pub(crate) fn packages(
    root: &Path,
    dir: &str,
    (files, diags): (&mut Files, &mut Diagnostics),
) -> Vec<Package> {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
        return Vec::new();
    };
    let mut folders: Vec<String> = (entries.filter_map(|e| e.ok()))
        .filter(|e| e.path().join(DBT_PROJECT_FILE).is_file())
        .filter_map(|e| Some(format!("{dir}/{}", e.file_name().to_str()?)))
        .collect();
    folders.sort();
    folders
        .into_iter()
        .filter_map(|folder| package(root, &folder, (files, diags)))
        .collect()
}

/// The package in `folder` (relative to the root project).
fn package(
    root: &Path,
    folder: &str,
    (files, diags): (&mut Files, &mut Diagnostics),
) -> Option<Package> {
    let file: Arc<str> = Arc::from(format!("{folder}/{DBT_PROJECT_FILE}"));
    let text: Arc<str> = Arc::from(std::fs::read_to_string(root.join(&*file)).ok()?);
    files.insert(&file, &text);
    // A package's own mistakes are its maintainers': only what builds is read from it.
    let mut settings = parse(&file, &text, &mut Diagnostics::default());
    if settings.name.is_empty() {
        diags.push(
            Diagnostic::warning("a package without a `name` is skipped").at(Loc::new(&file, 0..0)),
        );
        return None;
    }
    let under = |dirs: &mut Vec<String>| dirs.iter_mut().for_each(|d| *d = format!("{folder}/{d}"));
    let p = &mut settings.paths;
    for dirs in [
        &mut p.models,
        &mut p.seeds,
        &mut p.tests,
        &mut p.snapshots,
        &mut p.macros,
    ] {
        under(dirs);
    }
    let macros = super::settings::Paths {
        models: Vec::new(),
        seeds: Vec::new(),
        tests: Vec::new(),
        snapshots: Vec::new(),
        macros: std::mem::take(&mut settings.paths.macros),
    };
    let (found, unnamed) = super::discover::discover(root, &macros);
    diags.extend(unnamed);
    let (reads, read_diags) = super::discover::read_all(root, found);
    diags.extend(read_diags);
    let macro_files = reads
        .into_iter()
        .map(|r| {
            files.insert(&r.found.path, &r.text);
            (r.found.path, r.text)
        })
        .collect();
    Some(Package {
        name: settings.name.clone(),
        settings,
        macro_files,
    })
}

/// Every `{% docs name %}...{% enddocs %}` block of the project's Markdown files: name → text.
pub(crate) fn docs_blocks(reads: &[super::discover::Read]) -> BTreeMap<String, String> {
    let markdown = reads
        .iter()
        .filter(|r| r.found.kind == super::discover::FileKind::Docs);
    markdown.flat_map(|r| blocks(&r.text)).collect()
}

/// The docs blocks of one file.
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{%") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("%}") else { break };
        let tag = after[..close].trim_matches(|c: char| c == '-' || c.is_whitespace());
        rest = &after[close + 2..];
        let Some(name) = tag.strip_prefix("docs ") else {
            continue;
        };
        let Some(end) = rest.find("enddocs") else {
            break;
        };
        let body = rest[..end]
            .trim_end_matches(|c: char| c != '{')
            .trim_end_matches('{');
        out.push((name.trim().to_string(), body.trim().to_string()));
        rest = &rest[end..];
    }
    out
}

/// Where profiles.yml is: `--profiles-dir`, `DBT_PROFILES_DIR`, the project folder, `~/.dbt`.
fn profiles_path(
    root: &Path,
    dir: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Option<PathBuf> {
    let named = dir.map(Path::to_path_buf);
    if let Some(d) = named.or_else(|| env.get("DBT_PROFILES_DIR").map(PathBuf::from)) {
        return Some(d.join(PROFILES_FILE));
    }
    let home = env.get("HOME").map(|h| Path::new(h).join(".dbt"));
    [Some(root.to_path_buf()), home]
        .into_iter()
        .flatten()
        .map(|d| d.join(PROFILES_FILE))
        .find(|p| p.is_file())
}

/// The outputs of the project's profile (or `--profile`) as targets, and the profile's
/// `target:` as the default one. Keys of dbt outputs that xform names otherwise are renamed.
pub(crate) fn profile_targets(
    root: &Path,
    (dir, name): (Option<&Path>, Option<&str>),
    settings: &mut Settings,
    env: &BTreeMap<String, String>,
    (files, diags): (&mut Files, &mut Diagnostics),
) {
    let wanted = name
        .map(str::to_string)
        .or_else(|| settings.profile.as_ref().map(|(p, _)| p.clone()));
    let Some(wanted) = wanted else {
        diags.push(
            Diagnostic::error("dbt_project.yml names no `profile`")
                .at_opt(settings.loc.clone())
                .help(
                    "add `profile: my_profile` naming a profile in profiles.yml, or pass --profile",
                ),
        );
        return;
    };
    let Some(path) = profiles_path(root, dir, env) else {
        diags.push(
            Diagnostic::error(format!("no profiles.yml with the profile `{wanted}`"))
                .at_opt(settings.profile.as_ref().map(|(_, l)| l.clone()))
                .help(
                    "looked in --profiles-dir, $DBT_PROFILES_DIR, the project folder and ~/.dbt/",
                ),
        );
        return;
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::error(format!(
                "cannot read {}: {e}",
                path.display()
            )));
            return;
        }
    };
    let file: Arc<str> = Arc::from(path.display().to_string());
    let text: Arc<str> = Arc::from(text);
    files.insert(&file, &text);
    let src = Src::new(&file, &text);
    let root_node = match src.parse() {
        Ok(Some(n)) => n,
        Ok(None) => {
            return diags
                .push(Diagnostic::error("profiles.yml is empty").at(Loc::new(&file, 0..0)));
        }
        Err(d) => return diags.push(d),
    };
    let profiles = src.map(&root_node, "profiles.yml", diags);
    let Some((_, _, profile)) = profiles.into_iter().find(|(k, _, _)| *k == wanted) else {
        diags.push(
            Diagnostic::error(format!("profiles.yml has no profile `{wanted}`"))
                .at(Loc::new(&file, 0..0)),
        );
        return;
    };
    for (key, _, v) in src.fields(
        profile,
        &format!("profile `{wanted}`"),
        &["target", "outputs"],
        diags,
    ) {
        match key {
            "target" => {
                settings.default_target = src.text(v, "`target`", diags).map(|t| (t, src.loc(v)))
            }
            _ => settings.targets = outputs(&src, v, diags),
        }
    }
}

/// Each output of a profile as a target declaration, in xform's names for its settings.
fn outputs(src: &Src, node: &Node, diags: &mut Diagnostics) -> BTreeMap<String, TargetDecl> {
    let mut out = targets(src, node, diags);
    for decl in out.values_mut() {
        for (dbt_key, key) in [("pass", "password"), ("database", "dbname")] {
            if let Some(value) = decl.fields.remove(dbt_key) {
                decl.fields.insert(key.to_string(), value);
            }
        }
        if decl.fields.get("type").is_some_and(|(t, _)| t == "duckdb") {
            // A DuckDB file's database is the file itself; its default schema is `main`.
            decl.fields.remove("dbname");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{blocks, version_allows};

    #[test]
    fn docs_blocks_as_dbt_reads_them() {
        let text = "# Orders\n{% docs orders_status %}\nOne of:\n\n| placed |\n{% enddocs %}\n\n{%- docs other -%} x {%- enddocs -%}";
        assert_eq!(
            blocks(text),
            [
                (
                    "orders_status".to_string(),
                    "One of:\n\n| placed |".to_string()
                ),
                ("other".to_string(), "x".to_string())
            ]
        );
    }

    #[test]
    fn version_ranges_as_dbt_reads_them() {
        assert_eq!(version_allows(">=1.0.0"), Some(true));
        assert_eq!(version_allows(">=1.5.0, <2.0.0"), Some(true));
        assert_eq!(version_allows("<1.0.0"), Some(false));
        assert_eq!(version_allows(">=1.12.0"), Some(false));
        assert_eq!(version_allows("1.11.0"), Some(true));
        assert_eq!(version_allows("~1.3"), None);
    }
}
