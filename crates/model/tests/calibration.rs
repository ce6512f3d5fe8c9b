//! Calibration records the ranges every value takes on a calibration set.

mod common;

use common::repo_root;
use heman_model::io::dataset::load_arrays;
use heman_model::{load_onnx, CalibrationRanges};

#[test]
fn digits_calibration_ranges_cover_every_run() {
    let root = repo_root().join("examples/digits");
    let graph = load_onnx(&root.join("digits_square.onnx")).unwrap();
    let samples = load_arrays(&root.join("calibration.npz")).unwrap();
    assert_eq!(samples.len(), 200);
    let ranges = CalibrationRanges::measure(&graph, &samples).unwrap();
    assert_eq!(ranges.samples, 200);
    // Inputs are pixel intensities in [0, 1].
    let input = ranges.get(&graph.value(graph.inputs[0]).name).unwrap();
    assert!(
        input.min >= 0.0 && input.max <= 1.0 && input.max > 0.5,
        "{input:?}"
    );
    // Every computed value has a range, and each sample's values lie inside it.
    for node in &graph.nodes {
        assert!(
            ranges.get(&graph.value(node.output).name).is_some(),
            "{}",
            node.name
        );
    }
    for sample in samples.iter().take(20) {
        graph
            .run_observed(std::slice::from_ref(&sample.tensor), |id, t| {
                let r = ranges.get(&graph.value(id).name).unwrap();
                assert!(t.data().iter().all(|&x| r.excess(x) == 0.0));
            })
            .unwrap();
    }
    // Squares are non-negative.
    for node in graph.nodes.iter().filter(|n| n.op.name() == "Square") {
        assert!(ranges.get(&graph.value(node.output).name).unwrap().min >= 0.0);
    }
}

#[test]
fn bad_calibration_samples_are_named() {
    let root = repo_root().join("examples/digits");
    let graph = load_onnx(&root.join("digits_square.onnx")).unwrap();
    let samples = load_arrays(&repo_root().join("tests/models/bad")).unwrap();
    let err = CalibrationRanges::measure(&graph, &samples)
        .unwrap_err()
        .to_string();
    // The first bad sample in natural order (float64 is fine, inf is not).
    assert!(
        err.starts_with("sample 'inf.input'") && err.contains("finite"),
        "{err}"
    );
}

#[test]
#[ignore = "needs ../shared/data/heman"]
fn zip_npz_and_directories_load_alike() {
    let data = common::shared_data();
    let zip = load_arrays(&data.join("demo/calibration-data.zip")).unwrap();
    assert_eq!(zip.len(), 500);
    let npz = load_arrays(&data.join("tests/calibration-data/lower_-1_upper_1.npz")).unwrap();
    assert!(!npz.is_empty());
    let dir = load_arrays(&data.join("lfw/calibration")).unwrap();
    assert_eq!(dir.len(), 250);
    assert_eq!(dir[0].tensor.shape(), [1, 320, 7, 7]);
}
