//! `xform deps`: packages put into `dbt_packages/` as `dbt deps` leaves them — a `local:`
//! package linked to its folder, a `git:` package cloned at its revision (with `git`, as dbt
//! does). A clone is made beside its place and renamed into it, so a failed fetch leaves the
//! package that was there.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::project::PackageSource;

/// A package fetched, not yet in its place.
pub(crate) enum Fetched {
    /// A local package's folder, to link to.
    Local(PathBuf),
    /// A clone in `tmp`, the package at `folder` (its `subdirectory`) within it.
    Cloned { tmp: PathBuf, folder: PathBuf },
}

impl Fetched {
    /// The package's folder (its dbt_project.yml is there).
    pub(crate) fn folder(&self) -> &Path {
        match self {
            Fetched::Local(folder) | Fetched::Cloned { folder, .. } => folder,
        }
    }

    /// Removes what was fetched (a package already installed under its name).
    pub(crate) fn discard(self) {
        if let Fetched::Cloned { tmp, .. } = self {
            let _ = std::fs::remove_dir_all(tmp);
        }
    }
}

/// Fetches a package into `into` (a local one's path read from `base`, the folder of the
/// project declaring it).
pub(crate) fn fetch(source: &PackageSource, base: &Path, into: &Path) -> Result<Fetched, String> {
    std::fs::create_dir_all(into).map_err(|e| format!("cannot create {}: {e}", into.display()))?;
    match source {
        PackageSource::Local(path) => {
            let folder = base.join(path);
            let folder = folder
                .canonicalize()
                .map_err(|e| format!("local package {}: {e}", folder.display()))?;
            Ok(Fetched::Local(folder))
        }
        PackageSource::Git {
            url,
            revision,
            subdirectory,
        } => {
            let tmp = into.join(format!(".xform-fetch-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            git(&["clone", "--quiet", url, &tmp.to_string_lossy()], None)?;
            if let Some(rev) = revision {
                git(&["checkout", "--quiet", rev], Some(&tmp))
                    .inspect_err(|_| drop(std::fs::remove_dir_all(&tmp)))?;
            }
            let folder = subdirectory.as_ref().map_or(tmp.clone(), |s| tmp.join(s));
            Ok(Fetched::Cloned { tmp, folder })
        }
        PackageSource::Hub { package, .. } => Err(format!(
            "`package: {package}` comes from dbt's package hub, which xform does not download yet: install it with `git:` (its repository and a revision) or `dbt deps`"
        )),
    }
}

/// Runs git; its error output is the message.
fn git(args: &[&str], dir: Option<&Path>) -> Result<(), String> {
    let mut cmd = Command::new("git");
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run git (needed for `git:` packages): {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "git {}: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Puts a fetched package at `into/name`, in place of what was there.
pub(crate) fn place(fetched: Fetched, into: &Path, name: &str) -> Result<PathBuf, String> {
    let dest = into.join(name);
    let err = |e: std::io::Error| format!("cannot install {}: {e}", dest.display());
    if dest.symlink_metadata().is_ok() {
        match dest.is_dir() && !dest.symlink_metadata().map_err(err)?.is_symlink() {
            true => std::fs::remove_dir_all(&dest).map_err(err)?,
            false => std::fs::remove_file(&dest).map_err(err)?,
        }
    }
    match fetched {
        Fetched::Local(folder) => link(&folder, &dest).map_err(err)?,
        Fetched::Cloned { tmp, folder } => {
            std::fs::rename(&folder, &dest).map_err(err)?;
            let _ = std::fs::remove_dir_all(dest.join(".git"));
            let _ = std::fs::remove_dir_all(tmp);
        }
    }
    Ok(dest)
}

#[cfg(unix)]
fn link(folder: &Path, dest: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(folder, dest)
}

#[cfg(not(unix))]
fn link(folder: &Path, dest: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_dir(folder, dest)
}
