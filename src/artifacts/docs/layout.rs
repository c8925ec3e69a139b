//! A layered layout of the DAG, computed once so the page only places what it draws: each
//! node's layer is its longest path from a root, its order within the layer follows the mean
//! order of its parents (one downward sweep), so edges mostly run straight.

/// Per node, `(layer, order)` for nodes in the drawing (`dag`), else None. `parents` point
/// to earlier or later indexes alike; the graph has no cycles.
pub(super) fn layers(parents: &[&[usize]], dag: &[bool]) -> Vec<Option<(usize, usize)>> {
    let n = parents.len();
    let mut layer: Vec<Option<usize>> = vec![None; n];
    for k in 0..n {
        depth(k, parents, dag, &mut layer);
    }
    let count = layer.iter().flatten().max().map_or(0, |m| m + 1);
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (k, l) in layer.iter().enumerate() {
        if let Some(l) = l {
            by_layer[*l].push(k);
        }
    }
    let mut order = vec![0.0f64; n];
    let mut out = vec![None; n];
    for nodes in &mut by_layer {
        let key = |k: usize| {
            let ps: Vec<f64> = parents[k]
                .iter()
                .filter(|&&p| dag[p])
                .map(|&p| order[p])
                .collect();
            if ps.is_empty() {
                f64::MAX
            } else {
                ps.iter().sum::<f64>() / ps.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize)> = nodes.iter().map(|&k| (key(k), k)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (pos, &(_, k)) in keyed.iter().enumerate() {
            order[k] = pos as f64;
            out[k] = layer[k].map(|l| (l, pos));
        }
    }
    out
}

/// The longest path from a root to `k` among the drawn nodes, memoized; iterative, so depth
/// is not bounded by the stack.
fn depth(k: usize, parents: &[&[usize]], dag: &[bool], layer: &mut [Option<usize>]) {
    if !dag[k] || layer[k].is_some() {
        return;
    }
    let mut stack = vec![k];
    while let Some(&top) = stack.last() {
        let pending: Vec<usize> = (parents[top].iter().copied())
            .filter(|&p| dag[p] && layer[p].is_none() && !stack.contains(&p))
            .collect();
        if pending.is_empty() {
            let d = (parents[top].iter())
                .filter_map(|&p| layer[p].filter(|_| dag[p]))
                .max()
                .map_or(0, |m| m + 1);
            layer[top] = Some(d);
            stack.pop();
        } else {
            stack.extend(pending);
        }
    }
}
