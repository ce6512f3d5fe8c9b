//! A network deeper than any modulus chain of the 128-bit table holds, run
//! through the seam as the CLI runs it: the six-ReLU CNN of `tests/deep`
//! (six Conv-ReLU layers, each ReLU a polynomial of degree up to 127) is
//! compiled with bootstraps placed by the compiler, keys made with the
//! bootstrapping keys, one test image encrypted, inferred, decrypted, and
//! compared with the compiled model run in cleartext and with onnxruntime.

use std::path::Path;

use heman_backend::registry;
use heman_backend::Silent;
use heman_backend::{CompileOptions, ModelSource, ServingOptions};
use heman_model::io::dataset::LabelledSet;
use heman_model::io::npy::read_npy;
use heman_testkit::repo_root;

/// Largest encryption error allowed, relative to the largest calibrated
/// |output|, as for the branching graphs (`graphs.rs`): the parameters are
/// chosen for an error per output of 2^-8 of it after flooding.
const ENCRYPTION_TOLERANCE: f64 = 1.0 / 64.0;

#[test]
#[ignore = "bootstraps at N = 2^16: minutes and about 8 GB; CI runs it with --include-ignored"]
fn a_network_no_chain_holds_bootstraps_and_keeps_the_compiled_models_answer() {
    let dir = repo_root().join("tests/deep/six_relu_cnn");
    let source = ModelSource::load(
        &dir.join("model.onnx"),
        &dir.join("calibration.npy"),
        &Silent,
    )
    .unwrap();
    let backend = registry::by_name("ckks").unwrap();
    let compilation = backend
        .compile(&source, &CompileOptions::default(), &Silent)
        .unwrap();
    let origin = Path::new("six_relu_cnn");
    let owner = backend
        .load_model(&compilation.model, origin, ServingOptions::default())
        .unwrap();
    let bootstraps = owner
        .describe()
        .iter()
        .filter(|line| line.contains("bootstrap (amplified"))
        .count();
    // Six ReLU polynomials of depth 6 or 7 and seven linear layers: about 45
    // levels, in segments of at most 9 compute levels.
    assert!(
        bootstraps >= 5,
        "about 45 levels in segments of at most 9 need 5 bootstraps or more, got {bootstraps}"
    );
    let keyparams: serde_json::Value = serde_json::from_str(&compilation.keyparams).unwrap();
    assert_eq!(keyparams["log_n"], 16);
    assert!(
        keyparams["bootstrapping"].is_object(),
        "{}",
        keyparams["bootstrapping"]
    );

    let keys = backend
        .keygen(compilation.keyparams.as_bytes(), origin, &Silent)
        .unwrap();
    let data_owner = backend
        .data_owner(compilation.keyparams.as_bytes(), &keys.secret, origin)
        .unwrap();
    let evaluation = owner.parse_keys(&keys.evaluation, origin).unwrap();
    let test = LabelledSet::load(&dir.join("test"), Some(1)).unwrap();
    let expected = read_npy(&dir.join("expected.npy")).unwrap();
    let output_max = source
        .joined_output()
        .1
        .map_or(1.0, |(lo, hi)| lo.abs().max(hi.abs()));

    let sample = &test.inputs[0];
    let ciphertext = data_owner.encrypt(&sample.tensor, &sample.name).unwrap();
    let inference = owner
        .infer(&evaluation, &ciphertext, origin, &mut |_| {})
        .unwrap();
    let ran = inference
        .stages
        .iter()
        .filter(|s| s.name == "bootstrap")
        .count();
    let in_bootstraps: f64 = inference
        .stages
        .iter()
        .filter(|s| s.name == "bootstrap")
        .map(|s| s.seconds)
        .sum();
    let total: f64 = inference.stages.iter().map(|s| s.seconds).sum();
    eprintln!(
        "{}: {bootstraps} bootstraps, {total:.1} s ({in_bootstraps:.1} s bootstrapping), evaluation keys {:.0} MiB",
        compilation.report.summary,
        keys.evaluation.len() as f64 / (1 << 20) as f64
    );
    assert_eq!(ran, bootstraps, "every placed bootstrap runs");
    let y = data_owner.decrypt(&inference.output, origin).unwrap();
    let plan = owner.simulate(&sample.tensor, None).unwrap();
    let error = heman_testkit::max_abs_error_all(&y, &plan) / output_max;
    assert!(
        error <= ENCRYPTION_TOLERANCE,
        "encryption error {error:.3e} of the largest output, allowed {ENCRYPTION_TOLERANCE:.3e}"
    );
    assert_eq!(
        y[0].argmax(),
        plan[0].argmax(),
        "{:?} vs {:?}",
        y[0],
        plan[0]
    );
    // onnxruntime's class too: this image's lead is wide enough that the
    // ReLU polynomials keep it.
    let onnxruntime = &expected.data()[..10];
    let want = (0..10)
        .max_by(|&a, &b| onnxruntime[a].total_cmp(&onnxruntime[b]))
        .unwrap();
    assert_eq!(
        y[0].argmax(),
        Some(want),
        "{:?} vs onnxruntime {onnxruntime:?}",
        y[0]
    );
}
