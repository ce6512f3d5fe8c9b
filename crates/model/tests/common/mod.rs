//! The model crate's own test helper: tract-onnx as the reference runtime.
#![allow(dead_code, unused_imports)]

pub use heman_testkit::{pseudo_random, relative_error, repo_root, shared_data};

/// Runs `path` with tract-onnx on one `f32` input and returns the first output.
pub fn tract_run(path: &std::path::Path, input: &heman_model::Tensor) -> heman_model::Tensor {
    use tract_onnx::prelude::*;
    let plan = tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap_or_else(|e| panic!("tract cannot load {}: {e:?}", path.display()));
    let data: Vec<f32> = input.data().iter().map(|&v| v as f32).collect();
    let tensor =
        tract_onnx::prelude::Tensor::from_shape(input.shape(), &data).expect("input tensor");
    let outputs = plan.run(tvec!(tensor.into())).expect("tract run");
    let view = outputs[0].to_plain_array_view::<f32>().expect("f32 output");
    heman_model::Tensor::new(
        view.shape().to_vec(),
        view.iter().map(|&v| v as f64).collect(),
    )
}
