//! Node selection, dbt's syntax: `name`, `+name`, `name+`, `2+name`, `name+1`, `@name`,
//! `tag:x`, `path:models/mart`, `config.materialized:table`, `resource_type:model`,
//! `source:raw`, `test_type:unit`, `state:modified` (against `--state`), `result:error` (an
//! earlier run's statuses); space is union, comma is intersection; `--exclude` removes.
//! Tests of selected nodes are selected too (dbt's "eager" indirect selection).

use std::collections::BTreeSet;

use serde_json::Value as Json;

use std::collections::HashMap;

use super::Graph;
use crate::diagnostics::{Diagnostic, did_you_mean};
use crate::project::{Node, NodeKind};

const METHODS: &[&str] = &[
    "fqn",
    "path",
    "tag",
    "config.<key>",
    "resource_type",
    "source",
    "test_type",
    "state",
    "result",
];

/// The values of `state:`.
pub(crate) const STATE_VALUES: &[&str] = &[
    "new",
    "old",
    "modified",
    "unmodified",
    "modified.body",
    "modified.configs",
    "modified.contract",
    "modified.macros",
];

/// How a node differs from `--state`, as `state:` selectors read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Modified {
    /// Not in the state at all.
    pub(crate) new: bool,
    pub(crate) body: bool,
    pub(crate) configs: bool,
    pub(crate) contract: bool,
    pub(crate) macros: bool,
}

impl Modified {
    /// `state:<value>` for a node with this change (`None` = unchanged).
    pub(crate) fn matches(change: Option<&Modified>, value: &str) -> bool {
        let Some(c) = change else {
            return matches!(value, "old" | "unmodified");
        };
        match value {
            "new" => c.new,
            "old" => !c.new,
            "modified" => true,
            "unmodified" => false,
            "modified.body" => c.new || c.body,
            "modified.configs" => c.new || c.configs,
            "modified.contract" => c.new || c.contract,
            "modified.macros" => c.new || c.macros,
            _ => false,
        }
    }
}

/// What selectors may ask beyond the project itself, as the steps that read other runs
/// found it.
#[derive(Default)]
pub(crate) struct Facts<'a> {
    /// Per node, how it differs from `--state` (None: unchanged).
    pub(crate) modified: Option<&'a [Option<Modified>]>,
    /// unique_id → status of an earlier run's results.
    pub(crate) results: Option<&'a HashMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Method {
    Fqn,
    Path,
    Tag,
    Config(String),
    ResourceType,
    Source,
    TestType,
    State,
    Result,
}

#[derive(Debug, Clone, PartialEq)]
struct Atom {
    text: String,
    at: bool,
    parents: Option<Option<usize>>,
    children: Option<Option<usize>>,
    method: Method,
    value: String,
}

/// A parsed selection: a union of intersections of atoms.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection(Vec<Vec<Atom>>);

impl Selection {
    /// Parses every `-s` value (each may hold several space-separated terms).
    pub(crate) fn parse(specs: &[String]) -> Result<Selection, Diagnostic> {
        let mut terms = Vec::new();
        for spec in specs {
            if spec.trim().is_empty() {
                return Err(Diagnostic::error("an empty selector (`''`) selects nothing")
                    .help("give a selector (a name, tag:x, path:dir, ...), or leave out the option to take every node"));
            }
            for term in spec.split_whitespace() {
                let atoms = term
                    .split(',')
                    .map(|atom| match atom {
                        "" => Err(Diagnostic::error(format!(
                            "invalid selector `{term}`: an empty part between commas"
                        ))),
                        _ => parse_atom(atom),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                terms.push(atoms);
            }
        }
        Ok(Selection(terms))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn atoms(&self) -> impl Iterator<Item = &Atom> {
        self.0.iter().flatten()
    }
}

fn parse_atom(text: &str) -> Result<Atom, Diagnostic> {
    let bad = |why: &str| Diagnostic::error(format!("invalid selector `{text}`: {why}"));
    let mut rest = text;
    let at = rest.starts_with('@');
    rest = rest.trim_start_matches('@');
    let (parents, r) = depth_prefix(rest).map_err(|e| bad(&e))?;
    let (children, r) = depth_suffix(r).map_err(|e| bad(&e))?;
    rest = r;
    if rest.is_empty() {
        return Err(bad("nothing to select"));
    }
    if at && (parents.is_some() || children.is_some()) {
        return Err(bad("`@` cannot be combined with `+`"));
    }
    let (method, value) = match rest.split_once(':') {
        None => (
            if rest.contains('/') || rest.ends_with(".sql") {
                Method::Path
            } else {
                Method::Fqn
            },
            rest,
        ),
        Some((m, v)) => (
            method(m).ok_or_else(|| {
                bad(&format!("unknown method `{m}`"))
                    .help(format!("methods: {}", METHODS.join(", ")))
            })?,
            v,
        ),
    };
    if method == Method::State && !STATE_VALUES.contains(&value) {
        return Err(bad(&format!("unknown state `{value}`")).help(
            did_you_mean(value, STATE_VALUES.iter().copied())
                .unwrap_or_else(|| format!("use one of: {}", STATE_VALUES.join(", "))),
        ));
    }
    Ok(Atom {
        text: text.to_string(),
        at,
        parents,
        children,
        method,
        value: value.to_string(),
    })
}

fn method(name: &str) -> Option<Method> {
    Some(match name {
        "fqn" => Method::Fqn,
        "path" | "file" => Method::Path,
        "tag" => Method::Tag,
        "resource_type" => Method::ResourceType,
        "source" => Method::Source,
        "test_type" => Method::TestType,
        "state" => Method::State,
        "result" => Method::Result,
        _ => Method::Config(name.strip_prefix("config.")?.to_string()),
    })
}

/// `+x` → unlimited parents, `2+x` → two levels.
fn depth_prefix(s: &str) -> Result<(Option<Option<usize>>, &str), String> {
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let after = &s[digits..];
    match after.strip_prefix('+') {
        Some(rest) if digits == 0 => Ok((Some(None), rest)),
        Some(rest) => Ok((
            Some(Some(s[..digits].parse().map_err(|_| "depth too large")?)),
            rest,
        )),
        None => Ok((None, s)),
    }
}

fn depth_suffix(s: &str) -> Result<(Option<Option<usize>>, &str), String> {
    let digits = s.chars().rev().take_while(char::is_ascii_digit).count();
    let before = &s[..s.len() - digits];
    match before.strip_suffix('+') {
        Some(rest) if digits == 0 => Ok((Some(None), rest)),
        Some(rest) => Ok((
            Some(Some(
                s[s.len() - digits..]
                    .parse()
                    .map_err(|_| "depth too large")?,
            )),
            rest,
        )),
        None => Ok((None, s)),
    }
}

/// The selected nodes in dependency order, and a warning for each atom matching nothing.
/// An empty `select` means every node. Fails when a `state:`/`result:` atom has nothing to ask.
pub(crate) fn select(
    graph: &Graph,
    nodes: &[Node],
    (select, exclude): (&Selection, &Selection),
    facts: &Facts,
) -> Result<(Vec<usize>, Vec<Diagnostic>), Diagnostic> {
    for atom in select.atoms().chain(exclude.atoms()) {
        let missing = match atom.method {
            Method::State if facts.modified.is_none() => "a manifest.json",
            Method::Result if facts.results.is_none() => "a run_results.json",
            _ => continue,
        };
        return Err(Diagnostic::error(format!(
            "selector `{}` needs --state DIR, a folder with {missing} from an earlier run",
            atom.text
        ))
        .help("e.g. copy production's target/ artifacts to prod-artifacts/ and pass --state prod-artifacts"));
    }
    let mut warnings = Vec::new();
    let mut chosen: BTreeSet<usize> = if select.is_empty() {
        (0..nodes.len()).collect()
    } else {
        resolve(graph, nodes, select, facts, &mut warnings)
    };
    let excluded = resolve(graph, nodes, exclude, facts, &mut warnings);
    chosen.retain(|i| !excluded.contains(i));
    let tests: Vec<usize> = (0..nodes.len())
        .filter(|i| matches!(nodes[*i].kind, NodeKind::Test | NodeKind::UnitTest))
        .filter(|i| !chosen.contains(i) && graph.parents(*i).any(|p| chosen.contains(&p)))
        .collect();
    chosen.extend(tests);
    chosen.retain(|i| !excluded.contains(i));
    let ordered = graph
        .order()
        .iter()
        .copied()
        .filter(|i| chosen.contains(i))
        .collect();
    Ok((ordered, warnings))
}

fn resolve(
    graph: &Graph,
    nodes: &[Node],
    sel: &Selection,
    facts: &Facts,
    warnings: &mut Vec<Diagnostic>,
) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for term in &sel.0 {
        let mut acc: Option<BTreeSet<usize>> = None;
        for atom in term {
            let set = expand(
                graph,
                atom,
                nodes
                    .iter()
                    .enumerate()
                    .filter(|(i, n)| matches(atom, *i, n, facts))
                    .map(|(i, _)| i),
            );
            // A PR that changes nothing selects nothing: that is not worth a warning.
            if set.is_empty() && !matches!(atom.method, Method::State | Method::Result) {
                warnings.push(Diagnostic::warning(format!(
                    "selector `{}` matches no node",
                    atom.text
                )));
            }
            acc = Some(match acc {
                None => set,
                Some(prev) => prev.intersection(&set).copied().collect(),
            });
        }
        out.extend(acc.unwrap_or_default());
    }
    out
}

fn expand(graph: &Graph, atom: &Atom, seeds: impl Iterator<Item = usize>) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for i in seeds {
        out.insert(i);
        if atom.at {
            let down = graph.walk(i, false, None);
            for d in down.iter().copied().chain([i]) {
                out.extend(graph.walk(d, true, None));
            }
            out.extend(down);
        }
        if let Some(depth) = atom.parents {
            out.extend(graph.walk(i, true, depth));
        }
        if let Some(depth) = atom.children {
            out.extend(graph.walk(i, false, depth));
        }
    }
    out
}

fn matches(atom: &Atom, i: usize, n: &Node, facts: &Facts) -> bool {
    let v = atom.value.as_str();
    match &atom.method {
        Method::State => facts
            .modified
            .is_some_and(|m| Modified::matches(m[i].as_ref(), v)),
        Method::Result => facts
            .results
            .and_then(|r| r.get(&n.unique_id))
            .is_some_and(|s| s == v || (v == "error" && s == "runtime error")),
        Method::Fqn => fqn_matches(v, n),
        Method::Path => {
            let want = v.trim_end_matches('/');
            let path = &*n.path;
            path == want
                || path.strip_prefix(want).is_some_and(|r| r.starts_with('/'))
                || glob(want, path)
        }
        Method::Tag => n.config.tags().iter().any(|t| glob(v, t)),
        Method::ResourceType => n.kind.name() == v || (v == "test" && n.kind == NodeKind::UnitTest),
        Method::Source => {
            n.kind == NodeKind::Source
                && (glob(v, &n.name) || n.name.split('.').next().is_some_and(|s| glob(v, s)))
        }
        Method::TestType => match v {
            "unit" => n.kind == NodeKind::UnitTest,
            "generic" | "data" if n.kind == NodeKind::Test => n.test.is_some() || v == "data",
            "singular" => n.kind == NodeKind::Test && n.test.is_none(),
            _ => false,
        },
        Method::Config(key) => match n.config.get(key) {
            Some(Json::String(s)) => glob(v, s),
            Some(Json::Array(items)) => {
                items.iter().any(|i| i.as_str().is_some_and(|s| glob(v, s)))
            }
            Some(other) => *other == v,
            None => false,
        },
    }
}

/// `orders`, `an_*`, `analytics` (a folder), `analytics.part_001`, `shop.analytics`.
fn fqn_matches(v: &str, n: &Node) -> bool {
    if glob(v, &n.name) {
        return true;
    }
    let want: Vec<&str> = v.split('.').collect();
    let fqn: Vec<&str> = n.fqn.iter().map(String::as_str).collect();
    let prefix = |f: &[&str]| f.len() >= want.len() && want.iter().zip(f).all(|(w, f)| glob(w, f));
    prefix(&fqn) || fqn.get(1..).is_some_and(prefix)
}

/// Shell-style wildcard match with `*` and `?`.
fn glob(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_graph_operators() {
        let a = parse_atom("2+orders+").unwrap();
        assert_eq!(
            (a.parents, a.children, a.value.as_str()),
            (Some(Some(2)), Some(None), "orders")
        );
        let a = parse_atom("@config.materialized:table").unwrap();
        assert!(a.at);
        assert_eq!(a.method, Method::Config("materialized".into()));
        assert!(parse_atom("wat:x").is_err());
        assert!(parse_atom("@+x").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob("an_*", "an_001"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("an_*", "mart_1"));
    }
}
