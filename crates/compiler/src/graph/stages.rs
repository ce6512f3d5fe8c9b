//! Partition of a graph into stages: a dataflow graph whose nodes are
//! affine regions (one linear map per computed input plus a bias, whatever
//! the region holds: Conv, Gemm, pools, BatchNorm, Pad, reshapes, residual
//! Add/Sub, Concat...) and the nonlinearities between them (squares,
//! activations, products of two computed tensors).
//!
//! An affine node joins the region that produced its input when nothing
//! else reads that value, so a chain is one region as before, and a
//! residual `Add(conv2(relu(...)), x)` is one region affine in two inputs:
//! `M_1 relu(...) + M_2 x + b`, with `M_2` the identity (or the projection
//! convolution). Values read by several stages are computed once.

use std::collections::HashMap;

use heman_model::ops::elementwise::BinaryKind;
use heman_model::ops::{Activation, Op, PoolKind};
use heman_model::{Graph, ValueId};

use crate::error::{CompileError, Result};

/// What one stage computes.
#[derive(Debug, Clone, PartialEq)]
pub enum StageKind {
    /// The composition of the listed nodes (graph indices, in evaluation
    /// order), affine in each of the stage's inputs.
    Affine {
        /// Graph node indices, in evaluation order.
        nodes: Vec<usize>,
    },
    /// `x * x`.
    Square,
    /// A nonlinearity that CKKS approximates by a polynomial.
    Activation(Activation),
    /// The elementwise product of the stage's two inputs (of one shape).
    Product,
}

impl StageKind {
    /// What the stage computes, in messages.
    pub fn describe(&self) -> &'static str {
        match self {
            StageKind::Affine { .. } => "affine",
            StageKind::Square => "square",
            StageKind::Activation(a) => a.name(),
            StageKind::Product => "product",
        }
    }
}

/// One stage of the dataflow: what it computes and the graph values it
/// reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// What the stage computes.
    pub kind: StageKind,
    /// The graph values the stage reads (distinct, computed at run time).
    pub inputs: Vec<ValueId>,
    /// Where each input comes from: 0 is the graph input, `k + 1` the
    /// output of stage `k`.
    pub sources: Vec<usize>,
    /// The graph value the stage writes.
    pub output: ValueId,
    /// Name of the last node, for messages.
    pub name: String,
}

/// The computed (non-constant) inputs of node `node`, each once.
pub(crate) fn computed_inputs(graph: &Graph, node: usize) -> Vec<ValueId> {
    let mut computed = Vec::new();
    for &id in &graph.nodes[node].inputs {
        if graph.constant(id).is_none() && !computed.contains(&id) {
            computed.push(id);
        }
    }
    computed
}

/// The computed inputs of a node that is jointly affine in them: with every
/// other input constant, an operator linear in each input separately and
/// not multiplying two of them.
pub(crate) fn affine_inputs(graph: &Graph, node: usize) -> Option<Vec<ValueId>> {
    let n = &graph.nodes[node];
    let computed = computed_inputs(graph, node);
    let single = computed.len() == 1;
    let affine = match &n.op {
        Op::Conv(_) | Op::Gemm(_) | Op::MatMul | Op::BatchNormalization(_) => single,
        Op::Binary(b) => match b.kind {
            BinaryKind::Add | BinaryKind::Sub => true,
            BinaryKind::Mul => single,
            BinaryKind::Div => single && n.inputs[0] == computed[0],
            BinaryKind::PRelu => false,
        },
        Op::Pool(p) => matches!(p.kind, PoolKind::Average { .. }),
        Op::Concat(_) => true,
        Op::Pad(_)
        | Op::Reshape { .. }
        | Op::Transpose(_)
        | Op::Identity
        | Op::Select(_)
        | Op::Reduce(_) => single,
        Op::Pow { exponent } => *exponent == 1,
        Op::Square | Op::Activation(_) | Op::Softmax(_) => false,
    };
    (affine && !computed.is_empty()).then_some(computed)
}

/// The stage a nonlinear node is, if any.
fn nonlinear_kind(graph: &Graph, node: usize) -> Option<StageKind> {
    let n = &graph.nodes[node];
    match &n.op {
        Op::Square => Some(StageKind::Square),
        Op::Activation(a) => Some(StageKind::Activation(*a)),
        Op::Binary(b) if b.kind == BinaryKind::Mul => {
            let computed = computed_inputs(graph, node);
            let same_shape = computed
                .iter()
                .all(|&id| graph.shape(id) == graph.shape(n.output));
            (computed.len() == 2 && same_shape).then_some(StageKind::Product)
        }
        _ => None,
    }
}

/// Why CKKS cannot run node `index`, in a few words.
fn refusal(graph: &Graph, index: usize) -> &'static str {
    match &graph.nodes[index].op {
        Op::Pool(_) => "no exact maximum on CKKS; the TFHE backend runs MaxPool",
        Op::Softmax(_) => "only a trailing Softmax runs, after decryption",
        Op::Binary(b) if b.kind == BinaryKind::PRelu => "a slope computed at run time",
        Op::Binary(b) if b.kind == BinaryKind::Div => "division by a computed value",
        Op::Pow { .. } => "powers other than 1 and 2 of a computed value",
        _ => "not affine in its computed inputs",
    }
}

/// Splits a single-input, single-output graph into a dataflow of stages in
/// evaluation order, the output's last. Every node must be affine in its
/// computed inputs, a square, an activation, or a product of two computed
/// tensors of its output's shape; anything else is reported, all offenders
/// at once.
pub fn partition(graph: &Graph) -> Result<Vec<Stage>> {
    // Stages as they grow; a region merged into a later one leaves `None`.
    let mut stages: Vec<Option<Stage>> = Vec::new();
    let mut producer: HashMap<ValueId, usize> = HashMap::new();
    let mut problems = Vec::new();
    for (index, node) in graph.nodes.iter().enumerate() {
        let name = node.name.clone();
        let stage = if let Some(inputs) = affine_inputs(graph, index) {
            affine_region(graph, &mut stages, &producer, index, inputs)
        } else if let Some(kind) = nonlinear_kind(graph, index) {
            Stage {
                kind,
                inputs: computed_inputs(graph, index),
                sources: Vec::new(),
                output: node.output,
                name,
            }
        } else {
            problems.push(format!(
                "'{}' ({}: {})",
                node.name,
                node.op.name(),
                refusal(graph, index)
            ));
            continue;
        };
        producer.insert(stage.output, stages.len());
        stages.push(Some(stage));
    }
    if !problems.is_empty() {
        return Err(CompileError::UnsupportedNodes(problems));
    }
    wire(graph, stages.into_iter().flatten().collect())
}

/// The affine region node `index` (affine in `inputs`) ends: the regions
/// that produced its inputs and feed nothing else are taken out of `stages`
/// and merged with it.
fn affine_region(
    graph: &Graph,
    stages: &mut [Option<Stage>],
    producer: &HashMap<ValueId, usize>,
    index: usize,
    inputs: Vec<ValueId>,
) -> Stage {
    let mut nodes = Vec::new();
    let mut region_inputs: Vec<ValueId> = Vec::new();
    for x in inputs {
        let merged = producer.get(&x).and_then(|&s| {
            let open = matches!(
                &stages[s],
                Some(Stage {
                    kind: StageKind::Affine { .. },
                    ..
                })
            );
            (open && graph.has_single_use(x))
                .then(|| stages[s].take())
                .flatten()
        });
        match merged {
            Some(Stage {
                kind: StageKind::Affine { nodes: inner },
                inputs,
                ..
            }) => {
                nodes.extend(inner);
                region_inputs.extend(inputs);
            }
            _ => region_inputs.push(x),
        }
    }
    // Graph order is an evaluation order of the merged regions' nodes.
    nodes.push(index);
    nodes.sort_unstable();
    let mut distinct = Vec::with_capacity(region_inputs.len());
    for x in region_inputs {
        if !distinct.contains(&x) {
            distinct.push(x);
        }
    }
    Stage {
        kind: StageKind::Affine { nodes },
        inputs: distinct,
        sources: Vec::new(),
        output: graph.nodes[index].output,
        name: graph.nodes[index].name.clone(),
    }
}

/// Keeps the stages the graph's output depends on and records where each
/// stage's inputs come from; refuses a graph whose output no stage writes.
fn wire(graph: &Graph, stages: Vec<Stage>) -> Result<Vec<Stage>> {
    if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
        return Err(CompileError::Graph(
            "only single-input, single-output models are supported".into(),
        ));
    }
    let output = graph.outputs[0];
    // Walk back from the output: a stage is live when a live stage reads it.
    let mut live = vec![false; stages.len()];
    let mut wanted = vec![output];
    for (s, stage) in stages.iter().enumerate().rev() {
        if wanted.contains(&stage.output) {
            live[s] = true;
            wanted.extend(&stage.inputs);
        }
    }
    let mut kept: Vec<Stage> = stages
        .into_iter()
        .zip(live)
        .filter_map(|(s, l)| l.then_some(s))
        .collect();
    let mut source_of: HashMap<ValueId, usize> = HashMap::from([(graph.inputs[0], 0)]);
    for (s, stage) in kept.iter_mut().enumerate() {
        stage.sources = stage
            .inputs
            .iter()
            .map(|id| {
                source_of.get(id).copied().ok_or_else(|| {
                    CompileError::Graph(format!(
                        "node '{}' reads '{}', which no stage computes",
                        stage.name,
                        graph.value(*id).name
                    ))
                })
            })
            .collect::<Result<_>>()?;
        source_of.insert(stage.output, s + 1);
    }
    let writes_output = kept.last().map_or(graph.inputs[0], |s| s.output) == output;
    if !writes_output {
        return Err(CompileError::Graph(format!(
            "output '{}' is not computed from the input",
            graph.value(output).name
        )));
    }
    Ok(kept)
}

/// What a stage does to the compute levels of the values it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Levels {
    /// It starts after the deepest of its inputs and spends this many.
    Spend(usize),
    /// Its output starts afresh: no level spent.
    Refresh,
}

/// Levels consumed before each value is ready (0 the input, `k + 1` the
/// output of stage `k`), for stages given as (the values each reads, the
/// levels it spends) in evaluation order: a stage starts after the deepest
/// of its inputs; a refresh (bootstrap) starts its output afresh.
pub fn value_depths<'a>(stages: impl IntoIterator<Item = (&'a [usize], Levels)>) -> Vec<usize> {
    let mut depths = vec![0];
    for (sources, levels) in stages {
        let start = sources.iter().map(|&v| depths[v]).max().unwrap_or(0);
        depths.push(match levels {
            Levels::Spend(depth) => start + depth,
            Levels::Refresh => 0,
        });
    }
    depths
}
