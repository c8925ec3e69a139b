//! Writing fixture projects to temp dirs and running the real `xform` binary on them.

use std::path::Path;
use std::process::Command;

pub const BASE_PROJECT: &str = "name: fixture
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb }
models:
  +materialized: view
";

/// Writes a project given as `-- file: path` sections; adds a basic project.yml if absent.
pub fn project(fixture: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write_files(dir.path(), fixture);
    if !dir.path().join("project.yml").exists() && !fixture.contains("-- no-project") {
        std::fs::write(dir.path().join("project.yml"), BASE_PROJECT).unwrap();
    }
    dir
}

pub fn write_files(root: &Path, fixture: &str) {
    for (path, body) in sections(fixture) {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, body).unwrap();
    }
}

fn sections(fixture: &str) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for line in fixture.split_inclusive('\n') {
        if let Some(path) = line.trim_end().strip_prefix("-- file: ") {
            out.push((path.trim(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
        }
    }
    out
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn xform(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xform"))
        .args(args)
        .current_dir(dir)
        .env_remove("PR_NUMBER")
        .output()
        .expect("run xform");
    let o = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !o.stderr.contains("panicked"),
        "xform panicked:\n{}",
        o.stderr
    );
    o
}
