//! The front end both backends share: a graph split into stages (affine
//! chains and the nonlinearities between them), each affine chain probed into
//! one sparse map, and the operators left to the data owner.

pub mod linear_map;
pub mod postprocess;
pub mod stages;

pub use linear_map::AffineMap;
pub use postprocess::split_postprocess;
pub use stages::{partition, Stage, StageKind};

use heman_model::io::dataset::Sample;
use heman_model::{Graph, Tensor};

/// The first `count` calibration samples, checked against the graph's input,
/// each with the exact model's output: the reference both backends measure
/// their approximations against.
pub fn reference_outputs(
    graph: &Graph,
    samples: &[Sample],
    count: usize,
) -> crate::Result<Vec<(Tensor, Tensor)>> {
    let pairs = samples
        .iter()
        .take(count)
        .map(|s| {
            let x = graph.check_input(0, &s.tensor)?;
            let y = graph.run(std::slice::from_ref(&x))?.remove(0);
            Ok((x, y))
        })
        .collect::<Result<_, heman_model::ModelError>>()?;
    Ok(pairs)
}
