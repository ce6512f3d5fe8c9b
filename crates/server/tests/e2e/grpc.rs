//! The gRPC protocol with tonic's generated client: the same checks and
//! errors as HTTP, as gRPC status codes.

use std::collections::HashMap;

use bytes::Bytes;
use heman_server::grpc::heman::key_service_client::KeyServiceClient;
use heman_server::grpc::heman::{KeyParamsRequest, KeyStatusRequest, RegisterKeysRequest};
use heman_server::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use heman_server::grpc::inference::infer_parameter::ParameterChoice;
use heman_server::grpc::inference::model_infer_request::{
    InferInputTensor, InferRequestedOutputTensor,
};
use heman_server::grpc::inference::*;
use tonic::Code;

use crate::common::{config, digit, fixture, Running};

fn key_parameter(key_id: &str) -> HashMap<String, InferParameter> {
    HashMap::from([(
        "key_id".to_string(),
        InferParameter {
            parameter_choice: Some(ParameterChoice::StringParam(key_id.to_string())),
        },
    )])
}

/// A ModelInfer request as tritonclient builds it: raw BYTES contents.
pub(crate) fn request(model: &str, key_id: &str, ciphertext: &[u8]) -> ModelInferRequest {
    ModelInferRequest {
        model_name: model.into(),
        model_version: String::new(),
        id: "req-1".into(),
        parameters: key_parameter(key_id),
        inputs: vec![InferInputTensor {
            name: "ciphertext".into(),
            datatype: "BYTES".into(),
            shape: vec![1],
            parameters: HashMap::new(),
            contents: None,
        }],
        outputs: vec![InferRequestedOutputTensor {
            name: "ciphertext".into(),
            parameters: HashMap::new(),
        }],
        raw_input_contents: vec![Bytes::from(heman_server::binary::encode_bytes_elements(&[
            ciphertext,
        ]))],
    }
}

/// A server over the shared fixture's repository with a key store of its
/// own, and gRPC clients of its inference and key services.
struct Session {
    fx: &'static crate::common::Fixture,
    _work: tempfile::TempDir,
    server: Running,
    client: GrpcInferenceServiceClient<tonic::transport::Channel>,
    keys: KeyServiceClient<tonic::transport::Channel>,
}

impl Session {
    async fn start() -> Self {
        let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let mut cfg = config(&fx.repo, &work.path().join("keystore"));
        cfg.max_body_bytes = 4 << 20;
        let server = Running::start(cfg).await;
        let url = format!("http://{}", server.grpc.unwrap());
        let client = GrpcInferenceServiceClient::connect(url.clone())
            .await
            .unwrap()
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let keys = KeyServiceClient::connect(url)
            .await
            .unwrap()
            .max_encoding_message_size(usize::MAX);
        Self {
            fx,
            _work: work,
            server,
            client,
            keys,
        }
    }

    /// Registers the fixture's evaluation keys; returns their key id.
    async fn register(&mut self) -> String {
        self.keys
            .register_keys(register_request(self.fx.eval_keys.clone()))
            .await
            .unwrap()
            .into_inner()
            .key_id
    }
}

fn register_request(bytes: Vec<u8>) -> RegisterKeysRequest {
    RegisterKeysRequest {
        model_name: "digits".into(),
        eval_keys: Bytes::from(bytes),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metadata_and_keyparams() {
    let mut s = Session::start().await;
    assert!(
        s.client
            .server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    assert!(
        s.client
            .server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let meta = s
        .client
        .server_metadata(ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.name, "heman");
    let ready = |name: &str, version: &str| ModelReadyRequest {
        name: name.into(),
        version: version.into(),
    };
    assert!(
        s.client
            .model_ready(ready("digits", ""))
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    assert!(
        s.client
            .model_ready(ready("digits", "1"))
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    for (name, version) in [("nope", ""), ("digits", "3")] {
        let e = s
            .client
            .model_ready(ready(name, version))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
    }
    let meta = s
        .client
        .model_metadata(ModelMetadataRequest {
            name: "digits".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.inputs[0].datatype, "BYTES");
    assert_eq!(meta.inputs[0].shape, vec![1]);
    let kp: heman_artifacts::ckks::KeyParams =
        serde_json::from_str(&meta.properties["keyparams"]).unwrap();
    assert_eq!(kp, s.fx.compiled_keyparams);
    let kp_json = s
        .keys
        .get_key_params(KeyParamsRequest {
            model_name: "digits".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .keyparams_json;
    assert_eq!(
        serde_json::from_str::<heman_artifacts::ckks::KeyParams>(&kp_json).unwrap(),
        kp
    );

    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_register_and_garbage_is_refused() {
    let mut s = Session::start().await;
    // Keys: garbage refused, the real ones registered, their status known.
    let e = s
        .keys
        .register_keys(register_request(vec![1; 64]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("not a heman file"), "{e:?}");
    let key_id = s.register().await;
    assert_eq!(key_id, heman_server::keystore::key_id(&s.fx.eval_keys));
    let status = |id: &str| KeyStatusRequest {
        model_name: "digits".into(),
        key_id: id.into(),
    };
    s.keys.key_status(status(&key_id)).await.unwrap();
    let e = s
        .keys
        .key_status(status(&"a".repeat(64)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_and_typed_contents_match_the_plaintext_model() {
    let mut s = Session::start().await;
    let key_id = s.register().await;
    // Inference, raw contents (tritonclient's form) and typed contents.
    let input = digit(3);
    let ciphertext = s.fx.encrypt(&input);
    let response = s
        .client
        .model_infer(request("digits", &key_id, &ciphertext))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.id, "req-1");
    assert_eq!(response.outputs[0].datatype, "BYTES");
    assert_eq!(response.outputs[0].shape, vec![1]);
    let elements =
        heman_server::binary::decode_bytes_elements(&response.raw_output_contents[0], 1).unwrap();
    s.fx.assert_matches(&elements[0], &input, "gRPC raw contents");
    // A fresh encryption: the server answers a ciphertext once per key.
    let ciphertext = s.fx.encrypt(&input);
    let mut typed = request("digits", &key_id, &ciphertext);
    typed.raw_input_contents.clear();
    typed.inputs[0].contents = Some(InferTensorContents {
        bytes_contents: vec![Bytes::from(ciphertext.clone())],
        ..Default::default()
    });
    let response = s.client.model_infer(typed).await.unwrap().into_inner();
    let elements =
        heman_server::binary::decode_bytes_elements(&response.raw_output_contents[0], 1).unwrap();
    s.fx.assert_matches(&elements[0], &input, "gRPC typed contents");

    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_their_status_codes() {
    let mut s = Session::start().await;
    let key_id = s.register().await;
    let ciphertext = s.fx.encrypt(&digit(3));
    // Malformed requests: each the right status code with a message.
    type Edit = Box<dyn Fn(&mut ModelInferRequest)>;
    let cases: Vec<(&str, Edit, Code, &str)> = vec![
        (
            "wrong datatype",
            Box::new(|r| r.inputs[0].datatype = "FP32".into()),
            Code::InvalidArgument,
            "datatype FP32",
        ),
        (
            "wrong shape",
            Box::new(|r| r.inputs[0].shape = vec![1, 2]),
            Code::InvalidArgument,
            "shape [1, 2]",
        ),
        (
            "garbage bytes",
            Box::new(|r| {
                r.raw_input_contents =
                    vec![heman_server::binary::encode_bytes_elements(&[&[9u8; 100]]).into()]
            }),
            Code::InvalidArgument,
            "input ciphertext refused",
        ),
        (
            "truncated ciphertext",
            Box::new(|r| {
                let raw = r.raw_input_contents[0].clone();
                r.raw_input_contents = vec![raw.slice(..raw.len() / 2)];
            }),
            Code::InvalidArgument,
            "BYTES element",
        ),
        (
            "no contents",
            Box::new(|r| r.raw_input_contents.clear()),
            Code::InvalidArgument,
            "neither raw_input_contents nor contents",
        ),
        (
            "unknown model",
            Box::new(|r| r.model_name = "nope".into()),
            Code::NotFound,
            "unknown model 'nope'",
        ),
        (
            "unknown key id",
            Box::new(|r| r.parameters = key_parameter(&"b".repeat(64))),
            Code::NotFound,
            "unknown key_id",
        ),
        (
            "no key id",
            Box::new(|r| r.parameters.clear()),
            Code::InvalidArgument,
            "no parameters.key_id",
        ),
        (
            "key id not a string",
            Box::new(|r| {
                r.parameters.insert(
                    "key_id".into(),
                    InferParameter {
                        parameter_choice: Some(ParameterChoice::Int64Param(3)),
                    },
                );
            }),
            Code::InvalidArgument,
            "must be a string",
        ),
        (
            "unknown output",
            Box::new(|r| r.outputs[0].name = "logits".into()),
            Code::InvalidArgument,
            "unknown output",
        ),
        (
            "oversized message",
            Box::new(|r| r.raw_input_contents = vec![Bytes::from(vec![0u8; 5 << 20])]),
            // tonic's code for a message over the limit.
            Code::OutOfRange,
            "too large",
        ),
    ];
    for (what, edit, code, expected) in cases {
        let mut r = request("digits", &key_id, &ciphertext);
        edit(&mut r);
        let e = s.client.model_infer(r).await.unwrap_err();
        assert_eq!(e.code(), code, "{what}: {e:?}");
        assert!(!e.message().is_empty(), "{what}: no message");
        assert!(e.message().contains(expected), "{what}: {}", e.message());
        eprintln!("{what}: {:?} {}", e.code(), e.message());
    }

    // Still serving, and counted apart from HTTP.
    s.client
        .model_infer(request("digits", &key_id, &ciphertext))
        .await
        .unwrap();
    let metrics = s.server.state.metrics.render();
    assert!(
        metrics.contains("heman_inference_requests_total{protocol=\"grpc\",outcome=\"success\"} 1"),
        "{metrics}"
    );
    s.server.stop().await;
}
