//! ONNX import: protobuf decoding, operator parsing with attribute checks,
//! static shape inference and constant folding.

mod context;
mod import;
mod ops;
pub mod proto;
mod tensor;

pub use import::{import_onnx, load_onnx, parse_onnx, read_onnx, MAX_OPSET, MIN_OPSET};
pub use ops::supported_operators;
