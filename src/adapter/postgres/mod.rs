//! PostgreSQL and Amazon Redshift, over PostgreSQL's wire protocol (the `postgres` crate; TLS
//! by rustls). A target names a server (`host`, `port`, `user`, `password`, `dbname`,
//! `sslmode`); the engine (`engine.rs`) is built with the `postgres` cargo feature, and
//! speaks to Redshift in its flavour (`Flavour`, see the end of this comment).
//!
//! How PostgreSQL carries xform's guarantees: its DDL is transactional, so each node is one
//! transaction on the worker's session, and no other connection sees anything of it before
//! `COMMIT`; a failure, a Ctrl-C (the statement is cancelled, then rolled back) or a kill (the
//! server rolls back; `client_connection_check_interval` stops the running statement within a
//! second) leaves the previous relation. A table is built beside the published one as
//! `<name>__xform_new` inside that transaction, audited there (its tests run in a savepoint,
//! so a broken test is reported alone and the build goes on), then swapped in: the old table
//! is renamed away, the new one renamed in, the views that read the old one re-pointed with
//! `CREATE OR REPLACE VIEW` (their definitions read before the rename), and the old one dropped
//! — never `DROP … CASCADE` behind the user's back, unless a view cannot be re-pointed because
//! the columns it reads changed type; then the chain of views is dropped and created again in
//! order. Nothing named `__xform_*` is ever committed. Views are `CREATE OR REPLACE`d; an
//! incremental run adds its rows in place (keys match with a hashable null-safe form, see
//! `Dialect::null_safe_equal`). Seeds are typed from the file (`seed.rs`) and loaded with
//! `COPY … FROM STDIN`. A run takes the target's advisory lock: a second xform on the same
//! target and schemas is refused, naming the holder.
//!
//! Redshift keeps the same guarantees by other means. Its DDL is transactional too (but
//! `TRUNCATE`, which xform never runs), so a node is still one transaction; without
//! savepoints, a statement that fails inside it loses the transaction: a broken test is then
//! found by building again and running the tests one by one (as on DuckDB), and a view that
//! cannot be re-pointed fails the node instead of being dropped and created again. A view is
//! replaced by dropping it (with the views that read it, created again after it) rather than
//! `CREATE OR REPLACE`, which refuses changed columns; `bind: false` makes it late-binding
//! (`WITH NO SCHEMA BINDING`): no dependency, nothing to re-point. Seeds are multi-row
//! `INSERT`s (no `COPY FROM STDIN`), into `VARCHAR`s sized in bytes and `NUMERIC`s sized to
//! the values; rows are read back through a cursor; the run lock is a table
//! (`<schema>.xform_run_lock`) locked by a transaction held for the run; tables take `dist`,
//! `sort`, `sort_type` and `backup`; grants name `GROUP g`, `ROLE r` or a user.

#[cfg(feature = "postgres")]
mod engine;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use super::{DbResult, Warehouse, text_setting};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::project::Target;
use crate::sql::Kind;

const KNOWN: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "lock_timeout",
];

/// How the connection is encrypted, as libpq's `sslmode` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, without checking its certificate.
    Prefer,
    /// TLS, without checking the certificate (encrypted, not authenticated).
    Require,
    /// TLS with the certificate checked against the public roots (or `sslrootcert`) and the
    /// host name.
    VerifyFull,
}

impl SslMode {
    const NAMES: &[&str] = &["disable", "prefer", "require", "verify-full"];

    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// The server behind the wire: PostgreSQL, or Amazon Redshift (PostgreSQL 8's wire and SQL,
/// without savepoints, `COPY FROM STDIN`/`TO STDOUT`, advisory locks or `lock_timeout`; with
/// sort and distribution keys, late-binding views and grants to groups and roles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavour {
    Postgres,
    Redshift,
}

/// A PostgreSQL or Redshift target: where the server is, who connects, and what the run lock
/// covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) flavour: Flavour,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) dbname: String,
    pub(crate) sslmode: SslMode,
    pub(crate) sslrootcert: Option<PathBuf>,
    pub(crate) connect_timeout: u64,
    /// How long a swap waits for readers' locks before the node fails (PostgreSQL's syntax).
    pub(crate) lock_timeout: String,
    /// What the run lock is named after: the target's schemas.
    pub(crate) lock_name: String,
}

impl Settings {
    pub(crate) fn new(target: &Target, root: &Path, diags: &mut Diagnostics) -> Settings {
        super::unknown_settings(target, KNOWN, diags);
        let text = |key: &str, diags: &mut Diagnostics| text_setting(target, key, diags);
        let user = text("user", diags).unwrap_or_else(|| {
            diags.push(
                Diagnostic::error(format!(
                    "target `{}`: {} targets need a `user`",
                    target.name,
                    target.kind.name()
                ))
                .at_opt(target.at("type"))
                .help("for example `user: analytics_author`; the password from the environment: `password: \"{{ env_var('XFORM_PG_PASSWORD') }}\"`"),
            );
            String::new()
        });
        let flavour = match target.kind {
            Kind::Redshift => Flavour::Redshift,
            _ => Flavour::Postgres,
        };
        Settings {
            flavour,
            host: text("host", diags).unwrap_or_else(|| "localhost".into()),
            port: number(target, "port", diags).unwrap_or(match flavour {
                Flavour::Postgres => 5432,
                Flavour::Redshift => 5439,
            }),
            dbname: text("dbname", diags).unwrap_or_else(|| user.clone()),
            password: text("password", diags),
            sslmode: sslmode(target, diags),
            sslrootcert: text("sslrootcert", diags).map(|p| root.join(p)),
            connect_timeout: number(target, "connect_timeout", diags)
                .unwrap_or(10)
                .into(),
            lock_timeout: text("lock_timeout", diags).unwrap_or_else(|| "10s".into()),
            lock_name: target.schema_name(&target.schema),
            user,
        }
    }

    /// `user@host:port/dbname`.
    pub(crate) fn describe(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn open(&self) -> DbResult<Arc<dyn Warehouse>> {
        Ok(Arc::new(engine::Pg::open(self)?))
    }

    #[cfg(not(feature = "postgres"))]
    pub(crate) fn open(&self) -> DbResult<Arc<dyn Warehouse>> {
        Err(super::DbError::Failed(
            "this xform was built without PostgreSQL (cargo feature `postgres`)".into(),
        ))
    }
}

fn sslmode(target: &Target, diags: &mut Diagnostics) -> SslMode {
    let Some(mode) = text_setting(target, "sslmode", diags) else {
        return SslMode::Prefer;
    };
    SslMode::parse(&mode).unwrap_or_else(|| {
        diags.push(
            Diagnostic::error(format!(
                "target `{}`: sslmode `{mode}` is not one xform knows",
                target.name
            ))
            .at_opt(target.at("sslmode"))
            .help(format!("use one of: {}", SslMode::NAMES.join(", "))),
        );
        SslMode::Prefer
    })
}

/// A whole number setting (a port, seconds) up to 65535.
fn number(target: &Target, key: &str, diags: &mut Diagnostics) -> Option<u16> {
    let value = target.settings.get(key)?;
    let n = match value {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let n = n.and_then(|n| u16::try_from(n).ok()).filter(|&n| n > 0);
    if n.is_none() {
        diags.push(
            Diagnostic::error(format!(
                "target `{}`: `{key}` must be a whole number from 1 to 65535, found {value}",
                target.name
            ))
            .at_opt(target.at(key)),
        );
    }
    n
}
