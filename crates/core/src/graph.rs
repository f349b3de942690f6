//! Cycle detection on small named graphs (role includes, group nesting).
//!
//! Pure and deterministic: nodes and edges are visited in the order given, so the same input
//! reports the same cycles.

use std::collections::{BTreeMap, HashMap};

/// A cycle: `names` starts and ends with the same node; `closing_edge` is the payload of the
/// edge that closes it (where it was written, for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle<E> {
    pub names: Vec<String>,
    pub closing_edge: E,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Unvisited,
    OnStack,
    Done,
}

/// Finds cycles by depth-first search; each back edge yields one cycle. Iterative, so deep
/// graphs cannot overflow the stack. Edges to nodes absent from `edges` are ignored.
pub fn find_cycles<E: Clone>(edges: &BTreeMap<&str, Vec<(&str, E)>>) -> Vec<Cycle<E>> {
    let mut marks: HashMap<&str, Mark> = edges.keys().map(|k| (*k, Mark::Unvisited)).collect();
    let mut cycles = Vec::new();
    for &start in edges.keys() {
        if marks[start] != Mark::Unvisited {
            continue;
        }
        // Each frame is a node and the index of its next edge to follow.
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        marks.insert(start, Mark::OnStack);
        while let Some(frame) = stack.last_mut() {
            let (node, next) = *frame;
            let Some((child, payload)) = edges[node].get(next) else {
                marks.insert(node, Mark::Done);
                stack.pop();
                continue;
            };
            frame.1 += 1;
            match marks.get(child).copied() {
                None | Some(Mark::Done) => {}
                Some(Mark::Unvisited) => {
                    marks.insert(child, Mark::OnStack);
                    stack.push((child, 0));
                }
                Some(Mark::OnStack) => {
                    let from = stack.iter().position(|(n, _)| n == child).unwrap_or(0);
                    let mut names: Vec<String> = stack[from..].iter().map(|(n, _)| n.to_string()).collect();
                    names.push(child.to_string());
                    cycles.push(Cycle { names, closing_edge: payload.clone() });
                }
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph<'a>(pairs: &[(&'a str, &[&'a str])]) -> BTreeMap<&'a str, Vec<(&'a str, ())>> {
        pairs.iter().map(|(n, children)| (*n, children.iter().map(|c| (*c, ())).collect())).collect()
    }

    #[test]
    fn acyclic_graph_has_no_cycles() {
        let g = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
        assert!(find_cycles(&g).is_empty());
    }

    #[test]
    fn reports_the_cycle_path() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
        let cycles = find_cycles(&g);
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].names, ["a", "b", "c", "a"]);
    }

    #[test]
    fn self_loop_is_a_cycle() {
        let g = graph(&[("a", &["a"])]);
        assert_eq!(find_cycles(&g)[0].names, ["a", "a"]);
    }
}
