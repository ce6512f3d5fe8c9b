//! The `heman` binary end to end on the repository's own example.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use heman_testkit::{repo_root as repo, shared_data};

fn heman(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heman"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("heman runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn eval_reports_the_example_accuracy() {
    let out = heman(&[
        "eval",
        "-m",
        "examples/digits/digits_square.onnx",
        "-d",
        "examples/digits/test",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // 93 of the 100 test digits, as onnxruntime scores them (examples/digits/README.md).
    assert!(
        text(&out.stdout).contains("93.00% (93/100)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn calibrate_writes_ranges() {
    let dir = std::env::temp_dir().join(format!("heman-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("ranges.json");
    let out = heman(&[
        "calibrate",
        "-m",
        "examples/digits/digits_relu.onnx",
        "-c",
        "examples/digits/calibration.npz",
        "-o",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ranges: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(ranges["samples"], 200);
    assert!(ranges["ranges"]["input"]["max"].as_f64().unwrap() <= 1.0);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn inspect_lists_operators() {
    let out = heman(&["inspect", "examples/digits/digits_square.onnx"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Square x2") && stdout.contains("Conv x1"),
        "{stdout}"
    );
}

#[test]
fn bad_files_fail_with_a_message_not_a_panic() {
    for (args, expected) in [
        (
            vec!["inspect", "tests/models/bad/truncated.onnx"],
            "truncated.onnx: not a valid ONNX model",
        ),
        (
            vec!["inspect", "tests/models/bad/unsupported_ops.onnx"],
            "unsupported operator(s)",
        ),
        (
            vec![
                "eval",
                "-m",
                "examples/digits/digits_square.onnx",
                "-d",
                "tests/models",
            ],
            "expected '<label>-<k>.npy' names",
        ),
    ] {
        let out = heman(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(expected) && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}

/// HE-MAN's models on their own data: the plaintext accuracies the issue and
/// HE-MAN's paper report for the first 1000 MNIST test images.
#[test]
#[ignore = "needs ../shared/data/heman"]
fn heman_suite_accuracies() {
    let shared = shared_data();
    let out = heman(&["eval", "--suite", shared.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for row in [
        "| models/cryptonets.onnx | mnist (accuracy) | 1000 | 98.00% |",
        "| models/cryptonets_square.onnx | mnist (accuracy) | 1000 | 97.30% |",
        "| models/lenet5.onnx | mnist (accuracy) | 1000 | 98.60% |",
        "| models/lenet5_square.onnx | mnist (accuracy) | 1000 | 99.00% |",
        "| models/mobilefacenets.onnx | lfw (verification accuracy) | 1000 | 98.20% |",
    ] {
        assert!(stdout.contains(row), "missing {row} in\n{stdout}");
    }
}

/// Runs `heman` and asserts it succeeds; returns its standard output.
fn ok(args: &[&str]) -> String {
    let out = heman(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Runs `heman` and asserts it fails with exit code 1 and a message holding
/// `expected`, not a panic.
fn fails(args: &[&str], expected: &str) {
    let out = heman(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {stderr}");
    assert!(
        stderr.contains(expected) && !stderr.contains("panicked"),
        "{args:?}: {stderr}"
    );
}

/// One run of the five commands, kept for the tests that check its files and
/// the bad inputs a user can hand them.
struct Workflow {
    dir: tempfile::TempDir,
    /// The compiled model's file name in `dir`.
    model: &'static str,
    /// What `keyparams` printed.
    report: String,
    /// What `decrypt` printed.
    decrypted: String,
}

impl Workflow {
    /// Compiles `model` on a calibration set for `backend` (with `options`),
    /// makes keys, encrypts `input`, infers and decrypts, in a folder of its
    /// own.
    fn run(
        backend: &str,
        options: &[&str],
        model: &str,
        calibration: Calibration,
        input: &str,
    ) -> Self {
        // Under cargo's folder for integration-test files: a static is never
        // dropped, so its temporary folder would outlive the run.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        let calibration = calibration.path(dir.path(), "calib");
        let mut args = vec!["keyparams", "--backend", backend];
        args.extend_from_slice(options);
        let keyparams = p("kp.json");
        args.extend_from_slice(&["-m", model, "-c", &calibration, "-o", &keyparams]);
        let report = ok(&args);
        ok(&["keygen", "-i", &p("kp.json"), "-o", &p("keys")]);
        ok(&["encrypt", "-k", &p("keys"), "-i", input, "-o", &p("x.enc")]);
        let stem = std::path::Path::new(model)
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap();
        let model: &'static str = format!("{stem}.heman").leak();
        ok(&[
            "inference",
            "-m",
            &p(model),
            "-k",
            &p("keys/eval.keys"),
            "-i",
            &p("x.enc"),
            "-o",
            &p("y.enc"),
        ]);
        let decrypted = ok(&[
            "decrypt",
            "-k",
            &p("keys"),
            "-i",
            &p("y.enc"),
            "-o",
            &p("y.npy"),
        ]);
        Self {
            dir,
            model,
            report,
            decrypted,
        }
    }

    /// The path of `name` in the workflow's folder.
    fn p(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    /// Asserts that `inference` on the workflow's model with `keys` and
    /// `input` (names in its folder) fails with `expected`.
    fn infer_fails(&self, model: &str, keys: &str, input: &str, expected: &str) {
        fails(
            &[
                "inference",
                "-m",
                &self.p(model),
                "-k",
                &self.p(keys),
                "-i",
                &self.p(input),
                "-o",
                &self.p("z.enc"),
            ],
            expected,
        )
    }

    /// Asserts that `encrypt` of `input` with the workflow's keys fails with
    /// `expected`.
    fn encrypt_fails(&self, input: &str, expected: &str) {
        fails(
            &[
                "encrypt",
                "-k",
                &self.p("keys"),
                "-i",
                input,
                "-o",
                &self.p("z.enc"),
            ],
            expected,
        )
    }

    /// Asserts that decrypting `input` (a name in the folder) with the keys
    /// in `keys` fails with `expected`.
    fn decrypt_fails(&self, keys: &str, input: &str, expected: &str) {
        fails(
            &[
                "decrypt",
                "-k",
                &self.p(keys),
                "-i",
                &self.p(input),
                "-o",
                &self.p("z.npy"),
            ],
            expected,
        )
    }

    /// Compiles `model` on its one-sample calibration for the same backend
    /// and makes keys for it in `<name>.json` and `keys-<name>/`.
    fn other_keys(
        &self,
        name: &str,
        backend: &str,
        options: &[&str],
        model: &str,
        sample: &'static str,
    ) {
        let calibration =
            Calibration::Sample(sample).path(self.dir.path(), &format!("calib-{name}"));
        let kp = self.p(&format!("{name}.json"));
        let mut args = vec!["keyparams", "--backend", backend];
        args.extend_from_slice(options);
        args.extend_from_slice(&["-m", model, "-c", &calibration, "-o", &kp]);
        ok(&args);
        ok(&["keygen", "-i", &kp, "-o", &self.p(&format!("keys-{name}"))]);
    }

    /// The mode bits of `name` in the folder.
    #[cfg(unix)]
    fn mode(&self, name: &str) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(self.dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }
}

/// A calibration set: a file of the repository, or a folder made of one
/// sample.
enum Calibration {
    File(&'static str),
    Sample(&'static str),
}

impl Calibration {
    /// The path to hand `keyparams` (a folder `name` in `dir` for a sample).
    fn path(&self, dir: &std::path::Path, name: &str) -> String {
        match self {
            Calibration::File(f) => f.to_string(),
            Calibration::Sample(sample) => {
                let folder: PathBuf = dir.join(name);
                std::fs::create_dir_all(&folder).unwrap();
                std::fs::copy(repo().join(sample), folder.join("0.npy")).unwrap();
                folder.to_str().unwrap().to_string()
            }
        }
    }
}

/// The five commands on the digits example (CKKS), run once per test binary.
fn ckks_workflow() -> &'static Workflow {
    static FLOW: OnceLock<Workflow> = OnceLock::new();
    FLOW.get_or_init(|| {
        Workflow::run(
            "ckks",
            &[],
            "examples/digits/digits_square.onnx",
            Calibration::File("examples/digits/calibration.npz"),
            "examples/digits/test/3-13.npy",
        )
    })
}

/// The five commands with `--backend tfhe --exact` on a small model, run
/// once per test binary.
fn tfhe_workflow() -> &'static Workflow {
    static FLOW: OnceLock<Workflow> = OnceLock::new();
    FLOW.get_or_init(|| {
        Workflow::run(
            "tfhe",
            &["--exact"],
            "tests/models/he_friendly_v14.onnx",
            Calibration::Sample("tests/models/he_friendly_v14.input.npy"),
            "tests/models/he_friendly_v14.input.npy",
        )
    })
}

#[test]
fn ckks_workflow_decrypts_the_right_digit() {
    let flow = ckks_workflow();
    assert!(flow.decrypted.contains("argmax 3"), "{}", flow.decrypted);
    #[cfg(unix)]
    assert_eq!(flow.mode("keys/secret.key"), 0o600);
    assert!(ok(&["inspect", &flow.p("keys/eval.keys")])
        .contains("heman ckks evaluation keys (format version 1)"));
    assert!(ok(&["inspect", &flow.p("y.enc")]).contains("heman ckks ciphertexts"));
    let model_text = ok(&["inspect", &flow.p(flow.model)]);
    assert!(
        model_text.contains("stage 1 'act1' <- stage 0: square; levels 1 -> 2")
            && model_text.contains("rotation steps"),
        "{model_text}"
    );
    assert!(ok(&["inspect", &flow.p("kp.json")]).contains("128-bit classical"));
    // A result to be released gets noise sized from its own error, and
    // keeps its digit; a factor out of range is refused.
    let (keys, input, output) = (flow.p("keys"), flow.p("y.enc"), flow.p("released.npy"));
    let decrypt = |noise: &str| {
        heman(&[
            "decrypt",
            "-k",
            &keys,
            "-i",
            &input,
            "-o",
            &output,
            "--decryption-noise",
            noise,
        ])
    };
    let released = decrypt("matched");
    assert!(released.status.success(), "{}", text(&released.stderr));
    let released = text(&released.stdout);
    assert!(
        released.contains("decryption noise: estimated error") && released.contains("argmax 3"),
        "{released}"
    );
    let refused = decrypt("99");
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("0 to 20"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn ckks_files_for_other_parameters_are_refused() {
    let flow = ckks_workflow();
    flow.other_keys(
        "other",
        "ckks",
        &[],
        "tests/models/he_friendly_v14.onnx",
        "tests/models/he_friendly_v14.input.npy",
    );
    flow.infer_fails(
        flow.model,
        "keys-other/eval.keys",
        "x.enc",
        "made for other parameters",
    );
    flow.decrypt_fails("keys-other", "y.enc", "y.enc: made for other parameters");
}

#[test]
fn ckks_truncated_damaged_and_mislabelled_files_are_refused() {
    let flow = ckks_workflow();
    let bytes = std::fs::read(flow.p("x.enc")).unwrap();
    std::fs::write(flow.p("cut.enc"), &bytes[..bytes.len() / 2]).unwrap();
    flow.infer_fails(
        flow.model,
        "keys/eval.keys",
        "cut.enc",
        "cut.enc: truncated",
    );
    let mut damaged = bytes.clone();
    damaged[1000] ^= 1;
    std::fs::write(flow.p("bad.enc"), &damaged).unwrap();
    flow.infer_fails(flow.model, "keys/eval.keys", "bad.enc", "bad.enc: damaged");
    flow.infer_fails(
        flow.model,
        "keys/secret.key",
        "x.enc",
        "secret.key: holds ckks secret key, expected ckks evaluation keys",
    );
    flow.infer_fails(
        "x.enc",
        "keys/eval.keys",
        "x.enc",
        "x.enc: holds ciphertexts, expected compiled model",
    );
    // The input handed to decrypt in place of the output: refused, not
    // decoded through the output's layout.
    flow.decrypt_fails("keys", "x.enc", "not an inference output");
    fails(
        &[
            "keygen",
            "-i",
            "examples/digits/digits_square.onnx",
            "-o",
            &flow.p("k3"),
        ],
        "not a heman keyparams file",
    );
}

/// A hostile keyparams.json (the model owner's file, read by the data owner)
/// cannot crash or exhaust the data owner: each damage is refused by name
/// before any key is made.
#[test]
fn ckks_hostile_keyparams_are_refused_before_keygen() {
    let flow = ckks_workflow();
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(flow.p("kp.json")).unwrap()).unwrap();
    let slots = original["slots"].as_u64().unwrap();
    type Damage<'a> = &'a dyn Fn(&mut serde_json::Value);
    let cases: [(&str, Damage, &str); 5] = [
        (
            "period-0",
            &|kp| kp["input"]["layout"]["period"] = 0.into(),
            "input layout: replication period 0",
        ),
        (
            "many-ciphertexts",
            &|kp| kp["output"]["layout"]["ciphertexts"] = (1u64 << 40).into(),
            "output layout",
        ),
        (
            "many-rotations",
            &|kp| kp["rotation_steps"] = (1..slots).collect::<Vec<_>>().into(),
            "rotation steps",
        ),
        (
            "rotation-past-the-slots",
            &|kp| kp["rotation_steps"] = vec![1, slots + 5].into(),
            "rotation steps",
        ),
        (
            "bootstrapping-past-the-ring",
            &|kp| kp["bootstrapping"] = serde_json::json!({ "log_slots": 40 }),
            "bootstrapping",
        ),
    ];
    for (name, damage, expected) in cases {
        let mut kp = original.clone();
        damage(&mut kp);
        let path = flow.p(&format!("kp-{name}.json"));
        std::fs::write(&path, serde_json::to_vec(&kp).unwrap()).unwrap();
        fails(
            &[
                "keygen",
                "-i",
                &path,
                "-o",
                &flow.p(&format!("keys-{name}")),
            ],
            expected,
        );
    }
}

#[test]
fn ckks_inputs_the_model_cannot_take_are_refused() {
    let flow = ckks_workflow();
    flow.encrypt_fails(
        "tests/models/bad/wrong_shape.input.npy",
        "wrong_shape.input.npy: shape [1, 1, 7, 8]",
    );
    flow.encrypt_fails("tests/models/bad/nan.input.npy", "nan.input.npy: element");
}

#[test]
fn tfhe_workflow_runs_end_to_end() {
    let flow = tfhe_workflow();
    assert!(
        flow.report.contains("exact mode") && flow.report.contains("bootstraps"),
        "{}",
        flow.report
    );
    #[cfg(unix)]
    {
        assert_eq!(flow.mode("keys/secret.key"), 0o600);
        assert_eq!(flow.mode(flow.model), 0o600);
    }
    assert!(!flow.dir.path().join("keys/public.key").exists());
    assert!(flow.decrypted.contains("shape [1, "), "{}", flow.decrypted);
    assert!(ok(&["inspect", &flow.p("keys/eval.keys")]).contains("heman tfhe evaluation keys"));
    assert!(ok(&["inspect", &flow.p(flow.model)]).contains("lookup"));
    assert!(ok(&["inspect", &flow.p("kp.json")]).contains("tfhe backend"));
    // Exact decryption: nothing to hide, nothing added.
    let released = ok(&[
        "decrypt",
        "-k",
        &flow.p("keys"),
        "-i",
        &flow.p("y.enc"),
        "-o",
        &flow.p("released.npy"),
        "--decryption-noise",
        "matched",
    ]);
    assert!(released.contains("none added (TFHE"), "{released}");
}

#[test]
fn tfhe_keys_of_another_model_are_refused() {
    let flow = tfhe_workflow();
    flow.other_keys(
        "relu",
        "tfhe",
        &["--exact"],
        "tests/models/relu.onnx",
        "tests/models/relu.input.npy",
    );
    flow.infer_fails(
        flow.model,
        "keys-relu/eval.keys",
        "x.enc",
        "made for other parameters",
    );
    flow.decrypt_fails("keys-relu", "y.enc", "y.enc: made for other parameters");
}

#[test]
fn tfhe_wrong_kinds_and_damaged_files_are_refused() {
    let flow = tfhe_workflow();
    flow.infer_fails(
        flow.model,
        "keys/secret.key",
        "x.enc",
        "secret.key: holds tfhe secret key, expected tfhe evaluation keys",
    );
    flow.decrypt_fails("keys", "x.enc", "not an inference output");
    let bytes = std::fs::read(flow.p("x.enc")).unwrap();
    std::fs::write(flow.p("cut.enc"), &bytes[..bytes.len() - 9]).unwrap();
    flow.infer_fails(
        flow.model,
        "keys/eval.keys",
        "cut.enc",
        "cut.enc: truncated",
    );
    flow.encrypt_fails("tests/models/relu.input.npy", "relu.input.npy: shape");
}

/// A model with two outputs (class probabilities and an auxiliary head)
/// through the five commands on TFHE: `decrypt` refuses an `.npy` path
/// naming both outputs, writes an `.npz` holding each under its name (the
/// Softmax applied to the first after decryption), and `inspect` lists where
/// each lies.
#[test]
fn two_outputs_decrypt_into_an_npz() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    ok(&[
        "keyparams",
        "--backend",
        "tfhe",
        "--preset",
        "2_2",
        "-m",
        "tests/graphs/two_heads.onnx",
        "-c",
        "tests/graphs/two_heads.calibration.npz",
        "-o",
        &p("kp.json"),
    ]);
    let listing = ok(&["inspect", &p("two_heads.heman")]);
    assert!(
        listing.contains("outputs (2): 'output' [1, 10] (values 0..10, then Softmax after decryption); 'aux' [1, 3] (values 10..13)"),
        "{listing}"
    );
    ok(&["keygen", "-i", &p("kp.json"), "-o", &p("keys")]);
    let input = "tests/graphs/two_heads.test/0.npy";
    ok(&["encrypt", "-k", &p("keys"), "-i", input, "-o", &p("x.enc")]);
    let (model, keys) = (p("two_heads.heman"), p("keys/eval.keys"));
    ok(&[
        "inference",
        "-m",
        &model,
        "-k",
        &keys,
        "-i",
        &p("x.enc"),
        "-o",
        &p("y.enc"),
    ]);
    let decrypt = |output: &str| {
        vec![
            "decrypt".to_string(),
            "-k".into(),
            p("keys"),
            "-i".into(),
            p("y.enc"),
            "-o".into(),
            p(output),
        ]
    };
    let args = decrypt("y.npy");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(
        &args,
        "the model has 2 outputs (output, aux); give an .npz path",
    );
    assert!(!dir.path().join("y.npy").exists());
    let args = decrypt("y.npz");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let printed = ok(&args);
    assert!(
        printed.contains("output: shape [1, 10], argmax") && printed.contains("aux: shape [1, 3]"),
        "{printed}"
    );
    let arrays = heman_model::io::dataset::load_arrays(&dir.path().join("y.npz")).unwrap();
    let named: Vec<(&str, &[usize])> = arrays
        .iter()
        .map(|s| (s.name.as_str(), s.tensor.shape()))
        .collect();
    assert_eq!(named, [("aux", &[1, 3][..]), ("output", &[1, 10][..])]);
    let total: f64 = arrays[1].tensor.data().iter().sum();
    assert!((total - 1.0).abs() < 1e-5, "probabilities sum to {total}");
}

/// `--activation-margin` outside 0..4 is refused by name before any work,
/// and on TFHE, whose activations are exact lookups, at all.
#[test]
fn activation_margins_out_of_range_or_for_tfhe_are_refused() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = dir.path().join("kp.json");
    let out = out.to_str().unwrap();
    let model = "examples/digits/digits_relu.onnx";
    let calibration = "examples/digits/calibration.npz";
    for (backend, margin, expected) in [
        (
            "ckks",
            "5",
            "--activation-margin 5: a share of the calibrated width from 0 to 4",
        ),
        ("ckks", "NaN", "--activation-margin NaN"),
        ("tfhe", "0.3", "apply to the ckks backend only"),
    ] {
        fails(
            &[
                "keyparams",
                "--backend",
                backend,
                "--activation-margin",
                margin,
                "-m",
                model,
                "-c",
                calibration,
                "-o",
                out,
            ],
            expected,
        );
    }
}

/// The five commands with `--packing throughput`: a batch `[3, 1, 8, 8]`
/// encrypted into one file, decrypted as `[3, 10]`, each row the class of
/// its image; a batch sent to the latency workflow's model is refused.
#[test]
fn a_throughput_batch_runs_through_the_five_commands() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("batch.npy");
    let images = ["3-13", "0-16", "7-1"].map(|n| {
        heman_model::io::npy::read_npy(&repo().join(format!("examples/digits/test/{n}.npy")))
            .unwrap()
    });
    let data: Vec<f64> = images.iter().flat_map(|t| t.data().to_vec()).collect();
    let batch = heman_model::Tensor::new(vec![3, 1, 8, 8], data);
    heman_model::io::npy::write_npy(&path, &batch, heman_model::io::npy::NpyDtype::F32).unwrap();
    let batch = path.to_str().unwrap();
    let flow = Workflow::run(
        "ckks",
        &["--packing", "throughput"],
        "examples/digits/digits_square.onnx",
        Calibration::File("examples/digits/calibration.npz"),
        batch,
    );
    assert!(flow.report.contains("0 rotation keys"), "{}", flow.report);
    assert!(ok(&["inspect", &flow.p(flow.model)]).contains("packing: throughput"));
    assert!(
        flow.decrypted
            .contains("shape [3, 10], argmax of each row [3, 0, 7]"),
        "{}",
        flow.decrypted
    );
    // The latency workflow's keys take one image, and say how to batch.
    ckks_workflow().encrypt_fails(batch, "--packing throughput");
}
