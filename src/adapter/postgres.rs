//! PostgreSQL: its target's settings. The engine is not written yet; opening one says so.

use super::text_setting;
use crate::diagnostics::Diagnostics;
use crate::project::Target;

const KNOWN: &[&str] = &["host", "port", "user", "password", "dbname", "sslmode"];

/// A PostgreSQL target: where the server is and who connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    host: String,
    port: String,
    dbname: Option<String>,
}

impl Settings {
    pub(crate) fn new(target: &Target, diags: &mut Diagnostics) -> Settings {
        super::unknown_settings(target, KNOWN, diags);
        for key in ["user", "password", "sslmode"] {
            text_setting(target, key, diags);
        }
        Settings {
            host: text_setting(target, "host", diags).unwrap_or_else(|| "localhost".into()),
            port: text_setting(target, "port", diags).unwrap_or_else(|| "5432".into()),
            dbname: text_setting(target, "dbname", diags),
        }
    }

    /// `host:port/dbname`.
    pub(crate) fn describe(&self) -> String {
        let db = self.dbname.as_deref().map(|d| format!("/{d}"));
        format!("{}:{}{}", self.host, self.port, db.unwrap_or_default())
    }
}
