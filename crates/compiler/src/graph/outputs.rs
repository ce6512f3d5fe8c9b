//! The model's outputs: operators left to the data owner, and several
//! outputs joined into the one tensor a compiled plan computes.
//!
//! A plan computes one tensor. A model with several outputs (a classifier
//! and an auxiliary head, a feature map and its logits) is compiled with
//! its outputs flattened and concatenated, in the model's declared order;
//! the data owner splits the decrypted tensor back into them by the
//! [`OutputTensor`]s the keyparams list. The concatenation is affine, so it
//! joins the affine stages that produce the outputs and usually costs
//! nothing (on CKKS a level where an output is an activation's; on TFHE the
//! outputs keep their own quantisations, one per value).

use std::ops::Range;

use heman_model::ops::{Concat, Op};
use heman_model::tensor::{argmax, checked_volume};
use heman_model::{Graph, Node, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{CompileError, Result};

/// One tensor the model returns: where it lies in the compiled output and
/// what the data owner applies to it after decryption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputTensor {
    /// The model's name for it.
    pub name: String,
    /// Its shape (before and after post-processing: the operators left to
    /// the data owner keep it).
    pub shape: Vec<usize>,
    /// Weightless trailing operators (Softmax) the data owner applies,
    /// exactly, instead of approximating them under encryption.
    pub postprocess: Vec<Op>,
}

impl OutputTensor {
    /// Checks outputs read from a file against the compiled output's
    /// `elements`: volumes that fit and add up to it, and only Softmax
    /// along an axis of the output left to the data owner (anything else is
    /// not what a compiler wrote, and would run code the other party chose).
    pub fn check_all(outputs: &[OutputTensor], elements: usize) -> std::result::Result<(), String> {
        if outputs.is_empty() {
            return Err("no outputs listed".into());
        }
        let mut total = 0usize;
        for output in outputs {
            let volume = checked_volume(&output.shape).ok_or_else(|| {
                format!(
                    "output '{}': shape {:?} overflows",
                    output.name, output.shape
                )
            })?;
            total = total
                .checked_add(volume)
                .ok_or("the outputs' volumes overflow")?;
            for op in &output.postprocess {
                if !matches!(op, Op::Softmax(_)) {
                    return Err(format!(
                        "output '{}': {} after decryption (only Softmax is left to the data owner)",
                        output.name,
                        op.name()
                    ));
                }
                op.output_shape(&[&output.shape])
                    .map_err(|e| format!("output '{}': {}: {e}", output.name, op.name()))?;
            }
        }
        if total != elements {
            return Err(format!(
                "the outputs hold {total} values, the compiled output {elements}"
            ));
        }
        Ok(())
    }
}

/// Splits the compiled output (the outputs' elements concatenated) into the
/// model's outputs and applies each one's post-processing.
///
/// # Panics
/// When `outputs` do not pass [`OutputTensor::check_all`] for `joined`'s
/// length (checked when their file is read).
pub fn split_outputs(joined: &Tensor, outputs: &[OutputTensor]) -> Vec<Tensor> {
    outputs
        .iter()
        .zip(output_spans(outputs))
        .map(|(output, span)| {
            let tensor = Tensor::new(output.shape.clone(), joined.data()[span].to_vec());
            output
                .postprocess
                .iter()
                .fold(tensor, |t, op| op.eval(&[&t]))
        })
        .collect()
}

/// Where each output's elements lie in the compiled output, in order.
pub fn output_spans(outputs: &[OutputTensor]) -> impl Iterator<Item = Range<usize>> + '_ {
    outputs.iter().scan(0, |start, output| {
        let span = *start..*start + output.shape.iter().product::<usize>();
        *start = span.end;
        Some(span)
    })
}

/// Whether `a` and `b`, two compiled outputs, make the same decision on
/// every model output: the same largest element (the class, for logits).
pub fn same_decisions(a: &Tensor, b: &Tensor, outputs: &[OutputTensor]) -> bool {
    let (a, b) = (a.data(), b.data());
    output_spans(outputs).all(|span| {
        let part = |x: &[f64]| argmax(&x[span.start.min(x.len())..span.end.min(x.len())]);
        part(a) == part(b)
    })
}

/// The graph with one output: trailing Softmax nodes split off each output
/// for the data owner, and several outputs flattened and concatenated into
/// one. Answers the graph and its outputs, in the model's order.
pub fn join_outputs(graph: &Graph) -> Result<(Graph, Vec<OutputTensor>)> {
    if graph.inputs.len() != 1 {
        return Err(CompileError::Graph(format!(
            "{} inputs: only single-input models are supported",
            graph.inputs.len()
        )));
    }
    let mut core = graph.clone();
    let mut outputs = Vec::with_capacity(graph.outputs.len());
    for (k, &id) in graph.outputs.iter().enumerate() {
        if graph.outputs[..k].contains(&id) {
            return Err(CompileError::Graph(format!(
                "output '{}' is listed twice",
                graph.value(id).name
            )));
        }
        if graph.constant(id).is_some() || graph.inputs.contains(&id) {
            return Err(CompileError::Graph(format!(
                "output '{}' is {} rather than computed from the input: nothing to encrypt",
                graph.value(id).name,
                if graph.constant(id).is_some() {
                    "a constant"
                } else {
                    "the input itself"
                }
            )));
        }
        let (value, postprocess) = peel_postprocess(&mut core, id);
        core.outputs[k] = value;
        outputs.push(OutputTensor {
            name: graph.value(id).name.clone(),
            shape: core.shape(value).to_vec(),
            postprocess,
        });
    }
    if core.outputs.len() > 1 {
        concatenate_outputs(&mut core, joined_name(graph));
    }
    Ok((core, outputs))
}

/// Removes the Softmax nodes that end at output `id` (each read by nothing
/// else, its input read by nothing else): the value they start from and the
/// operators, in order.
fn peel_postprocess(graph: &mut Graph, id: usize) -> (usize, Vec<Op>) {
    let (mut value, mut postprocess) = (id, Vec::new());
    while let Some(index) = graph.producer(value) {
        let node = &graph.nodes[index];
        let input = node.inputs[0];
        let peelable = matches!(node.op, Op::Softmax(_))
            && graph.consumers(value).is_empty()
            && graph.outputs.iter().filter(|&&o| o == value).count() == 1
            && graph.has_single_use(input)
            && graph.constant(input).is_none();
        if !peelable {
            break;
        }
        postprocess.insert(0, graph.nodes.remove(index).op);
        let k = graph
            .outputs
            .iter()
            .position(|&o| o == value)
            .expect("an output");
        graph.outputs[k] = input;
        value = input;
    }
    (value, postprocess)
}

/// The name of the compiled output of `graph`: its only output's, or
/// `outputs(a, b, ...)` for several.
pub fn joined_name(graph: &Graph) -> String {
    let names: Vec<&str> = graph
        .outputs
        .iter()
        .map(|&id| graph.value(id).name.as_str())
        .collect();
    match names[..] {
        [one] => one.to_string(),
        _ => format!("outputs({})", names.join(", ")),
    }
}

/// Replaces the graph's outputs by one, named `name`: each flattened to `[1, n]`, then
/// concatenated along axis 1 in order.
fn concatenate_outputs(graph: &mut Graph, name: String) {
    let mut flat = Vec::with_capacity(graph.outputs.len());
    for &id in &graph.outputs.clone() {
        let n = graph.shape(id).iter().product::<usize>();
        let name = format!("{}/flat", graph.value(id).name);
        let output = graph.add_value(name.clone(), vec![1, n], None);
        graph.nodes.push(Node {
            name,
            op: Op::Reshape { shape: vec![1, n] },
            inputs: vec![id],
            output,
        });
        flat.push(output);
    }
    let total = flat.iter().map(|&id| graph.shape(id)[1]).sum();
    let joined = graph.add_value(name.clone(), vec![1, total], None);
    graph.nodes.push(Node {
        name,
        op: Op::Concat(Concat { axis: 1 }),
        inputs: flat,
        output: joined,
    });
    graph.outputs = vec![joined];
}
