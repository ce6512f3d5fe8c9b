//! The model owner's compilation for CKKS: calibrated graph in, parameters
//! and plan out.

use heman_ckks::CkksParameters;
use heman_model::{CalibrationRanges, Graph};

use crate::compile::compile;
use crate::error::{CompileError, Result};
use crate::parameters::{derive, ParameterChoice, Requirements};
use crate::plan::Plan;
use crate::stages::{partition, StageKind};

/// Knobs of [`compile_ckks`].
#[derive(Debug, Clone, Copy)]
pub struct CompileOptions {
    pub min_scale_bits: u32,
    pub max_scale_bits: u32,
    pub preferred_scale_bits: u32,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            min_scale_bits: 26,
            max_scale_bits: 40,
            preferred_scale_bits: 30,
        }
    }
}

pub struct CompiledCkks {
    pub choice: ParameterChoice,
    pub params: CkksParameters,
    pub plan: Plan,
    pub depth: usize,
}

/// Derives parameters for `graph` from its calibrated `ranges` and lowers it.
pub fn compile_ckks(
    graph: &Graph,
    ranges: &CalibrationRanges,
    options: CompileOptions,
) -> Result<CompiledCkks> {
    let (core, _) = crate::compile::split_postprocess(graph);
    let stages = partition(&core)?;
    let mut depth = 0;
    for stage in &stages {
        depth += match stage.kind {
            StageKind::Affine { .. } | StageKind::Square => 1,
            StageKind::Activation(a) => {
                return Err(CompileError::UnsupportedNodes(vec![format!(
                    "'{}' ({}): polynomial approximation of activations is not available yet",
                    stage.name,
                    a.name()
                )]))
            }
        };
    }
    let max_abs = ranges
        .ranges
        .values()
        .map(|r| r.max_abs())
        .fold(0.0, f64::max);
    let choice = derive(Requirements {
        depth,
        headroom_bits: Requirements::headroom_for(max_abs),
        min_scale_bits: options.min_scale_bits,
        max_scale_bits: options.max_scale_bits,
        preferred_scale_bits: options.preferred_scale_bits,
    })?;
    let params = choice.build()?;
    let plan = compile(graph, params.slots(), Some(ranges))?;
    Ok(CompiledCkks {
        choice,
        params,
        plan,
        depth,
    })
}
