//! JSON types of the KServe v2 / Open Inference Protocol (as Triton speaks it).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `GET /v2`: server metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerMetadata {
    /// The server's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The protocol extensions it supports.
    pub extensions: Vec<String>,
}

/// A tensor's name, datatype and shape in model metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TensorMetadata {
    /// The tensor's name.
    pub name: String,
    /// Its datatype (`BYTES` for ciphertexts).
    pub datatype: String,
    /// Its shape.
    pub shape: Vec<i64>,
}

/// `GET /v2/models/{name}`: model metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// The model's name.
    pub name: String,
    /// Its versions.
    pub versions: Vec<String>,
    /// `heman_<backend>`.
    pub platform: String,
    /// Its inputs.
    pub inputs: Vec<TensorMetadata>,
    /// Its outputs.
    pub outputs: Vec<TensorMetadata>,
    /// Extra parameters (the keyparams).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Map<String, Value>,
}

/// One input tensor of an inference request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestInput {
    /// The input's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// Its datatype.
    pub datatype: String,
    /// Its parameters (`binary_data_size`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Map<String, Value>,
    /// JSON-mode contents (for BYTES: an array of strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// One requested output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestOutput {
    /// The output's name.
    pub name: String,
    /// Its parameters (`binary_data`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Map<String, Value>,
}

/// `POST .../infer`: the request's JSON part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferRequest {
    /// The request id, echoed in the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Request parameters (`key_id`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Map<String, Value>,
    /// The input tensors.
    pub inputs: Vec<RequestInput>,
    /// The outputs asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<RequestOutput>,
}

/// One output tensor of an inference response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseOutput {
    /// The output's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// Its datatype.
    pub datatype: String,
    /// Its parameters (`binary_data_size`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Map<String, Value>,
    /// JSON-mode contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// The response's JSON part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferResponse {
    /// The model that answered.
    pub model_name: String,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// The request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The output tensors.
    pub outputs: Vec<ResponseOutput>,
}

/// `POST /v2/models/{name}/keys`: the id of the registered evaluation keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRegistered {
    /// The keys' id: their SHA-256 (hex).
    pub key_id: String,
}
