//! What a dbt project says it needs: packages.yml (or dependencies.yml), and package-lock.yml,
//! the exact versions `dbt deps` (or `xform deps`) chose for it. Values are rendered as dbt
//! renders them (`env_var`, `--vars`), and each entry keeps what dbt's lock hash reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::dbt::{DBT_PROJECT_FILE, parse};
use super::yaml::{Node, Src, to_json};
use super::{LoadOptions, SettingScope};
use crate::diagnostics::{Diagnostics, Files, Loc};

/// Where `xform deps` and `dbt deps` record the packages they installed.
pub(crate) const LOCK_FILE: &str = "package-lock.yml";

/// Where a package comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PackageSource {
    /// `local: ../path`, relative to the root project.
    Local(PathBuf),
    /// `git: url` with `revision` (a branch, tag or commit) and `subdirectory`.
    Git {
        url: String,
        revision: Option<String>,
        subdirectory: Option<String>,
        /// `warn-unpinned: false` silences the warning for a branch or no revision.
        warn_unpinned: bool,
    },
    /// `package: org/name` with `version` constraints, from dbt's package hub.
    Hub {
        package: String,
        versions: Vec<String>,
        install_prerelease: bool,
    },
    /// `tarball: url`, a .tar.gz of the package.
    Tarball(String),
}

/// One entry of packages.yml or package-lock.yml.
#[derive(Clone, Debug)]
pub(crate) struct PackageSpec {
    pub(crate) source: PackageSource,
    /// `name:` (every entry of a lock file has one).
    pub(crate) name: Option<String>,
    /// The entry as dbt hashes it for package-lock.yml's `sha1_hash`: its fields with dbt's
    /// defaults, and `unrendered`, the entry as written.
    pub(crate) hashed: Json,
    pub(crate) loc: Loc,
}

/// The packages a project folder declares in packages.yml (or dependencies.yml); none when
/// it declares none. `dir` is the root project or an installed package.
pub(crate) fn package_specs(
    root: &Path,
    dir: &Path,
    opts: &LoadOptions,
    (files, diags): (&mut Files, &mut Diagnostics),
) -> Vec<PackageSpec> {
    let names = ["packages.yml", "dependencies.yml"];
    match names.iter().find_map(|f| read(root, &dir.join(f))) {
        Some((file, text)) => package_specs_in(&file, &text, opts, (files, diags)),
        None => Vec::new(),
    }
}

/// The packages a piece of YAML (or JSON) lists under `packages:`, such as the packages a
/// hub version needs; `name` names it in diagnostics.
pub(crate) fn package_specs_in(
    name: &str,
    text: &str,
    opts: &LoadOptions,
    (files, diags): (&mut Files, &mut Diagnostics),
) -> Vec<PackageSpec> {
    let (file, text): (Arc<str>, Arc<str>) = (Arc::from(name), Arc::from(text));
    files.insert(&file, &text);
    let vars = cli_vars(opts, diags, files);
    let src = Src::new(&file, &text);
    match src.parse() {
        Ok(Some(node)) => entries(&src, &node, &scope(opts, &vars), diags),
        Ok(None) => Vec::new(),
        Err(d) => {
            diags.push(d);
            Vec::new()
        }
    }
}

/// package-lock.yml: its packages, and the `sha1_hash` of the packages.yml it was made from.
pub(crate) fn package_lock(
    root: &Path,
    opts: &LoadOptions,
    (files, diags): (&mut Files, &mut Diagnostics),
) -> Option<(Vec<PackageSpec>, Option<String>)> {
    let (file, text) = read(root, &root.join(LOCK_FILE))?;
    let (file, text): (Arc<str>, Arc<str>) = (Arc::from(file), Arc::from(text));
    files.insert(&file, &text);
    let vars = cli_vars(opts, diags, files);
    let src = Src::new(&file, &text);
    let node = match src.parse() {
        Ok(node) => node?,
        Err(d) => {
            diags.push(d);
            return None;
        }
    };
    let packages = entries(&src, &node, &scope(opts, &vars), diags);
    let hash = (src
        .map(&node, LOCK_FILE, &mut Diagnostics::default())
        .into_iter())
    .find(|(k, _, _)| *k == "sha1_hash")
    .and_then(|(_, _, v)| to_json(v).as_str().map(str::to_string));
    Some((packages, hash))
}

/// A file's name (relative to the root project) and text.
fn read(root: &Path, path: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    let shown = path.strip_prefix(root).unwrap_or(path);
    Some((shown.display().to_string(), text))
}

fn cli_vars(opts: &LoadOptions, diags: &mut Diagnostics, files: &mut Files) -> Map<String, Json> {
    opts.vars
        .as_deref()
        .map(|v| super::cli_vars(v, diags, files))
        .unwrap_or_default()
}

fn scope<'a>(opts: &'a LoadOptions, vars: &'a Map<String, Json>) -> SettingScope<'a> {
    SettingScope {
        env: &opts.env,
        vars,
        target: None,
        docs: &NO_DOCS,
    }
}

static NO_DOCS: BTreeMap<String, String> = BTreeMap::new();

/// The `packages:` list of a parsed file.
fn entries(
    src: &Src,
    node: &Node,
    scope: &SettingScope,
    diags: &mut Diagnostics,
) -> Vec<PackageSpec> {
    let fields = src.fields(
        node,
        "the file",
        &["packages", "projects", "sha1_hash"],
        diags,
    );
    let lists = fields.into_iter().filter(|(k, _, _)| *k == "packages");
    let items: Vec<&Node> = lists
        .flat_map(|(_, _, v)| src.seq(v, "`packages`", diags))
        .collect();
    items
        .into_iter()
        .filter_map(|item| entry(src, item, scope, diags))
        .collect()
}

/// One entry of `packages:`.
fn entry(
    src: &Src,
    item: &Node,
    scope: &SettingScope,
    diags: &mut Diagnostics,
) -> Option<PackageSpec> {
    let known = [
        "local",
        "git",
        "revision",
        "subdirectory",
        "warn-unpinned",
        "package",
        "version",
        "install_prerelease",
        "tarball",
        "name",
        "private",
        "provider",
    ];
    let (mut raw, mut rendered) = (Map::new(), Map::new());
    for (key, _, v) in src.fields(item, "a package", &known, diags) {
        let value = to_json(v);
        let shown = match &value {
            Json::String(s) if s.contains("{{") || s.contains("{%") => match scope.render(s) {
                Ok(r) => Json::String(r),
                Err(message) => {
                    diags.push(src.err(v, message));
                    return None;
                }
            },
            other => other.clone(),
        };
        raw.insert(key.to_string(), value);
        rendered.insert(key.to_string(), shown);
    }
    let text = |k: &str| rendered.get(k).and_then(scalar);
    let mut hashed = Map::new();
    let source =
        if let Some(path) = text("local") {
            hashed.insert("local".into(), Json::String(path.clone()));
            PackageSource::Local(PathBuf::from(path))
        } else if let Some(url) = text("git") {
            for key in ["git", "revision", "subdirectory", "warn-unpinned"] {
                hashed.insert(key.into(), rendered.get(key).cloned().unwrap_or(Json::Null));
            }
            PackageSource::Git {
                url,
                revision: text("revision"),
                subdirectory: text("subdirectory"),
                warn_unpinned: rendered.get("warn-unpinned") != Some(&Json::Bool(false)),
            }
        } else if let Some(package) = text("package") {
            let Some(version) = rendered.get("version").cloned() else {
                diags.push(src.err(item, format!("`package: {package}` needs a `version`")).help(
                "e.g. version: [\">=1.0.0\", \"<2.0.0\"], or the exact version to install",
            ));
                return None;
            };
            let versions = match &version {
                Json::Array(v) => v.iter().filter_map(scalar).collect(),
                other => scalar(other).into_iter().collect(),
            };
            let install_prerelease = rendered.get("install_prerelease") == Some(&Json::Bool(true));
            hashed.insert("package".into(), Json::String(package.clone()));
            hashed.insert("version".into(), version);
            hashed.insert("install_prerelease".into(), Json::Bool(install_prerelease));
            PackageSource::Hub {
                package,
                versions,
                install_prerelease,
            }
        } else if let Some(url) = text("tarball") {
            if text("name").is_none() {
                diags.push(src.err(item, "a `tarball:` package needs a `name`"));
                return None;
            }
            hashed.insert("tarball".into(), Json::String(url.clone()));
            PackageSource::Tarball(url)
        } else if rendered.contains_key("private") {
            diags.push(
                src.err(item, "`private:` packages need dbt Cloud's git integration")
                    .help("write it as `git:` with the repository's URL"),
            );
            return None;
        } else {
            diags.push(src.err(
                item,
                "a package needs `local:`, `git:`, `package:` or `tarball:`",
            ));
            return None;
        };
    let name = text("name");
    if let Some(n) = &name {
        hashed.insert("name".into(), Json::String(n.clone()));
    }
    hashed.insert("unrendered".into(), Json::Object(raw));
    Some(PackageSpec {
        source,
        name,
        hashed: Json::Object(hashed),
        loc: src.loc(item),
    })
}

/// A string or number as text (`revision: 1.0`, `version: 0.8`).
fn scalar(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The name a package folder's dbt_project.yml gives it.
pub(crate) fn package_name(folder: &Path) -> Option<String> {
    let text = std::fs::read_to_string(folder.join(DBT_PROJECT_FILE)).ok()?;
    let file: Arc<str> = Arc::from(DBT_PROJECT_FILE);
    let name = parse(&file, &text, &mut Diagnostics::default()).name;
    (!name.is_empty()).then_some(name)
}

/// Where `dbt deps` installs a project's packages (`packages-install-path`).
pub(crate) fn packages_path(root: &Path) -> String {
    let text = std::fs::read_to_string(root.join(DBT_PROJECT_FILE)).unwrap_or_default();
    let file: Arc<str> = Arc::from(DBT_PROJECT_FILE);
    parse(&file, &text, &mut Diagnostics::default()).packages_path
}
