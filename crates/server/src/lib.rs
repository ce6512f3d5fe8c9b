//! heman's KServe v2 / Open Inference Protocol server (Triton's HTTP API,
//! binary-tensor extension included).
//!
//! A model repository holds one folder per model with one compiled
//! `*.heman` file. Data owners fetch a model's keyparams
//! (`GET /v2/models/{name}/keyparams`, or metadata `parameters.keyparams`),
//! register their evaluation keys once (`POST /v2/models/{name}/keys`, body =
//! `eval.keys`, answer `{"key_id": ...}`) and send inference requests with
//! one `BYTES` input of shape `[1]` (a heman ciphertext file) and
//! `parameters.key_id`. The answer is one `BYTES` output: the encrypted result.
//!
//! ```no_run
//! # async fn f() -> Result<(), heman_server::StartError> {
//! let config = heman_server::Config::new("models/", "keys/", "127.0.0.1:8000".parse().unwrap());
//! heman_server::serve(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod binary;
pub mod error;
pub mod http;
pub mod inference;
pub mod keystore;
pub mod metrics;
pub mod protocol;
pub mod repository;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use error::ServerError;
pub use keystore::{DirectoryKeyStore, KeyStore};
pub use repository::{Repository, RepositoryError};

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The model repository: one folder per model with one `*.heman`.
    pub model_repository: PathBuf,
    /// The directory of the [`DirectoryKeyStore`].
    pub key_store: PathBuf,
    /// The HTTP address.
    pub http_addr: SocketAddr,
    /// Inferences running at once (each uses rayon's threads).
    pub max_concurrent_inferences: usize,
    /// Largest accepted inference request body.
    pub max_body_bytes: usize,
    /// Largest accepted evaluation-key registration body.
    pub max_key_bytes: usize,
    /// Longest an inference request may take.
    pub request_timeout: Duration,
}

impl Config {
    /// Defaults: 1 inference at a time, 256 MiB inference bodies, 2 GiB key
    /// bodies, 300 s timeout.
    pub fn new(
        model_repository: impl Into<PathBuf>,
        key_store: impl Into<PathBuf>,
        http_addr: SocketAddr,
    ) -> Self {
        Self {
            model_repository: model_repository.into(),
            key_store: key_store.into(),
            http_addr,
            max_concurrent_inferences: 1,
            max_body_bytes: 256 << 20,
            max_key_bytes: 2 << 30,
            request_timeout: Duration::from_secs(300),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    #[error("key store {0}: {1}")]
    KeyStore(PathBuf, std::io::Error),
    #[error("listening on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// The state every handler shares.
pub struct AppState {
    /// The configuration served with.
    pub config: Config,
    /// The loaded models.
    pub repository: Repository,
    /// Registered evaluation keys.
    pub keystore: Arc<dyn KeyStore>,
    /// Parsed keys kept in memory.
    pub keys: inference::KeyCache,
    /// Bounds the inferences running at once.
    pub semaphore: Arc<Semaphore>,
    /// Counters for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Set once shutdown starts (`/v2/health/ready` then answers 503).
    pub shutting_down: AtomicBool,
}

/// A bound, not yet running server: lets callers learn the port first.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Loads the repository, opens the key store and binds the HTTP address.
    pub async fn bind(config: Config) -> Result<Self, StartError> {
        let store = DirectoryKeyStore::new(&config.key_store)
            .map_err(|e| StartError::KeyStore(config.key_store.clone(), e))?;
        Self::bind_with_store(config, Arc::new(store)).await
    }

    /// As [`Server::bind`] with any [`KeyStore`].
    pub async fn bind_with_store(
        config: Config,
        keystore: Arc<dyn KeyStore>,
    ) -> Result<Self, StartError> {
        let repo_dir = config.model_repository.clone();
        let repository = tokio::task::spawn_blocking(move || Repository::load(&repo_dir))
            .await
            .expect("repository loading does not panic")?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|e| StartError::Bind(config.http_addr, e))?;
        let state = Arc::new(AppState {
            semaphore: Arc::new(Semaphore::new(config.max_concurrent_inferences.max(1))),
            config,
            repository,
            keystore,
            keys: Default::default(),
            metrics: Default::default(),
            shutting_down: AtomicBool::new(false),
        });
        Ok(Self { listener, state })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let state = self.state.clone();
        let app = http::router(self.state);
        tracing::info!(addr = %self.listener.local_addr().map_err(StartError::Serve)?, "serving KServe v2 over HTTP");
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                state
                    .shutting_down
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            })
            .await
            .map_err(StartError::Serve)
    }
}

/// Binds and serves `config` until `shutdown` completes.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Server::bind(config).await?.run(shutdown).await
}
