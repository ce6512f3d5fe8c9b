//! The simplifier removes what it promises to remove (outputs staying equal is
//! checked by `reference_models`).

mod common;

use common::repo_root;
use heman_model::{load_onnx, read_onnx};

fn ops_after(case: &str) -> std::collections::BTreeMap<String, usize> {
    load_onnx(&repo_root().join(format!("tests/models/{case}.onnx")))
        .unwrap()
        .op_counts()
}

#[test]
fn batch_norm_folds_into_conv_and_gemm() {
    for case in ["conv_bn_v9", "conv_bn_v15", "gemm_bn_v9", "gemm_bn_v15"] {
        let raw = read_onnx(&repo_root().join(format!("tests/models/{case}.onnx"))).unwrap();
        assert!(raw.op_counts().contains_key("BatchNormalization"), "{case}");
        let ops = ops_after(case);
        assert!(!ops.contains_key("BatchNormalization"), "{case}: {ops:?}");
    }
    // A BatchNorm on a graph input has nothing to fold into.
    assert!(ops_after("batchnorm_v15").contains_key("BatchNormalization"));
}

#[test]
fn identities_and_dropouts_disappear() {
    // (A node passing a graph input straight to the output stays.)
    for case in ["identity", "dropout_v9", "dropout_v13", "cnn_v9"] {
        let ops = ops_after(case);
        assert!(!ops.contains_key("Identity"), "{case}: {ops:?}");
    }
}

#[test]
fn mul_of_a_value_by_itself_is_a_square() {
    let ops = ops_after("mul_square");
    assert_eq!(ops.get("Square"), Some(&1), "{ops:?}");
    assert!(!ops.contains_key("Mul"));
    assert_eq!(ops_after("pow_2_float").get("Square"), Some(&1));
}

#[test]
fn constant_subgraphs_are_folded() {
    // Constant -> Reshape shape input, Constant -> Add operand: only the
    // computation on the input remains.
    for case in ["constant_shape_reshape", "constant_add", "constant_v9"] {
        let graph = load_onnx(&repo_root().join(format!("tests/models/{case}.onnx"))).unwrap();
        assert!(
            graph
                .nodes
                .iter()
                .all(|n| n.inputs.iter().any(|&i| graph.constant(i).is_none())),
            "{case}"
        );
    }
}

#[test]
#[ignore = "needs ../shared/data/heman"]
fn lenet_pads_fold_into_convolutions() {
    let data = common::shared_data();
    for model in ["lenet5", "lenet5_square"] {
        let path = data.join(format!("models/{model}.onnx"));
        assert_eq!(read_onnx(&path).unwrap().op_counts().get("Pad"), Some(&2));
        let ops = load_onnx(&path).unwrap().op_counts();
        assert!(!ops.contains_key("Pad"), "{model}: {ops:?}");
        if model == "lenet5_square" {
            assert_eq!(ops.get("Square"), Some(&4), "{ops:?}");
        }
    }
}
