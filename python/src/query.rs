//! The data owner's client of `heman serve` (what `heman query` does): the
//! server's keyparams, evaluation keys registered once per server (key ids
//! are content addresses, so keys a server knows never travel again), and
//! one inference per call, over the server's HTTP protocol.

use heman_server::client::Client;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

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

/// One inference on a served model: checks that the server's keyparams are
/// the keys', registers the evaluation keys unless the server knows them,
/// sends the ciphertext. Answers the output file's bytes and the key id.
#[pyfunction]
#[pyo3(signature = (url, model, keys, ciphertext, token=None))]
pub fn query<'py>(
    py: Python<'py>,
    url: &str,
    model: &str,
    keys: &KeySet,
    ciphertext: &[u8],
    token: Option<&str>,
) -> PyResult<(Bound<'py, PyBytes>, String)> {
    let client = client(url, token)?;
    let (output, key_id) = block_on(py, async {
        let served = client.keyparams(model).await.map_err(error::server)?;
        check_same_keyparams(model, &served, keys.keyparams_bytes())?;
        let key_id = heman_server::keystore::key_id(keys.evaluation());
        if !client
            .key_registered(model, &key_id)
            .await
            .map_err(error::server)?
        {
            let registered = client
                .register_keys(model, keys.evaluation().to_vec())
                .await
                .map_err(error::server)?;
            if registered != key_id {
                return Err(error::ServerError::new_err(format!(
                    "the server registered the keys as {registered}, not as their content address {key_id}"
                )));
            }
        }
        let output = client
            .infer(model, &key_id, ciphertext)
            .await
            .map_err(error::server)?;
        Ok((output, key_id))
    })?;
    Ok((PyBytes::new(py, &output), key_id))
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
        let fingerprint = |v: &serde_json::Value| {
            let f = v["model_fingerprint"].as_str().unwrap_or("?");
            f[..12.min(f.len())].to_string()
        };
        return Err(error::RefusedError::new_err(format!(
            "model '{model}' on the server has other keyparams (model {}) than these keys (model {}): make keys for it with Client.from_server",
            fingerprint(&served),
            fingerprint(&ours)
        )));
    }
    Ok(())
}
