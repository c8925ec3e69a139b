//! `xform deps`: a dbt project's packages resolved and installed into `dbt_packages/` as
//! `dbt deps` does it. packages.yml is resolved (each package's own packages too; a hub
//! package's version constraints from everyone who asks for it merged, the newest version that
//! meets them all and supports dbt 1.11 chosen; a git package pinned to its commit) into
//! package-lock.yml, unless the lock was made from this very packages.yml; then every locked
//! package is fetched into a folder beside the installed ones, and only when all of them are
//! there do they replace what was installed: a failed or killed `deps` leaves the packages
//! that were there.

mod fetch;
mod hub;
mod lock;
mod resolve;
mod work;

use std::path::{Path, PathBuf};

use crate::diagnostics::{Diagnostic, Diagnostics, Files};
use crate::project::{
    LoadOptions, PackageSource, PackageSpec, package_lock, package_name, package_specs,
    packages_path,
};
use resolve::resolve;
use work::{Wanted, Work};

/// What `xform deps` was asked for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mode {
    /// `--upgrade`: resolve again even when package-lock.yml is up to date.
    pub(crate) upgrade: bool,
    /// `--lock`: write package-lock.yml, install nothing.
    pub(crate) lock_only: bool,
}

/// A package pinned: its name, its source as package-lock.yml records it, and its files.
pub(crate) struct Pinned {
    pub(crate) name: String,
    pub(crate) source: PackageSource,
    /// A git or tarball URL as packages.yml writes it (`{{ env_var('TOKEN') }}` unrendered),
    /// for package-lock.yml: a secret in it is not written down.
    pub(crate) written_url: Option<String>,
    files: Content,
    /// A newer version on the hub than the one installed.
    newer: Option<String>,
}

/// Where a pinned package's files are.
enum Content {
    /// A local package's folder, linked to.
    Link(PathBuf),
    /// A folder under the staging folder, moved into place.
    Fetched(PathBuf),
    /// A hub package's tarball, downloaded when it is installed.
    Download(String),
}

impl Pinned {
    /// How the package was pinned, for the person reading.
    pub(crate) fn detail(&self) -> String {
        let newer = (self.newer.as_ref()).map_or(String::new(), |v| format!("; {v} is available"));
        match &self.source {
            PackageSource::Local(path) => format!("linked to {}", path.display()),
            PackageSource::Git { url, revision, .. } => {
                let rev = revision.as_deref().unwrap_or("HEAD");
                format!("{url} at {}", rev.chars().take(12).collect::<String>())
            }
            PackageSource::Hub {
                package, versions, ..
            } => format!("{package} {}{newer}", versions.join(",")),
            PackageSource::Tarball(url) => url.clone(),
        }
    }
}

/// Resolves and installs the packages of the project at `root`; what was installed, in
/// order. Mistakes in packages.yml and packages that cannot be had are diagnostics (the
/// installed packages stay as they were); `say` hears the steps.
pub(crate) fn install(
    root: &Path,
    opts: &LoadOptions,
    mode: Mode,
    say: &mut dyn FnMut(String),
    (files, diags): (&mut Files, &mut Diagnostics),
) -> Vec<Pinned> {
    let specs = package_specs(root, root, opts, (files, diags));
    if specs.is_empty() || diags.has_errors() {
        return Vec::new();
    }
    let into = root.join(packages_path(root));
    let mut work = match Work::new(root, &into, opts) {
        Ok(w) => w,
        Err(e) => {
            diags.push(Diagnostic::error(e));
            return Vec::new();
        }
    };
    let placed =
        pin_all(root, &specs, mode, &mut work, say, (files, diags)).and_then(|(pinned, relock)| {
            let ready = match mode.lock_only {
                true => pinned,
                false => work.download(pinned).map_err(|e| diags.push(e)).ok()?,
            };
            if let Some(hash) = relock {
                let written = lock::write(root, &ready, &hash).map_err(|e| {
                    let file = crate::project::LOCK_FILE;
                    diags.push(Diagnostic::error(format!("cannot write {file}: {e}")))
                });
                written.ok()?;
                say(format!("wrote {}", crate::project::LOCK_FILE));
            }
            match mode.lock_only {
                true => Some(Vec::new()),
                false => work
                    .swap(&ready)
                    .map(|()| ready)
                    .map_err(|e| diags.push(e))
                    .ok(),
            }
        });
    work.clean();
    placed.unwrap_or_default()
}

/// The packages to install: package-lock.yml's when it was made from this packages.yml
/// (and not `--upgrade`), else resolved anew, with the hash to write package-lock.yml with.
fn pin_all(
    root: &Path,
    specs: &[PackageSpec],
    mode: Mode,
    work: &mut Work,
    say: &mut dyn FnMut(String),
    (files, diags): (&mut Files, &mut Diagnostics),
) -> Option<(Vec<Pinned>, Option<String>)> {
    let hash = lock::declared_hash(specs);
    let locked = package_lock(root, work.opts, (files, diags));
    if let Some((entries, Some(previous))) = locked
        && previous == hash
        && !mode.upgrade
    {
        if mode.lock_only {
            say(format!("{} is up to date", crate::project::LOCK_FILE));
            return Some((Vec::new(), None));
        }
        say(format!(
            "installing what {} pins",
            crate::project::LOCK_FILE
        ));
        let pins: Result<Vec<Pinned>, Diagnostic> = entries
            .iter()
            .map(|e| work.pin(&Wanted::from_spec(e, "package-lock.yml"), diags))
            .collect();
        return pins.map_err(|e| diags.push(e)).ok().map(|p| (p, None));
    }
    let pinned = resolve(specs, work, (files, diags))
        .map_err(|e| diags.push(e))
        .ok()?;
    let root_name = package_name(root).unwrap_or_default();
    if let Some(p) = pinned.iter().find(|p| p.name == root_name) {
        diags.push(Diagnostic::error(format!(
            "a package is named `{}`, as this project is",
            p.name
        )));
        return None;
    }
    Some((pinned, Some(hash)))
}

impl Pinned {
    fn source_text(&self) -> String {
        match &self.source {
            PackageSource::Local(p) => p.display().to_string(),
            PackageSource::Git { url, .. } | PackageSource::Tarball(url) => url.clone(),
            PackageSource::Hub { package, .. } => package.clone(),
        }
    }
}
