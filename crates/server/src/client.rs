//! A client of the server's HTTP protocol, for `heman query` and tests:
//! keyparams, key registration, and binary-mode inference of one
//! ciphertext (the wire form tritonclient uses).

use std::time::Duration;

use serde_json::{json, Value};

use crate::binary;
use crate::protocol::{InferResponse, KeyRegistered};
use crate::service::{DATATYPE, INPUT_NAME, KEY_ID_PARAMETER, OUTPUT_NAME};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request did not get through.
    #[error("{url}: {source}")]
    Transport {
        /// What was asked.
        url: String,
        /// Why it failed.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status and message.
    #[error("{url}: server answered {status}: {message}")]
    Server {
        /// What was asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The answer is not what the protocol says.
    #[error("{url}: {message}")]
    Protocol {
        /// What was asked.
        url: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// Not a URL the client speaks.
    #[error("'{0}' is not an http:// URL")]
    Url(String),
}

impl ClientError {
    /// The HTTP status of a server error, if it is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the request may succeed when sent again (elsewhere, behind a
    /// load balancer): it did not get through (refused or reset), or a
    /// gateway or a busy server turned it away (502, 503, 504).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            e => matches!(e.status(), Some(502..=504)),
        }
    }
}

type Result<T> = std::result::Result<T, ClientError>;

/// The start of a keyparams' model fingerprint, to tell two keyparams apart
/// in a message (`?` where it has none). By characters: the text may come
/// from a server, and a byte cut inside a character would panic.
pub fn model_fingerprint_prefix(keyparams: &Value) -> String {
    keyparams["model_fingerprint"]
        .as_str()
        .unwrap_or("?")
        .chars()
        .take(12)
        .collect()
}

/// A server's base URL and a connection pool.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<std::sync::Arc<zeroize::Zeroizing<String>>>,
}

impl Client {
    /// A client of `url` (`http://host:port`, or `host:port`).
    pub fn new(url: &str) -> Result<Self> {
        let base = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        if !base.starts_with("http://") {
            return Err(ClientError::Url(url.to_string()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|source| ClientError::Transport {
                url: base.clone(),
                source,
            })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            token: None,
        })
    }

    /// The same client sending `token` as its bearer token on every call
    /// (a server started with `--tokens`).
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(std::sync::Arc::new(zeroize::Zeroizing::new(
            token.trim().to_string(),
        )));
        self
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request`; an error status becomes [`ClientError::Server`] with
    /// the protocol's `{"error": ...}` message.
    async fn send(&self, url: &str, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let transport = |source| ClientError::Transport {
            url: url.to_string(),
            source,
        };
        let request = match &self.token {
            Some(token) => request.bearer_auth(token.as_str()),
            None => request,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.map_err(transport)?;
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        Err(ClientError::Server {
            url: url.to_string(),
            status: status.as_u16(),
            message,
        })
    }

    async fn json(&self, url: &str, request: reqwest::RequestBuilder) -> Result<Value> {
        let body = self
            .send(url, request)
            .await?
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.to_string(),
                source,
            })?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
            url: url.to_string(),
            message: format!("answer is not JSON: {e}"),
        })
    }

    /// Whether the server is ready (`GET /v2/health/ready`).
    pub async fn ready(&self) -> Result<()> {
        let url = self.url("/v2/health/ready");
        self.send(&url, self.http.get(&url)).await.map(|_| ())
    }

    /// A model's keyparams as JSON text.
    pub async fn keyparams(&self, model: &str) -> Result<String> {
        let url = self.url(&format!("/v2/models/{model}/keyparams"));
        let response = self.send(&url, self.http.get(&url)).await?;
        response
            .text()
            .await
            .map_err(|source| ClientError::Transport { url, source })
    }

    /// Registers evaluation keys (an `eval.keys` file's bytes); answers the key id.
    pub async fn register_keys(&self, model: &str, eval_keys: Vec<u8>) -> Result<String> {
        let url = self.url(&format!("/v2/models/{model}/keys"));
        let v = self
            .json(&url, self.http.post(&url).body(eval_keys))
            .await?;
        serde_json::from_value::<KeyRegistered>(v)
            .map(|k| k.key_id)
            .map_err(|e| ClientError::Protocol {
                url,
                message: format!("no key_id in the answer: {e}"),
            })
    }

    /// Whether `key_id` is registered and fits `model` (false on 404).
    pub async fn key_registered(&self, model: &str, key_id: &str) -> Result<bool> {
        let url = self.url(&format!("/v2/models/{model}/keys/{key_id}"));
        match self.send(&url, self.http.get(&url)).await {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// [`Client::infer`], sent again on a transient failure
    /// ([`ClientError::is_transient`]) up to `retries` times, each time with a
    /// fresh ciphertext from `fresh` (never the same ciphertext twice: a
    /// server answers an input's masks once), backing off 100 ms, 200 ms,
    /// ...; answers the output file's bytes and the retries made.
    pub async fn infer_retrying<E, F, Fut>(
        &self,
        model: &str,
        key_id: &str,
        mut ciphertext: Vec<u8>,
        retries: usize,
        mut fresh: F,
    ) -> std::result::Result<(Vec<u8>, usize), E>
    where
        E: From<ClientError>,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<Vec<u8>, E>>,
    {
        let mut retried = 0;
        loop {
            match self.infer(model, key_id, &ciphertext).await {
                Ok(answer) => return Ok((answer, retried)),
                Err(e) if retried < retries && e.is_transient() => {
                    retried += 1;
                    tracing::warn!(error = %e, retry = retried, "request failed on the way: sending it again");
                    let backoff = 100u64 << (retried - 1).min(6);
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                    ciphertext = fresh().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One inference in Triton's binary mode: the ciphertext file's bytes
    /// in, the output ciphertext file's bytes out.
    pub async fn infer(&self, model: &str, key_id: &str, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let url = self.url(&format!("/v2/models/{model}/infer"));
        let tensor = binary::encode_bytes_elements(&[ciphertext]);
        let header = json!({
            "parameters": {KEY_ID_PARAMETER: key_id},
            "inputs": [{"name": INPUT_NAME, "shape": [1], "datatype": DATATYPE,
                        "parameters": {"binary_data_size": tensor.len()}}],
            "outputs": [{"name": OUTPUT_NAME, "parameters": {"binary_data": true}}]
        });
        let mut body = serde_json::to_vec(&header).expect("JSON");
        let json_len = body.len();
        body.extend_from_slice(&tensor);
        let response = self
            .send(
                &url,
                self.http
                    .post(&url)
                    .header(binary::HEADER, json_len.to_string())
                    .body(body),
            )
            .await?;
        let protocol = |message: String| ClientError::Protocol {
            url: url.clone(),
            message,
        };
        let json_len: usize = response
            .headers()
            .get(binary::HEADER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .ok_or_else(|| protocol("the answer has no Inference-Header-Content-Length".into()))?;
        let body = response
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        let (head, raw) =
            binary::split(&body, Some(json_len)).map_err(|e| protocol(e.to_string()))?;
        let head: InferResponse = serde_json::from_slice(&head)
            .map_err(|e| protocol(format!("malformed answer header: {e}")))?;
        match &head.outputs[..] {
            [o] if o.name == OUTPUT_NAME && o.datatype == DATATYPE => {}
            _ => return Err(protocol(format!("unexpected outputs {:?}", head.outputs))),
        }
        let elements =
            binary::decode_bytes_elements(&raw, 1).map_err(|e| protocol(e.to_string()))?;
        match <[bytes::Bytes; 1]>::try_from(elements) {
            Ok([output]) => Ok(output.to_vec()),
            Err(v) => Err(protocol(format!("{} output elements, expected 1", v.len()))),
        }
    }
}
