//! Opening the target's warehouse, for every command that talks to it.

use std::sync::Arc;

use super::ExitStatus;
use crate::adapter::{Connection, Session, Warehouse};
use crate::diagnostics::Diagnostics;
use crate::project::Project;

/// An open warehouse and one session on it.
type Opened = (Arc<dyn Warehouse>, Box<dyn Session>);

/// The warehouse and one session on it, for commands that run a few queries.
pub(super) fn open_session(p: &Project) -> Result<Opened, ExitStatus> {
    let warehouse = open_warehouse(p)?;
    match warehouse.session() {
        Ok(s) => Ok((warehouse, s)),
        Err(e) => {
            errln!("error: {e}");
            Err(ExitStatus::Invalid)
        }
    }
}

pub(super) fn open_warehouse(p: &Project) -> Result<Arc<dyn Warehouse>, ExitStatus> {
    let opened = connection(p).and_then(|c| c.open().map_err(|e| e.to_string()));
    opened.map_err(|e| {
        errln!("error: {e}");
        ExitStatus::Invalid
    })
}

/// The target's connection settings (checked, with their diagnostics shown, when the project
/// was loaded).
pub(super) fn connection(p: &Project) -> Result<Connection, String> {
    Connection::new(&p.target, &p.root, &mut Diagnostics::default())
        .ok_or_else(|| format!("target `{}` has invalid settings", p.target.name))
}

pub(super) fn describe(p: &Project, w: &dyn Warehouse) -> String {
    let t = &p.target;
    let place = connection(p).map_or_else(|e| e, |c| c.describe(&p.root));
    let version = w.version().unwrap_or_else(|_| t.kind.name().to_string());
    format!("target {} ({place}, {version})", t.name)
}
