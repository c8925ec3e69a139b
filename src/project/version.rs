//! Versions as dbt compares them: `major.minor.patch[-prerelease][+build]`, and constraints
//! such as `>=1.0.0` (no operator means exactly). Used for `require-dbt-version` and for the
//! versions of packages on dbt's package hub.

use std::cmp::Ordering;
use std::fmt;

/// A released version; `build` is kept for printing and ignored when comparing.
#[derive(Clone, Debug)]
pub(crate) struct Version {
    numbers: [u64; 3],
    pre: Option<String>,
    text: String,
}

impl Version {
    /// Parses `1.2.3`, `1.2.3-rc1`, `1.2.3b1` (dbt's `-` is optional), `1.2.3+build`; a
    /// missing minor or patch reads as 0.
    pub(crate) fn parse(text: &str) -> Option<Version> {
        let core = text.split('+').next()?;
        let end = core
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(core.len());
        let (numbers_part, rest) = core.split_at(end);
        let pre = match rest.strip_prefix('-').unwrap_or(rest) {
            "" if rest.is_empty() => None,
            "" => return None,
            p => Some(p.to_string()),
        };
        let mut numbers = [0u64; 3];
        let mut parts = numbers_part.split('.');
        for (i, slot) in numbers.iter_mut().enumerate() {
            match parts.next() {
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    *slot = p.parse().ok()?
                }
                None if i > 0 => break,
                _ => return None,
            }
        }
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            numbers,
            pre,
            text: text.to_string(),
        })
    }

    pub(crate) fn is_prerelease(&self) -> bool {
        self.pre.is_some()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for Version {
    /// Semantic versioning's precedence: a prerelease comes before its release, and its dotted
    /// parts compare as numbers when both are numbers.
    fn cmp(&self, other: &Self) -> Ordering {
        self.numbers
            .cmp(&other.numbers)
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => prerelease_cmp(a, b),
            })
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn prerelease_cmp(a: &str, b: &str) -> Ordering {
    let part = |p: &str| p.parse::<u64>().map_err(|_| p.to_string());
    for (x, y) in a.split('.').zip(b.split('.')) {
        let order = match (part(x), part(y)) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(x), Err(y)) => x.cmp(&y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// One constraint: an operator and a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Constraint {
    op: Op,
    version: Version,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Exact,
    Greater,
    AtLeast,
    Less,
    AtMost,
}

impl Constraint {
    /// Parses `>=1.0.0`, `<2.0.0`, `=1.1.0` or `1.1.0`.
    pub(crate) fn parse(text: &str) -> Option<Constraint> {
        let text = text.trim();
        let ops = [
            (">=", Op::AtLeast),
            ("<=", Op::AtMost),
            ("==", Op::Exact),
            (">", Op::Greater),
            ("<", Op::Less),
            ("=", Op::Exact),
        ];
        let (op, rest) = ops
            .iter()
            .find_map(|(s, op)| text.strip_prefix(s).map(|rest| (*op, rest)))
            .unwrap_or((Op::Exact, text));
        Some(Constraint {
            op,
            version: Version::parse(rest.trim())?,
        })
    }

    /// Whether `v` meets the constraint. Below a release (`<2.0.0`), that release's own
    /// prereleases do not count, as in dbt.
    pub(crate) fn allows(&self, v: &Version) -> bool {
        let bound = &self.version;
        match self.op {
            Op::Exact => v == bound,
            Op::Greater => v > bound,
            Op::AtLeast => v >= bound,
            Op::Less => {
                v < bound && !(bound.pre.is_none() && v.pre.is_some() && v.numbers == bound.numbers)
            }
            Op::AtMost => v <= bound,
        }
    }

    pub(crate) fn names_prerelease(&self) -> bool {
        self.version.is_prerelease()
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Exact => "",
            Op::Greater => ">",
            Op::AtLeast => ">=",
            Op::Less => "<",
            Op::AtMost => "<=",
        };
        write!(f, "{op}{}", self.version)
    }
}

/// Parses a comma-separated list of constraints (`>=1.5.0, <2.0.0`); None when one is not a
/// version.
pub(crate) fn constraints(text: &str) -> Option<Vec<Constraint>> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(Constraint::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Constraint, Version, constraints};

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_order_as_semantic_versions() {
        let mut vs: Vec<Version> = [
            "1.0.0",
            "0.9.10",
            "1.0.0-rc.2",
            "1.0.0-rc.10",
            "0.9.9",
            "1.0.0-b1",
        ]
        .iter()
        .map(|s| v(s))
        .collect();
        vs.sort();
        let sorted: Vec<String> = vs.iter().map(Version::to_string).collect();
        assert_eq!(
            sorted,
            [
                "0.9.9",
                "0.9.10",
                "1.0.0-b1",
                "1.0.0-rc.2",
                "1.0.0-rc.10",
                "1.0.0"
            ]
        );
        assert!(Version::parse("1.x.0").is_none());
        assert!(v("1.0.0b1") < v("1.0.0") && v("1.0.0b1") == v("1.0.0-b1"));
        assert!(Version::parse("~1.3").is_none());
    }

    #[test]
    fn constraints_as_dbt_reads_them() {
        let range = constraints(">=1.0.0, <2.0.0").unwrap();
        let allows = |s: &str| range.iter().all(|c| c.allows(&v(s)));
        assert!(allows("1.0.0") && allows("1.9.3"));
        assert!(!allows("2.0.0") && !allows("0.9.0") && !allows("2.0.0-rc1"));
        assert!(Constraint::parse("1.3.0").unwrap().allows(&v("1.3.0")));
        assert!(!Constraint::parse("=1.3.0").unwrap().allows(&v("1.3.1")));
        assert!(constraints("~1.3").is_none());
    }
}
