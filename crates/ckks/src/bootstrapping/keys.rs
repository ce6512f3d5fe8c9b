//! The evaluation keys bootstrapping needs: relinearisation, the Galois keys of its
//! rotations and conjugation, and the two switching keys of sparse-secret encapsulation.

use super::Bootstrapper;
use crate::error::Result;
use crate::keys::{GaloisKeys, KeyGenerator, RelinearizationKey, SecretKey, SwitchingKey};
use zeroize::Zeroize;

/// Sparse-secret encapsulation's keys (Bossuat, Troncoso-Pastoriza, Hubaux, ACNS 2022):
/// from the secret s to an ephemeral sparse s' modulo q_0 p_0 only (encrypted under s', in
/// the small ring where its low weight is safe), and from s' back to s over the whole chain
/// (encrypted under s, as any evaluation key).
#[derive(Debug, Clone, PartialEq)]
pub struct EncapsulationKeys {
    pub(crate) fingerprint: [u8; 32],
    pub(crate) weight: usize,
    pub(crate) dense_to_sparse: SwitchingKey,
    pub(crate) sparse_to_dense: SwitchingKey,
}

impl EncapsulationKeys {
    /// The ephemeral secret's Hamming weight.
    pub fn weight(&self) -> usize {
        self.weight
    }
}

/// Everything [`Bootstrapper::bootstrap`] needs from the secret key's owner.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrappingKeys {
    /// Relinearisation (EvalMod's products).
    pub relinearization: RelinearizationKey,
    /// The rotations of the DFTs and the trace, and conjugation.
    pub galois: GaloisKeys,
    /// Present when the circuit encapsulates (its shape has an ephemeral weight).
    pub encapsulation: Option<EncapsulationKeys>,
}

/// The keys [`Bootstrapper::bootstrap_amplified`] reads, borrowed: they may be a larger
/// set's (a network's relinearisation key, and Galois keys that include the circuit's).
#[derive(Debug, Clone, Copy)]
pub struct BootstrappingKeysRef<'a> {
    /// Relinearisation (EvalMod's products).
    pub relinearization: &'a RelinearizationKey,
    /// Galois keys holding the circuit's rotations and conjugation.
    pub galois: &'a GaloisKeys,
    /// Present when the circuit encapsulates.
    pub encapsulation: Option<&'a EncapsulationKeys>,
}

impl BootstrappingKeys {
    /// The keys, borrowed.
    pub fn as_ref(&self) -> BootstrappingKeysRef<'_> {
        BootstrappingKeysRef {
            relinearization: &self.relinearization,
            galois: &self.galois,
            encapsulation: self.encapsulation.as_ref(),
        }
    }
}

impl KeyGenerator {
    /// The encapsulation keys for an ephemeral secret of Hamming weight `weight`.
    pub fn gen_encapsulation_keys(
        &mut self,
        sk: &SecretKey,
        weight: usize,
    ) -> Result<EncapsulationKeys> {
        self.check(sk)?;
        let small = self.params.encapsulation(weight)?;
        let n = self.params.n();
        let mut sparse = self.sampler.hamming_weight(n, weight);
        let sparse_small = SecretKey::from_coeffs(&small, sparse.clone());
        let dense_small = SecretKey::from_coeffs(&small, sk.coeffs.clone());
        let sparse_full = SecretKey::from_coeffs(&self.params, sparse.clone());
        sparse.zeroize();
        let mut small_generator = KeyGenerator::new(&small)?;
        let dense_to_sparse = small_generator.gen_switching_key(&sparse_small, &dense_small.ntt);
        let sparse_to_dense = self.gen_switching_key(sk, &sparse_full.ntt);
        Ok(EncapsulationKeys {
            fingerprint: self.params.fingerprint(),
            weight,
            dense_to_sparse,
            sparse_to_dense,
        })
    }

    /// Every key `bootstrapper` needs.
    pub fn gen_bootstrapping_keys(
        &mut self,
        sk: &SecretKey,
        bootstrapper: &Bootstrapper,
    ) -> Result<BootstrappingKeys> {
        let encapsulation = match bootstrapper.shape().ephemeral_weight {
            Some(w) => Some(self.gen_encapsulation_keys(sk, w)?),
            None => None,
        };
        Ok(BootstrappingKeys {
            relinearization: self.gen_relin_key(sk)?,
            galois: self.gen_galois_keys(sk, &bootstrapper.rotation_steps(), true)?,
            encapsulation,
        })
    }
}
