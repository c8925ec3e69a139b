//! What building a node means: a seed becomes a table loaded from its CSV, a model a view or a
//! table from its compiled SQL; an ephemeral model is nothing (it lives inlined in its
//! children). Every build is staged and then published through the adapter, so the previous
//! relation stays in place until the new one is complete. No SQL is written here.

pub mod seed;

use std::path::Path;

use crate::adapter::{Build, DbError, RelKind, Relation, Session, Staged};
use crate::compile::Compiled;
use crate::diagnostics::Diagnostic;
use crate::project::NodeKind;

/// How a node is built.
#[derive(Clone, Debug)]
pub enum Action {
    Seed(seed::SeedSpec),
    View,
    Table,
}

impl Action {
    pub fn label(&self) -> &'static str {
        match self {
            Action::Seed(_) => "seed",
            Action::View => "view",
            Action::Table => "table",
        }
    }
}

/// One node to build.
#[derive(Clone, Debug)]
pub struct Job {
    pub node: usize,
    pub relation: Relation,
    pub action: Action,
}

/// The job that builds node `i`, if building it does anything. Settings that cannot work (a
/// seed's unknown encoding) are diagnostics, found before anything runs.
pub fn plan(c: &Compiled, i: usize) -> Result<Option<Job>, Vec<Diagnostic>> {
    let n = &c.nodes()[i];
    let Some(relation) = c.relations[i].clone() else {
        return Ok(None);
    };
    let action = match n.kind {
        NodeKind::Seed => Action::Seed(seed::spec(n)?),
        NodeKind::Model => match n.config.materialized() {
            "view" => Action::View,
            // Incremental strategies are not implemented yet: such models are rebuilt in full.
            "table" | "incremental" => Action::Table,
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(Job {
        node: i,
        relation,
        action,
    }))
}

/// A build that failed: what the user reads.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub interrupted: bool,
}

/// Builds a job's relation and swaps it in; `replaces` is what exists under its name now.
/// Every statement executed is appended to `log`.
pub fn build(
    session: &mut dyn Session,
    c: &Compiled,
    root: &Path,
    (job, replaces): (&Job, Option<RelKind>),
    log: &mut Vec<String>,
) -> Result<Staged, Failure> {
    let sql = c.sql[job.node].as_deref().unwrap_or_default();
    let csv;
    let what = match &job.action {
        Action::View => Build::View(sql),
        Action::Table => Build::Table(sql),
        Action::Seed(spec) => {
            csv = seed::source(root, spec).map_err(|message| Failure {
                message,
                interrupted: false,
            })?;
            Build::Seed(&csv)
        }
    };
    let staged = session
        .stage(&job.relation, what, replaces, log)
        .map_err(|e| failure(job, e))?;
    session.publish(staged, log).map_err(|e| failure(job, e))
}

fn failure(job: &Job, e: DbError) -> Failure {
    let message = match (&job.action, &e) {
        (
            Action::Seed(spec),
            DbError::BadRow {
                line,
                column,
                message,
            },
        ) => seed::bad_row_message(spec, *line, column.as_deref(), message),
        _ => e.to_string(),
    };
    Failure {
        message,
        interrupted: e == DbError::Interrupted,
    }
}
