//! A TFHE model served beside a CKKS one: the repository's ReLU digits
//! network compiled for TFHE (2_2 preset, its default plan: exact 2_2 plans
//! leave this network a constant and are refused), a data owner's client
//! and server keys, registration and inference over HTTP and gRPC. The
//! decrypted outputs must pick the quantised plaintext model's class and
//! lie within the reads' noise of its outputs; keys and ciphertexts of the
//! other backend or another model are refused.

use std::path::Path;

use heman_artifacts::tfhe::{Ciphertexts, KeyParams};
use heman_backend::{CompileOptions, DataOwner, ModelOwner, ServingOptions};
use heman_model::Tensor;
use heman_server::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use heman_tfhe::{KeyChoice, Preset, SeededLweVector};

use crate::common::{compile_into, config, digit, fixture, make_keys, Running};
use crate::grpc::request;

/// The TFHE digits model (in `<repo>/digits_tfhe/`), compiled through the
/// seam: its model owner (for the reference simulation) and a
/// data owner.
struct TfheParties {
    keyparams: KeyParams,
    model: Box<dyn ModelOwner>,
    data_owner: Box<dyn DataOwner>,
    eval_keys: Vec<u8>,
}

fn compile(repo: &Path) -> TfheParties {
    let options = CompileOptions::default();
    let (_, compilation) = compile_into(repo, "digits_tfhe", "digits_relu.onnx", "tfhe", &options);
    let model = compilation
        .backend
        .load_model(
            &compilation.model,
            Path::new("digits_tfhe"),
            ServingOptions::default(),
        )
        .unwrap();
    let (data_owner, eval_keys) = make_keys(&compilation);
    TfheParties {
        keyparams: KeyParams::from_json(compilation.keyparams.as_bytes(), Path::new("kp")).unwrap(),
        model,
        data_owner,
        eval_keys,
    }
}

impl TfheParties {
    fn encrypt(&self, x: &Tensor) -> Vec<u8> {
        self.data_owner.encrypt(x, "digit").unwrap()
    }

    /// A response decrypted, asserted to pick the quantised plaintext
    /// model's class on `x` and to lie within a quarter of its largest
    /// output (the reads' noise moves this network's outputs by about a
    /// tenth: measured over 40 noisy simulations of a test digit).
    fn assert_matches_plan(&self, response: &[u8], x: &Tensor, what: &str) {
        let got = self
            .data_owner
            .decrypt(response, Path::new(what))
            .unwrap()
            .remove(0);
        let plan = self.model.simulate(x, None).unwrap().remove(0);
        assert_eq!(got.argmax(), plan.argmax(), "{what}");
        let tolerance = heman_testkit::Tolerance::relative(0.25);
        heman_testkit::assert_matches_plaintext(&got, &plan, tolerance, what);
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
        tokio::task::spawn_blocking(move || compile(&repo))
            .await
            .unwrap()
    };
    assert_eq!(owner.keyparams.input.quantisation.key, KeyChoice::Small);
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
    let kp: KeyParams =
        serde_json::from_str(&client.keyparams("digits_tfhe").await.unwrap()).unwrap();
    assert_eq!(kp.preset, Preset::Message2Carry2);
    assert!(!serde_json::to_string(&kp).unwrap().contains("rows"));

    // Keys of the other backend are refused, each way round.
    let e = client
        .register_keys("digits_tfhe", fx.eval_keys.clone())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("expected tfhe evaluation keys"),
        "{e}"
    );
    let e = client
        .register_keys("digits", owner.eval_keys.clone())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("expected ckks evaluation keys"),
        "{e}"
    );
    let key_id = client
        .register_keys("digits_tfhe", owner.eval_keys.clone())
        .await
        .unwrap();

    // Inference over HTTP and gRPC, each the quantised model's class.
    let x = digit(0);
    let ciphertext = owner.encrypt(&x);
    let out = client
        .infer("digits_tfhe", &key_id, &ciphertext)
        .await
        .unwrap();
    owner.assert_matches_plan(&out, &x, "HTTP");
    let mut grpc = GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc.unwrap()))
        .await
        .unwrap()
        .max_decoding_message_size(usize::MAX);
    // 3-4.npy: the quantised model's class leads by 5.0 where the reads'
    // noise moved outputs by at most 1.4 in 40 simulations (digit(7),
    // 0-91.npy, which the quantised model misclassifies, is a near tie
    // that the noise flips).
    let y = digit(32);
    let response = grpc
        .model_infer(request("digits_tfhe", &key_id, &owner.encrypt(&y)))
        .await
        .unwrap()
        .into_inner();
    let elements =
        heman_server::binary::decode_bytes_elements(&response.raw_output_contents[0], 1).unwrap();
    owner.assert_matches_plan(&elements[0], &y, "gRPC");

    // Bad inputs: a CKKS ciphertext, a computed (expanded) ciphertext file,
    // one for another model's parameters, a truncated one, and the masks of
    // the ciphertext answered above under another body (its answer would
    // average the output flooding with the first).
    let computed = out.clone();
    let same_masks = {
        let (preset, fingerprint) = (owner.keyparams.preset, owner.model.key_fingerprint());
        let parsed =
            Ciphertexts::from_bytes(&ciphertext, Path::new("ct"), preset, &fingerprint).unwrap();
        let Ciphertexts::Seeded(seeded) = parsed else {
            panic!("a fresh encryption is seeded")
        };
        let mut bytes = seeded.to_bytes();
        let last = bytes.len() - 8;
        bytes[last] ^= 1;
        let moved = SeededLweVector::from_bytes(preset, &bytes).unwrap();
        assert_eq!(moved.seed(), seeded.seed());
        Ciphertexts::Seeded(moved).to_bytes(fingerprint)
    };
    let other_model = {
        let mut bad = ciphertext.clone();
        bad[10] ^= 1;
        bad
    };
    for (what, body, expected) in [
        (
            "a CKKS ciphertext",
            fx.encrypt(&x),
            "expected tfhe ciphertexts",
        ),
        ("a computed ciphertext", computed, "not a fresh encryption"),
        ("another fingerprint", other_model, "refused"),
        (
            "a truncated ciphertext",
            ciphertext[..ciphertext.len() / 2].to_vec(),
            "truncated",
        ),
        ("the same masks", same_masks, "masks were answered"),
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
