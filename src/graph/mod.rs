//! The dependency graph of a project (petgraph): nodes are indexes into the node list, edges
//! run from parent to child. Building it finds cycles; it offers a stable topological order
//! and bounded ancestor/descendant walks for selection.

pub(crate) mod select;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

pub(crate) struct Graph {
    g: DiGraph<(), ()>,
    order: Vec<usize>,
}

impl Graph {
    /// The graph of `n` nodes with `edges` (parent, child). `Err` holds one cycle, as node
    /// indexes in dependency order with the first repeated at the end.
    pub(crate) fn new(
        n: usize,
        edges: impl IntoIterator<Item = (usize, usize)>,
    ) -> Result<Graph, Vec<usize>> {
        let mut graph = Graph {
            g: digraph(n, edges),
            order: Vec::new(),
        };
        graph.order = graph.topological();
        if graph.order.len() < n {
            return Err(graph.find_cycle());
        }
        Ok(graph)
    }

    /// Kahn's algorithm taking the lowest index first, so the order is stable.
    fn topological(&self) -> Vec<usize> {
        let mut indegree = self.indegrees();
        let mut ready: BinaryHeap<Reverse<usize>> = indegree
            .iter()
            .enumerate()
            .filter(|(_, d)| **d == 0)
            .map(|(i, _)| Reverse(i))
            .collect();
        let mut order = Vec::with_capacity(indegree.len());
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for c in self
                .g
                .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            {
                indegree[c.index()] -= 1;
                if indegree[c.index()] == 0 {
                    ready.push(Reverse(c.index()));
                }
            }
        }
        order
    }

    /// How many parents each node has.
    fn indegrees(&self) -> Vec<usize> {
        self.g
            .node_indices()
            .map(|i| self.g.neighbors_directed(i, Direction::Incoming).count())
            .collect()
    }

    /// One cycle, starting and ending at the lowest node of the cycle-forming component with
    /// the lowest node.
    fn find_cycle(&self) -> Vec<usize> {
        let scc = self.first_cyclic_component();
        let Some(start) = scc.iter().min_by_key(|i| i.index()).copied() else {
            return Vec::new();
        };
        let members: HashSet<NodeIndex> = scc.into_iter().collect();
        // Shortest way from `start` back to itself inside the component.
        let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(at) = queue.pop_front() {
            for next in self.g.neighbors_directed(at, Direction::Outgoing) {
                if next == start {
                    return cycle_through(start, at, &prev);
                }
                if members.contains(&next) && !prev.contains_key(&next) && next != start {
                    prev.insert(next, at);
                    queue.push_back(next);
                }
            }
        }
        vec![start.index(), start.index()]
    }

    /// Of the strongly connected components that hold a cycle, the one with the lowest node.
    fn first_cyclic_component(&self) -> Vec<NodeIndex> {
        petgraph::algo::tarjan_scc(&self.g)
            .into_iter()
            .filter(|c| c.len() > 1 || self.g.contains_edge(c[0], c[0]))
            .min_by_key(|c| c.iter().map(|i| i.index()).min())
            .unwrap_or_default()
    }

    /// Every node, parents before children.
    pub(crate) fn order(&self) -> &[usize] {
        &self.order
    }

    /// Each node's place in `order()`.
    pub(crate) fn positions(&self) -> Vec<usize> {
        let mut pos = vec![0; self.order.len()];
        for (k, &i) in self.order.iter().enumerate() {
            pos[i] = k;
        }
        pos
    }

    pub(crate) fn parents(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.g
            .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
            .map(|n| n.index())
    }

    /// The parents of `i`, looking through those `see_through` names (ephemeral models are
    /// inlined, so what they read is what `i` reads).
    pub(crate) fn parents_through(
        &self,
        i: usize,
        see_through: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self.parents(i).collect();
        while let Some(p) = stack.pop() {
            if !seen.insert(p) {
                continue;
            }
            if see_through(p) {
                stack.extend(self.parents(p));
            } else {
                out.push(p);
            }
        }
        out
    }

    /// Nodes reachable from `start` going `up` (to parents) or down, at most `depth` steps.
    pub(crate) fn walk(&self, start: usize, up: bool, depth: Option<usize>) -> Vec<usize> {
        let dir = if up {
            Direction::Incoming
        } else {
            Direction::Outgoing
        };
        let mut seen = HashSet::from([start]);
        let mut out = Vec::new();
        let mut frontier = vec![start];
        let mut level = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
            let mut next = Vec::new();
            for i in frontier {
                for n in self.g.neighbors_directed(NodeIndex::new(i), dir) {
                    if seen.insert(n.index()) {
                        out.push(n.index());
                        next.push(n.index());
                    }
                }
            }
            frontier = next;
            level += 1;
        }
        out
    }
}

/// `n` nodes and the edges between them, each edge once.
fn digraph(n: usize, edges: impl IntoIterator<Item = (usize, usize)>) -> DiGraph<(), ()> {
    let mut g = DiGraph::with_capacity(n, n * 2);
    for _ in 0..n {
        g.add_node(());
    }
    let mut seen = HashSet::new();
    for (p, c) in edges {
        if seen.insert((p, c)) {
            g.add_edge(NodeIndex::new(p), NodeIndex::new(c), ());
        }
    }
    g
}

/// The cycle `start`, the way `prev` leads from `start` to `at`, `at`, `start`.
fn cycle_through(
    start: NodeIndex,
    at: NodeIndex,
    prev: &HashMap<NodeIndex, NodeIndex>,
) -> Vec<usize> {
    let mut back = Vec::new();
    let mut cur = at;
    while cur != start {
        back.push(cur.index());
        cur = prev[&cur];
    }
    back.reverse();
    [vec![start.index()], back, vec![start.index()]].concat()
}
