//! Node selection, dbt's syntax: `name`, `+name`, `name+`, `2+name`, `name+1`, `@name`,
//! `tag:x`, `path:models/mart`, `config.materialized:table`, `resource_type:model`,
//! `source:raw`, `test_type:unit`; space is union, comma is intersection; `--exclude` removes.
//! Tests of selected nodes are selected too (dbt's "eager" indirect selection).

use std::collections::BTreeSet;

use serde_json::Value as Json;

use super::Graph;
use crate::diagnostics::Diagnostic;
use crate::project::{Node, NodeKind};

const METHODS: &[&str] = &[
    "fqn",
    "path",
    "tag",
    "config.<key>",
    "resource_type",
    "source",
    "test_type",
];

#[derive(Debug, Clone, PartialEq)]
enum Method {
    Fqn,
    Path,
    Tag,
    Config(String),
    ResourceType,
    Source,
    TestType,
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
pub struct Selection(Vec<Vec<Atom>>);

impl Selection {
    /// Parses every `-s` value (each may hold several space-separated terms).
    pub fn parse(specs: &[String]) -> Result<Selection, Diagnostic> {
        let mut terms = Vec::new();
        for spec in specs {
            for term in spec.split_whitespace() {
                let atoms = term
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(parse_atom)
                    .collect::<Result<Vec<_>, _>>()?;
                if !atoms.is_empty() {
                    terms.push(atoms);
                }
            }
        }
        Ok(Selection(terms))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
/// An empty `select` means every node.
pub fn select(
    graph: &Graph,
    nodes: &[Node],
    select: &Selection,
    exclude: &Selection,
) -> (Vec<usize>, Vec<Diagnostic>) {
    let mut warnings = Vec::new();
    let mut chosen: BTreeSet<usize> = if select.is_empty() {
        (0..nodes.len()).collect()
    } else {
        resolve(graph, nodes, select, &mut warnings)
    };
    let excluded = resolve(graph, nodes, exclude, &mut warnings);
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
    (ordered, warnings)
}

fn resolve(
    graph: &Graph,
    nodes: &[Node],
    sel: &Selection,
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
                    .filter(|(_, n)| matches(atom, n))
                    .map(|(i, _)| i),
            );
            if set.is_empty() {
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

fn matches(atom: &Atom, n: &Node) -> bool {
    let v = atom.value.as_str();
    match &atom.method {
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
