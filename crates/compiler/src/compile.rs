//! From a simplified graph to a [`Plan`].

use heman_model::ops::Op;
use heman_model::{CalibrationRanges, Graph};
use tracing::debug;

use crate::error::{CompileError, Result};
use crate::layout::SlotLayout;
use crate::linear::lower;
use crate::linear_map::AffineMap;
use crate::plan::{Plan, PlanStage};
use crate::stages::{partition, StageKind};

/// Lowers `graph` to stages over ciphertexts of `slots` slots. Activations get
/// the interval calibration observed at their input.
pub fn compile(graph: &Graph, slots: usize, ranges: Option<&CalibrationRanges>) -> Result<Plan> {
    if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
        return Err(CompileError::Graph(
            "only single-input, single-output models are supported".into(),
        ));
    }
    let (graph, postprocess) = split_postprocess(graph);
    let graph = &graph;
    let stages = partition(graph)?;
    let input_shape = graph.shape(graph.inputs[0]).to_vec();
    let input_layout = SlotLayout::compact(input_shape.iter().product(), slots);
    let mut layout = input_layout.clone();
    let mut lowered = Vec::with_capacity(stages.len());
    for stage in &stages {
        let in_shape = graph.shape(stage.input);
        let out_shape = graph.shape(stage.output);
        match &stage.kind {
            StageKind::Affine { nodes } => {
                let map = AffineMap::probe(graph, nodes, in_shape);
                let transform = lower(&map, &layout, in_shape, out_shape);
                debug!(
                    stage = %stage.name,
                    nonzeros = map.nonzeros(),
                    diagonals = transform.blocks.iter().map(|b| b.diagonal_count()).sum::<usize>(),
                    rotations = transform.rotation_steps().count(),
                    "affine stage lowered"
                );
                layout = transform.output_layout.clone();
                lowered.push(PlanStage::Linear(transform));
            }
            StageKind::Square => lowered.push(PlanStage::Square),
            StageKind::Activation(function) => {
                let name = &graph.value(stage.input).name;
                let range = ranges.and_then(|r| r.get(name)).ok_or_else(|| {
                    CompileError::Graph(format!(
                        "activation '{}' needs the calibrated range of '{name}'",
                        stage.name
                    ))
                })?;
                lowered.push(PlanStage::Activation {
                    function: *function,
                    interval: (range.min, range.max),
                });
            }
        }
    }
    Ok(Plan {
        slots,
        input_shape,
        input_layout,
        stages: lowered,
        output_shape: graph.shape(graph.outputs[0]).to_vec(),
        output_layout: layout,
        postprocess,
    })
}

/// Splits trailing Softmax nodes off the graph: they hold no weights, so the
/// data owner can apply them exactly after decryption.
pub fn split_postprocess(graph: &Graph) -> (Graph, Vec<Op>) {
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
    (graph, postprocess)
}
