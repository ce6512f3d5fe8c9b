//! Runs a plan on ciphertexts.
//!
//! Scale management: every linear stage encodes its diagonals at scale
//! `q_l * target / ct.scale` (`q_l` the prime the following rescale removes),
//! so its output comes back to exactly the parameters' scale whatever a
//! preceding square left; biases are encoded at the output's exact scale.

use std::collections::BTreeMap;

use std::sync::OnceLock;

use heman_ckks::{
    Ciphertext, CkksParameters, Encoder, Evaluator, GaloisKeys, Plaintext, PolynomialEvaluator,
    RelinearizationKey,
};
use heman_compiler::linear::{Diagonal, LinearTransform};
use heman_compiler::{Plan, PlanStage};
use rayon::prelude::*;
use tracing::info;

use crate::error::{Result, RuntimeError};

/// What a stage computes, in reports and logs.
pub fn stage_name(stage: &PlanStage) -> &'static str {
    match stage {
        PlanStage::Linear(_) => "linear",
        PlanStage::Square => "square",
        PlanStage::Activation { function, .. } => function.name(),
    }
}

/// A diagonal encoded for one level and scale.
pub struct CachedPlaintext {
    level: usize,
    scale: f64,
    pt: Plaintext,
}

/// A plan with room to keep its encoded diagonals across runs, up to a byte
/// budget (whole stages, in order): a serving model owner encodes each
/// weight diagonal once instead of at every request.
pub struct PreparedPlan<'p> {
    plan: &'p Plan,
    /// Per stage, one slot per diagonal (empty for uncached stages).
    cache: Vec<Vec<OnceLock<CachedPlaintext>>>,
}

impl<'p> PreparedPlan<'p> {
    pub fn new(plan: &'p Plan, params: &CkksParameters, budget_bytes: usize) -> Self {
        let mut level = params.max_level();
        let mut left = budget_bytes;
        let cache = plan
            .stages
            .iter()
            .map(|stage| {
                let slots = match stage {
                    PlanStage::Linear(t) => {
                        let diagonals: usize = t.blocks.iter().map(|b| b.diagonal_count()).sum();
                        let bytes = diagonals * (level + 1) * params.n() * 8;
                        if bytes <= left {
                            left -= bytes;
                            (0..diagonals).map(|_| OnceLock::new()).collect()
                        } else {
                            left = 0;
                            Vec::new()
                        }
                    }
                    _ => Vec::new(),
                };
                level = level.saturating_sub(stage.depth());
                slots
            })
            .collect();
        Self { plan, cache }
    }

    pub fn plan(&self) -> &Plan {
        self.plan
    }
}

/// One giant step of a block: output ciphertext, step, baby-step terms.
type GiantStep<'p> = (usize, &'p usize, &'p Vec<(usize, Diagonal)>);

/// The model owner's evaluation context: parameters and evaluation keys only.
pub struct Executor<'a> {
    params: &'a CkksParameters,
    encoder: Encoder,
    evaluator: Evaluator,
    polynomials: PolynomialEvaluator,
    relin: &'a RelinearizationKey,
    galois: &'a GaloisKeys,
}

impl<'a> Executor<'a> {
    pub fn new(
        params: &'a CkksParameters,
        relin: &'a RelinearizationKey,
        galois: &'a GaloisKeys,
    ) -> Self {
        Self {
            params,
            encoder: Encoder::new(params),
            evaluator: Evaluator::new(params),
            polynomials: PolynomialEvaluator::new(params),
            relin,
            galois,
        }
    }

    /// Runs every stage; `on_stage(index)` is called after each.
    pub fn run(
        &self,
        plan: &Plan,
        cts: Vec<Ciphertext>,
        on_stage: impl FnMut(usize),
    ) -> Result<Vec<Ciphertext>> {
        self.run_prepared(&PreparedPlan::new(plan, self.params, 0), cts, on_stage)
    }

    /// As [`Executor::run`], reusing the plaintexts `prepared` keeps across runs.
    pub fn run_prepared(
        &self,
        prepared: &PreparedPlan<'_>,
        mut cts: Vec<Ciphertext>,
        mut on_stage: impl FnMut(usize),
    ) -> Result<Vec<Ciphertext>> {
        let plan = prepared.plan;
        if cts.len() != plan.input_layout.ciphertexts {
            return Err(RuntimeError::Input(format!(
                "the plan takes {} input ciphertext(s), {} given",
                plan.input_layout.ciphertexts,
                cts.len()
            )));
        }
        for (index, stage) in plan.stages.iter().enumerate() {
            let level = cts[0].level();
            if level < stage.depth() {
                return Err(RuntimeError::OutOfLevels {
                    stage: index,
                    needed: stage.depth(),
                    available: level,
                });
            }
            let start = std::time::Instant::now();
            cts = match stage {
                PlanStage::Linear(t) => self.linear(t, &cts, &prepared.cache[index])?,
                PlanStage::Square => cts
                    .par_iter()
                    .map(|ct| {
                        let sq = self.evaluator.square_relin(ct, self.relin)?;
                        Ok(self.evaluator.rescale(&sq)?)
                    })
                    .collect::<Result<_>>()?,
                PlanStage::Activation { polynomial, .. } => {
                    let approximation =
                        polynomial
                            .approximation()
                            .map_err(|e| RuntimeError::Unsupported {
                                stage: index,
                                message: e.to_string(),
                            })?;
                    let target = self.params.default_scale();
                    cts.par_iter()
                        .map(|ct| {
                            Ok(self
                                .polynomials
                                .evaluate(ct, &approximation, self.relin, target)?)
                        })
                        .collect::<Result<_>>()?
                }
            };
            info!(
                stage = index,
                kind = stage_name(stage),
                level = cts[0].level(),
                ms = start.elapsed().as_secs_f64() * 1e3,
                "stage done"
            );
            on_stage(index);
        }
        Ok(cts)
    }

    /// `x + sum_s rot(x, s)` for each round in turn (a pool's window sums;
    /// the rotations of one round share one hoisted decomposition).
    fn window_sums(&self, rounds: &[Vec<usize>], x: &Ciphertext) -> Result<Ciphertext> {
        let mut x = x.clone();
        for round in rounds {
            let steps: Vec<i64> = round.iter().map(|&s| s as i64).collect();
            let rotated = self.evaluator.rotate_hoisted(&x, &steps, self.galois)?;
            for r in &rotated {
                x = self.evaluator.add(&x, r)?;
            }
        }
        Ok(x)
    }

    fn linear(
        &self,
        t: &LinearTransform,
        input: &[Ciphertext],
        cache: &[OnceLock<CachedPlaintext>],
    ) -> Result<Vec<Ciphertext>> {
        let summed: Vec<Ciphertext>;
        let input = if t.window_sums.is_empty() {
            input
        } else {
            summed = input
                .par_iter()
                .map(|ct| self.window_sums(&t.window_sums, ct))
                .collect::<Result<_>>()?;
            &summed
        };
        let level = input[0].level();
        let target = self.params.default_scale();
        let slots = self.params.slots();
        // Plaintext scale that lands the rescaled product on `target`.
        let pt_scale = self.params.q()[level] as f64 * target / input[0].scale();
        // One hoisted set of baby rotations per input ciphertext.
        let mut baby: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for block in &t.blocks {
            baby.entry(block.input)
                .or_default()
                .extend(&block.baby_steps);
        }
        let rotated: BTreeMap<usize, BTreeMap<usize, Ciphertext>> = baby
            .into_par_iter()
            .map(|(ct, mut steps)| {
                steps.sort_unstable();
                steps.dedup();
                let signed: Vec<i64> = steps.iter().map(|&s| s as i64).collect();
                let outs = self
                    .evaluator
                    .rotate_hoisted(&input[ct], &signed, self.galois)?;
                Ok((ct, steps.into_iter().zip(outs).collect()))
            })
            .collect::<Result<_>>()?;
        // Every (block, giant step) is independent: inner products, then one
        // rotation each, all before the rescale.
        let terms: Vec<GiantStep<'_>> = t
            .blocks
            .iter()
            .flat_map(|b| {
                b.giant_steps
                    .iter()
                    .map(move |(g, terms)| (b.output, g, terms))
            })
            .collect();
        let block_inputs: Vec<usize> = t
            .blocks
            .iter()
            .flat_map(|b| b.giant_steps.iter().map(move |_| b.input))
            .collect();
        // Index of each giant step's first diagonal in the stage's cache.
        let first_diagonal: Vec<usize> = terms
            .iter()
            .scan(0, |next, (_, _, terms)| {
                let first = *next;
                *next += terms.len();
                Some(first)
            })
            .collect();
        let inners: Vec<(usize, usize, Ciphertext)> = terms
            .par_iter()
            .zip(&block_inputs)
            .zip(&first_diagonal)
            .map(|((&(out, &g, terms), &inp), &first)| {
                let mut acc: Option<Ciphertext> = None;
                for (k, (b, diagonal)) in terms.iter().enumerate() {
                    let encode = || {
                        self.encoder
                            .encode(&diagonal.to_dense(slots), level, pt_scale)
                    };
                    let fresh;
                    let pt = match cache.get(first + k) {
                        Some(slot) => {
                            let cached = match slot.get() {
                                Some(c) => c,
                                None => {
                                    let pt = encode()?;
                                    slot.get_or_init(|| CachedPlaintext {
                                        level,
                                        scale: pt_scale,
                                        pt,
                                    })
                                }
                            };
                            if cached.level == level && cached.scale == pt_scale {
                                &cached.pt
                            } else {
                                fresh = encode()?;
                                &fresh
                            }
                        }
                        None => {
                            fresh = encode()?;
                            &fresh
                        }
                    };
                    let product = self.evaluator.mul_plain(&rotated[&inp][b], pt)?;
                    acc = Some(match acc {
                        None => product,
                        Some(a) => self.evaluator.add(&a, &product)?,
                    });
                }
                Ok((out, g, acc.expect("a giant step has at least one term")))
            })
            .collect::<Result<_>>()?;
        // Horner over each block's giant steps (largest first): one Galois
        // key per gap instead of one per giant step.
        let mut sums: Vec<Option<Ciphertext>> = vec![None; t.output_ciphertexts];
        let mut rest = inners.into_iter();
        for block in &t.blocks {
            let mut giants: Vec<(usize, usize, Ciphertext)> =
                rest.by_ref().take(block.giant_steps.len()).collect();
            let mut acc: Option<(usize, Ciphertext)> = None;
            while let Some((out, g, inner)) = giants.pop() {
                acc = Some(match acc {
                    None => (g, inner),
                    Some((previous, ct)) => {
                        let moved =
                            self.evaluator
                                .rotate(&ct, (previous - g) as i64, self.galois)?;
                        (g, self.evaluator.add(&moved, &inner)?)
                    }
                });
                if giants.is_empty() {
                    let (g, ct) = acc.take().expect("set above");
                    let ct = if g == 0 {
                        ct
                    } else {
                        self.evaluator.rotate(&ct, g as i64, self.galois)?
                    };
                    sums[out] = Some(match sums[out].take() {
                        None => ct,
                        Some(a) => self.evaluator.add(&a, &ct)?,
                    });
                }
            }
        }
        sums.into_par_iter()
            .zip(&t.bias)
            .map(|(sum, bias)| {
                let sum = sum.ok_or_else(|| {
                    RuntimeError::Input("an output ciphertext receives no term".into())
                })?;
                let mut ct = self.evaluator.rescale(&sum)?;
                for &step in &t.sum_steps {
                    let rotated = self.evaluator.rotate(&ct, step as i64, self.galois)?;
                    ct = self.evaluator.add(&ct, &rotated)?;
                }
                if !bias.is_empty() {
                    let mut dense = vec![0.0; slots];
                    for &(s, b) in bias {
                        dense[s as usize] = b;
                    }
                    let pt = self.encoder.encode(&dense, ct.level(), ct.scale())?;
                    ct = self.evaluator.add_plain(&ct, &pt)?;
                }
                Ok(ct)
            })
            .collect()
    }
}
