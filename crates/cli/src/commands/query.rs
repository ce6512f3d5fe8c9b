//! `heman query`: the data owner's one-shot client of `heman serve`. Makes
//! keys from the server's keyparams if needed, registers the evaluation keys
//! once (the key id is remembered in the keys directory), encrypts, asks for
//! the inference, decrypts. `--repeat`/`--concurrency` turn it into a load
//! generator that reports throughput and latency percentiles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use heman_backend::keys_dir::{EVAL_KEYS, KEYPARAMS, SECRET_KEY};
use heman_backend::{registry, DataOwner, DecryptionNoise, KeysDir};
use heman_server::client::{model_fingerprint_prefix, Client};
use tokio::sync::Mutex;
use tracing::info;

use crate::workflow::{self, human, percentile};

/// The file in a keys directory remembering key ids per server and model.
pub const REGISTRATIONS: &str = "registrations.json";

/// Data owner: encrypted inference on a `heman serve` server in one command.
#[derive(Args)]
pub struct QueryArgs {
    /// The server's HTTP URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// The model's name on the server.
    #[arg(long)]
    model: String,
    /// Keys directory: made from the server's keyparams when it holds none.
    #[arg(short, long)]
    keys: PathBuf,
    /// Input .npy.
    #[arg(short, long)]
    input: PathBuf,
    /// Decrypted output: .npy, or .npz holding every output by name (needed
    /// for a model with several outputs).
    #[arg(short, long)]
    output: PathBuf,
    /// Send the input this many times (fresh encryptions) and report
    /// throughput and latency percentiles.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Requests in flight at once (with --repeat).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// A file holding this client's bearer token (a server started with
    /// --tokens); else the HEMAN_TOKEN environment variable, if set. Not an
    /// argument: command lines are visible to other users.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Send a request again, freshly encrypted, this many times when it
    /// fails on the way (connection refused or reset, 502/503/504: a
    /// replica going away behind a load balancer); other errors fail at once.
    #[arg(long, default_value_t = 0)]
    retries: usize,
    /// Decrypt-side noise before the result is released (see `heman
    /// decrypt --decryption-noise`).
    #[arg(long, value_parser = DecryptionNoise::parse)]
    decryption_noise: Option<DecryptionNoise>,
}

/// The environment variable `heman query` reads a bearer token from.
pub const TOKEN_VARIABLE: &str = "HEMAN_TOKEN";

/// The bearer token from `--token-file` or [`TOKEN_VARIABLE`], if any.
fn token(file: Option<&Path>) -> Result<Option<zeroize::Zeroizing<String>>> {
    let token = match file {
        Some(path) => zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the token file {}", path.display()))?,
        ),
        None => match std::env::var(TOKEN_VARIABLE) {
            Ok(t) => zeroize::Zeroizing::new(t),
            Err(_) => return Ok(None),
        },
    };
    if token.trim().is_empty() {
        bail!("the bearer token is empty");
    }
    Ok(Some(token))
}

pub fn run(args: QueryArgs) -> Result<()> {
    if args.repeat == 0 || args.concurrency == 0 {
        bail!("--repeat and --concurrency must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(query(args))
}

async fn query(args: QueryArgs) -> Result<()> {
    let mut client = Client::new(&args.url)?;
    if let Some(token) = token(args.token_file.as_deref())? {
        client = client.with_token(&token);
    }
    let keyparams_text = client.keyparams(&args.model).await?;
    let keys = args.keys.clone();
    let (owner, approximate) =
        tokio::task::spawn_blocking(move || ensure_keys(&keys, &keyparams_text)).await??;
    workflow::check_output_path(&args.output, owner.outputs())?;
    let key_id = ensure_registered(&client, &args.model, &args.keys).await?;

    let tensor = heman_model::io::npy::read_npy(&args.input)?;
    let origin = args.input.display().to_string();
    let owner = Arc::new(owner);
    let retry = Retry {
        attempts: args.retries,
        fresh: {
            let owner = owner.clone();
            Arc::new(move || Ok(owner.encrypt(&tensor, &origin)?))
        },
    };
    let ciphertexts: Vec<Vec<u8>> = {
        let fresh = retry.fresh.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>> {
            (0..args.repeat).map(|_| fresh()).collect()
        })
        .await??
    };
    info!(
        bytes = ciphertexts[0].len(),
        requests = args.repeat,
        "input encrypted"
    );

    let sent = send_all(
        &client,
        &args.model,
        &key_id,
        ciphertexts,
        args.concurrency,
        &retry,
    )
    .await?;
    let (answers, latencies, wall) = (sent.answers, sent.latencies, sent.wall);
    let output_size = answers[0].len();
    let noise = args.decryption_noise;
    let decrypted: Vec<workflow::NamedOutputs> = {
        let owner = owner.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<workflow::NamedOutputs>> {
            answers
                .iter()
                .enumerate()
                .map(|(i, bytes)| {
                    let (outputs, note) =
                        workflow::decrypt_output(&**owner, bytes, Path::new(ANSWER), noise)?;
                    if let (0, Some(note)) = (i, note) {
                        println!("{note}");
                    }
                    Ok(outputs)
                })
                .collect()
        })
        .await??
    };
    // Every answer must be the same result up to noise (the server floods
    // outputs: about two bits of precision, 1.3% at most measured on the
    // digits example, so two answers may differ by twice that): a damaged
    // answer under load shows here. Only where activations are approximated
    // (CKKS): with exact activations (TFHE), a model compiled without
    // --exact may misread a bootstrap now and then, and a misread
    // activation can move an output by more.
    let first = &decrypted[0];
    let compare = approximate;
    for (i, answer) in decrypted.iter().enumerate().skip(1).filter(|_| compare) {
        for ((name, y), (_, reference)) in answer.iter().zip(first) {
            let scale = reference.max_abs().max(1.0);
            let diff = y
                .data()
                .iter()
                .zip(reference.data())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            if y.shape() != reference.shape() || diff > 0.05 * scale {
                bail!("answer {i} differs from answer 0 by {diff} (of {scale}) on output '{name}': the server answered inconsistently");
            }
        }
    }
    workflow::write_outputs(&args.output, first)?;
    println!(
        "{} (answer {})",
        workflow::describe_outputs(&args.output, first),
        human(output_size as u64)
    );
    if args.repeat > 1 {
        let mut ms: Vec<f64> = latencies.iter().map(|s| s * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "{} requests, {} in flight: {:.2} s, {:.2} inferences/s, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} retried",
            args.repeat,
            args.concurrency,
            wall,
            args.repeat as f64 / wall,
            percentile(&ms, 0.50),
            percentile(&ms, 0.99),
            ms[ms.len() - 1],
            sent.retries,
        );
    }
    Ok(())
}

/// How the server's answers are named in messages.
const ANSWER: &str = "the server's answer";

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// The keys in `keys`, made from the server's keyparams when absent;
/// refuses keys made for other keyparams rather than overwriting a secret
/// key. Answers the data owner and whether the backend approximates.
fn ensure_keys(keys: &Path, server_keyparams: &str) -> Result<(Box<dyn DataOwner>, bool)> {
    std::fs::create_dir_all(keys).with_context(|| format!("creating {}", keys.display()))?;
    let received = keys.join(".server-keyparams.json");
    std::fs::write(&received, server_keyparams)
        .with_context(|| format!("writing {}", received.display()))?;
    let backend = registry::for_keyparams(server_keyparams.as_bytes(), &received)
        .context("the server's keyparams")?;
    let ours = keys.join(KEYPARAMS);
    if keys.join(SECRET_KEY).exists() {
        let existing = read_json(&ours).with_context(|| {
            format!(
                "{} holds a secret key but no readable {KEYPARAMS}",
                keys.display()
            )
        })?;
        let server = read_json(&received)?;
        if existing != server {
            bail!(
                "{} holds keys for other keyparams (model {}, the server's is {}); use another --keys directory",
                keys.display(),
                model_fingerprint_prefix(&existing),
                model_fingerprint_prefix(&server)
            );
        }
        std::fs::remove_file(&received).ok();
    } else {
        println!(
            "making keys in {} for the {} backend ({}):",
            keys.display(),
            backend.name(),
            backend.about()
        );
        for line in backend.describe_keyparams(server_keyparams.as_bytes(), &received)? {
            println!("  {line}");
        }
        std::fs::rename(&received, &ours).with_context(|| format!("writing {}", ours.display()))?;
        workflow::keygen(&ours, keys)?;
    }
    Ok((KeysDir::at(keys).open()?, !backend.exact_activations()))
}

/// The key id of `keys/eval.keys` on this server, registering them when the
/// server does not know them (first use, or a server that lost them).
async fn ensure_registered(client: &Client, model: &str, keys: &Path) -> Result<String> {
    let path = keys.join(REGISTRATIONS);
    let mut registrations: BTreeMap<String, String> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a registrations file", path.display()))?,
        Err(_) => BTreeMap::new(),
    };
    let entry = format!("{} {model}", client.base());
    let save = |registrations: &BTreeMap<String, String>| {
        std::fs::write(&path, serde_json::to_vec_pretty(registrations)?)
            .with_context(|| format!("writing {}", path.display()))
    };
    if let Some(id) = registrations.get(&entry) {
        if client.key_registered(model, id).await? {
            info!(key_id = %id, "evaluation keys already registered");
            return Ok(id.clone());
        }
        info!(key_id = %id, "the server no longer knows the keys: registering again");
    }
    let eval_keys = keys.join(EVAL_KEYS);
    let bytes =
        std::fs::read(&eval_keys).with_context(|| format!("reading {}", eval_keys.display()))?;
    // Key ids are content addresses: a server (or a replica sharing its key
    // store) may know these keys already; then they need not travel.
    let local_id = heman_server::keystore::key_id(&bytes);
    if client.key_registered(model, &local_id).await? {
        info!(key_id = %local_id, "the server knows these keys already");
        registrations.insert(entry, local_id.clone());
        save(&registrations)?;
        return Ok(local_id);
    }
    let size = bytes.len();
    let start = Instant::now();
    let id = client.register_keys(model, bytes).await?;
    println!(
        "registered {} ({}) as key id {id} in {:.2} s",
        eval_keys.display(),
        human(size as u64),
        start.elapsed().as_secs_f64()
    );
    registrations.insert(entry, id.clone());
    save(&registrations)?;
    Ok(id)
}

/// How failed requests are sent again: how many times each, and how a
/// fresh encryption of the input is made (a retry never resends a
/// ciphertext: the server answers an input's masks once).
struct Retry {
    attempts: usize,
    fresh: Arc<dyn Fn() -> Result<Vec<u8>> + Send + Sync>,
}

/// Every request's answer, in input order, with its latency (s, retries
/// included), the wall time (s) and the retries made.
struct Sent {
    answers: Vec<Vec<u8>>,
    latencies: Vec<f64>,
    wall: f64,
    retries: usize,
}

/// Sends every ciphertext with `concurrency` requests in flight.
async fn send_all(
    client: &Client,
    model: &str,
    key_id: &str,
    ciphertexts: Vec<Vec<u8>>,
    concurrency: usize,
    retry: &Retry,
) -> Result<Sent> {
    let count = ciphertexts.len();
    let queue = Arc::new(Mutex::new(
        ciphertexts.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(count) {
        let (queue, client, model, key_id) = (
            queue.clone(),
            client.clone(),
            model.to_string(),
            key_id.to_string(),
        );
        let retry = Retry {
            attempts: retry.attempts,
            fresh: retry.fresh.clone(),
        };
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let Some((i, ct)) = queue.lock().await.pop() else {
                    return Ok::<_, anyhow::Error>(done);
                };
                let sent = Instant::now();
                let fresh = || {
                    let fresh = retry.fresh.clone();
                    async move { tokio::task::spawn_blocking(move || fresh()).await? }
                };
                let (answer, retries) = client
                    .infer_retrying::<anyhow::Error, _, _>(
                        &model,
                        &key_id,
                        ct,
                        retry.attempts,
                        fresh,
                    )
                    .await
                    .with_context(|| format!("request {i}"))?;
                done.push((i, answer, sent.elapsed().as_secs_f64(), retries));
            }
        });
    }
    let mut results = Vec::with_capacity(count);
    while let Some(joined) = workers.join_next().await {
        results.extend(joined.context("a client task failed")??);
    }
    let wall = start.elapsed().as_secs_f64();
    if results.len() != count {
        bail!("{} of {count} requests answered", results.len());
    }
    results.sort_by_key(|(i, _, _, _)| *i);
    Ok(Sent {
        latencies: results.iter().map(|(_, _, s, _)| *s).collect(),
        retries: results.iter().map(|(_, _, _, r)| r).sum(),
        answers: results.into_iter().map(|(_, a, _, _)| a).collect(),
        wall,
    })
}
