//! The targets. Each reads a selector byte where one format family has
//! several readers, repairs the digests its formats carry, and calls the
//! parsers the model owner, the data owner or the server run on bytes from
//! outside, under the fixed parameters in [`fixture`].

use std::path::Path;
use std::sync::OnceLock;

use bytes::Bytes;
use heman_ckks::{
    Ciphertext, CkksParameters, GaloisKeys, PublicKey, RelinearizationKey, SecretKey,
};
use heman_tfhe::Preset;

use crate::digests::repaired;

/// The file name in error messages.
const ORIGIN: &str = "fuzz-input";

/// The CKKS parameters every CKKS target reads under (N = 2^12, two
/// ciphertext primes, one special prime): what `regenerate_corpus` makes
/// its seeds with.
pub fn fixture() -> &'static CkksParameters {
    static PARAMS: OnceLock<CkksParameters> = OnceLock::new();
    PARAMS.get_or_init(|| CkksParameters::new(12, &[36, 30], &[36], 30).expect("fixed parameters"))
}

/// The TFHE preset and parameter fingerprint the TFHE seeds are made with.
pub const TFHE_PRESET: Preset = Preset::Message2Carry2;
/// See [`TFHE_PRESET`].
pub const TFHE_FINGERPRINT: [u8; 32] = [7; 32];

/// The selector byte and the rest, digests repaired.
fn split(data: &[u8]) -> Option<(u8, Vec<u8>)> {
    let (&selector, rest) = data.split_first()?;
    Some((selector, repaired(rest)))
}

/// heman-ckks objects: what `eval.keys` and ciphertext files hold.
pub fn ckks_object(data: &[u8]) {
    let Some((selector, body)) = split(data) else {
        return;
    };
    let params = fixture();
    let _ = match selector % 6 {
        0 => Ciphertext::from_bytes(params, &body).is_ok(),
        1 => PublicKey::from_bytes(params, &body).is_ok(),
        2 => RelinearizationKey::from_bytes(params, &body).is_ok(),
        3 => GaloisKeys::from_bytes(params, &body).is_ok(),
        4 => CkksParameters::from_bytes(&body).is_ok(),
        _ => SecretKey::from_bytes(params, &body).is_ok(),
    };
}

/// heman artifact containers as the model owner reads a data owner's files
/// (CKKS ciphertexts, evaluation keys) and the data owner reads outputs.
pub fn container(data: &[u8]) {
    let Some((selector, body)) = split(data) else {
        return;
    };
    let (params, origin) = (fixture(), Path::new(ORIGIN));
    let _ = match selector % 3 {
        0 => heman_artifacts::Container::from_bytes(&body, origin).is_ok(),
        1 => heman_artifacts::ckks::Ciphertexts::from_bytes(&body, origin, params).is_ok(),
        _ => heman_artifacts::ckks::EvaluationKeys::from_bytes(&body, origin, params).is_ok(),
    };
}

/// TFHE ciphertext files (seeded and expanded), the output public key and
/// evaluation key files.
pub fn tfhe_object(data: &[u8]) {
    let Some((selector, body)) = split(data) else {
        return;
    };
    let origin = Path::new(ORIGIN);
    let _ = match selector % 3 {
        0 => heman_artifacts::tfhe::Ciphertexts::from_bytes(
            &body,
            origin,
            TFHE_PRESET,
            &TFHE_FINGERPRINT,
        )
        .map(|c| drop(c.into_expanded()))
        .is_ok(),
        1 => heman_tfhe::OutputPublicKey::from_bytes(TFHE_PRESET, &body).is_ok(),
        _ => heman_artifacts::tfhe::evaluation_keys_from_bytes(
            &body,
            origin,
            TFHE_PRESET,
            &TFHE_FINGERPRINT,
        )
        .is_ok(),
    };
}

/// `keyparams.json` of either backend, as a data owner reads the model
/// owner's, with the checks that follow reading it.
pub fn keyparams(data: &[u8]) {
    let Some((selector, body)) = split(data) else {
        return;
    };
    let origin = Path::new(ORIGIN);
    if selector % 2 == 0 {
        if let Ok(kp) = heman_artifacts::ckks::KeyParams::from_json(&body, origin) {
            let _ = kp.ckks_parameters(origin);
        }
    } else if let Ok(kp) = heman_artifacts::tfhe::KeyParams::from_json(&body, origin) {
        let _ = kp.fingerprint(origin);
    }
}

/// `.npy` inputs.
pub fn npy(data: &[u8]) {
    let _ = heman_model::io::npy::parse_npy(data, Path::new(ORIGIN));
}

/// ONNX models.
pub fn onnx(data: &[u8]) {
    let _ = heman_model::onnx::import_onnx(data, Path::new(ORIGIN));
}

/// An HTTP inference request: 4 bytes give the
/// `Inference-Header-Content-Length` (all ones: no such header), the rest
/// is the body.
pub fn http_request(data: &[u8]) {
    let Some((length, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let length = u32::from_le_bytes(*length);
    let header = (length != u32::MAX).then(|| length.to_string());
    let _ =
        heman_server::http::parse_infer("model", header.as_deref(), &Bytes::copy_from_slice(body));
}

/// A gRPC `ModelInfer` request's protobuf bytes.
pub fn grpc_request(data: &[u8]) {
    use prost::Message;
    let Ok(r) = heman_server::grpc::inference::ModelInferRequest::decode(data) else {
        return;
    };
    let _ = heman_server::grpc::parse_infer(
        "model",
        r.parameters,
        r.inputs,
        r.outputs,
        r.raw_input_contents,
    );
}
