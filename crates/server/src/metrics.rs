//! Prometheus text-format metrics: inference requests by protocol and
//! outcome, their latency, the queue depth, the inferences running.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::ServerError;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The protocols requests are counted by.
const PROTOCOLS: [&str; 2] = ["http", "grpc"];

/// Why admission refused requests (a label of the refusals counter).
const REFUSALS: [&str; 4] = ["unauthenticated", "too_large", "busy", "client_quota"];

/// One protocol's counters.
#[derive(Default)]
struct PerProtocol {
    success: AtomicU64,
    failure: AtomicU64,
    /// Cumulative bucket counts, as Prometheus histograms are.
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
}

/// Counters shared by all requests.
#[derive(Default)]
pub struct Metrics {
    protocols: [PerProtocol; PROTOCOLS.len()],
    /// Requests waiting for an inference slot.
    pub queued: AtomicU64,
    /// Inferences (and key parses) holding a slot.
    pub running: AtomicU64,
    /// Successful key registrations.
    pub keys_registered: AtomicU64,
    /// Requests refused at admission, by [`REFUSALS`].
    refusals: [AtomicU64; REFUSALS.len()],
}

impl Metrics {
    /// Records one finished inference request.
    pub fn record(&self, protocol: &str, elapsed: Duration, ok: bool) {
        let i = PROTOCOLS.iter().position(|p| *p == protocol).unwrap_or(0);
        let p = &self.protocols[i];
        if ok { &p.success } else { &p.failure }.fetch_add(1, Ordering::Relaxed);
        let s = elapsed.as_secs_f64();
        for (b, bound) in p.buckets.iter().zip(BUCKETS) {
            if s <= bound {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        p.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Records a request refused at admission (before its body was read).
    pub fn record_refusal(&self, error: &ServerError) {
        let reason = match error {
            ServerError::Unauthenticated(_) => "unauthenticated",
            ServerError::TooLarge(_) => "too_large",
            ServerError::ClientQuota(_) => "client_quota",
            _ => "busy",
        };
        let i = REFUSALS.iter().position(|r| *r == reason).unwrap_or(0);
        self.refusals[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = String::new();
        s += "# HELP heman_inference_requests_total Inference requests by protocol and outcome.\n";
        s += "# TYPE heman_inference_requests_total counter\n";
        for (name, p) in PROTOCOLS.iter().zip(&self.protocols) {
            for (outcome, n) in [("success", &p.success), ("failure", &p.failure)] {
                let _ = writeln!(
                    s,
                    "heman_inference_requests_total{{protocol=\"{name}\",outcome=\"{outcome}\"}} {}",
                    load(n)
                );
            }
        }
        s += "# HELP heman_inference_queue_depth Requests waiting for an inference slot.\n";
        s += "# TYPE heman_inference_queue_depth gauge\n";
        let _ = writeln!(s, "heman_inference_queue_depth {}", load(&self.queued));
        s += "# HELP heman_inference_running Inferences and key parses holding a slot.\n";
        s += "# TYPE heman_inference_running gauge\n";
        let _ = writeln!(s, "heman_inference_running {}", load(&self.running));
        s += "# HELP heman_keys_registered_total Successful evaluation-key registrations.\n";
        s += "# TYPE heman_keys_registered_total counter\n";
        let _ = writeln!(
            s,
            "heman_keys_registered_total {}",
            load(&self.keys_registered)
        );
        s += "# HELP heman_admission_refusals_total Requests refused before their body was read, by reason.\n";
        s += "# TYPE heman_admission_refusals_total counter\n";
        for (reason, n) in REFUSALS.iter().zip(&self.refusals) {
            let _ = writeln!(
                s,
                "heman_admission_refusals_total{{reason=\"{reason}\"}} {}",
                load(n)
            );
        }
        s += "# HELP heman_inference_duration_seconds Inference request latency, queueing included.\n";
        s += "# TYPE heman_inference_duration_seconds histogram\n";
        for (name, p) in PROTOCOLS.iter().zip(&self.protocols) {
            for (b, bound) in p.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    s,
                    "heman_inference_duration_seconds_bucket{{protocol=\"{name}\",le=\"{bound}\"}} {}",
                    load(b)
                );
            }
            let count = load(&p.success) + load(&p.failure);
            let _ = writeln!(
                s,
                "heman_inference_duration_seconds_bucket{{protocol=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                s,
                "heman_inference_duration_seconds_sum{{protocol=\"{name}\"}} {}",
                load(&p.sum_micros) as f64 / 1e6
            );
            let _ = writeln!(
                s,
                "heman_inference_duration_seconds_count{{protocol=\"{name}\"}} {count}"
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let m = Metrics::default();
        m.record("http", Duration::from_millis(30), true);
        m.record("http", Duration::from_secs(2), false);
        m.record("grpc", Duration::from_millis(5), true);
        let text = m.render();
        for line in [
            "heman_inference_requests_total{protocol=\"http\",outcome=\"success\"} 1",
            "heman_inference_requests_total{protocol=\"http\",outcome=\"failure\"} 1",
            "heman_inference_requests_total{protocol=\"grpc\",outcome=\"success\"} 1",
            "heman_inference_duration_seconds_bucket{protocol=\"http\",le=\"0.05\"} 1",
            "heman_inference_duration_seconds_bucket{protocol=\"http\",le=\"2.5\"} 2",
            "heman_inference_duration_seconds_bucket{protocol=\"http\",le=\"+Inf\"} 2",
            "heman_inference_duration_seconds_count{protocol=\"grpc\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
