//! Source freshness: how long ago a source table last received rows (`loaded_at_field`),
//! against its `freshness: {warn_after, error_after}` — dbt's `source freshness`.

use serde_json::Value as Json;

use crate::adapter::Session;
use crate::compile::Compiled;
use crate::diagnostics::Diagnostic;
use crate::project::{Node, NodeKind};

/// A source table's freshness settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Freshness {
    pub(crate) loaded_at_field: String,
    pub(crate) warn_after: Option<f64>,
    pub(crate) error_after: Option<f64>,
    pub(crate) filter: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FreshnessStatus {
    Pass,
    Warn,
    Error,
    RuntimeError,
}

impl FreshnessStatus {
    pub(crate) fn label(self) -> &'static str {
        match self {
            FreshnessStatus::Pass => "PASS",
            FreshnessStatus::Warn => "WARN",
            FreshnessStatus::Error => "ERROR",
            FreshnessStatus::RuntimeError => "ERROR",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct FreshnessResult {
    pub(crate) node: usize,
    pub(crate) status: FreshnessStatus,
    /// Seconds since the Unix epoch of the latest load, if any rows.
    pub(crate) max_loaded_at: Option<f64>,
    /// Seconds since then.
    pub(crate) age: Option<f64>,
    pub(crate) spec: Freshness,
    pub(crate) message: Option<String>,
}

/// The freshness a source table declares (its own, else its source's); None when it declares
/// none or turns it off with `freshness: null`.
pub(crate) fn spec(n: &Node) -> Result<Option<Freshness>, Diagnostic> {
    if n.kind != NodeKind::Source {
        return Ok(None);
    }
    let Some(f) = n.config.get("freshness").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let Some(map) = f.as_object() else {
        return Err(bad_freshness(
            n,
            format!("`freshness` must be a mapping, found {f}"),
        ));
    };
    declared_freshness(n, map)
}

/// The freshness a `freshness:` mapping declares; None when it sets neither limit.
fn declared_freshness(
    n: &Node,
    map: &serde_json::Map<String, Json>,
) -> Result<Option<Freshness>, Diagnostic> {
    let (warn_after, error_after) = (
        after_seconds(n, map, "warn_after")?,
        after_seconds(n, map, "error_after")?,
    );
    if warn_after.is_none() && error_after.is_none() {
        return Ok(None);
    }
    let Some(loaded_at_field) = n.config.str("loaded_at_field") else {
        return Err(bad_freshness(
            n,
            "`freshness` needs a `loaded_at_field`: the column (or expression) saying when a row was loaded"
                .into(),
        ));
    };
    Ok(Some(Freshness {
        loaded_at_field: loaded_at_field.to_string(),
        warn_after,
        error_after,
        filter: map.get("filter").and_then(Json::as_str).map(str::to_string),
    }))
}

/// A mistake in a source's `freshness`, pointing at it (or else at the source).
fn bad_freshness(n: &Node, m: String) -> Diagnostic {
    let at = n.config.at("freshness").cloned().or_else(|| n.at.clone());
    Diagnostic::error(format!("source `{}`: {m}", n.name))
        .at_opt(at)
        .help("e.g. freshness: {warn_after: {count: 12, period: hour}, error_after: {count: 1, period: day}}")
}

/// `warn_after` or `error_after` (`{count, period}`) in seconds; None when not set.
fn after_seconds(
    n: &Node,
    map: &serde_json::Map<String, Json>,
    key: &str,
) -> Result<Option<f64>, Diagnostic> {
    let Some(v) = map.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let count = v.get("count").and_then(Json::as_f64);
    let Some(unit) = period_seconds(v.get("period").and_then(Json::as_str)) else {
        return Err(bad_freshness(
            n,
            format!("`{key}` needs a `count` and a `period` of minute, hour or day, found {v}"),
        ));
    };
    match count {
        Some(c) if c > 0.0 => Ok(Some(c * unit)),
        _ => Err(bad_freshness(
            n,
            format!("`{key}.count` must be a positive number, found {v}"),
        )),
    }
}

fn period_seconds(period: Option<&str>) -> Option<f64> {
    match period {
        Some("minute") => Some(60.0),
        Some("hour") => Some(3600.0),
        Some("day") => Some(86400.0),
        _ => None,
    }
}

/// Checks one source table at `now` (seconds since the Unix epoch).
pub(crate) fn check(
    session: &mut dyn Session,
    c: &Compiled,
    node: usize,
    spec: Freshness,
    now: f64,
) -> FreshnessResult {
    let from = c.relation_sql(node).unwrap_or_default();
    let latest = session.max_loaded_at(&from, &spec.loaded_at_field, spec.filter.as_deref());
    let (status, max_loaded_at, age, message) = match latest {
        Err(e) => (
            FreshnessStatus::RuntimeError,
            None,
            None,
            Some(e.to_string()),
        ),
        Ok(None) => (
            FreshnessStatus::Error,
            None,
            None,
            Some("no rows: nothing was ever loaded".to_string()),
        ),
        Ok(Some(t)) => {
            let age = now - t;
            (status_at_age(&spec, age), Some(t), Some(age), None)
        }
    };
    FreshnessResult {
        node,
        status,
        max_loaded_at,
        age,
        spec,
        message,
    }
}

/// Error past `error_after`, else warn past `warn_after`, else pass.
fn status_at_age(spec: &Freshness, age: f64) -> FreshnessStatus {
    if spec.error_after.is_some_and(|e| age > e) {
        FreshnessStatus::Error
    } else if spec.warn_after.is_some_and(|w| age > w) {
        FreshnessStatus::Warn
    } else {
        FreshnessStatus::Pass
    }
}

/// 5400 → "1.5 h"; 90 → "1.5 min"; 3 days → "3.0 d".
pub(crate) fn human_age(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 3600.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 86400.0 * 2.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86400.0)
    }
}
