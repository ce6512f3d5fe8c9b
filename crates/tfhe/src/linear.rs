//! Plaintext-weight linear combinations of LWE ciphertexts, computed in place
//! on their masks and bodies: `sum_i w_i c_i + b` encrypts `sum_i w_i m_i + b`
//! with noise variance `sum_i w_i^2 var(c_i)` (LWE is linearly homomorphic
//! for integer weights; Chillotti, Gama, Georgieva, Izabachene, "TFHE: fast
//! fully homomorphic encryption over the torus", J. Cryptology 2020).
//!
//! Working on the raw words skips tfhe-rs's shortint bookkeeping (degree and
//! noise-level checks on every operation): heman's compiler bounds both
//! before the plan exists, see `heman-compiler`'s `tfhe` module.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::encoding::Encoding;
use crate::error::{Result, TfheError};
use crate::lwe::LweVector;

/// Integer weights in compressed-row form with one integer bias per row:
/// row `r` reads `columns[offsets[r]..offsets[r + 1]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegerRows {
    /// Number of input ciphertexts (columns).
    pub inputs: usize,
    /// Where each row's terms start in `columns` and `weights`, plus the end
    /// of the last row (`rows + 1` entries, starting at 0).
    pub offsets: Vec<u32>,
    /// Input index of each nonzero term.
    pub columns: Vec<u32>,
    /// Integer weight of each nonzero term.
    pub weights: Vec<i64>,
    /// Added to each row (encoded like the inputs before it reaches the body).
    pub biases: Vec<i64>,
}

impl IntegerRows {
    /// An empty matrix over `inputs` columns, to be filled by [`IntegerRows::push_row`].
    pub fn new(inputs: usize) -> Self {
        Self {
            inputs,
            offsets: vec![0],
            columns: Vec::new(),
            weights: Vec::new(),
            biases: Vec::new(),
        }
    }

    /// Appends a row of (column, weight) terms; zero weights are dropped.
    pub fn push_row(&mut self, terms: impl IntoIterator<Item = (u32, i64)>, bias: i64) {
        for (c, w) in terms {
            if w != 0 {
                self.columns.push(c);
                self.weights.push(w);
            }
        }
        self.offsets.push(self.columns.len() as u32);
        self.biases.push(bias);
    }

    /// Number of rows (output ciphertexts).
    pub fn rows(&self) -> usize {
        self.biases.len()
    }

    /// The (column, weight) terms of row `r`.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (u32, i64)> + '_ {
        let range = self.offsets[r] as usize..self.offsets[r + 1] as usize;
        self.columns[range.clone()]
            .iter()
            .copied()
            .zip(self.weights[range].iter().copied())
    }

    /// Nonzero weights (multiply-adds of whole ciphertexts per evaluation).
    pub fn nonzeros(&self) -> usize {
        self.weights.len()
    }

    /// Checks the structure (offsets increasing, columns in range).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TfheError::Shape(format!("integer matrix: {m}")));
        if self.offsets.len() != self.biases.len() + 1
            || self.offsets.first() != Some(&0)
            || self.offsets.last().copied() != Some(self.columns.len() as u32)
            || self.columns.len() != self.weights.len()
        {
            return bad("offsets, columns and weights disagree".into());
        }
        if self.offsets.windows(2).any(|w| w[0] > w[1]) {
            return bad("offsets decrease".into());
        }
        if let Some(c) = self.columns.iter().find(|&&c| c as usize >= self.inputs) {
            return bad(format!("column {c} of {}", self.inputs));
        }
        Ok(())
    }

    /// `rows(inputs)` for inputs carrying integers at `encoding`: one output
    /// ciphertext per row, parallel over rows.
    pub fn apply(&self, inputs: &LweVector, encoding: Encoding) -> Result<LweVector> {
        if inputs.len() != self.inputs {
            return Err(TfheError::Shape(format!(
                "linear map over {} values applied to {} ciphertexts",
                self.inputs,
                inputs.len()
            )));
        }
        let size = inputs.size();
        let mut out = vec![0u64; size * self.rows()];
        out.par_chunks_exact_mut(size)
            .enumerate()
            .for_each(|(r, acc)| {
                for (c, w) in self.row(r) {
                    multiply_add(acc, inputs.get(c as usize), w);
                }
                acc[size - 1] = acc[size - 1].wrapping_add(encoding.encode(self.biases[r]));
            });
        Ok(LweVector::from_parts(size, out))
    }
}

/// `acc += w * ct` word by word, modulo 2^64.
fn multiply_add(acc: &mut [u64], ct: &[u64], w: i64) {
    match w {
        1 => acc
            .iter_mut()
            .zip(ct)
            .for_each(|(a, &c)| *a = a.wrapping_add(c)),
        -1 => acc
            .iter_mut()
            .zip(ct)
            .for_each(|(a, &c)| *a = a.wrapping_sub(c)),
        _ => {
            let w = w as u64;
            acc.iter_mut()
                .zip(ct)
                .for_each(|(a, &c)| *a = a.wrapping_add(c.wrapping_mul(w)))
        }
    }
}
