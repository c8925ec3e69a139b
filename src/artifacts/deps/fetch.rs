//! Getting a package's files: a `git:` package cloned at its revision (with `git`, as dbt
//! does), and the filesystem steps of putting packages in place.

use std::path::Path;
use std::process::Command;

/// Clones `url` into `into` at `revision` (a branch, tag or commit; the default branch when
/// none) and returns the commit checked out. Only that commit is fetched, as dbt does.
pub(super) fn git_clone(url: &str, revision: Option<&str>, into: &Path) -> Result<String, String> {
    // Neither is ever an option to git (`--upload-pack=...` would run a command).
    let values = [Some(url), revision].into_iter().flatten();
    if let Some(bad) = values.into_iter().find(|v| v.starts_with('-')) {
        return Err(format!("`{bad}` is not a git URL or revision"));
    }
    let dir = into.to_string_lossy();
    let clone = [
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--end-of-options",
        url,
        &dir,
    ];
    git(&clone, None)?;
    if let Some(rev) = revision.filter(|r| *r != "HEAD") {
        let no_rev = |e: String| format!("{url} has no revision `{rev}`: {e}");
        let fetch = [
            "fetch",
            "--quiet",
            "--depth",
            "1",
            "--end-of-options",
            "origin",
            rev,
        ];
        git(&fetch, Some(into)).map_err(no_rev)?;
        let checkout = ["checkout", "--quiet", "--detach", "FETCH_HEAD"];
        git(&checkout, Some(into)).map_err(no_rev)?;
    }
    git(&["rev-parse", "HEAD"], Some(into))
}

/// Runs git: its output, or its error output as the message.
fn git(args: &[&str], dir: Option<&Path>) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.args(args).env("LC_ALL", "C");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run git (needed for `git:` packages): {e}"))?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        false => Err(format!(
            "git {}: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Removes a file, a link or a folder.
pub(super) fn remove(path: &Path) -> std::io::Result<()> {
    match path.symlink_metadata()?.is_dir() {
        true => std::fs::remove_dir_all(path),
        false => std::fs::remove_file(path),
    }
}

#[cfg(unix)]
pub(super) fn link(folder: &Path, dest: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(folder, dest)
}

#[cfg(not(unix))]
pub(super) fn link(folder: &Path, dest: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_dir(folder, dest)
}
