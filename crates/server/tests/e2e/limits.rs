//! The limits, made deterministic by holding the server's one inference
//! slot from the test: a queued request waits (queue depth shows in
//! /metrics), one more is refused at once (queue full), a waiting request
//! times out, and a graceful shutdown lets a queued request finish.

use std::time::{Duration, Instant};

use heman_server::client::Client;
use heman_server::Config;

use crate::common::{config, digit, fixture, Fixture, Running};

/// Polls /metrics until `line` appears.
async fn wait_for_metric(client: &reqwest::Client, url: &str, line: &str) {
    let start = Instant::now();
    loop {
        let text = client.get(url).send().await.unwrap().text().await.unwrap();
        if text.contains(line) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{line} never showed in\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A server with the digits model, configured by `configure`, and the
/// fixture's keys registered: the fixture, the key store's folder (kept
/// while the server runs), the server, a client and the key id.
async fn start_with_keys(
    configure: impl FnOnce(&mut Config),
) -> (&'static Fixture, tempfile::TempDir, Running, Client, String) {
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut cfg = config(&fx.repo, &work.path().join("keystore"));
    configure(&mut cfg);
    let server = Running::start(cfg).await;
    let client = Client::new(&server.http.to_string()).unwrap();
    let key_id = client
        .register_keys("digits", fx.eval_keys.clone())
        .await
        .unwrap();
    (fx, work, server, client, key_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_limit_timeout_and_graceful_shutdown() {
    let (fx, _work, mut server, client, key_id) = start_with_keys(|cfg| {
        cfg.max_concurrent_inferences = 1;
        cfg.max_queue = 1;
        cfg.request_timeout = Duration::from_secs(1);
    })
    .await;
    let metrics = server.url("/metrics");
    let http = reqwest::Client::new();
    let input = digit(5);
    let ct = fx.encrypt(&input);

    // The test takes the only slot: requests now queue.
    let held = server
        .state
        .semaphore
        .clone()
        .acquire_owned()
        .await
        .unwrap();
    let queued = tokio::spawn({
        let (client, key_id, ct) = (client.clone(), key_id.clone(), ct.clone());
        async move { client.infer("digits", &key_id, &ct).await }
    });
    wait_for_metric(&http, &metrics, "heman_inference_queue_depth 1\n").await;
    // The queue (1) is full: refused at once, 503 with a message.
    let e = client.infer("digits", &key_id, &ct).await.unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    assert!(e.to_string().contains("server busy"), "{e}");
    // The queued one runs out of time: 504.
    let e = queued.await.unwrap().unwrap_err();
    assert_eq!(e.status(), Some(504), "{e}");
    assert!(e.to_string().contains("timed out after 1 s"), "{e}");
    wait_for_metric(&http, &metrics, "heman_inference_queue_depth 0\n").await;

    // Graceful shutdown: a request queued before it still gets its answer.
    let queued = tokio::spawn({
        let (client, key_id, ct) = (client.clone(), key_id.clone(), ct.clone());
        async move { client.infer("digits", &key_id, &ct).await }
    });
    wait_for_metric(&http, &metrics, "heman_inference_queue_depth 1\n").await;
    server.signal_stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(held);
    let out = queued
        .await
        .unwrap()
        .expect("queued request answered during shutdown");
    fx.assert_matches(&out, &input, "answered during shutdown");
    let addr = server.http;
    server.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

/// The query ledger end to end over HTTP: a ciphertext answered once is
/// refused the second time (its answers would average the output flooding
/// away), and a key past its budget gets 429 (the ledger's unit tests cover
/// other keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_ciphertexts_and_spent_budgets_are_refused() {
    let (fx, _work, server, client, key_id) =
        start_with_keys(|cfg| cfg.queries_per_key = Some(2)).await;
    let input = digit(4);
    let first = fx.encrypt(&input);
    let out = client.infer("digits", &key_id, &first).await.unwrap();
    fx.assert_matches(&out, &input, "first query");
    let e = client.infer("digits", &key_id, &first).await.unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert!(
        e.to_string().contains("answered under this key before"),
        "{e}"
    );
    client
        .infer("digits", &key_id, &fx.encrypt(&input))
        .await
        .unwrap();
    let e = client
        .infer("digits", &key_id, &fx.encrypt(&input))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(429), "{e}");
    assert!(e.to_string().contains("used its 2 queries"), "{e}");
    assert_eq!(server.state.ledger.answered(&key_id), 2);
    server.stop().await;
}
