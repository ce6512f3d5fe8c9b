//! The CPU-heavy part: checking and parsing evaluation keys, and running a
//! model on ciphertexts. Everything here is synchronous and is called from
//! `spawn_blocking` under an inference permit (see [`crate::service`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use heman_artifacts::tfhe::{server_key_from_bytes, TfheCiphertexts, TfheCompiledModel};
use heman_artifacts::{CiphertextFile, Container, EvaluationKeys};
use heman_ckks::keys::galois_element_for_step;
use heman_ckks::{CkksParameters, Encryptor};
use heman_runtime::tfhe::TfheExecutor;
use heman_runtime::{flood_outputs, Executor, RuntimeError};
use heman_tfhe::ServerKey;
use tokio::sync::OnceCell;

use crate::error::{Result, ServerError};
use crate::keystore::KeyStore;
use crate::repository::{Backend, LoadedModel, PreparedModel};

const INPUT_PATH: &str = "<input tensor>";
const KEYS_PATH: &str = "<evaluation keys>";

/// Parsed evaluation keys, of the model's backend.
pub enum ModelKeys {
    /// Relinearisation, rotation and public keys.
    Ckks(EvaluationKeys),
    /// The expanded server key (with the output public key).
    Tfhe(ServerKey),
}

/// The one call from the server into encrypted inference: the bytes of a
/// ciphertext file in, the bytes of the output ciphertext file out. Whatever
/// the model owner does to outputs before they leave (re-randomisation,
/// flooding) belongs here, so that every protocol gets it.
pub fn run(model: &LoadedModel, keys: &ModelKeys, input: &[u8]) -> Result<Vec<u8>> {
    match (&model.backend, keys) {
        (Backend::Ckks { model, params }, ModelKeys::Ckks(keys)) => {
            run_ckks(model, params, keys, input)
        }
        (Backend::Tfhe { model, fingerprint }, ModelKeys::Tfhe(key)) => {
            run_tfhe(model, fingerprint, key, input)
        }
        _ => Err(ServerError::Internal(format!(
            "keys of another backend than model '{}'",
            model.name
        ))),
    }
}

fn inference_error(e: RuntimeError) -> ServerError {
    match e {
        RuntimeError::Input(_) => {
            ServerError::BadRequest(format!("inference failed on this input: {e}"))
        }
        e => ServerError::Internal(format!("inference: {e}")),
    }
}

fn run_ckks(
    model: &PreparedModel,
    params: &CkksParameters,
    keys: &EvaluationKeys,
    input: &[u8],
) -> Result<Vec<u8>> {
    let cts = CiphertextFile::from_bytes(input, Path::new(INPUT_PATH), params)
        .map_err(|e| ServerError::BadRequest(format!("input ciphertext refused: {e}")))?
        .ciphertexts;
    // The plan's scale management assumes fresh encryptions; anything else
    // (a ciphertext computed on, or with a forged header) is refused here
    // rather than producing garbage deep inside the executor.
    let (level, scale) = (params.max_level(), params.default_scale());
    if let Some((i, ct)) = cts.iter().enumerate().find(|(_, ct)| {
        ct.degree() != 1 || ct.level() != level || (ct.scale() / scale - 1.0).abs() > 1e-9
    }) {
        return Err(ServerError::BadRequest(format!(
            "input ciphertext {i} is not a fresh encryption (degree {}, level {}, scale 2^{:.2}; expected degree 1, level {level}, scale 2^{:.2})",
            ct.degree(),
            ct.level(),
            ct.scale().log2(),
            scale.log2()
        )));
    }
    let executor = Executor::new(params, &keys.relin, &keys.galois);
    let out = executor
        .run_prepared(model.borrow_dependent(), cts, |_| {})
        .map_err(|e| match e {
            RuntimeError::Unsupported { .. } => ServerError::Internal(format!("inference: {e}")),
            _ => ServerError::BadRequest(format!("inference failed on this input: {e}")),
        })?;
    // Outputs leave re-randomised and flooded (model-owner privacy: their
    // noise says nothing of the weights), with the data owner's public key
    // from the evaluation keys.
    let encryptor = Encryptor::new(params, &keys.public)
        .map_err(|e| ServerError::BadRequest(format!("public key refused: {e}")))?;
    let sigma = model.borrow_owner().keyparams.output_flooding.sigma();
    let out = flood_outputs(&encryptor, out, sigma)
        .map_err(|e| ServerError::Internal(format!("output flooding failed: {e}")))?;
    Ok(CiphertextFile { ciphertexts: out }.to_bytes(params))
}

fn run_tfhe(
    model: &TfheCompiledModel,
    fingerprint: &[u8; 32],
    key: &ServerKey,
    input: &[u8],
) -> Result<Vec<u8>> {
    let refused = |e: String| ServerError::BadRequest(format!("input ciphertext refused: {e}"));
    let cts = TfheCiphertexts::from_bytes(
        input,
        Path::new(INPUT_PATH),
        model.keyparams.preset,
        fingerprint,
    )
    .map_err(|e| refused(e.to_string()))?;
    // Only fresh encryptions (the seeded form `heman encrypt` writes):
    // the plan's noise budget starts from a fresh encryption's noise.
    let TfheCiphertexts::Seeded(seeded) = cts else {
        return Err(refused(
            "not a fresh encryption (expected the seeded form `heman encrypt` writes)".into(),
        ));
    };
    // The executor re-randomises and floods the outputs before they leave.
    let (out, _) = TfheExecutor::new(key, &model.plan)
        .and_then(|executor| executor.run(seeded.expand(), |_| {}))
        .map_err(inference_error)?;
    Ok(TfheCiphertexts::Expanded(out).to_bytes(*fingerprint))
}

/// Checks the container of key bytes (kind and parameters) without parsing
/// the keys: cheap, so bad bodies are refused before any heavy work.
pub fn check_key_header(model: &LoadedModel, bytes: &[u8]) -> Result<()> {
    let container = Container::from_bytes(bytes, Path::new(KEYS_PATH))
        .map_err(|e| ServerError::BadRequest(format!("not heman evaluation keys: {e}")))?;
    let expected = model.key_kind();
    if container.kind != expected {
        return Err(ServerError::BadRequest(format!(
            "the body is a {} file, expected {} (eval.keys) for model '{}'",
            container.kind.name(),
            expected.name(),
            model.name
        )));
    }
    if container.fingerprint != model.key_fingerprint() {
        return Err(ServerError::BadRequest(format!(
            "these evaluation keys are for other parameters than model '{}'; make keys from its keyparams",
            model.name
        )));
    }
    Ok(())
}

/// Parses evaluation-key bytes for `model` (header checked first); a TFHE
/// server key is expanded (its masks regenerated, its bootstrapping key
/// moved to the Fourier domain).
pub fn parse_keys(model: &LoadedModel, bytes: &[u8]) -> Result<ModelKeys> {
    check_key_header(model, bytes)?;
    let refused = |e: heman_artifacts::ArtifactError| {
        ServerError::BadRequest(format!("evaluation keys refused: {e}"))
    };
    let path = Path::new(KEYS_PATH);
    match &model.backend {
        Backend::Ckks { params, .. } => EvaluationKeys::from_bytes(bytes, path, params)
            .map(ModelKeys::Ckks)
            .map_err(refused),
        Backend::Tfhe { model, fingerprint } => {
            server_key_from_bytes(bytes, path, model.keyparams.preset, fingerprint)
                .map(|key| ModelKeys::Tfhe(key.expand()))
                .map_err(refused)
        }
    }
}

/// Checks that `keys` hold every rotation the model's plan performs: keys
/// made for another model with the same parameters may lack some. (A TFHE
/// server key serves every plan of its preset.)
pub fn check_rotations(model: &LoadedModel, keys: &ModelKeys) -> Result<()> {
    let (Backend::Ckks { model: m, params }, ModelKeys::Ckks(keys)) = (&model.backend, keys) else {
        return Ok(());
    };
    let n = params.n();
    let missing: Vec<usize> = m
        .borrow_owner()
        .keyparams
        .rotation_steps
        .iter()
        .copied()
        .filter(|&s| !keys.galois.contains(galois_element_for_step(s as i64, n)))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ServerError::BadRequest(format!(
            "these evaluation keys lack the rotation keys for steps {missing:?} that model '{}' uses; make keys from its keyparams",
            model.name
        )))
    }
}

/// Cache key: parameter fingerprint and key id (parsed keys depend on the
/// parameters only, so models sharing parameters share entries).
type CacheKey = ([u8; 32], String);

/// A slot filled once with parsed keys, by whichever request gets there first.
type CacheCell = Arc<OnceCell<Arc<ModelKeys>>>;

/// Parsed evaluation keys kept in memory, least recently used evicted first.
/// Concurrent requests for the same uncached keys wait for one parse.
pub struct KeyCache {
    capacity: usize,
    entries: Mutex<CacheEntries>,
}

#[derive(Default)]
struct CacheEntries {
    clock: u64,
    /// Last use (a tick of `clock`) and the cell, by key.
    map: HashMap<CacheKey, (u64, CacheCell)>,
}

impl KeyCache {
    /// A cache of at most `capacity` parsed key sets (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::default(),
        }
    }

    fn cell(&self, key: CacheKey) -> CacheCell {
        let mut entries = self.entries.lock().expect("key cache lock");
        entries.clock += 1;
        let now = entries.clock;
        if let Some((used, cell)) = entries.map.get_mut(&key) {
            *used = now;
            return cell.clone();
        }
        if entries.map.len() >= self.capacity {
            let oldest = entries
                .map
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                entries.map.remove(&k);
            }
        }
        let cell = Arc::new(OnceCell::new());
        entries.map.insert(key, (now, cell.clone()));
        cell
    }

    /// Puts keys just parsed at registration, so the first inference with
    /// them does not parse them again.
    pub fn insert(&self, model: &LoadedModel, key_id: &str, keys: Arc<ModelKeys>) {
        let _ = self
            .cell((model.key_fingerprint(), key_id.to_string()))
            .set(keys);
    }

    /// The keys `key_id` for `model`, from memory or from `store` (parsed on
    /// a blocking thread). Checks they hold the model's rotations.
    pub async fn get(
        &self,
        store: &dyn KeyStore,
        model: &Arc<LoadedModel>,
        key_id: &str,
    ) -> Result<Arc<ModelKeys>> {
        let key = (model.key_fingerprint(), key_id.to_string());
        let cell = self.cell(key.clone());
        let keys = cell
            .get_or_try_init(|| async {
                let bytes = load(store, model, key_id).await?;
                let m = model.clone();
                let keys = tokio::task::spawn_blocking(move || parse_keys(&m, &bytes))
                    .await
                    .map_err(|e| ServerError::Internal(format!("parsing keys panicked: {e}")))?
                    .map_err(|e| match e {
                        // Stored keys passed these checks at registration.
                        ServerError::BadRequest(m) => {
                            ServerError::Internal(format!("stored keys '{key_id}' damaged: {m}"))
                        }
                        e => e,
                    })?;
                Ok::<_, ServerError>(Arc::new(keys))
            })
            .await;
        let keys = match keys {
            Ok(keys) => keys.clone(),
            Err(e) => {
                // Unknown ids must not take places in the cache: a client
                // sending made-up ids would otherwise evict real keys.
                self.forget_empty(&key);
                return Err(e);
            }
        };
        check_rotations(model, &keys)?;
        Ok(keys)
    }

    /// Drops the entry of `key` if it holds no keys.
    fn forget_empty(&self, key: &CacheKey) {
        let mut entries = self.entries.lock().expect("key cache lock");
        if entries
            .map
            .get(key)
            .is_some_and(|(_, cell)| !cell.initialized())
        {
            entries.map.remove(key);
        }
    }

    /// How many key sets are cached (or being loaded).
    pub fn len(&self) -> usize {
        self.entries.lock().expect("key cache lock").map.len()
    }

    /// Whether no key set is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The stored bytes of `key_id`, refused early when they belong to other
/// parameters than `model`'s.
async fn load(store: &dyn KeyStore, model: &LoadedModel, key_id: &str) -> Result<Bytes> {
    let unknown = || {
        ServerError::UnknownKey(format!(
            "unknown key_id '{key_id}': register evaluation keys for model '{}' first (POST /v2/models/{}/keys, or heman.KeyService/RegisterKeys over gRPC)",
            model.name, model.name
        ))
    };
    if !crate::keystore::valid_id(key_id) {
        return Err(unknown());
    }
    let bytes = store
        .get(key_id)
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))?
        .ok_or_else(unknown)?;
    let container = Container::from_bytes(&bytes, Path::new("<key store>"))
        .map_err(|e| ServerError::Internal(format!("stored keys '{key_id}' damaged: {e}")))?;
    if container.fingerprint != model.key_fingerprint() {
        return Err(ServerError::UnknownKey(format!(
            "key_id '{key_id}' names evaluation keys for other parameters than model '{}'",
            model.name
        )));
    }
    Ok(bytes)
}
