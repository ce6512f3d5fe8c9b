//! Running a TFHE [`Plan`] on ciphertexts: the model owner's side, with the
//! server key only.

use std::time::Instant;

use heman_compiler::tfhe::{LookupStage, MaxStage, NoiseProfile, Plan, PlanStage};
use heman_tfhe::{KeyChoice, LookupTable, LweVector, SeededLweVector, ServerKey};
use rayon::prelude::*;
use tracing::info;

use crate::error::{Result, RuntimeError};

/// Where one stage's time went.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTiming {
    /// The stage's index in the plan.
    pub stage: usize,
    /// Its name.
    pub name: String,
    /// `linear`, `lookup` or `max`.
    pub kind: &'static str,
    /// Wall time, in seconds.
    pub seconds: f64,
    /// Bootstraps it ran.
    pub bootstraps: usize,
    /// Ciphertext multiply-adds it ran.
    pub multiply_adds: usize,
}

/// The model owner's evaluator of one plan: holds the (expanded) server key
/// only, and the deviation its outputs are flooded with.
pub struct Executor<'a> {
    key: &'a ServerKey,
    plan: &'a Plan,
    flooding_std: f64,
}

fn tfhe_error(stage: usize) -> impl Fn(heman_tfhe::TfheError) -> RuntimeError {
    move |e| RuntimeError::Unsupported {
        stage,
        message: e.to_string(),
    }
}

impl<'a> Executor<'a> {
    /// Checks that `plan` and `key` belong together and sizes the output
    /// flooding from the plan's noise profile.
    pub fn new(key: &'a ServerKey, plan: &'a Plan) -> Result<Self> {
        if plan.preset != key.preset() {
            return Err(RuntimeError::Input(format!(
                "the model was compiled for the {} preset, the server key is for {}",
                plan.preset.name(),
                key.preset().name()
            )));
        }
        plan.check_wiring().map_err(RuntimeError::Plan)?;
        // Small-key values must be bootstrapped before anything but a
        // linear stage reads them (the big key is always possible).
        if plan.input.key == KeyChoice::Small && Plan::input_key(&plan.stages) != KeyChoice::Small {
            return Err(RuntimeError::Plan(
                "inputs under the small key, but a max tree or the output reads them before any bootstrap".into(),
            ));
        }
        Ok(Self {
            key,
            plan,
            flooding_std: NoiseProfile::of(plan).output_flooding.sqrt(),
        })
    }

    /// The lookup tables of one stage (parallel over tables).
    fn tables(&self, stage: &LookupStage) -> heman_tfhe::Result<Vec<LookupTable>> {
        let preset = self.key.preset();
        (0..stage.tables.len())
            .into_par_iter()
            .map(|t| {
                LookupTable::new(preset, stage.window(t), |u| {
                    stage.output_encoding.encode(stage.output_value(t, u))
                })
            })
            .collect()
    }

    /// One level of a max tree: `a + relu(b - a)` per pair.
    fn max(&self, stage: &MaxStage, values: &LweVector) -> heman_tfhe::Result<LweVector> {
        let differences = stage
            .differences(values.len())
            .apply(values, stage.encoding)?;
        let table = LookupTable::new(self.key.preset(), stage.window(), |u| {
            stage.encoding.encode(stage.relu(u))
        })?;
        let relus = self
            .key
            .bootstrap(&differences, &[table], &vec![0; differences.len()])?;
        let firsts: Vec<usize> = stage.pairs.iter().map(|p| p.0 as usize).collect();
        let mut out = values.select(&firsts);
        let mut next = 0;
        for (i, pair) in stage.pairs.iter().enumerate() {
            if pair.1.is_some() {
                out.add_assign(i, relus.get(next));
                next += 1;
            }
        }
        Ok(out)
    }

    /// One stage on the values computed so far: its output, bootstraps and
    /// multiply-adds.
    fn stage(
        &self,
        stage: &PlanStage,
        values: &[Option<LweVector>],
    ) -> heman_tfhe::Result<(LweVector, usize, usize)> {
        let read = |v: usize| {
            values[v].as_ref().ok_or_else(|| {
                heman_tfhe::TfheError::Shape(format!("value {v} was freed before its last reader"))
            })
        };
        Ok(match stage {
            PlanStage::Linear(l) => {
                let inputs = l
                    .inputs
                    .iter()
                    .map(|&v| read(v))
                    .collect::<Result<Vec<_>, _>>()?;
                let out = match inputs[..] {
                    [single] => l.rows.apply(single, l.encoding)?,
                    _ => l
                        .rows
                        .apply(&LweVector::concatenate(&inputs)?, l.encoding)?,
                };
                (out, 0, l.rows.nonzeros())
            }
            PlanStage::Lookup(l) => {
                let tables = self.tables(l)?;
                let out = self.key.bootstrap(read(l.input)?, &tables, &l.table_of)?;
                (out, l.table_of.len(), 0)
            }
            PlanStage::Max(m) => {
                let out = self.max(m, read(m.input)?)?;
                (out, m.bootstraps(), 3 * m.bootstraps())
            }
        })
    }

    /// Runs the plan on a fresh encryption (the seeded form the data owner
    /// sends), calling `on_stage` after each stage with its timing. The
    /// input's count and dimension are checked against the plan *before* its
    /// masks are regenerated: a seeded vector costs one word per ciphertext,
    /// its expansion `size` words, so a short request declaring millions of
    /// ciphertexts must be refused before it allocates (issue 15, hole 2).
    /// The outputs leave re-randomised and flooded (their masks fresh, their
    /// noise drowned in a Gaussian as large as the computation's worst
    /// output noise), so they tell the data owner nothing of the weights
    /// beyond the outputs' values.
    pub fn run_fresh(
        &self,
        input: &SeededLweVector,
        on_stage: impl FnMut(&StageTiming),
    ) -> Result<(LweVector, Vec<StageTiming>)> {
        self.check_input(input.len(), input.size())?;
        self.run(input.expand(), on_stage)
    }

    /// Refuses an input of `count` ciphertexts of `size` words that is not
    /// what the plan takes.
    fn check_input(&self, count: usize, size: usize) -> Result<()> {
        let plan = self.plan;
        let volume: usize = plan.input.shape.iter().product();
        if count != volume {
            return Err(RuntimeError::Input(format!(
                "{count} ciphertexts for an input of {volume} values"
            )));
        }
        let expected = plan.preset.dimension(plan.input.key);
        if size != expected + 1 {
            return Err(RuntimeError::Input(format!(
                "ciphertexts of dimension {}, the model takes inputs under the {} key (dimension {expected})",
                size.saturating_sub(1),
                plan.input.key.name()
            )));
        }
        Ok(())
    }

    /// Runs the plan on expanded ciphertexts (the input checked again):
    /// private, so that every entry point takes fresh encryptions only.
    fn run(
        &self,
        input: LweVector,
        mut on_stage: impl FnMut(&StageTiming),
    ) -> Result<(LweVector, Vec<StageTiming>)> {
        let plan = self.plan;
        self.check_input(input.len(), input.size())?;
        let last_readers = plan.last_readers();
        let mut values: Vec<Option<LweVector>> = vec![Some(input)];
        let mut timings = Vec::with_capacity(plan.stages.len());
        for (index, stage) in plan.stages.iter().enumerate() {
            let start = Instant::now();
            let (out, bootstraps, multiply_adds) =
                self.stage(stage, &values).map_err(tfhe_error(index))?;
            values.push(Some(out));
            // Values no later stage reads are freed (the last is the output).
            for (v, slot) in values.iter_mut().enumerate() {
                if last_readers[v] == Some(index) {
                    *slot = None;
                }
            }
            let timing = StageTiming {
                stage: index,
                name: stage.name().to_string(),
                kind: stage.kind(),
                seconds: start.elapsed().as_secs_f64(),
                bootstraps,
                multiply_adds,
            };
            info!(
                stage = index,
                name = %timing.name,
                kind = timing.kind,
                bootstraps,
                multiply_adds,
                ms = timing.seconds * 1e3,
                "stage done"
            );
            on_stage(&timing);
            timings.push(timing);
        }
        let mut values = values
            .pop()
            .flatten()
            .ok_or_else(|| RuntimeError::Plan("the plan computes no output".into()))?;
        self.key
            .rerandomise(&mut values, self.flooding_std)
            .map_err(RuntimeError::Rerandomise)?;
        info!(
            flooding_log2 = self.flooding_std.log2(),
            "outputs re-randomised and flooded"
        );
        Ok((values, timings))
    }
}
