//! Everything xform writes under `target/`: compiled SQL and `manifest.json` here, what a run
//! did in `run.rs`.
//! Files are written to a temporary name and renamed, so a killed run never leaves half a file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value as Json;

use crate::compile::{Compiled, compiled_path};
use crate::lineage::Lineage;
use crate::project::{Column, NodeKind, TestSpec};

pub(crate) mod deps;
mod docs;
pub(crate) use docs::{Catalog, Written, write_docs};
mod run;
pub(crate) use run::{
    RunInfo, clean, run_path, write_json, write_new_project, write_run_results, write_run_sql,
};

pub(crate) const TARGET_DIR: &str = "target";

/// Writes the compiled SQL of the selected nodes; returns how many files were written.
pub(crate) fn write_compiled(root: &Path, c: &Compiled) -> std::io::Result<usize> {
    let jobs: Vec<(PathBuf, &str)> = c
        .selected
        .iter()
        .filter_map(|&i| compiled_file(root, c, i))
        .collect();
    write_derived(&root.join(TARGET_DIR).join("compiled"), &jobs)?;
    Ok(jobs.len())
}

/// Where node `i`'s compiled SQL goes and the SQL, if it has any.
fn compiled_file<'c>(root: &Path, c: &'c Compiled, i: usize) -> Option<(PathBuf, &'c str)> {
    let sql = c.sql[i].as_deref()?;
    Some((root.join(&*compiled_path(&c.nodes()[i])), sql))
}

/// Writes many derived files (compiled SQL, run SQL) under `tree` (`target/compiled`,
/// `target/run`) in parallel: plain writes, no temp-and-rename, skipped when unchanged; their
/// folders are created first, and a file in a folder that did not exist before is written
/// without looking for an old one. What an earlier layout of the project left in the way (a
/// file `x.sql` where the folder `x.sql/` now goes, or the reverse) is derived too, and
/// replaced. Errors name the path.
fn write_derived<T: AsRef<[u8]> + Sync>(tree: &Path, files: &[(PathBuf, T)]) -> io::Result<()> {
    let dirs: std::collections::BTreeSet<&Path> =
        files.iter().filter_map(|(p, _)| p.parent()).collect();
    let mut new_dirs = std::collections::HashSet::new();
    for d in dirs {
        if !d.is_dir() {
            new_dirs.insert(d);
        }
        make_dir(tree, d)?;
    }
    files.par_iter().try_for_each(|(path, bytes)| {
        let bytes = bytes.as_ref();
        match path.parent().is_some_and(|d| new_dirs.contains(d)) {
            true => std::fs::write(path, bytes).map_err(naming(path)),
            false => write_if_changed(path, bytes),
        }
    })
}

/// Creates `dir`, removing a file inside `tree` that stands where one of its folders goes.
fn make_dir(tree: &Path, dir: &Path) -> io::Result<()> {
    let in_the_way = dir
        .ancestors()
        .take_while(|a| a.starts_with(tree))
        .find(|a| a.is_file());
    if let Some(file) = in_the_way {
        std::fs::remove_file(file).map_err(naming(file))?;
    }
    std::fs::create_dir_all(dir).map_err(naming(dir))
}

/// Writes `bytes` to `path` unless it holds them already; a folder in its place is removed.
fn write_if_changed(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match std::fs::read(path) {
        Ok(old) if old == bytes => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => {
            std::fs::remove_dir_all(path).map_err(naming(path))?;
        }
        _ => {}
    }
    std::fs::write(path, bytes).map_err(naming(path))
}

/// An IO error that says which path it happened at.
fn naming(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn sql_cache_path(root: &Path) -> PathBuf {
    root.join(TARGET_DIR).join(".xform").join("sql-clean")
}

/// Keys of SQL the previous compile found clean (empty when there is no cache).
pub(crate) fn read_sql_cache(root: &Path) -> std::collections::HashSet<String> {
    std::fs::read_to_string(sql_cache_path(root))
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

pub(crate) fn write_sql_cache(root: &Path, c: &Compiled) -> std::io::Result<()> {
    atomic_write(&sql_cache_path(root), |w| {
        for key in &c.sql_clean {
            writeln!(w, "{key}")?;
        }
        Ok(())
    })
}

/// Writes `path` through a temporary file renamed into place, so readers (and a run that is
/// killed) see the old file or the new one, never half of one.
pub(crate) fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(naming(dir))?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(naming(dir))?;
    let mut w = std::io::BufWriter::new(tmp);
    write(&mut w).map_err(naming(path))?;
    let tmp = w
        .into_inner()
        .map_err(|e| e.into_error())
        .map_err(naming(path))?;
    tmp.persist(path)
        .map(drop)
        .map_err(|e| naming(path)(e.error))
}

#[derive(Serialize)]
struct Metadata<'a> {
    xform_version: &'static str,
    project_name: &'a str,
    target: &'a str,
    adapter_type: &'static str,
}

#[derive(Serialize)]
struct ManifestNode<'a> {
    unique_id: &'a str,
    resource_type: NodeKind,
    name: &'a str,
    original_file_path: &'a str,
    fqn: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    relation_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<&'a str>,
    description: &'a str,
    config: Json,
    tags: Vec<&'a str>,
    depends_on: DependsOn<'a>,
    columns: std::collections::BTreeMap<&'a str, &'a Column>,
    checksum: Checksums,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_metadata: Option<&'a TestSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled_path: Option<String>,
    /// The compiled SQL, for `--state` comparisons and `xform diff`.
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled_code: Option<&'a str>,
    /// An incremental model's SQL run on top of its table.
    #[serde(skip_serializing_if = "Option::is_none")]
    incremental_code: Option<&'a str>,
    /// Per output column, the parents' columns it reads (`xform docs generate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    column_lineage: Option<Json>,
}

#[derive(Serialize)]
struct DependsOn<'a> {
    nodes: Vec<&'a str>,
    macros: &'a [String],
}

#[derive(Serialize)]
struct Checksums {
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled: Option<String>,
    /// A seed's file.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

/// `target/manifest.json`: every node with its config, dependencies and checksums.
pub(crate) fn write_manifest(root: &Path, c: &Compiled) -> std::io::Result<()> {
    write_manifest_with(root, c, None)
}

/// The manifest, with each model's column lineage when given.
fn write_manifest_with(
    root: &Path,
    c: &Compiled,
    lineage: Option<&Lineage>,
) -> std::io::Result<()> {
    let metadata = Metadata {
        xform_version: env!("CARGO_PKG_VERSION"),
        project_name: &c.project.name,
        target: &c.project.target.name,
        adapter_type: c.project.target.kind.name(),
    };
    atomic_write(&root.join(TARGET_DIR).join("manifest.json"), |w| {
        w.write_all(b"{\"metadata\":")?;
        serde_json::to_writer(&mut *w, &metadata).map_err(std::io::Error::other)?;
        w.write_all(b",\"nodes\":{")?;
        write_manifest_nodes(w, c, lineage)?;
        w.write_all(b"},\"macros\":")?;
        serde_json::to_writer(&mut *w, &manifest_macros(c)).map_err(std::io::Error::other)?;
        w.write_all(b"}")
    })
}

/// Every node's entry, by unique id, separated by commas.
fn write_manifest_nodes(
    w: &mut dyn Write,
    c: &Compiled,
    lineage: Option<&Lineage>,
) -> std::io::Result<()> {
    let nodes = c.nodes();
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by(|&a, &b| nodes[a].unique_id.cmp(&nodes[b].unique_id));
    // Serialized in parallel a chunk at a time, so memory stays bounded.
    for (k, chunk) in order.chunks(2048).enumerate() {
        let entries: Vec<Vec<u8>> = chunk
            .par_iter()
            .map(|&i| manifest_entry(c, i, lineage))
            .collect::<Result<_, _>>()?;
        if k > 0 {
            w.write_all(b",")?;
        }
        w.write_all(&entries.join(&b","[..]))?;
    }
    Ok(())
}

/// Each macro's file and checksum, by name.
fn manifest_macros(c: &Compiled) -> std::collections::BTreeMap<String, Json> {
    crate::state::macro_checksums(&c.project)
        .into_iter()
        .map(|(name, (path, sum))| {
            (
                name,
                serde_json::json!({"original_file_path": path, "checksum": sum}),
            )
        })
        .collect()
}

/// `"unique_id": {...}` for node `i`.
fn manifest_entry(c: &Compiled, i: usize, lineage: Option<&Lineage>) -> std::io::Result<Vec<u8>> {
    let n = &c.nodes()[i];
    let mut out = serde_json::to_vec(&n.unique_id).map_err(std::io::Error::other)?;
    out.push(b':');
    let mut node = manifest_node(c, i);
    node.column_lineage = lineage.and_then(|l| column_lineage(c, l, i));
    serde_json::to_writer(&mut out, &node).map_err(std::io::Error::other)?;
    Ok(out)
}

fn manifest_node(c: &Compiled, i: usize) -> ManifestNode<'_> {
    let n = &c.nodes()[i];
    ManifestNode {
        unique_id: &n.unique_id,
        resource_type: n.kind,
        name: &n.name,
        original_file_path: &n.path,
        fqn: &n.fqn,
        relation_name: c.relation_sql(i),
        schema: c.relations[i].as_ref().map(|r| r.schema.as_str()),
        alias: c.relations[i].as_ref().map(|r| r.name.as_str()),
        description: &n.description,
        config: n.config.to_json(),
        tags: n.config.tags(),
        depends_on: depends_on(c, i),
        columns: n
            .columns
            .iter()
            .map(|col| (col.name.as_str(), col))
            .collect(),
        checksum: Checksums {
            raw: n.raw.as_deref().map(crate::checksum),
            compiled: c.checksums[i].clone(),
            file: n.checksum.clone(),
        },
        test_metadata: n.test.as_ref(),
        compiled_path: c.compiled_path(i),
        compiled_code: c.sql[i].as_deref(),
        incremental_code: c.incremental_sql[i].as_deref(),
        column_lineage: None,
    }
}

/// `{column: {"constant": bool, "from": [{"node", "column", "kind", "expression"}]}}`.
fn column_lineage(c: &Compiled, l: &Lineage, i: usize) -> Option<Json> {
    let cols = l.nodes[i].as_ref()?.columns.iter().map(|col| {
        let from: Vec<Json> = (col.from.iter())
            .map(|e| {
                serde_json::json!({"node": c.nodes()[e.node].unique_id, "column": e.column,
                    "kind": e.kind.name(), "expression": e.expr})
            })
            .collect();
        (
            col.name.clone(),
            serde_json::json!({"constant": col.constant, "from": from}),
        )
    });
    Some(Json::Object(cols.collect()))
}

/// The unique ids of node `i`'s parents and the macros it used.
fn depends_on(c: &Compiled, i: usize) -> DependsOn<'_> {
    let nodes = c.nodes();
    DependsOn {
        nodes: c
            .parents(i)
            .into_iter()
            .map(|p| nodes[p].unique_id.as_str())
            .collect(),
        macros: &c.macros_used[i],
    }
}
