//! The HTTP protocol: metadata, key registration, binary-mode inference
//! compared with plaintext, malformed requests (each a 4xx with a message,
//! the server serving on), and registered keys surviving a restart.

use serde_json::{json, Value};

use crate::common::{
    ckks_keys_with_steps, config, digit, error_message, fixture, head_only, infer_head, Running,
};

/// A Triton binary-mode request body (as tritonclient 2.73 builds it).
fn binary_request(header: &Value, tensor: &[u8]) -> (Vec<u8>, usize) {
    let json = serde_json::to_vec(header).unwrap();
    let n = json.len();
    let mut body = json;
    body.extend_from_slice(tensor);
    (body, n)
}

fn bytes_tensor(element: &[u8]) -> Vec<u8> {
    heman_server::binary::encode_bytes_elements(&[element])
}

fn infer_header(key_id: &str, datatype: &str, shape: &[i64], size: usize) -> Value {
    json!({
        "parameters": {"key_id": key_id},
        "inputs": [{"name": "ciphertext", "shape": shape, "datatype": datatype,
                    "parameters": {"binary_data_size": size}}],
        "outputs": [{"name": "ciphertext", "parameters": {"binary_data": true}}]
    })
}

/// POSTs a binary-mode inference; returns status, body and the JSON length.
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

async fn get(client: &reqwest::Client, url: String) -> (u16, Vec<u8>) {
    let r = client.get(url).send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    let (status, body) = get(client, url.clone()).await;
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

async fn post(client: &reqwest::Client, url: String, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = client.post(url).body(body).send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// Size limit on request bodies of the servers these tests start.
const MAX_BODY: usize = 8 << 20;

/// A server over the shared fixture's repository with a key store of its
/// own, and a client.
struct Session {
    fx: &'static crate::common::Fixture,
    _work: tempfile::TempDir,
    keys_dir: std::path::PathBuf,
    cfg: heman_server::Config,
    server: Running,
    client: reqwest::Client,
}

impl Session {
    async fn start() -> Self {
        let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let keys_dir = work.path().join("keystore");
        let mut cfg = config(&fx.repo, &keys_dir);
        cfg.max_body_bytes = MAX_BODY;
        let server = Running::start(cfg.clone()).await;
        Self {
            fx,
            _work: work,
            keys_dir,
            cfg,
            server,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Registers the fixture's evaluation keys; returns their key id.
    async fn register(&self) -> String {
        let (status, body) = post(
            &self.client,
            self.url("/v2/models/digits/keys"),
            self.fx.eval_keys.clone(),
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice::<Value>(&body).unwrap()["key_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// One valid inference on test digit 0: the response body and the
    /// length of its JSON header.
    async fn infer_digit(&self, key_id: &str) -> (Vec<u8>, usize) {
        let tensor = bytes_tensor(&self.fx.encrypt(&digit(0)));
        let (status, body, json_len) = post_infer(
            &self.client,
            &self.url("/v2/models/digits/infer"),
            &infer_header(key_id, "BYTES", &[1], tensor.len()),
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
        (body, n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metadata_and_keyparams() {
    let s = Session::start().await;
    // Health and metadata.
    for path in [
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/digits/ready",
        "/v2/models/digits/versions/1/ready",
    ] {
        assert_eq!(get(&s.client, s.url(path)).await.0, 200, "{path}");
    }
    let meta = get_json(&s.client, s.url("/v2")).await;
    assert_eq!(meta["name"], "heman");
    let meta = get_json(&s.client, s.url("/v2/models/digits")).await;
    assert_eq!(meta["inputs"][0]["datatype"], "BYTES");
    assert_eq!(meta["inputs"][0]["shape"], json!([1]));
    assert_eq!(meta["outputs"][0]["datatype"], "BYTES");
    assert_eq!(
        get_json(&s.client, s.url("/v2/models/digits/versions/1")).await,
        meta
    );
    // The data owner learns the keyparams from the server, never the plan.
    let (status, kp_text) = get(&s.client, s.url("/v2/models/digits/keyparams")).await;
    assert_eq!(status, 200);
    let keyparams: heman_artifacts::ckks::KeyParams = serde_json::from_slice(&kp_text).unwrap();
    assert_eq!(keyparams, s.fx.compiled_keyparams);
    let kp_meta: heman_artifacts::ckks::KeyParams =
        serde_json::from_str(meta["parameters"]["keyparams"].as_str().unwrap()).unwrap();
    assert_eq!(kp_meta, keyparams);
    assert!(
        !String::from_utf8_lossy(&kp_text).contains("stages"),
        "keyparams must not carry the plan"
    );
    let (status, body) = get(&s.client, s.url("/v2/models/digits/infer")).await;
    assert_eq!(status, 405);
    error_message(status, &body, "GET on infer");
    for path in [
        "/v2/models/nope",
        "/v2/models/nope/ready",
        "/v2/models/digits/versions/2",
        "/v2/nothing/here",
    ] {
        let (status, body) = get(&s.client, s.url(path)).await;
        assert_eq!(status, 404, "{path}");
        error_message(status, &body, path);
    }
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_register_under_their_digest() {
    let s = Session::start().await;
    // Registration: the key id is the keys' SHA-256; registering twice is fine.
    let keys_url = s.url("/v2/models/digits/keys");
    let key_id = s.register().await;
    assert_eq!(key_id, heman_server::keystore::key_id(&s.fx.eval_keys));
    let (status, _) = post(&s.client, keys_url.clone(), s.fx.eval_keys.clone()).await;
    assert_eq!(status, 200);
    let status_url = |id: &str| s.url(&format!("/v2/models/digits/keys/{id}"));
    assert_eq!(get(&s.client, status_url(&key_id)).await.0, 200);
    assert_eq!(get(&s.client, status_url(&"0".repeat(64))).await.0, 404);
    assert_eq!(get(&s.client, status_url("not-an-id")).await.0, 404);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_are_refused_with_the_reason() {
    let s = Session::start().await;
    let keys_url = s.url("/v2/models/digits/keys");
    // Bad keys: garbage, a truncated file, another kind of file, keys for
    // other parameters, keys lacking the model's rotations.
    let (_, other_keys) = tokio::task::spawn_blocking(|| {
        let other = heman_ckks::CkksParameters::new(12, &[36, 30], &[36], 30).unwrap();
        let bytes = ckks_keys_with_steps(&other, &[1]);
        (heman_server::keystore::key_id(&bytes), bytes)
    })
    .await
    .unwrap();
    let fewer_rotations = tokio::task::spawn_blocking(|| {
        let fx = fixture();
        let steps = &fx.compiled_keyparams.rotation_steps[1..];
        ckks_keys_with_steps(&fx.params, steps)
    })
    .await
    .unwrap();
    let a_ciphertext = s.fx.encrypt(&digit(0));
    for (what, body, expected) in [
        ("garbage keys", vec![7u8; 100], "not a heman file"),
        (
            "truncated keys",
            s.fx.eval_keys[..s.fx.eval_keys.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "a ciphertext as keys",
            a_ciphertext.clone(),
            "expected ckks evaluation keys",
        ),
        (
            "keys for other parameters",
            other_keys.clone(),
            "other parameters",
        ),
        (
            "keys lacking rotations",
            fewer_rotations,
            "lack the rotation keys",
        ),
    ] {
        let (status, body) = post(&s.client, keys_url.clone(), body).await;
        let msg = error_message(status, &body, what);
        assert!(msg.contains(expected), "{what}: {msg}");
    }
    assert!(s.server.state.keys.is_empty(), "refused keys cached");
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_mode_inference_matches_the_plaintext_model() {
    let s = Session::start().await;
    let key_id = s.register().await;
    let (body, n) = s.infer_digit(&key_id).await;
    let head: Value = serde_json::from_slice(&body[..n]).unwrap();
    let out = &head["outputs"][0];
    assert_eq!(out["datatype"], "BYTES");
    assert_eq!(out["name"], "ciphertext");
    let size = out["parameters"]["binary_data_size"].as_u64().unwrap() as usize;
    assert_eq!(size, body.len() - n);
    let raw = &body[n..];
    let len = u32::from_le_bytes(raw[..4].try_into().unwrap()) as usize;
    assert_eq!(len + 4, raw.len());
    s.fx.assert_matches(&raw[4..], &digit(0), "HTTP binary mode");

    // The versioned route and the client module agree.
    let ours = heman_server::client::Client::new(&s.server.http.to_string()).unwrap();
    let out = ours
        .infer("digits", &key_id, &s.fx.encrypt(&digit(0)))
        .await
        .unwrap();
    s.fx.assert_matches(&out, &digit(0), "client module");
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_and_serving_goes_on() {
    let s = Session::start().await;
    let key_id = s.register().await;
    let a_ciphertext = s.fx.encrypt(&digit(0));
    let tensor = bytes_tensor(&a_ciphertext);
    let infer_url = s.url("/v2/models/digits/infer");
    // Keys for other parameters planted in the store behind the server's
    // back: refused at inference, not run.
    let (other_id, other_keys) = tokio::task::spawn_blocking(|| {
        let other = heman_ckks::CkksParameters::new(12, &[36, 30], &[36], 30).unwrap();
        let bytes = ckks_keys_with_steps(&other, &[1]);
        (heman_server::keystore::key_id(&bytes), bytes)
    })
    .await
    .unwrap();
    std::fs::write(s.keys_dir.join(format!("{other_id}.keys")), &other_keys).unwrap();

    // Malformed requests: each a 4xx with a message; the server keeps serving.
    let unknown_key = "0".repeat(64);
    let truncated = bytes_tensor(&a_ciphertext[..a_ciphertext.len() / 2]);
    let garbage = bytes_tensor(&[1u8; 300]);
    let other_params_ct = bytes_tensor(&{
        let mut bad = a_ciphertext.clone();
        // Flip a byte of the parameter fingerprint in the container header;
        // the checksum then fails too: refused either way.
        bad[10] ^= 1;
        bad
    });
    // A ciphertext computed on (c1 not regenerated from a seed): the sender
    // could have chosen c1, so it is refused like a forged one.
    let computed = bytes_tensor(&{
        let params = &s.fx.params;
        let path = std::path::Path::new("request");
        let cts = heman_artifacts::ckks::Ciphertexts::from_bytes(&a_ciphertext, path, params)
            .unwrap()
            .ciphertexts;
        let evaluator = heman_ckks::Evaluator::new(params);
        let ciphertexts = cts
            .iter()
            .map(|ct| evaluator.add(ct, ct).unwrap())
            .collect();
        heman_artifacts::ckks::Ciphertexts {
            ciphertexts,
            batch: None,
        }
        .to_bytes(params)
    });
    let cases: Vec<(&str, String, Value, Vec<u8>, &str)> = vec![
        (
            "computed ciphertext",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[1], computed.len()),
            computed.clone(),
            "not a fresh encryption",
        ),
        (
            "wrong datatype",
            infer_url.clone(),
            infer_header(&key_id, "FP32", &[1], tensor.len()),
            tensor.clone(),
            "datatype FP32",
        ),
        (
            "wrong shape",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[2], tensor.len()),
            tensor.clone(),
            "shape [2]",
        ),
        (
            "wrong input name",
            infer_url.clone(),
            json!({"parameters": {"key_id": key_id}, "inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": tensor.len()}}]}),
            tensor.clone(),
            "unknown input 'x'",
        ),
        (
            "two inputs",
            infer_url.clone(),
            json!({"parameters": {"key_id": key_id}, "inputs": [
                {"name": "ciphertext", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": tensor.len()}},
                {"name": "ciphertext", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 0}}]}),
            tensor.clone(),
            "exactly 1 input",
        ),
        (
            "garbage bytes",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[1], garbage.len()),
            garbage.clone(),
            "input ciphertext refused",
        ),
        (
            "truncated ciphertext",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[1], truncated.len()),
            truncated.clone(),
            "input ciphertext refused",
        ),
        (
            "damaged ciphertext header",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[1], other_params_ct.len()),
            other_params_ct,
            "input ciphertext refused",
        ),
        (
            "BYTES element length past the end",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[1], tensor.len() - 1),
            tensor[..tensor.len() - 1].to_vec(),
            "BYTES element",
        ),
        (
            "wrong binary_data_size",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[1], tensor.len() + 1),
            tensor.clone(),
            "binary_data_size",
        ),
        (
            "unknown model",
            s.url("/v2/models/nope/infer"),
            infer_header(&key_id, "BYTES", &[1], tensor.len()),
            tensor.clone(),
            "unknown model 'nope'",
        ),
        (
            "unknown version",
            s.url("/v2/models/digits/versions/7/infer"),
            infer_header(&key_id, "BYTES", &[1], tensor.len()),
            tensor.clone(),
            "version '7'",
        ),
        (
            "unknown key id",
            infer_url.clone(),
            infer_header(&unknown_key, "BYTES", &[1], tensor.len()),
            tensor.clone(),
            "unknown key_id",
        ),
        (
            "key id of keys for other parameters",
            infer_url.clone(),
            infer_header(&other_id, "BYTES", &[1], tensor.len()),
            tensor.clone(),
            "other parameters",
        ),
        (
            "path-like key id",
            infer_url.clone(),
            infer_header("../../etc/passwd", "BYTES", &[1], tensor.len()),
            tensor.clone(),
            "unknown key_id",
        ),
        (
            "no key id",
            infer_url.clone(),
            json!({"inputs": [{"name": "ciphertext", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": tensor.len()}}]}),
            tensor.clone(),
            "no parameters.key_id",
        ),
        (
            "key id not a string",
            infer_url.clone(),
            json!({"parameters": {"key_id": 5}, "inputs": [{"name": "ciphertext", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": tensor.len()}}]}),
            tensor.clone(),
            "must be a string",
        ),
        (
            "JSON output asked for",
            infer_url.clone(),
            json!({"parameters": {"key_id": key_id}, "inputs": [{"name": "ciphertext", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": tensor.len()}}], "outputs": [{"name": "ciphertext", "parameters": {"binary_data": false}}]}),
            tensor.clone(),
            "binary",
        ),
        (
            "unknown output",
            infer_url.clone(),
            json!({"parameters": {"key_id": key_id}, "inputs": [{"name": "ciphertext", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": tensor.len()}}], "outputs": [{"name": "probabilities"}]}),
            tensor.clone(),
            "unknown output",
        ),
        (
            "JSON-mode data not a ciphertext",
            infer_url.clone(),
            json!({"parameters": {"key_id": key_id}, "inputs": [{"name": "ciphertext", "shape": [1], "datatype": "BYTES", "data": ["hello"]}]}),
            vec![],
            "input ciphertext refused",
        ),
    ];
    for (what, url, header, tensor, expected) in cases {
        let (status, body, _) = post_infer(&s.client, &url, &header, &tensor).await;
        let msg = error_message(status, &body, what);
        assert!(msg.contains(expected), "{what}: {status} {msg}");
        eprintln!("{what}: {status} {msg}");
    }
    // An oversized body is refused from its declared length before a byte
    // of it is read: the answer comes to a request that sends none. (A
    // client still writing such a body may see the connection closed
    // instead of the answer, hence no body here.)
    let answer = head_only(s.server.http, &infer_head(MAX_BODY + 10, None)).await;
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "oversized body: {answer}"
    );
    assert!(answer.contains("larger than the limit"), "{answer}");
    for (what, headers, body) in [
        ("malformed JSON", vec![], b"{not json".to_vec()),
        (
            "header length not a number",
            vec![("Inference-Header-Content-Length", "abc")],
            b"{}".to_vec(),
        ),
        (
            "header length past the body",
            vec![("Inference-Header-Content-Length", "99")],
            b"{}".to_vec(),
        ),
    ] {
        let mut r = s.client.post(&infer_url).body(body);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        let r = r.send().await.unwrap();
        let (status, b) = (r.status().as_u16(), r.bytes().await.unwrap());
        error_message(status, &b, what);
    }
    // Made-up key ids and refused keys took no place in the key cache: only
    // the registered keys are there.
    assert_eq!(s.server.state.keys.len(), 1, "unknown key ids cached");
    // Still serving: a valid inference after all that.
    let (body, n) = s.infer_digit(&key_id).await;
    s.fx.assert_matches(&body[n + 4..], &digit(0), "after malformed requests");
    let metrics = String::from_utf8(get(&s.client, s.url("/metrics")).await.1).unwrap();
    for line in [
        "heman_inference_requests_total{protocol=\"http\",outcome=\"success\"} 1",
        "heman_inference_queue_depth 0",
        "heman_inference_running 0",
        "heman_keys_registered_total 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }

    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_keys_survive_a_restart() {
    let s = Session::start().await;
    let key_id = s.register().await;
    s.server.stop().await;
    let s = Session {
        server: Running::start(s.cfg.clone()).await,
        ..s
    };
    let (body, n) = s.infer_digit(&key_id).await;
    s.fx.assert_matches(&body[n + 4..], &digit(0), "after restart");
    s.server.stop().await;
}
