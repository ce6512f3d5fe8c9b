//! What both protocols do, whatever the wire: find models, describe them,
//! validate inference inputs, register keys, and run inferences through the
//! bounded queue with a timeout. `http` and `grpc` only translate to and
//! from their wire forms.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::auth::Tenant;
use crate::error::{Result, ServerError};
use crate::inference;
use crate::keystore::key_id;
use crate::protocol::{ModelMetadata, ServerMetadata, TensorMetadata};
use crate::repository::LoadedModel;
use crate::AppState;

/// The name of the model's single input tensor.
pub const INPUT_NAME: &str = "ciphertext";
/// The name of the model's single output tensor.
pub const OUTPUT_NAME: &str = "ciphertext";
/// The datatype of both: each element is one heman ciphertext file.
pub const DATATYPE: &str = "BYTES";
/// The request parameter naming the registered evaluation keys.
pub const KEY_ID_PARAMETER: &str = "key_id";

/// The server's metadata (`GET /v2`, `ServerMetadata`).
pub fn server_metadata() -> ServerMetadata {
    ServerMetadata {
        name: "heman".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        extensions: vec![
            "binary_tensor_data".into(),
            "heman_keys".into(),
            "heman_keyparams".into(),
        ],
    }
}

/// The model `name`, version "1" or none (heman models have one version).
pub fn find(state: &AppState, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>> {
    let model = state
        .repository
        .get(name)
        .ok_or_else(|| ServerError::UnknownModel(name.to_string()))?;
    match version {
        None | Some("") | Some("1") => Ok(model),
        // heman models have one version, "1".
        Some(v) => Err(ServerError::UnknownModel(format!("{name}' version '{v}"))),
    }
}

/// A model's metadata: one BYTES input and output of shape [1], and the
/// keyparams a data owner needs (never the plan, which holds the weights);
/// for a throughput model, the batch one input holds at most.
pub fn model_metadata(model: &LoadedModel) -> ModelMetadata {
    let tensor = |name: &str| TensorMetadata {
        name: name.into(),
        datatype: DATATYPE.into(),
        shape: vec![1],
    };
    let mut parameters = serde_json::Map::new();
    parameters.insert(
        "keyparams".into(),
        serde_json::Value::String(model.keyparams_json().to_string()),
    );
    // A throughput model's one ciphertext file holds a batch: its size, as
    // Triton's model configuration says it.
    if let Some(batch) = model.owner.max_batch() {
        parameters.insert("max_batch_size".into(), batch.into());
        parameters.insert("packing".into(), "throughput".into());
    }
    ModelMetadata {
        name: model.name.clone(),
        versions: vec!["1".into()],
        platform: model.platform(),
        inputs: vec![tensor(INPUT_NAME)],
        outputs: vec![tensor(OUTPUT_NAME)],
        parameters,
    }
}

/// An input tensor as either wire form describes it, before its contents.
pub struct InputTensor<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its datatype.
    pub datatype: &'a str,
    /// Its shape.
    pub shape: &'a [i64],
}

/// Checks the inputs' names, datatypes and shapes: exactly one BYTES tensor
/// of shape [1] named [`INPUT_NAME`].
pub fn check_inputs(inputs: &[InputTensor<'_>]) -> Result<()> {
    let [input] = inputs else {
        return Err(ServerError::BadRequest(format!(
            "the model takes exactly 1 input ('{INPUT_NAME}'), {} given",
            inputs.len()
        )));
    };
    if input.name != INPUT_NAME {
        return Err(ServerError::BadRequest(format!(
            "unknown input '{}', the model's input is '{INPUT_NAME}'",
            input.name
        )));
    }
    if input.datatype != DATATYPE {
        return Err(ServerError::BadRequest(format!(
            "input '{}' has datatype {}, expected {DATATYPE} (one heman ciphertext file)",
            input.name, input.datatype
        )));
    }
    if input.shape != [1] {
        return Err(ServerError::BadRequest(format!(
            "input '{}' has shape {:?}, expected [1]",
            input.name, input.shape
        )));
    }
    Ok(())
}

/// Checks the requested outputs (none: all, which is the one).
pub fn check_outputs<'a>(mut names: impl Iterator<Item = &'a str>) -> Result<()> {
    match names.find(|n| *n != OUTPUT_NAME) {
        None => Ok(()),
        Some(n) => Err(ServerError::BadRequest(format!(
            "unknown output '{n}', the model has one output '{OUTPUT_NAME}'"
        ))),
    }
}

/// The one ciphertext of a BYTES tensor of shape [1].
pub fn single_element(elements: Vec<Bytes>) -> Result<Bytes> {
    let [ciphertext] = <[Bytes; 1]>::try_from(elements).map_err(|v| {
        ServerError::BadRequest(format!(
            "input holds {} BYTES elements, its shape [1] says 1",
            v.len()
        ))
    })?;
    Ok(ciphertext)
}

/// The key id parameter, or an error saying how to get one.
pub fn require_key_id(model: &str, key_id: Option<&str>) -> Result<String> {
    key_id.map(str::to_string).ok_or_else(|| {
        ServerError::BadRequest(format!(
            "the request has no parameters.{KEY_ID_PARAMETER}: register evaluation keys once (POST /v2/models/{model}/keys, or heman.KeyService/RegisterKeys over gRPC) and pass the key id they return"
        ))
    })
}

/// What both protocols' parsers make of an inference request before its
/// model is looked up (what the fuzz targets drive).
#[derive(Debug)]
pub struct ParsedInfer {
    /// The registered evaluation keys' id.
    pub key_id: String,
    /// The input ciphertext file.
    pub ciphertext: Bytes,
}

/// A validated inference request, protocol aside.
pub struct InferCall {
    /// The model asked for.
    pub model: Arc<LoadedModel>,
    /// The registered evaluation keys' id.
    pub key_id: String,
    /// The input ciphertext file.
    pub ciphertext: Bytes,
}

impl InferCall {
    /// The call of a parsed request on `model`.
    pub fn new(model: Arc<LoadedModel>, parsed: ParsedInfer) -> Self {
        Self {
            model,
            key_id: parsed.key_id,
            ciphertext: parsed.ciphertext,
        }
    }
}

/// Which protocol a request came by (a metrics label).
#[derive(Debug, Clone, Copy)]
pub enum Protocol {
    /// HTTP/REST.
    Http,
    /// gRPC.
    Grpc,
}

impl Protocol {
    /// Its label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Grpc => "grpc",
        }
    }
}

/// Runs `request` (decoding and inference) and records its outcome and
/// latency, whichever way it ends.
pub async fn observed<T>(
    state: &AppState,
    protocol: Protocol,
    model: &str,
    request: impl Future<Output = Result<T>>,
) -> Result<T> {
    let start = Instant::now();
    let result = request.await;
    state
        .metrics
        .record(protocol.label(), start.elapsed(), result.is_ok());
    match &result {
        Ok(_) => tracing::debug!(
            model,
            protocol = protocol.label(),
            ms = start.elapsed().as_secs_f64() * 1e3,
            "inference done"
        ),
        Err(e) => {
            tracing::info!(model, protocol = protocol.label(), error = %e, "inference refused")
        }
    }
    result
}

/// A held inference slot; while held, the request counts as running.
pub struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    state: Arc<AppState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.metrics.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Refuses a request that would wait for an inference slot while the queue
/// is full (admission asks before reading a body; the wait asks again).
pub fn check_queue(state: &AppState) -> Result<()> {
    check_queue_depth(state, state.metrics.queued.load(Ordering::Relaxed))
}

fn check_queue_depth(state: &AppState, queued: u64) -> Result<()> {
    if queued as usize >= state.config.max_queue && state.semaphore.available_permits() == 0 {
        return Err(ServerError::Busy(format!(
            "{queued} requests already wait for an inference slot"
        )));
    }
    Ok(())
}

/// Waits for one of the configured inference slots; refuses at once when
/// the queue is full or the server is shutting down.
pub async fn acquire_slot(state: &Arc<AppState>) -> Result<Slot> {
    if state.shutting_down.load(Ordering::Relaxed) {
        return Err(ServerError::ShuttingDown);
    }
    let metrics = &state.metrics;
    let queued = metrics.queued.fetch_add(1, Ordering::Relaxed);
    // Decrements the queue however the wait ends (a cancelled request too).
    struct Dequeue<'a>(&'a std::sync::atomic::AtomicU64);
    impl Drop for Dequeue<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let _dequeue = Dequeue(&metrics.queued);
    check_queue_depth(state, queued)?;
    let permit = state
        .semaphore
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ServerError::ShuttingDown)?;
    metrics.running.fetch_add(1, Ordering::Relaxed);
    Ok(Slot {
        _permit: permit,
        state: state.clone(),
    })
}

/// Runs one validated inference: waits for a slot, loads the keys, runs the
/// model on a blocking thread; the whole within the configured timeout. The
/// slot stays held until the computation really ends (a timed-out one
/// cannot be stopped), so no more inferences run than configured.
pub async fn infer(state: &Arc<AppState>, tenant: &Tenant, call: InferCall) -> Result<Vec<u8>> {
    let timeout = state.config.request_timeout;
    let stored_id = tenant.scoped_key_id(&call.key_id);
    let work = async {
        let slot = acquire_slot(state).await?;
        let keys = state
            .keys
            .get(
                state.keystore.as_ref(),
                &call.model,
                &stored_id,
                &call.key_id,
            )
            .await?;
        let model = call.model.clone();
        let ciphertext = call.ciphertext;
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            // Counted only once the keys are known to exist for this model,
            // so unknown ids cannot fill the ledger; keyed on the input's
            // masks, so other bodies on the same masks count as a repeat.
            inference::answer(&model, &keys, &state.ledger, &stored_id, &ciphertext)
        })
        .await
        .map_err(|e| ServerError::Internal(format!("inference panicked: {e}")))?
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ServerError::Timeout(timeout.as_secs()))?
}

/// Registers evaluation keys for `model`: checks them (kind, parameters,
/// every rotation the model needs, fully parsed), stores them under
/// `tenant`'s scope (counted against its quota), and answers their id. Parsing runs under an inference slot: it is CPU-heavy too.
pub async fn register_keys(
    state: &Arc<AppState>,
    tenant: &Tenant,
    model: Arc<LoadedModel>,
    bytes: Bytes,
) -> Result<String> {
    // Cheap checks first, so that garbage never waits for a slot.
    inference::check_key_header(&model, &bytes)?;
    let id = key_id(&bytes);
    let stored_id = tenant.scoped_key_id(&id);
    let place = state.tenants.reserve_key(tenant, &stored_id)?;
    let slot = acquire_slot(state).await?;
    let keys = {
        let (m, b) = (model.clone(), bytes.clone());
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            inference::parse_keys(&m, &b)
        })
        .await
        .map_err(|e| ServerError::Internal(format!("key registration panicked: {e}")))??
    };
    state
        .keystore
        .put(&stored_id, bytes)
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    place.keep();
    state.keys.insert(&model, &stored_id, Arc::new(keys));
    state
        .metrics
        .keys_registered
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!(model = %model.name, key_id = %id, client = %tenant, "evaluation keys registered");
    Ok(id)
}

/// Whether `key_id` is registered and usable with `model` (loads the keys
/// into memory, so that the next inference starts at once).
/// Another client's keys are unknown here, as if never registered.
pub async fn key_status(
    state: &Arc<AppState>,
    tenant: &Tenant,
    model: Arc<LoadedModel>,
    key_id: &str,
) -> Result<()> {
    let _slot = acquire_slot(state).await?;
    let stored_id = tenant.scoped_key_id(key_id);
    state
        .keys
        .get(state.keystore.as_ref(), &model, &stored_id, key_id)
        .await
        .map(|_| ())
}
