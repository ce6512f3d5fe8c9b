//! Graph simplification after import (constants are already folded by the
//! importer): identities removed, BatchNorm folded into the preceding Conv or
//! Gemm, zero Pads folded into the following Conv/AveragePool, `x*x`
//! recognised as a square, dead nodes removed.

mod dead;
mod fold_batch_norm;
mod fold_pad;
mod identity;
mod square;

use crate::graph::{Graph, ValueId};

pub use dead::eliminate_dead_nodes;
pub use fold_batch_norm::fold_batch_norm;
pub use fold_pad::fold_pad;
pub use identity::remove_identities;
pub use square::recognise_squares;

/// Runs every pass; the result computes the same function as the input.
pub fn simplify(mut graph: Graph) -> Graph {
    remove_identities(&mut graph);
    fold_batch_norm(&mut graph);
    fold_pad(&mut graph);
    recognise_squares(&mut graph);
    eliminate_dead_nodes(&mut graph);
    graph
}

/// Makes every reader of `from` (nodes and graph outputs) read `to` instead.
fn replace_uses(graph: &mut Graph, from: ValueId, to: ValueId) {
    for node in &mut graph.nodes {
        for input in &mut node.inputs {
            if *input == from {
                *input = to;
            }
        }
    }
    for output in &mut graph.outputs {
        if *output == from {
            *output = to;
        }
    }
}
