//! A TFHE model served beside a CKKS one: the repository's ReLU digits
//! network compiled for TFHE (2_2 preset, exact mode), a data owner's client
//! and server keys, registration and inference over HTTP and gRPC. The
//! decrypted output integers must equal the quantised plaintext model's
//! (exact mode: every read right with probability 1 - 2^-40); keys and
//! ciphertexts of the other backend or another model are refused.

use std::path::Path;

use heman_artifacts::tfhe::{TfheCiphertexts, TfheCompiledModel, TfheKeyParams};
use heman_compiler::tfhe::{compile_tfhe, TfheOptions, TfhePlan};
use heman_model::io::dataset::load_arrays;
use heman_model::{load_onnx, CalibrationRanges, Tensor};
use heman_runtime::tfhe::{decrypt_integers, encrypt_input};
use heman_server::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use heman_tfhe::{ClientKey, KeyChoice, Preset};

use crate::common::{config, digit, example, fixture, Running};
use crate::grpc::request;

/// The TFHE digits model in `<repo>/digits_tfhe/`, and its data owner.
struct TfheOwner {
    plan: TfhePlan,
    fingerprint: [u8; 32],
    client: ClientKey,
    eval_keys: Vec<u8>,
}

fn compile_into(repo: &Path) -> TfheOwner {
    let graph = load_onnx(&example().join("digits_relu.onnx")).unwrap();
    let samples = load_arrays(&example().join("calibration.npz")).unwrap();
    let ranges = CalibrationRanges::measure(&graph, &samples).unwrap();
    let options = TfheOptions {
        preset: Preset::Message2Carry2,
        exact: true,
        search_samples: 16,
        report_samples: 16,
        ..TfheOptions::default()
    };
    let compiled = compile_tfhe(&graph, &samples, &ranges, options).unwrap();
    let name = |id: usize| graph.value(id).name.clone();
    let keyparams = TfheKeyParams::for_plan(
        &compiled.plan,
        compiled.bits,
        &compiled.budget,
        true,
        name(graph.inputs[0]),
        None,
        name(graph.outputs[0]),
        None,
    );
    let dir = repo.join("digits_tfhe");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("digits_tfhe.heman");
    let model = TfheCompiledModel {
        keyparams,
        plan: compiled.plan,
    };
    model.write(&path).unwrap();
    let fingerprint = model.keyparams.fingerprint(&path).unwrap();
    let client = ClientKey::generate(model.keyparams.preset);
    let keys_path = repo.join("tfhe-eval.keys");
    heman_artifacts::tfhe::write_server_key(
        &keys_path,
        fingerprint,
        &client.compressed_server_key(),
    )
    .unwrap();
    TfheOwner {
        plan: model.plan,
        fingerprint,
        client,
        eval_keys: std::fs::read(&keys_path).unwrap(),
    }
}

impl TfheOwner {
    fn encrypt(&self, x: &Tensor) -> Vec<u8> {
        let x = x.clone().reshaped(self.plan.input.shape.clone());
        let seeded = encrypt_input(&self.plan.input, &self.client, &x).unwrap();
        TfheCiphertexts::Seeded(seeded).to_bytes(self.fingerprint)
    }

    /// The decrypted output integers of a response, asserted equal to the
    /// quantised plaintext model's on `x`.
    fn assert_exact(&self, response: &[u8], x: &Tensor, what: &str) {
        let out = TfheCiphertexts::from_bytes(
            response,
            Path::new(what),
            self.plan.preset,
            &self.fingerprint,
        )
        .unwrap()
        .into_expanded();
        let got = decrypt_integers(&self.plan.output, &self.client, &out).unwrap();
        let x = x.clone().reshaped(self.plan.input.shape.clone());
        let reference = self
            .plan
            .run_exact(&self.plan.quantise_input(&x).unwrap())
            .unwrap();
        assert_eq!(got, reference, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tfhe_model_served_beside_a_ckks_one() {
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    // The CKKS digits model and the TFHE one in one repository.
    let repo = work.path().join("models");
    std::fs::create_dir_all(repo.join("digits")).unwrap();
    std::fs::copy(
        fx.repo.join("digits/digits.heman"),
        repo.join("digits/digits.heman"),
    )
    .unwrap();
    let owner = {
        let repo = repo.clone();
        tokio::task::spawn_blocking(move || compile_into(&repo))
            .await
            .unwrap()
    };
    assert_eq!(owner.plan.input.key, KeyChoice::Small);
    let mut cfg = config(&repo, &work.path().join("keystore"));
    cfg.max_body_bytes = 64 << 20;
    let server = Running::start(cfg).await;
    let client = heman_server::client::Client::new(&server.http.to_string()).unwrap();

    // Metadata: the platform says which backend; the keyparams are TFHE's.
    let meta = reqwest::get(server.url("/v2/models/digits_tfhe"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(meta["platform"], "heman_tfhe");
    let kp: TfheKeyParams =
        serde_json::from_str(&client.keyparams("digits_tfhe").await.unwrap()).unwrap();
    assert_eq!(kp.preset, Preset::Message2Carry2);
    assert!(!serde_json::to_string(&kp).unwrap().contains("rows"));

    // Keys of the other backend are refused, each way round.
    let e = client
        .register_keys("digits_tfhe", fx.eval_keys.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("expected TFHE server key"), "{e}");
    let e = client
        .register_keys("digits", owner.eval_keys.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("expected evaluation keys"), "{e}");
    let key_id = client
        .register_keys("digits_tfhe", owner.eval_keys.clone())
        .await
        .unwrap();

    // Inference over HTTP and gRPC, each exactly the quantised model's.
    let x = digit(0);
    let ciphertext = owner.encrypt(&x);
    let out = client
        .infer("digits_tfhe", &key_id, &ciphertext)
        .await
        .unwrap();
    owner.assert_exact(&out, &x, "HTTP");
    let mut grpc = GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc.unwrap()))
        .await
        .unwrap()
        .max_decoding_message_size(usize::MAX);
    let y = digit(7);
    let response = grpc
        .model_infer(request("digits_tfhe", &key_id, &owner.encrypt(&y)))
        .await
        .unwrap()
        .into_inner();
    let elements =
        heman_server::binary::decode_bytes_elements(&response.raw_output_contents[0]).unwrap();
    owner.assert_exact(&elements[0], &y, "gRPC");

    // Bad inputs: a CKKS ciphertext, a computed (expanded) ciphertext file,
    // one for another model's parameters, a truncated one.
    let computed = out.clone();
    let other_model = {
        let mut bad = ciphertext.clone();
        bad[10] ^= 1;
        bad
    };
    for (what, body, expected) in [
        (
            "a CKKS ciphertext",
            fx.encrypt(&x),
            "expected a TFHE ciphertexts file",
        ),
        ("a computed ciphertext", computed, "not a fresh encryption"),
        ("another fingerprint", other_model, "refused"),
        (
            "a truncated ciphertext",
            ciphertext[..ciphertext.len() / 2].to_vec(),
            "truncated",
        ),
    ] {
        let e = client
            .infer("digits_tfhe", &key_id, &body)
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(400), "{what}: {e}");
        assert!(e.to_string().contains(expected), "{what}: {e}");
    }
    // The CKKS model still serves.
    let ckks_id = client
        .register_keys("digits", fx.eval_keys.clone())
        .await
        .unwrap();
    let out = client
        .infer("digits", &ckks_id, &fx.encrypt(&x))
        .await
        .unwrap();
    fx.assert_matches(&out, &x, "CKKS beside TFHE");
    server.stop().await;
}
