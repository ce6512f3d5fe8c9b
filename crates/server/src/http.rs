//! The HTTP/REST side of the protocol (axum routes and handlers): wire
//! forms only; the work is in [`crate::service`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::admission::Wire;
use crate::auth::Tenant;
use crate::binary;
use crate::error::{Result, ServerError};
use crate::protocol::*;
use crate::service::{
    self, InferCall, InputTensor, ParsedInfer, Protocol, KEY_ID_PARAMETER, OUTPUT_NAME,
};
use crate::AppState;

/// All routes of the HTTP protocol.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/v2/health/live", get(|| async { StatusCode::OK }))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(|| async { Json(service::server_metadata()) }))
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
        .route("/v2/models/{name}/keys/{key_id}", get(key_status))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
        .route("/metrics", get(metrics))
        // Protocol errors are JSON everywhere, axum's own refusals included.
        .fallback(|uri: Uri| async move { ServerError::NoRoute(uri.path().to_string()) })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ServerError::MethodNotAllowed(method.to_string(), uri.path().to_string())
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), Wire::Http),
            crate::admission::guard,
        ))
        .with_state(state)
}

async fn ready(State(state): State<Arc<AppState>>) -> StatusCode {
    if state.shutting_down.load(Ordering::Relaxed) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

async fn model_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ModelMetadata>> {
    let model = service::find(&state, &name, None)?;
    Ok(Json(service::model_metadata(&model)))
}

async fn model_metadata_v(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ModelMetadata>> {
    let model = service::find(&state, &name, Some(&version))?;
    Ok(Json(service::model_metadata(&model)))
}

async fn model_ready(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    service::find(&state, &name, None).map(|_| StatusCode::OK)
}

async fn model_ready_v(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode> {
    service::find(&state, &name, Some(&version)).map(|_| StatusCode::OK)
}

/// `GET /v2/models/{name}/keyparams`: the keyparams JSON (no weights).
async fn keyparams(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response> {
    let model = service::find(&state, &name, None)?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        model.keyparams_json().to_string(),
    )
        .into_response())
}

/// `POST /v2/models/{name}/keys`: registers evaluation keys (the body is an
/// `eval.keys` file), answers `{"key_id": ...}`.
async fn register_keys(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    Path(name): Path<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<KeyRegistered>> {
    let model = service::find(&state, &name, None)?;
    let body = body_or_error(state.config.max_key_bytes, body)?;
    let key_id = service::register_keys(&state, &tenant, model, body).await?;
    Ok(Json(KeyRegistered { key_id }))
}

/// `GET /v2/models/{name}/keys/{key_id}`: 200 when the keys are registered
/// and fit the model, 404 when there are none under that id, else the error
/// saying why.
async fn key_status(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    Path((name, key_id)): Path<(String, String)>,
) -> Response {
    let status = async {
        let model = service::find(&state, &name, None)?;
        service::key_status(&state, &tenant, model, &key_id).await
    };
    match status.await {
        Ok(()) => Json(KeyRegistered { key_id }).into_response(),
        // Here the id names the resource asked about: not found, not a bad request.
        Err(e @ ServerError::UnknownKey(_)) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn infer(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    infer_common(state, tenant, (name, None), headers, body).await
}

async fn infer_v(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    infer_common(state, tenant, (name, Some(version)), headers, body).await
}

async fn infer_common(
    state: Arc<AppState>,
    tenant: Tenant,
    (name, version): (String, Option<String>),
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let work = async {
        let model = service::find(&state, &name, version.as_deref())?;
        let body = body_or_error(state.config.max_body_bytes, body)?;
        let (call, id) = decode(model, &headers, &body)?;
        let output = service::infer(&state, &tenant, call).await?;
        Ok(respond(&name, id, &output))
    };
    match service::observed(&state, Protocol::Http, &name, work).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
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

/// A request's JSON header and binary rest, checked into an inference call;
/// also returns the request id to echo.
fn decode(
    model: std::sync::Arc<crate::repository::LoadedModel>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(InferCall, Option<String>)> {
    let json_len = headers
        .get(binary::HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    let (parsed, id) = parse_infer(&model.name, json_len, body)?;
    Ok((InferCall::new(model, parsed), id))
}

/// The largest JSON part of an inference request. A request's JSON only
/// describes the tensor (the ciphertext travels as binary data after it);
/// parsed into values, JSON takes many times its size in memory, so a body
/// that is all JSON is bounded well below the body limit.
pub const MAX_JSON_BYTES: usize = 1 << 20;

/// Parses and checks an inference request's body for the model `model_name`
/// (its name in messages), given the `Inference-Header-Content-Length`
/// header's value if any: the key id, the one ciphertext, and the request id
/// to echo.
pub fn parse_infer(
    model_name: &str,
    json_len: Option<&str>,
    body: &Bytes,
) -> Result<(ParsedInfer, Option<String>)> {
    let json_len = match json_len {
        None => None,
        Some(v) => Some(v.trim().parse::<usize>().map_err(|_| {
            ServerError::BadRequest("Inference-Header-Content-Length is not a number".into())
        })?),
    };
    let (json, rest) = binary::split(body, json_len)?;
    if json.len() > MAX_JSON_BYTES {
        return Err(ServerError::BadRequest(format!(
            "the request's JSON is {} bytes, more than the {MAX_JSON_BYTES} a request needs: send the ciphertext as binary data (Inference-Header-Content-Length)",
            json.len()
        )));
    }
    let request: InferRequest = serde_json::from_slice(&json)
        .map_err(|e| ServerError::BadRequest(format!("malformed inference request JSON: {e}")))?;
    let inputs: Vec<InputTensor<'_>> = request
        .inputs
        .iter()
        .map(|i| InputTensor {
            name: &i.name,
            datatype: &i.datatype,
            shape: &i.shape,
        })
        .collect();
    service::check_inputs(&inputs)?;
    let ciphertext = service::single_element(input_elements(&request.inputs[0], &rest)?)?;
    check_binary_output(&request)?;
    service::check_outputs(request.outputs.iter().map(|o| o.name.as_str()))?;
    let key_id = match request.parameters.get(KEY_ID_PARAMETER) {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(ServerError::BadRequest(format!(
                "parameters.{KEY_ID_PARAMETER} must be a string"
            )))
        }
    };
    let key_id = service::require_key_id(model_name, key_id)?;
    Ok((ParsedInfer { key_id, ciphertext }, request.id))
}

/// The elements of the input tensor: the binary data after the JSON header
/// (its size as announced), or the JSON `data` field.
fn input_elements(input: &RequestInput, rest: &Bytes) -> Result<Vec<Bytes>> {
    match input.parameters.get("binary_data_size") {
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
            binary::decode_bytes_elements(rest, 1)
        }
        None => {
            if !rest.is_empty() {
                return Err(ServerError::BadRequest(
                    "binary data follows the JSON but the input has no binary_data_size".into(),
                ));
            }
            json_bytes_elements(input.data.as_ref())
        }
    }
}

/// A ciphertext is not UTF-8, so the output always travels in binary form;
/// only an explicit request for JSON output is refused (up front, before
/// any inference runs).
fn check_binary_output(request: &InferRequest) -> Result<()> {
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
    Ok(())
}

/// JSON-mode BYTES data: a (possibly nested) array of strings.
fn json_bytes_elements(data: Option<&Value>) -> Result<Vec<Bytes>> {
    fn walk(v: &Value, out: &mut Vec<Bytes>) -> Result<()> {
        match v {
            Value::Array(items) => items.iter().try_for_each(|i| walk(i, out)),
            Value::String(s) => {
                out.push(Bytes::copy_from_slice(s.as_bytes()));
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

/// The binary-mode response: JSON header, then the BYTES output tensor.
fn respond(model: &str, id: Option<String>, output: &[u8]) -> Response {
    let raw = binary::encode_bytes_elements(&[output]);
    let mut parameters = Map::new();
    parameters.insert("binary_data_size".into(), json!(raw.len()));
    let response = InferResponse {
        model_name: model.to_string(),
        model_version: Some("1".into()),
        id,
        outputs: vec![ResponseOutput {
            name: OUTPUT_NAME.into(),
            shape: vec![1],
            datatype: service::DATATYPE.into(),
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
