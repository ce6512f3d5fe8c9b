//! Lowering: probed, approximated stages to a [`Plan`] of slot operations.

use std::collections::HashMap;

use heman_model::{CalibrationRanges, Graph};
use tracing::debug;

use super::approximation::{
    approximate, ActivationInputs, Approximated, Intervals, StageMaps, MARGIN,
};
use super::layout::SlotLayout;
use super::linear::{lower_parts, Part};
use super::plan::{Packing, Plan, PlanStage, StageOp, WeightRows};
use crate::error::{CompileError, Result};
use crate::graph::{front_end, AffineMap, OutputTensor, Stage, StageKind};

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
    let (core, outputs, stages) = front_end(graph)?;
    let stage_maps = StageMaps::probe(&core, stages);
    let activations = stage_maps
        .stages
        .iter()
        .filter(|s| matches!(s.kind, StageKind::Activation(_)))
        .count();
    let empty = CalibrationRanges {
        samples: 0,
        ranges: Default::default(),
    };
    let intervals = Intervals {
        ranges: ranges.unwrap_or(&empty),
        margin: MARGIN,
    };
    let approx = approximate(
        &core,
        &stage_maps,
        intervals,
        &vec![DEFAULT_DEGREE; activations],
        &ActivationInputs::default(),
    )?;
    lower_stages(&core, &stage_maps, &approx, slots, outputs)
}

/// Lowers probed, approximated stages to a latency plan.
pub fn lower_stages(
    graph: &Graph,
    stage_maps: &StageMaps,
    approx: &Approximated,
    slots: usize,
    outputs: Vec<OutputTensor>,
) -> Result<Plan> {
    lower_packed(
        graph,
        stage_maps,
        approx,
        (slots, Packing::Latency),
        outputs,
    )
}

/// Lowers probed, approximated stages to a plan of `slots` slots packed as
/// `packing` says.
pub fn lower_packed(
    graph: &Graph,
    stage_maps: &StageMaps,
    approx: &Approximated,
    (slots, packing): (usize, Packing),
    outputs: Vec<OutputTensor>,
) -> Result<Plan> {
    let input_shape = graph.shape(graph.inputs[0]).to_vec();
    let input_layout = match packing {
        Packing::Latency => SlotLayout::compact(input_shape.iter().product(), slots),
        Packing::Throughput => batched_layout(graph, graph.inputs[0], slots)?,
    };
    let stages = &stage_maps.stages;
    let groups = LayoutGroups::new(stages);
    // Per value (0 the input, k + 1 stage k's output), where it lies.
    let mut layouts: Vec<SlotLayout> = vec![input_layout.clone()];
    let mut fixed: HashMap<usize, SlotLayout> =
        HashMap::from([(groups.root(0), input_layout.clone())]);
    let mut lowered = Vec::with_capacity(stages.len());
    for (index, stage) in stages.iter().enumerate() {
        let op = match &stage.kind {
            StageKind::Affine { .. } if packing == Packing::Throughput => StageOp::WeightedSum {
                parts: approx.maps[index]
                    .iter()
                    .zip(&stage.inputs)
                    .map(|(map, &id)| weight_rows(map, graph.shape(id)))
                    .collect(),
                output_layout: batched_layout(graph, stage.output, slots)?,
            },
            StageKind::Affine { .. } => {
                let shapes: Vec<&[usize]> =
                    stage.inputs.iter().map(|&id| graph.shape(id)).collect();
                let parts: Vec<Part<'_>> = approx.maps[index]
                    .iter()
                    .zip(&stage.sources)
                    .zip(&shapes)
                    .map(|((map, &source), shape)| Part {
                        map,
                        layout: &layouts[source],
                        shape,
                    })
                    .collect();
                let group = groups.root(index + 1);
                let transforms = lower_parts(&parts, graph.shape(stage.output), fixed.get(&group));
                debug!(
                    stage = %stage.name,
                    inputs = parts.len(),
                    nonzeros = approx.maps[index].iter().map(AffineMap::nonzeros).sum::<usize>(),
                    diagonals = transforms.iter().flat_map(|t| &t.blocks).map(|b| b.diagonal_count()).sum::<usize>(),
                    rotations = transforms.iter().map(|t| t.rotation_steps().count()).sum::<usize>(),
                    "affine stage lowered"
                );
                fixed
                    .entry(group)
                    .or_insert_with(|| transforms[0].output_layout.clone());
                StageOp::Linear(transforms)
            }
            StageKind::Square => StageOp::Square,
            StageKind::Product => StageOp::Product,
            StageKind::Activation(function) => StageOp::Activation {
                function: *function,
                interval: approx.intervals[index].expect("activations have intervals"),
                polynomial: approx.polynomials[index]
                    .clone()
                    .expect("activations have polynomials"),
            },
        };
        layouts.push(match &op {
            StageOp::Linear(transforms) => transforms[0].output_layout.clone(),
            StageOp::WeightedSum { output_layout, .. } => output_layout.clone(),
            _ => layouts[stage.sources[0]].clone(),
        });
        lowered.push(PlanStage {
            name: stage.name.clone(),
            inputs: stage.sources.clone(),
            op,
        });
    }
    Ok(Plan {
        slots,
        input_shape,
        input_layout,
        stages: lowered,
        output_shape: graph.shape(graph.outputs[0]).to_vec(),
        output_layout: layouts.pop().expect("the input at least"),
        outputs,
        bootstrapping: None,
        packing,
    })
}

/// One ciphertext per element of value `id` ([`SlotLayout::batched`]).
fn batched_layout(graph: &Graph, id: heman_model::ValueId, slots: usize) -> Result<SlotLayout> {
    let elements: usize = graph.shape(id).iter().product();
    SlotLayout::batched(elements, slots).ok_or_else(|| {
        CompileError::Graph(format!(
            "'{}': {elements} elements of {slots} slots each are more slot positions than a layout addresses",
            graph.value(id).name
        ))
    })
}

/// An affine map reading a tensor of `shape` as a weighted sum's terms,
/// a pooling window factored out of it where that saves terms
/// ([`super::window_sum::factor`]: lenet5's second convolution reads 4x
/// fewer values).
fn weight_rows(map: &AffineMap, shape: &[usize]) -> WeightRows {
    let plain = WeightRows {
        inputs: map.cols,
        window_sums: Vec::new(),
        rows: map.by_rows(),
        bias: map.bias.clone(),
    };
    let Some(factor) = pool_factor(map, shape) else {
        return plain;
    };
    let window_sums = factor.window_inputs(shape);
    let terms = factor.rest.nonzeros() + window_sums.iter().map(Vec::len).sum::<usize>();
    if terms >= map.nonzeros() {
        return plain;
    }
    WeightRows {
        window_sums,
        rows: factor.rest.by_rows(),
        ..plain
    }
}

/// The window sums factored out of `map`, read from a `[1, C, H, W]` tensor
/// in row-major order.
fn pool_factor(map: &AffineMap, shape: &[usize]) -> Option<super::window_sum::WindowSumFactor> {
    let &[1, c, h, w] = shape else {
        return None;
    };
    // Row-major positions in one ciphertext long enough that no window
    // wraps: the factor's element order, whatever the slots.
    let slots = (c * h * w).next_power_of_two();
    let layout = SlotLayout::strided(shape, &[c * h * w, h * w, w, 1], slots);
    super::window_sum::factor(map, &layout, shape)
}

/// Values that must share one slot layout: a product's operands and
/// output, an elementwise stage's input and output. The first affine stage
/// lowered into a group chooses its layout (the input's group has the
/// input's); the others are lowered into it.
struct LayoutGroups {
    parent: Vec<usize>,
}

impl LayoutGroups {
    fn new(stages: &[Stage]) -> Self {
        let mut groups = Self {
            parent: (0..=stages.len()).collect(),
        };
        for (index, stage) in stages.iter().enumerate() {
            if !matches!(stage.kind, StageKind::Affine { .. }) {
                for &source in &stage.sources {
                    groups.join(source, index + 1);
                }
            }
        }
        groups
    }

    fn root(&self, mut value: usize) -> usize {
        while self.parent[value] != value {
            value = self.parent[value];
        }
        value
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        // The earlier value is the root, so that roots are stable.
        self.parent[a.max(b)] = a.min(b);
    }
}
