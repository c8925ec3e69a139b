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
    "test_name",
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
    TestName,
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
                terms.push(parse_term(term)?);
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

/// A term: atoms joined by commas (their intersection).
fn parse_term(term: &str) -> Result<Vec<Atom>, Diagnostic> {
    term.split(',')
        .map(|atom| match atom {
            "" => Err(Diagnostic::error(format!(
                "invalid selector `{term}`: an empty part between commas"
            ))),
            _ => parse_atom(atom),
        })
        .collect()
}

fn parse_atom(text: &str) -> Result<Atom, Diagnostic> {
    let at = text.starts_with('@');
    let rest = text.trim_start_matches('@');
    let (parents, r) = depth_prefix(rest).map_err(|e| invalid(text, &e))?;
    let (children, rest) = depth_suffix(r).map_err(|e| invalid(text, &e))?;
    if rest.is_empty() {
        return Err(invalid(text, "nothing to select"));
    }
    if at && (parents.is_some() || children.is_some()) {
        return Err(invalid(text, "`@` cannot be combined with `+`"));
    }
    let (method, value) = method_and_value(text, rest)?;
    if method == Method::State {
        check_state_value(text, value)?;
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

fn invalid(text: &str, why: &str) -> Diagnostic {
    Diagnostic::error(format!("invalid selector `{text}`: {why}"))
}

/// `method:value`, or a bare value: a path when it looks like one, else a name.
fn method_and_value<'r>(text: &str, rest: &'r str) -> Result<(Method, &'r str), Diagnostic> {
    let Some((m, v)) = rest.split_once(':') else {
        let path = rest.contains('/') || rest.ends_with(".sql");
        return Ok((if path { Method::Path } else { Method::Fqn }, rest));
    };
    let method = method(m).ok_or_else(|| {
        invalid(text, &format!("unknown method `{m}`"))
            .help(format!("methods: {}", METHODS.join(", ")))
    })?;
    Ok((method, v))
}

/// A `state:` value must be one xform knows.
fn check_state_value(text: &str, value: &str) -> Result<(), Diagnostic> {
    if STATE_VALUES.contains(&value) {
        return Ok(());
    }
    Err(invalid(text, &format!("unknown state `{value}`")).help(
        did_you_mean(value, STATE_VALUES.iter().copied())
            .unwrap_or_else(|| format!("use one of: {}", STATE_VALUES.join(", "))),
    ))
}

fn method(name: &str) -> Option<Method> {
    Some(match name {
        "fqn" => Method::Fqn,
        "path" | "file" => Method::Path,
        "tag" => Method::Tag,
        "resource_type" => Method::ResourceType,
        "source" => Method::Source,
        "test_type" => Method::TestType,
        "test_name" => Method::TestName,
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
        check_facts(atom, facts)?;
    }
    let mut warnings = Vec::new();
    let mut chosen: BTreeSet<usize> = if select.is_empty() {
        (0..nodes.len()).collect()
    } else {
        resolve(graph, nodes, select, facts, &mut warnings)
    };
    let excluded = resolve(graph, nodes, exclude, facts, &mut warnings);
    chosen.retain(|i| !excluded.contains(i));
    let tests = tests_of(graph, nodes, &chosen);
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

/// A `state:` or `result:` atom needs the state's manifest or run results.
fn check_facts(atom: &Atom, facts: &Facts) -> Result<(), Diagnostic> {
    let missing = match atom.method {
        Method::State if facts.modified.is_none() => "a manifest.json",
        Method::Result if facts.results.is_none() => "a run_results.json",
        _ => return Ok(()),
    };
    Err(Diagnostic::error(format!(
        "selector `{}` needs --state DIR, a folder with {missing} from an earlier run",
        atom.text
    ))
    .help("e.g. copy production's target/ artifacts to prod-artifacts/ and pass --state prod-artifacts"))
}

/// The tests not chosen that test a chosen node.
fn tests_of(graph: &Graph, nodes: &[Node], chosen: &BTreeSet<usize>) -> Vec<usize> {
    (0..nodes.len())
        .filter(|i| matches!(nodes[*i].kind, NodeKind::Test | NodeKind::UnitTest))
        .filter(|i| !chosen.contains(i) && graph.parents(*i).any(|p| chosen.contains(&p)))
        .collect()
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
        out.extend(resolve_term(graph, nodes, term, facts, warnings));
    }
    out
}

/// The nodes every atom of a term selects.
fn resolve_term(
    graph: &Graph,
    nodes: &[Node],
    term: &[Atom],
    facts: &Facts,
    warnings: &mut Vec<Diagnostic>,
) -> BTreeSet<usize> {
    let mut acc: Option<BTreeSet<usize>> = None;
    for atom in term {
        let set = resolve_atom(graph, nodes, atom, facts, warnings);
        acc = Some(match acc {
            None => set,
            Some(prev) => prev.intersection(&set).copied().collect(),
        });
    }
    acc.unwrap_or_default()
}

/// The nodes one atom selects, with a warning when it matches none.
fn resolve_atom(
    graph: &Graph,
    nodes: &[Node],
    atom: &Atom,
    facts: &Facts,
    warnings: &mut Vec<Diagnostic>,
) -> BTreeSet<usize> {
    let matching = nodes
        .iter()
        .enumerate()
        .filter(|(i, n)| matches(atom, *i, n, facts))
        .map(|(i, _)| i);
    let set = expand(graph, atom, matching);
    // A PR that changes nothing selects nothing: that is not worth a warning.
    if set.is_empty() && !matches!(atom.method, Method::State | Method::Result) {
        warnings.push(Diagnostic::warning(format!(
            "selector `{}` matches no node",
            atom.text
        )));
    }
    set
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
        Method::Result => result_matches(v, n, facts),
        Method::Fqn => fqn_matches(v, n),
        Method::Path => path_matches(v, n),
        Method::Tag => n.config.tags().iter().any(|t| glob(v, t)),
        Method::ResourceType => n.kind.name() == v || (v == "test" && n.kind == NodeKind::UnitTest),
        Method::Source => {
            n.kind == NodeKind::Source
                && (glob(v, &n.name) || n.name.split('.').next().is_some_and(|s| glob(v, s)))
        }
        Method::TestType => test_type_matches(v, n),
        // A generic test by the test it runs (`test_name:unique`; a package's without its namespace).
        Method::TestName => (n.test.as_ref()).is_some_and(|t| glob(v, &t.test_name)),
        Method::Config(key) => config_matches(key, v, n),
    }
}

/// `result:error` also matches a runtime error.
fn result_matches(v: &str, n: &Node, facts: &Facts) -> bool {
    facts
        .results
        .and_then(|r| r.get(&n.unique_id))
        .is_some_and(|s| s == v || (v == "error" && s == "runtime error"))
}

/// A file, a folder holding it, or a glob.
fn path_matches(v: &str, n: &Node) -> bool {
    let want = v.trim_end_matches('/');
    let path = &*n.path;
    path == want || path.strip_prefix(want).is_some_and(|r| r.starts_with('/')) || glob(want, path)
}

/// `test_type:unit`, `generic`, `singular`, or `data` (every data test).
fn test_type_matches(v: &str, n: &Node) -> bool {
    match v {
        "unit" => n.kind == NodeKind::UnitTest,
        "generic" | "data" if n.kind == NodeKind::Test => n.test.is_some() || v == "data",
        "singular" => n.kind == NodeKind::Test && n.test.is_none(),
        _ => false,
    }
}

/// `config.key:v`: a string setting matching the glob, a list holding one, or another value
/// written as `v`.
fn config_matches(key: &str, v: &str, n: &Node) -> bool {
    match n.config.get(key) {
        Some(Json::String(s)) => glob(v, s),
        Some(Json::Array(items)) => items.iter().any(|i| i.as_str().is_some_and(|s| glob(v, s))),
        Some(other) => *other == v,
        None => false,
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
