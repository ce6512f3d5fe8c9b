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
    /// Serves `repo` on `http` and `grpc` (port 0: any free port), with
    /// `extra` arguments.
    fn start(repo: &Path, key_store: &Path, addrs: (&str, &str), extra: &[&str]) -> Self {
        Self::start_with_env(repo, key_store, addrs, extra, &[])
    }

    /// As [`Serving::start`], with environment variables `env` set (an S3
    /// key store's credentials).
    fn start_with_env(
        repo: &Path,
        key_store: &Path,
        (http, grpc): (&str, &str),
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(heman_bin())
            .args(["serve", "--model-repository"])
            .arg(repo)
            .args(["--http", http, "--grpc", grpc])
            .args(["--max-concurrent", "2", "--timeout-s", "60", "--key-store"])
            .arg(key_store)
            .args(extra)
            // Warnings and errors only: the test's output stays readable.
            .env("HEMAN_LOG", "warn")
            .envs(env.iter().copied())
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
    fn stop(&mut self) -> std::process::ExitStatus {
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

/// A model repository of compiled examples, served by `heman serve`, in a
/// folder of its own.
struct Deployment {
    work: tempfile::TempDir,
    server: Serving,
    /// The test digit every query sends.
    input: PathBuf,
}

/// The example each test serves: name, ONNX file in `examples/digits`, and
/// extra `keyparams` arguments.
const DIGITS: (&str, &str, &[&str]) = ("digits", "digits_square.onnx", &[]);

impl Deployment {
    /// Compiles each `(name, model, extra arguments)` into
    /// `repo/<name>/<name>.heman` and serves the repository.
    fn serve(models: &[(&str, &str, &[&str])]) -> Self {
        Self::serve_with(models, &[])
    }

    /// As [`Deployment::serve`], `heman serve` given `extra` arguments.
    fn serve_with(models: &[(&str, &str, &[&str])], extra: &[&str]) -> Self {
        let work = compiled(models);
        let server = Serving::start(
            &work.path().join("repo"),
            &work.path().join("registered"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            extra,
        );
        Self {
            work,
            server,
            input: repo_root().join("examples/digits/test/3-4.npy"),
        }
    }

    /// `name` in the deployment's folder.
    fn w(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// `heman query` of `model` with the keys folder `keys` into `output`
    /// (names in the deployment's folder).
    fn query(&self, model: &str, keys: &str, output: &str, extra: &[&str]) -> Output {
        self.query_at(&self.server.http, model, keys, output, extra)
    }

    /// As [`Deployment::query`], of the server at `url`.
    fn query_at(&self, url: &str, model: &str, keys: &str, output: &str, extra: &[&str]) -> Output {
        let (keys, input, output) = (
            path_text(&self.w(keys)),
            path_text(&self.input),
            path_text(&self.w(output)),
        );
        let mut args = vec![
            "query", "--url", url, "--model", model, "-k", &keys, "-i", &input, "-o", &output,
        ];
        args.extend_from_slice(extra);
        heman(&args)
    }

    /// Asserts that the query's output `output` is the digits model's
    /// plaintext answer.
    fn assert_close(&self, output: &str, what: &str) {
        assert_close(&self.w(output), &self.input, what);
    }
}

/// A temporary folder with each `(name, model, extra arguments)` compiled
/// into `repo/<name>/<name>.heman`.
fn compiled(models: &[(&str, &str, &[&str])]) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    for (name, model, extra) in models {
        std::fs::create_dir_all(repo.join(name)).unwrap();
        let keyparams = path_text(&work.path().join(format!("keyparams-{name}.json")));
        let compiled = path_text(&repo.join(format!("{name}/{name}.heman")));
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
    }
    work
}

fn path_text(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Asserts that a refused query said the keys were made for another model.
fn assert_refused_keys(refused: &Output) {
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("keys for other keyparams"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn query_makes_keys_once_and_reuses_them() {
    let d = Deployment::serve(&[DIGITS]);
    let first = succeeded(&d.query("digits", "keys", "y1.npy", &[]), "first query");
    assert!(first.contains("making keys"), "{first}");
    assert!(first.contains("registered"), "{first}");
    d.assert_close("y1.npy", "heman query");
    let second = succeeded(&d.query("digits", "keys", "y2.npy", &[]), "second query");
    assert!(
        !second.contains("registered") && !second.contains("making keys"),
        "keys made or registered again:\n{second}"
    );
    d.assert_close("y2.npy", "heman query, registered keys");

    // A short load through the real binaries: every answer must agree.
    let load = succeeded(
        &d.query(
            "digits",
            "keys",
            "y5.npy",
            &["--repeat", "16", "--concurrency", "4"],
        ),
        "query under load",
    );
    assert!(load.contains("16 requests, 4 in flight"), "{load}");
    println!("{load}");
    d.assert_close("y5.npy", "heman query under load");
}

#[test]
fn query_refuses_foreign_keys_and_unknown_models() {
    let d = Deployment::serve(&[DIGITS]);
    succeeded(&d.query("digits", "keys", "y1.npy", &[]), "first query");
    // A keys directory for another model is refused, not overwritten.
    let foreign = d.w("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    let mut kp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.w("keys/keyparams.json")).unwrap()).unwrap();
    kp["model_fingerprint"] = "00".repeat(32).into();
    std::fs::write(foreign.join("keyparams.json"), kp.to_string()).unwrap();
    std::fs::copy(d.w("keys/secret.key"), foreign.join("secret.key")).unwrap();
    assert_refused_keys(&d.query("digits", "foreign", "y3.npy", &[]));
    let unknown = d.query("nope", "keys", "y4.npy", &[]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("unknown model 'nope'"),
        "{}",
        text(&unknown.stderr)
    );
}

/// A server with tokens answers only a client that shows one (`heman
/// query --token-file`); an open one refuses to listen beyond loopback.
#[test]
fn tokens_guard_the_server_and_an_open_one_stays_on_loopback() {
    let secrets = tempfile::tempdir().unwrap();
    let token = "5ec2e7000000000000000000000000000000000000000000000000000000beef";
    let tokens = secrets.path().join("tokens");
    std::fs::write(&tokens, format!("# clients\nalice {token}\n")).unwrap();
    let token_file = secrets.path().join("alice.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let d = Deployment::serve_with(&[DIGITS], &["--tokens", &path_text(&tokens)]);
    let refused = d.query("digits", "keys", "y0.npy", &[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("401") && text(&refused.stderr).contains("bearer token"),
        "{}",
        text(&refused.stderr)
    );
    let token_arg = path_text(&token_file);
    succeeded(
        &d.query("digits", "keys", "y1.npy", &["--token-file", &token_arg]),
        "query with a token",
    );
    d.assert_close("y1.npy", "heman query with a token");

    // Open, on every address: refused before it listens.
    let mut open = Command::new(heman_bin())
        .args(["serve", "--model-repository"])
        .arg(d.w("repo"))
        .args(["--http", "0.0.0.0:0", "--grpc", "off", "--key-store"])
        .arg(d.w("registered"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = open.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = open.kill();
            panic!("an open server started on 0.0.0.0");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut open.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}

/// Two CKKS models with other parameters (the second with ReLU as
/// polynomials) and a TFHE one (the default plan: its reads are noisy, so
/// the answer is compared with the quantised model's by class and within a
/// tolerance; exact 2_2 plans leave this CNN a constant and are refused),
/// served by one server; each model's keys are refused for the others.
#[test]
fn one_server_serves_models_of_both_backends() {
    let d = Deployment::serve(&[
        DIGITS,
        ("relu", "digits_relu.onnx", &[]),
        ("relu_tfhe", "digits_relu.onnx", &["--backend", "tfhe"]),
    ]);
    succeeded(&d.query("digits", "keys", "y1.npy", &[]), "digits query");
    d.assert_close("y1.npy", "digits model");

    // Its activations are polynomial approximations, so the comparison is
    // the class and a loose tolerance.
    succeeded(
        &d.query("relu", "keys-relu", "relu.npy", &[]),
        "query (relu)",
    );
    let y = heman_model::io::npy::read_npy(&d.w("relu.npy")).unwrap();
    let expected = plaintext(&d.input, "digits_relu.onnx");
    assert_matches_plaintext(&y, &expected, Tolerance::relative(0.2), "relu model");
    assert_refused_keys(&d.query("relu", "keys", "relu2.npy", &[]));

    // The TFHE model through the same command: keys made from its TFHE
    // keyparams, registered, the answer decrypted and dequantised.
    let out = succeeded(
        &d.query("relu_tfhe", "keys-tfhe", "tfhe.npy", &[]),
        "query (tfhe)",
    );
    assert!(out.contains("making keys") && out.contains("2_2"), "{out}");
    let y = heman_model::io::npy::read_npy(&d.w("tfhe.npy")).unwrap();
    // The quantised plaintext model's output (the model owner's view),
    // which the decryption reproduces up to the reads' noise.
    let model =
        heman_artifacts::tfhe::CompiledModel::read(&d.w("repo/relu_tfhe/relu_tfhe.heman")).unwrap();
    let plan = &model.plan;
    let x = heman_model::io::npy::read_npy(&d.input)
        .unwrap()
        .reshaped(plan.input.shape.clone());
    let u = plan.run_exact(&plan.quantise_input(&x).unwrap()).unwrap();
    let quantised = model.keyparams.outputs[0]
        .postprocess
        .iter()
        .fold(plan.dequantise_output(&u), |t, op| op.eval(&[&t]));
    assert_eq!(y.argmax(), quantised.argmax(), "TFHE model's class");
    assert_eq!(y.argmax(), expected.argmax(), "TFHE model's class");
    assert_matches_plaintext(&y, &quantised, Tolerance::relative(0.25), "TFHE model");
    assert_refused_keys(&d.query("relu_tfhe", "keys", "tfhe2.npy", &[]));
}

/// A throughput model served: `heman query` sends a batch `[3, 1, 8, 8]` as
/// one ciphertext file and gets `[3, 10]`, each row its image's plaintext
/// class.
#[test]
fn a_throughput_model_answers_a_batch_in_one_query() {
    let d = Deployment::serve(&[("batch", "digits_square.onnx", &["--packing", "throughput"])]);
    let names = ["3-4", "0-16", "7-1"];
    let images: Vec<heman_model::Tensor> = names
        .iter()
        .map(|n| {
            let path = repo_root().join(format!("examples/digits/test/{n}.npy"));
            heman_model::io::npy::read_npy(&path).unwrap()
        })
        .collect();
    let data: Vec<f64> = images.iter().flat_map(|t| t.data().to_vec()).collect();
    let batch = d.w("batch.npy");
    heman_model::io::npy::write_npy(
        &batch,
        &heman_model::Tensor::new(vec![3, 1, 8, 8], data),
        heman_model::io::npy::NpyDtype::F32,
    )
    .unwrap();
    let (keys, output) = (path_text(&d.w("keys")), path_text(&d.w("y.npy")));
    let args = [
        "query",
        "--url",
        &d.server.http,
        "--model",
        "batch",
        "-k",
        &keys,
        "-i",
        &path_text(&batch),
        "-o",
        &output,
    ];
    succeeded(&heman(&args), "batch query");
    let y = heman_model::io::npy::read_npy(&d.w("y.npy")).unwrap();
    assert_eq!(y.shape(), &[3, 10]);
    for (row, name) in y.data().chunks(10).zip(names) {
        let path = repo_root().join(format!("examples/digits/test/{name}.npy"));
        let expected = plaintext(&path, "digits_square.onnx");
        let class = (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        assert_eq!(Some(class), expected.argmax(), "image {name}");
    }
}

/// The official Python client, over HTTP and gRPC.
#[test]
fn tritonclient_over_http_and_grpc() {
    let Some(python) = python() else {
        let note = "SKIPPED tritonclient_over_http_and_grpc: no Python with tritonclient (set HEMAN_PYTHON; .ci/run makes $HOME/.cache/heman-venv)";
        println!("{note}");
        eprintln!("{note}");
        return;
    };
    // Served with tokens, as a server beyond loopback must be: the script
    // sends its bearer token over both protocols.
    let secrets = tempfile::tempdir().unwrap();
    let token = "7217070000000000000000000000000000000000000000000000000000c11e47";
    let tokens = secrets.path().join("tokens");
    std::fs::write(&tokens, format!("python {token}\n")).unwrap();
    let token_file = secrets.path().join("python.token");
    std::fs::write(&token_file, token).unwrap();
    let d = Deployment::serve_with(&[DIGITS], &["--tokens", &path_text(&tokens)]);
    let script = repo_root().join("examples/python/triton_query.py");
    let http = d.server.http.trim_start_matches("http://").to_string();
    for (protocol, url) in [("http", http.as_str()), ("grpc", d.server.grpc.as_str())] {
        let keys = d.w(&format!("py-keys-{protocol}"));
        let output = d.w(&format!("py-{protocol}.npy"));
        let out = Command::new(&python)
            .arg(&script)
            .args(["--url", url, "--protocol", protocol, "--model", "digits"])
            .args(["--heman", heman_bin()])
            .arg("--token-file")
            .arg(&token_file)
            .arg("--keys")
            .arg(&keys)
            .arg("--input")
            .arg(&d.input)
            .arg("--output")
            .arg(&output)
            .output()
            .expect("python runs");
        succeeded(&out, &format!("triton_query.py over {protocol}"));
        assert_close(&output, &d.input, &format!("tritonclient over {protocol}"));
    }
}

/// Graceful stop; a restart (same addresses) keeps the registered keys: the
/// query finds them and sends none.
#[test]
fn registered_keys_survive_a_graceful_restart() {
    let mut d = Deployment::serve(&[DIGITS]);
    succeeded(&d.query("digits", "keys", "y1.npy", &[]), "first query");
    let (http, grpc) = (d.server.http.clone(), d.server.grpc.clone());
    let status = d.server.stop();
    assert!(status.success(), "heman serve exited with {status}");
    let addr = http.trim_start_matches("http://");
    d.server = Serving::start(&d.w("repo"), &d.w("registered"), (addr, &grpc), &[]);
    let again = succeeded(
        &d.query("digits", "keys", "y6.npy", &[]),
        "query after restart",
    );
    assert!(!again.contains("registered"), "keys sent again:\n{again}");
    d.assert_close("y6.npy", "after restart");
    assert!(d.server.stop().success());
}

/// A round-robin TCP proxy on loopback (a load balancer's part): each
/// connection goes to the next backend that accepts one, so a backend that
/// went away is skipped; a connection whose backend dies is closed.
struct RoundRobin {
    url: String,
}

impl RoundRobin {
    fn start(backends: Vec<String>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for (next, client) in listener.incoming().map_while(Result::ok).enumerate() {
                let backend = (0..backends.len()).find_map(|k| {
                    let addr = &backends[(next + k) % backends.len()];
                    std::net::TcpStream::connect(addr).ok()
                });
                let Some(backend) = backend else { continue };
                Self::pipe(client, backend);
            }
        });
        Self { url }
    }

    /// Copies both ways until either side closes, then closes both.
    fn pipe(client: std::net::TcpStream, backend: std::net::TcpStream) {
        for (mut from, mut to) in [
            (client.try_clone().unwrap(), backend.try_clone().unwrap()),
            (backend, client),
        ] {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(std::net::Shutdown::Both);
                let _ = from.shutdown(std::net::Shutdown::Both);
            });
        }
    }
}

/// A value of a replica's Prometheus metrics (`name` with its labels), by a
/// plain HTTP/1.0 request.
fn metric(http: &str, name: &str) -> f64 {
    use std::io::{Read, Write};
    let addr = http.trim_start_matches("http://");
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return 0.0;
    };
    let _ = write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Scale-out on one machine: two replicas share one S3 key store behind a
/// round-robin proxy. Keys registered through replica A serve requests on
/// replica B without being sent again; replica A is killed while it answers
/// part of a load run, and the client, sending failed requests again
/// (freshly encrypted), loses none and gets no wrong answer.
#[test]
fn replicas_behind_a_proxy_share_keys_and_outlive_one_of_them() {
    let Some(s3s_fs) = heman_testkit::s3::s3s_fs() else {
        let note = format!(
            "SKIPPED replicas_behind_a_proxy_share_keys_and_outlive_one_of_them: {}",
            heman_testkit::s3::MISSING
        );
        println!("{note}");
        eprintln!("{note}");
        return;
    };
    let work = compiled(&[DIGITS]);
    std::fs::create_dir_all(work.path().join("s3/heman-keys")).unwrap();
    let s3 = heman_testkit::s3::S3Server::start(&s3s_fs, &work.path().join("s3"));
    let endpoint = format!("http://{}", s3.addr);
    let s3_args = [
        "--s3-endpoint",
        &endpoint,
        "--s3-region",
        "us-east-1",
        "--s3-allow-http",
    ];
    let credentials = [
        ("AWS_ACCESS_KEY_ID", heman_testkit::s3::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", heman_testkit::s3::SECRET_KEY),
    ];
    let replica = || {
        Serving::start_with_env(
            &work.path().join("repo"),
            Path::new("s3://heman-keys/replicas"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            &s3_args,
            &credentials,
        )
    };
    let (a, b) = (replica(), replica());
    let d = Deployment {
        input: repo_root().join("examples/digits/test/3-4.npy"),
        server: a,
        work,
    };

    // Registered through A; B finds them in the shared store.
    let first = succeeded(&d.query("digits", "keys", "y-a.npy", &[]), "query on A");
    assert!(first.contains("registered"), "{first}");
    d.assert_close("y-a.npy", "replica A");
    let on_b = succeeded(
        &d.query_at(&b.http, "digits", "keys", "y-b.npy", &[]),
        "query on B",
    );
    assert!(
        !on_b.contains("registered"),
        "keys sent to B again:\n{on_b}"
    );
    d.assert_close("y-b.npy", "replica B with keys registered through A");

    // A load run through the proxy; A killed while it answers.
    let proxy = RoundRobin::start(vec![
        d.server.http.trim_start_matches("http://").to_string(),
        b.http.trim_start_matches("http://").to_string(),
    ]);
    let (keys, input, output) = (
        path_text(&d.w("keys")),
        path_text(&d.input),
        path_text(&d.w("y-load.npy")),
    );
    let load = Command::new(heman_bin())
        .args(["query", "--url", &proxy.url, "--model", "digits"])
        .args(["-k", &keys, "-i", &input, "-o", &output])
        .args(["--repeat", "60", "--concurrency", "4", "--retries", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let answered = r#"heman_inference_requests_total{protocol="http",outcome="success"}"#;
    // Killed once it has answered some of the run (one before it) and while
    // it computes another.
    let mut load = load;
    let start = Instant::now();
    while metric(&d.server.http, answered) < 4.0
        || metric(&d.server.http, "heman_inference_running") < 1.0
    {
        assert!(
            load.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(120),
            "the load run ended (or stalled) before replica A was seen computing"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut a = d.server;
    a.child.kill().unwrap();
    let _ = a.child.wait();
    let done = load.wait_with_output().unwrap();
    let report = succeeded(&done, "the load run through the proxy");
    eprintln!("load run, replica A killed during it:\n{report}");
    assert!(report.contains("60 requests"), "{report}");
    let retried: usize = report
        .split(", ")
        .find_map(|part| part.trim().strip_suffix(" retried")?.parse().ok())
        .expect("the retries reported");
    assert!(
        retried >= 1,
        "A was killed mid-request, yet nothing was sent again:\n{report}"
    );
    assert_close(
        &d.work.path().join("y-load.npy"),
        &d.input,
        "the load run's answer",
    );
    drop(b);
    drop(s3);
}
