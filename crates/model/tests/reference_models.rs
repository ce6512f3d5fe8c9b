//! The plaintext evaluator against reference runtimes: onnxruntime's outputs
//! stored beside the repository's generated models, and tract-onnx on HE-MAN's
//! own models. Tolerance: 1e-4 relative to max(1, max |reference|).

mod common;

use std::path::Path;

use common::{pseudo_random, relative_error, repo_root, shared_data, tract_run};
use heman_model::io::npy::read_npy;
use heman_model::{load_onnx, read_onnx, Tensor};

const TOLERANCE: f64 = 1e-4;

#[test]
fn generated_models_match_onnxruntime() {
    let dir = repo_root().join("tests/models");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    assert!(cases.len() > 100, "manifest lists {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let file = |key: &str| dir.join(case[key].as_str().unwrap());
        let input = read_npy(&file("input_file")).unwrap();
        let expected = read_npy(&file("output_file")).unwrap();
        // Both the graph as written and the simplified one must agree.
        for (stage, graph) in [
            ("raw", read_onnx(&file("file"))),
            ("simplified", load_onnx(&file("file"))),
        ] {
            match graph.and_then(|g| g.run(std::slice::from_ref(&input))) {
                Err(e) => failures.push(format!("{name} ({stage}): {e}")),
                Ok(out) if out[0].shape() != expected.shape() => failures.push(format!(
                    "{name} ({stage}): shape {:?}, expected {:?}",
                    out[0].shape(),
                    expected.shape()
                )),
                Ok(out) => {
                    let err = relative_error(&out[0], &expected);
                    if err > TOLERANCE {
                        failures.push(format!("{name} ({stage}): relative error {err:e}"));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Compares our evaluator with tract on `input`.
fn check_against_tract(path: &Path, input: &Tensor) -> Result<(), String> {
    let graph = load_onnx(path).map_err(|e| e.to_string())?;
    let ours = graph
        .run(std::slice::from_ref(input))
        .map_err(|e| e.to_string())?;
    let reference = tract_run(path, input);
    if ours[0].len() != reference.len() {
        return Err(format!(
            "shape {:?} vs tract {:?}",
            ours[0].shape(),
            reference.shape()
        ));
    }
    let err = relative_error(&ours[0], &reference);
    if err > TOLERANCE {
        return Err(format!("relative error {err:e} against tract"));
    }
    Ok(())
}

#[test]
#[ignore = "needs ../shared/data/heman"]
fn heman_models_match_tract() {
    let data = shared_data();
    let mut checked = 0;
    let mut failures = Vec::new();
    let mnist: Vec<Tensor> = (0..5)
        .map(|i| read_npy(&data.join(format!("mnist/{i}.npy"))).unwrap())
        .collect();
    let lfw: Vec<Tensor> = (0..3)
        .map(|i| read_npy(&data.join(format!("lfw/data/{i}.npy"))).unwrap())
        .collect();
    let demo = read_npy(&data.join("demo/input.npy")).unwrap();
    let mut cases: Vec<(std::path::PathBuf, Vec<Tensor>)> = vec![];
    for model in ["cryptonets", "cryptonets_square", "lenet5", "lenet5_square"] {
        cases.push((data.join(format!("models/{model}.onnx")), mnist.clone()));
    }
    cases.push((data.join("models/mobilefacenets.onnx"), lfw));
    cases.push((
        data.join("demo/mnist.onnx"),
        vec![demo.clone().reshaped(vec![1, 1, 28, 28])],
    ));
    let mut tests_models: Vec<_> = std::fs::read_dir(data.join("tests/models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    tests_models.sort();
    for path in tests_models {
        let graph = load_onnx(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let shape = graph.shape(graph.inputs[0]).to_vec();
        let count = shape.iter().product();
        let inputs = (0..3)
            .map(|seed| Tensor::new(shape.clone(), pseudo_random(count, seed, -1.0, 1.0)))
            .collect();
        cases.push((path, inputs));
    }
    for (path, inputs) in &cases {
        for input in inputs {
            checked += 1;
            if let Err(e) = check_against_tract(path, input) {
                failures.push(format!("{}: {e}", path.display()));
            }
        }
    }
    println!("{checked} runs compared with tract");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
