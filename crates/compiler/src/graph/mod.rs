//! The front end both backends share: a graph split into stages (affine
//! chains and the nonlinearities between them), each affine chain probed into
//! one sparse map, and the operators left to the data owner.

pub mod linear_map;
pub mod outputs;
pub mod stages;

pub use linear_map::AffineMap;
pub use outputs::{join_outputs, output_spans, same_decisions, split_outputs, OutputTensor};
pub use stages::{partition, Stage, StageKind};

use heman_model::io::dataset::Sample;
use heman_model::ops::elementwise::{Binary, BinaryKind};
use heman_model::ops::{Activation, Op};
use heman_model::{Graph, Node, Tensor, ValueId};

use crate::error::Result;

/// The front end both compile paths share: trailing operators split off for
/// the data owner and several outputs joined into one ([`join_outputs`]),
/// products' operands broadcast explicitly, and the rest partitioned into
/// stages.
pub fn front_end(graph: &Graph) -> Result<(Graph, Vec<OutputTensor>, Vec<Stage>)> {
    let (core, outputs) = join_outputs(graph)?;
    let core = broadcast_products(&expand_prelu(&core));
    let stages = partition(&core)?;
    Ok((core, outputs, stages))
}

/// The graph with every `PRelu` of constant slopes `a` (one per channel,
/// or any shape that broadcasts) replaced by `relu(x) * (1 - a) + x * a`:
/// one ReLU and an affine combination that joins the affine region after
/// it, where slopes that differ per channel would otherwise need an
/// activation per channel.
pub fn expand_prelu(graph: &Graph) -> Graph {
    let mut out = graph.clone();
    out.nodes.clear();
    for node in &graph.nodes {
        let slope = match (&node.op, &node.inputs[..]) {
            (
                Op::Binary(Binary {
                    kind: BinaryKind::PRelu,
                }),
                &[_, slope],
            ) => graph.constant(slope).cloned(),
            _ => None,
        };
        let Some(slope) = slope else {
            out.nodes.push(node.clone());
            continue;
        };
        let (x, shape) = (node.inputs[0], graph.shape(node.output).to_vec());
        let name = |what: &str| format!("{}/{what}", node.name);
        let push =
            |out: &mut Graph, what: &str, op: Op, inputs: Vec<ValueId>, output: Option<ValueId>| {
                let output =
                    output.unwrap_or_else(|| out.add_value(name(what), shape.clone(), None));
                out.nodes.push(Node {
                    name: name(what),
                    op,
                    inputs,
                    output,
                });
                output
            };
        let constant = |out: &mut Graph, what: &str, t: Tensor| {
            out.add_value(name(what), t.shape().to_vec(), Some(t))
        };
        let binary = |kind| Op::Binary(Binary { kind });
        let kept = constant(&mut out, "1-slope", slope.map(|a| 1.0 - a));
        let slope = constant(&mut out, "slope", slope);
        let relu = push(
            &mut out,
            "relu",
            Op::Activation(Activation::Relu),
            vec![x],
            None,
        );
        let positive = push(
            &mut out,
            "positive",
            binary(BinaryKind::Mul),
            vec![relu, kept],
            None,
        );
        let linear = push(
            &mut out,
            "linear",
            binary(BinaryKind::Mul),
            vec![x, slope],
            None,
        );
        push(
            &mut out,
            "sum",
            binary(BinaryKind::Add),
            vec![positive, linear],
            Some(node.output),
        );
    }
    out
}

/// The graph with every operand of a product of two computed tensors that
/// is broadcast (a squeeze-and-excitation gate of shape `[1, C, 1, 1]`
/// scaling `[1, C, H, W]`) replaced by its explicit broadcast, `operand +
/// zeros`: an affine node, so that the product multiplies two ciphertexts
/// of one layout and the broadcast joins the affine region before it.
pub fn broadcast_products(graph: &Graph) -> Graph {
    let mut out = graph.clone();
    out.nodes.clear();
    for node in &graph.nodes {
        let mut node = node.clone();
        let is_product = matches!(
            node.op,
            Op::Binary(Binary {
                kind: BinaryKind::Mul
            })
        ) && node.inputs.iter().all(|&id| graph.constant(id).is_none());
        if is_product {
            let shape = graph.shape(node.output).to_vec();
            for input in node.inputs.iter_mut() {
                if graph.shape(*input) == shape.as_slice() {
                    continue;
                }
                let name = format!("{}/broadcast", graph.value(*input).name);
                let zeros = out.add_value(
                    format!("{name}/zeros"),
                    shape.clone(),
                    Some(Tensor::zeros(shape.clone())),
                );
                let broadcast = out.add_value(name.clone(), shape.clone(), None);
                out.nodes.push(Node {
                    name,
                    op: Op::Binary(Binary {
                        kind: BinaryKind::Add,
                    }),
                    inputs: vec![*input, zeros],
                    output: broadcast,
                });
                *input = broadcast;
            }
        }
        out.nodes.push(node);
    }
    out
}

/// The first `count` calibration samples, checked against the graph's input,
/// each with the exact model's output: the reference both backends measure
/// their approximations against.
pub fn reference_outputs(
    graph: &Graph,
    samples: &[Sample],
    count: usize,
) -> Result<Vec<(Tensor, Tensor)>> {
    let pairs = samples
        .iter()
        .take(count)
        .map(|s| {
            let x = graph.check_input(0, &s.tensor)?;
            let y = graph.run(std::slice::from_ref(&x))?.remove(0);
            Ok((x, y))
        })
        .collect::<Result<_, heman_model::ModelError>>()?;
    Ok(pairs)
}
