//! Bad models and inputs give errors that name the file, node or field.

mod common;

use common::repo_root;
use heman_model::io::npy::read_npy;
use heman_model::{load_onnx, ModelError};

fn bad(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/models/bad").join(name)
}

#[test]
fn every_unsupported_operator_is_listed_at_once() {
    let err = load_onnx(&bad("unsupported_ops.onnx")).unwrap_err();
    let ModelError::UnsupportedOperators(nodes) = &err else {
        panic!("unexpected error {err}");
    };
    let mut ops: Vec<&str> = nodes.iter().map(|n| n.op_type.as_str()).collect();
    ops.sort();
    ops.dedup();
    assert_eq!(ops, ["Abs", "Exp", "Floor", "Log", "Sqrt"]);
    let text = err.to_string();
    for op in ops {
        assert!(text.contains(op), "{text}");
    }
    assert!(text.contains("opset 13"), "{text}");
}

#[test]
fn damaged_and_foreign_files_are_refused_with_the_path() {
    for name in [
        "truncated.onnx",
        "random_bytes.onnx",
        "text.onnx",
        "empty.onnx",
    ] {
        let err = load_onnx(&bad(name)).unwrap_err();
        assert!(matches!(err, ModelError::Decode { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
    }
    let err = load_onnx(&bad("missing.onnx")).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }) && err.to_string().contains("missing.onnx"));
}

#[test]
fn wrong_inputs_are_refused_and_right_ones_accepted() {
    let model = load_onnx(&repo_root().join("tests/models/cnn_v13.onnx")).unwrap();
    for name in ["wrong_shape.input.npy", "wrong_rank.input.npy"] {
        let err = model.run(&[read_npy(&bad(name)).unwrap()]).unwrap_err();
        assert!(
            matches!(err, ModelError::InputShape { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("[1, 1, 8, 8]"), "{err}");
    }
    for name in ["nan.input.npy", "inf.input.npy"] {
        let err = model.run(&[read_npy(&bad(name)).unwrap()]).unwrap_err();
        assert!(matches!(err, ModelError::NonFinite { .. }), "{name}: {err}");
    }
    model
        .run(&[read_npy(&bad("float64.input.npy")).unwrap()])
        .unwrap();
    let err = model.run(&[]).unwrap_err();
    assert!(err.to_string().contains("takes 1 input"), "{err}");
}

#[test]
fn a_symbolic_batch_extent_becomes_one() {
    let model = load_onnx(&bad("dynamic_batch.onnx")).unwrap();
    assert_eq!(model.shape(model.inputs[0])[0], 1);
}

#[test]
fn two_input_models_need_both() {
    let model = load_onnx(&bad("two_inputs.onnx")).unwrap();
    assert_eq!(model.inputs.len(), 2);
    let err = model.run(&[heman_model::Tensor::zeros(
        model.shape(model.inputs[0]).to_vec(),
    )]);
    assert!(err.unwrap_err().to_string().contains("takes 2 input"));
}
