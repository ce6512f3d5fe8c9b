//! Plans run on plain slot vectors equal the plaintext evaluator: layouts,
//! diagonals, baby-step giant-step and rotate-and-sum are all exercised
//! without encryption noise. Tolerance 1e-9 relative to max(1, max |y|).

use heman_compiler::ckks::approximation::{
    approximate, run_approximated, ActivationInputs, Intervals, StageMaps, MARGIN,
};
use heman_compiler::ckks::lower_stages;
use heman_compiler::ckks::simulate::simulate;
use heman_compiler::graph::{front_end, split_outputs, StageKind};
use heman_model::io::dataset::{load_arrays, LabelledSet};
use heman_model::io::npy::read_npy;
use heman_model::{load_onnx, CalibrationRanges, Tensor};

use heman_testkit::{relative_error, repo_root as repo, shared_data};

/// Compiles `model` for `slots` slots and checks the plan, run on plain slot
/// vectors, against the same stages computed directly: the exact model when
/// it has no activation, else its polynomial-approximated stages (tolerance
/// 1e-9 relative); with `classes`, the argmax must match the exact model.
fn check(
    model: &std::path::Path,
    calibration: Option<&std::path::Path>,
    inputs: &[Tensor],
    slots: usize,
    classes: bool,
) {
    let graph = load_onnx(model).unwrap();
    let ranges = calibration
        .map(|c| CalibrationRanges::measure(&graph, &load_arrays(c).unwrap()[..50]).unwrap())
        .unwrap_or(CalibrationRanges {
            samples: 0,
            ranges: Default::default(),
        });
    let (core, outputs, stages) = front_end(&graph).unwrap();
    let stage_maps = StageMaps::probe(&core, stages);
    let activations = stage_maps
        .stages
        .iter()
        .filter(|s| matches!(s.kind, StageKind::Activation(_)))
        .count();
    let intervals = Intervals {
        ranges: &ranges,
        margin: MARGIN,
    };
    let approx = approximate(
        &core,
        &stage_maps,
        intervals,
        &vec![31; activations],
        &ActivationInputs::default(),
    )
    .unwrap();
    let plan = lower_stages(&core, &stage_maps, &approx, slots, outputs).unwrap();
    let linear: Vec<_> = plan.transforms().map(|l| l.to_string()).collect();
    println!(
        "{}: slots {slots}, depth {}, {} rotation keys; {}",
        model.file_name().unwrap().to_string_lossy(),
        plan.depth(),
        plan.rotation_steps().len(),
        linear.join(" | ")
    );
    for input in inputs {
        let x = graph.check_input(0, input).unwrap();
        let exact = graph.run(std::slice::from_ref(&x)).unwrap();
        let actual = simulate(&plan, &x);
        let reference = if activations == 0 {
            exact.clone()
        } else {
            let staged = Tensor::new(
                plan.output_shape.clone(),
                run_approximated(&stage_maps, &approx, x.data()),
            );
            split_outputs(&staged, &plan.outputs)
        };
        assert_eq!(actual.len(), reference.len(), "{}", model.display());
        for (actual, reference) in actual.iter().zip(&reference) {
            let err = relative_error(actual, reference);
            assert!(err <= 1e-9, "{}: relative error {err}", model.display());
        }
        if classes {
            assert_eq!(actual[0].argmax(), exact[0].argmax(), "{}", model.display());
        }
    }
}

/// The activation margin widens every polynomial's interval about the same
/// centre: each calibrated width `w` becomes `w (1 + 2 margin)`.
#[test]
fn activation_intervals_extend_past_calibration_by_the_margin_asked_for() {
    use heman_compiler::ckks::{compile, Options, StageOp};
    let root = repo().join("examples/digits");
    let graph = load_onnx(&root.join("digits_relu.onnx")).unwrap();
    let samples = load_arrays(&root.join("calibration.npz")).unwrap();
    let ranges = CalibrationRanges::measure(&graph, &samples).unwrap();
    let intervals = |activation_margin: f64| -> Vec<(f64, f64)> {
        let options = Options {
            activation_margin,
            ..Options::default()
        };
        let compiled = compile(&graph, &samples, &ranges, options).unwrap();
        compiled
            .plan
            .stages
            .iter()
            .filter_map(|s| match &s.op {
                StageOp::Activation { interval, .. } => Some(*interval),
                _ => None,
            })
            .collect()
    };
    let (narrow, wide) = (intervals(MARGIN), intervals(0.5));
    assert!(!narrow.is_empty() && narrow.len() == wide.len());
    for ((a, b), (c, d)) in narrow.iter().zip(&wide) {
        let ratio = (d - c) / (b - a);
        assert!((ratio - 2.0 / 1.2).abs() < 1e-9, "{ratio}");
        assert!(((a + b) - (c + d)).abs() < 1e-9 * (b - a));
    }
}

#[test]
fn digits_example_plans_match_the_evaluator() {
    let root = repo().join("examples/digits");
    let inputs: Vec<Tensor> = load_arrays(&root.join("test"))
        .unwrap()
        .into_iter()
        .take(5)
        .map(|s| s.tensor)
        .collect();
    for slots in [256, 1024, 4096] {
        check(&root.join("digits_square.onnx"), None, &inputs, slots, true);
        check(
            &root.join("digits_relu.onnx"),
            Some(&root.join("calibration.npz")),
            &inputs,
            slots,
            true,
        );
    }
}

#[test]
fn generated_operator_models_match_the_evaluator() {
    let dir = repo().join("tests/models");
    for case in [
        "conv2d_strides_pads_dilations",
        "conv2d_depthwise",
        "conv2d_group2",
        "avgpool_cip0",
        "gemm_transA",
        "matmul_3d_bcast",
        "pad_v11_edge",
        "transpose_perm",
        "he_friendly_v14",
        "conv_bn_v15",
        "softmax_v13_axis1_3d",
        "softmax_v9",
        "slice_v13",
        "gather_axis1",
        "split_v13_concat",
        "split_v11_equal",
        "expand",
        "resize_nearest_scales",
        "upsample_v9",
        "reducemean_v13",
        "reducesum_v13",
    ] {
        let input = read_npy(&dir.join(format!("{case}.input.npy"))).unwrap();
        check(
            &dir.join(format!("{case}.onnx")),
            None,
            &[input],
            1024,
            true,
        );
    }
}

/// The branching models of `tests/graphs` (residual blocks, an inverted
/// residual, a fire module's Concat, SiLU and squeeze-and-excitation
/// products, a value read three times, two outputs): every dataflow plan
/// computes its approximated stages exactly.
#[test]
fn branching_graph_plans_match_their_stages() {
    let dir = repo().join("tests/graphs");
    for case in heman_testkit::GRAPH_MODELS {
        let calibration = dir.join(format!("{case}.calibration.npz"));
        let inputs: Vec<Tensor> = LabelledSet::load(&dir.join(format!("{case}.test")), Some(3))
            .unwrap()
            .inputs
            .into_iter()
            .map(|s| s.tensor)
            .collect();
        check(
            &dir.join(format!("{case}.onnx")),
            Some(&calibration),
            &inputs,
            4096,
            false,
        );
    }
}

#[test]
#[ignore = "needs ../shared/data/heman"]
fn heman_model_plans_match_the_evaluator() {
    let data = shared_data();
    let mnist: Vec<Tensor> = (0..3)
        .map(|i| read_npy(&data.join(format!("mnist/{i}.npy"))).unwrap())
        .collect();
    let calib = data.join("mnist/calibration-data.zip");
    check(
        &data.join("models/cryptonets_square.onnx"),
        None,
        &mnist,
        4096,
        true,
    );
    check(
        &data.join("models/cryptonets.onnx"),
        Some(&calib),
        &mnist,
        4096,
        true,
    );
    check(
        &data.join("models/lenet5_square.onnx"),
        None,
        &mnist,
        8192,
        true,
    );
    check(
        &data.join("models/lenet5.onnx"),
        Some(&calib),
        &mnist,
        16384,
        true,
    );
    let demo = read_npy(&data.join("demo/input.npy")).unwrap();
    check(&data.join("demo/mnist.onnx"), None, &[demo], 4096, true);
    let lfw: Vec<Tensor> = (0..2)
        .map(|i| read_npy(&data.join(format!("lfw/data/{i}.npy"))).unwrap())
        .collect();
    check(
        &data.join("models/mobilefacenets.onnx"),
        None,
        &lfw,
        16384,
        true,
    );
    check(
        &data.join("models/mobilefacenets.onnx"),
        None,
        &lfw[..1],
        8192,
        true,
    );
}
