//! The seeds every fuzz run starts from: real files of each format, made
//! here with the parameters the targets read under. Run to regenerate
//! `corpus/` after a format changes:
//! `HEMAN_FUZZ_REGENERATE=1 cargo test --release -p heman-fuzz --test corpus
//! -- --ignored` (CI runs ignored tests without the variable: it then only
//! checks every target has seeds).

use std::path::Path;

use heman_artifacts::ckks::{Ciphertexts, EvaluationKeys};
use heman_backend::{registry, CompileOptions, ModelSource, Silent};
use heman_ckks::{Decryptor, Encoder, KeyGenerator};
use heman_fuzz::corpus_dir;
use heman_testkit::repo_root;

/// Writes `bytes`, prefixed by `selector` when there is one, as seed `name`.
fn seed(target: &str, name: &str, selector: Option<u8>, bytes: &[u8]) {
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    let mut out = selector.map(|s| vec![s]).unwrap_or_default();
    out.extend_from_slice(bytes);
    std::fs::write(dir.join(name), out).unwrap();
}

fn ckks_seeds() -> Vec<u8> {
    let params = heman_fuzz::fixture();
    let mut keygen = KeyGenerator::new(params).unwrap();
    let sk = keygen.gen_secret_key();
    let pk = keygen.gen_public_key(&sk).unwrap();
    let relin = keygen.gen_relin_key(&sk).unwrap();
    let galois = keygen.gen_galois_keys(&sk, &[1, 2], false).unwrap();
    let encoder = Encoder::new(params);
    let pt = encoder
        .encode(
            &[0.5, -1.0, 2.0],
            params.max_level(),
            params.default_scale(),
        )
        .unwrap();
    let ct = Decryptor::new(params, &sk)
        .unwrap()
        .encrypt_symmetric(&pt)
        .unwrap();
    seed(
        "ckks_object",
        "ciphertext-seeded",
        Some(0),
        &ct.to_bytes_seeded(params).unwrap(),
    );
    seed(
        "ckks_object",
        "ciphertext-full",
        Some(0),
        &ct.to_bytes(params),
    );
    seed("ckks_object", "public-key", Some(1), &pk.to_bytes(params));
    seed(
        "ckks_object",
        "relinearisation-key",
        Some(2),
        &relin.to_bytes(params),
    );
    seed(
        "ckks_object",
        "galois-keys",
        Some(3),
        &galois.to_bytes(params),
    );
    seed("ckks_object", "parameters", Some(4), &params.to_bytes());
    seed("ckks_object", "secret-key", Some(5), &sk.to_bytes(params));
    let cts = Ciphertexts {
        ciphertexts: vec![ct.clone(), ct],
        batch: None,
    }
    .to_bytes(params);
    let keys = EvaluationKeys {
        relin,
        galois,
        public: pk,
        encapsulation: None,
    }
    .to_bytes(params);
    seed("container", "container", Some(0), &cts);
    seed("container", "ciphertexts", Some(1), &cts);
    seed("container", "evaluation-keys", Some(2), &keys);
    cts
}

fn tfhe_seeds() {
    use heman_fuzz::{TFHE_FINGERPRINT, TFHE_PRESET};
    let client = heman_tfhe::ClientKey::generate(TFHE_PRESET);
    let values: Vec<u64> = (0..4u64).map(|i| i << 60).collect();
    let seeded = client.encrypt(&values, heman_tfhe::KeyChoice::Big);
    let expanded = heman_artifacts::tfhe::Ciphertexts::Expanded(seeded.expand());
    let seeded = heman_artifacts::tfhe::Ciphertexts::Seeded(seeded);
    seed(
        "tfhe_object",
        "seeded",
        Some(0),
        &seeded.to_bytes(TFHE_FINGERPRINT),
    );
    seed(
        "tfhe_object",
        "expanded",
        Some(0),
        &expanded.to_bytes(TFHE_FINGERPRINT),
    );
    let output = heman_tfhe::OutputPublicKey::generate(&client);
    seed(
        "tfhe_object",
        "output-public-key",
        Some(1),
        &output.to_bytes(),
    );
}

/// keyparams.json of both backends, compiled through the seam as
/// `heman keyparams` does.
fn keyparams_seeds() {
    let root = repo_root();
    let compile = |backend: &str, model: &Path, calibration: &Path, options: CompileOptions| {
        let source = ModelSource::load(model, calibration, &Silent).unwrap();
        registry::by_name(backend)
            .unwrap()
            .compile(&source, &options, &Silent)
            .unwrap()
            .keyparams
    };
    let digits = root.join("examples/digits");
    let ckks = compile(
        "ckks",
        &digits.join("digits_square.onnx"),
        &digits.join("calibration.npz"),
        CompileOptions::default(),
    );
    seed("keyparams", "ckks", Some(0), ckks.as_bytes());
    let calibration = tempfile::tempdir().unwrap();
    std::fs::copy(
        root.join("tests/models/relu.input.npy"),
        calibration.path().join("0.npy"),
    )
    .unwrap();
    let tfhe = compile(
        "tfhe",
        &root.join("tests/models/relu.onnx"),
        calibration.path(),
        CompileOptions {
            exact: true,
            ..CompileOptions::default()
        },
    );
    seed("keyparams", "tfhe", Some(1), tfhe.as_bytes());
}

/// Files of the repository: `.npy` inputs (good and damaged) and ONNX models.
fn file_seeds() {
    let root = repo_root();
    for (target, files) in [
        (
            "npy",
            &[
                "examples/digits/input.npy",
                "tests/models/relu.input.npy",
                "tests/models/bad/wrong_shape.input.npy",
                "tests/models/bad/nan.input.npy",
            ][..],
        ),
        (
            "onnx",
            &[
                "tests/models/relu.onnx",
                "tests/models/add_broadcast_two_branches.onnx",
                "examples/digits/digits_square.onnx",
            ][..],
        ),
    ] {
        for file in files {
            let name = Path::new(file).file_name().unwrap().to_str().unwrap();
            seed(target, name, None, &std::fs::read(root.join(file)).unwrap());
        }
    }
}

/// An HTTP body in binary mode (4-byte header length first, as the target
/// reads it) and in JSON mode, and the gRPC request, each carrying
/// `ciphertext`.
fn request_seeds(ciphertext: &[u8]) {
    use heman_server::grpc::inference::{model_infer_request, InferParameter, ModelInferRequest};
    use prost::Message;
    let tensor = heman_server::binary::encode_bytes_elements(&[ciphertext]);
    let json = format!(
        r#"{{"id":"r1","parameters":{{"key_id":"{}"}},"inputs":[{{"name":"ciphertext","datatype":"BYTES","shape":[1],"parameters":{{"binary_data_size":{}}}}}],"outputs":[{{"name":"ciphertext","parameters":{{"binary_data":true}}}}]}}"#,
        "a".repeat(64),
        tensor.len()
    );
    let mut binary = (json.len() as u32).to_le_bytes().to_vec();
    binary.extend_from_slice(json.as_bytes());
    binary.extend_from_slice(&tensor);
    seed("http_request", "binary", None, &binary);
    let json_mode = r#"{"parameters":{"key_id":"k"},"inputs":[{"name":"ciphertext","datatype":"BYTES","shape":[1],"data":["abc"]}]}"#;
    let mut json_only = u32::MAX.to_le_bytes().to_vec();
    json_only.extend_from_slice(json_mode.as_bytes());
    seed("http_request", "json", None, &json_only);

    let request = ModelInferRequest {
        model_name: "model".into(),
        id: "r1".into(),
        parameters: [(
            "key_id".to_string(),
            InferParameter {
                parameter_choice: Some(
                    heman_server::grpc::inference::infer_parameter::ParameterChoice::StringParam(
                        "a".repeat(64),
                    ),
                ),
            },
        )]
        .into(),
        inputs: vec![model_infer_request::InferInputTensor {
            name: "ciphertext".into(),
            datatype: "BYTES".into(),
            shape: vec![1],
            ..Default::default()
        }],
        raw_input_contents: vec![tensor.into()],
        ..Default::default()
    };
    seed("grpc_request", "raw", None, &request.encode_to_vec());
}

#[test]
#[ignore = "writes crates/fuzz/corpus: run after a format changes"]
fn regenerate_corpus() {
    if std::env::var_os("HEMAN_FUZZ_REGENERATE").is_none() {
        for target in heman_fuzz::TARGETS {
            let seeds = heman_fuzz::mutation::seeds(&corpus_dir(target.name));
            assert!(!seeds.is_empty(), "{}: no corpus", target.name);
        }
        println!("corpus kept: set HEMAN_FUZZ_REGENERATE=1 to rewrite it");
        return;
    }
    let ciphertexts = ckks_seeds();
    tfhe_seeds();
    keyparams_seeds();
    file_seeds();
    request_seeds(&ciphertexts);
}
