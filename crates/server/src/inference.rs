//! The CPU-heavy part: checking evaluation keys and running a plan on
//! ciphertexts (called from `spawn_blocking`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use heman_artifacts::{CiphertextFile, Container, EvaluationKeys, Kind};
use heman_ckks::Encryptor;
use heman_runtime::{flood_outputs, Executor};

use crate::error::{Result, ServerError};
use crate::keystore::KeyStore;
use crate::repository::LoadedModel;

/// Checks that `bytes` are evaluation keys for `model`'s parameters.
pub fn check_keys(model: &LoadedModel, bytes: &[u8]) -> Result<()> {
    let container = Container::from_bytes(bytes, Path::new("<request body>"))
        .map_err(|e| ServerError::BadRequest(format!("not heman evaluation keys: {e}")))?;
    if container.kind != Kind::EvaluationKeys {
        return Err(ServerError::BadRequest(format!(
            "the body is a {} file, expected evaluation keys (eval.keys)",
            container.kind.name()
        )));
    }
    if container.fingerprint != model.params.fingerprint() {
        return Err(ServerError::BadRequest(format!(
            "these evaluation keys are for other parameters than model '{}'; make keys from its keyparams",
            model.name
        )));
    }
    // Parse fully so that damaged keys are refused now, not at inference.
    parse_keys(model, bytes).map(|_| ())
}

/// Parses evaluation-key bytes for `model`.
fn parse_keys(model: &LoadedModel, bytes: &[u8]) -> Result<EvaluationKeys> {
    EvaluationKeys::from_bytes(bytes, Path::new("<evaluation keys>"), &model.params)
        .map_err(|e| ServerError::BadRequest(format!("evaluation keys refused: {e}")))
}

/// Parsed evaluation keys kept in memory, by (model, key id).
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<(String, String), Arc<EvaluationKeys>>>,
}

/// How many parsed key sets stay in memory.
const CACHE_ENTRIES: usize = 4;

impl KeyCache {
    /// The keys `key_id` for `model`, from memory or the store.
    pub fn get(
        &self,
        store: &dyn KeyStore,
        model: &LoadedModel,
        key_id: &str,
    ) -> Result<Arc<EvaluationKeys>> {
        let k = (model.name.clone(), key_id.to_string());
        if let Some(keys) = self.entries.lock().expect("cache lock").get(&k) {
            return Ok(keys.clone());
        }
        let bytes = store
            .get(key_id)
            .map_err(|e| ServerError::Internal(format!("key store: {e}")))?
            .ok_or_else(|| {
                ServerError::BadRequest(format!(
                    "unknown key_id '{key_id}': register evaluation keys with POST /v2/models/{}/keys first",
                    model.name
                ))
            })?;
        let container = Container::from_bytes(&bytes, Path::new("<key store>"))
            .map_err(|e| ServerError::Internal(format!("stored keys damaged: {e}")))?;
        if container.fingerprint != model.params.fingerprint() {
            return Err(ServerError::BadRequest(format!(
                "key_id '{key_id}' names evaluation keys for other parameters than model '{}'",
                model.name
            )));
        }
        let keys = Arc::new(parse_keys(model, &bytes)?);
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= CACHE_ENTRIES {
            if let Some(old) = entries.keys().next().cloned() {
                entries.remove(&old);
            }
        }
        entries.insert(k, keys.clone());
        Ok(keys)
    }
}

/// Runs `model` on one ciphertext file; returns the output ciphertext file.
pub fn infer(model: &LoadedModel, keys: &EvaluationKeys, input: &[u8]) -> Result<Vec<u8>> {
    let cts = CiphertextFile::from_bytes(input, Path::new("<input tensor>"), &model.params)
        .map_err(|e| ServerError::BadRequest(format!("input ciphertext refused: {e}")))?
        .ciphertexts;
    let executor = Executor::new(&model.params, &keys.relin, &keys.galois);
    let out = executor
        .run(&model.compiled.plan, cts, |_| {})
        .map_err(|e| ServerError::BadRequest(format!("inference failed: {e}")))?;
    // Outputs leave re-randomised and flooded (model-owner privacy).
    let encryptor = Encryptor::new(&model.params, &keys.public)
        .map_err(|e| ServerError::BadRequest(format!("public key refused: {e}")))?;
    let sigma = model.compiled.keyparams.output_flooding.sigma();
    let out = flood_outputs(&encryptor, out, sigma)
        .map_err(|e| ServerError::Internal(format!("output flooding failed: {e}")))?;
    Ok(CiphertextFile { ciphertexts: out }.to_bytes(&model.params))
}
