//! Programmable bootstrapping of whole vectors, parallel over values.
//!
//! Each value is keyswitched to the small key, its phase switched to 2N
//! positions, the table rotated by it (blind rotation) and the constant
//! coefficient extracted under the big key again: the output encrypts the
//! table's entry with fresh, input-independent noise (tfhe-rs's KS_PBS atomic
//! pattern with its modulus-switch noise reduction).

use rayon::prelude::*;
use tfhe::core_crypto::prelude::{CiphertextModulus, LweCiphertext};
use tfhe::shortint::parameters::{AtomicPatternKind, Degree, NoiseLevel, PBSOrder};
use tfhe::shortint::Ciphertext;

use crate::error::{Result, TfheError};
use crate::keys::ServerKey;
use crate::lookup::{LookupTable, ManyLookupTable};
use crate::lwe::LweVector;

impl ServerKey {
    fn shortint_ciphertext(&self, words: &[u64]) -> Ciphertext {
        let params = self.preset().parameters();
        Ciphertext::new(
            LweCiphertext::from_container(words.to_vec(), CiphertextModulus::new_native()),
            Degree::new(0),
            NoiseLevel::NOMINAL,
            params.message_modulus,
            params.carry_modulus,
            AtomicPatternKind::Standard(PBSOrder::KeyswitchBootstrap),
        )
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
        if inputs.size() != self.preset().lwe_dimension() + 1 {
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
            .zip(inputs.iter().collect::<Vec<_>>())
            .zip(table_of)
            .for_each(|((out, input), &t)| {
                let mut ct = self.shortint_ciphertext(input);
                self.key
                    .apply_lookup_table_assign(&mut ct, &tables[t as usize].table);
                out.copy_from_slice(ct.ct.as_ref());
            });
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
        let results: Vec<Vec<Ciphertext>> = inputs
            .iter()
            .collect::<Vec<_>>()
            .into_par_iter()
            .zip(table_of)
            .map(|(input, &t)| {
                let ct = self.shortint_ciphertext(input);
                self.key
                    .apply_many_lookup_table(&ct, &tables[t as usize].table)
            })
            .collect();
        Ok((0..functions)
            .map(|f| {
                let mut out = LweVector::zeros(self.preset(), inputs.len());
                for (slot, cts) in out.par_iter_mut().zip(&results).collect::<Vec<_>>() {
                    slot.copy_from_slice(cts[f].ct.as_ref());
                }
                out
            })
            .collect())
    }
}
