//! The data owner's side of a TFHE model: the client key and the compressed
//! server key, inputs quantised and encrypted (seeded), outputs decrypted
//! and dequantised.

use std::path::Path;

use heman_artifacts::tfhe::{
    evaluation_keys_to_bytes, secret_key_from_bytes, secret_key_to_bytes, Ciphertexts, KeyParams,
};
use heman_compiler::graph::split_outputs;
use heman_model::Tensor;
use heman_runtime::tfhe::{decrypt_output, encrypt_input};
use heman_tfhe::ClientKey;
use zeroize::Zeroizing;

use crate::error::{BackendError, Result};
use crate::input::{fit_input, output_infos};
use crate::interface::{DataOwner, DecryptionNoise, KeyFiles, TensorInfo};
use crate::progress::Progress;

/// Makes the client key (the secret) and the compressed server key with the
/// output public key (the evaluation keys).
pub fn keygen(keyparams: &[u8], origin: &Path, progress: &dyn Progress) -> Result<KeyFiles> {
    let keyparams = KeyParams::from_json(keyparams, origin)?;
    let fingerprint = keyparams.fingerprint(origin)?;
    progress.start("keygen", Some(2));
    let client = ClientKey::generate(keyparams.preset);
    progress.advance(1);
    let server = client.compressed_server_key();
    progress.finish();
    Ok(KeyFiles {
        secret: Zeroizing::new(secret_key_to_bytes(fingerprint, &client)),
        evaluation: evaluation_keys_to_bytes(fingerprint, &server),
        public: None,
    })
}

/// The data owner of a TFHE model: keyparams, their fingerprint and the
/// client key.
pub struct TfheDataOwner {
    keyparams: KeyParams,
    fingerprint: [u8; 32],
    client: ClientKey,
    input: TensorInfo,
    outputs: Vec<TensorInfo>,
}

/// Opens the data owner's side from keyparams and secret key bytes.
pub fn open(keyparams: &[u8], secret_key: &[u8], origin: &Path) -> Result<TfheDataOwner> {
    let keyparams = KeyParams::from_json(keyparams, origin)?;
    let fingerprint = keyparams.fingerprint(origin)?;
    let client = secret_key_from_bytes(secret_key, origin, keyparams.preset, &fingerprint)?;
    Ok(TfheDataOwner {
        input: super::tensor_info(&keyparams),
        outputs: output_infos(&keyparams.outputs, keyparams.output.calibrated_range),
        keyparams,
        fingerprint,
        client,
    })
}

impl DataOwner for TfheDataOwner {
    fn input(&self) -> &TensorInfo {
        &self.input
    }

    fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    /// Quantises and encrypts (seeded form).
    fn encrypt(&self, x: &Tensor, origin: &str) -> Result<Vec<u8>> {
        let x = fit_input(x, &self.input, origin)?;
        let cts = encrypt_input(&self.keyparams.input.quantisation, &self.client, &x)
            .map_err(|e| BackendError::Refused(format!("{origin}: {e}")))?;
        Ok(Ciphertexts::Seeded(cts).to_bytes(self.fingerprint))
    }

    /// Decrypts an inference output; fresh (input) ciphertexts are refused.
    fn decrypt(&self, output: &[u8], origin: &Path) -> Result<Vec<Tensor>> {
        // The answer comes from the model owner: a damaged one is refused.
        let cts = Ciphertexts::from_bytes(output, origin, self.keyparams.preset, &self.fingerprint)
            .map_err(crate::error::refused("output ciphertext"))?;
        let Ciphertexts::Expanded(cts) = cts else {
            return Err(crate::error::not_an_output(origin));
        };
        let raw = decrypt_output(&self.keyparams.output.quantisation, &self.client, &cts)
            .map_err(|e| BackendError::Refused(format!("{}: {e}", origin.display())))?;
        Ok(split_outputs(&raw, &self.keyparams.outputs))
    }

    /// TFHE decryption rounds the error away: the result carries none, and
    /// nothing is added.
    fn decrypt_for_release(
        &self,
        output: &[u8],
        origin: &Path,
        _: DecryptionNoise,
    ) -> Result<(Vec<Tensor>, String)> {
        Ok(crate::interface::released_unchanged(
            self.decrypt(output, origin)?,
            "TFHE decryption rounds its error away: the result carries no key-dependent error",
        ))
    }
}
