//! The noise and error budget of a plan, from the parameter set's noise
//! model: the variance at every bootstrap's blind rotation and at the
//! output's decryption, and the probability that each reads a value other
//! than the one encrypted (a misread).
//!
//! A read of integer `u` encoded at `delta` is right while the noise stays
//! within `delta / 2`; a window holding more values than the table has
//! positions rounds instead (its reads are approximate by design and the
//! noise, in window values, is the figure that matters).

use heman_tfhe::{log2_error_probability, KeyChoice, NoiseModel};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::tfhe::plan::{Plan, PlanStage};

/// Noise variance (fraction of the torus, squared) per value at each read.
#[derive(Debug, Clone)]
pub struct NoiseProfile {
    /// For each lookup stage: the variance at the blind rotation per value.
    pub reads: Vec<Option<Vec<f64>>>,
    /// At the output's decryption, per value: the computation's noise, a
    /// public-key encryption of zero and the flooding (the model owner
    /// re-randomises every output, `heman_tfhe::OutputPublicKey`).
    pub output: Vec<f64>,
    /// The flooding Gaussian's variance: the largest output noise of the
    /// computation itself (flooding at the noise bound, as on CKKS).
    pub output_flooding: f64,
    /// For each linear stage: the largest 2-norm of its rows' integer weights.
    pub weight_norms: Vec<Option<f64>>,
}

impl NoiseProfile {
    /// The noise of every value of `plan`, propagated stage by stage from the
    /// input's fresh encryptions.
    pub fn of(plan: &Plan) -> Self {
        let model = NoiseModel::of(plan.preset);
        let volume: usize = plan.input.shape.iter().product();
        // Values stay under the input's key until their first bootstrap.
        let small = match plan.input.key {
            KeyChoice::Small => Plan::small_key_values(&plan.stages),
            KeyChoice::Big => None,
        }
        .unwrap_or_else(|| vec![false; plan.stages.len() + 1]);
        let key_of = |v: usize| {
            if small[v] {
                KeyChoice::Small
            } else {
                KeyChoice::Big
            }
        };
        let mut variances = vec![vec![model.fresh_under(plan.input.key); volume]];
        let mut reads = Vec::with_capacity(plan.stages.len());
        let mut weight_norms = Vec::with_capacity(plan.stages.len());
        for stage in &plan.stages {
            let read: Vec<f64> = stage
                .inputs()
                .iter()
                .flat_map(|&v| variances[v].iter().copied())
                .collect();
            let key = key_of(stage.inputs()[0]);
            let out = match stage {
                PlanStage::Linear(l) => {
                    let rows: Vec<(f64, f64)> = (0..l.rows.rows())
                        .into_par_iter()
                        .map(|r| {
                            l.rows.row(r).fold((0.0, 0.0), |(v, n), (c, w)| {
                                let w2 = (w as f64) * (w as f64);
                                (v + w2 * read[c as usize], n + w2)
                            })
                        })
                        .collect();
                    weight_norms.push(Some(rows.iter().fold(0.0f64, |m, r| m.max(r.1.sqrt()))));
                    reads.push(None);
                    rows.iter().map(|r| r.0).collect()
                }
                PlanStage::Lookup(l) => {
                    reads.push(Some(
                        read.iter().map(|&v| model.at_rotation(v, key)).collect(),
                    ));
                    weight_norms.push(None);
                    vec![model.bootstrap; l.table_of.len()]
                }
                PlanStage::Max(m) => {
                    // Per pair: the difference's variance at the rotation
                    // (0 for a single input), then a + relu(b - a).
                    let (at_read, out): (Vec<f64>, Vec<f64>) = m
                        .pairs
                        .iter()
                        .map(|&(a, b)| {
                            let va = read[a as usize];
                            match b {
                                Some(b) => (
                                    model.at_rotation(va + read[b as usize], key),
                                    va + model.bootstrap,
                                ),
                                None => (0.0, va),
                            }
                        })
                        .unzip();
                    reads.push(Some(at_read));
                    weight_norms.push(Some(2f64.sqrt()));
                    out
                }
            };
            variances.push(out);
        }
        let variance = variances.pop().expect("the input's variances");
        let output_flooding = variance.iter().fold(0.0f64, |m, &v| m.max(v));
        let output = variance
            .iter()
            .map(|v| v + model.public_zero + output_flooding)
            .collect();
        Self {
            reads,
            output,
            output_flooding,
            weight_norms,
        }
    }
}

/// One read point of the plan (a lookup stage, or the output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadBudget {
    /// The stage index, `None` for the output's decryption.
    pub stage: Option<usize>,
    /// The stage's name (`output` for the decryption).
    pub name: String,
    /// Values read there (bootstraps, or decrypted outputs).
    pub values: usize,
    /// The widest accumulator window read (values).
    pub widest_window: u64,
    /// The largest 2-norm of the integer weights feeding it.
    pub weight_norm: f64,
    /// The largest noise standard deviation, in window values.
    pub noise_std: f64,
    /// log2 of the largest misread probability of one value.
    pub log2_error: f64,
    /// Expected misreads per inference.
    pub expected_misreads: f64,
}

/// The noise and misread probability at every read point of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// Every lookup and max stage in order, then the output.
    pub reads: Vec<ReadBudget>,
}

impl BudgetReport {
    /// The budget of `plan` under its preset's noise model.
    pub fn of(plan: &Plan) -> Self {
        let profile = NoiseProfile::of(plan);
        let mut reads = Vec::new();
        // The weight norm feeding a read: the stage producing its input's.
        let norm_of = |v: usize| {
            v.checked_sub(1)
                .and_then(|s| profile.weight_norms[s])
                .unwrap_or(1.0)
        };
        let read = |variances: &[f64], delta: f64| {
            let worst = variances.iter().fold(0.0f64, |m, &v| m.max(v));
            let log2_p: Vec<f64> = variances
                .iter()
                .map(|&v| log2_error_probability(delta / 2.0, v))
                .collect();
            (
                worst.sqrt() / delta,
                log2_p.iter().fold(f64::NEG_INFINITY, |m, &p| m.max(p)),
                log2_p.iter().map(|&p| p.exp2()).sum::<f64>(),
            )
        };
        for (index, stage) in plan.stages.iter().enumerate() {
            let Some(variances) = &profile.reads[index] else {
                continue;
            };
            let (delta, window, values) = match stage {
                PlanStage::Lookup(l) => (l.input_encoding, l.widest_window(), l.table_of.len()),
                PlanStage::Max(m) => (m.encoding, m.window().count, m.bootstraps()),
                PlanStage::Linear(_) => continue,
            };
            let read_variances: Vec<f64> = variances.iter().copied().filter(|&v| v > 0.0).collect();
            let (noise_std, log2_error, expected) = read(&read_variances, delta.torus_fraction());
            reads.push(ReadBudget {
                stage: Some(index),
                name: stage.name().to_string(),
                values,
                widest_window: window,
                weight_norm: norm_of(stage.inputs()[0]),
                noise_std,
                log2_error,
                expected_misreads: expected,
            });
        }
        let (noise_std, log2_error, expected) =
            read(&profile.output, plan.output.encoding.torus_fraction());
        reads.push(ReadBudget {
            stage: None,
            name: "output".into(),
            values: plan.output.values.len(),
            widest_window: plan.output.values.count.iter().copied().max().unwrap_or(0),
            weight_norm: norm_of(plan.stages.len()),
            noise_std,
            log2_error,
            expected_misreads: expected,
        });
        Self { reads }
    }

    /// log2 of the probability that any value of an inference is misread
    /// (union bound).
    pub fn log2_any_error(&self) -> f64 {
        let total: f64 = self.reads.iter().map(|r| r.expected_misreads).sum();
        if total > 0.0 {
            total.log2().min(0.0)
        } else {
            self.reads
                .iter()
                .map(|r| r.log2_error + (r.values.max(1) as f64).log2())
                .fold(f64::NEG_INFINITY, f64::max)
                .min(0.0)
        }
    }

    /// The worst single-value misread probability (log2) over all reads.
    pub fn worst_log2_error(&self) -> f64 {
        self.reads
            .iter()
            .map(|r| r.log2_error)
            .fold(f64::NEG_INFINITY, f64::max)
    }
}
