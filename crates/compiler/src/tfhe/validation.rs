//! Held-out validation of the calibrated accumulator windows.
//!
//! Windows sized from the calibration samples fit those samples by
//! construction, so the decisions a plan keeps on them overstate what it
//! keeps on other inputs (resnet_basic_blocks at 2_3: 192 of 200
//! calibration samples, 76% of held-out test inputs). Here every
//! [`HELD_OUT_EVERY`]-th calibration sample is held out, the windows are
//! sized on the others at each of [`ACCUMULATOR_MARGINS`], and the margin
//! whose plan keeps the most decisions on the held-out samples (with
//! simulated noise, then without; the narrower on a tie) is the one the
//! compilation sizes its final windows with, on every sample. Its held-out
//! figures are what the preset choice and the report go by: a standard
//! validation split, as Concrete ML and every quantisation toolkit
//! calibrate on one set and measure on another.

use heman_model::io::dataset::Sample;
use heman_model::Graph;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::error::Result;
use crate::graph::reference_outputs;
use crate::tfhe::compile::measure;
use crate::tfhe::plan::Plan;
use crate::tfhe::quantise::{accumulator_ranges, AccumulatorRanges, ACCUMULATOR_MARGINS};
use crate::tfhe::segments::Segment;

/// One calibration sample in this many is held out (interleaved, so that
/// a calibration set ordered by class holds out every class).
pub const HELD_OUT_EVERY: usize = 4;

/// What the chosen margin's plan kept on the held-out samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    /// The accumulator margin chosen.
    pub margin: f64,
    /// Held-out samples compared.
    pub samples: usize,
    /// Of them, those whose every output keeps the float model's largest
    /// element, without noise.
    pub same_argmax: usize,
    /// The same with simulated encryption noise.
    pub noisy_same_argmax: usize,
}

/// The calibration samples windows are sized on, and the held-out ones.
fn split(samples: &[Sample]) -> (Vec<Sample>, Vec<Sample>) {
    let (fit, held): (Vec<_>, Vec<_>) = samples
        .iter()
        .enumerate()
        .partition(|(k, _)| k % HELD_OUT_EVERY != HELD_OUT_EVERY - 1);
    let owned = |v: Vec<(usize, &Sample)>| v.into_iter().map(|(_, s)| s.clone()).collect();
    (owned(fit), owned(held))
}

/// Chooses the accumulator margin by held-out validation: `build` makes
/// the plan for windows sized on some samples (the bit widths fixed).
/// `None` where there are too few samples to hold any out (fewer than two
/// per held-out one), or where no margin gives a plan.
pub(crate) fn choose_margin(
    graph: &Graph,
    segments: &[Segment],
    samples: &[Sample],
    build: &dyn Fn(&AccumulatorRanges) -> Result<Plan>,
) -> Result<Option<HeldOut>> {
    if samples.len() < 2 * HELD_OUT_EVERY {
        return Ok(None);
    }
    let (fit, held) = split(samples);
    let pairs = reference_outputs(graph, &held, held.len())?;
    let mut best: Option<HeldOut> = None;
    for margin in ACCUMULATOR_MARGINS {
        let ranges = accumulator_ranges(graph, segments, &fit, margin)?;
        // A margin whose windows fit no weight scale is passed over.
        let Ok(plan) = build(&ranges) else {
            continue;
        };
        let (same_argmax, _) = measure(&plan, &pairs, false)?;
        let (noisy_same_argmax, _) = measure(&plan, &pairs, true)?;
        info!(
            margin,
            same_argmax,
            noisy_same_argmax,
            of = pairs.len(),
            "held-out validation"
        );
        let candidate = HeldOut {
            margin,
            samples: pairs.len(),
            same_argmax,
            noisy_same_argmax,
        };
        let key = |h: &HeldOut| (h.noisy_same_argmax, h.same_argmax);
        if best.is_none_or(|b| key(&candidate) > key(&b)) {
            best = Some(candidate);
        }
    }
    Ok(best)
}
