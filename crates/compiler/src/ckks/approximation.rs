//! Polynomial replacements for activations, fitted on calibrated intervals,
//! and the agreement of the approximated model with the exact one.
//!
//! When an activation follows an affine stage, the change of variable that
//! maps its interval `[a, b]` onto `[-1, 1]` is folded into that stage's
//! weights and bias, so the polynomial runs on `[-1, 1]` with no level spent
//! on the change of variable.

use heman_ckks::ChebyshevApproximation;
use heman_model::ops::Activation;
use std::collections::HashMap;

use heman_model::{CalibrationRanges, Graph, Tensor, ValueId};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::fit;
use crate::error::{CompileError, Result};
use crate::graph::linear_map::AffineMap;
use crate::graph::stages::{Stage, StageKind};
use crate::graph::{same_decisions, OutputTensor};

/// Candidate degrees: `2^k - 1` use the depth best.
pub const DEGREES: [usize; 6] = [3, 7, 15, 31, 63, 127];

/// Fraction of the calibrated width added on each side of an activation's
/// interval, for inputs slightly beyond what calibration saw (the default
/// of [`Intervals::margin`]).
pub const MARGIN: f64 = 0.1;

/// Where the activation polynomials are defined: each activation input's
/// calibrated range widened by `margin` of its width on both sides. A
/// polynomial grows without bound beyond its interval (a degree-127 ReLU
/// the most), so inputs past the margin break the network, while a wider
/// margin spends the degree on values calibration never saw: ResNet-20's
/// test images went past 10% by up to 41% (README, *Deep networks*).
#[derive(Debug, Clone, Copy)]
pub struct Intervals<'a> {
    /// The calibrated range of every value.
    pub ranges: &'a CalibrationRanges,
    /// The share of each range's width added on both sides.
    pub margin: f64,
}

/// A polynomial in Chebyshev form on `domain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Polynomial {
    /// Chebyshev coefficients, `c_0` first.
    pub coefficients: Vec<f64>,
    /// The interval `[a, b]` the polynomial is defined on.
    pub domain: (f64, f64),
}

impl Polynomial {
    /// The polynomial as the CKKS crate's evaluable Chebyshev approximation.
    pub fn approximation(&self) -> Result<ChebyshevApproximation> {
        ChebyshevApproximation::from_coefficients(
            self.coefficients.clone(),
            self.domain.0,
            self.domain.1,
        )
        .map_err(|e| CompileError::Graph(format!("polynomial: {e}")))
    }

    /// Levels its evaluation consumes (`usize::MAX` for invalid coefficients).
    pub fn depth(&self) -> usize {
        self.approximation().map_or(usize::MAX, |a| a.depth())
    }
}

/// The stages of a graph with their probed affine maps.
#[derive(Debug, Clone)]
pub struct StageMaps {
    /// The graph's stages, in evaluation order.
    pub stages: Vec<Stage>,
    /// The maps of each affine stage, one per input (empty for the others).
    pub maps: Vec<Vec<AffineMap>>,
}

impl StageMaps {
    /// Probes the affine maps of every affine stage of `stages`.
    pub fn probe(graph: &Graph, stages: Vec<Stage>) -> Self {
        let maps = stages
            .iter()
            .map(|s| match &s.kind {
                StageKind::Affine { nodes } => AffineMap::probe_region(graph, nodes, &s.inputs),
                _ => Vec::new(),
            })
            .collect();
        Self { stages, maps }
    }

    /// The affine stage whose change of variable may absorb activation
    /// stage `index`'s: the producer of its input, when that is an affine
    /// stage and nothing else reads its output.
    fn folding_producer(&self, index: usize) -> Option<usize> {
        let source = *self.stages[index].sources.first()?;
        let producer = source.checked_sub(1)?;
        let readers = self
            .stages
            .iter()
            .flat_map(|s| &s.sources)
            .filter(|&&v| v == source)
            .count();
        (readers == 1 && !self.maps[producer].is_empty()).then_some(producer)
    }
}

/// One activation's calibrated interval, widened by the margin.
fn interval(graph: &Graph, stage: &Stage, intervals: Intervals<'_>) -> Result<(f64, f64)> {
    let name = &graph.value(stage.inputs[0]).name;
    let range = intervals.ranges.get(name).ok_or_else(|| {
        CompileError::Graph(format!(
            "activation '{}' needs the calibrated range of '{name}'",
            stage.name
        ))
    })?;
    let width = (range.max - range.min).max(1e-6);
    let margin = intervals.margin * width;
    Ok((range.min - margin, range.max + margin))
}

/// Activations replaced by polynomials of the given degrees (one per
/// activation stage, in order), with changes of variable folded into the
/// affine stages that produce their inputs.
#[derive(Debug, Clone)]
pub struct Approximated {
    /// Per stage: the maps of an affine stage (one per input), with the
    /// change of variable of the activation it feeds folded in.
    pub maps: Vec<Vec<AffineMap>>,
    /// Per stage: the polynomial of an activation stage.
    pub polynomials: Vec<Option<Polynomial>>,
    /// Per stage: the calibrated interval (input units) of an activation stage.
    pub intervals: Vec<Option<(f64, f64)>>,
}

/// The inputs each activation stage saw on calibration samples (the exact
/// model's values, thinned to [`fit::MAX_POINTS`]), which its polynomial is
/// fitted to.
#[derive(Debug, Clone, Default)]
pub struct ActivationInputs {
    /// Per activation stage index, its observed input elements.
    pub values: HashMap<usize, Vec<f64>>,
}

impl ActivationInputs {
    /// The activation stages' inputs over `inputs` (model inputs).
    pub fn observe(graph: &Graph, stage_maps: &StageMaps, inputs: &[&Tensor]) -> Result<Self> {
        let watched: HashMap<ValueId, usize> = stage_maps
            .stages
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.kind, StageKind::Activation(_)))
            .map(|(index, s)| (s.inputs[0], index))
            .collect();
        let mut values: HashMap<usize, Vec<f64>> = HashMap::new();
        for x in inputs {
            graph.run_observed(std::slice::from_ref(*x), |id, t| {
                if let Some(&stage) = watched.get(&id) {
                    values.entry(stage).or_default().extend_from_slice(t.data());
                }
            })?;
        }
        for v in values.values_mut() {
            let stride = v.len().div_ceil(fit::MAX_POINTS).max(1);
            *v = v.iter().step_by(stride).copied().collect();
        }
        Ok(Self { values })
    }
}

/// Replaces the activations by polynomials of `degrees` (one per
/// activation stage, in order) on their calibrated intervals: fitted to the
/// inputs `observed` saw ([`fit::fit`]), or interpolated at Chebyshev nodes
/// where it saw none.
pub fn approximate(
    graph: &Graph,
    stage_maps: &StageMaps,
    intervals: Intervals<'_>,
    degrees: &[usize],
    observed: &ActivationInputs,
) -> Result<Approximated> {
    let mut maps = stage_maps.maps.clone();
    let mut polynomials = vec![None; stage_maps.stages.len()];
    let mut chosen = vec![None; stage_maps.stages.len()];
    let mut next_degree = degrees.iter();
    for (index, stage) in stage_maps.stages.iter().enumerate() {
        let StageKind::Activation(function) = stage.kind else {
            continue;
        };
        let degree = *next_degree
            .next()
            .ok_or_else(|| CompileError::Graph("a degree per activation".into()))?;
        let (a, b) = interval(graph, stage, intervals)?;
        chosen[index] = Some((a, b));
        let points = observed.values.get(&index).map_or(&[][..], Vec::as_slice);
        let fit = |f: &dyn Fn(f64) -> f64, lo: f64, hi: f64, points: &[f64]| {
            let fitted = (!points.is_empty())
                .then(|| fit::fit(f, (lo, hi), degree, points))
                .flatten();
            match fitted {
                Some(coefficients) => {
                    ChebyshevApproximation::from_coefficients(coefficients, lo, hi)
                }
                None => ChebyshevApproximation::interpolate(f, lo, hi, degree),
            }
            .map_err(|e| CompileError::Graph(format!("approximating '{}': {e}", stage.name)))
        };
        let approximation = match stage_maps.folding_producer(index) {
            Some(producer) => {
                // The producer outputs t = alpha x + beta in [-1, 1]: every
                // part scaled, the bias (in the first part) shifted.
                let (alpha, beta) = (2.0 / (b - a), -(a + b) / (b - a));
                for (k, map) in maps[producer].iter_mut().enumerate() {
                    *map = map.scaled(alpha, if k == 0 { beta } else { 0.0 });
                }
                let moved: Vec<f64> = points.iter().map(|x| alpha * x + beta).collect();
                fit(&|t| function.apply((t - beta) / alpha), -1.0, 1.0, &moved)?
            }
            None => fit(&|x| function.apply(x), a, b, points)?,
        };
        let (lo, hi) = approximation.interval();
        polynomials[index] = Some(Polynomial {
            coefficients: approximation.coefficients().to_vec(),
            domain: (lo, hi),
        });
    }
    Ok(Approximated {
        maps,
        polynomials,
        intervals: chosen,
    })
}

/// Runs the approximated stages in plain arithmetic.
pub fn run_approximated(stage_maps: &StageMaps, approx: &Approximated, input: &[f64]) -> Vec<f64> {
    let mut values: Vec<Vec<f64>> = vec![input.to_vec()];
    for (index, stage) in stage_maps.stages.iter().enumerate() {
        let x = |k: usize| &values[stage.sources[k]];
        let y = match (&stage.kind, &approx.polynomials[index]) {
            (StageKind::Affine { .. }, _) => {
                let mut y = vec![0.0; approx.maps[index][0].rows];
                for (k, map) in approx.maps[index].iter().enumerate() {
                    for (a, b) in y.iter_mut().zip(map.apply(x(k))) {
                        *a += b;
                    }
                }
                y
            }
            (StageKind::Square, _) => x(0).iter().map(|v| v * v).collect(),
            (StageKind::Product, _) => x(0).iter().zip(x(1)).map(|(a, b)| a * b).collect(),
            (StageKind::Activation(_), Some(p)) => {
                let a = p.approximation().expect("fitted");
                x(0).iter().map(|&v| a.evaluate(v)).collect()
            }
            (StageKind::Activation(_), None) => unreachable!("activations have polynomials"),
        };
        values.push(y);
    }
    values.pop().expect("the input at least")
}

/// How closely the approximated model follows the exact one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Samples compared.
    pub samples: usize,
    /// Samples whose largest output is the same element (on every output
    /// of a model with several).
    pub same_argmax: usize,
    /// Largest output deviation relative to `max(1, max |exact|)`.
    pub max_relative_error: f64,
}

impl Agreement {
    /// Fraction of samples whose largest output is the same element.
    pub fn fraction(&self) -> f64 {
        self.same_argmax as f64 / self.samples.max(1) as f64
    }
}

/// The approximated model against the exact `(input, output)` pairs of
/// the model's `outputs` (joined).
pub fn agreement(
    stage_maps: &StageMaps,
    approx: &Approximated,
    exact: &[(Tensor, Tensor)],
    outputs: &[OutputTensor],
) -> Agreement {
    let results: Vec<(bool, f64)> = exact
        .par_iter()
        .map(|(input, output)| {
            let y = Tensor::new(
                output.shape().to_vec(),
                run_approximated(stage_maps, approx, input.data()),
            );
            let scale = output.max_abs().max(1.0);
            let err = y
                .data()
                .iter()
                .zip(output.data())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
                / scale;
            (same_decisions(&y, output, outputs), err)
        })
        .collect();
    Agreement {
        samples: results.len(),
        same_argmax: results.iter().filter(|r| r.0).count(),
        max_relative_error: results.iter().map(|r| r.1).fold(0.0, f64::max),
    }
}

/// Per-activation degrees: start every activation at the largest degree,
/// then lower each in turn while the approximated model keeps the argmax of
/// the exact one on at least `min_agreement` of the samples. Polynomials
/// are interpolated, or fitted to the calibration inputs where that agrees
/// better and interpolation falls short.
pub fn choose_degrees(
    graph: &Graph,
    stage_maps: &StageMaps,
    intervals: Intervals<'_>,
    exact: &[(Tensor, Tensor)],
    outputs: &[OutputTensor],
    min_agreement: f64,
) -> Result<(Vec<usize>, Approximated, Agreement)> {
    let count = stage_maps
        .stages
        .iter()
        .filter(|s| matches!(s.kind, StageKind::Activation(_)))
        .count();
    let mut degrees = vec![*DEGREES.last().expect("non-empty"); count];
    // Interpolation first: it keeps the error even over the whole interval,
    // so the degrees it needs on the calibration set hold beyond it. A fit
    // to the observed inputs is taken only where interpolation at the
    // largest degree misses the agreement and the fit does better (the fit
    // reaches the calibration agreement at lower degrees that generalise
    // less: cryptonets' first ReLU fell to degree 3 and 97.2% simulated
    // accuracy on 1000 images, against 97.6% interpolated).
    let interpolated = ActivationInputs::default();
    let mut best = approximate(graph, stage_maps, intervals, &degrees, &interpolated)?;
    let mut best_agreement = agreement(stage_maps, &best, exact, outputs);
    let mut observed = interpolated;
    if best_agreement.fraction() < min_agreement {
        let inputs: Vec<&Tensor> = exact.iter().map(|(x, _)| x).collect();
        let fitted_inputs = ActivationInputs::observe(graph, stage_maps, &inputs)?;
        let fitted = approximate(graph, stage_maps, intervals, &degrees, &fitted_inputs)?;
        let fitted_agreement = agreement(stage_maps, &fitted, exact, outputs);
        if fitted_agreement.same_argmax > best_agreement.same_argmax {
            (best, best_agreement, observed) = (fitted, fitted_agreement, fitted_inputs);
        }
    }
    for index in 0..count {
        // The smallest degree that keeps the agreement wins.
        let current = degrees[index];
        for &degree in DEGREES.iter().filter(|&&d| d < current) {
            let mut trial = degrees.clone();
            trial[index] = degree;
            let approx = approximate(graph, stage_maps, intervals, &trial, &observed)?;
            let agree = agreement(stage_maps, &approx, exact, outputs);
            if agree.fraction() >= min_agreement.min(best_agreement.fraction()) {
                degrees = trial;
                best = approx;
                best_agreement = agree;
                break;
            }
        }
    }
    Ok((degrees, best, best_agreement))
}

/// The activation a polynomial replaces (for listings).
pub fn describe(function: &Activation, polynomial: &Polynomial) -> String {
    format!(
        "{} as a degree-{} Chebyshev series",
        function.name(),
        polynomial.coefficients.len() - 1
    )
}
