//! The compiled model: a chain of slot-level stages between an input and an
//! output layout. It holds plaintext weights (the model owner's secret) and
//! no key material.

use serde::{Deserialize, Serialize};

use heman_model::ops::Activation;

use crate::ckks::approximation::Polynomial;
use crate::ckks::layout::SlotLayout;
use crate::ckks::linear::LinearTransform;

/// One slot-level step of a CKKS [`Plan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanStage {
    /// An affine stage as baby-step giant-step diagonal products (one level).
    Linear(LinearTransform),
    /// Every slot squared (one ciphertext multiplication per ciphertext).
    Square,
    /// A nonlinearity on values calibrated to lie in `interval`, evaluated
    /// as `polynomial` (on `[-1, 1]` when the preceding stage already mapped
    /// the interval there).
    Activation {
        /// The activation the polynomial replaces.
        function: Activation,
        /// The calibrated input interval, widened by the approximation's margin,
        /// in input units.
        interval: (f64, f64),
        /// The Chebyshev polynomial evaluated in its place.
        polynomial: Polynomial,
    },
}

impl PlanStage {
    /// Multiplicative levels the stage consumes.
    pub fn depth(&self) -> usize {
        match self {
            PlanStage::Linear(_) | PlanStage::Square => 1,
            PlanStage::Activation { polynomial, .. } => polynomial.depth(),
        }
    }
}

/// A model compiled for CKKS: slot-level stages between an input and an
/// output layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Slots per ciphertext (N/2).
    pub slots: usize,
    /// Shape of the model's input tensor.
    pub input_shape: Vec<usize>,
    /// Where the data owner packs the input's elements.
    pub input_layout: SlotLayout,
    /// The stages, in order.
    pub stages: Vec<PlanStage>,
    /// Shape of the tensor the stages output (before post-processing).
    pub output_shape: Vec<usize>,
    /// Where the output's elements lie in the last stage's ciphertexts.
    pub output_layout: SlotLayout,
    /// Weightless operators at the end of the model (Softmax) that the data
    /// owner applies after decryption, exactly, instead of approximating
    /// them under encryption. `output_shape` is their input's shape.
    pub postprocess: Vec<heman_model::ops::Op>,
}

impl Plan {
    /// The format version of a serialised plan (what a compiled model file
    /// holds): raised whenever the plan's types change, so that a file of
    /// another heman is refused rather than misread. 2: linear transforms
    /// carry pool window sums. The schema test
    /// (`tests/plan_format.rs`) fails when the types change without it.
    pub const FORMAT_VERSION: u16 = 2;

    /// Levels the whole plan consumes.
    pub fn depth(&self) -> usize {
        self.stages.iter().map(PlanStage::depth).sum()
    }

    /// Every rotation step some stage uses: the Galois keys to generate.
    pub fn rotation_steps(&self) -> Vec<usize> {
        let mut steps: Vec<usize> = self
            .stages
            .iter()
            .filter_map(|s| match s {
                PlanStage::Linear(l) => Some(l.rotation_steps()),
                _ => None,
            })
            .flatten()
            .collect();
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// Ciphertexts flowing between stages, at most.
    pub fn max_ciphertexts(&self) -> usize {
        self.stages
            .iter()
            .filter_map(|s| match s {
                PlanStage::Linear(l) => Some(l.input_ciphertexts.max(l.output_ciphertexts)),
                _ => None,
            })
            .max()
            .unwrap_or(self.input_layout.ciphertexts)
    }
}
