//! The CKKS compiler: activations approximated by Chebyshev polynomials on
//! their calibrated intervals, each affine chain lowered to baby-step
//! giant-step diagonal products over slot layouts chosen by cost, parameters
//! chosen by measured precision, and a cleartext simulator of the result.

pub mod approximation;
pub mod bootstrap_placement;
pub mod compile;
pub mod fit;
pub mod flooding;
pub mod layout;
pub mod linear;
pub mod lower;
pub mod parameters;
pub mod plan;
pub mod simulate;
pub mod window_sum;

pub use compile::{compile, BootstrappingMode, Compiled, Options};
pub use layout::SlotLayout;
pub use lower::{compile_at_degree, lower_packed, lower_stages, DEFAULT_DEGREE};
pub use plan::{Bootstrapping, Packing, Plan, PlanStage, StageOp, WeightRows};
