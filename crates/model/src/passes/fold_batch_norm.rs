use crate::graph::Graph;
use crate::ops::linalg::transpose_2d;
use crate::ops::{Gemm, Op};
use crate::tensor::{broadcast_shapes, Tensor};

/// Folds an inference `BatchNormalization` into the `Conv` or `Gemm` producing
/// its input, when that result has no other reader and all weights are
/// constant: `W' = W * m`, `b' = b * m + a` per output channel, where
/// `y = m * x + a` is the normalisation.
pub fn fold_batch_norm(graph: &mut Graph) {
    let mut index = 0;
    while index < graph.nodes.len() {
        if !try_fold(graph, index) {
            index += 1;
        }
    }
}

/// Folds node `index` if it is a foldable BatchNorm; returns whether it did
/// (the node is then removed).
fn try_fold(graph: &mut Graph, index: usize) -> bool {
    let bn_node = &graph.nodes[index];
    let Op::BatchNormalization(bn) = &bn_node.op else {
        return false;
    };
    let x = bn_node.inputs[0];
    let Some(producer) = graph.producer(x) else {
        return false;
    };
    if !graph.has_single_use(x) {
        return false;
    }
    let params: Option<Vec<&Tensor>> = bn_node.inputs[1..]
        .iter()
        .map(|&id| graph.constant(id))
        .collect();
    let Some(params) = params else {
        return false;
    };
    let affine = bn.affine(params[0], params[1], params[2], params[3]);
    let bn_output = bn_node.output;
    let node = &graph.nodes[producer];
    let weights: Option<Vec<&Tensor>> = node.inputs[1..]
        .iter()
        .map(|&id| graph.constant(id))
        .collect();
    let Some(weights) = weights else {
        return false;
    };
    let name = node.name.clone();
    let (op, folded) = match &node.op {
        Op::Conv(conv) => {
            let (w, b) = fold_conv(weights[0], weights.get(1).copied(), &affine);
            (Op::Conv(conv.clone()), vec![w, b])
        }
        Op::Gemm(gemm) => {
            let (w, c) = fold_gemm(gemm, weights[0], weights.get(1).copied(), &affine);
            let canonical = Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: gemm.trans_a,
                trans_b: false,
            };
            (Op::Gemm(canonical), vec![w, c])
        }
        _ => return false,
    };
    let mut inputs = vec![graph.nodes[producer].inputs[0]];
    for (i, tensor) in folded.into_iter().enumerate() {
        let shape = tensor.shape().to_vec();
        inputs.push(graph.add_value(format!("{name}_bn_folded_{i}"), shape, Some(tensor)));
    }
    let node = &mut graph.nodes[producer];
    node.op = op;
    node.inputs = inputs;
    node.output = bn_output;
    graph.nodes.remove(index);
    true
}

fn fold_conv(w: &Tensor, b: Option<&Tensor>, affine: &[(f64, f64)]) -> (Tensor, Tensor) {
    let per_channel = w.len() / affine.len();
    let mut w2 = w.clone();
    for (i, v) in w2.data_mut().iter_mut().enumerate() {
        *v *= affine[i / per_channel].0;
    }
    let bias = affine
        .iter()
        .enumerate()
        .map(|(c, &(mul, add))| b.map_or(0.0, |b| b.data()[c]) * mul + add)
        .collect();
    (w2, Tensor::new(vec![affine.len()], bias))
}

/// Returns `B'` as `[K, N]` (no transpose, alpha folded in) and `C'`.
fn fold_gemm(
    gemm: &Gemm,
    b: &Tensor,
    c: Option<&Tensor>,
    affine: &[(f64, f64)],
) -> (Tensor, Tensor) {
    let b = if gemm.trans_b {
        transpose_2d(b)
    } else {
        b.clone()
    };
    let n = affine.len();
    let mut b2 = b;
    for (i, v) in b2.data_mut().iter_mut().enumerate() {
        *v *= gemm.alpha * affine[i % n].0;
    }
    let c = c.cloned().unwrap_or_else(|| Tensor::zeros(vec![n]));
    let shape = broadcast_shapes(c.shape(), &[n]).unwrap_or(vec![n]);
    let mut c2 = c.broadcast_to(&shape);
    for (i, v) in c2.data_mut().iter_mut().enumerate() {
        let (mul, add) = affine[i % n];
        *v = gemm.beta * *v * mul + add;
    }
    (b2, c2)
}
