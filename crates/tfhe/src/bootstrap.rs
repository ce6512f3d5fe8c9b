//! Programmable bootstrapping of whole vectors, parallel over values.
//!
//! A value under the big key is keyswitched to the small key (one already
//! under it, a fresh input, skips this); its phase is switched to 2N
//! positions with the preset's modulus-switch configuration, the table
//! rotated by it (blind rotation) and coefficients extracted under the big
//! key again: each output encrypts a table entry with fresh,
//! input-independent noise. This is tfhe-rs's KS_PBS atomic pattern,
//! assembled from its `core_crypto` algorithms so that small-key inputs can
//! skip the keyswitch (Chillotti, Joye, Ligier, Orfila, Tap, "CONCRETE:
//! Concrete operates on ciphertexts rapidly by extending TfhE", WAHC 2020,
//! describes both orders of keyswitch and bootstrap).

use rayon::prelude::*;
use tfhe::core_crypto::prelude::{
    blind_rotate_assign_mem_optimized, blind_rotate_assign_mem_optimized_requirement,
    extract_lwe_sample_from_glwe_ciphertext, keyswitch_lwe_ciphertext, CiphertextModulus,
    ComputationBuffers, Fft, GlweCiphertextOwned, LweCiphertext, LweCiphertextOwned, LweSize,
    MonomialDegree,
};

use crate::error::{Result, TfheError};
use crate::keys::ServerKey;
use crate::lookup::{LookupTable, ManyLookupTable};
use crate::lwe::LweVector;

/// One worker's buffers: the FFT scratch space and the keyswitch's output.
struct Scratch {
    buffers: ComputationBuffers,
    small: LweCiphertextOwned<u64>,
}

impl ServerKey {
    fn scratch(&self) -> Scratch {
        Scratch {
            buffers: ComputationBuffers::new(),
            small: LweCiphertext::new(
                0,
                LweSize(self.preset().small_lwe_dimension() + 1),
                CiphertextModulus::new_native(),
            ),
        }
    }

    /// Rotates `acc` (a lookup table) by the phase of `input`, a ciphertext
    /// under either key.
    fn blind_rotate(
        &self,
        input: &[u64],
        acc: &mut GlweCiphertextOwned<u64>,
        scratch: &mut Scratch,
    ) {
        let input = LweCiphertext::from_container(input, CiphertextModulus::new_native());
        let small = if input.lwe_size() == scratch.small.lwe_size() {
            input
        } else {
            keyswitch_lwe_ciphertext(&self.keyswitch, &input, &mut scratch.small);
            scratch.small.as_view()
        };
        let polynomial_size = self.bootstrap.polynomial_size();
        let switched = self
            .modulus_switch
            .lwe_ciphertext_modulus_switch::<usize, _>(
                &small,
                polynomial_size.to_blind_rotation_input_modulus_log(),
            );
        let fft = Fft::new(polynomial_size);
        let fft = fft.as_view();
        scratch.buffers.resize(
            blind_rotate_assign_mem_optimized_requirement::<u64>(
                self.bootstrap.glwe_size(),
                polynomial_size,
                fft,
            )
            .unaligned_bytes_required(),
        );
        blind_rotate_assign_mem_optimized(
            &switched,
            acc,
            &self.bootstrap,
            fft,
            scratch.buffers.stack(),
        );
    }

    fn check_tables(&self, inputs: &LweVector, tables: usize, table_of: &[u32]) -> Result<()> {
        if table_of.len() != inputs.len() {
            return Err(TfheError::Shape(format!(
                "{} table indices for {} ciphertexts",
                table_of.len(),
                inputs.len()
            )));
        }
        if let Some(t) = table_of.iter().find(|&&t| t as usize >= tables) {
            return Err(TfheError::Shape(format!("table {t} of {tables}")));
        }
        if self.preset().key_of_size(inputs.size()).is_none() {
            return Err(TfheError::Parameters(format!(
                "ciphertexts of dimension {} for a {} server key",
                inputs.size() - 1,
                self.preset().name()
            )));
        }
        Ok(())
    }

    /// Bootstraps value `i` of `inputs` through `tables[table_of[i]]`.
    pub fn bootstrap(
        &self,
        inputs: &LweVector,
        tables: &[LookupTable],
        table_of: &[u32],
    ) -> Result<LweVector> {
        self.check_tables(inputs, tables.len(), table_of)?;
        let mut out = LweVector::zeros(self.preset(), inputs.len());
        out.par_iter_mut()
            .zip(inputs.par_iter())
            .zip(table_of)
            .for_each_init(
                || self.scratch(),
                |scratch, ((out, input), &t)| {
                    let mut acc = tables[t as usize].table.acc.clone();
                    self.blind_rotate(input, &mut acc, scratch);
                    let mut out =
                        LweCiphertext::from_container(out, CiphertextModulus::new_native());
                    extract_lwe_sample_from_glwe_ciphertext(&acc, &mut out, MonomialDegree(0));
                },
            );
        Ok(out)
    }

    /// Bootstraps value `i` once through the many-lookup table
    /// `tables[table_of[i]]`: one output vector per function.
    pub fn bootstrap_many(
        &self,
        inputs: &LweVector,
        tables: &[ManyLookupTable],
        table_of: &[u32],
    ) -> Result<Vec<LweVector>> {
        self.check_tables(inputs, tables.len(), table_of)?;
        let functions = tables.first().map_or(0, ManyLookupTable::function_count);
        if tables.iter().any(|t| t.function_count() != functions) {
            return Err(TfheError::LookupTable(
                "many-lookup tables of one call must hold as many functions".into(),
            ));
        }
        let rotated: Vec<(GlweCiphertextOwned<u64>, usize)> = inputs
            .par_iter()
            .zip(table_of)
            .map_init(
                || self.scratch(),
                |scratch, (input, &t)| {
                    let table = &tables[t as usize].table;
                    let mut acc = table.acc.clone();
                    self.blind_rotate(input, &mut acc, scratch);
                    (acc, table.sample_extraction_stride)
                },
            )
            .collect();
        Ok((0..functions)
            .map(|f| {
                let mut out = LweVector::zeros(self.preset(), inputs.len());
                out.par_iter_mut()
                    .zip(&rotated)
                    .for_each(|(slot, (acc, stride))| {
                        let mut slot =
                            LweCiphertext::from_container(slot, CiphertextModulus::new_native());
                        extract_lwe_sample_from_glwe_ciphertext(
                            acc,
                            &mut slot,
                            MonomialDegree(f * stride),
                        );
                    });
                out
            })
            .collect())
    }
}
