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

/// A model with two outputs (class probabilities and an auxiliary head) is
/// compiled as one: the Softmax split off the first for the data owner, the
/// two flattened and concatenated; the plan's output holds both, and
/// splitting it gives each output of the model, post-processed.
#[test]
fn several_outputs_join_into_one_and_split_back() {
    use heman_compiler::graph::{join_outputs, split_outputs};
    let model = graph("tests/graphs/two_heads.onnx");
    let (core, outputs) = join_outputs(&model).unwrap();
    assert_eq!(core.outputs.len(), 1);
    assert_eq!(core.shape(core.outputs[0]), [1, 13]);
    let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["output", "aux"]);
    assert_eq!(outputs[0].postprocess.len(), 1, "{outputs:?}");
    assert!(outputs[1].postprocess.is_empty());
    let x = heman_model::Tensor::new(
        vec![1, 4, 8, 8],
        (0..256).map(|i| (i as f64 * 0.37).sin()).collect(),
    );
    let want = model.run(std::slice::from_ref(&x)).unwrap();
    let joined = core.run(std::slice::from_ref(&x)).unwrap().remove(0);
    let got = split_outputs(&joined, &outputs);
    assert_eq!(got.len(), 2);
    for (got, want) in got.iter().zip(&want) {
        assert_eq!(got.shape(), want.shape());
        assert!(heman_testkit::max_abs_error(got, want) < 1e-12);
    }
    // The CKKS plan lowers it with the outputs recorded.
    let samples = heman_model::io::dataset::load_arrays(
        &repo_root().join("tests/graphs/two_heads.calibration.npz"),
    )
    .unwrap();
    let ranges = CalibrationRanges::measure(&model, &samples[..20]).unwrap();
    let plan = compile_at_degree(&model, 4096, Some(&ranges)).unwrap();
    assert_eq!(plan.outputs, outputs);
    assert_eq!(plan.output_shape, [1, 13]);
}

/// Outputs a file lists are checked before anything splits by them: volumes
/// that add up to the compiled output, nothing but Softmax left to the data
/// owner.
#[test]
fn listed_outputs_are_checked_against_the_compiled_output() {
    use heman_compiler::graph::OutputTensor;
    use heman_model::ops::{Op, Softmax};
    let output = |shape: Vec<usize>, postprocess: Vec<Op>| OutputTensor {
        name: "y".into(),
        shape,
        postprocess,
    };
    let softmax = Op::Softmax(Softmax {
        axis: 1,
        coerce_2d: false,
    });
    assert!(OutputTensor::check_all(&[output(vec![1, 10], vec![softmax.clone()])], 10).is_ok());
    let fail = |outputs: &[OutputTensor], elements| {
        OutputTensor::check_all(outputs, elements).unwrap_err()
    };
    assert!(fail(&[], 0).contains("no outputs"));
    assert!(fail(&[output(vec![1, 10], vec![])], 13).contains("hold 10 values"));
    assert!(fail(&[output(vec![usize::MAX, 2], vec![])], 10).contains("overflows"));
    assert!(fail(&[output(vec![1, 10], vec![Op::Square])], 10).contains("only Softmax"));
    let far_axis = Op::Softmax(Softmax {
        axis: 5,
        coerce_2d: false,
    });
    assert!(fail(&[output(vec![1, 10], vec![far_axis])], 10).contains("Softmax"));
}

/// An output listed twice, or one that is a constant, is refused by name.
#[test]
fn outputs_that_are_not_computed_are_refused_by_name() {
    use heman_compiler::graph::join_outputs;
    let mut model = graph("tests/graphs/two_heads.onnx");
    model.outputs.push(model.outputs[1]);
    let error = join_outputs(&model).unwrap_err().to_string();
    assert!(error.contains("'aux' is listed twice"), "{error}");
    let mut model = graph("tests/graphs/two_heads.onnx");
    let weight = (0..model.values.len())
        .find(|&id| model.constant(id).is_some())
        .unwrap();
    model.outputs.push(weight);
    let error = join_outputs(&model).unwrap_err().to_string();
    assert!(error.contains("a constant"), "{error}");
}
