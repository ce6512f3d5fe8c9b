//! The front end's dataflow of stages on branching graphs, and refusals: a
//! graph the compilers cannot run is refused with one message naming every
//! offending node and the scheme limit it hits, never a panic.

use heman_compiler::ckks::{compile_at_degree, StageOp};
use heman_compiler::graph::{front_end, StageKind};
use heman_model::{load_onnx, CalibrationRanges};
use heman_testkit::repo_root;

fn graph(name: &str) -> heman_model::Graph {
    load_onnx(&repo_root().join(name)).unwrap()
}

#[test]
fn ckks_names_every_node_it_cannot_run_and_why() {
    let error = compile_at_degree(
        &graph("tests/models/maxpool_inner_softmax.onnx"),
        1024,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("2 node(s) the CKKS backend cannot run"),
        "{error}"
    );
    for expected in [
        "(MaxPool: no exact maximum on CKKS; the TFHE backend runs MaxPool)",
        "(Softmax: only a trailing Softmax runs, after decryption)",
    ] {
        assert!(error.contains(expected), "{error}");
    }
}

/// Each residual Add joins the affine region of its branch: the region
/// reads the branch's ReLU and the block input (identity skip) or the
/// block input through the projection, so a skip costs no stage or level
/// of its own.
#[test]
fn residual_adds_join_the_region_of_their_branch() {
    let (_, _, stages) = front_end(&graph("tests/graphs/resnet_basic_blocks.onnx")).unwrap();
    let kinds: Vec<&str> = stages.iter().map(|s| s.kind.describe()).collect();
    assert_eq!(
        kinds,
        ["affine", "Relu", "affine", "Relu", "affine", "Relu", "affine", "Relu", "affine"]
    );
    // conv2 + skip reads ReLU 1 (stage 1) and the input (value 0); the
    // second block's conv2 + projection reads ReLU 3 and ReLU 2.
    assert_eq!(stages[2].sources, [2, 0]);
    assert_eq!(stages[6].sources, [6, 4]);
    assert!(stages
        .iter()
        .filter(|s| matches!(s.kind, StageKind::Affine { .. }))
        .all(|s| !s.sources.is_empty()));
}

/// SiLU and the squeeze-and-excitation gate are products of two computed
/// tensors; the gate's broadcast to the image joins the affine region
/// before the product, and the product's operands share a layout.
#[test]
fn products_multiply_operands_laid_out_alike() {
    let graph = graph("tests/graphs/efficientnet_silu_se.onnx");
    let (_, _, stages) = front_end(&graph).unwrap();
    assert_eq!(
        stages
            .iter()
            .filter(|s| s.kind == StageKind::Product)
            .count(),
        3
    );
    let ranges = CalibrationRanges::measure(
        &graph,
        &heman_model::io::dataset::load_arrays(
            &repo_root().join("tests/graphs/efficientnet_silu_se.calibration.npz"),
        )
        .unwrap()[..20],
    )
    .unwrap();
    let plan = compile_at_degree(&graph, 4096, Some(&ranges)).unwrap();
    let layouts = plan.value_layouts();
    for stage in plan.stages.iter().filter(|s| s.op == StageOp::Product) {
        assert_eq!(layouts[stage.inputs[0]], layouts[stage.inputs[1]]);
    }
    plan.check_wiring().unwrap();
}
