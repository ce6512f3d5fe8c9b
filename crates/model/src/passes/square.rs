use crate::graph::Graph;
use crate::ops::elementwise::BinaryKind;
use crate::ops::Op;

/// Rewrites `Mul(x, x)` as `Square(x)`: one ciphertext squaring instead of a
/// general product, and a clear signal to the compiler.
pub fn recognise_squares(graph: &mut Graph) {
    for node in &mut graph.nodes {
        if matches!(&node.op, Op::Binary(b) if b.kind == BinaryKind::Mul)
            && node.inputs[0] == node.inputs[1]
        {
            node.op = Op::Square;
            node.inputs.truncate(1);
        }
    }
}
