//! End-to-end tests of the HTTP server: a real server on a loopback port, the
//! digits example compiled into a temporary model repository, keys made by
//! a data owner, inference in Triton's binary mode, malformed requests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use heman_artifacts::{CiphertextFile, CompiledModel, EvaluationKeys, KeyParams, TensorSpec};
use heman_ckks::{CkksParameters, Decryptor, KeyGenerator};
use heman_compiler::flooding::{FloodingTarget, OutputFlooding};
use heman_compiler::pipeline::{compile_ckks, CompileOptions};
use heman_model::io::dataset::load_arrays;
use heman_model::{load_onnx, CalibrationRanges, Tensor};
use heman_runtime::{decrypt_tensor, encrypt_tensor, InputKey};
use heman_server::{Config, Server};
use serde_json::{json, Value};
use tokio::sync::oneshot;

fn example() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/digits"
    ))
}

/// Compiles the digits model into `<repo>/digits/digits.heman`.
fn compile_into(repo: &Path) -> CompiledModel {
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
    model
}

/// The data owner's keys: a decryptor and the eval.keys bytes.
fn make_keys(keyparams: &KeyParams, params: &CkksParameters, dir: &Path) -> (Decryptor, Vec<u8>) {
    let mut generator = KeyGenerator::new(params).unwrap();
    let secret = generator.gen_secret_key();
    let relin = generator.gen_relin_key(&secret).unwrap();
    let steps: Vec<i64> = keyparams.rotation_steps.iter().map(|&s| s as i64).collect();
    let galois = generator.gen_galois_keys(&secret, &steps, false).unwrap();
    let public = generator.gen_public_key(&secret).unwrap();
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

/// A running server and the means to stop it.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(repo: &Path, keys: &Path, max_body: usize) -> Self {
        let mut config = Config::new(repo, keys, "127.0.0.1:0".parse().unwrap());
        config.max_body_bytes = max_body;
        config.request_timeout = Duration::from_secs(120);
        let server = Server::bind(config).await.expect("server binds");
        let addr = server.local_addr();
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
            addr,
            stop: Some(tx),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("graceful shutdown within 30 s")
            .unwrap();
    }
}

/// A Triton binary-mode request body (as tritonclient 2.73 builds it).
fn binary_request(header: &Value, tensor: &[u8]) -> (Vec<u8>, usize) {
    let json = serde_json::to_vec(header).unwrap();
    let n = json.len();
    let mut body = json;
    body.extend_from_slice(tensor);
    (body, n)
}

fn bytes_tensor(element: &[u8]) -> Vec<u8> {
    let mut raw = (element.len() as u32).to_le_bytes().to_vec();
    raw.extend_from_slice(element);
    raw
}

fn infer_header(key_id: &str, datatype: &str, shape: &[i64], size: usize) -> Value {
    json!({
        "parameters": {"key_id": key_id},
        "inputs": [{"name": "ciphertext", "shape": shape, "datatype": datatype,
                    "parameters": {"binary_data_size": size}}],
        "outputs": [{"name": "ciphertext", "parameters": {"binary_data": true}}]
    })
}

/// POSTs a binary-mode inference; returns status and body.
async fn post_infer(
    client: &reqwest::Client,
    url: &str,
    header: &Value,
    tensor: &[u8],
) -> (u16, Vec<u8>, Option<usize>) {
    let (body, n) = binary_request(header, tensor);
    let r = client
        .post(url)
        .header("Inference-Header-Content-Length", n.to_string())
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = r.status().as_u16();
    let json_len = r
        .headers()
        .get("inference-header-content-length")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, r.bytes().await.unwrap().to_vec(), json_len)
}

fn error_message(status: u16, body: &[u8], what: &str) -> String {
    assert!(
        (400..500).contains(&status),
        "{what}: expected a 4xx, got {status}: {}",
        String::from_utf8_lossy(body)
    );
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|_| {
        panic!(
            "{what}: error body is not JSON: {:?}",
            String::from_utf8_lossy(body)
        )
    });
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error field: {v}"));
    assert!(!msg.is_empty(), "{what}: empty message");
    msg.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_inference_over_http() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("models");
    let keys_dir = work.path().join("keystore");
    let owner = work.path().join("owner");
    std::fs::create_dir_all(&owner).unwrap();
    let compiled = tokio::task::spawn_blocking({
        let repo = repo.clone();
        move || compile_into(&repo)
    })
    .await
    .unwrap();
    let max_body = 8 << 20;
    let server = Running::start(&repo, &keys_dir, max_body).await;
    let client = reqwest::Client::new();

    // Health and metadata.
    for path in [
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/digits/ready",
        "/v2/models/digits/versions/1/ready",
    ] {
        let r = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let meta: Value = client
        .get(server.url("/v2"))
        .send()
        .await
        .unwrap()
        .json_text()
        .await;
    assert_eq!(meta["name"], "heman");
    let meta: Value = client
        .get(server.url("/v2/models/digits"))
        .send()
        .await
        .unwrap()
        .json_text()
        .await;
    assert_eq!(meta["inputs"][0]["datatype"], "BYTES");
    assert_eq!(meta["inputs"][0]["shape"], json!([1]));
    assert_eq!(meta["outputs"][0]["datatype"], "BYTES");
    // The data owner learns the keyparams from the server, not from a file.
    let kp_text = client
        .get(server.url("/v2/models/digits/keyparams"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let keyparams: KeyParams = serde_json::from_str(&kp_text).expect("keyparams JSON");
    assert_eq!(keyparams, compiled.keyparams);
    let kp_meta: KeyParams =
        serde_json::from_str(meta["parameters"]["keyparams"].as_str().unwrap()).unwrap();
    assert_eq!(kp_meta, keyparams);
    assert!(
        !kp_text.contains("stages"),
        "keyparams must not carry the plan"
    );
    let r = client
        .get(server.url("/v2/models/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Data owner: keys, registration.
    let params = keyparams.ckks_parameters(Path::new("keyparams")).unwrap();
    let (decryptor, eval_keys) = tokio::task::spawn_blocking({
        let (kp, p, o) = (keyparams.clone(), params.clone(), owner.clone());
        move || make_keys(&kp, &p, &o)
    })
    .await
    .unwrap();
    let r = client
        .post(server.url("/v2/models/digits/keys"))
        .body(eval_keys.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let key_id = r.json_text().await["key_id"].as_str().unwrap().to_string();
    assert_eq!(key_id, heman_server::keystore::key_id(&eval_keys));
    // Garbage as keys.
    let r = client
        .post(server.url("/v2/models/digits/keys"))
        .body(vec![7u8; 100])
        .send()
        .await
        .unwrap();
    let (s, b) = (r.status().as_u16(), r.bytes().await.unwrap());
    error_message(s, &b, "garbage keys");

    // Keys for other parameters: refused at registration, and, planted in
    // the store behind the server's back, refused at inference.
    let (other_id, other_keys) = tokio::task::spawn_blocking({
        let o = owner.clone();
        move || {
            let other = CkksParameters::new(12, &[36, 30], &[36], 30).unwrap();
            let dir = o.join("other");
            std::fs::create_dir_all(&dir).unwrap();
            let mut kp = KeyParams::clone(&compiled.keyparams);
            kp.rotation_steps = vec![1];
            let (_, bytes) = make_keys(&kp, &other, &dir);
            (heman_server::keystore::key_id(&bytes), bytes)
        }
    })
    .await
    .unwrap();
    let r = client
        .post(server.url("/v2/models/digits/keys"))
        .body(other_keys.clone())
        .send()
        .await
        .unwrap();
    let (s, b) = (r.status().as_u16(), r.bytes().await.unwrap());
    let msg = error_message(s, &b, "keys for other parameters");
    assert!(msg.contains("other parameters"), "{msg}");
    std::fs::write(keys_dir.join(format!("{other_id}.keys")), &other_keys).unwrap();

    // Encrypt a test digit and run it through the server in binary mode.
    let input = heman_model::io::npy::read_npy(&example().join("input.npy")).unwrap();
    let input = input.reshaped(keyparams.input.shape.clone());
    let cts = encrypt_tensor(
        &params,
        InputKey::Secret(&decryptor),
        &keyparams.input.layout,
        &input,
    )
    .unwrap();
    let ct_bytes = CiphertextFile { ciphertexts: cts }.to_bytes(&params);
    let tensor = bytes_tensor(&ct_bytes);
    let infer_url = server.url("/v2/models/digits/infer");
    let (status, body, json_len) = post_infer(
        &client,
        &infer_url,
        &infer_header(&key_id, "BYTES", &[1], tensor.len()),
        &tensor,
    )
    .await;
    assert_eq!(
        status,
        200,
        "{}",
        String::from_utf8_lossy(&body[..body.len().min(500)])
    );
    let n = json_len.expect("binary response has Inference-Header-Content-Length");
    let head: Value = serde_json::from_slice(&body[..n]).unwrap();
    let out = &head["outputs"][0];
    assert_eq!(out["datatype"], "BYTES");
    let size = out["parameters"]["binary_data_size"].as_u64().unwrap() as usize;
    assert_eq!(size, body.len() - n);
    let raw = &body[n..];
    let len = u32::from_le_bytes(raw[..4].try_into().unwrap()) as usize;
    assert_eq!(len + 4, raw.len());
    let out_cts = CiphertextFile::from_bytes(&raw[4..], Path::new("response"), &params).unwrap();
    let spec = &keyparams.output;
    let decrypted = decrypt_tensor(
        &params,
        &decryptor,
        &spec.layout,
        &spec.shape,
        &out_cts.ciphertexts,
    )
    .unwrap();
    let decrypted = keyparams
        .postprocess
        .iter()
        .fold(decrypted, |t, op| op.eval(&[&t]));
    let graph = load_onnx(&example().join("digits_square.onnx")).unwrap();
    let expected: Tensor = graph.run(std::slice::from_ref(&input)).unwrap().remove(0);
    assert_eq!(decrypted.len(), expected.len());
    let scale = 1.0 + expected.data().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = decrypted
        .data()
        .iter()
        .zip(expected.data())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        err < 1e-2 * scale,
        "encrypted result off by {err} (scale {scale})"
    );
    let argmax = |t: &Tensor| {
        t.data()
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    assert_eq!(argmax(&decrypted), argmax(&expected));

    // Malformed requests: each a 4xx with a message; the server keeps serving.
    let other_key = "0".repeat(64);
    let truncated = bytes_tensor(&ct_bytes[..ct_bytes.len() / 2]);
    let garbage = bytes_tensor(&[1u8; 300]);
    let cases: Vec<(&str, String, Value, Vec<u8>)> = vec![
        (
            "wrong datatype",
            infer_url.clone(),
            infer_header(&key_id, "FP32", &[1], tensor.len()),
            tensor.clone(),
        ),
        (
            "wrong shape",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[2], tensor.len()),
            tensor.clone(),
        ),
        (
            "garbage bytes",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[1], garbage.len()),
            garbage.clone(),
        ),
        (
            "truncated ciphertext",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[1], truncated.len()),
            truncated.clone(),
        ),
        (
            "wrong binary_data_size",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[1], tensor.len() + 1),
            tensor.clone(),
        ),
        (
            "unknown model",
            server.url("/v2/models/nope/infer"),
            infer_header(&key_id, "BYTES", &[1], tensor.len()),
            tensor.clone(),
        ),
        (
            "unknown key id",
            infer_url.clone(),
            infer_header(&other_key, "BYTES", &[1], tensor.len()),
            tensor.clone(),
        ),
        (
            "key id of keys for other parameters",
            infer_url.clone(),
            infer_header(&other_id, "BYTES", &[1], tensor.len()),
            tensor.clone(),
        ),
        (
            "no key id",
            infer_url.clone(),
            json!({"inputs": [{"name": "ciphertext", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": tensor.len()}}]}),
            tensor.clone(),
        ),
        (
            "JSON output asked for",
            infer_url.clone(),
            json!({"parameters": {"key_id": key_id}, "inputs": [{"name": "ciphertext", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": tensor.len()}}], "outputs": [{"name": "ciphertext", "parameters": {"binary_data": false}}]}),
            tensor.clone(),
        ),
        (
            "unknown output",
            infer_url.clone(),
            json!({"parameters": {"key_id": key_id}, "inputs": [{"name": "ciphertext", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": tensor.len()}}], "outputs": [{"name": "probabilities"}]}),
            tensor.clone(),
        ),
        (
            "JSON-mode data not a ciphertext",
            infer_url.clone(),
            json!({"parameters": {"key_id": key_id}, "inputs": [{"name": "ciphertext", "shape": [1], "datatype": "BYTES", "data": ["hello"]}]}),
            vec![],
        ),
        (
            "path-like key id",
            infer_url.clone(),
            infer_header("../../etc/passwd", "BYTES", &[1], tensor.len()),
            tensor.clone(),
        ),
        (
            "oversized body",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[1], max_body + 10),
            vec![0u8; max_body + 10],
        ),
    ];
    for (what, url, header, tensor) in cases {
        let (status, body, _) = post_infer(&client, &url, &header, &tensor).await;
        let msg = error_message(status, &body, what);
        eprintln!("{what}: {status} {msg}");
    }
    let r = client
        .post(&infer_url)
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (s, b) = (r.status().as_u16(), r.bytes().await.unwrap());
    error_message(s, &b, "malformed JSON");
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("heman_inference_requests_total{outcome=\"success\"} 1"),
        "{metrics}"
    );

    // Still serving: a second valid inference.
    let (status, _, _) = post_infer(
        &client,
        &infer_url,
        &infer_header(&key_id, "BYTES", &[1], tensor.len()),
        &tensor,
    )
    .await;
    assert_eq!(status, 200);
    server.stop().await;

    // Restart: the registered keys are still there.
    let server = Running::start(&repo, &keys_dir, max_body).await;
    let infer_url = server.url("/v2/models/digits/infer");
    let (status, body, _) = post_infer(
        &client,
        &infer_url,
        &infer_header(&key_id, "BYTES", &[1], tensor.len()),
        &tensor,
    )
    .await;
    assert_eq!(
        status,
        200,
        "after restart: {}",
        String::from_utf8_lossy(&body[..body.len().min(500)])
    );
    server.stop().await;
}

/// Reads a response body as JSON (reqwest is built without its json feature).
trait JsonText {
    async fn json_text(self) -> Value;
}

impl JsonText for reqwest::Response {
    async fn json_text(self) -> Value {
        let status = self.status();
        let text = self.text().await.unwrap();
        assert!(status.is_success(), "{status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}
