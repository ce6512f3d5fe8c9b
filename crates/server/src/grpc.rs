//! The gRPC side: `inference.GRPCInferenceService` (the KServe v2 protocol as
//! Triton serves it) and `heman.KeyService` (key registration). Wire forms
//! only; the work is in [`crate::service`], shared with HTTP.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tonic::{Request, Response, Status};

use crate::admission::Wire;
use crate::auth::Tenant;
use crate::binary;
use crate::error::{Result, ServerError};
use crate::service::{self, InferCall, InputTensor, ParsedInfer, Protocol, KEY_ID_PARAMETER};
use crate::AppState;

/// Code generated from `proto/grpc_service.proto`.
#[allow(clippy::all, missing_docs)]
pub mod inference {
    tonic::include_proto!("inference");
}

/// Code generated from `proto/heman_keys.proto`.
#[allow(clippy::all, missing_docs)]
pub mod heman {
    tonic::include_proto!("heman");
}

use inference::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use inference::infer_parameter::ParameterChoice;
use inference::*;

/// Both gRPC services, with message size limits from the configuration.
pub fn services(
    state: Arc<AppState>,
) -> (
    GrpcInferenceServiceServer<Inference>,
    heman::key_service_server::KeyServiceServer<Keys>,
) {
    // Requests are bounded as over HTTP; answers hold one ciphertext, which
    // the client bounds itself.
    let inference = GrpcInferenceServiceServer::new(Inference(state.clone()))
        .max_decoding_message_size(state.config.max_body_bytes)
        .max_encoding_message_size(usize::MAX);
    let keys = heman::key_service_server::KeyServiceServer::new(Keys(state.clone()))
        .max_decoding_message_size(state.config.max_key_bytes);
    (inference, keys)
}

/// Both services as routes behind the admission guard ([`crate::admission`]),
/// which authenticates and admits each call before its message is read.
pub fn routes(state: Arc<AppState>) -> tonic::service::Routes {
    let (inference, keys) = services(state.clone());
    let router = tonic::service::Routes::new(inference)
        .add_service(keys)
        .into_axum_router()
        .layer(axum::middleware::from_fn_with_state(
            (state, Wire::Grpc),
            crate::admission::guard,
        ));
    tonic::service::Routes::from(router)
}

/// The client the admission guard found for a call.
fn tenant<T>(request: &Request<T>) -> Result<Tenant> {
    request
        .extensions()
        .get::<Tenant>()
        .cloned()
        .ok_or_else(|| {
            ServerError::Internal("a call reached a service without passing admission".into())
        })
}

/// `inference.GRPCInferenceService`.
pub struct Inference(Arc<AppState>);

/// `heman.KeyService`.
pub struct Keys(Arc<AppState>);

fn version(v: &str) -> Option<&str> {
    (!v.is_empty()).then_some(v)
}

#[tonic::async_trait]
impl GrpcInferenceService for Inference {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> std::result::Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> std::result::Result<Response<ServerReadyResponse>, Status> {
        let ready = !self.0.shutting_down.load(Ordering::Relaxed);
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> std::result::Result<Response<ModelReadyResponse>, Status> {
        let r = request.into_inner();
        service::find(&self.0, &r.name, version(&r.version))?;
        Ok(Response::new(ModelReadyResponse { ready: true }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> std::result::Result<Response<ServerMetadataResponse>, Status> {
        let m = service::server_metadata();
        Ok(Response::new(ServerMetadataResponse {
            name: m.name,
            version: m.version,
            extensions: m.extensions,
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> std::result::Result<Response<ModelMetadataResponse>, Status> {
        let r = request.into_inner();
        let model = service::find(&self.0, &r.name, version(&r.version))?;
        let m = service::model_metadata(&model);
        let tensors = |ts: Vec<crate::protocol::TensorMetadata>| {
            ts.into_iter()
                .map(|t| model_metadata_response::TensorMetadata {
                    name: t.name,
                    datatype: t.datatype,
                    shape: t.shape,
                })
                .collect()
        };
        Ok(Response::new(ModelMetadataResponse {
            name: m.name,
            versions: m.versions,
            platform: m.platform,
            inputs: tensors(m.inputs),
            outputs: tensors(m.outputs),
            properties: HashMap::from([(
                "keyparams".to_string(),
                model.keyparams_json().to_string(),
            )]),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> std::result::Result<Response<ModelInferResponse>, Status> {
        let state = &self.0;
        let tenant = tenant(&request)?;
        let r = request.into_inner();
        let name = r.model_name.clone();
        let work = async {
            let model = service::find(state, &r.model_name, version(&r.model_version))?;
            let parsed = parse_infer(
                &model.name,
                r.parameters,
                r.inputs,
                r.outputs,
                r.raw_input_contents,
            )?;
            let call = InferCall::new(model, parsed);
            let output = service::infer(state, &tenant, call).await?;
            Ok(respond(&r.model_name, r.id, &output))
        };
        Ok(Response::new(
            service::observed(state, Protocol::Grpc, &name, work).await?,
        ))
    }
}

/// A ModelInfer request's parts checked into an inference call's content
/// for the model `model_name` (same checks as HTTP's, from [`service`]).
pub fn parse_infer(
    model_name: &str,
    parameters: HashMap<String, InferParameter>,
    inputs: Vec<model_infer_request::InferInputTensor>,
    outputs: Vec<model_infer_request::InferRequestedOutputTensor>,
    raw: Vec<Bytes>,
) -> Result<ParsedInfer> {
    let described: Vec<InputTensor<'_>> = inputs
        .iter()
        .map(|i| InputTensor {
            name: &i.name,
            datatype: &i.datatype,
            shape: &i.shape,
        })
        .collect();
    service::check_inputs(&described)?;
    let typed = inputs[0].contents.as_ref();
    let elements = match (&raw[..], typed) {
        ([], Some(contents)) => contents.bytes_contents.clone(),
        ([contents], None) => binary::decode_bytes_elements(contents, 1)?,
        ([], None) => {
            return Err(ServerError::BadRequest(
                "input has neither raw_input_contents nor contents".into(),
            ))
        }
        (_, Some(_)) => {
            return Err(ServerError::BadRequest(
                "raw_input_contents and contents given at once".into(),
            ))
        }
        (many, None) => {
            return Err(ServerError::BadRequest(format!(
                "{} raw_input_contents for 1 input",
                many.len()
            )))
        }
    };
    let ciphertext = service::single_element(elements)?;
    service::check_outputs(outputs.iter().map(|o| o.name.as_str()))?;
    let key_id = match parameters
        .get(KEY_ID_PARAMETER)
        .map(|p| &p.parameter_choice)
    {
        None => None,
        Some(Some(ParameterChoice::StringParam(s))) => Some(s.as_str()),
        Some(_) => {
            return Err(ServerError::BadRequest(format!(
                "parameter {KEY_ID_PARAMETER} must be a string"
            )))
        }
    };
    let key_id = service::require_key_id(model_name, key_id)?;
    Ok(ParsedInfer { key_id, ciphertext })
}

fn respond(model: &str, id: String, output: &[u8]) -> ModelInferResponse {
    ModelInferResponse {
        model_name: model.to_string(),
        model_version: "1".into(),
        id,
        parameters: HashMap::new(),
        outputs: vec![model_infer_response::InferOutputTensor {
            name: service::OUTPUT_NAME.into(),
            datatype: service::DATATYPE.into(),
            shape: vec![1],
            parameters: HashMap::new(),
            contents: None,
        }],
        raw_output_contents: vec![Bytes::from(binary::encode_bytes_elements(&[output]))],
    }
}

#[tonic::async_trait]
impl heman::key_service_server::KeyService for Keys {
    async fn get_key_params(
        &self,
        request: Request<heman::KeyParamsRequest>,
    ) -> std::result::Result<Response<heman::KeyParamsResponse>, Status> {
        let model = service::find(&self.0, &request.into_inner().model_name, None)?;
        Ok(Response::new(heman::KeyParamsResponse {
            keyparams_json: model.keyparams_json().to_string(),
        }))
    }

    async fn register_keys(
        &self,
        request: Request<heman::RegisterKeysRequest>,
    ) -> std::result::Result<Response<heman::RegisterKeysResponse>, Status> {
        let tenant = tenant(&request)?;
        let r = request.into_inner();
        let model = service::find(&self.0, &r.model_name, None)?;
        let key_id = service::register_keys(&self.0, &tenant, model, r.eval_keys).await?;
        Ok(Response::new(heman::RegisterKeysResponse { key_id }))
    }

    async fn key_status(
        &self,
        request: Request<heman::KeyStatusRequest>,
    ) -> std::result::Result<Response<heman::KeyStatusResponse>, Status> {
        let tenant = tenant(&request)?;
        let r = request.into_inner();
        let model = service::find(&self.0, &r.model_name, None)?;
        service::key_status(&self.0, &tenant, model, &r.key_id).await?;
        Ok(Response::new(heman::KeyStatusResponse { key_id: r.key_id }))
    }
}
