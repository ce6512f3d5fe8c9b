use crate::graph::Graph;

/// Removes nodes whose results no graph output depends on.
pub fn eliminate_dead_nodes(graph: &mut Graph) {
    let mut live = vec![false; graph.values.len()];
    for &id in &graph.outputs {
        live[id] = true;
    }
    let mut keep = vec![false; graph.nodes.len()];
    for (index, node) in graph.nodes.iter().enumerate().rev() {
        if live[node.output] {
            keep[index] = true;
            for &input in &node.inputs {
                live[input] = true;
            }
        }
    }
    let mut flags = keep.into_iter();
    graph.nodes.retain(|_| flags.next().unwrap_or(true));
}
