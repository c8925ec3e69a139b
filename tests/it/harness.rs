//! Writing fixture projects to temp dirs and running the real `xform` binary on them.

use std::path::Path;
use std::process::{Child, Command, Stdio};

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
    xform_env(dir, args, &[])
}

/// Runs xform with these environment variables set.
pub fn xform_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(crate::harness::bin())
        .args(args)
        .current_dir(dir)
        .env_remove("PR_NUMBER")
        .envs(env.iter().copied())
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

/// Copies the example project at the repository root (not the Rust tests under tests/it).
pub fn example_project() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(root).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let wanted = matches!(
            top.as_str(),
            "project.yml" | "models" | "macros" | "seeds" | "snapshots" | "tests" | "data"
        );
        if !wanted || rel.starts_with("tests/it") || !entry.file_type().is_file() {
            continue;
        }
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(entry.path(), to).unwrap();
    }
    dir
}

/// Starts xform with stdout and stderr piped.
pub fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(crate::harness::bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xform")
}

/// How a bounded run of xform ended.
pub enum Ended {
    /// Exited with a code.
    Exit(Output),
    /// Ended by a signal (an abort, a stack overflow); the signal number.
    Signal(i32, Output),
    /// Still running at the deadline, so killed.
    Hung,
}

impl Ended {
    /// The output of a run that exited without a panic; anything else fails the test, naming
    /// `what`.
    pub fn exited(self, what: &str) -> Output {
        match self {
            Ended::Exit(o) => {
                assert!(!o.stderr.contains("panicked"), "{what}: {}", o.stderr);
                o
            }
            Ended::Signal(s, o) => panic!("{what}: died of signal {s}: {}", o.stderr),
            Ended::Hung => panic!("{what}: hung"),
        }
    }
}

/// Runs xform, killing it if it runs past `limit`; output is read while it runs.
pub fn run_bounded(dir: &Path, args: &[std::ffi::OsString], limit: std::time::Duration) -> Ended {
    let child = Command::new(crate::harness::bin())
        .args(args)
        .current_dir(dir)
        .env_remove("PR_NUMBER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xform");
    wait_bounded(child, limit)
}

/// Waits for a child, reading its output, and kills it at `limit`.
pub fn wait_bounded(mut child: Child, limit: std::time::Duration) -> Ended {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for xform") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let output = |code| Output {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    match status {
        None => Ended::Hung,
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Ended::Exit(output(code)),
            (None, signal) => Ended::Signal(signal.unwrap_or(0), output(-1)),
        },
    }
}

/// A small deterministic random source (xorshift64*), so a failing trial can be replayed
/// from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The seed of `cargo test`'s trials: `XFORM_SEED`, else a fixed one, so a run repeats (with
/// 28 the four kill trials cover every command and both signals).
pub fn seed() -> u64 {
    env_seed().unwrap_or(28)
}

/// The seed of the full suites: `XFORM_SEED`, else the clock's. Printed by the caller so a
/// failure can be replayed.
pub fn random_seed() -> u64 {
    env_seed().unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    })
}

fn env_seed() -> Option<u64> {
    std::env::var("XFORM_SEED").ok()?.parse().ok()
}

/// A count from the environment, else `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The xform binary under test: this build's, or `XFORM_BIN` (an older or a release build).
pub fn bin() -> std::path::PathBuf {
    std::env::var_os("XFORM_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_xform").into())
}
