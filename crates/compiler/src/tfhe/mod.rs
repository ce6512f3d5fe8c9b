//! The TFHE target: quantisation from calibration and lowering to integer
//! weighted sums and programmable bootstraps (Chillotti, Joye, Paillier,
//! "Programmable bootstrapping enables efficient homomorphic inference of
//! deep neural networks", CSCML 2021), with every accumulator and noise
//! budget bounded at compile time against the chosen tfhe-rs preset.

pub mod budget;
pub mod compile;
pub mod function;
pub mod plan;
pub mod quantise;
pub mod reference;
pub mod segments;
pub mod validation;

pub use budget::{BudgetReport, NoiseProfile, ReadBudget};
pub use compile::{compile, Accumulators, Compiled, Fidelity, Options};
pub use function::{Expression, Function, Term};
pub use plan::{
    Levels, LinearStage, LookupStage, MaxStage, Plan, PlanInput, PlanOutput, PlanStage,
    Quantisation, TableInput,
};
pub use quantise::{
    accumulator_ranges, build_plan, AccumulatorRanges, Bits, ElementRanges, ACCUMULATOR_MARGINS,
};
pub use reference::Noise;
pub use segments::{segments, Segment, SegmentKind};
pub use validation::HeldOut;
