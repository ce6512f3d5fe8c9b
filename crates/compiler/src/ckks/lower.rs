//! Lowering: probed, approximated stages to a [`Plan`] of slot operations.

use heman_model::ops::Op;
use heman_model::{CalibrationRanges, Graph};
use tracing::debug;

use super::approximation::{approximate, Approximated, StageMaps};
use super::layout::SlotLayout;
use super::linear::lower;
use super::plan::{Plan, PlanStage};
use crate::error::Result;
use crate::graph::{partition, split_postprocess, StageKind};

/// Degree of the activation polynomials [`compile_at_degree`] uses.
pub const DEFAULT_DEGREE: usize = 31;

/// Lowers `graph` to stages over ciphertexts of `slots` slots, activations
/// replaced by degree-[`DEFAULT_DEGREE`] polynomials on the intervals
/// calibration observed (`ranges` is needed only when there are any): no
/// parameter choice and no measured degrees, as tests and tools want it
/// (the model owner's compilation is [`super::compile()`]).
pub fn compile_at_degree(
    graph: &Graph,
    slots: usize,
    ranges: Option<&CalibrationRanges>,
) -> Result<Plan> {
    let (core, postprocess) = split_postprocess(graph)?;
    let stage_maps = StageMaps::probe(&core, partition(&core)?);
    let activations = stage_maps
        .stages
        .iter()
        .filter(|s| matches!(s.kind, StageKind::Activation(_)))
        .count();
    let empty = CalibrationRanges {
        samples: 0,
        ranges: Default::default(),
    };
    let approx = approximate(
        &core,
        &stage_maps,
        ranges.unwrap_or(&empty),
        &vec![DEFAULT_DEGREE; activations],
    )?;
    lower_stages(&core, &stage_maps, &approx, slots, postprocess)
}

/// Lowers probed, approximated stages to a plan.
pub fn lower_stages(
    graph: &Graph,
    stage_maps: &StageMaps,
    approx: &Approximated,
    slots: usize,
    postprocess: Vec<Op>,
) -> Result<Plan> {
    let input_shape = graph.shape(graph.inputs[0]).to_vec();
    let input_layout = SlotLayout::compact(input_shape.iter().product(), slots);
    let mut layout = input_layout.clone();
    let mut lowered = Vec::with_capacity(stage_maps.stages.len());
    for (index, stage) in stage_maps.stages.iter().enumerate() {
        let in_shape = graph.shape(stage.input);
        let out_shape = graph.shape(stage.output);
        match &stage.kind {
            StageKind::Affine { .. } => {
                let map = approx.maps[index]
                    .as_ref()
                    .expect("affine stages have maps");
                let transform = lower(map, &layout, in_shape, out_shape);
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
            StageKind::Activation(function) => lowered.push(PlanStage::Activation {
                function: *function,
                interval: approx.intervals[index].expect("activations have intervals"),
                polynomial: approx.polynomials[index]
                    .clone()
                    .expect("activations have polynomials"),
            }),
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
