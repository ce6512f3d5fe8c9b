//! Calibration: per-value statistics over a calibration set, the ranges the
//! compiler fits activations and parameters to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::graph::Graph;
use crate::io::dataset::Sample;
use crate::tensor::Tensor;

/// Statistics of one value over every element of every calibration sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValueRange {
    /// The smallest element seen.
    pub min: f64,
    /// The largest element seen.
    pub max: f64,
    /// The mean of all elements seen.
    pub mean: f64,
    /// The population standard deviation of all elements seen.
    pub std: f64,
}

impl ValueRange {
    /// The larger of `|min|` and `|max|`.
    pub fn max_abs(&self) -> f64 {
        self.min.abs().max(self.max.abs())
    }

    /// How far `x` lies outside `[min, max]` (0 inside).
    pub fn excess(&self, x: f64) -> f64 {
        (self.min - x).max(x - self.max).max(0.0)
    }
}

#[derive(Debug, Clone, Default)]
struct Accumulator {
    min: f64,
    max: f64,
    sum: f64,
    sum_sq: f64,
    count: u64,
}

impl Accumulator {
    fn add(&mut self, tensor: &Tensor) {
        if self.count == 0 {
            self.min = f64::INFINITY;
            self.max = f64::NEG_INFINITY;
        }
        for &x in tensor.data() {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            self.sum += x;
            self.sum_sq += x * x;
        }
        self.count += tensor.len() as u64;
    }

    fn finish(&self) -> ValueRange {
        let n = self.count.max(1) as f64;
        let mean = self.sum / n;
        ValueRange {
            min: self.min,
            max: self.max,
            mean,
            std: (self.sum_sq / n - mean * mean).max(0.0).sqrt(),
        }
    }
}

/// Ranges of every non-constant value (graph inputs and node outputs), keyed
/// by value name, with the number of samples they were measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRanges {
    /// How many calibration samples the ranges were measured on.
    pub samples: usize,
    /// The range of each non-constant value, keyed by value name.
    pub ranges: BTreeMap<String, ValueRange>,
}

impl CalibrationRanges {
    /// Runs the single-input `graph` on every sample and records the ranges.
    ///
    /// # Errors
    /// [`ModelError::InSample`] wrapping the first error of [`Graph::run`],
    /// naming the sample that caused it.
    pub fn measure(graph: &Graph, samples: &[Sample]) -> Result<Self> {
        Self::measure_with_progress(graph, samples, |_| {})
    }

    /// As [`CalibrationRanges::measure`], calling `progress` with the number
    /// of samples done after each one, so that long runs can report progress.
    ///
    /// # Errors
    /// As [`CalibrationRanges::measure`].
    pub fn measure_with_progress(
        graph: &Graph,
        samples: &[Sample],
        mut progress: impl FnMut(usize),
    ) -> Result<Self> {
        let mut accumulators = vec![Accumulator::default(); graph.values.len()];
        for (index, sample) in samples.iter().enumerate() {
            graph
                .run_observed(std::slice::from_ref(&sample.tensor), |id, t| {
                    accumulators[id].add(t)
                })
                .map_err(|e| ModelError::InSample {
                    sample: sample.name.clone(),
                    error: Box::new(e),
                })?;
            progress(index + 1);
        }
        let ranges = accumulators
            .iter()
            .enumerate()
            .filter(|(_, a)| a.count > 0)
            .map(|(id, a)| (graph.values[id].name.clone(), a.finish()))
            .collect();
        Ok(Self {
            samples: samples.len(),
            ranges,
        })
    }

    /// The range of the value called `name`, if it was measured.
    pub fn get(&self, name: &str) -> Option<&ValueRange> {
        self.ranges.get(name)
    }
}
