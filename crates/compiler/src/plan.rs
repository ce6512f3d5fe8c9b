//! The compiled model: a chain of slot-level stages between an input and an
//! output layout. It holds plaintext weights (the model owner's secret) and
//! no key material.

use serde::{Deserialize, Serialize};

use heman_model::ops::Activation;

use crate::approximation::Polynomial;
use crate::layout::SlotLayout;
use crate::linear::LinearTransform;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanStage {
    Linear(LinearTransform),
    /// Every slot squared (one ciphertext multiplication per ciphertext).
    Square,
    /// A nonlinearity on values calibrated to lie in `interval`, evaluated
    /// as `polynomial` (on `[-1, 1]` when the preceding stage already mapped
    /// the interval there).
    Activation {
        function: Activation,
        interval: (f64, f64),
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub slots: usize,
    pub input_shape: Vec<usize>,
    pub input_layout: SlotLayout,
    pub stages: Vec<PlanStage>,
    pub output_shape: Vec<usize>,
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
