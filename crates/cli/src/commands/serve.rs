//! `heman serve`: the model owner's KServe v2 server (HTTP and gRPC).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use heman_server::{Authentication, Config, KeyStoreLocation, Server, Tokens};

/// Model owner: serve the compiled models of a repository over the KServe v2
/// protocol (Triton's HTTP and gRPC APIs).
#[derive(Args)]
pub struct ServeArgs {
    /// One folder per model, each holding one compiled `*.heman`
    /// (`heman keyparams --compiled`); the folder name is the model name.
    #[arg(long)]
    model_repository: PathBuf,
    /// HTTP address.
    #[arg(long, default_value = "127.0.0.1:8000")]
    http: SocketAddr,
    /// gRPC address, or `off`.
    #[arg(long, default_value = "127.0.0.1:8001")]
    grpc: String,
    /// Where registered evaluation keys are kept: a directory, or
    /// `s3://BUCKET/PREFIX` (credentials from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY; AWS_REGION, AWS_ENDPOINT_URL also read).
    #[arg(long, default_value = "registered-keys")]
    key_store: String,
    /// S3-compatible server URL (default: AWS, or AWS_ENDPOINT_URL).
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// S3 region.
    #[arg(long)]
    s3_region: Option<String>,
    /// Allow a plain http:// S3 endpoint.
    #[arg(long)]
    s3_allow_http: bool,
    /// Inferences running at once (each also uses all --threads).
    #[arg(long, default_value_t = 1)]
    max_concurrent: usize,
    /// Requests allowed to wait for an inference slot; more get 503.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Largest inference request body, in MiB.
    #[arg(long, default_value_t = 256)]
    max_body_mib: usize,
    /// Largest evaluation-key registration body, in MiB.
    #[arg(long, default_value_t = 2048)]
    max_key_mib: usize,
    /// Longest an inference request may take (queueing included), in seconds.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
    /// Parsed evaluation-key sets kept in memory.
    #[arg(long, default_value_t = 4)]
    key_cache: usize,
    /// Memory per model for encoded weight diagonals kept across requests, in MiB
    /// (default: a quarter of this machine's memory, at least 1024).
    #[arg(long)]
    cache_mib: Option<usize>,
    /// Inferences answered per registered key, or `unlimited`: the output
    /// flooding is sized for this many (docs/SECURITY.md). A ciphertext
    /// answered before is refused either way.
    #[arg(long, default_value_t = heman_server::DEFAULT_QUERIES_PER_KEY.to_string())]
    queries_per_key: String,
    /// Bearer tokens, one `CLIENT TOKEN` pair per line (tokens of at least
    /// 32 characters: `openssl rand -hex 32`). Every request but the health
    /// probes must carry one; each client's keys are its own. Without it
    /// the server is open and serves loopback addresses only.
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Serve without tokens on addresses other than loopback (behind a
    /// proxy that authenticates clients).
    #[arg(long)]
    open: bool,
    /// Request bodies held at once (received or waiting), in MiB; more are
    /// refused (503) before they are read.
    #[arg(long, default_value_t = 4096)]
    max_buffered_mib: usize,
    /// Requests one client may have in flight; more get 429.
    #[arg(long, default_value_t = 16)]
    requests_per_client: usize,
    /// Key sets one client may register while the server runs.
    #[arg(long, default_value_t = 16)]
    keys_per_client: usize,
}

impl ServeArgs {
    fn config(&self) -> Result<Config> {
        let grpc_addr = match self.grpc.as_str() {
            "off" | "none" => None,
            addr => Some(
                addr.parse()
                    .with_context(|| format!("--grpc {addr}: not an address (or `off`)"))?,
            ),
        };
        let mut key_store = KeyStoreLocation::parse(&self.key_store)?;
        match &mut key_store {
            KeyStoreLocation::S3(s3) => {
                s3.endpoint = self.s3_endpoint.clone();
                s3.region = self.s3_region.clone();
                s3.allow_http = self.s3_allow_http;
            }
            KeyStoreLocation::Directory(_) => {
                if self.s3_endpoint.is_some() || self.s3_region.is_some() || self.s3_allow_http {
                    bail!("--s3-* options need --key-store s3://BUCKET/PREFIX");
                }
            }
        }
        let mut config = Config::with_key_store(&self.model_repository, key_store, self.http);
        config.grpc_addr = grpc_addr;
        config.max_concurrent_inferences = self.max_concurrent.max(1);
        config.max_queue = self.max_queue;
        config.max_body_bytes = self.max_body_mib << 20;
        config.max_key_bytes = self.max_key_mib << 20;
        config.request_timeout = Duration::from_secs(self.timeout_s);
        config.key_cache_entries = self.key_cache;
        config.plan_cache_bytes = self
            .cache_mib
            .map_or_else(heman_backend::default_cache_bytes, |m| m << 20);
        config.max_buffered_bytes = self.max_buffered_mib << 20;
        config.requests_per_client = self.requests_per_client;
        config.keys_per_client = self.keys_per_client;
        config.open_beyond_loopback = self.open;
        if let Some(path) = &self.tokens {
            if self.open {
                bail!("--tokens and --open contradict each other");
            }
            config.authentication = Authentication::Tokens(Arc::new(Tokens::load(path)?));
        }
        config.queries_per_key =
            match self.queries_per_key.as_str() {
                "unlimited" => None,
                n => Some(n.parse().with_context(|| {
                    format!("--queries-per-key {n}: not a count (or `unlimited`)")
                })?),
            };
        Ok(config)
    }
}

pub fn run(args: ServeArgs) -> Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(config).await?;
        let models: Vec<&str> = server.state().repository.names().collect();
        // Printed (not logged) and flushed: scripts and tests read the
        // bound ports from here when asked for port 0.
        let mut out = std::io::stdout().lock();
        writeln!(out, "models: {}", models.join(", "))?;
        writeln!(out, "key store: {}", server.state().keystore.describe())?;
        writeln!(out, "HTTP listening on http://{}", server.http_addr())?;
        if let Some(grpc) = server.grpc_addr() {
            writeln!(out, "gRPC listening on {grpc}")?;
        }
        out.flush()?;
        drop(out);
        server.run(shutdown_signal()).await?;
        println!("stopped");
        Ok(())
    })
}

/// Ctrl-C or SIGTERM (what service managers and containers send).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => interrupt.await,
        }
    }
    #[cfg(not(unix))]
    interrupt.await;
}
