//! A data test's settings as dbt users write them: `severity`, `warn_if`, `error_if`, `limit`,
//! `store_failures`. Checked offline, so a bad threshold stops the run before it starts.

use serde_json::Value as Json;

use super::Node;
use crate::diagnostics::Diagnostic;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    Error,
    Warn,
}

/// `!= 0`, `> 10`, `>=5`: compared with the number of failing rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Threshold {
    op: Op,
    value: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Threshold {
    const ANY: Threshold = Threshold {
        op: Op::Ne,
        value: 0,
    };

    pub(crate) fn parse(text: &str) -> Option<Threshold> {
        let t = text.trim();
        let ops = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            ("<>", Op::Ne),
            ("==", Op::Eq),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        let (op, rest) = ops
            .iter()
            .find_map(|(s, op)| t.strip_prefix(s).map(|rest| (*op, rest)))?;
        let value = rest.trim().parse().ok()?;
        Some(Threshold { op, value })
    }

    pub(crate) fn holds(self, failures: u64) -> bool {
        let v = self.value;
        match self.op {
            Op::Eq => failures == v,
            Op::Ne => failures != v,
            Op::Gt => failures > v,
            Op::Ge => failures >= v,
            Op::Lt => failures < v,
            Op::Le => failures <= v,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TestConfig {
    pub(crate) severity: Severity,
    pub(crate) warn_if: Threshold,
    pub(crate) error_if: Threshold,
    /// At most this many failing rows are counted.
    pub(crate) limit: Option<u64>,
    pub(crate) store_failures: bool,
}

impl TestConfig {
    pub(crate) const DEFAULT: TestConfig = TestConfig {
        severity: Severity::Error,
        warn_if: Threshold::ANY,
        error_if: Threshold::ANY,
        limit: None,
        store_failures: false,
    };
}

/// What a test's failure count means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl TestConfig {
    /// dbt's rule: an error-severity test fails when `error_if` holds, else warns when
    /// `warn_if` holds; a warn-severity test only warns.
    pub(crate) fn verdict(&self, failures: u64) -> Verdict {
        if self.severity == Severity::Error && self.error_if.holds(failures) {
            Verdict::Fail
        } else if self.warn_if.holds(failures) {
            Verdict::Warn
        } else {
            Verdict::Pass
        }
    }
}

/// The settings of test node `n` (a generic or singular data test).
pub(crate) fn test_config(n: &Node) -> Result<TestConfig, Diagnostic> {
    let severity = severity(n)?;
    let limit = limit(n)?;
    let store_failures = store_failures(n)?;
    Ok(TestConfig {
        severity,
        warn_if: threshold(n, "warn_if")?,
        error_if: threshold(n, "error_if")?,
        limit,
        store_failures,
    })
}

/// A mistake in test `n`'s setting `key`.
fn bad(n: &Node, key: &str, msg: String, help: &str) -> Diagnostic {
    Diagnostic::error(format!("test `{}`: {msg}", n.name))
        .at_opt(n.config.at(key).cloned().or_else(|| n.at.clone()))
        .help(help.to_string())
}

/// `severity`: error (the default) or warn, in any case.
fn severity(n: &Node) -> Result<Severity, Diagnostic> {
    match n.config.get("severity") {
        None | Some(Json::Null) => Ok(Severity::Error),
        Some(Json::String(s)) if s.eq_ignore_ascii_case("error") => Ok(Severity::Error),
        Some(Json::String(s)) if s.eq_ignore_ascii_case("warn") => Ok(Severity::Warn),
        Some(v) => Err(bad(
            n,
            "severity",
            format!("`severity` is {v}"),
            "use `error` or `warn`",
        )),
    }
}

/// `warn_if` or `error_if`: a comparison with the number of failing rows.
fn threshold(n: &Node, key: &str) -> Result<Threshold, Diagnostic> {
    match n.config.get(key) {
        None | Some(Json::Null) => Ok(Threshold::ANY),
        Some(Json::String(s)) => Threshold::parse(s).ok_or_else(|| {
            bad(
                n,
                key,
                format!("`{key}: {s}` is not a comparison with a number"),
                "write a comparison with the number of failing rows, e.g. `>10` or `!=0`",
            )
        }),
        Some(v) => Err(bad(
            n,
            key,
            format!("`{key}` is {v}"),
            "write a comparison in quotes, e.g. `\">10\"`",
        )),
    }
}

/// `limit`: how many failing rows are counted at most.
fn limit(n: &Node) -> Result<Option<u64>, Diagnostic> {
    match n.config.get("limit") {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            bad(
                n,
                "limit",
                format!("`limit` is {v}"),
                "use a whole number of rows",
            )
        }),
    }
}

/// `store_failures`: false unless set; dbt's `store_failures_as` (`table` stores them,
/// `ephemeral` does not) wins over it.
fn store_failures(n: &Node) -> Result<bool, Diagnostic> {
    match n.config.get("store_failures_as").and_then(Json::as_str) {
        Some("table") => return Ok(true),
        Some("ephemeral") => return Ok(false),
        Some(other) => {
            return Err(bad(
                n,
                "store_failures_as",
                format!("`store_failures_as` is `{other}`"),
                "use table (failing rows kept in a table) or ephemeral (not kept); xform does not keep them as a view",
            ));
        }
        None => {}
    }
    match n.config.get("store_failures") {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(v) => Err(bad(
            n,
            "store_failures",
            format!("`store_failures` is {v}"),
            "use true or false",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_compare_failing_rows() {
        let t = Threshold::parse(" >= 10").unwrap();
        assert!(t.holds(10) && !t.holds(9));
        assert!(Threshold::parse("<>0").unwrap().holds(3));
        assert!(Threshold::parse("=0").unwrap().holds(0));
        assert_eq!(Threshold::parse("> ten"), None);
        assert_eq!(Threshold::parse("10"), None);
        let cfg = TestConfig {
            severity: Severity::Error,
            warn_if: Threshold::parse(">0").unwrap(),
            error_if: Threshold::parse(">10").unwrap(),
            limit: None,
            store_failures: false,
        };
        assert_eq!(cfg.verdict(0), Verdict::Pass);
        assert_eq!(cfg.verdict(5), Verdict::Warn);
        assert_eq!(cfg.verdict(11), Verdict::Fail);
    }
}
