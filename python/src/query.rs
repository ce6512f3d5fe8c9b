//! The data owner's client of `heman serve` (what `heman query` does): the
//! server's keyparams, evaluation keys registered once per server (key ids
//! are content addresses, so keys a server knows never travel again), and
//! one inference per call, over the server's HTTP protocol.

use heman_server::client::{model_fingerprint_prefix, Client};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::array::{self, Raw};
use crate::data_owner::KeySet;
use crate::error;

/// Runs `work` on a one-thread async runtime, the interpreter lock released.
fn block_on<T: Send>(
    py: Python<'_>,
    work: impl std::future::Future<Output = PyResult<T>> + Send,
) -> PyResult<T> {
    py.detach(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| error::HemanError::new_err(format!("starting the async runtime: {e}")))?
            .block_on(work)
    })
}

fn client(url: &str, token: Option<&str>) -> PyResult<Client> {
    let client = Client::new(url).map_err(error::server)?;
    Ok(match token {
        Some(token) if token.trim().is_empty() => {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "the bearer token is empty",
            ))
        }
        Some(token) => client.with_token(token),
        None => client,
    })
}

/// A served model's keyparams text.
#[pyfunction]
#[pyo3(signature = (url, model, token=None))]
pub fn server_keyparams(
    py: Python<'_>,
    url: &str,
    model: &str,
    token: Option<&str>,
) -> PyResult<String> {
    let client = client(url, token)?;
    block_on(py, async {
        client.keyparams(model).await.map_err(error::server)
    })
}

/// A query's failure: the server client's, or encrypting a fresh input.
struct QueryError(PyErr);

impl From<PyErr> for QueryError {
    fn from(e: PyErr) -> Self {
        Self(e)
    }
}

impl From<heman_server::client::ClientError> for QueryError {
    fn from(e: heman_server::client::ClientError) -> Self {
        Self(error::server(e))
    }
}

/// One inference on a served model: checks that the server's keyparams are
/// the keys', registers the evaluation keys unless the server knows them,
/// encrypts `x` and sends it; a request that fails on the way is sent again
/// (freshly encrypted) up to `retries` times. Answers the output file's
/// bytes, the key id and the retries made.
#[pyfunction]
#[pyo3(signature = (url, model, keys, x, token=None, retries=0))]
pub fn query<'py>(
    py: Python<'py>,
    url: &str,
    model: &str,
    keys: &KeySet,
    x: Raw<'py>,
    token: Option<&str>,
    retries: usize,
) -> PyResult<(Bound<'py, PyBytes>, String, usize)> {
    let client = client(url, token)?;
    let x = array::from_raw(&x, "input")?;
    let encrypt = || keys.encrypt_tensor(&x).map_err(QueryError);
    let work = async {
        let served = client.keyparams(model).await?;
        check_same_keyparams(model, &served, keys.keyparams_bytes())?;
        let key_id = heman_server::keystore::key_id(keys.evaluation());
        if !client.key_registered(model, &key_id).await? {
            let registered = client
                .register_keys(model, keys.evaluation().to_vec())
                .await?;
            if registered != key_id {
                return Err(error::ServerError::new_err(format!(
                    "the server registered the keys as {registered}, not as their content address {key_id}"
                ))
                .into());
            }
        }
        let first = encrypt()?;
        let (output, retried) = client
            .infer_retrying(model, &key_id, first, retries, || async { encrypt() })
            .await?;
        Ok::<_, QueryError>((output, key_id, retried))
    };
    let (output, key_id, retried) = block_on(py, async { work.await.map_err(|e| e.0) })?;
    Ok((PyBytes::new(py, &output), key_id, retried))
}

/// Refuses keys made for keyparams other than the served model's.
fn check_same_keyparams(model: &str, served: &str, ours: &[u8]) -> PyResult<()> {
    let parse = |text: &[u8]| serde_json::from_slice::<serde_json::Value>(text).ok();
    let (Some(served), Some(ours)) = (parse(served.as_bytes()), parse(ours)) else {
        return Err(error::ServerError::new_err(format!(
            "model '{model}': the server's keyparams or the keys' are not JSON"
        )));
    };
    if served != ours {
        return Err(error::RefusedError::new_err(format!(
            "model '{model}' on the server has other keyparams (model {}) than these keys (model {}): make keys for it with Client.from_server",
            model_fingerprint_prefix(&served),
            model_fingerprint_prefix(&ours)
        )));
    }
    Ok(())
}
