//! The CPU-heavy part: checking and parsing evaluation keys, and running a
//! model on ciphertexts. Everything here is synchronous and is called from
//! `spawn_blocking` under an inference permit (see [`crate::service`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use heman_artifacts::ContainerView;
use heman_backend::{BackendError, EvaluationKeys};
use tokio::sync::OnceCell;

use crate::error::{Result, ServerError};
use crate::keystore::KeyStore;
use crate::repository::LoadedModel;

/// What the request's parts are called in messages.
const INPUT: &str = "<input tensor>";
const KEYS: &str = "<evaluation keys>";

/// The server's class of a backend error: the client's fault (400) or ours.
fn server_error(e: BackendError) -> ServerError {
    if e.is_refusal() {
        ServerError::BadRequest(e.to_string())
    } else {
        ServerError::Internal(e.to_string())
    }
}

/// The one call from the server into encrypted inference: the bytes of a
/// ciphertext file in, the bytes of the output ciphertext file out. The
/// backend checks the input (fresh encryptions only) and re-randomises and
/// floods the outputs before they leave, so every protocol gets the same.
pub fn run(model: &LoadedModel, keys: &EvaluationKeys, input: &[u8]) -> Result<Vec<u8>> {
    model
        .owner
        .infer(keys, input, Path::new(INPUT), &mut |_| {})
        .map(|inference| inference.output)
        .map_err(server_error)
}

/// Answers one inference request whose keys are loaded: the input must be a
/// fresh encryption whose masks this key has not had answered, within the
/// key's query budget (the ledger counts it), before the model runs. Every
/// transport (HTTP, gRPC, the Triton backend) answers through here.
pub fn answer(
    model: &LoadedModel,
    keys: &EvaluationKeys,
    ledger: &crate::ledger::QueryLedger,
    stored_id: &str,
    input: &[u8],
) -> Result<Vec<u8>> {
    let masks = masks_digest(model, input)?;
    ledger.admit(stored_id, &masks)?;
    run(model, keys, input)
}

/// The digest of the input's masks, which the query ledger answers once
/// per key; refuses inputs that are not fresh encryptions.
pub fn masks_digest(model: &LoadedModel, input: &[u8]) -> Result<[u8; 32]> {
    model
        .owner
        .input_masks_digest(input, Path::new(INPUT))
        .map_err(server_error)
}

/// Checks the container of key bytes (kind and parameters) without parsing
/// the keys: cheap, so bad bodies are refused before any heavy work.
pub fn check_key_header(model: &LoadedModel, bytes: &[u8]) -> Result<()> {
    model
        .owner
        .check_key_header(bytes, Path::new(KEYS))
        .map_err(|e| ServerError::BadRequest(format!("model '{}': {e}", model.name)))
}

/// Parses evaluation-key bytes for `model` (header checked first) and checks
/// they serve it (every rotation it needs).
pub fn parse_keys(model: &LoadedModel, bytes: &[u8]) -> Result<EvaluationKeys> {
    let keys = model
        .owner
        .parse_keys(bytes, Path::new(KEYS))
        .map_err(server_error)?;
    check_keys(model, &keys)?;
    Ok(keys)
}

/// Checks that `keys` serve `model`: keys made for another model with the
/// same parameters may lack some of its rotations.
pub fn check_keys(model: &LoadedModel, keys: &EvaluationKeys) -> Result<()> {
    model
        .owner
        .check_keys(keys)
        .map_err(|e| ServerError::BadRequest(format!("model '{}': {e}", model.name)))
}

/// Cache key: parameter fingerprint and key id (parsed keys depend on the
/// parameters only, so models sharing parameters share entries).
type CacheKey = ([u8; 32], String);

/// A slot filled once with parsed keys, by whichever request gets there first.
type CacheCell = Arc<OnceCell<Arc<EvaluationKeys>>>;

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
    pub fn insert(&self, model: &LoadedModel, stored_id: &str, keys: Arc<EvaluationKeys>) {
        let _ = self
            .cell((model.key_fingerprint(), stored_id.to_string()))
            .set(keys);
    }

    /// The keys stored as `stored_id` for `model` (the client's `key_id`
    /// in its scope, [`crate::auth::Tenant::scoped_key_id`]), from memory or
    /// from `store` (parsed on a blocking thread). Checks they hold the
    /// model's rotations. Messages name `key_id`, the id the client knows.
    pub async fn get(
        &self,
        store: &dyn KeyStore,
        model: &Arc<LoadedModel>,
        stored_id: &str,
        key_id: &str,
    ) -> Result<Arc<EvaluationKeys>> {
        let key = (model.key_fingerprint(), stored_id.to_string());
        let cell = self.cell(key.clone());
        let keys = cell
            .get_or_try_init(|| async {
                let bytes = load(store, model, stored_id, key_id).await?;
                let m = model.clone();
                let keys = tokio::task::spawn_blocking(move || {
                    m.owner
                        .parse_keys(&bytes, Path::new(KEYS))
                        .map_err(server_error)
                })
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
        check_keys(model, &keys)?;
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
async fn load(
    store: &dyn KeyStore,
    model: &LoadedModel,
    stored_id: &str,
    key_id: &str,
) -> Result<Bytes> {
    let unknown = || {
        ServerError::UnknownKey(format!(
            "unknown key_id '{key_id}': register evaluation keys for model '{}' first (POST /v2/models/{}/keys, or heman.KeyService/RegisterKeys over gRPC)",
            model.name, model.name
        ))
    };
    if !crate::keystore::valid_id(key_id) || !crate::keystore::valid_id(stored_id) {
        return Err(unknown());
    }
    let bytes = store
        .get(stored_id)
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))?
        .ok_or_else(unknown)?;
    let container = ContainerView::new(&bytes, Path::new("<key store>"))
        .map_err(|e| ServerError::Internal(format!("stored keys '{key_id}' damaged: {e}")))?;
    if container.fingerprint != model.key_fingerprint() {
        return Err(ServerError::UnknownKey(format!(
            "key_id '{key_id}' names evaluation keys for other parameters than model '{}'",
            model.name
        )));
    }
    Ok(bytes)
}
