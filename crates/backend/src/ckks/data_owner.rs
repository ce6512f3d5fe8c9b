//! The data owner's side of a CKKS model: keys for exactly the rotations the
//! plan uses, encryption into the input layout, decryption from the output
//! layout.

use std::path::Path;

use heman_artifacts::ckks::{
    public_key_to_bytes, secret_key_from_bytes, secret_key_to_bytes, Ciphertexts, EvaluationKeys,
    KeyParams,
};
use heman_ckks::{CkksParameters, Decryptor, KeyGenerator};
use heman_compiler::ckks::Packing;
use heman_compiler::graph::split_outputs;
use heman_model::Tensor;
use heman_runtime::ckks::{
    decrypt_batch, decrypt_tensor, decrypt_tensor_for_release, encrypt_batch, encrypt_tensor_at,
    InputKey,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{BackendError, Result};
use crate::input::{fit_input, output_infos, split_batch, stack_batch};
use crate::interface::{DataOwner, DecryptionNoise, KeyFiles, TensorInfo};
use crate::progress::Progress;

fn ckks_error(e: heman_ckks::CkksError) -> BackendError {
    BackendError::Internal(format!("CKKS: {e}"))
}

/// Makes a secret key, a public key and evaluation keys for exactly the
/// rotations the plan uses.
pub fn keygen(keyparams: &[u8], origin: &Path, progress: &dyn Progress) -> Result<KeyFiles> {
    let keyparams = KeyParams::from_json(keyparams, origin)?;
    let params = keyparams.ckks_parameters(origin)?;
    progress.start("keygen", Some(3));
    let mut generator = KeyGenerator::new(&params).map_err(ckks_error)?;
    let secret = generator.gen_secret_key();
    let public = generator.gen_public_key(&secret).map_err(ckks_error)?;
    let relin = generator.gen_relin_key(&secret).map_err(ckks_error)?;
    progress.advance(1);
    let steps: Vec<i64> = keyparams.rotation_steps.iter().map(|&s| s as i64).collect();
    let circuit = keyparams.bootstrapping.map(|b| b.circuit());
    let galois = generator
        .gen_galois_keys(&secret, &steps, circuit.is_some())
        .map_err(ckks_error)?;
    let encapsulation = match circuit.and_then(|c| c.ephemeral_weight) {
        Some(weight) => Some(
            generator
                .gen_encapsulation_keys(&secret, weight)
                .map_err(ckks_error)?,
        ),
        None => None,
    };
    progress.advance(1);
    let evaluation = EvaluationKeys {
        relin,
        galois,
        public: public.clone(),
        encapsulation,
    }
    .to_bytes(&params);
    let files = KeyFiles {
        secret: Zeroizing::new(secret_key_to_bytes(&params, &secret)),
        evaluation,
        public: Some(public_key_to_bytes(&params, &public)),
    };
    progress.finish();
    Ok(files)
}

/// The data owner of a CKKS model: keyparams, parameters and the secret key
/// (as a decryptor).
pub struct CkksDataOwner {
    keyparams: KeyParams,
    params: CkksParameters,
    decryptor: Decryptor,
    input: TensorInfo,
    outputs: Vec<TensorInfo>,
    /// Derived from the secret key: seeds the decrypt-side noise of each
    /// released output, so that one ciphertext always gets the same noise.
    noise_key: Zeroizing<[u8; 32]>,
}

/// Opens the data owner's side from keyparams and secret key bytes.
pub fn open(keyparams: &[u8], secret_key: &[u8], origin: &Path) -> Result<CkksDataOwner> {
    let keyparams = KeyParams::from_json(keyparams, origin)?;
    let params = keyparams.ckks_parameters(origin)?;
    let secret = secret_key_from_bytes(secret_key, origin, &params)?;
    let decryptor = Decryptor::new(&params, &secret).map_err(ckks_error)?;
    let noise_key = {
        let mut h = Sha256::new();
        h.update(b"heman decryption noise key\0");
        h.update(secret_key);
        Zeroizing::new(h.finalize().into())
    };
    Ok(CkksDataOwner {
        input: super::tensor_info(&keyparams.input),
        outputs: output_infos(&keyparams.outputs, keyparams.output.calibrated_range),
        keyparams,
        params,
        decryptor,
        noise_key,
    })
}

impl DataOwner for CkksDataOwner {
    fn input(&self) -> &TensorInfo {
        &self.input
    }

    fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    /// Encrypts with the secret key: the noise of a fresh sample instead of
    /// public-key encryption's, and a seeded ciphertext half the size.
    fn max_batch(&self) -> Option<usize> {
        (self.keyparams.packing == Packing::Throughput).then_some(self.keyparams.slots)
    }

    fn encrypt(&self, x: &Tensor, origin: &str) -> Result<Vec<u8>> {
        let (key, layout) = (
            InputKey::Secret(&self.decryptor),
            &self.keyparams.input.layout,
        );
        let level = self.keyparams.input_level(&self.params);
        let (cts, batch) = match self.max_batch() {
            Some(max) => {
                let batch = split_batch(x, &self.input, max, origin)?;
                let cts = encrypt_batch(&self.params, key, layout, &batch, level);
                (cts, Some(batch.len()))
            }
            None => {
                let x = fit_input(x, &self.input, origin).map_err(|e| latency_hint(x, e))?;
                (
                    encrypt_tensor_at(&self.params, key, layout, &x, level),
                    None,
                )
            }
        };
        let ciphertexts = cts.map_err(crate::error::runtime_error)?;
        Ok(Ciphertexts { ciphertexts, batch }.to_bytes(&self.params))
    }

    /// Decrypts an inference output; fresh (input) ciphertexts, recognised
    /// by their seed, are refused.
    fn decrypt(&self, output: &[u8], origin: &Path) -> Result<Vec<Tensor>> {
        let (cts, batch) = self.output_ciphertexts(output, origin)?;
        let spec = &self.keyparams.output;
        let refused = |e| BackendError::Refused(format!("{}: {e}", origin.display()));
        let Some(batch) = batch else {
            let raw = decrypt_tensor(
                &self.params,
                &self.decryptor,
                &spec.layout,
                &spec.shape,
                &cts,
            )
            .map_err(refused)?;
            return Ok(split_outputs(&raw, &self.keyparams.outputs));
        };
        let items = decrypt_batch(
            &self.params,
            &self.decryptor,
            &spec.layout,
            &spec.shape,
            &cts,
            batch,
        )
        .map_err(refused)?;
        Ok(stack_batch(
            items
                .iter()
                .map(|raw| split_outputs(raw, &self.keyparams.outputs))
                .collect(),
        ))
    }

    fn decrypt_for_release(
        &self,
        output: &[u8],
        origin: &Path,
        noise: DecryptionNoise,
    ) -> Result<(Vec<Tensor>, String)> {
        let (cts, batch) = self.output_ciphertexts(output, origin)?;
        if batch.is_some() {
            return Err(BackendError::Refused(format!(
                "{}: decryption noise for a throughput batch is not implemented; decrypt it without --decryption-noise",
                origin.display()
            )));
        }
        let seed = {
            let mut h = Sha256::new();
            h.update(b"heman decryption noise\0");
            h.update(*self.noise_key);
            h.update(output);
            h.finalize().into()
        };
        let spec = &self.keyparams.output;
        let (raw, added) = decrypt_tensor_for_release(
            &self.params,
            &self.decryptor,
            (&spec.layout, &spec.shape),
            &cts,
            noise.factor_log2,
            seed,
        )
        .map_err(|e| BackendError::Refused(format!("{}: {e}", origin.display())))?;
        let line = format!(
            "decryption noise: estimated error {:.2e} per value, Gaussian of {:.2e} added (2^{} times)",
            added.estimated_error, added.added, noise.factor_log2
        );
        Ok((split_outputs(&raw, &self.keyparams.outputs), line))
    }
}

impl CkksDataOwner {
    /// The ciphertexts of an output file and the batch they hold; fresh
    /// (input) ciphertexts, recognised by their seed, are refused, and so
    /// is a packing other than the model's.
    fn output_ciphertexts(
        &self,
        output: &[u8],
        origin: &Path,
    ) -> Result<(Vec<heman_ckks::Ciphertext>, Option<usize>)> {
        // The answer comes from the model owner: a damaged one is refused,
        // as the model owner refuses a damaged input.
        let file = Ciphertexts::from_bytes(output, origin, &self.params)
            .map_err(crate::error::refused("output ciphertext"))?;
        if file.ciphertexts.iter().any(|ct| ct.is_seeded()) {
            return Err(crate::error::not_an_output(origin));
        }
        super::check_packing(self.keyparams.packing, file.batch, origin)?;
        Ok((file.ciphertexts, file.batch))
    }
}

/// A latency model's refusal of a batch, saying how to compile for one.
fn latency_hint(x: &Tensor, e: BackendError) -> BackendError {
    if x.shape().first().is_some_and(|&b| b > 1) {
        e.context("the model is compiled for latency packing, one input per ciphertext file; a batch [B, ...] needs keyparams --packing throughput")
    } else {
        e
    }
}
