//! The quantised plaintext model: the plan run on integers exactly as the
//! encrypted run computes them, noise aside. It is the reference encrypted
//! results must equal. With a noise source it also simulates the encrypted
//! run, misreads included, from the noise model (how the compiler chooses
//! bit widths without encrypting anything).

use heman_model::Tensor;
use heman_tfhe::Preset;
use rand::Rng;
use rayon::prelude::*;

use crate::error::{CompileError, Result};
use crate::tfhe::budget::NoiseProfile;
use crate::tfhe::plan::{LookupStage, Plan, PlanStage};

use crate::gaussian::standard_normal as gaussian;

/// Torus units of Gaussian noise of `variance` (torus fraction squared).
fn torus_noise(rng: &mut impl Rng, variance: f64) -> u64 {
    (gaussian(rng) * variance.sqrt() * 18446744073709551616.0).round() as i64 as u64
}

/// Noise to add to every read, or none.
pub struct Noise<'a, R: Rng> {
    /// The plan's noise variances at every read.
    pub profile: &'a NoiseProfile,
    /// The source of the simulated Gaussian noise.
    pub rng: &'a mut R,
}

impl Plan {
    /// The input window integers of a real input tensor.
    pub fn quantise_input(&self, x: &Tensor) -> Result<Vec<u64>> {
        let volume: usize = self.input.shape.iter().product();
        if x.len() != volume {
            return Err(CompileError::Graph(format!(
                "input of {} values, the model takes {volume}",
                x.len()
            )));
        }
        Ok(x.data().iter().map(|&v| self.input.quantise(v)).collect())
    }

    /// The real output tensor of output window integers (before
    /// post-processing).
    pub fn dequantise_output(&self, u: &[u64]) -> Tensor {
        let q = &self.output.values;
        Tensor::new(
            self.output.shape.clone(),
            u.iter()
                .enumerate()
                .map(|(i, &u)| q.real(i, u as f64))
                .collect(),
        )
    }

    /// Runs the plan on input integers: exactly (`noise` = `None`), or
    /// with simulated encryption noise.
    pub fn run_integers<R: Rng>(
        &self,
        input: &[u64],
        mut noise: Option<Noise<'_, R>>,
    ) -> Result<Vec<u64>> {
        let mut values: Vec<Vec<i64>> = vec![input.iter().map(|&u| u as i64).collect()];
        for (index, stage) in self.stages.iter().enumerate() {
            let read: Vec<i64> = stage
                .inputs()
                .iter()
                .flat_map(|&v| values[v].iter().copied())
                .collect();
            let out = match stage {
                PlanStage::Linear(l) => (0..l.rows.rows())
                    .into_par_iter()
                    .map(|r| {
                        let sum = l.rows.row(r).fold(l.rows.biases[r] as i128, |acc, (c, w)| {
                            acc + w as i128 * read[c as usize] as i128
                        });
                        sum as i64
                    })
                    .collect(),
                PlanStage::Lookup(l) => {
                    let noise = noise.as_mut().map(|n| {
                        let variances = n.profile.reads[index].as_deref().unwrap_or(&[]);
                        (variances, &mut *n.rng)
                    });
                    lookup(self.preset, l, &read, noise)?
                }
                PlanStage::Max(m) => {
                    let variances = noise
                        .as_ref()
                        .and_then(|n| n.profile.reads[index].clone())
                        .unwrap_or_default();
                    let window = m.window();
                    let mut out = Vec::with_capacity(m.pairs.len());
                    for (p, &(a, b)) in m.pairs.iter().enumerate() {
                        let va = read[a as usize];
                        let Some(b) = b else {
                            out.push(va);
                            continue;
                        };
                        let shifted = read[b as usize] - va + m.count as i64 - 1;
                        let r = match noise.as_mut() {
                            None => {
                                let u = shifted.clamp(0, window.count as i64 - 1) as u64;
                                m.relu(window.read(self.preset, 1, u)?)
                            }
                            Some(n) => {
                                let phase = m
                                    .encoding
                                    .encode(shifted)
                                    .wrapping_add(torus_noise(n.rng, variances[p]));
                                let (u, negated) = window.read_phase(self.preset, phase)?;
                                if negated {
                                    -m.relu(u)
                                } else {
                                    m.relu(u)
                                }
                            }
                        };
                        out.push(va + r);
                    }
                    out
                }
            };
            values.push(out);
        }
        let values = values.pop().expect("the input's values");
        let out = &self.output;
        Ok(values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let phase = out.encoding.encode(v);
                let phase = match noise.as_mut() {
                    Some(n) => phase.wrapping_add(torus_noise(n.rng, n.profile.output[i])),
                    None => phase,
                };
                out.decode(i, phase)
            })
            .collect())
    }

    /// The quantised plaintext model on input integers, exactly.
    pub fn run_exact(&self, input: &[u64]) -> Result<Vec<u64>> {
        self.run_integers::<rand_chacha::ChaCha8Rng>(input, None)
    }

    /// The quantised model on a real input: quantise, run, dequantise.
    pub fn evaluate<R: Rng>(&self, x: &Tensor, noise: Option<Noise<'_, R>>) -> Result<Tensor> {
        let u = self.run_integers(&self.quantise_input(x)?, noise)?;
        Ok(self.dequantise_output(&u))
    }
}

/// The lookup of every value: its accumulator's phase (plus the noise
/// drawn, when simulating) read from the table as the bootstrap reads it.
/// An accumulator outside its window wraps around the torus and reads the
/// negacyclic half as the encrypted run would, so calibrated windows that an
/// input overflows cost what they cost encrypted.
fn lookup<R: Rng>(
    preset: Preset,
    l: &LookupStage,
    values: &[i64],
    mut noise: Option<(&[f64], &mut R)>,
) -> Result<Vec<i64>> {
    values
        .iter()
        .zip(&l.table_of)
        .enumerate()
        .map(|(i, (&v, &t))| {
            let t = t as usize;
            let mut phase = l.input_encoding.encode(v);
            if let Some((variances, rng)) = noise.as_mut() {
                phase = phase.wrapping_add(torus_noise(*rng, variances[i]));
            }
            let (u, negated) = l.window(t).read_phase(preset, phase)?;
            let y = l.output_value(t, u);
            Ok(if negated { -y } else { y })
        })
        .collect()
}
