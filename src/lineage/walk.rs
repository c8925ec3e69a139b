//! Following column lineage across models: every hop upstream of some columns (where they come
//! from) or downstream (what reads them), breadth first.

use std::collections::{HashMap, HashSet, VecDeque};

use super::{Edge, Lineage};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Up,
    Down,
}

/// One edge met on a walk: `to` (a model's column) reads `from`; `depth` counts hops from
/// where the walk started (1 for the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hop<'l> {
    pub(crate) from: (usize, &'l str),
    pub(crate) to: (usize, &'l str),
    pub(crate) edge: &'l Edge,
    pub(crate) depth: usize,
}

/// Every hop reachable from `start` (node, column) going `step`, at most `depth` hops away,
/// each once, nearest first.
pub(crate) fn walk<'l>(
    l: &'l Lineage,
    start: &[(usize, String)],
    step: Step,
    depth: Option<usize>,
) -> Vec<Hop<'l>> {
    let readers = (step == Step::Down).then(|| readers(l));
    let mut seen: HashSet<(usize, String)> = HashSet::new();
    let mut queue: VecDeque<(usize, String, usize)> = VecDeque::new();
    for (i, c) in start {
        if seen.insert((*i, c.to_lowercase())) {
            queue.push_back((*i, c.clone(), 0));
        }
    }
    let mut out = Vec::new();
    while let Some((i, column, d)) = queue.pop_front() {
        if depth.is_some_and(|max| d >= max) {
            continue;
        }
        let hops: Vec<Hop<'l>> = match &readers {
            None => l.column(i, &column).map_or_else(Vec::new, |c| {
                (c.from.iter())
                    .map(|e| Hop {
                        from: (e.node, e.column.as_str()),
                        to: (i, c.name.as_str()),
                        edge: e,
                        depth: d + 1,
                    })
                    .collect()
            }),
            Some(r) => (r.get(&(i, column.to_lowercase())).into_iter().flatten())
                .map(|&(to, col, e)| Hop {
                    from: (i, e.column.as_str()),
                    to: (to, col),
                    edge: e,
                    depth: d + 1,
                })
                .collect(),
        };
        for h in hops {
            let next = match step {
                Step::Up => h.from,
                Step::Down => h.to,
            };
            if next.1 != "*" && seen.insert((next.0, next.1.to_lowercase())) {
                queue.push_back((next.0, next.1.to_string(), d + 1));
            }
            out.push(h);
        }
    }
    out
}

type Readers<'l> = HashMap<(usize, String), Vec<(usize, &'l str, &'l Edge)>>;

/// For each (node, column), the model columns that read it.
fn readers(l: &Lineage) -> Readers<'_> {
    let mut r: Readers<'_> = HashMap::new();
    for (to, nl) in l.nodes.iter().enumerate() {
        for c in nl.iter().flat_map(|nl| &nl.columns) {
            for e in &c.from {
                let key = (e.node, e.column.to_lowercase());
                r.entry(key).or_default().push((to, c.name.as_str(), e));
            }
        }
    }
    r
}
