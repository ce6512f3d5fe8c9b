//! The HTTP protocol: metadata, key registration, binary-mode inference
//! compared with plaintext, malformed requests (each a 4xx with a message,
//! the server serving on), and registered keys surviving a restart.

use serde_json::{json, Value};

use crate::common::{ckks_keys_with_steps, config, digit, error_message, fixture, Running};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_inference_over_http() {
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let keys_dir = work.path().join("keystore");
    let max_body = 8 << 20;
    let mut cfg = config(&fx.repo, &keys_dir);
    cfg.max_body_bytes = max_body;
    let server = Running::start(cfg.clone()).await;
    let client = reqwest::Client::new();

    // Health and metadata.
    for path in [
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/digits/ready",
        "/v2/models/digits/versions/1/ready",
    ] {
        assert_eq!(get(&client, server.url(path)).await.0, 200, "{path}");
    }
    let meta = get_json(&client, server.url("/v2")).await;
    assert_eq!(meta["name"], "heman");
    let meta = get_json(&client, server.url("/v2/models/digits")).await;
    assert_eq!(meta["inputs"][0]["datatype"], "BYTES");
    assert_eq!(meta["inputs"][0]["shape"], json!([1]));
    assert_eq!(meta["outputs"][0]["datatype"], "BYTES");
    assert_eq!(
        get_json(&client, server.url("/v2/models/digits/versions/1")).await,
        meta
    );
    // The data owner learns the keyparams from the server, never the plan.
    let (status, kp_text) = get(&client, server.url("/v2/models/digits/keyparams")).await;
    assert_eq!(status, 200);
    let keyparams: heman_artifacts::ckks::KeyParams = serde_json::from_slice(&kp_text).unwrap();
    assert_eq!(keyparams, fx.compiled_keyparams);
    let kp_meta: heman_artifacts::ckks::KeyParams =
        serde_json::from_str(meta["parameters"]["keyparams"].as_str().unwrap()).unwrap();
    assert_eq!(kp_meta, keyparams);
    assert!(
        !String::from_utf8_lossy(&kp_text).contains("stages"),
        "keyparams must not carry the plan"
    );
    let (status, body) = get(&client, server.url("/v2/models/digits/infer")).await;
    assert_eq!(status, 405);
    error_message(status, &body, "GET on infer");
    for path in [
        "/v2/models/nope",
        "/v2/models/nope/ready",
        "/v2/models/digits/versions/2",
        "/v2/nothing/here",
    ] {
        let (status, body) = get(&client, server.url(path)).await;
        assert_eq!(status, 404, "{path}");
        error_message(status, &body, path);
    }

    // Registration: the key id is the keys' SHA-256; registering twice is fine.
    let keys_url = server.url("/v2/models/digits/keys");
    let (status, body) = post(&client, keys_url.clone(), fx.eval_keys.clone()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let key_id = serde_json::from_slice::<Value>(&body).unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(key_id, heman_server::keystore::key_id(&fx.eval_keys));
    let (status, _) = post(&client, keys_url.clone(), fx.eval_keys.clone()).await;
    assert_eq!(status, 200);
    let status_url = |id: &str| server.url(&format!("/v2/models/digits/keys/{id}"));
    assert_eq!(get(&client, status_url(&key_id)).await.0, 200);
    assert_eq!(get(&client, status_url(&"0".repeat(64))).await.0, 404);
    assert_eq!(get(&client, status_url("not-an-id")).await.0, 404);

    // Bad keys: garbage, a truncated file, another kind of file, keys for
    // other parameters, keys lacking the model's rotations.
    let (other_id, other_keys) = tokio::task::spawn_blocking(|| {
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
    let a_ciphertext = fx.encrypt(&digit(0));
    for (what, body, expected) in [
        ("garbage keys", vec![7u8; 100], "not a heman file"),
        (
            "truncated keys",
            fx.eval_keys[..fx.eval_keys.len() / 2].to_vec(),
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
        let (status, body) = post(&client, keys_url.clone(), body).await;
        let msg = error_message(status, &body, what);
        assert!(msg.contains(expected), "{what}: {msg}");
    }
    // Keys for other parameters planted in the store behind the server's
    // back: refused at inference, not run.
    std::fs::write(keys_dir.join(format!("{other_id}.keys")), &other_keys).unwrap();

    // Encrypt a test digit and run it through the server in binary mode.
    let input = digit(0);
    let tensor = bytes_tensor(&a_ciphertext);
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
    assert_eq!(out["name"], "ciphertext");
    let size = out["parameters"]["binary_data_size"].as_u64().unwrap() as usize;
    assert_eq!(size, body.len() - n);
    let raw = &body[n..];
    let len = u32::from_le_bytes(raw[..4].try_into().unwrap()) as usize;
    assert_eq!(len + 4, raw.len());
    fx.assert_matches(&raw[4..], &input, "HTTP binary mode");

    // The versioned route and the client module agree.
    let ours = heman_server::client::Client::new(&server.http.to_string()).unwrap();
    let out = ours.infer("digits", &key_id, &a_ciphertext).await.unwrap();
    fx.assert_matches(&out, &input, "client module");

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
    let cases: Vec<(&str, String, Value, Vec<u8>, &str)> = vec![
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
            server.url("/v2/models/nope/infer"),
            infer_header(&key_id, "BYTES", &[1], tensor.len()),
            tensor.clone(),
            "unknown model 'nope'",
        ),
        (
            "unknown version",
            server.url("/v2/models/digits/versions/7/infer"),
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
        (
            "oversized body",
            infer_url.clone(),
            infer_header(&key_id, "BYTES", &[1], max_body + 10),
            vec![0u8; max_body + 10],
            "larger than the limit",
        ),
    ];
    for (what, url, header, tensor, expected) in cases {
        let (status, body, _) = post_infer(&client, &url, &header, &tensor).await;
        let msg = error_message(status, &body, what);
        assert!(msg.contains(expected), "{what}: {status} {msg}");
        eprintln!("{what}: {status} {msg}");
    }
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
        let mut r = client.post(&infer_url).body(body);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        let r = r.send().await.unwrap();
        let (s, b) = (r.status().as_u16(), r.bytes().await.unwrap());
        error_message(s, &b, what);
    }
    // Made-up key ids and refused keys took no place in the key cache: only
    // the registered keys are there.
    assert_eq!(server.state.keys.len(), 1, "unknown key ids cached");
    let metrics = String::from_utf8(get(&client, server.url("/metrics")).await.1).unwrap();
    for line in [
        "heman_inference_requests_total{protocol=\"http\",outcome=\"success\"} 2",
        "heman_inference_queue_depth 0",
        "heman_inference_running 0",
        "heman_keys_registered_total 2",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }

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
    let server = Running::start(cfg).await;
    let infer_url = server.url("/v2/models/digits/infer");
    let (status, body, n) = post_infer(
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
    fx.assert_matches(&body[n.unwrap() + 4..], &input, "after restart");
    server.stop().await;
}
