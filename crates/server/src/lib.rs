//! heman's KServe v2 / Open Inference Protocol server: Triton's HTTP API
//! (binary-tensor extension included) and its gRPC API.
//!
//! A model repository holds one folder per model with one compiled
//! `*.heman` file. Data owners fetch a model's keyparams
//! (`GET /v2/models/{name}/keyparams`, metadata `parameters.keyparams`, or
//! `heman.KeyService/GetKeyParams`), register their evaluation keys once
//! (`POST /v2/models/{name}/keys` with the `eval.keys` file as body, or
//! `heman.KeyService/RegisterKeys`; the answer is a key id) and send
//! inference requests with one `BYTES` input of shape `[1]` (a heman
//! ciphertext file) and the parameter `key_id`. The answer is one `BYTES`
//! output: the encrypted result.
//!
//! ```no_run
//! # async fn f() -> Result<(), heman_server::StartError> {
//! let config = heman_server::Config::new("models/", "keys/", "127.0.0.1:8000".parse().unwrap());
//! heman_server::serve(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

#![warn(missing_docs)]

pub mod admission;
pub mod auth;
pub mod binary;
pub mod client;
pub mod error;
pub mod grpc;
pub mod http;
pub mod inference;
pub mod keystore;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod protocol;
pub mod repository;
pub mod service;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

pub use auth::{Authentication, Tenant, Tokens};
pub use error::ServerError;
pub use keystore::{DirectoryKeyStore, KeyStore, KeyStoreError, KeyStoreLocation, S3Location};
pub use repository::{Repository, RepositoryError};

/// Queries per key by default: the `a` the output flooding's statistical
/// sizing assumes (`--flooding-security`, docs/SECURITY.md).
pub const DEFAULT_QUERIES_PER_KEY: u64 = 1 << 10;

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The model repository: one folder per model with one `*.heman`.
    pub model_repository: PathBuf,
    /// Where registered evaluation keys are kept.
    pub key_store: KeyStoreLocation,
    /// The HTTP address.
    pub http_addr: SocketAddr,
    /// The gRPC address (none: HTTP only).
    pub grpc_addr: Option<SocketAddr>,
    /// Inferences running at once (each also uses rayon's threads).
    pub max_concurrent_inferences: usize,
    /// Requests allowed to wait for an inference slot; more are refused
    /// (503 / UNAVAILABLE) rather than piling up memory.
    pub max_queue: usize,
    /// Largest accepted inference request body.
    pub max_body_bytes: usize,
    /// Largest accepted evaluation-key registration body.
    pub max_key_bytes: usize,
    /// Longest an inference request may take, queueing included.
    pub request_timeout: Duration,
    /// Parsed evaluation-key sets kept in memory.
    pub key_cache_entries: usize,
    /// Memory per model for encoded weights kept across requests.
    pub plan_cache_bytes: usize,
    /// Inferences answered per registered key (`None`: no limit); see
    /// [`ledger`]. A ciphertext answered before is refused either way.
    pub queries_per_key: Option<u64>,
    /// Who may ask: open (everyone is one anonymous client) or bearer
    /// tokens naming clients ([`auth`]).
    pub authentication: Authentication,
    /// Serve openly on addresses other than loopback. Off, an open server
    /// refuses to start there: anyone reaching it could use or spend any
    /// registered key whose id they learn.
    pub open_beyond_loopback: bool,
    /// Request bodies held at once, being received or waiting, in bytes
    /// ([`admission`]): what keeps many large bodies from exhausting memory.
    pub max_buffered_bytes: usize,
    /// Requests one client may have in flight at once.
    pub requests_per_client: usize,
    /// Key sets one client may register during a server's run.
    pub keys_per_client: usize,
}

impl Config {
    /// Defaults: no gRPC, 1 inference at a time, a queue of 64, 256 MiB
    /// inference bodies, 2 GiB key bodies, 4 GiB of bodies held at once,
    /// 300 s timeout, 4 key sets and 1 GiB of encoded weights per model in
    /// memory; open (no tokens), on loopback only; 16 requests in flight
    /// and 16 key sets per client.
    pub fn new(
        model_repository: impl Into<PathBuf>,
        key_dir: impl Into<PathBuf>,
        http_addr: SocketAddr,
    ) -> Self {
        Self::with_key_store(
            model_repository,
            KeyStoreLocation::Directory(key_dir.into()),
            http_addr,
        )
    }

    /// As [`Config::new`] with any key store.
    pub fn with_key_store(
        model_repository: impl Into<PathBuf>,
        key_store: KeyStoreLocation,
        http_addr: SocketAddr,
    ) -> Self {
        Self {
            model_repository: model_repository.into(),
            key_store,
            http_addr,
            grpc_addr: None,
            max_concurrent_inferences: 1,
            max_queue: 64,
            max_body_bytes: 256 << 20,
            max_key_bytes: 2 << 30,
            request_timeout: Duration::from_secs(300),
            key_cache_entries: 4,
            plan_cache_bytes: heman_backend::default_cache_bytes(),
            queries_per_key: Some(DEFAULT_QUERIES_PER_KEY),
            authentication: Authentication::Open,
            open_beyond_loopback: false,
            max_buffered_bytes: 4 << 30,
            requests_per_client: 16,
            keys_per_client: 16,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The model repository does not load.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// The key store does not open.
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    /// An address cannot be listened on.
    #[error("listening on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The HTTP server failed.
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    /// The gRPC server failed.
    #[error("serving gRPC: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// The configuration cannot be served safely or at all.
    #[error("{0}")]
    Config(String),
}

impl Config {
    /// Refuses what cannot be served: an open server beyond loopback
    /// (unless asked for), limits no request could meet.
    pub fn check(&self) -> Result<(), StartError> {
        let exposed = std::iter::once(self.http_addr)
            .chain(self.grpc_addr)
            .find(|a| !a.ip().is_loopback());
        if let (Some(addr), false, false) = (
            exposed,
            self.authentication.required(),
            self.open_beyond_loopback,
        ) {
            return Err(StartError::Config(format!(
                "{addr} is not a loopback address and the server has no tokens: anyone reaching it could use or spend the keys of every data owner whose key id they learn; give --tokens FILE, or --open if an authenticating proxy guards it"
            )));
        }
        for (what, limit) in [
            ("--max-body-mib", self.max_body_bytes),
            ("--max-key-mib", self.max_key_bytes),
        ] {
            if limit > self.max_buffered_bytes {
                return Err(StartError::Config(format!(
                    "{what} ({} MiB) exceeds --max-buffered-mib ({} MiB): such a body could never be admitted",
                    limit >> 20,
                    self.max_buffered_bytes >> 20
                )));
            }
        }
        if self.requests_per_client == 0 || self.keys_per_client == 0 {
            return Err(StartError::Config(
                "--requests-per-client and --keys-per-client must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The state every handler shares.
pub struct AppState {
    /// The configuration served with.
    pub config: Config,
    /// The loaded models.
    pub repository: Repository,
    /// Registered evaluation keys.
    pub keystore: Arc<dyn KeyStore>,
    /// Per-client quotas.
    pub tenants: admission::Tenants,
    /// The budget of request bodies held at once, in KiB.
    pub body_budget: Arc<Semaphore>,
    /// Parsed keys kept in memory.
    pub keys: inference::KeyCache,
    /// Queries answered per key.
    pub ledger: ledger::QueryLedger,
    /// Bounds the inferences running at once.
    pub semaphore: Arc<Semaphore>,
    /// Counters for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Set once shutdown starts (readiness then answers 503 / not ready, and
    /// new inferences are refused while running ones finish).
    pub shutting_down: AtomicBool,
}

/// A bound, not yet running server: lets callers learn the ports first.
pub struct Server {
    http: TcpListener,
    grpc: Option<TcpListener>,
    state: Arc<AppState>,
}

impl Server {
    /// Loads the repository, opens the key store and binds the addresses.
    pub async fn bind(config: Config) -> Result<Self, StartError> {
        let store = config.key_store.open()?;
        Self::bind_with_store(config, store).await
    }

    /// As [`Server::bind`] with any [`KeyStore`].
    pub async fn bind_with_store(
        config: Config,
        keystore: Arc<dyn KeyStore>,
    ) -> Result<Self, StartError> {
        config.check()?;
        let (repo_dir, cache) = (config.model_repository.clone(), config.plan_cache_bytes);
        let repository = tokio::task::spawn_blocking(move || Repository::load(&repo_dir, cache))
            .await
            .expect("repository loading does not panic")?;
        let bind = |addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| StartError::Bind(addr, e))
        };
        let http = bind(config.http_addr).await?;
        let grpc = match config.grpc_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        tracing::info!(store = %keystore.describe(), "key store");
        match &config.authentication {
            Authentication::Open if config.open_beyond_loopback => {
                tracing::warn!("no tokens, beyond loopback: every request is the anonymous client")
            }
            Authentication::Open => {
                tracing::info!("no tokens, loopback only: every request is the anonymous client")
            }
            Authentication::Tokens(t) => {
                tracing::info!(clients = t.len(), "bearer tokens required")
            }
        }
        let state = Arc::new(AppState {
            semaphore: Arc::new(Semaphore::new(config.max_concurrent_inferences.max(1))),
            keys: inference::KeyCache::new(config.key_cache_entries),
            ledger: ledger::QueryLedger::new(config.queries_per_key),
            tenants: admission::Tenants::new(config.requests_per_client, config.keys_per_client),
            body_budget: admission::body_budget(config.max_buffered_bytes),
            config,
            repository,
            keystore,
            metrics: Default::default(),
            shutting_down: AtomicBool::new(false),
        });
        Ok(Self { http, grpc, state })
    }

    /// The HTTP address actually bound (port 0 resolved).
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("bound listener")
    }

    /// The gRPC address actually bound, if serving gRPC.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc
            .as_ref()
            .map(|l| l.local_addr().expect("bound listener"))
    }

    /// The shared state (metrics, configuration).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting, refuses new
    /// inferences and lets running requests finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let state = self.state.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing running requests");
            state
                .shutting_down
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        tracing::info!(addr = %self.http_addr(), "serving KServe v2 over HTTP");
        let app = http::router(self.state.clone());
        let http = axum::serve(self.http, app).with_graceful_shutdown(stopped(stop_rx.clone()));
        match self.grpc {
            None => http.await.map_err(StartError::Serve),
            Some(listener) => {
                tracing::info!(addr = %listener.local_addr().map_err(StartError::Serve)?, "serving KServe v2 over gRPC");
                let grpc = tonic::transport::Server::builder()
                    .add_routes(grpc::routes(self.state.clone()))
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(listener),
                        stopped(stop_rx),
                    );
                let (h, g) = tokio::join!(http, grpc);
                h.map_err(StartError::Serve)?;
                g.map_err(StartError::Grpc)
            }
        }
    }
}

/// Binds and serves `config` until `shutdown` completes.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Server::bind(config).await?.run(shutdown).await
}
