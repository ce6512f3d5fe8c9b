//! heman's model layer: ONNX import into a graph IR with static shapes,
//! simplification passes, a plaintext `f64` evaluator and calibration.
//! It knows nothing of cryptography.

#![warn(missing_docs)]

pub mod calibration;
pub mod error;
pub mod graph;
pub mod io;
pub mod onnx;
pub mod ops;
pub mod passes;
pub mod tensor;

pub use calibration::{CalibrationRanges, ValueRange};
pub use error::{ModelError, Result, UnsupportedNode};
pub use graph::{Graph, Node, Value, ValueId};
pub use onnx::{load_onnx, read_onnx};
pub use tensor::{Shape, Tensor};
