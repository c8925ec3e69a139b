//! The fetching of one `deps` run: packages pinned (a hub version chosen, a git revision
//! cloned, a tarball unpacked) into a staging folder beside the installed packages, and swapped
//! in only when all of them arrived.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::{Content, Pinned, fetch, hub};
use crate::diagnostics::{Diagnostic, Diagnostics, Files, Loc};
use crate::project::version::{Constraint, Version};
use crate::project::{
    DBT_VERSION, LoadOptions, PackageSource, PackageSpec, package_name, package_specs,
    package_specs_in,
};

/// The fetching of one `deps` run: a staging folder beside the installed packages, the hub,
/// and what was fetched already (a git package is cloned once per revision).
pub(super) struct Work<'a> {
    root: PathBuf,
    into: PathBuf,
    staging: PathBuf,
    pub(super) opts: &'a LoadOptions,
    hub: Option<hub::Hub>,
    clones: HashMap<(String, Option<String>), (PathBuf, String)>,
    tarballs: HashMap<String, PathBuf>,
    made: usize,
}

const STAGING_PREFIX: &str = ".xform-deps-";

impl<'a> Work<'a> {
    /// Makes the staging folder, after removing what a killed `deps` left.
    pub(super) fn new(root: &Path, into: &Path, opts: &'a LoadOptions) -> Result<Work<'a>, String> {
        let err = |e: std::io::Error| format!("cannot use {}: {e}", into.display());
        std::fs::create_dir_all(into).map_err(err)?;
        // Everything in the install folder is replaced: never the project's own folder.
        let (folder, project) = (
            into.canonicalize().map_err(err)?,
            root.canonicalize().map_err(err)?,
        );
        if project.starts_with(&folder) {
            return Err(format!(
                "`packages-install-path` is {}, which holds the project: name a folder of its own",
                into.display()
            ));
        }
        for entry in std::fs::read_dir(into).map_err(err)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(STAGING_PREFIX) {
                recover(&entry.path(), pid, into);
            }
        }
        let staging = into.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&staging).map_err(err)?;
        Ok(Work {
            root: root.to_path_buf(),
            into: into.to_path_buf(),
            staging,
            opts,
            hub: None,
            clones: HashMap::new(),
            tarballs: HashMap::new(),
            made: 0,
        })
    }

    /// A new empty folder in the staging folder.
    fn fresh(&mut self) -> Result<PathBuf, String> {
        self.made += 1;
        let dir = self.staging.join(self.made.to_string());
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }

    fn hub(&mut self) -> &mut hub::Hub {
        let url = self.opts.env.get("DBT_PACKAGE_HUB_URL").map(String::as_str);
        self.hub.get_or_insert_with(|| hub::Hub::new(url))
    }

    /// Pins a wanted package: a hub version chosen, a git revision cloned, a tarball fetched.
    pub(super) fn pin(
        &mut self,
        w: &Wanted,
        diags: &mut Diagnostics,
    ) -> Result<Pinned, Diagnostic> {
        let at = |message: String| Diagnostic::error(message).at_opt(w.loc.clone());
        let (source, files, newer) = match &w.source {
            PackageSource::Local(path) => {
                let folder = self.root.join(path);
                let folder = folder
                    .canonicalize()
                    .map_err(|e| at(format!("local package {}: {e}", folder.display())))?;
                (
                    PackageSource::Local(path.clone()),
                    Content::Link(folder),
                    None,
                )
            }
            PackageSource::Git {
                url,
                revision,
                subdirectory,
                warn_unpinned,
            } => {
                let unpinned = revision
                    .as_deref()
                    .is_none_or(|r| ["HEAD", "main", "master"].contains(&r));
                let first = !(self.clones).contains_key(&(url.clone(), revision.clone()));
                if unpinned && *warn_unpinned && first {
                    diags.push(
                        Diagnostic::warning(format!("the git package {url} is not pinned to a tag or a commit: what it installs can change"))
                            .at_opt(w.loc.clone())
                            .help("add `revision:` with a tag or a commit, or `warn-unpinned: false`"),
                    );
                }
                let inside = |s: &&String| {
                    let p = Path::new(s.as_str());
                    let normal =
                        |c: std::path::Component| matches!(c, std::path::Component::Normal(_));
                    !p.is_absolute() && p.components().all(normal)
                };
                if let Some(s) = subdirectory.as_ref().filter(|s| !inside(s)) {
                    let message =
                        format!("`subdirectory: {s}` must be a folder inside the repository");
                    return Err(at(message));
                }
                let (clone, sha) = self.clone(url, revision.as_deref()).map_err(at)?;
                let folder = subdirectory
                    .as_ref()
                    .map_or(clone.clone(), |s| clone.join(s));
                let source = PackageSource::Git {
                    url: url.clone(),
                    revision: Some(sha),
                    subdirectory: subdirectory.clone(),
                    warn_unpinned: *warn_unpinned,
                };
                (source, Content::Fetched(folder), None)
            }
            PackageSource::Hub {
                package,
                install_prerelease: prerelease,
                ..
            } => {
                let (version, tarball, newer) =
                    self.choose(package, &w.asks, *prerelease).map_err(at)?;
                if let Some(moved) = self.hub().moved_to(package) {
                    diags.push(
                        Diagnostic::warning(format!(
                            "the hub package {package} has moved to {moved}"
                        ))
                        .at_opt(w.loc.clone())
                        .help(format!("ask for `package: {moved}` instead")),
                    );
                }
                let source = PackageSource::Hub {
                    package: package.clone(),
                    versions: vec![version],
                    install_prerelease: *prerelease,
                };
                (source, Content::Download(tarball), newer)
            }
            PackageSource::Tarball(url) => {
                let folder = self.tarball(url).map_err(at)?;
                (
                    PackageSource::Tarball(url.clone()),
                    Content::Fetched(folder),
                    None,
                )
            }
        };
        let name = match (&files, &source) {
            (
                Content::Download(_),
                PackageSource::Hub {
                    package, versions, ..
                },
            ) => {
                let meta = self.hub().versions(package).map_err(at)?;
                let version = meta.get(&versions[0]);
                version
                    .and_then(|v| v.get("name"))
                    .and_then(Json::as_str)
                    .map(str::to_string)
            }
            (Content::Link(f) | Content::Fetched(f), _) => package_name(f),
            _ => None,
        };
        let name = name
            .or_else(|| w.name.clone())
            .ok_or_else(|| at("the package has no dbt_project.yml with a `name`".to_string()))?;
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(at(format!("`{name}` cannot be a package's folder name")));
        }
        Ok(Pinned {
            name,
            source,
            written_url: w.written_url.clone(),
            files,
            newer,
        })
    }

    /// A hub package's version: the newest that meets every request and supports this dbt
    /// version (prereleases only when asked for); its tarball; a newer one when there is.
    fn choose(
        &mut self,
        package: &str,
        asks: &[(String, Vec<String>)],
        prerelease: bool,
    ) -> Result<(String, String, Option<String>), String> {
        let mut constraints = Vec::new();
        for text in asks.iter().flat_map(|(_, v)| v) {
            let c = Constraint::parse(text)
                .ok_or_else(|| format!("\"{text}\" is not a version (package {package})"))?;
            constraints.push(c);
        }
        let prerelease = prerelease || constraints.iter().any(Constraint::names_prerelease);
        let dbt = Version::parse(DBT_VERSION);
        let versions = self.hub().versions(package)?;
        let mut installable: Vec<(Version, &Json)> = versions
            .iter()
            .filter_map(|(v, meta)| Some((Version::parse(v)?, meta)))
            .filter(|(v, meta)| (prerelease || !v.is_prerelease()) && supports(meta, dbt.as_ref()))
            .collect();
        installable.sort_by(|a, b| a.0.cmp(&b.0));
        let latest = installable.last().map(|(v, _)| v.to_string());
        let chosen =
            (installable.iter().rev()).find(|(v, _)| constraints.iter().all(|c| c.allows(v)));
        let Some((version, meta)) = chosen else {
            let asked: Vec<String> = (asks.iter())
                .map(|(who, v)| format!("{} by {who}", v.join(", ")))
                .collect();
            let recent: Vec<String> = (installable.iter().rev().take(8))
                .map(|(v, _)| v.to_string())
                .collect();
            return Err(format!(
                "no version of {package} meets every request ({}); the newest for dbt {DBT_VERSION}: {}",
                asked.join("; "),
                if recent.is_empty() {
                    "none".to_string()
                } else {
                    recent.join(", ")
                }
            ));
        };
        let tarball = (meta.get("downloads"))
            .and_then(|d| d.get("tarball"))
            .and_then(Json::as_str)
            .ok_or_else(|| format!("{package} {version}: the hub names no tarball"))?;
        let newer = latest.filter(|l| *l != version.to_string());
        Ok((version.to_string(), tarball.to_string(), newer))
    }

    /// `url` cloned at `revision` (once per run): the clone and its commit.
    fn clone(&mut self, url: &str, revision: Option<&str>) -> Result<(PathBuf, String), String> {
        let key = (url.to_string(), revision.map(str::to_string));
        if let Some(done) = self.clones.get(&key) {
            return Ok(done.clone());
        }
        let dir = self.fresh()?.join("clone");
        let sha = fetch::git_clone(url, revision, &dir)?;
        self.clones.insert(key, (dir.clone(), sha.clone()));
        Ok((dir, sha))
    }

    /// A tarball downloaded and unpacked (once per run): the package's folder.
    fn tarball(&mut self, url: &str) -> Result<PathBuf, String> {
        if let Some(done) = self.tarballs.get(url) {
            return Ok(done.clone());
        }
        let dir = self.fresh()?;
        let agent = self.hub().agent().clone();
        let folder = hub::unpack_tarball(&agent, url, &dir)?;
        self.tarballs.insert(url.to_string(), folder.clone());
        Ok(folder)
    }

    /// The packages a pinned package declares: a hub version's from the hub, the others'
    /// from their packages.yml.
    pub(super) fn needs(
        &mut self,
        p: &Pinned,
        (files, diags): (&mut Files, &mut Diagnostics),
    ) -> Vec<PackageSpec> {
        match (&p.files, &p.source) {
            (
                Content::Download(_),
                PackageSource::Hub {
                    package, versions, ..
                },
            ) => {
                let Ok(meta) = self.hub().versions(package) else {
                    return Vec::new();
                };
                let needs = meta.get(&versions[0]).and_then(|v| v.get("packages"));
                let text = serde_json::json!({ "packages": needs.cloned().unwrap_or(Json::Array(Vec::new())) });
                let file = format!("{package} {} on the package hub", versions[0]);
                package_specs_in(&file, &text.to_string(), self.opts, (files, diags))
            }
            (Content::Link(f) | Content::Fetched(f), _) => {
                package_specs(&self.root, f, self.opts, (files, diags))
            }
            _ => Vec::new(),
        }
    }

    /// Downloads what is not fetched yet.
    pub(super) fn download(&mut self, pinned: Vec<Pinned>) -> Result<Vec<Pinned>, Diagnostic> {
        let mut ready = Vec::with_capacity(pinned.len());
        for mut p in pinned {
            if let Content::Download(url) = &p.files {
                let url = url.clone();
                let folder = self
                    .tarball(&url)
                    .map_err(|e| Diagnostic::error(format!("{}: {e}", p.name)))?;
                p.files = Content::Fetched(folder);
            }
            ready.push(p);
        }
        Ok(ready)
    }

    /// Moves the installed packages aside (into the staging folder, removed afterwards) and
    /// the new ones into place; on a failure, the installed ones back.
    pub(super) fn swap(&self, ready: &[Pinned]) -> Result<(), Diagnostic> {
        self.replace(ready).map_err(|e| {
            Diagnostic::error(format!("cannot install into {}: {e}", self.into.display()))
        })
    }

    fn replace(&self, ready: &[Pinned]) -> std::io::Result<()> {
        let previous = self.staging.join("previous");
        std::fs::create_dir_all(&previous)?;
        let mut moved = Vec::new();
        for entry in std::fs::read_dir(&self.into)?.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().starts_with(STAGING_PREFIX) {
                std::fs::rename(entry.path(), previous.join(&name))?;
                moved.push(name);
            }
        }
        let mut placed = Vec::new();
        let result = ready.iter().try_for_each(|p| {
            let dest = self.into.join(&p.name);
            match &p.files {
                Content::Link(folder) => fetch::link(folder, &dest)?,
                Content::Fetched(folder) => {
                    std::fs::rename(folder, &dest)?;
                    let _ = std::fs::remove_dir_all(dest.join(".git"));
                }
                Content::Download(_) => return Ok(()),
            }
            placed.push(dest);
            Ok(())
        });
        if result.is_err() {
            placed.iter().for_each(|d| drop(fetch::remove(d)));
            for name in moved {
                let _ = std::fs::rename(previous.join(&name), self.into.join(&name));
            }
        }
        result
    }

    /// Removes the staging folder.
    pub(super) fn clean(&self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// What a `deps` that was killed left (`staging`, of process `pid`): the packages it had moved
/// aside and not replaced yet are put back, the rest removed. Another `deps` still running
/// keeps its own.
fn recover(staging: &Path, pid: &str, into: &Path) {
    let running = Path::new("/proc").join(pid).exists() && pid != std::process::id().to_string();
    if running {
        return;
    }
    let previous = staging.join("previous");
    for entry in std::fs::read_dir(&previous).into_iter().flatten().flatten() {
        let dest = into.join(entry.file_name());
        if dest.symlink_metadata().is_err() {
            let _ = std::fs::rename(entry.path(), dest);
        }
    }
    let _ = std::fs::remove_dir_all(staging);
}

/// Whether a hub version's `require_dbt_version` allows the dbt version xform follows (a
/// version without one, or one that cannot be read, is taken to).
fn supports(meta: &Json, dbt: Option<&Version>) -> bool {
    let (Some(dbt), Some(required)) = (dbt, meta.get("require_dbt_version")) else {
        return true;
    };
    let ranges: Vec<&str> = match required {
        Json::String(s) => vec![s.as_str()],
        Json::Array(items) => items.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    };
    ranges.iter().all(|r| {
        crate::project::version::constraints(r).is_none_or(|cs| cs.iter().all(|c| c.allows(dbt)))
    })
}

/// A package asked for, with every request for it merged (dbt's unpinned package): a hub
/// package's `versions` are all the constraints asked for, and `asks` says who asked which.
#[derive(Clone, Debug)]
pub(super) struct Wanted {
    pub(super) source: PackageSource,
    pub(super) written_url: Option<String>,
    pub(super) asks: Vec<(String, Vec<String>)>,
    pub(super) name: Option<String>,
    /// Where it was first asked for (a line of packages.yml when it was there).
    pub(super) loc: Option<Loc>,
}

impl Wanted {
    pub(super) fn from_spec(spec: &PackageSpec, by: &str) -> Wanted {
        let asks = match &spec.source {
            PackageSource::Hub { versions, .. } => vec![(by.to_string(), versions.clone())],
            _ => Vec::new(),
        };
        let unrendered = spec.hashed.get("unrendered");
        let written = ["git", "tarball"]
            .iter()
            .find_map(|k| unrendered?.get(k)?.as_str());
        Wanted {
            source: spec.source.clone(),
            written_url: written.map(str::to_string),
            asks,
            name: spec.name.clone(),
            loc: Some(spec.loc.clone()),
        }
    }

    /// What makes two requests one package (a git URL with or without `.git` is one).
    pub(super) fn key(&self) -> String {
        match &self.source {
            PackageSource::Local(p) => format!("local:{}", p.display()),
            PackageSource::Git {
                url, subdirectory, ..
            } => {
                let url = url.strip_suffix(".git").unwrap_or(url);
                format!("{url}/{}", subdirectory.as_deref().unwrap_or(""))
            }
            PackageSource::Hub { package, .. } => package.clone(),
            PackageSource::Tarball(url) => url.clone(),
        }
    }
}
