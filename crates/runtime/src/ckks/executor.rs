//! Runs a plan on ciphertexts.
//!
//! [`Executor::run_fresh`] is the only way in from outside this crate: it
//! refuses inputs that are not fresh seeded encryptions under the
//! parameters (count, degree, level, scale, a `c1` regenerated from its
//! seed) before any work, and re-randomises and floods the outputs before
//! they leave. Every entry point (CLI, server, Python) goes through it, so
//! none can skip a check: a forged scale would make the model owner encode
//! its weights at a scale the sender picked (`q_l * target / ct.scale`
//! below), and a chosen `c1` would make the output's mask a known function
//! of the weights.
//!
//! Scale management: every linear stage encodes its diagonals at scale
//! `q_l * target / ct.scale` (`q_l` the prime the following rescale removes),
//! so its output comes back to exactly the parameters' scale whatever a
//! preceding square left; biases are encoded at the output's exact scale.

use std::borrow::Cow;
use std::collections::BTreeMap;

use std::sync::OnceLock;

use heman_ckks::{
    Bootstrapper, BootstrappingKeysRef, Ciphertext, CkksParameters, EncapsulationKeys, Encoder,
    Encryptor, Evaluator, Flooding, GaloisKeys, Plaintext, PolynomialEvaluator, PublicKey,
    RelinearizationKey, WeightedTerms,
};
use heman_compiler::ckks::linear::{Diagonal, LinearTransform};
use heman_compiler::ckks::plan::input_level;
use heman_compiler::ckks::{Plan, StageOp, WeightRows};
use rayon::prelude::*;
use tracing::{debug, info};

use crate::error::{Result, RuntimeError};

/// A diagonal encoded for one level and scale.
pub struct CachedPlaintext {
    level: usize,
    scale: f64,
    pt: Plaintext,
}

/// A plan with room to keep its encoded diagonals across runs, up to a byte
/// budget (stages in order, the last that fits in part): a serving model owner
/// encodes each weight diagonal once instead of at every request.
pub struct PreparedPlan<'p> {
    plan: &'p Plan,
    /// Per stage, one slot per diagonal (empty for uncached stages).
    cache: Vec<Vec<OnceLock<CachedPlaintext>>>,
}

impl<'p> PreparedPlan<'p> {
    /// `plan` under `params`, keeping up to `budget_bytes` of encoded
    /// diagonals (stages in order, each as far as the budget goes).
    pub fn new(plan: &'p Plan, params: &CkksParameters, budget_bytes: usize) -> Self {
        let depths = plan.value_depths();
        let top = input_level(plan.bootstrapping.as_ref(), params.max_level());
        let mut left = budget_bytes;
        let cache = plan
            .stages
            .iter()
            .map(|stage| {
                let StageOp::Linear(parts) = &stage.op else {
                    return Vec::new();
                };
                let start = stage.inputs.iter().map(|&v| depths[v]).max().unwrap_or(0);
                let level = top.saturating_sub(start);
                let diagonals: usize = parts
                    .iter()
                    .flat_map(|t| &t.blocks)
                    .map(|b| b.diagonal_count())
                    .sum();
                // As many of the stage's diagonals as the budget left holds: a stage too
                // large for it still keeps some, and later stages still get theirs.
                let each = (level + 1) * params.n() * 8;
                let kept = diagonals.min(left / each.max(1));
                left -= kept * each;
                (0..kept).map(|_| OnceLock::new()).collect()
            })
            .collect();
        Self { plan, cache }
    }

    /// The plan it prepares.
    pub fn plan(&self) -> &Plan {
        self.plan
    }

    /// Per stage, how many of its diagonals are kept once encoded.
    pub fn cached_diagonals(&self) -> Vec<usize> {
        self.cache.iter().map(Vec::len).collect()
    }
}

/// Refuses a count of input ciphertexts other than the plan's.
fn check_count(plan: &Plan, given: usize) -> Result<()> {
    if given == plan.input_layout.ciphertexts {
        Ok(())
    } else {
        Err(RuntimeError::Input(format!(
            "the plan takes {} input ciphertext(s), {given} given",
            plan.input_layout.ciphertexts
        )))
    }
}

/// An activation stage's polynomial, ready to evaluate.
fn approximation_of(
    stage: usize,
    polynomial: &heman_compiler::ckks::approximation::Polynomial,
) -> Result<heman_ckks::ChebyshevApproximation> {
    polynomial
        .approximation()
        .map_err(|e| RuntimeError::Unsupported {
            stage,
            message: e.to_string(),
        })
}

/// Refuses to run stage `index` on inputs at `level`, below its depth.
fn check_levels(index: usize, stage: &heman_compiler::ckks::PlanStage, level: usize) -> Result<()> {
    if level < stage.depth() {
        return Err(RuntimeError::OutOfLevels {
            stage: index,
            needed: stage.depth(),
            available: level,
        });
    }
    Ok(())
}

/// What an elementwise stage does to one ciphertext.
type ElementwiseMap<'e> = Box<dyn Fn(&Ciphertext) -> Result<Ciphertext> + Sync + 'e>;

/// Logs a stage's end: what it computed, its output's level, its time.
fn log_stage(index: usize, op: &StageOp, output: &[Ciphertext], start: std::time::Instant) {
    info!(
        stage = index,
        kind = op.name(),
        level = output.first().map_or(0, Ciphertext::level),
        ms = start.elapsed().as_secs_f64() * 1e3,
        "stage done"
    );
}

/// One giant step of a block: output ciphertext, step, baby-step terms.
type GiantStep<'p> = (usize, &'p usize, &'p Vec<(usize, Diagonal)>);

/// The model owner's evaluation context: parameters and the data owner's
/// evaluation keys only.
pub struct Executor<'a> {
    params: &'a CkksParameters,
    encoder: Encoder,
    evaluator: Evaluator,
    polynomials: PolynomialEvaluator,
    relin: &'a RelinearizationKey,
    galois: &'a GaloisKeys,
    /// Encrypts the zeros that re-randomise outputs.
    outputs: Encryptor,
    /// The level fresh inputs come at.
    input_level: usize,
    /// The circuit that runs the plan's bootstraps, and the encapsulation
    /// keys it needs.
    bootstrapping: Option<(&'a Bootstrapper, Option<&'a EncapsulationKeys>)>,
}

/// `values`, a period of the slots (a power of two dividing `slots`),
/// replicated over all `slots`: how a plan of fewer slots than the
/// parameters' lays out every vector it encodes.
pub(crate) fn replicated(values: &[f64], slots: usize) -> Cow<'_, [f64]> {
    if values.len() >= slots || values.is_empty() {
        Cow::Borrowed(values)
    } else {
        Cow::Owned(values.iter().cycle().take(slots).copied().collect())
    }
}

impl<'a> Executor<'a> {
    /// An executor under `params` with the data owner's evaluation keys:
    /// relinearisation, Galois, and the public key outputs are re-randomised
    /// with (refused if made for other parameters).
    pub fn new(
        params: &'a CkksParameters,
        relin: &'a RelinearizationKey,
        galois: &'a GaloisKeys,
        public: &PublicKey,
    ) -> Result<Self> {
        Ok(Self {
            params,
            encoder: Encoder::new(params),
            evaluator: Evaluator::new(params),
            polynomials: PolynomialEvaluator::new(params),
            relin,
            galois,
            outputs: Encryptor::new(params, public)?,
            input_level: params.max_level(),
            bootstrapping: None,
        })
    }

    /// The executor, running bootstrap stages with `bootstrapper` (its Galois
    /// keys among those given to [`Executor::new`]) and `encapsulation`; fresh
    /// inputs then come at the top of the compute levels.
    pub fn with_bootstrapping(
        mut self,
        bootstrapper: &'a Bootstrapper,
        encapsulation: Option<&'a EncapsulationKeys>,
    ) -> Self {
        self.input_level = bootstrapper.output_level();
        self.bootstrapping = Some((bootstrapper, encapsulation));
        self
    }

    /// Refuses a plan this executor cannot run: slots that are not a power
    /// of two dividing the parameters', bootstraps without the plan's
    /// circuit.
    fn check_plan(&self, plan: &Plan) -> Result<()> {
        let slots = self.params.slots();
        if !plan.slots.is_power_of_two() || plan.slots > slots {
            return Err(RuntimeError::Input(format!(
                "a plan of {} slots under parameters of {slots}",
                plan.slots
            )));
        }
        let wanted = plan.bootstrapping.map(|b| b.circuit());
        let given = self.bootstrapping.map(|(b, _)| *b.shape());
        // The executor's circuit may keep its diagonals encoded or not: the
        // rest of its shape is the plan's.
        let same = match (wanted, given) {
            (None, None) => true,
            (Some(w), Some(g)) => {
                w == heman_ckks::BootstrappingParameters {
                    encode_diagonals_when_used: w.encode_diagonals_when_used,
                    ..g
                }
            }
            _ => false,
        };
        if same {
            Ok(())
        } else {
            Err(RuntimeError::Input(
                "the plan's bootstrapping circuit and the executor's differ".into(),
            ))
        }
    }

    /// Runs the plan on a data owner's fresh encryptions and returns outputs
    /// fit to leave: each input checked (see [`Executor::check_fresh`])
    /// before any work, each output re-randomised and flooded as
    /// `flooding` says. `on_stage(index)` is called
    /// after each stage; `prepared` keeps encoded weights across runs.
    pub fn run_fresh(
        &self,
        prepared: &PreparedPlan<'_>,
        cts: Vec<Ciphertext>,
        flooding: &Flooding,
        mut on_stage: impl FnMut(usize),
    ) -> Result<Vec<Ciphertext>> {
        self.check_fresh(prepared.plan, &cts)?;
        let out = self.run_unchecked(prepared, cts, |index, _| on_stage(index))?;
        super::flooding::flood_outputs(&self.outputs, out, flooding)
    }

    /// Refuses inputs other than the plan's count of fresh seeded
    /// encryptions under these parameters: degree 1, the top level, the
    /// parameters' scale, and `c1` regenerated from a seed (so the sender
    /// cannot have chosen it).
    pub fn check_fresh(&self, plan: &Plan, cts: &[Ciphertext]) -> Result<()> {
        check_count(plan, cts.len())?;
        let (level, scale) = (self.input_level, self.params.default_scale());
        for (i, ct) in cts.iter().enumerate() {
            if !ct.is_seeded() {
                return Err(RuntimeError::Input(format!(
                    "input ciphertext {i} is not in seeded form: only fresh secret-key encryptions, whose c1 comes from a seed, are accepted"
                )));
            }
            if ct.degree() != 1 || ct.level() != level || (ct.scale() / scale - 1.0).abs() > 1e-9 {
                return Err(RuntimeError::Input(format!(
                    "input ciphertext {i} is not a fresh encryption (degree {}, level {}, scale 2^{:.2}; expected degree 1, level {level}, scale 2^{:.2})",
                    ct.degree(),
                    ct.level(),
                    ct.scale().log2(),
                    scale.log2()
                )));
            }
        }
        Ok(())
    }

    /// Runs every stage on `cts` as they are: for this crate's dry runs,
    /// whose inputs it made itself. `on_stage(index, output)` sees each
    /// stage's output ciphertexts.
    pub(crate) fn run_unchecked(
        &self,
        prepared: &PreparedPlan<'_>,
        cts: Vec<Ciphertext>,
        mut on_stage: impl FnMut(usize, &[Ciphertext]),
    ) -> Result<Vec<Ciphertext>> {
        let plan = prepared.plan;
        check_count(plan, cts.len())?;
        plan.check_wiring().map_err(RuntimeError::Input)?;
        self.check_plan(plan)?;
        let last_readers = plan.last_readers();
        let mut values: Vec<Option<Vec<Ciphertext>>> = vec![Some(cts)];
        for (index, stage) in plan.stages.iter().enumerate() {
            if let Some(output) =
                self.elementwise_in_place(index, stage, &mut values, &last_readers)
            {
                let output = output?;
                on_stage(index, &output);
                values.push(Some(output));
                continue;
            }
            let inputs: Vec<&[Ciphertext]> = stage
                .inputs
                .iter()
                .map(|&v| values[v].as_deref().expect("read before its last reader"))
                .collect();
            let level = inputs.iter().map(|cts| cts[0].level()).min().unwrap_or(0);
            check_levels(index, stage, level)?;
            let start = std::time::Instant::now();
            let inputs = self.at_level(&inputs, level)?;
            let output = self.stage(index, &stage.op, &inputs, &prepared.cache[index])?;
            log_stage(index, &stage.op, &output, start);
            // Values no later stage reads are freed as soon as possible.
            for &v in &stage.inputs {
                if last_readers[v] == Some(index) {
                    values[v] = None;
                }
            }
            on_stage(index, &output);
            values.push(Some(output));
        }
        Ok(values.pop().flatten().expect("the output is kept"))
    }

    /// A square or an activation of a value no later stage reads, computed
    /// from that value's ciphertexts as they are consumed, so that a wide
    /// layer (a throughput model's thousands of ciphertexts) is not held
    /// twice; `None` for the other stages.
    fn elementwise_in_place(
        &self,
        index: usize,
        stage: &heman_compiler::ckks::PlanStage,
        values: &mut [Option<Vec<Ciphertext>>],
        last_readers: &[Option<usize>],
    ) -> Option<Result<Vec<Ciphertext>>> {
        let &[v] = stage.inputs.as_slice() else {
            return None;
        };
        let elementwise = matches!(stage.op, StageOp::Square | StageOp::Activation { .. });
        if !elementwise || last_readers[v] != Some(index) {
            return None;
        }
        let input = values[v].take().expect("read before its last reader");
        let start = std::time::Instant::now();
        if let Err(e) = check_levels(index, stage, input[0].level()) {
            return Some(Err(e));
        }
        let output = self.elementwise(index, &stage.op, Cow::Owned(input));
        if let Ok(output) = &output {
            log_stage(index, &stage.op, output, start);
        }
        Some(output)
    }

    /// Every input brought down to `level` (a skip connection arrives with
    /// levels to spare): dropping primes keeps the scale.
    fn at_level<'c>(
        &self,
        inputs: &[&'c [Ciphertext]],
        level: usize,
    ) -> Result<Vec<Cow<'c, [Ciphertext]>>> {
        inputs
            .iter()
            .map(|cts| {
                if cts[0].level() == level {
                    return Ok(Cow::Borrowed(*cts));
                }
                let dropped = cts
                    .par_iter()
                    .map(|ct| Ok(self.evaluator.drop_to_level(ct, level)?))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Cow::Owned(dropped))
            })
            .collect()
    }

    /// One stage's operation on its inputs (all at one level).
    fn stage(
        &self,
        index: usize,
        op: &StageOp,
        inputs: &[Cow<'_, [Ciphertext]>],
        cache: &[OnceLock<CachedPlaintext>],
    ) -> Result<Vec<Ciphertext>> {
        match op {
            StageOp::Linear(parts) => self.linear(parts, inputs, cache),
            StageOp::WeightedSum { parts, .. } => self.weighted_sums(parts, inputs),
            StageOp::Bootstrap { max_abs } => self.bootstrap(index, *max_abs, &inputs[0]),
            StageOp::Square | StageOp::Activation { .. } => {
                self.elementwise(index, op, Cow::Borrowed(&inputs[0]))
            }
            StageOp::Product => inputs[0]
                .par_iter()
                .zip(inputs[1].par_iter())
                .map(|(a, b)| {
                    let product = self.evaluator.mul_relin(a, b, self.relin)?;
                    Ok(self.evaluator.rescale(&product)?)
                })
                .collect(),
        }
    }

    /// A square or an activation on every ciphertext of `input`; an owned
    /// input's ciphertexts are freed as their outputs are made.
    fn elementwise(
        &self,
        index: usize,
        op: &StageOp,
        input: Cow<'_, [Ciphertext]>,
    ) -> Result<Vec<Ciphertext>> {
        let map = self.elementwise_map(index, op)?;
        match input {
            Cow::Borrowed(cts) => cts.par_iter().map(&map).collect(),
            Cow::Owned(cts) => cts.into_par_iter().map(|ct| map(&ct)).collect(),
        }
    }

    /// What a square or an activation stage does to one ciphertext.
    fn elementwise_map(&self, index: usize, op: &StageOp) -> Result<ElementwiseMap<'_>> {
        Ok(match op {
            StageOp::Square => Box::new(|ct| {
                let square = self.evaluator.square_relin(ct, self.relin)?;
                Ok(self.evaluator.rescale_owned(square)?)
            }),
            StageOp::Activation { polynomial, .. } => {
                let approximation = approximation_of(index, polynomial)?;
                let target = self.params.default_scale();
                Box::new(move |ct| {
                    Ok(self
                        .polynomials
                        .evaluate(ct, &approximation, self.relin, target)?)
                })
            }
            other => {
                return Err(RuntimeError::Unsupported {
                    stage: index,
                    message: format!("{} is not elementwise", other.name()),
                })
            }
        })
    }

    /// Every ciphertext refreshed, amplified to the circuit's range by the
    /// stage's calibrated bound (one at a time: the circuit parallelises
    /// inside, and its temporaries are large).
    fn bootstrap(&self, index: usize, max_abs: f64, cts: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
        let Some((bootstrapper, encapsulation)) = self.bootstrapping else {
            return Err(RuntimeError::Unsupported {
                stage: index,
                message: "a bootstrap stage, and no bootstrapping circuit".into(),
            });
        };
        let keys = BootstrappingKeysRef {
            relinearization: self.relin,
            galois: self.galois,
            encapsulation,
        };
        cts.iter()
            .map(|ct| {
                let amplification = bootstrapper.amplification_for(max_abs, ct.scale());
                Ok(bootstrapper.bootstrap_amplified(ct, keys, amplification)?)
            })
            .collect()
    }

    /// One weighted-sum stage (throughput packing): each part's sums of
    /// its input's ciphertexts, the weights encoded at the scale that brings
    /// the input to the product scale `q_l * target` (as a linear stage's
    /// diagonals), summed over the parts, then per output one rescale and
    /// its bias in every slot.
    fn weighted_sums(
        &self,
        parts: &[WeightRows],
        inputs: &[Cow<'_, [Ciphertext]>],
    ) -> Result<Vec<Ciphertext>> {
        let start = std::time::Instant::now();
        let mut sums: Option<Vec<Ciphertext>> = None;
        for (part, input) in parts.iter().zip(inputs) {
            if input.len() != part.inputs {
                return Err(RuntimeError::Input(format!(
                    "a weighted sum over {} ciphertexts given {}",
                    part.inputs,
                    input.len()
                )));
            }
            let summed: Vec<Ciphertext>;
            let input: &[Ciphertext] = if part.window_sums.is_empty() {
                input
            } else {
                // Weight one at scale one: additions, the scale kept.
                let windows: Vec<WeightedTerms> = part
                    .window_sums
                    .iter()
                    .map(|w| w.iter().map(|&i| (i, 1.0)).collect())
                    .collect();
                summed = self.evaluator.weighted_sums(input, &windows, 1.0)?;
                &summed
            };
            let level = input[0].level();
            let weight_scale =
                self.params.q()[level] as f64 * self.params.default_scale() / input[0].scale();
            let products = self
                .evaluator
                .weighted_sums(input, &part.rows, weight_scale)?;
            sums = Some(match sums {
                None => products,
                Some(mut sums) => {
                    sums.par_iter_mut()
                        .zip(&products)
                        .try_for_each(|(a, b)| self.evaluator.add_assign(a, b))?;
                    sums
                }
            });
        }
        let sums = sums.ok_or_else(|| RuntimeError::Input("a weighted sum of no part".into()))?;
        debug!(
            ms = start.elapsed().as_secs_f64() * 1e3,
            outputs = sums.len(),
            "weighted sums computed"
        );
        sums.into_par_iter()
            .zip(&parts[0].bias)
            .map(|(sum, &bias)| {
                let mut ct = self.evaluator.rescale_owned(sum)?;
                if bias != 0.0 {
                    self.evaluator.add_const_assign(&mut ct, bias)?;
                }
                Ok(ct)
            })
            .collect()
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

    /// One linear stage: each part's products (window sums, hoisted
    /// baby-step rotations, the diagonal inner products of every giant step,
    /// their Horner sums), summed over the parts, then one rescale, the
    /// output window sums and the bias. Every part's diagonals are encoded
    /// at the scale that brings its input to the same product scale
    /// (`q_l * target`), so that the parts add up whatever scale each input
    /// arrived at.
    fn linear(
        &self,
        parts: &[LinearTransform],
        inputs: &[Cow<'_, [Ciphertext]>],
        cache: &[OnceLock<CachedPlaintext>],
    ) -> Result<Vec<Ciphertext>> {
        let mut sums: Vec<Option<Ciphertext>> = vec![None; parts[0].output_ciphertexts];
        let mut first_diagonal = 0;
        for (t, input) in parts.iter().zip(inputs) {
            let count: usize = t.blocks.iter().map(|b| b.diagonal_count()).sum();
            let part_cache = cache
                .get(first_diagonal..first_diagonal + count)
                .unwrap_or(&[]);
            first_diagonal += count;
            for (sum, part) in sums.iter_mut().zip(self.products(t, input, part_cache)?) {
                *sum = match (sum.take(), part) {
                    (Some(a), Some(b)) => Some(self.evaluator.add(&a, &b)?),
                    (a, b) => a.or(b),
                };
            }
        }
        let first = &parts[0];
        sums.into_par_iter()
            .zip(&first.bias)
            .map(|(sum, bias)| self.finish_output(first, sum, bias))
            .collect()
    }

    /// One part's diagonal products per output ciphertext, before the
    /// rescale.
    fn products(
        &self,
        t: &LinearTransform,
        input: &[Ciphertext],
        cache: &[OnceLock<CachedPlaintext>],
    ) -> Result<Vec<Option<Ciphertext>>> {
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
        let rotated = self.baby_rotations(t, input)?;
        // Plaintext scale that lands the rescaled product on the parameters'
        // scale.
        let level = input[0].level();
        let pt_scale =
            self.params.q()[level] as f64 * self.params.default_scale() / input[0].scale();
        let inners = self.inner_products(t, &rotated, cache, level, pt_scale)?;
        self.giant_step_sums(t, inners)
    }

    /// One hoisted set of baby-step rotations per input ciphertext.
    fn baby_rotations(
        &self,
        t: &LinearTransform,
        input: &[Ciphertext],
    ) -> Result<BTreeMap<usize, BTreeMap<usize, Ciphertext>>> {
        let mut baby: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for block in &t.blocks {
            baby.entry(block.input)
                .or_default()
                .extend(&block.baby_steps);
        }
        baby.into_par_iter()
            .map(|(ct, mut steps)| {
                steps.sort_unstable();
                steps.dedup();
                let signed: Vec<i64> = steps.iter().map(|&s| s as i64).collect();
                let outs = self
                    .evaluator
                    .rotate_hoisted(&input[ct], &signed, self.galois)?;
                Ok((ct, steps.into_iter().zip(outs).collect()))
            })
            .collect()
    }

    /// Every (block, giant step)'s inner product of rotated inputs and
    /// diagonals, all independent and before the rescale: (output
    /// ciphertext, giant step, sum), in block order.
    fn inner_products(
        &self,
        t: &LinearTransform,
        rotated: &BTreeMap<usize, BTreeMap<usize, Ciphertext>>,
        cache: &[OnceLock<CachedPlaintext>],
        level: usize,
        pt_scale: f64,
    ) -> Result<Vec<(usize, usize, Ciphertext)>> {
        let terms: Vec<(GiantStep<'_>, usize)> = t
            .blocks
            .iter()
            .flat_map(|b| {
                b.giant_steps
                    .iter()
                    .map(move |(g, terms)| ((b.output, g, terms), b.input))
            })
            .collect();
        // Index of each giant step's first diagonal in the stage's cache.
        let first_diagonal: Vec<usize> = terms
            .iter()
            .scan(0, |next, ((_, _, terms), _)| {
                let first = *next;
                *next += terms.len();
                Some(first)
            })
            .collect();
        terms
            .par_iter()
            .zip(&first_diagonal)
            .map(|(&((out, &g, terms), inp), &first)| {
                let mut acc: Option<Ciphertext> = None;
                for (k, (b, diagonal)) in terms.iter().enumerate() {
                    let pt = self.diagonal(
                        (diagonal, t.output_layout.slots),
                        cache.get(first + k),
                        level,
                        pt_scale,
                    )?;
                    let product = self.evaluator.mul_plain(&rotated[&inp][b], &pt)?;
                    acc = Some(match acc {
                        None => product,
                        Some(a) => self.evaluator.add(&a, &product)?,
                    });
                }
                Ok((out, g, acc.expect("a giant step has at least one term")))
            })
            .collect()
    }

    /// A diagonal encoded at `level` and `scale`: from the cache slot when
    /// it holds that encoding (filled on first use), else encoded now.
    fn diagonal<'c>(
        &self,
        (diagonal, plan_slots): (&Diagonal, usize),
        slot: Option<&'c OnceLock<CachedPlaintext>>,
        level: usize,
        scale: f64,
    ) -> Result<Cow<'c, Plaintext>> {
        let encode = || {
            let dense = diagonal.to_dense(plan_slots);
            let slots = replicated(&dense, self.params.slots());
            self.encoder.encode(&slots, level, scale)
        };
        let Some(slot) = slot else {
            return Ok(Cow::Owned(encode()?));
        };
        let cached = match slot.get() {
            Some(c) => c,
            None => {
                let pt = encode()?;
                slot.get_or_init(|| CachedPlaintext { level, scale, pt })
            }
        };
        if cached.level == level && cached.scale == scale {
            Ok(Cow::Borrowed(&cached.pt))
        } else {
            Ok(Cow::Owned(encode()?))
        }
    }

    /// Horner over each block's giant steps (largest first): one Galois key
    /// per gap instead of one per giant step; the sums per output
    /// ciphertext.
    fn giant_step_sums(
        &self,
        t: &LinearTransform,
        inners: Vec<(usize, usize, Ciphertext)>,
    ) -> Result<Vec<Option<Ciphertext>>> {
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
        Ok(sums)
    }

    /// An output ciphertext's last steps: rescale, the transform's output
    /// window sums, the bias.
    fn finish_output(
        &self,
        t: &LinearTransform,
        sum: Option<Ciphertext>,
        bias: &[(u32, f64)],
    ) -> Result<Ciphertext> {
        let sum =
            sum.ok_or_else(|| RuntimeError::Input("an output ciphertext receives no term".into()))?;
        let mut ct = self.evaluator.rescale(&sum)?;
        for &step in &t.sum_steps {
            let rotated = self.evaluator.rotate(&ct, step as i64, self.galois)?;
            ct = self.evaluator.add(&ct, &rotated)?;
        }
        if !bias.is_empty() {
            let mut dense = vec![0.0; t.output_layout.slots];
            for &(s, b) in bias {
                dense[s as usize] = b;
            }
            let dense = replicated(&dense, self.params.slots());
            let pt = self.encoder.encode(&dense, ct.level(), ct.scale())?;
            ct = self.evaluator.add_plain(&ct, &pt)?;
        }
        Ok(ct)
    }
}
