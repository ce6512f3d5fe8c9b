//! Encrypted inference end to end on the repository's example: compile, make
//! keys for exactly the plan's rotations, encrypt, run, decrypt, and compare
//! with the plaintext evaluator.

use heman_ckks::{CkksParameters, Decryptor, Encryptor, KeyGenerator};
use heman_compiler::compile;
use heman_model::io::dataset::load_arrays;
use heman_model::load_onnx;
use heman_runtime::{decrypt_tensor, encrypt_tensor, Executor, InputKey, PreparedPlan};

use heman_testkit::{relative_error, repo_root as repo};

#[test]
fn digits_square_encrypted_matches_plaintext() {
    let root = repo().join("examples/digits");
    let graph = load_onnx(&root.join("digits_square.onnx")).unwrap();
    // Depth 5 (three linear stages, two squares); N = 2^13 within 218 bits.
    let params = CkksParameters::new(13, &[42, 26, 26, 26, 26, 26], &[43], 26).unwrap();
    let plan = compile(&graph, params.slots(), None).unwrap();
    let mut keygen = KeyGenerator::new(&params).unwrap();
    let sk = keygen.gen_secret_key();
    let pk = keygen.gen_public_key(&sk).unwrap();
    let rlk = keygen.gen_relin_key(&sk).unwrap();
    let steps: Vec<i64> = plan.rotation_steps().iter().map(|&s| s as i64).collect();
    let gk = keygen.gen_galois_keys(&sk, &steps, false).unwrap();
    let encryptor = Encryptor::new(&params, &pk).unwrap();
    let decryptor = Decryptor::new(&params, &sk).unwrap();
    let executor = Executor::new(&params, &rlk, &gk);
    // Encoded diagonals are kept across the samples: the later runs reuse them.
    let prepared = PreparedPlan::new(&plan, &params, 1 << 30);
    let samples = load_arrays(&root.join("test")).unwrap();
    let mut worst = 0.0f64;
    for sample in samples.iter().take(4) {
        let x = graph.check_input(0, &sample.tensor).unwrap();
        let expected = graph.run(std::slice::from_ref(&x)).unwrap().remove(0);
        let key = if sample.name.ends_with('0') {
            InputKey::Public(&encryptor)
        } else {
            InputKey::Secret(&decryptor)
        };
        let cts = encrypt_tensor(&params, key, &plan.input_layout, &x).unwrap();
        let out = executor.run_prepared(&prepared, cts, |_| {}).unwrap();
        let y = decrypt_tensor(
            &params,
            &decryptor,
            &plan.output_layout,
            &plan.output_shape,
            &out,
        )
        .unwrap();
        let err = relative_error(&y, &expected);
        println!("{}: relative error {err:e}", sample.name);
        worst = worst.max(err);
        assert_eq!(
            y.argmax(),
            expected.argmax(),
            "{}: {y:?} vs {expected:?}",
            sample.name
        );
    }
    println!("worst relative error {worst:e}");
    assert!(worst < 1e-3, "relative error {worst}");
}

/// ReLU replaced by polynomials chosen on calibration, through the whole
/// pipeline (parameter derivation included): encrypted predictions equal the
/// exact model's.
#[test]
fn digits_relu_encrypted_matches_plaintext() {
    use heman_compiler::pipeline::{compile_ckks, CompileOptions};
    use heman_model::CalibrationRanges;
    let root = repo().join("examples/digits");
    let graph = load_onnx(&root.join("digits_relu.onnx")).unwrap();
    let samples = load_arrays(&root.join("calibration.npz")).unwrap();
    let ranges = CalibrationRanges::measure(&graph, &samples).unwrap();
    let compiled = compile_ckks(&graph, &samples, &ranges, CompileOptions::default()).unwrap();
    let agreement = compiled.agreement.expect("the model has activations");
    assert!(agreement.fraction() >= 0.995, "{agreement:?}");
    let (params, plan) = (&compiled.params, &compiled.plan);
    let mut keygen = KeyGenerator::new(params).unwrap();
    let sk = keygen.gen_secret_key();
    let rlk = keygen.gen_relin_key(&sk).unwrap();
    let steps: Vec<i64> = plan.rotation_steps().iter().map(|&s| s as i64).collect();
    let gk = keygen.gen_galois_keys(&sk, &steps, false).unwrap();
    let decryptor = Decryptor::new(params, &sk).unwrap();
    let executor = Executor::new(params, &rlk, &gk);
    let test = load_arrays(&root.join("test")).unwrap();
    for sample in test.iter().take(3) {
        let x = graph.check_input(0, &sample.tensor).unwrap();
        let expected = graph.run(std::slice::from_ref(&x)).unwrap().remove(0);
        let cts =
            encrypt_tensor(params, InputKey::Secret(&decryptor), &plan.input_layout, &x).unwrap();
        let out = executor.run(plan, cts, |_| {}).unwrap();
        let y = decrypt_tensor(
            params,
            &decryptor,
            &plan.output_layout,
            &plan.output_shape,
            &out,
        )
        .unwrap();
        println!(
            "{}: relative error {:e}",
            sample.name,
            relative_error(&y, &expected)
        );
        assert_eq!(y.argmax(), expected.argmax(), "{}", sample.name);
        // Polynomials differ from ReLU by design; the logits stay close.
        assert!(relative_error(&y, &expected) < 0.2);
    }
}
