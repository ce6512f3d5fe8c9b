//! Partition of a graph into stages: maximal chains of affine operators (one
//! linear map plus bias each, whatever the chain holds: Conv, Gemm, pools,
//! BatchNorm, Pad, reshapes...) separated by elementwise nonlinearities.

use heman_model::ops::elementwise::BinaryKind;
use heman_model::ops::{Activation, Op, PoolKind};
use heman_model::{Graph, ValueId};

use crate::error::{CompileError, Result};

/// What one stage computes.
#[derive(Debug, Clone, PartialEq)]
pub enum StageKind {
    /// The composition of the listed nodes (graph indices, in order), affine in
    /// the stage input.
    Affine {
        /// Graph node indices, in evaluation order.
        nodes: Vec<usize>,
    },
    /// `x * x`.
    Square,
    /// A nonlinearity that CKKS approximates by a polynomial.
    Activation(Activation),
}

/// One stage of the chain: what it computes and the graph values it reads
/// and writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// What the stage computes.
    pub kind: StageKind,
    /// The graph value the stage reads.
    pub input: ValueId,
    /// The graph value the stage writes.
    pub output: ValueId,
    /// Name of the last node, for messages.
    pub name: String,
}

/// The computed (non-constant) input of a node that is affine in it, if it is.
pub(crate) fn affine_input(graph: &Graph, node: usize) -> Option<ValueId> {
    let n = &graph.nodes[node];
    let computed: Vec<ValueId> = n
        .inputs
        .iter()
        .copied()
        .filter(|&i| graph.constant(i).is_none())
        .collect();
    let [x] = computed[..] else {
        return None;
    };
    // With every other input constant, these operators are affine in `x`
    // (they are linear in each input separately).
    let affine = match &n.op {
        Op::Conv(_) | Op::Gemm(_) | Op::MatMul | Op::BatchNormalization(_) => true,
        Op::Binary(b) => match b.kind {
            BinaryKind::Add | BinaryKind::Sub | BinaryKind::Mul => true,
            BinaryKind::Div => n.inputs[0] == x,
            BinaryKind::PRelu => false,
        },
        Op::Pool(p) => matches!(p.kind, PoolKind::Average { .. }),
        Op::Pad(_) | Op::Reshape { .. } | Op::Transpose(_) | Op::Concat(_) | Op::Identity => true,
        Op::Square | Op::Pow { .. } | Op::Activation(_) | Op::Softmax(_) => false,
    };
    affine.then_some(x)
}

/// Splits a single-input, single-output graph whose values each feed one node
/// into stages. Every node must be affine in one computed input, a square, or
/// an activation; anything else is reported, all offenders at once.
pub fn partition(graph: &Graph) -> Result<Vec<Stage>> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut problems = Vec::new();
    for (index, node) in graph.nodes.iter().enumerate() {
        let name = node.name.clone();
        let stage = if let Some(x) = affine_input(graph, index) {
            // Extend the open affine stage when it produced our input and
            // nothing else reads that value.
            if let Some(last) = stages.last_mut() {
                if last.output == x && graph.has_single_use(x) {
                    if let StageKind::Affine { nodes } = &mut last.kind {
                        nodes.push(index);
                        last.output = node.output;
                        last.name = name;
                        continue;
                    }
                }
            }
            Some(StageKind::Affine { nodes: vec![index] })
        } else {
            match &node.op {
                Op::Square => Some(StageKind::Square),
                Op::Activation(a) => Some(StageKind::Activation(*a)),
                Op::Pow { exponent: 1 } => Some(StageKind::Affine { nodes: vec![index] }),
                _ => None,
            }
        };
        match stage {
            Some(kind) => {
                let input = node
                    .inputs
                    .iter()
                    .copied()
                    .find(|&i| graph.constant(i).is_none())
                    .expect("a computed input");
                stages.push(Stage {
                    kind,
                    input,
                    output: node.output,
                    name,
                });
            }
            None => problems.push(format!("'{}' ({})", node.name, node.op.name())),
        }
    }
    if !problems.is_empty() {
        return Err(CompileError::UnsupportedNodes(problems));
    }
    // Stages must form one chain from the graph input to its output.
    let mut expected = graph.inputs[0];
    for stage in &stages {
        if stage.input != expected {
            return Err(CompileError::Graph(format!(
                "node '{}': branching graphs (a value read by several nodes) are not supported yet",
                stage.name
            )));
        }
        expected = stage.output;
    }
    if graph.outputs.first() != Some(&expected) {
        return Err(CompileError::Graph(format!(
            "output '{}' is not the end of the stage chain",
            graph.value(graph.outputs[0]).name
        )));
    }
    Ok(stages)
}
