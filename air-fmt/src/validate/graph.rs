//! Cycles in small directed graphs (schema references, plan step edges): Tarjan's
//! strongly connected components, and one readable cycle through each.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One cyclic strongly connected component.
pub(super) struct Cycle<N> {
    /// Every node of the component.
    pub members: BTreeSet<N>,
    /// A closed path through the component, starting and ending at its smallest node
    /// (`[a, b, a]`; `[a, a]` for a self-loop).
    pub path: Vec<N>,
}

/// Every cyclic component of the graph given by `succ` (nodes that only appear as
/// successors have no outgoing edges), in a deterministic order.
pub(super) fn cycles<N: Ord + Clone>(succ: &BTreeMap<N, Vec<N>>) -> Vec<Cycle<N>> {
    let mut t = Tarjan {
        succ,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on_stack: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in succ.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    let mut found: Vec<Cycle<N>> = t
        .out
        .into_iter()
        .filter(|scc| {
            scc.len() > 1
                || scc
                    .iter()
                    .next()
                    .is_some_and(|v| succ.get(v).is_some_and(|s| s.contains(v)))
        })
        .filter_map(|members| {
            let path = closed_path(succ, &members)?;
            Some(Cycle { members, path })
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

struct Tarjan<'g, N> {
    succ: &'g BTreeMap<N, Vec<N>>,
    index: BTreeMap<N, usize>,
    low: BTreeMap<N, usize>,
    on_stack: BTreeSet<N>,
    stack: Vec<N>,
    next: usize,
    out: Vec<BTreeSet<N>>,
}

impl<N: Ord + Clone> Tarjan<'_, N> {
    fn visit(&mut self, v: &N) {
        self.index.insert(v.clone(), self.next);
        self.low.insert(v.clone(), self.next);
        self.next += 1;
        self.stack.push(v.clone());
        self.on_stack.insert(v.clone());
        let succ = self.succ;
        for w in succ.get(v).into_iter().flatten() {
            if !self.index.contains_key(w) {
                self.visit(w);
                let lw = self.low[w];
                self.lower(v, lw);
            } else if self.on_stack.contains(w) {
                let iw = self.index[w];
                self.lower(v, iw);
            }
        }
        if self.low[v] == self.index[v] {
            let mut scc = BTreeSet::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.remove(&w);
                let done = &w == v;
                scc.insert(w);
                if done {
                    break;
                }
            }
            self.out.push(scc);
        }
    }

    fn lower(&mut self, v: &N, to: usize) {
        if let Some(l) = self.low.get_mut(v) {
            *l = (*l).min(to);
        }
    }
}

/// The shortest closed path from the smallest member back to itself, inside `members`.
fn closed_path<N: Ord + Clone>(
    succ: &BTreeMap<N, Vec<N>>,
    members: &BTreeSet<N>,
) -> Option<Vec<N>> {
    let start = members.iter().next()?.clone();
    let mut parent: BTreeMap<N, N> = BTreeMap::new();
    let mut queue = VecDeque::from([start.clone()]);
    while let Some(u) = queue.pop_front() {
        for w in succ.get(&u).into_iter().flatten() {
            if !members.contains(w) {
                continue;
            }
            if *w == start {
                let mut chain = vec![u.clone()];
                let mut at = u.clone();
                while at != start {
                    at = parent.get(&at)?.clone();
                    chain.push(at.clone());
                }
                chain.reverse();
                chain.push(start);
                return Some(chain);
            }
            if !parent.contains_key(w) && *w != start {
                parent.insert(w.clone(), u.clone());
                queue.push_back(w.clone());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(u32, u32)]) -> BTreeMap<u32, Vec<u32>> {
        let mut g: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for &(a, b) in edges {
            g.entry(a).or_default().push(b);
            g.entry(b).or_default();
        }
        g
    }

    #[test]
    fn finds_each_cycle_once_with_a_readable_path() {
        assert!(cycles(&graph(&[(1, 2), (2, 3), (1, 3)])).is_empty());
        let c = cycles(&graph(&[(1, 2), (2, 3), (3, 1), (3, 4)]));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].path, vec![1, 2, 3, 1]);
        let c = cycles(&graph(&[(5, 5), (1, 2), (2, 1)]));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].path, vec![1, 2, 1]);
        assert_eq!(c[1].path, vec![5, 5]);
    }
}
