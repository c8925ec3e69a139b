//! `xform docs generate` (the catalog read from the warehouse, lineage, the site) and `xform
//! docs serve` (the site on 127.0.0.1).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

use super::warehouse::open_session;
use super::{ExitStatus, Global, Loaded, Select, load_and_compile};
use crate::artifacts::{self, Catalog};
use crate::compile::Compiled;
use crate::lineage;

#[derive(clap::Subcommand, Debug)]
pub(super) enum DocsCommand {
    /// Write target/docs/ (a site that works offline and from file://), target/catalog.json
    /// (columns, types and row counts read from the warehouse) and the manifest with column
    /// lineage.
    Generate {
        /// Do not read the warehouse: columns come from the SQL and property files only.
        #[arg(long)]
        empty_catalog: bool,
    },
    /// Serve target/docs/ on 127.0.0.1 until Ctrl-C.
    Serve {
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

pub(super) fn cmd_docs(g: &Global, command: &DocsCommand) -> ExitStatus {
    match command {
        DocsCommand::Generate { empty_catalog } => generate(g, *empty_catalog),
        DocsCommand::Serve { port } => serve(&g.project_dir, *port),
    }
}

fn generate(g: &Global, empty_catalog: bool) -> ExitStatus {
    let started = std::time::Instant::now();
    let Loaded { c, .. } = match load_and_compile(g, &Select::default(), None) {
        Ok(ok) => ok,
        Err(code) => return code,
    };
    let catalog = match empty_catalog {
        true => Catalog::default(),
        false => match read_catalog(&c) {
            Ok(catalog) => catalog,
            Err(code) => return code,
        },
    };
    let known = lineage::known_columns(&c, Some(&catalog.columns_by_id(&c)));
    let l = lineage::compute(&c, &known);
    let now = jiff::Timestamp::now().to_string();
    match artifacts::write_docs(&g.project_dir, &c, &l, &catalog, &now) {
        Ok(w) => {
            say_generated(&c, &l, &w, started.elapsed().as_secs_f64());
            ExitStatus::Success
        }
        Err(e) => {
            errln!("error: cannot write the docs: {e}");
            ExitStatus::Failed
        }
    }
}

/// The columns, types and row counts of every schema the project builds in or reads.
fn read_catalog(c: &Compiled) -> Result<Catalog, ExitStatus> {
    let mut schemas: Vec<String> = c
        .relations
        .iter()
        .flatten()
        .map(|r| r.schema.clone())
        .collect();
    schemas.sort();
    schemas.dedup();
    let target = &c.project.target;
    let Some(sql) = target.dialect().catalog(&schemas) else {
        errln!(
            "error: xform cannot read the catalog of {} targets yet",
            target.kind.name()
        );
        errln!("help: `xform docs generate --empty-catalog` writes the docs without it");
        return Err(ExitStatus::Invalid);
    };
    let (_warehouse, mut session) = open_session(&c.project)?;
    match session.query(&sql, i64::MAX as usize) {
        Ok(rows) => Ok(Catalog::from_rows(rows.rows)),
        Err(e) => {
            errln!("error: cannot read the warehouse's catalog: {e}");
            errln!("help: `xform docs generate --empty-catalog` writes the docs without it");
            Err(ExitStatus::Invalid)
        }
    }
}

fn say_generated(c: &Compiled, l: &lineage::Lineage, w: &artifacts::Written, secs: f64) {
    let unresolved: Vec<&str> = (l.nodes.iter().enumerate())
        .filter(|(_, n)| n.as_ref().is_some_and(|n| !n.unresolved.is_empty()))
        .map(|(i, _)| c.nodes()[i].name.as_str())
        .collect();
    outln!(
        "Wrote the docs of {} nodes ({} model columns with lineage) in {secs:.2}s: {}",
        w.nodes,
        w.columns_with_lineage,
        w.dir.join("index.html").display()
    );
    if let Some(first) = unresolved.first() {
        outln!(
            "Lineage: {} model{} with columns their SQL does not resolve (`xform lineage {first}` says which)",
            unresolved.len(),
            super::plural(unresolved.len())
        );
    }
    outln!("Open the file in a browser, or run `xform docs serve`.");
}

fn serve(project_dir: &Path, port: u16) -> ExitStatus {
    let dir = project_dir.join(artifacts::TARGET_DIR).join("docs");
    if !dir.join("index.html").is_file() {
        errln!("error: {} has no docs yet", dir.display());
        errln!("help: run `xform docs generate` first");
        return ExitStatus::Invalid;
    }
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            errln!("error: cannot listen on 127.0.0.1:{port}: {e}");
            errln!("help: choose another port with `--port`");
            return ExitStatus::Invalid;
        }
    };
    let port = listener.local_addr().map_or(port, |a| a.port());
    outln!(
        "Serving {} at http://127.0.0.1:{port}/ (Ctrl-C to stop)",
        dir.display()
    );
    for stream in listener.incoming().flatten() {
        let dir = dir.clone();
        std::thread::spawn(move || respond(stream, &dir));
    }
    ExitStatus::Success
}

/// Answers one GET or HEAD request with a file under `dir`.
fn respond(stream: TcpStream, dir: &Path) {
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let file = file_for(dir, target).filter(|p| p.is_file());
    let (status, body, kind) = match (method, &file) {
        ("GET" | "HEAD", Some(p)) => match std::fs::read(p) {
            Ok(bytes) => ("200 OK", bytes, content_type(p)),
            Err(_) => ("404 Not Found", b"not found\n".to_vec(), "text/plain"),
        },
        ("GET" | "HEAD", None) => ("404 Not Found", b"not found\n".to_vec(), "text/plain"),
        _ => (
            "405 Method Not Allowed",
            b"GET only\n".to_vec(),
            "text/plain",
        ),
    };
    let mut w = &stream;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = w.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = w.write_all(&body);
    }
}

/// The file a request path names under `dir`: `/` is index.html; `..`, absolute parts and
/// anything that leaves `dir` name nothing.
fn file_for(dir: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decoded(path)?;
    let relative = Path::new(decoded.trim_start_matches('/'));
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let file = dir.join(relative);
    Some(if decoded.ends_with('/') || decoded.is_empty() {
        file.join("index.html")
    } else {
        file
    })
}

fn percent_decoded(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while k < bytes.len() {
        if bytes[k] == b'%' {
            let hex = std::str::from_utf8(bytes.get(k + 1..k + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            k += 3;
        } else {
            out.push(bytes[k]);
            k += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        Some("css") => "text/css",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}
