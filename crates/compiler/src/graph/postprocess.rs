//! Operators the data owner applies after decryption.

use heman_model::ops::Op;
use heman_model::Graph;

use crate::error::{CompileError, Result};

/// Splits trailing Softmax nodes off the graph: they hold no weights, so the
/// data owner can apply them exactly after decryption.
pub fn split_postprocess(graph: &Graph) -> Result<(Graph, Vec<Op>)> {
    if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
        return Err(CompileError::Graph(
            "only single-input, single-output models are supported".into(),
        ));
    }
    let mut graph = graph.clone();
    let mut postprocess = Vec::new();
    while let Some(last) = graph.nodes.last() {
        let is_output = graph.outputs == [last.output];
        if !(is_output && matches!(last.op, Op::Softmax(_)) && graph.has_single_use(last.inputs[0]))
        {
            break;
        }
        let node = graph.nodes.pop().expect("checked");
        graph.outputs[0] = node.inputs[0];
        postprocess.insert(0, node.op);
    }
    Ok((graph, postprocess))
}
