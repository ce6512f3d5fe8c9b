//! The front end both backends share: a graph split into stages (affine
//! chains and the nonlinearities between them), each affine chain probed into
//! one sparse map, and the operators left to the data owner.

pub mod linear_map;
pub mod postprocess;
pub mod stages;

pub use linear_map::AffineMap;
pub use postprocess::split_postprocess;
pub use stages::{partition, Stage, StageKind};
