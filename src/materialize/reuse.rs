//! Nothing changed, nothing rebuilt (`--reuse`). Every build records beside the relation it
//! publishes, in the same transaction, a *logic key* (a hash of what decides what the build
//! does: compiled SQL, config, hooks, materialization, dialect, a seed's bytes), a *shape* (its
//! logic and its inputs' shapes: what its columns depend on), a *data version* and the inputs
//! it read with theirs. A later run reuses the published relation instead of building it when
//! the relation exists, its logic key is equal and every input's data version is equal — a
//! view, whose rows are always its parents', when their shapes are. Anything unknown (a source
//! without `loaded_at_field`, SQL that calls `now()`, a model rendered against the warehouse,
//! a microbatch's clock) builds. Tests are reused with their relation, when their own key (their
//! SQL and the data versions they read) is one recorded as passing on it.
//!
//! Data versions: a table's is new each time it is built and kept while it is reused; a view's
//! or an ephemeral model's is derived from its logic and its parents' versions; a source's is
//! its latest `loaded_at`, or for files (`dt=` partitions in a lake) their listing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::{Action, Job};
use crate::adapter::{BuildRecord, DbResult, RelKind, Relation, Session};
use crate::compile::Compiled;
use crate::project::{self, NodeKind};

/// Between a logic key and why a build is never reused, in its record.
const NEVER: &str = " never: ";

/// Config keys that do not change what a build does.
const DOC_KEYS: &[&str] = &[
    "tags",
    "meta",
    "docs",
    "group",
    "description",
    "persist_docs",
];

/// What a run knows to decide, node by node, whether to build or reuse.
pub(crate) struct Reuse {
    /// The table build records are kept in.
    pub(crate) table: Relation,
    /// Whether this run reuses what it can (else it only records what it builds).
    decides: bool,
    records: HashMap<String, BuildRecord>,
    /// Each node's logic key.
    logic: Vec<String>,
    /// Why a node's SQL makes it never reused (it calls something volatile), if it does.
    volatile: Vec<Option<String>>,
    shape: Vec<Option<String>>,
    /// Sources' data versions, where they have one.
    signals: HashMap<usize, String>,
    /// The data versions of the nodes built or reused so far in this run.
    versions: Mutex<HashMap<usize, Option<String>>>,
}

/// A job's fate: reused, with why it may be; or built, with why it must be (None: reuse is
/// not asked for).
pub(crate) enum Decision {
    Reuse(String),
    Build(Option<String>),
}

impl Reuse {
    /// Reads the build records (creating their table when `decides` in a run that builds and
    /// there is none yet).
    /// None when the warehouse keeps none and this run does not ask for reuse.
    pub(crate) fn prepare(
        session: &mut dyn Session,
        c: &Compiled,
        (root, jobs): (&Path, &[Job]),
        decides: bool,
    ) -> DbResult<Option<Reuse>> {
        let table = records_table(c);
        let records = match session.build_records(&table)? {
            Some(records) => records,
            // `xform test` writes no table of its own.
            None if decides && jobs.iter().any(Job::builds) => {
                session.create_schemas(std::slice::from_ref(&table.schema), &mut Vec::new())?;
                session.keep_build_records(&table, &mut Vec::new())?;
                Vec::new()
            }
            None => return Ok(None),
        };
        let (logic, volatile): (Vec<String>, Vec<Option<String>>) = (0..c.nodes().len())
            .into_par_iter()
            .map(|i| logic_key(c, root, i))
            .unzip();
        let shape = shapes(c, &logic);
        let signals = match decides {
            true => signals(session, c, jobs),
            false => HashMap::new(),
        };
        Ok(Some(Reuse {
            table,
            decides,
            records: records
                .into_iter()
                .map(|r| (r.relation.clone(), r))
                .collect(),
            logic,
            volatile,
            shape,
            signals,
            versions: Mutex::default(),
        }))
    }

    /// Whether job `job` (whose relation is `replaces` now) is built or reused.
    pub(crate) fn decide(&self, c: &Compiled, job: &Job, replaces: Option<RelKind>) -> Decision {
        if !self.decides || !job.builds() {
            return Decision::Build(None);
        }
        match self.reusable(c, job, replaces) {
            Ok(why) => Decision::Reuse(why),
            Err(why) => Decision::Build(Some(why)),
        }
    }

    fn reusable(
        &self,
        c: &Compiled,
        job: &Job,
        replaces: Option<RelKind>,
    ) -> Result<String, String> {
        let record = self.record_of(job).ok_or("no build of it is recorded")?;
        if replaces != Some(built_kind(&job.action)) {
            return Err("it is not in the warehouse as recorded".into());
        }
        if record.logic != self.logic[job.node] {
            // Recorded as never reused: with the same logic, for the same reason.
            let never = record
                .logic
                .strip_prefix(&format!("{}{NEVER}", self.logic[job.node]));
            return Err(never.unwrap_or("its SQL or config changed").to_string());
        }
        self.same_inputs(c, job, &record.inputs)?;
        Ok(format!("unchanged since {}", record.built_at))
    }

    /// Whether the job's inputs are what its record says they were: the same data versions
    /// (for a view, the same shapes); else why not.
    fn same_inputs(&self, c: &Compiled, job: &Job, recorded: &str) -> Result<(), String> {
        let recorded: BTreeMap<String, (String, String)> =
            serde_json::from_str(recorded).map_err(|_| "its record is unreadable")?;
        let view = matches!(job.action, Action::View);
        let inputs = self.inputs(c, job.node);
        if recorded.len() != inputs.len() {
            return Err("what it reads changed".into());
        }
        for (id, (shape, data)) in inputs {
            let (was_shape, was_data) = recorded.get(&id).ok_or("what it reads changed")?;
            let (now, was) = match view {
                true => (shape, was_shape),
                false => (data, was_data),
            };
            if now.as_ref() != Some(was) {
                return Err(changed(&id, view, now.is_none()));
            }
        }
        Ok(())
    }

    /// The record of the job's relation.
    fn record_of(&self, job: &Job) -> Option<&BuildRecord> {
        self.records.get(&job.relation.as_ref()?.to_string())
    }

    /// Each input of node `i`: what its SQL reads, through ephemeral models.
    fn inputs(&self, c: &Compiled, i: usize) -> Vec<Input> {
        c.reads(i)
            .into_iter()
            .map(|p| {
                let id = c.nodes()[p].unique_id.clone();
                (id, (self.shape[p].clone(), self.data_version(c, p)))
            })
            .collect()
    }

    /// Node `p`'s data version as of now, if it is known.
    fn data_version(&self, c: &Compiled, p: usize) -> Option<String> {
        if let Some(v) = self.version_settled(p) {
            return v;
        }
        let n = &c.nodes()[p];
        match n.kind {
            NodeKind::Source => self.signals.get(&p).cloned(),
            NodeKind::Model if derived(c, p) => self.derived_version(c, p),
            _ => {
                // Not built in this run: the rows of the build recorded.
                let relation = c.relations[p].as_ref()?;
                Some(self.records.get(&relation.to_string())?.data.clone())
            }
        }
    }

    fn version_settled(&self, p: usize) -> Option<Option<String>> {
        let versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        versions.get(&p).cloned()
    }

    /// A view's or an ephemeral model's data version: its logic over its parents' versions.
    fn derived_version(&self, c: &Compiled, p: usize) -> Option<String> {
        let mut parts = vec![self.logic[p].clone()];
        for q in c.reads(p) {
            parts.push(self.data_version(c, q)?);
        }
        Some(digest(&parts))
    }

    /// Records what became of job `job`: reused (its recorded data version stands) or built
    /// (`built`: a new one). A failed job's version is left unknown.
    pub(crate) fn settle(&self, c: &Compiled, job: &Job, outcome: Settled) {
        let i = job.node;
        let version = match outcome {
            Settled::Failed => None,
            _ if derived(c, i) => self.derived_version(c, i),
            Settled::Reused => self.record_of(job).map(|r| r.data.clone()),
            Settled::Built => Some(self.new_version(c, i)),
        };
        let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        versions.insert(i, version);
    }

    fn new_version(&self, c: &Compiled, i: usize) -> String {
        format!("{}/{}", c.project.invocation.1, c.nodes()[i].unique_id)
    }

    /// What the build of job `job` records, in the table of records.
    pub(crate) fn record(&self, c: &Compiled, job: &Job) -> Option<(Relation, BuildRecord)> {
        let i = job.node;
        let relation = job.relation.as_ref()?;
        let inputs: BTreeMap<String, (String, String)> = self
            .inputs(c, i)
            .into_iter()
            .map(|(id, (shape, data))| (id, (shape.unwrap_or_default(), data.unwrap_or_default())))
            .collect();
        let data = match derived(c, i) {
            true => self.derived_version(c, i).unwrap_or_default(),
            false => self.new_version(c, i),
        };
        // A build never to be reused records its logic with why, which no logic key equals.
        let logic = match self.never_reused(c, job) {
            Some(why) => format!("{}{NEVER}{why}", self.logic[i]),
            None => self.logic[i].clone(),
        };
        let record = BuildRecord {
            relation: relation.to_string(),
            node: c.nodes()[i].unique_id.clone(),
            run: c.project.invocation.1.clone(),
            built_at: c
                .project
                .invocation
                .0
                .strftime("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
            logic,
            shape: self.shape[i].clone().unwrap_or_default(),
            data,
            inputs: serde_json::to_string(&inputs).unwrap_or_default(),
            tests: "[]".into(),
        };
        Some((self.table.clone(), record))
    }

    /// Why a job's node is never reused: it renders against the warehouse, follows the clock
    /// (a microbatch model), or its SQL calls something volatile.
    fn never_reused(&self, c: &Compiled, job: &Job) -> Option<String> {
        let i = job.node;
        if c.at_run[i] {
            return Some("its SQL is rendered against the warehouse".into());
        }
        if let Action::Incremental(spec) = &job.action
            && matches!(
                spec.strategy,
                super::incremental::StrategyKind::Microbatch(_)
            )
        {
            return Some("a microbatch model's batches follow the clock".into());
        }
        self.volatile[i].clone()
    }

    /// The key of test `t` as it runs now: its logic and the data versions it reads. None
    /// when one of them is unknown.
    pub(crate) fn test_key(&self, c: &Compiled, t: usize) -> Option<String> {
        let mut parts = vec![self.logic[t].clone()];
        for p in c.reads(t) {
            parts.push(self.data_version(c, p)?);
        }
        Some(digest(&parts))
    }

    /// Whether this run reuses tests that passed on a relation as it is now.
    pub(crate) fn decides(&self) -> bool {
        self.decides
    }

    /// The keys of the tests recorded as passing on `relation`.
    pub(crate) fn tests_passed(&self, relation: &Relation) -> Vec<String> {
        let recorded = self.records.get(&relation.to_string());
        serde_json::from_str(recorded.map_or("[]", |r| r.tests.as_str())).unwrap_or_default()
    }

    /// Whether test `t` passed on `relation` as it is now, in the build recorded.
    pub(crate) fn test_passed(&self, c: &Compiled, relation: &Relation, t: usize) -> bool {
        self.test_key(c, t)
            .is_some_and(|key| self.tests_passed(relation).contains(&key))
    }
}

/// An input by unique id, with its shape and data version (None: unknown).
type Input = (String, (Option<String>, Option<String>));

/// What became of a job, for `Reuse::settle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    Reused,
    Built,
    Failed,
}

/// Where build records are kept: `xform_builds` in the target's own schema.
fn records_table(c: &Compiled) -> Relation {
    let target = &c.project.target;
    let name = target.dialect().stored_name("xform_builds");
    Relation::new(target.schema_name(&target.schema), name)
}

/// Why a job builds because of input `id`.
fn changed(id: &str, view: bool, unknown: bool) -> String {
    match (unknown, view) {
        (true, _) => {
            format!(
                "what `{id}` holds is not known (no build recorded, no loaded_at_field, no files listed here)"
            )
        }
        (false, true) => format!("`{id}` changed its logic"),
        (false, false) => format!("`{id}` changed"),
    }
}

/// Whether node `i`'s data version is derived from its parents' (a view, an ephemeral model).
fn derived(c: &Compiled, i: usize) -> bool {
    let n = &c.nodes()[i];
    n.kind == NodeKind::Model && matches!(n.config.materialized(), "view" | "ephemeral")
}

fn built_kind(action: &Action) -> RelKind {
    match action {
        Action::View => RelKind::View,
        _ => RelKind::Table,
    }
}

/// A hash of everything that decides what building node `i` does, and why its SQL makes it
/// never reused, if it does (see `sql::tokens`).
fn logic_key(c: &Compiled, root: &Path, i: usize) -> (String, Option<String>) {
    let n = &c.nodes()[i];
    let mut config = n.config.to_json();
    if let Json::Object(map) = &mut config {
        map.retain(|k, _| !DOC_KEYS.contains(&k.as_str()));
    }
    let hooks = |all: &[Vec<String>]| all.get(i).cloned().unwrap_or_default().join(";\n");
    let seed = match n.kind {
        NodeKind::Seed => project::file_digest(&root.join(&*n.path))
            .unwrap_or_else(|e| format!("unreadable: {e}")),
        _ => String::new(),
    };
    let relation = c.relations[i].as_ref().map(ToString::to_string);
    let mut never = None;
    let mut sql = |text: &Option<String>| {
        let text = text.as_deref().unwrap_or_default();
        match crate::sql::tokens(c.project.target.dialect(), text) {
            Ok(t) => {
                let calls = t.volatile.map(|f| format!("its SQL calls `{f}`"));
                never = never.take().or(calls);
                t.key
            }
            Err(_) => {
                never = Some("its SQL could not be read".into());
                text.to_string()
            }
        }
    };
    let (plain, incremental) = (sql(&c.sql[i]), sql(&c.incremental_sql[i]));
    let key = digest(&[
        env!("CARGO_PKG_VERSION").to_string(),
        c.project.target.kind.name().to_string(),
        format!("{:?} empty={} at_run={}", n.kind, c.empty(), c.at_run[i]),
        relation.unwrap_or_default(),
        plain,
        incremental,
        config.to_string(),
        hooks(&c.hooks.pre),
        hooks(&c.hooks.post),
        seed,
    ]);
    (key, never)
}

/// Each node's shape: a hash of its logic and its inputs' shapes, parents first. A source's
/// is its name: its columns are the warehouse's (a view over a source whose columns changed,
/// and nothing else, is not rebuilt).
fn shapes(c: &Compiled, logic: &[String]) -> Vec<Option<String>> {
    let mut shape: Vec<Option<String>> = vec![None; c.nodes().len()];
    for &i in c.graph.order() {
        if c.nodes()[i].kind == NodeKind::Source {
            shape[i] = Some(digest(&[c.relation_sql(i).unwrap_or_default()]));
            continue;
        }
        let mut parts = vec![logic[i].clone()];
        let parents: Option<Vec<String>> =
            c.reads(i).into_iter().map(|p| shape[p].clone()).collect();
        shape[i] = parents.map(|p| {
            parts.extend(p);
            digest(&parts)
        });
    }
    shape
}

/// The data versions of the sources the jobs read (see `signal`).
fn signals(session: &mut dyn Session, c: &Compiled, jobs: &[Job]) -> HashMap<usize, String> {
    let mut sources: Vec<usize> = jobs
        .iter()
        .filter(|j| j.builds())
        .flat_map(|j| c.reads(j.node))
        .filter(|&p| c.nodes()[p].kind == NodeKind::Source)
        .collect();
    sources.sort_unstable();
    sources.dedup();
    sources
        .into_iter()
        .filter_map(|p| Some((p, signal(session, c, p)?)))
        .collect()
}

/// A source's data version: for files (`external_location`), their listing; else its latest
/// `loaded_at_field` (with its freshness `filter`), as text. None without one, or when it
/// cannot be read.
fn signal(session: &mut dyn Session, c: &Compiled, p: usize) -> Option<String> {
    let n = &c.nodes()[p];
    if let Some(listing) = n.external().and_then(|files| files_signal(c, &files)) {
        return Some(listing);
    }
    let field = n.config.str("loaded_at_field")?;
    let filter = n
        .config
        .get("freshness")
        .and_then(|f| f.get("filter"))
        .and_then(Json::as_str);
    let from = c.relation_sql(p)?;
    let latest = session.max_loaded_at(&from, field, filter).ok()?;
    Some(match latest {
        Some(t) => format!("loaded_at {t}"),
        None => "no rows".into(),
    })
}

/// The listing of a file source's files: each path (under the project), size, modification
/// and change time and inode, hashed — a new `dt=` partition, a file replaced or removed
/// changes it. A location that is a folder is listed whole (as Spark reads it), else as a
/// glob (as DuckDB reads it). None where the warehouse does not read the files itself, for a
/// URL (the warehouse's to read), and for a location that matches no file here or cannot be
/// listed: then the source's `loaded_at_field` decides, if it has one.
fn files_signal(c: &Compiled, files: &project::External) -> Option<String> {
    let (root, location) = (&c.project.root, &files.location);
    let dialect = c.project.target.dialect();
    let read_here = dialect.read_files(&files.format, location, files.hive_partitioning);
    if read_here.is_none() || location.contains("://") {
        return None;
    }
    let path = root.join(location);
    let paths: Vec<std::path::PathBuf> = match path.is_dir() {
        true => walkdir::WalkDir::new(&path)
            .into_iter()
            .map(|e| e.map(walkdir::DirEntry::into_path))
            .collect::<Result<_, _>>()
            .ok()?,
        false => {
            // The project's own folder is a path, not a pattern (`proj[1]`).
            let pattern = match std::path::Path::new(location).is_absolute() {
                true => location.clone(),
                false => format!("{}/{location}", glob::Pattern::escape(root.to_str()?)),
            };
            glob::glob(&pattern).ok()?.collect::<Result<_, _>>().ok()?
        }
    };
    let mut listing = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(&path).ok()?;
        if meta.is_file() {
            let shown = path.strip_prefix(root).unwrap_or(&path).to_string_lossy();
            listing.push(format!("{shown}\t{}", file_stamp(&meta)?));
        }
    }
    listing.sort_unstable();
    match listing.len() {
        0 => None,
        n => Some(format!("{n} files {}", digest(&listing))),
    }
}

/// A file's size and times: with its change time and inode where there are ones, which no
/// copy that keeps the modification time (`cp -p`, `tar x`) keeps.
fn file_stamp(meta: &std::fs::Metadata) -> Option<String> {
    let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH);
    let stamp = format!("{}\t{}", meta.len(), modified.ok()?.as_nanos());
    #[cfg(unix)]
    let stamp = {
        use std::os::unix::fs::MetadataExt;
        format!(
            "{stamp}\t{}.{}\t{}",
            meta.ctime(),
            meta.ctime_nsec(),
            meta.ino()
        )
    };
    Some(stamp)
}

/// A short hex hash of `parts`, each ended so that no two lists hash alike.
fn digest(parts: &[String]) -> String {
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update((p.len() as u64).to_le_bytes());
        hasher.update(p.as_bytes());
    }
    crate::hex(&hasher.finalize()[..16])
}
