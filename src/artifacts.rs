//! Everything xform writes under `target/`: compiled SQL and `manifest.json`.
//! Files are written to a temporary name and renamed, so a killed run never leaves half a file.

use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value as Json;

use crate::compile::{Compiled, compiled_path};
use crate::project::{Column, NodeKind, TestSpec};

pub const TARGET_DIR: &str = "target";

/// Writes the compiled SQL of the selected nodes; returns how many files were written.
pub fn write_compiled(root: &Path, c: &Compiled) -> std::io::Result<usize> {
    let jobs: Vec<(PathBuf, &str)> = c
        .selected
        .iter()
        .filter_map(|&i| Some((root.join(&*compiled_path(&c.nodes()[i])), c.sql[i].as_deref()?)))
        .collect();
    let dirs: std::collections::BTreeSet<&Path> = jobs.iter().filter_map(|(p, _)| p.parent()).collect();
    for d in dirs {
        std::fs::create_dir_all(d)?;
    }
    // Compiled SQL is derived and rewritten on every run: plain writes, no temp-and-rename.
    jobs.par_iter().map(|(path, sql)| std::fs::write(path, sql)).collect::<std::io::Result<Vec<_>>>()?;
    Ok(jobs.len())
}

/// Writes `path` through a temporary file renamed into place, so readers (and a run that is
/// killed) see the old file or the new one, never half of one.
pub fn atomic_write(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    write(&mut w)?;
    w.into_inner().map_err(|e| e.into_error())?;
    std::fs::rename(&tmp, path)
}

#[derive(Serialize)]
struct Manifest<'a> {
    metadata: Metadata<'a>,
    nodes: std::collections::BTreeMap<&'a str, ManifestNode<'a>>,
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
    relation_name: Option<&'a str>,
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
}

#[derive(Serialize)]
struct DependsOn<'a> {
    nodes: Vec<&'a str>,
}

#[derive(Serialize)]
struct Checksums {
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled: Option<String>,
}

/// `target/manifest.json`: every node with its config, dependencies and checksums.
pub fn write_manifest(root: &Path, c: &Compiled) -> std::io::Result<()> {
    let nodes = c.nodes();
    let entries: Vec<(&str, ManifestNode)> = nodes
        .par_iter()
        .enumerate()
        .map(|(i, n)| {
            let node = ManifestNode {
                unique_id: &n.unique_id,
                resource_type: n.kind,
                name: &n.name,
                original_file_path: &n.path,
                fqn: &n.fqn,
                relation_name: c.relations[i].as_deref(),
                description: &n.description,
                config: n.config.to_json(),
                tags: n.config.tags(),
                depends_on: DependsOn { nodes: c.parents(i).into_iter().map(|p| nodes[p].unique_id.as_str()).collect() },
                columns: n.columns.iter().map(|col| (col.name.as_str(), col)).collect(),
                checksum: Checksums {
                    raw: n.raw.as_deref().map(crate::checksum),
                    compiled: c.sql[i].as_deref().map(crate::checksum),
                },
                test_metadata: n.test.as_ref(),
                compiled_path: c.sql[i].as_ref().map(|_| compiled_path(n).to_string()),
            };
            (n.unique_id.as_str(), node)
        })
        .collect();
    let manifest = Manifest {
        metadata: Metadata {
            xform_version: env!("CARGO_PKG_VERSION"),
            project_name: &c.project.name,
            target: &c.project.target.name,
            adapter_type: c.project.target.kind.name(),
        },
        nodes: entries.into_iter().collect(),
    };
    atomic_write(&root.join(TARGET_DIR).join("manifest.json"), |w| {
        serde_json::to_writer(w, &manifest).map_err(std::io::Error::other)
    })
}
