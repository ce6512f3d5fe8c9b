//! One Triton model served by the backend: the compiled model of its
//! version folder, and the serving state `heman serve` keeps per server
//! (the key store, parsed keys, the query ledger), from the same library
//! code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use heman_server::inference::{self, KeyCache};
use heman_server::keystore::{key_id, KeyStore, KeyStoreLocation};
use heman_server::ledger::QueryLedger;
use heman_server::repository::{load_model, LoadedModel};
use heman_server::ServerError;
use serde_json::Value;

use crate::api::Failure;

/// Parsed key sets kept in memory per model, as `heman serve --key-cache`.
const KEY_CACHE_ENTRIES: usize = 4;

/// What a model's `config.pbtxt` parameters ask for.
#[derive(Debug)]
pub struct Settings {
    /// Where registered evaluation keys are kept (`key_store`: a directory
    /// or `s3://BUCKET/PREFIX`, with `s3_endpoint`, `s3_region`,
    /// `s3_allow_http`).
    pub key_store: KeyStoreLocation,
    /// Inferences answered per key (`queries_per_key`; `heman serve`'s
    /// default when absent).
    pub queries_per_key: u64,
}

impl Settings {
    /// The settings of a model configuration (Triton's JSON form, where a
    /// parameter is `{"string_value": "..."}`).
    pub fn from_config(config: &Value, model: &str) -> Result<Self, Failure> {
        let parameter = |name: &str| {
            config["parameters"][name]["string_value"]
                .as_str()
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let store = parameter("key_store").ok_or_else(|| {
            Failure::invalid(format!(
                "model '{model}': config.pbtxt needs parameters {{ key: \"key_store\" value: {{ string_value: \"DIR or s3://BUCKET/PREFIX\" }} }}: where evaluation keys are registered"
            ))
        })?;
        let mut key_store = KeyStoreLocation::parse(store)
            .map_err(|e| Failure::invalid(format!("model '{model}': key_store: {e}")))?;
        if let KeyStoreLocation::S3(s3) = &mut key_store {
            s3.endpoint = parameter("s3_endpoint").map(str::to_string);
            s3.region = parameter("s3_region").map(str::to_string);
            s3.allow_http = parameter("s3_allow_http") == Some("true");
        }
        let queries_per_key = match parameter("queries_per_key") {
            None => heman_server::DEFAULT_QUERIES_PER_KEY,
            Some(v) => v.parse().map_err(|_| {
                Failure::invalid(format!(
                    "model '{model}': queries_per_key '{v}' is not a count"
                ))
            })?,
        };
        Ok(Self {
            key_store,
            queries_per_key,
        })
    }
}

/// A served model and its serving state, shared by its instances.
pub struct ModelState {
    model: Arc<LoadedModel>,
    store: Arc<dyn KeyStore>,
    keys: KeyCache,
    ledger: QueryLedger,
    /// Runs the key store's asynchronous calls (S3) from Triton's threads.
    runtime: tokio::runtime::Runtime,
}

impl ModelState {
    /// Loads version folder `version` of the model at `location` (its
    /// folder in Triton's model repository) with `settings`.
    pub fn load(
        name: &str,
        location: &Path,
        version: u64,
        settings: Settings,
    ) -> Result<Self, Failure> {
        let folder: PathBuf = location.join(version.to_string());
        let model = load_model(name, &folder, heman_backend::default_cache_bytes())
            .map_err(|e| Failure::invalid(format!("model '{name}': {e}")))?;
        let store = settings
            .key_store
            .open()
            .map_err(|e| Failure::invalid(format!("model '{name}': key store: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("heman-keystore")
            .enable_all()
            .build()
            .map_err(|e| Failure::internal(format!("starting the key store's runtime: {e}")))?;
        tracing::info!(model = name, path = %model.path.display(), store = %store.describe(), "heman model loaded");
        Ok(Self {
            model: Arc::new(model),
            store,
            keys: KeyCache::new(KEY_CACHE_ENTRIES),
            ledger: QueryLedger::new(Some(settings.queries_per_key)),
            runtime,
        })
    }

    /// Runs the model on a ciphertext file under registered keys: the same
    /// checks, ledger and output flooding as `heman serve`.
    pub fn infer(&self, key_id: &str, ciphertext: &[u8]) -> Result<Vec<u8>, ServerError> {
        let keys = self
            .runtime
            .block_on(
                self.keys
                    .get(self.store.as_ref(), &self.model, key_id, key_id),
            )
            .map_err(|e| match e {
                // The server's message names its own registration endpoint.
                ServerError::UnknownKey(m) => ServerError::UnknownKey(format!(
                    "{m}; through Triton, a request with the BYTES input '{}' registers them and answers their key_id",
                    crate::execute::EVAL_KEYS_INPUT
                )),
                e => e,
            })?;
        inference::answer(&self.model, &keys, &self.ledger, key_id, ciphertext)
    }

    /// Registers evaluation keys (checked as `heman serve` checks them) in
    /// the key store; answers their id.
    pub fn register(&self, bytes: Bytes) -> Result<String, ServerError> {
        inference::check_key_header(&self.model, &bytes)?;
        let parsed = inference::parse_keys(&self.model, &bytes)?;
        let id = key_id(&bytes);
        self.runtime
            .block_on(self.store.put(&id, bytes))
            .map_err(|e| ServerError::Internal(e.to_string()))?;
        self.keys.insert(&self.model, &id, Arc::new(parsed));
        tracing::info!(model = %self.model.name, key_id = %id, "evaluation keys registered");
        Ok(id)
    }
}
