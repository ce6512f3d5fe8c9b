//! The `heman` binary end to end on the repository's own example.

use std::process::{Command, Output};

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

/// The five commands on the digits example, then the bad inputs a user can
/// hand them: each fails with a message naming the file, never a panic.
#[test]
fn two_party_workflow_and_its_bad_inputs() {
    let dir = std::env::temp_dir().join(format!("heman-flow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let ok = |args: &[&str]| {
        let out = heman(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let fails = |args: &[&str], expected: &str| {
        let out = heman(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {stderr}");
        assert!(
            stderr.contains(expected) && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    };
    let infer_fails = |model: &str, keys: &str, input: &str, expected: &str| {
        fails(
            &[
                "inference",
                "-m",
                &p(model),
                "-k",
                &p(keys),
                "-i",
                &p(input),
                "-o",
                &p("z.enc"),
            ],
            expected,
        )
    };
    let (model, calib) = (
        "examples/digits/digits_square.onnx",
        "examples/digits/calibration.npz",
    );
    ok(&["keyparams", "-m", model, "-c", calib, "-o", &p("kp.json")]);
    assert!(dir.join("digits_square.heman").is_file());
    ok(&["keygen", "-i", &p("kp.json"), "-o", &p("keys")]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("keys/secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let input = "examples/digits/test/3-13.npy";
    ok(&["encrypt", "-k", &p("keys"), "-i", input, "-o", &p("x.enc")]);
    let (heman_model, eval_keys) = (p("digits_square.heman"), p("keys/eval.keys"));
    ok(&[
        "inference",
        "-m",
        &heman_model,
        "-k",
        &eval_keys,
        "-i",
        &p("x.enc"),
        "-o",
        &p("y.enc"),
    ]);
    let stdout = ok(&[
        "decrypt",
        "-k",
        &p("keys"),
        "-i",
        &p("y.enc"),
        "-o",
        &p("y.npy"),
    ]);
    assert!(stdout.contains("argmax 3"), "{stdout}");
    assert!(ok(&["inspect", &eval_keys]).contains("heman ckks evaluation keys (format version 1)"));
    assert!(ok(&["inspect", &p("y.enc")]).contains("heman ckks ciphertexts"));
    let model_text = ok(&["inspect", &heman_model]);
    assert!(
        model_text.contains("stage 1: square") && model_text.contains("rotation steps"),
        "{model_text}"
    );
    assert!(ok(&["inspect", &p("kp.json")]).contains("128-bit classical"));

    // Keys and ciphertexts made for other parameters are refused.
    std::fs::create_dir_all(dir.join("calib-other")).unwrap();
    std::fs::copy(
        repo().join("tests/models/he_friendly_v14.input.npy"),
        dir.join("calib-other/0.npy"),
    )
    .unwrap();
    ok(&[
        "keyparams",
        "-m",
        "tests/models/he_friendly_v14.onnx",
        "-c",
        &p("calib-other"),
        "-o",
        &p("other.json"),
    ]);
    ok(&["keygen", "-i", &p("other.json"), "-o", &p("keys-other")]);
    infer_fails(
        "digits_square.heman",
        "keys-other/eval.keys",
        "x.enc",
        "made for other parameters",
    );
    fails(
        &[
            "decrypt",
            "-k",
            &p("keys-other"),
            "-i",
            &p("y.enc"),
            "-o",
            &p("z.npy"),
        ],
        "y.enc: made for other parameters",
    );

    // Truncated, damaged and mislabelled files.
    let bytes = std::fs::read(dir.join("x.enc")).unwrap();
    std::fs::write(dir.join("cut.enc"), &bytes[..bytes.len() / 2]).unwrap();
    infer_fails(
        "digits_square.heman",
        "keys/eval.keys",
        "cut.enc",
        "cut.enc: truncated",
    );
    let mut damaged = bytes.clone();
    damaged[1000] ^= 1;
    std::fs::write(dir.join("bad.enc"), &damaged).unwrap();
    infer_fails(
        "digits_square.heman",
        "keys/eval.keys",
        "bad.enc",
        "bad.enc: damaged",
    );
    infer_fails(
        "digits_square.heman",
        "keys/secret.key",
        "x.enc",
        "secret.key: holds ckks secret key, expected ckks evaluation keys",
    );
    infer_fails(
        "x.enc",
        "keys/eval.keys",
        "x.enc",
        "x.enc: holds ciphertexts, expected compiled model",
    );

    // Inputs the model cannot take.
    let encrypt_fails = |input: &str, expected: &str| {
        fails(
            &["encrypt", "-k", &p("keys"), "-i", input, "-o", &p("z.enc")],
            expected,
        )
    };
    encrypt_fails(
        "tests/models/bad/wrong_shape.input.npy",
        "wrong_shape.input.npy: shape [1, 1, 7, 8]",
    );
    encrypt_fails("tests/models/bad/nan.input.npy", "nan.input.npy: element");
    fails(
        &["keygen", "-i", model, "-o", &p("k3")],
        "not a heman keyparams file",
    );
    std::fs::remove_dir_all(dir).ok();
}

/// The five commands with `--backend tfhe` on small models, then the bad
/// inputs: other keys, other kinds of file, damaged ciphertexts.
#[test]
fn tfhe_workflow_and_its_bad_inputs() {
    let dir = std::env::temp_dir().join(format!("heman-tfhe-flow-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("calib")).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let ok = |args: &[&str]| {
        let out = heman(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let fails = |args: &[&str], expected: &str| {
        let out = heman(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {stderr}");
        assert!(
            stderr.contains(expected) && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    };
    let input = "tests/models/he_friendly_v14.input.npy";
    std::fs::copy(repo().join(input), dir.join("calib/0.npy")).unwrap();
    let report = ok(&[
        "keyparams",
        "--backend",
        "tfhe",
        "--exact",
        "-m",
        "tests/models/he_friendly_v14.onnx",
        "-c",
        &p("calib"),
        "-o",
        &p("kp.json"),
    ]);
    assert!(
        report.contains("exact mode") && report.contains("bootstraps"),
        "{report}"
    );
    let model = p("he_friendly_v14.heman");
    ok(&["keygen", "-i", &p("kp.json"), "-o", &p("keys")]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("keys/secret.key"), 0o600);
        assert_eq!(mode("he_friendly_v14.heman"), 0o600);
    }
    assert!(!dir.join("keys/public.key").exists());
    ok(&["encrypt", "-k", &p("keys"), "-i", input, "-o", &p("x.enc")]);
    let infer = |keys: &str, input: &str| {
        vec![
            "inference".to_string(),
            "-m".into(),
            model.clone(),
            "-k".into(),
            p(keys),
            "-i".into(),
            p(input),
            "-o".into(),
            p("y.enc"),
        ]
    };
    let args = infer("keys/eval.keys", "x.enc");
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = ok(&[
        "decrypt",
        "-k",
        &p("keys"),
        "-i",
        &p("y.enc"),
        "-o",
        &p("y.npy"),
    ]);
    assert!(stdout.contains("shape [1, "), "{stdout}");
    assert!(ok(&["inspect", &p("keys/eval.keys")]).contains("heman tfhe evaluation keys"));
    assert!(ok(&["inspect", &model]).contains("lookup"));
    assert!(ok(&["inspect", &p("kp.json")]).contains("tfhe backend"));

    // Keys of another TFHE model, and CKKS files, are refused by name.
    std::fs::create_dir_all(dir.join("calib-relu")).unwrap();
    std::fs::copy(
        repo().join("tests/models/relu.input.npy"),
        dir.join("calib-relu/0.npy"),
    )
    .unwrap();
    ok(&[
        "keyparams",
        "--backend",
        "tfhe",
        "--exact",
        "-m",
        "tests/models/relu.onnx",
        "-c",
        &p("calib-relu"),
        "-o",
        &p("other.json"),
    ]);
    ok(&["keygen", "-i", &p("other.json"), "-o", &p("keys-other")]);
    let args = infer("keys-other/eval.keys", "x.enc");
    fails(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "made for other parameters",
    );
    fails(
        &[
            "decrypt",
            "-k",
            &p("keys-other"),
            "-i",
            &p("y.enc"),
            "-o",
            &p("z.npy"),
        ],
        "y.enc: made for other parameters",
    );
    let args = infer("keys/secret.key", "x.enc");
    fails(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "secret.key: holds tfhe secret key, expected tfhe evaluation keys",
    );
    fails(
        &[
            "decrypt",
            "-k",
            &p("keys"),
            "-i",
            &p("x.enc"),
            "-o",
            &p("z.npy"),
        ],
        "not an inference output",
    );
    let bytes = std::fs::read(dir.join("x.enc")).unwrap();
    std::fs::write(dir.join("cut.enc"), &bytes[..bytes.len() - 9]).unwrap();
    let args = infer("keys/eval.keys", "cut.enc");
    fails(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "cut.enc: truncated",
    );
    fails(
        &[
            "encrypt",
            "-k",
            &p("keys"),
            "-i",
            "tests/models/relu.input.npy",
            "-o",
            &p("z.enc"),
        ],
        "relu.input.npy: shape",
    );
    std::fs::remove_dir_all(&dir).ok();
}
