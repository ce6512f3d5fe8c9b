//! The HTTP/REST side of the protocol (axum routes and handlers).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::binary;
use crate::error::{Result, ServerError};
use crate::inference;
use crate::keystore::key_id;
use crate::protocol::*;
use crate::repository::LoadedModel;
use crate::AppState;

/// The name of the model's single input and output tensors.
pub const INPUT_NAME: &str = "ciphertext";
/// The name of the model's output tensor.
pub const OUTPUT_NAME: &str = "ciphertext";

/// All routes of the HTTP protocol.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/v2/health/live", get(|| async { StatusCode::OK }))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(model_metadata_v),
        )
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready_v),
        )
        .route("/v2/models/{name}/keyparams", get(keyparams))
        .route(
            "/v2/models/{name}/keys",
            post(register_keys).layer(DefaultBodyLimit::max(state.config.max_key_bytes)),
        )
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
        .route("/metrics", get(metrics))
        .fallback(|| async { ServerError::BadRequest("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn ready(State(state): State<Arc<AppState>>) -> StatusCode {
    if state.shutting_down.load(Ordering::Relaxed) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

async fn server_metadata() -> Json<ServerMetadata> {
    Json(ServerMetadata {
        name: "heman".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        extensions: vec![
            "binary_tensor_data".into(),
            "heman_keys".into(),
            "heman_keyparams".into(),
        ],
    })
}

/// The model `name` (version "1" or none: heman models have one version).
fn find(state: &AppState, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>> {
    let model = state
        .repository
        .get(name)
        .ok_or_else(|| ServerError::UnknownModel(name.to_string()))?;
    match version {
        None | Some("") | Some("1") => Ok(model),
        Some(v) => Err(ServerError::UnknownModel(format!("{name}' version '{v}"))),
    }
}

fn metadata(model: &LoadedModel) -> ModelMetadata {
    let mut parameters = Map::new();
    parameters.insert(
        "keyparams".into(),
        Value::String(model.keyparams_json.clone()),
    );
    ModelMetadata {
        name: model.name.clone(),
        versions: vec!["1".into()],
        platform: "heman_ckks".into(),
        inputs: vec![TensorMetadata {
            name: INPUT_NAME.into(),
            datatype: "BYTES".into(),
            shape: vec![1],
        }],
        outputs: vec![TensorMetadata {
            name: OUTPUT_NAME.into(),
            datatype: "BYTES".into(),
            shape: vec![1],
        }],
        parameters,
    }
}

async fn model_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ModelMetadata>> {
    let model = find(&state, &name, None)?;
    Ok(Json(metadata(&model)))
}

async fn model_metadata_v(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ModelMetadata>> {
    let model = find(&state, &name, Some(&version))?;
    Ok(Json(metadata(&model)))
}

async fn model_ready(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    find(&state, &name, None).map(|_| StatusCode::OK)
}

async fn model_ready_v(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode> {
    find(&state, &name, Some(&version)).map(|_| StatusCode::OK)
}

/// `GET /v2/models/{name}/keyparams`: the keyparams JSON (no weights).
async fn keyparams(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response> {
    let model = find(&state, &name, None)?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        model.keyparams_json.clone(),
    )
        .into_response())
}

/// `POST /v2/models/{name}/keys`: registers evaluation keys.
async fn register_keys(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<KeyRegistered>> {
    let model = find(&state, &name, None)?;
    let body = body_or_error(state.config.max_key_bytes, body)?;
    let state2 = state.clone();
    let id = tokio::task::spawn_blocking(move || -> Result<String> {
        inference::check_keys(&model, &body)?;
        let id = key_id(&body);
        state2
            .keystore
            .put(&id, &body)
            .map_err(|e| ServerError::Internal(format!("key store: {e}")))?;
        Ok(id)
    })
    .await
    .map_err(|e| ServerError::Internal(format!("key registration panicked: {e}")))??;
    Ok(Json(KeyRegistered { key_id: id }))
}

async fn infer(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    infer_common(state, name, None, headers, body).await
}

async fn infer_v(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    infer_common(state, name, Some(version), headers, body).await
}

async fn infer_common(
    state: Arc<AppState>,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let start = Instant::now();
    let result = infer_inner(&state, &name, version.as_deref(), &headers, body).await;
    state.metrics.record(start.elapsed(), result.is_ok());
    match result {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(model = %name, error = %e, "infer refused");
            e.into_response()
        }
    }
}

/// The body, or the protocol error for a body refused while reading it.
fn body_or_error(limit: usize, body: std::result::Result<Bytes, BytesRejection>) -> Result<Bytes> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServerError::TooLarge(limit)
        } else {
            ServerError::BadRequest(format!("reading the request body: {e}"))
        }
    })
}

/// A checked inference request and its one ciphertext.
struct Decoded {
    request: InferRequest,
    ciphertext: Vec<u8>,
}

fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Decoded> {
    let json_len = match headers.get(binary::HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ServerError::BadRequest(
                        "Inference-Header-Content-Length is not a number".into(),
                    )
                })?,
        ),
    };
    let (json, rest) = binary::split(body, json_len)?;
    let request: InferRequest = serde_json::from_slice(json)
        .map_err(|e| ServerError::BadRequest(format!("malformed inference request JSON: {e}")))?;
    let [input] = &request.inputs[..] else {
        return Err(ServerError::BadRequest(format!(
            "the model takes exactly 1 input ('{INPUT_NAME}'), {} given",
            request.inputs.len()
        )));
    };
    if input.datatype != "BYTES" {
        return Err(ServerError::BadRequest(format!(
            "input '{}' has datatype {}, expected BYTES (one heman ciphertext file)",
            input.name, input.datatype
        )));
    }
    if input.shape.iter().product::<i64>() != 1 || input.shape.iter().any(|&d| d != 1) {
        return Err(ServerError::BadRequest(format!(
            "input '{}' has shape {:?}, expected [1]",
            input.name, input.shape
        )));
    }
    let elements = match input.parameters.get("binary_data_size") {
        Some(size) => {
            let size = size.as_u64().ok_or_else(|| {
                ServerError::BadRequest("binary_data_size is not an unsigned integer".into())
            })? as usize;
            if size != rest.len() {
                return Err(ServerError::BadRequest(format!(
                    "binary_data_size is {size} but {} bytes follow the JSON header",
                    rest.len()
                )));
            }
            binary::decode_bytes_elements(rest)?
        }
        None => {
            if !rest.is_empty() {
                return Err(ServerError::BadRequest(
                    "binary data follows the JSON but the input has no binary_data_size".into(),
                ));
            }
            json_bytes_elements(input.data.as_ref())?
        }
    };
    let [ciphertext] = <[Vec<u8>; 1]>::try_from(elements).map_err(|v| {
        ServerError::BadRequest(format!(
            "input holds {} BYTES elements, expected 1",
            v.len()
        ))
    })?;
    // A ciphertext is not UTF-8, so the output always travels in binary
    // form; only an explicit request for JSON output is refused (up front,
    // before any inference runs).
    let explicit_json = request
        .outputs
        .iter()
        .any(|o| o.parameters.get("binary_data") == Some(&Value::Bool(false)))
        || request.parameters.get("binary_data_output") == Some(&Value::Bool(false));
    if explicit_json {
        return Err(ServerError::BadRequest(
            "the output ciphertext is binary: ask for it with parameters.binary_data = true".into(),
        ));
    }
    if let Some(o) = request.outputs.iter().find(|o| o.name != OUTPUT_NAME) {
        return Err(ServerError::BadRequest(format!(
            "unknown output '{}', the model has one output '{OUTPUT_NAME}'",
            o.name
        )));
    }
    Ok(Decoded {
        request,
        ciphertext,
    })
}

/// JSON-mode BYTES data: a (possibly nested) array of strings.
fn json_bytes_elements(data: Option<&Value>) -> Result<Vec<Vec<u8>>> {
    fn walk(v: &Value, out: &mut Vec<Vec<u8>>) -> Result<()> {
        match v {
            Value::Array(items) => items.iter().try_for_each(|i| walk(i, out)),
            Value::String(s) => {
                out.push(s.as_bytes().to_vec());
                Ok(())
            }
            _ => Err(ServerError::BadRequest(
                "BYTES data in JSON must be strings".into(),
            )),
        }
    }
    let data = data.ok_or_else(|| {
        ServerError::BadRequest("input has neither data nor binary_data_size".into())
    })?;
    let mut out = Vec::new();
    walk(data, &mut out)?;
    Ok(out)
}

async fn infer_inner(
    state: &Arc<AppState>,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let model = find(state, name, version)?;
    let body = body_or_error(state.config.max_body_bytes, body)?;
    let decoded = decode(headers, &body)?;
    drop(body);
    let key_id = decoded
        .request
        .parameters
        .get("key_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ServerError::BadRequest(format!(
                "the request has no parameters.key_id: register evaluation keys with POST /v2/models/{name}/keys and pass the key_id"
            ))
        })?
        .to_string();
    state.metrics.queued.fetch_add(1, Ordering::Relaxed);
    let permit = state.semaphore.clone().acquire_owned().await;
    state.metrics.queued.fetch_sub(1, Ordering::Relaxed);
    let permit = permit.map_err(|_| ServerError::Internal("server is shutting down".into()))?;
    let st = state.clone();
    let m = model.clone();
    let ciphertext = decoded.ciphertext;
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let keys = st.keys.get(st.keystore.as_ref(), &m, &key_id)?;
        inference::infer(&m, &keys, &ciphertext)
    });
    let timeout = state.config.request_timeout;
    let output = match tokio::time::timeout(timeout, task).await {
        Err(_) => return Err(ServerError::Timeout(timeout.as_secs())),
        Ok(joined) => {
            joined.map_err(|e| ServerError::Internal(format!("inference panicked: {e}")))??
        }
    };
    Ok(respond(&model, decoded.request.id, output))
}

/// The binary-mode response: JSON header, then the BYTES output tensor.
fn respond(model: &LoadedModel, id: Option<String>, output: Vec<u8>) -> Response {
    let raw = binary::encode_bytes_elements(&[&output]);
    let mut parameters = Map::new();
    parameters.insert("binary_data_size".into(), json!(raw.len()));
    let response = InferResponse {
        model_name: model.name.clone(),
        model_version: Some("1".into()),
        id,
        outputs: vec![ResponseOutput {
            name: OUTPUT_NAME.into(),
            shape: vec![1],
            datatype: "BYTES".into(),
            parameters,
            data: None,
        }],
    };
    let mut body = serde_json::to_vec(&response).expect("response serialises");
    let json_len = body.len();
    body.extend_from_slice(&raw);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(binary::HEADER, json_len.to_string())
        .body(Body::from(body))
        .expect("valid response")
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
