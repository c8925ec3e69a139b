//! Finding and reading a project's files: walkdir over the configured folders, in a stable
//! order, decoding each file as UTF-8 (a file that is not gets a diagnostic at its first bad
//! byte, and its text is kept lossily so the diagnostic can show it).

use std::io::{Read as _, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use super::settings::Paths;
use crate::diagnostics::{Diagnostic, Loc, line_col};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Model,
    Seed,
    Macro,
    SingularTest,
    Snapshot,
    Properties,
    /// A dbt Python model (`models/x.py`), which xform cannot run.
    PythonModel,
    /// Markdown with `{% docs name %}` blocks, for `doc('name')` in descriptions.
    Docs,
}

/// A discovered file: its kind, its path relative to the project root (with `/`), and the
/// path of its parent folder relative to the folder it was found under.
pub(crate) struct Found {
    pub(crate) kind: FileKind,
    pub(crate) path: Arc<str>,
    /// Folders between the resource root and the file (`["analytics", "part_000"]`).
    pub(crate) folders: Vec<String>,
    pub(crate) stem: String,
}

pub(crate) struct Read {
    pub(crate) found: Found,
    pub(crate) text: Arc<str>,
    /// A seed's file checksum (its text is not read).
    pub(crate) checksum: Option<String>,
}

/// File endings to pick up under a folder, and what they are.
type Kinds = &'static [(&'static str, FileKind)];
const MODEL_FILES: Kinds = &[
    ("sql", FileKind::Model),
    ("py", FileKind::PythonModel),
    ("md", FileKind::Docs),
    ("yml", FileKind::Properties),
    ("yaml", FileKind::Properties),
];
const SEED_FILES: Kinds = &[
    ("csv", FileKind::Seed),
    ("yml", FileKind::Properties),
    ("yaml", FileKind::Properties),
];
const MACRO_FILES: Kinds = &[("sql", FileKind::Macro)];
const SNAPSHOT_FILES: Kinds = &[
    ("sql", FileKind::Snapshot),
    ("yml", FileKind::Properties),
    ("yaml", FileKind::Properties),
];
const TEST_FILES: Kinds = &[
    ("sql", FileKind::SingularTest),
    ("yml", FileKind::Properties),
    ("yaml", FileKind::Properties),
];

/// The project's files, and a diagnostic for each one xform cannot name (not UTF-8).
pub(crate) fn discover(root: &Path, paths: &Paths) -> (Vec<Found>, Vec<Diagnostic>) {
    let (mut out, mut diags) = (Vec::new(), Vec::new());
    let groups: [(&Vec<String>, Kinds); 5] = [
        (&paths.models, MODEL_FILES),
        (&paths.seeds, SEED_FILES),
        (&paths.macros, MACRO_FILES),
        (&paths.tests, TEST_FILES),
        (&paths.snapshots, SNAPSHOT_FILES),
    ];
    for (dirs, kinds) in groups {
        for dir in dirs {
            walk(root, (dir, kinds), &mut out, &mut diags);
        }
    }
    (out, diags)
}

fn walk(
    root: &Path,
    (dir, kinds): (&str, Kinds),
    out: &mut Vec<Found>,
    diags: &mut Vec<Diagnostic>,
) {
    let base = root.join(dir);
    let walker = WalkDir::new(&base)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    for entry in walker.filter_entry(is_visible).filter_map(Result::ok) {
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(&base) else {
            continue;
        };
        let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or("");
        let Some(&(_, kind)) = kinds.iter().find(|(e, _)| *e == ext) else {
            continue;
        };
        if rel.to_str().is_none() {
            diags.push(name_not_utf8(dir, rel));
            continue;
        }
        out.push(found(dir, rel, kind));
    }
}

/// The walk's root, and anything whose name does not start with a dot.
fn is_visible(e: &walkdir::DirEntry) -> bool {
    e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.')
}

fn name_not_utf8(dir: &str, rel: &Path) -> Diagnostic {
    let shown = format!("{:?}", Path::new(dir).join(rel));
    Diagnostic::error(format!("the file name {shown} is not valid UTF-8"))
        .help("rename it: file and folder names become node names, config paths and relations")
}

/// The file at `rel` under the resource folder `dir`, found as a `kind` file.
fn found(dir: &str, rel: &Path, mut kind: FileKind) -> Found {
    let folders = folders_of(rel);
    // tests/generic/*.sql hold `{% test %}` definitions, i.e. macros.
    if kind == FileKind::SingularTest && folders.first().is_some_and(|f| f == "generic") {
        kind = FileKind::Macro;
    }
    let stem = rel
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        rel.to_string_lossy().replace('\\', "/")
    );
    Found {
        kind,
        path: path.into(),
        folders,
        stem,
    }
}

/// The folders a relative path passes through.
fn folders_of(rel: &Path) -> Vec<String> {
    rel.parent()
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads every file in parallel; seeds are not read (the runner streams them), only
/// checksummed (what `--state` compares).
pub(crate) fn read_all(root: &Path, found: Vec<Found>) -> (Vec<Read>, Vec<Diagnostic>) {
    let (reads, diags): (Vec<Read>, Vec<Option<Diagnostic>>) =
        found.into_par_iter().map(|f| read_one(root, f)).unzip();
    (reads, diags.into_iter().flatten().collect())
}

/// One file's text (a seed's checksum instead), and a diagnostic if it cannot be read whole.
fn read_one(root: &Path, f: Found) -> (Read, Option<Diagnostic>) {
    if f.kind == FileKind::Seed {
        let checksum = file_checksum(&root.join(&*f.path));
        return (
            Read {
                found: f,
                text: Arc::from(""),
                checksum,
            },
            None,
        );
    }
    let (text, diag) = match std::fs::read(root.join(&*f.path)) {
        Ok(bytes) => decode(&f.path, bytes),
        Err(e) => (
            Arc::from(""),
            Some(Diagnostic::error(format!("cannot read {}: {e}", f.path))),
        ),
    };
    let read = Read {
        found: f,
        text,
        checksum: None,
    };
    (read, diag)
}

/// A file's bytes as text; when they are not UTF-8, the text kept lossily and a diagnostic at
/// the first bad byte.
pub(super) fn decode(path: &Arc<str>, bytes: Vec<u8>) -> (Arc<str>, Option<Diagnostic>) {
    match String::from_utf8(bytes) {
        Ok(mut s) => {
            if s.starts_with('\u{feff}') {
                s.drain(..3);
            }
            (Arc::from(s), None)
        }
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text: Arc<str> = Arc::from(String::from_utf8_lossy(e.as_bytes()).into_owned());
            let (line, col) = line_col(&text, at);
            let d = Diagnostic::error(format!(
                "{path} is not valid UTF-8 (line {line}, column {col})"
            ))
            .at(Loc::new(path, at..at + '\u{fffd}'.len_utf8()))
            .label("invalid byte here")
            .help("save the file as UTF-8 (files exported from Excel are often CP949/EUC-KR)");
            (text, Some(d))
        }
    }
}

/// Data files up to this size are checksummed whole.
const WHOLE: u64 = 16 << 20;
/// How much of each end of a larger file is checksummed.
const PART: usize = 1 << 20;

/// A checksum of a data file (a seed's CSV): SHA-256 of the bytes; above 16 MiB, of its size
/// and its first and last MiB, so large seeds do not slow every compile. None when unreadable.
fn file_checksum(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut hasher = Sha256::new();
    if len <= WHOLE {
        let mut bytes = Vec::with_capacity(len as usize);
        f.read_to_end(&mut bytes).ok()?;
        hasher.update(&bytes);
    } else {
        hash_ends(&mut f, len, &mut hasher)?;
    }
    Some(crate::hex(&hasher.finalize()))
}

/// SHA-256 of a data file's whole bytes, read a MiB at a time: what `--reuse` compares, where
/// a change anywhere in a large seed must count.
pub(crate) fn file_digest(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut part = vec![0; PART];
    loop {
        match f.read(&mut part)? {
            0 => break,
            n => hasher.update(&part[..n]),
        }
    }
    Ok(crate::hex(&hasher.finalize()))
}

/// Hashes a large file's size and its first and last [`PART`] bytes.
fn hash_ends(f: &mut std::fs::File, len: u64, hasher: &mut Sha256) -> Option<()> {
    let mut part = vec![0; PART];
    hasher.update(len.to_le_bytes());
    f.read_exact(&mut part).ok()?;
    hasher.update(&part);
    f.seek(SeekFrom::End(-(PART as i64))).ok()?;
    f.read_exact(&mut part).ok()?;
    hasher.update(&part);
    Some(())
}
