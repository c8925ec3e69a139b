//! Apache Spark over Spark Connect (gRPC, results as Arrow): `client.rs` speaks the protocol,
//! `engine.rs` builds with it; both behind the `spark` cargo feature. A target names the
//! Connect server (`url: "sc://host:15002"`, `token`, `user`).
//!
//! How Spark carries xform's guarantees, without transactions. A **view** is one
//! `ALTER VIEW … AS` (`CREATE VIEW` the first time): a single catalog update, old or new —
//! not `CREATE OR REPLACE VIEW`, which Spark runs as a drop and a create, so a reader in
//! between finds no relation. A **table** (and a seed) is built under a versioned name beside
//! the published one (`<name>__xform_t<run>_<n>`), tested there, and published by flipping the
//! published name — a view over the newest version, which its text names — to it in one
//! `ALTER VIEW`. The version it replaced is marked retired (a table property) and kept until
//! the relation's next publish, because a query that started on it before the flip reads its
//! files, which a drop deletes. A failure or a Ctrl-C before the flip leaves the previous
//! relation published and drops the new version; a kill leaves it behind, and the next run
//! drops (and reports) every version never published, read in one `SHOW TABLE EXTENDED`.
//!
//! An **incremental** run stages its new rows as a table (`<name>__xform_new`); its tests read
//! the table as it will be (`<name>__xform_audit`, a view of the kept rows and the new ones);
//! `publish` then adds them (`append`), or replaces the partitions they touch (`insert_overwrite`
//! and microbatches, by dynamic partition overwrite). That last write is **not** old-or-new: a
//! kill in the middle of `INSERT OVERWRITE` can leave a partition empty or half written, until
//! the next run writes it again. Row updates (`merge`, `delete+insert`, snapshots) need a Delta or
//! Iceberg table and are refused before anything runs. Seeds travel as Arrow batches, typed from
//! their values, and are published like tables. Spark has no users or privileges here (grants
//! are warned of) and no run lock: two runs on one target at once are not refused.

#[cfg(feature = "spark")]
mod client;
#[cfg(feature = "spark")]
mod engine;

use std::sync::Arc;

use serde_json::Value as Json;

use super::{DbResult, Warehouse, text_setting};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::project::Target;

const KNOWN: &[&str] = &["url", "token", "user", "use_ssl", "connect_timeout"];

/// A Spark target: where its Connect server listens and who connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) use_ssl: bool,
    /// Sent as `authorization: Bearer …`.
    pub(crate) token: Option<String>,
    pub(crate) user: String,
    pub(crate) connect_timeout: u64,
}

impl Settings {
    /// The target's settings: `url` as Spark's clients write it
    /// (`sc://host:port/;token=…;use_ssl=true;user_id=…`), each parameter also a setting of its
    /// own (which wins).
    pub(crate) fn new(target: &Target, diags: &mut Diagnostics) -> Settings {
        super::unknown_settings(target, KNOWN, diags);
        let url = text_setting(target, "url", diags).unwrap_or_else(|| "sc://localhost".into());
        let mut s = parse_url(&url).unwrap_or_else(|problem| {
            diags.push(
                Diagnostic::error(format!("target `{}`: `url: {url}` {problem}", target.name))
                    .at_opt(target.at("url"))
                    .help("for example `url: \"sc://127.0.0.1:15002\"`"),
            );
            parse_url("sc://localhost").unwrap_or_default()
        });
        if let Some(t) = text_setting(target, "token", diags) {
            s.token = Some(t);
        }
        if let Some(u) = text_setting(target, "user", diags) {
            s.user = u;
        }
        if let Some(b) = flag(target, "use_ssl", diags) {
            s.use_ssl = b;
        }
        if let Some(secs) = seconds(target, "connect_timeout", diags) {
            s.connect_timeout = secs;
        }
        s
    }

    /// `sc://host:port`.
    pub(crate) fn describe(&self) -> String {
        format!("sc://{}:{}", self.host, self.port)
    }

    #[cfg(feature = "spark")]
    pub(crate) fn open(&self) -> DbResult<Arc<dyn Warehouse>> {
        Ok(Arc::new(engine::Spark::open(self)?))
    }

    #[cfg(not(feature = "spark"))]
    pub(crate) fn open(&self) -> DbResult<Arc<dyn Warehouse>> {
        Err(super::DbError::Failed(
            "this xform was built without Spark (cargo feature `spark`)".into(),
        ))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            host: "localhost".into(),
            port: 15002,
            use_ssl: false,
            token: None,
            user: "xform".into(),
            connect_timeout: 10,
        }
    }
}

/// `sc://host[:port][/;key=value;…]`.
fn parse_url(url: &str) -> Result<Settings, String> {
    let rest = url
        .strip_prefix("sc://")
        .ok_or("does not start with `sc://`")?;
    let (address, params) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match address.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("has no port number in `{p}`"))?,
        ),
        None => (address, 15002),
    };
    if host.is_empty() {
        return Err("names no host".into());
    }
    let mut s = Settings {
        host: host.trim_matches(['[', ']']).to_string(),
        port,
        ..Settings::default()
    };
    read_params(&mut s, params)?;
    Ok(s)
}

/// `;token=…;use_ssl=true;user_id=…` into `s`.
fn read_params(s: &mut Settings, params: &str) -> Result<(), String> {
    for param in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = param
            .split_once('=')
            .ok_or(format!("has `{param}` where `key=value` belongs"))?;
        match key {
            "token" => s.token = Some(value.to_string()),
            "use_ssl" => {
                s.use_ssl = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("has `use_ssl={value}`: true or false")),
                }
            }
            "user_id" => s.user = value.to_string(),
            // Spark's own clients read more (`session_id`, `user_agent`); they change nothing
            // of what xform builds.
            _ => {}
        }
    }
    Ok(())
}

/// A whole number of seconds, at least one.
fn seconds(target: &Target, key: &str, diags: &mut Diagnostics) -> Option<u64> {
    let value = target.settings.get(key)?;
    let n = match value {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let n = n.filter(|&n| n > 0);
    if n.is_none() {
        diags.push(
            Diagnostic::error(format!(
                "target `{}`: `{key}` must be a whole number of seconds, found {value}",
                target.name
            ))
            .at_opt(target.at(key)),
        );
    }
    n
}

fn flag(target: &Target, key: &str, diags: &mut Diagnostics) -> Option<bool> {
    match target.settings.get(key)? {
        Json::Bool(b) => Some(*b),
        other => {
            diags.push(
                Diagnostic::error(format!(
                    "target `{}`: `{key}` must be true or false, found {other}",
                    target.name
                ))
                .at_opt(target.at(key)),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn reads_urls_as_spark_clients_write_them() {
        let s =
            parse_url("sc://spark.example.com:443/;use_ssl=true;token=abc;user_id=kim").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.use_ssl),
            ("spark.example.com", 443, true)
        );
        assert_eq!((s.token.as_deref(), s.user.as_str()), (Some("abc"), "kim"));
        assert_eq!(parse_url("sc://127.0.0.1").unwrap().port, 15002);
        assert!(parse_url("http://x:1").is_err());
        assert!(parse_url("sc://x:port").is_err());
        assert!(parse_url("sc://x/;token").is_err());
        assert!(parse_url("sc://x/;use_ssl=yes").is_err());
    }
}
