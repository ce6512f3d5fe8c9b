//! Fixtures: the digits model compiled once, one data owner's keys, a
//! running server, and plaintext references.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use heman_artifacts::ckks::{EvaluationKeys, KeyParams};
use heman_backend::{
    registry, Backend, Compilation, CompileOptions, DataOwner, ModelSource, Silent,
};
use heman_ckks::{CkksParameters, KeyGenerator};
use heman_model::{Graph, Tensor};
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
    /// The data owner: its secret key and the keyparams.
    pub data_owner: Box<dyn DataOwner>,
    /// The bytes of the data owner's eval.keys.
    pub eval_keys: Vec<u8>,
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
        let (source, compilation) = compile_into(
            &repo,
            "digits",
            "digits_square.onnx",
            "ckks",
            &CompileOptions::default(),
        );
        let keyparams = KeyParams::from_json(compilation.keyparams.as_bytes(), Path::new("kp"))
            .expect("CKKS keyparams");
        let params = keyparams.ckks_parameters(Path::new("kp")).unwrap();
        let (data_owner, eval_keys) = make_keys(&compilation);
        Fixture {
            _dir: dir,
            repo,
            compiled_keyparams: keyparams,
            params,
            graph: source.graph,
            data_owner,
            eval_keys,
        }
    })
}

/// Compiles the example `model` for `backend` into `<repo>/<name>/<name>.heman`
/// through the backend seam, as `heman keyparams` does.
pub fn compile_into(
    repo: &Path,
    name: &str,
    model: &str,
    backend: &str,
    options: &CompileOptions,
) -> (ModelSource, Compilation) {
    let source = ModelSource::load(
        &example().join(model),
        &example().join("calibration.npz"),
        &Silent,
    )
    .expect("model and calibration load");
    let backend: &dyn Backend = registry::by_name(backend).unwrap();
    let compilation = backend
        .compile(&source, options, &Silent)
        .expect("model compiles");
    let dir = repo.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.heman")), &compilation.model).unwrap();
    (source, compilation)
}

/// A data owner's keys for a compilation, through the seam: the data owner
/// and the eval.keys bytes.
pub fn make_keys(compilation: &Compilation) -> (Box<dyn DataOwner>, Vec<u8>) {
    let backend = compilation.backend;
    let keyparams = compilation.keyparams.as_bytes();
    let files = backend.keygen(keyparams, Path::new("kp"), &Silent).unwrap();
    let owner = backend
        .data_owner(keyparams, &files.secret, Path::new("keys"))
        .unwrap();
    (owner, files.evaluation)
}

/// CKKS evaluation keys for other rotations than a model's (or other
/// parameters): what a careless or hostile data owner might register.
pub fn ckks_keys_with_steps(params: &CkksParameters, rotation_steps: &[usize]) -> Vec<u8> {
    let mut generator = KeyGenerator::new(params).unwrap();
    let secret = generator.gen_secret_key();
    let relin = generator.gen_relin_key(&secret).unwrap();
    let steps: Vec<i64> = rotation_steps.iter().map(|&s| s as i64).collect();
    let galois = generator.gen_galois_keys(&secret, &steps, false).unwrap();
    let public = generator.gen_public_key(&secret).unwrap();
    EvaluationKeys {
        relin,
        galois,
        public,
        encapsulation: None,
    }
    .to_bytes(params)
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
        self.data_owner.encrypt(input, "digit").unwrap()
    }

    /// An output ciphertext file decrypted and post-processed (the digits
    /// model's only output).
    pub fn decrypt(&self, bytes: &[u8]) -> Tensor {
        self.data_owner
            .decrypt(bytes, Path::new("response"))
            .expect("response holds ciphertexts")
            .remove(0)
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

/// Sends a request's head only (its body declared but never sent) and
/// returns what the server answers (status line, headers and body, read
/// until it closes the connection or falls silent for a second): an
/// answer at all proves the refusal came before the body was read.
pub async fn head_only(addr: std::net::SocketAddr, head: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
        .await
        .expect("an answer without the body being sent")
        .unwrap();
    answer.extend_from_slice(&chunk[..n]);
    while let Ok(Ok(n @ 1..)) =
        tokio::time::timeout(Duration::from_secs(1), stream.read(&mut chunk)).await
    {
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// The head of a binary inference request to the digits model declaring
/// `content_length` bytes of body, with a bearer `token` if given.
pub fn infer_head(content_length: usize, token: Option<&str>) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/octet-stream\r\nContent-Length: {content_length}\r\n\r\n"
    )
}
