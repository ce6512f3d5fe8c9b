//! Fixtures: the digits model compiled once, one data owner's keys, a
//! running server, and plaintext references.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use heman_artifacts::{CiphertextFile, CompiledModel, EvaluationKeys, KeyParams, TensorSpec};
use heman_ckks::{CkksParameters, Decryptor, KeyGenerator};
use heman_compiler::flooding::{FloodingTarget, OutputFlooding};
use heman_compiler::pipeline::{compile_ckks, CompileOptions};
use heman_model::io::dataset::load_arrays;
use heman_model::{load_onnx, CalibrationRanges, Graph, Tensor};
use heman_runtime::{decrypt_tensor, encrypt_tensor, InputKey};
use heman_server::{Config, Server};
use tokio::sync::oneshot;

pub fn example() -> PathBuf {
    heman_testkit::repo_root().join("examples/digits")
}

/// The compiled digits model in a model repository, and a data owner.
pub struct Fixture {
    _dir: tempfile::TempDir,
    /// `<repo>/digits/digits.heman`.
    pub repo: PathBuf,
    pub compiled_keyparams: KeyParams,
    pub params: CkksParameters,
    pub graph: Graph,
    pub decryptor: Decryptor,
    /// The bytes of the data owner's eval.keys.
    pub eval_keys: Vec<u8>,
    /// A scratch folder for files tests write.
    pub scratch: PathBuf,
}

/// Compiled and keyed once per test binary (compilation and key generation
/// take seconds; every test reuses them).
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Under cargo's folder for integration-test files: a static is
        // never dropped, so its temporary folder would outlive the run.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let repo = dir.path().join("models");
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let (model, params) = compile_into(&repo);
        let graph = load_onnx(&example().join("digits_square.onnx")).unwrap();
        let (decryptor, eval_keys) = make_keys(&model.keyparams, &params, &scratch);
        Fixture {
            _dir: dir,
            repo,
            compiled_keyparams: model.keyparams,
            params,
            graph,
            decryptor,
            eval_keys,
            scratch,
        }
    })
}

/// Compiles the digits model into `<repo>/digits/digits.heman`.
pub fn compile_into(repo: &Path) -> (CompiledModel, CkksParameters) {
    let graph = load_onnx(&example().join("digits_square.onnx")).expect("model loads");
    let samples = load_arrays(&example().join("calibration.npz")).expect("calibration loads");
    let ranges = CalibrationRanges::measure_with_progress(&graph, &samples, |_| {})
        .expect("calibration runs");
    let compiled =
        compile_ckks(&graph, &samples, &ranges, CompileOptions::default()).expect("model compiles");
    let spec = |id, shape: &[usize], layout: &heman_compiler::SlotLayout| {
        let name = graph.value(id).name.clone();
        TensorSpec {
            calibrated_range: ranges.get(&name).map(|r| (r.min, r.max)),
            name,
            shape: shape.to_vec(),
            layout: layout.clone(),
        }
    };
    let plan = &compiled.plan;
    // Output flooding sized from an encrypted dry run on one sample, as
    // `heman keyparams` does.
    let x = graph.check_input(0, &samples[0].tensor).unwrap();
    let noise = heman_runtime::measure_output_noise(&compiled.params, plan, &[x]).unwrap();
    let flooding = OutputFlooding::size(
        FloodingTarget::NoiseBound,
        compiled.params.log_n(),
        noise.scale.log2(),
        noise.max_coefficient,
        30.0,
    )
    .unwrap();
    let keyparams = KeyParams::for_plan(
        &compiled.params,
        compiled.choice.clone(),
        compiled.depth,
        plan,
        spec(graph.inputs[0], &plan.input_shape, &plan.input_layout),
        spec(graph.outputs[0], &plan.output_shape, &plan.output_layout),
        flooding,
    );
    let model = CompiledModel {
        keyparams,
        plan: compiled.plan,
    };
    let dir = repo.join("digits");
    std::fs::create_dir_all(&dir).unwrap();
    model
        .write(&dir.join("digits.heman"), &compiled.params)
        .expect("model writes");
    (model, compiled.params)
}

/// A data owner's keys for `rotation_steps`: a decryptor and the eval.keys bytes.
pub fn make_keys_with_steps(
    params: &CkksParameters,
    rotation_steps: &[usize],
    dir: &Path,
) -> (Decryptor, Vec<u8>) {
    let mut generator = KeyGenerator::new(params).unwrap();
    let secret = generator.gen_secret_key();
    let relin = generator.gen_relin_key(&secret).unwrap();
    let steps: Vec<i64> = rotation_steps.iter().map(|&s| s as i64).collect();
    let galois = generator.gen_galois_keys(&secret, &steps, false).unwrap();
    // The public key travels with them: the server re-randomises outputs.
    let public = generator.gen_public_key(&secret).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("eval.keys");
    EvaluationKeys {
        relin,
        galois,
        public,
    }
    .write(&path, params)
    .unwrap();
    let decryptor = Decryptor::new(params, &secret).unwrap();
    (decryptor, std::fs::read(&path).unwrap())
}

pub fn make_keys(
    keyparams: &KeyParams,
    params: &CkksParameters,
    dir: &Path,
) -> (Decryptor, Vec<u8>) {
    make_keys_with_steps(params, &keyparams.rotation_steps, dir)
}

/// The `index`-th test digit (of the 100 in `examples/digits/test`).
pub fn digit(index: usize) -> Tensor {
    let mut files: Vec<PathBuf> = std::fs::read_dir(example().join("test"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    heman_model::io::npy::read_npy(&files[index % files.len()]).unwrap()
}

impl Fixture {
    /// `input` encrypted as a ciphertext file's bytes.
    pub fn encrypt(&self, input: &Tensor) -> Vec<u8> {
        let kp = &self.compiled_keyparams;
        let input = input.clone().reshaped(kp.input.shape.clone());
        let cts = encrypt_tensor(
            &self.params,
            InputKey::Secret(&self.decryptor),
            &kp.input.layout,
            &input,
        )
        .unwrap();
        CiphertextFile { ciphertexts: cts }.to_bytes(&self.params)
    }

    /// An output ciphertext file decrypted and post-processed.
    pub fn decrypt(&self, bytes: &[u8]) -> Tensor {
        let kp = &self.compiled_keyparams;
        let cts = CiphertextFile::from_bytes(bytes, Path::new("response"), &self.params)
            .expect("response holds ciphertexts")
            .ciphertexts;
        let raw = decrypt_tensor(
            &self.params,
            &self.decryptor,
            &kp.output.layout,
            &kp.output.shape,
            &cts,
        )
        .unwrap();
        kp.postprocess.iter().fold(raw, |t, op| op.eval(&[&t]))
    }

    /// The plaintext model's output for `input`.
    pub fn expected(&self, input: &Tensor) -> Tensor {
        let input = input
            .clone()
            .reshaped(self.compiled_keyparams.input.shape.clone());
        self.graph
            .run(std::slice::from_ref(&input))
            .unwrap()
            .remove(0)
    }

    /// Asserts that an encrypted (flooded) result matches the plaintext
    /// one; returns the largest deviation.
    pub fn assert_matches(&self, response: &[u8], input: &Tensor, what: &str) -> f64 {
        heman_testkit::assert_matches_plaintext(
            &self.decrypt(response),
            &self.expected(input),
            heman_testkit::FLOODED,
            what,
        )
    }
}

/// A running server and the means to stop it.
pub struct Running {
    pub http: std::net::SocketAddr,
    pub grpc: Option<std::net::SocketAddr>,
    pub state: std::sync::Arc<heman_server::AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// A configuration for `repo` and `keys` on loopback, ports chosen by the
/// system, gRPC on.
pub fn config(repo: &Path, keys: &Path) -> Config {
    let mut config = Config::new(repo, keys, "127.0.0.1:0".parse().unwrap());
    config.grpc_addr = Some("127.0.0.1:0".parse().unwrap());
    config.request_timeout = Duration::from_secs(120);
    config
}

impl Running {
    pub async fn start(config: Config) -> Self {
        let server = Server::bind(config).await.expect("server binds");
        Self::run(server)
    }

    pub fn run(server: Server) -> Self {
        let http = server.http_addr();
        let grpc = server.grpc_addr();
        let state = server.state().clone();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            server
                .run(async {
                    let _ = rx.await;
                })
                .await
                .expect("server runs");
        });
        Self {
            http,
            grpc,
            state,
            stop: Some(tx),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops and waits until the server has finished.
    pub async fn stop(mut self) {
        self.signal_stop();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("graceful shutdown within 30 s")
            .unwrap();
    }
}

/// The message of a protocol error answer, asserting it is a 4xx with one.
pub fn error_message(status: u16, body: &[u8], what: &str) -> String {
    assert!(
        (400..500).contains(&status),
        "{what}: expected a 4xx, got {status}: {}",
        String::from_utf8_lossy(body)
    );
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|_| {
        panic!(
            "{what}: error body is not JSON: {:?}",
            String::from_utf8_lossy(body)
        )
    });
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error field: {v}"))
        .to_string();
    assert!(!msg.is_empty(), "{what}: empty message");
    msg
}
