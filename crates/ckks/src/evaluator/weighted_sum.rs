//! Linear combinations of ciphertexts with real scalar weights: the linear
//! layers of throughput packing, where slot `j` of every ciphertext belongs
//! to input `j`, so a layer multiplies whole ciphertexts by its weights and
//! needs no rotation (CryptoNets, Gilad-Bachrach et al., ICML 2016).
//!
//! A dense layer of `r` outputs over `c` inputs is `r c` constant
//! multiply-accumulates per coefficient, which makes memory the bound: the
//! sums are computed one block of coefficients of one prime at a time, for
//! every output, so that each block of every input is read from memory once
//! and then from cache.

use rayon::prelude::*;

use super::Evaluator;
use crate::error::{CkksError, Result};
use crate::plaintext::Ciphertext;
use crate::ring::{ifma, Poly};

/// Bytes the blocks of every input of a layer take at most: they stay in
/// the last-level cache while every output's accumulators pass over them.
const BLOCK_BYTES: usize = 16 << 20;
/// Coefficients per block, at most: longer runs gain nothing more from the
/// prefetcher. At least 128 (1 KiB runs). Measured on cryptonets_square's
/// 400-input dense layer (2 cores): 0.72 s with 128, 0.58 s with 512, 0.50 s
/// with 2048 coefficients per block.
const MAX_BLOCK: usize = 2048;

/// Coefficients per block for a layer of `inputs` inputs.
fn block_length(inputs: usize) -> usize {
    let fits = BLOCK_BYTES / (8 * inputs.max(1));
    // The largest power of two that fits, within 128..=MAX_BLOCK.
    (1usize << fits.max(1).ilog2()).clamp(128, MAX_BLOCK)
}

/// One output's terms: (index of the input ciphertext, weight).
pub type WeightedTerms = Vec<(u32, f64)>;

/// A weight's integer `round(w * scale)` reduced modulo one prime, with its
/// Shoup companion when the IFMA kernel multiplies by it.
#[derive(Clone, Copy)]
struct Residue {
    value: u64,
    shoup: u64,
}

impl Evaluator {
    /// `out[r] = sum over (i, w) in rows[r] of round(w * weight_scale) *
    /// inputs[i]`, every input at one level, scale and degree; each output's
    /// scale is the inputs' times `weight_scale`, not rescaled (rescale after
    /// adding what else the output sums). A row without terms is the zero
    /// ciphertext of that degree.
    pub fn weighted_sums(
        &self,
        inputs: &[Ciphertext],
        rows: &[WeightedTerms],
        weight_scale: f64,
    ) -> Result<Vec<Ciphertext>> {
        let first = inputs
            .first()
            .ok_or_else(|| CkksError::InvalidParameters("a weighted sum of no input".into()))?;
        for ct in inputs {
            Self::check_scales(first.scale, ct.scale)?;
            if ct.level != first.level {
                return Err(CkksError::LevelMismatch(first.level, ct.level));
            }
            if ct.parts.len() != first.parts.len() {
                return Err(CkksError::InvalidDegree(ct.degree()));
            }
        }
        let (level, parts, n) = (first.level, first.parts.len(), self.params.ring().n());
        let limbs = level + 1;
        let residues = self.weight_residues(inputs.len(), rows, weight_scale, level)?;
        let mut outputs: Vec<Vec<Poly>> = (0..rows.len())
            .map(|_| (0..parts).map(|_| Poly::zero(n, limbs)).collect())
            .collect();
        // One task per (part, prime), holding that limb of every output:
        // written in place, so the outputs are the only allocation.
        let mut tasks: Vec<Vec<&mut [u64]>> = (0..parts * limbs)
            .map(|_| Vec::with_capacity(rows.len()))
            .collect();
        for output in outputs.iter_mut() {
            for (part, poly) in output.iter_mut().enumerate() {
                for (limb, data) in poly.data_mut().chunks_mut(n).enumerate() {
                    tasks[part * limbs + limb].push(data);
                }
            }
        }
        tasks
            .into_par_iter()
            .enumerate()
            .for_each(|(task, mut out)| {
                let (part, limb) = (task / limbs, task % limbs);
                let limb_inputs: Vec<&[u64]> =
                    inputs.iter().map(|ct| ct.parts[part].limb(limb)).collect();
                self.weighted_limb(&limb_inputs, rows, &residues, (limb, limbs), &mut out);
            });
        Ok(outputs
            .into_iter()
            .map(|parts| Ciphertext {
                parts,
                level,
                scale: first.scale * weight_scale,
                seed: None,
            })
            .collect())
    }

    /// Each row's weights as integers reduced modulo every prime of the
    /// level, row-major (`terms x limbs` per row); inputs out of range and
    /// weights too large to encode refused.
    fn weight_residues(
        &self,
        inputs: usize,
        rows: &[WeightedTerms],
        weight_scale: f64,
        level: usize,
    ) -> Result<Vec<Vec<Residue>>> {
        let ring = self.params.ring();
        rows.iter()
            .map(|terms| {
                let mut residues = Vec::with_capacity(terms.len() * (level + 1));
                for &(input, weight) in terms {
                    if input as usize >= inputs {
                        return Err(CkksError::InvalidParameters(format!(
                            "a weight of input {input}, of {inputs}"
                        )));
                    }
                    let x = (weight * weight_scale).round();
                    if !x.is_finite() || x.abs() >= 2f64.powi(126) {
                        return Err(CkksError::EncodingOverflow(format!(
                            "weight {weight} at scale {weight_scale}"
                        )));
                    }
                    for i in 0..=level {
                        let p = ring.modulus(i).value();
                        let value = ring.modulus(i).reduce_i128(x as i128);
                        let shoup = if p < 1 << 50 {
                            ifma::shoup52(value, p)
                        } else {
                            0
                        };
                        residues.push(Residue { value, shoup });
                    }
                }
                Ok(residues)
            })
            .collect()
    }

    /// Every row's sum on one limb (`inputs[i]` the inputs' residues modulo
    /// prime `limb`, `out[r]` row `r`'s zeroed limb): block by block, so
    /// that the block of each input stays in cache across the rows.
    fn weighted_limb(
        &self,
        inputs: &[&[u64]],
        rows: &[WeightedTerms],
        residues: &[Vec<Residue>],
        (limb, limbs): (usize, usize),
        out: &mut [&mut [u64]],
    ) {
        let ring = self.params.ring();
        let n = ring.n();
        let p = ring.modulus(limb).value();
        let fast = ifma::available() && p < 1 << 50;
        let block = block_length(inputs.len());
        for start in (0..n).step_by(block) {
            let end = (start + block).min(n);
            for ((terms, residues), out) in rows.iter().zip(residues).zip(out.iter_mut()) {
                let acc = &mut out[start..end];
                for (k, &(input, _)) in terms.iter().enumerate() {
                    let w = residues[k * limbs + limb];
                    let a = &inputs[input as usize][start..end];
                    if fast {
                        ifma::mul_const_acc(acc, a, w.value, w.shoup, p);
                    } else {
                        ring.mul_const_acc_limb(limb, acc, a, w.value);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{CkksParameters, Decryptor, Encoder, Encryptor, Evaluator, KeyGenerator};

    #[test]
    fn weighted_sums_match_the_slotwise_combination() {
        let params = CkksParameters::new(13, &[50, 30, 30], &[50], 30).unwrap();
        let mut keygen = KeyGenerator::new(&params).unwrap();
        let sk = keygen.gen_secret_key();
        let pk = keygen.gen_public_key(&sk).unwrap();
        let (encoder, evaluator) = (Encoder::new(&params), Evaluator::new(&params));
        let encryptor = Encryptor::new(&params, &pk).unwrap();
        let decryptor = Decryptor::new(&params, &sk).unwrap();
        let slots = params.slots();
        let vectors: Vec<Vec<f64>> = (0..3)
            .map(|k| {
                (0..slots)
                    .map(|j| ((j * (k + 2)) % 17) as f64 / 8.0 - 1.0)
                    .collect()
            })
            .collect();
        let cts: Vec<_> = vectors
            .iter()
            .map(|v| {
                let pt = encoder
                    .encode(v, params.max_level(), params.default_scale())
                    .unwrap();
                encryptor.encrypt(&pt).unwrap()
            })
            .collect();
        let rows = vec![
            vec![(0, 0.5), (2, -1.25)],
            vec![],
            vec![(1, 3.0), (1, -0.5)],
        ];
        let q = params.q()[params.max_level()] as f64;
        let sums = evaluator.weighted_sums(&cts, &rows, q).unwrap();
        assert_eq!(sums.len(), 3);
        for (row, ct) in rows.iter().zip(&sums) {
            let ct = evaluator.rescale(ct).unwrap();
            let got = encoder.decode(&decryptor.decrypt(&ct).unwrap());
            for (j, g) in got.iter().enumerate() {
                let want: f64 = row.iter().map(|&(i, w)| w * vectors[i as usize][j]).sum();
                assert!((g - want).abs() < 1e-3, "slot {j}: {g} vs {want}");
            }
        }
        // An input index past the inputs is refused, not read.
        assert!(evaluator.weighted_sums(&cts, &[vec![(3, 1.0)]], q).is_err());
    }
}
