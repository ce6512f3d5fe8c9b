//! heman's compiler: from a model graph to a [`Plan`] of slot operations for
//! CKKS ciphertexts. Affine chains become one sparse linear map each, lowered
//! to baby-step giant-step diagonal products over layouts chosen by cost.
//! Module [`tfhe`] targets TFHE instead: a quantised [`tfhe::TfhePlan`] of
//! integer weighted sums and programmable bootstraps.

pub mod approximation;
pub mod compile;
pub mod error;
pub mod flooding;
pub mod gaussian;
pub mod layout;
pub mod linear;
pub mod linear_map;
pub mod parameters;
pub mod pipeline;
pub mod plan;
pub mod simulate;
pub mod stages;
#[cfg(feature = "tfhe")]
pub mod tfhe;
pub mod window_sum;

pub use compile::compile;
pub use error::{CompileError, Result};
pub use layout::SlotLayout;
pub use plan::{Plan, PlanStage};
