//! `heman serve` and its clients end to end, as real processes on loopback:
//! `heman query` (keygen, registration, encrypt, infer, decrypt), the
//! official Python `tritonclient` over HTTP and gRPC
//! (`examples/python/triton_query.py`), a restart keeping registered keys,
//! and a graceful stop on SIGTERM. Every answer is compared with the
//! plaintext model.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use heman_testkit::{assert_matches_plaintext, repo_root, Tolerance, FLOODED};

fn heman_bin() -> &'static str {
    env!("CARGO_BIN_EXE_heman")
}

fn heman(args: &[&str]) -> Output {
    Command::new(heman_bin())
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("heman runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A `heman serve` process and the addresses it printed.
struct Serving {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    http: String,
    grpc: String,
}

impl Serving {
    /// Serves `repo` on `http` and `grpc` (port 0: any free port).
    fn start(repo: &Path, key_store: &Path, http: &str, grpc: &str) -> Self {
        let mut child = Command::new(heman_bin())
            .args(["serve", "--model-repository"])
            .arg(repo)
            .args(["--http", http, "--grpc", grpc])
            .args(["--max-concurrent", "2", "--timeout-s", "60", "--key-store"])
            .arg(key_store)
            // Warnings and errors only: the test's output stays readable.
            .env("HEMAN_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("heman serve starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut http, mut grpc) = (None, None);
        let mut line = String::new();
        while http.is_none() || grpc.is_none() {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!("heman serve exited: {:?}", child.wait());
            }
            if let Some(url) = line.trim().strip_prefix("HTTP listening on ") {
                http = Some(url.to_string());
            }
            if let Some(addr) = line.trim().strip_prefix("gRPC listening on ") {
                grpc = Some(addr.to_string());
            }
        }
        Self {
            child,
            _stdout: stdout,
            http: http.unwrap(),
            grpc: grpc.unwrap(),
        }
    }

    /// SIGTERM, then the exit status within 30 s.
    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child process by its id.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "heman serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The plaintext output of `examples/digits/<model>` for `input`
/// (post-processing included: the digits models have none).
fn plaintext(input: &Path, model: &str) -> heman_model::Tensor {
    let graph = heman_model::load_onnx(&repo_root().join("examples/digits").join(model)).unwrap();
    let x = heman_model::io::npy::read_npy(input).unwrap();
    let shape = graph.value(graph.inputs[0]).shape.clone();
    graph.run(&[x.reshaped(shape)]).unwrap().remove(0)
}

fn assert_close(output: &Path, input: &Path, what: &str) {
    let y = heman_model::io::npy::read_npy(output).unwrap();
    let expected = plaintext(input, "digits_square.onnx");
    assert_matches_plaintext(&y, &expected, FLOODED, what);
}

/// The interpreter with tritonclient: `$HEMAN_PYTHON` (set by `.ci/run`;
/// it must work), else the virtualenv `.ci/run` makes, if it works.
fn python() -> Option<PathBuf> {
    let works = |p: &Path| {
        Command::new(p)
            .args(["-c", "import tritonclient.http, tritonclient.grpc, numpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(p) = std::env::var_os("HEMAN_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            works(&p),
            "HEMAN_PYTHON={} cannot import tritonclient and numpy",
            p.display()
        );
        return Some(p);
    }
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".cache/heman-venv/bin/python")).filter(|p| works(p))
}

#[test]
fn serve_and_query_end_to_end() {
    let work = tempfile::tempdir().unwrap();
    let w = |p: &str| work.path().join(p);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let repo = w("repo");
    // Compiles an example into `repo/<name>/<name>.heman`.
    let compile = |name: &str, model: &str, extra: &[&str]| {
        std::fs::create_dir_all(repo.join(name)).unwrap();
        let (keyparams, compiled) = (
            s(&w(&format!("keyparams-{name}.json"))),
            s(&repo.join(format!("{name}/{name}.heman"))),
        );
        let model = format!("examples/digits/{model}");
        let mut args = vec!["keyparams"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "-m",
            &model,
            "-c",
            "examples/digits/calibration.npz",
            "-o",
            &keyparams,
            "--compiled",
            &compiled,
        ]);
        succeeded(&heman(&args), &format!("keyparams ({name})"));
    };
    compile("digits", "digits_square.onnx", &[]);
    // A second model, with other CKKS parameters (ReLU as polynomials):
    // one server serves both.
    compile("relu", "digits_relu.onnx", &[]);
    // A third, for TFHE (exact mode: the decrypted integers are the
    // quantised model's).
    compile(
        "relu_tfhe",
        "digits_relu.onnx",
        &["--backend", "tfhe", "--exact"],
    );
    let server = Serving::start(&repo, &w("registered"), "127.0.0.1:0", "127.0.0.1:0");

    // heman query: keys made from the server's keyparams, registered once.
    let input = repo_root().join("examples/digits/test/3-4.npy");
    let query_model = |model: &str, keys: &Path, output: &Path, extra: &[&str]| {
        let (keys, input, output) = (s(keys), s(&input), s(output));
        let mut args = vec![
            "query",
            "--url",
            &server.http,
            "--model",
            model,
            "-k",
            &keys,
            "-i",
            &input,
            "-o",
            &output,
        ];
        args.extend_from_slice(extra);
        heman(&args)
    };
    let query =
        |keys: &Path, output: &Path, extra: &[&str]| query_model("digits", keys, output, extra);
    let first = succeeded(&query(&w("keys"), &w("y1.npy"), &[]), "first query");
    assert!(first.contains("making keys"), "{first}");
    assert!(first.contains("registered"), "{first}");
    assert_close(&w("y1.npy"), &input, "heman query");
    let second = succeeded(&query(&w("keys"), &w("y2.npy"), &[]), "second query");
    assert!(
        !second.contains("registered") && !second.contains("making keys"),
        "keys made or registered again:\n{second}"
    );
    assert_close(&w("y2.npy"), &input, "heman query, registered keys");

    // The second model, with its own keys; the first model's keys are
    // refused for it. Its activations are polynomial approximations, so the
    // comparison is the class and a loose tolerance.
    let relu = |keys: &Path, output: &Path| query_model("relu", keys, output, &[]);
    succeeded(&relu(&w("keys-relu"), &w("relu.npy")), "query (relu)");
    let y = heman_model::io::npy::read_npy(&w("relu.npy")).unwrap();
    let expected = plaintext(&input, "digits_relu.onnx");
    assert_matches_plaintext(&y, &expected, Tolerance::relative(0.2), "relu model");
    let refused = relu(&w("keys"), &w("relu2.npy"));
    assert!(
        text(&refused.stderr).contains("keys for other keyparams"),
        "{}",
        text(&refused.stderr)
    );

    // The TFHE model through the same command: keys made from its TFHE
    // keyparams, registered, the answer decrypted and dequantised.
    let tfhe = |keys: &Path, output: &Path| query_model("relu_tfhe", keys, output, &[]);
    let out = succeeded(&tfhe(&w("keys-tfhe"), &w("tfhe.npy")), "query (tfhe)");
    assert!(out.contains("making keys") && out.contains("2_2"), "{out}");
    let y = heman_model::io::npy::read_npy(&w("tfhe.npy")).unwrap();
    // The quantised plaintext model's output (the model owner's view), which
    // exact mode's decryption reproduces up to the f32 of the .npy.
    let model = heman_artifacts::tfhe::CompiledModel::read(&repo.join("relu_tfhe/relu_tfhe.heman"))
        .unwrap();
    let plan = &model.plan;
    let x = heman_model::io::npy::read_npy(&input)
        .unwrap()
        .reshaped(plan.input.shape.clone());
    let u = plan.run_exact(&plan.quantise_input(&x).unwrap()).unwrap();
    let quantised = model
        .keyparams
        .postprocess
        .iter()
        .fold(plan.dequantise_output(&u), |t, op| op.eval(&[&t]));
    assert_matches_plaintext(&y, &quantised, Tolerance::relative(1e-5), "TFHE model");
    let refused = tfhe(&w("keys"), &w("tfhe2.npy"));
    assert!(
        text(&refused.stderr).contains("keys for other keyparams"),
        "{}",
        text(&refused.stderr)
    );

    // A keys directory for another model is refused, not overwritten.
    let foreign = w("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    let mut kp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w("keys/keyparams.json")).unwrap()).unwrap();
    kp["model_fingerprint"] = "00".repeat(32).into();
    std::fs::write(foreign.join("keyparams.json"), kp.to_string()).unwrap();
    std::fs::copy(w("keys/secret.key"), foreign.join("secret.key")).unwrap();
    let refused = query(&foreign, &w("y3.npy"), &[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("keys for other keyparams"),
        "{}",
        text(&refused.stderr)
    );
    let unknown = heman(&[
        "query",
        "--url",
        &server.http,
        "--model",
        "nope",
        "-k",
        &s(&w("keys")),
        "-i",
        &s(&input),
        "-o",
        &s(&w("y4.npy")),
    ]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("unknown model 'nope'"),
        "{}",
        text(&unknown.stderr)
    );

    // A short load through the real binaries: every answer must agree.
    let load = succeeded(
        &query(
            &w("keys"),
            &w("y5.npy"),
            &["--repeat", "16", "--concurrency", "4"],
        ),
        "query under load",
    );
    assert!(load.contains("16 requests, 4 in flight"), "{load}");
    println!("{load}");
    assert_close(&w("y5.npy"), &input, "heman query under load");

    // The official Python client, over HTTP and gRPC.
    match python() {
        None => {
            let note = "SKIPPED tritonclient part of serve_and_query_end_to_end: no Python with tritonclient (set HEMAN_PYTHON; .ci/run makes $HOME/.cache/heman-venv)";
            println!("{note}");
            eprintln!("{note}");
        }
        Some(python) => {
            let script = repo_root().join("examples/python/triton_query.py");
            let http = server.http.trim_start_matches("http://").to_string();
            for (protocol, url) in [("http", http.as_str()), ("grpc", server.grpc.as_str())] {
                let keys = w(&format!("py-keys-{protocol}"));
                let output = w(&format!("py-{protocol}.npy"));
                let out = Command::new(&python)
                    .arg(&script)
                    .args(["--url", url, "--protocol", protocol, "--model", "digits"])
                    .args(["--heman", heman_bin()])
                    .arg("--keys")
                    .arg(&keys)
                    .arg("--input")
                    .arg(&input)
                    .arg("--output")
                    .arg(&output)
                    .output()
                    .expect("python runs");
                succeeded(&out, &format!("triton_query.py over {protocol}"));
                assert_close(&output, &input, &format!("tritonclient over {protocol}"));
            }
        }
    }

    // Graceful stop; a restart (same addresses) keeps the registered keys:
    // the query finds them and sends none.
    let (http, grpc) = (server.http.clone(), server.grpc.clone());
    let status = server.stop();
    assert!(status.success(), "heman serve exited with {status}");
    let addr = http.trim_start_matches("http://");
    let server = Serving::start(&repo, &w("registered"), addr, &grpc);
    let again = heman(&[
        "query",
        "--url",
        &server.http,
        "--model",
        "digits",
        "-k",
        &s(&w("keys")),
        "-i",
        &s(&input),
        "-o",
        &s(&w("y6.npy")),
    ]);
    let again = succeeded(&again, "query after restart");
    assert!(!again.contains("registered"), "keys sent again:\n{again}");
    assert_close(&w("y6.npy"), &input, "after restart");
    assert!(server.stop().success());
}
