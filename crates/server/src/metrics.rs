//! Prometheus text-format metrics: inference counts, latency, queue depth.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

/// Counters shared by all requests.
#[derive(Default)]
pub struct Metrics {
    success: AtomicU64,
    failure: AtomicU64,
    /// Requests waiting for an inference slot.
    pub queued: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
}

impl Metrics {
    /// Records one finished inference request.
    pub fn record(&self, elapsed: Duration, ok: bool) {
        if ok { &self.success } else { &self.failure }.fetch_add(1, Ordering::Relaxed);
        let s = elapsed.as_secs_f64();
        for (b, bound) in self.buckets.iter().zip(BUCKETS) {
            if s <= bound {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The metrics in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let ok = self.success.load(Ordering::Relaxed);
        let failed = self.failure.load(Ordering::Relaxed);
        let mut s = String::new();
        s += "# HELP heman_inference_requests_total Inference requests by outcome.\n";
        s += "# TYPE heman_inference_requests_total counter\n";
        s += &format!("heman_inference_requests_total{{outcome=\"success\"}} {ok}\n");
        s += &format!("heman_inference_requests_total{{outcome=\"failure\"}} {failed}\n");
        s += "# HELP heman_inference_queue_depth Requests waiting for an inference slot.\n";
        s += "# TYPE heman_inference_queue_depth gauge\n";
        s += &format!(
            "heman_inference_queue_depth {}\n",
            self.queued.load(Ordering::Relaxed)
        );
        s += "# HELP heman_inference_duration_seconds Inference request latency.\n";
        s += "# TYPE heman_inference_duration_seconds histogram\n";
        for (b, bound) in self.buckets.iter().zip(BUCKETS) {
            s += &format!(
                "heman_inference_duration_seconds_bucket{{le=\"{bound}\"}} {}\n",
                b.load(Ordering::Relaxed)
            );
        }
        s += &format!(
            "heman_inference_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
            ok + failed
        );
        s += &format!(
            "heman_inference_duration_seconds_sum {}\n",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        s += &format!("heman_inference_duration_seconds_count {}\n", ok + failed);
        s
    }
}
