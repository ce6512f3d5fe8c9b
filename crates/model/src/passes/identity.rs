use crate::graph::Graph;
use crate::ops::Op;
use crate::passes::replace_uses;

/// Removes `Identity` (and inference `Dropout`) nodes. A graph output keeps its
/// name: the value that now feeds it takes it over.
pub fn remove_identities(graph: &mut Graph) {
    let mut index = 0;
    while index < graph.nodes.len() {
        let node = &graph.nodes[index];
        if node.op != Op::Identity {
            index += 1;
            continue;
        }
        let (from, to) = (node.output, node.inputs[0]);
        // A graph input passed straight to an output keeps its node.
        if graph.outputs.contains(&from) && graph.inputs.contains(&to) {
            index += 1;
            continue;
        }
        if graph.outputs.contains(&from) {
            graph.values[to].name = graph.values[from].name.clone();
        }
        replace_uses(graph, from, to);
        graph.nodes.remove(index);
    }
}
