//! A bounded load test: 8 concurrent clients share 50 requests on distinct
//! inputs; every answer must arrive and decrypt to its own input's
//! plaintext result (a mixed-up or lost answer fails).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::common::{config, digit, fixture, Running};

const CLIENTS: usize = 8;
const REQUESTS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_fifty_requests_all_correct() {
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut cfg = config(&fx.repo, &work.path().join("keystore"));
    cfg.max_concurrent_inferences = 2;
    let server = Running::start(cfg).await;
    let client = heman_server::client::Client::new(&server.http.to_string()).unwrap();
    let key_id = client
        .register_keys("digits", fx.eval_keys.clone())
        .await
        .unwrap();

    // Inputs encrypted up front: the clock measures the server only.
    let jobs: Vec<(usize, Vec<u8>)> = tokio::task::spawn_blocking(|| {
        (0..REQUESTS)
            .map(|i| (i, fixture().encrypt(&digit(i))))
            .collect()
    })
    .await
    .unwrap();
    let queue = Arc::new(Mutex::new(jobs));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (queue, client, key_id) = (queue.clone(), client.clone(), key_id.clone());
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let Some((i, ct)) = queue.lock().unwrap().pop() else {
                    return done;
                };
                let sent = Instant::now();
                let answer = client.infer("digits", &key_id, &ct).await;
                done.push((i, sent.elapsed(), answer));
            }
        }));
    }
    let mut results = Vec::new();
    for w in workers {
        results.extend(w.await.unwrap());
    }
    let wall = start.elapsed();
    assert_eq!(results.len(), REQUESTS, "requests lost");
    let mut latencies = Vec::new();
    let mut seen = [false; REQUESTS];
    let mut worst = 0.0f64;
    for (i, latency, answer) in results {
        let output = answer.unwrap_or_else(|e| panic!("request {i} failed: {e}"));
        worst = worst.max(fx.assert_matches(&output, &digit(i), &format!("request {i}")));
        seen[i] = true;
        latencies.push(latency);
    }
    assert!(seen.iter().all(|s| *s), "an input went unanswered");
    // The check above tells answers apart: any two inputs' plaintext
    // results differ by more than the tolerance, so a swapped answer fails.
    let expected: Vec<_> = (0..REQUESTS).map(|i| fx.expected(&digit(i))).collect();
    for i in 0..REQUESTS {
        for j in 0..i {
            let apart = heman_testkit::max_abs_error(&expected[i], &expected[j]);
            let allowed = heman_testkit::FLOODED.absolute(&expected[i]);
            assert!(
                apart > 2.0 * allowed,
                "inputs {i} and {j} too alike ({apart}) to detect a swap"
            );
        }
    }
    let slowest = latencies.iter().max().unwrap();
    // Throughput only: other tests may share the CPU; `heman query --repeat`
    // measures latency percentiles on a quiet machine.
    println!(
        "load: {CLIENTS} clients, {REQUESTS} requests in {:.2} s ({:.1} inferences/s, slowest {:.0} ms), largest deviation {worst:.4}",
        wall.as_secs_f64(),
        REQUESTS as f64 / wall.as_secs_f64(),
        slowest.as_secs_f64() * 1e3,
    );
    let metrics = server.state.metrics.render();
    assert!(
        metrics.contains(&format!(
            "heman_inference_requests_total{{protocol=\"http\",outcome=\"success\"}} {REQUESTS}"
        )),
        "{metrics}"
    );
    server.stop().await;
}
