//! The tfhe-rs parameter presets heman uses: the classic keyswitch-then-
//! bootstrap ("KS_PBS") Gaussian sets tuned by Zama for 128-bit security and a
//! failure probability of 2^-128 per bootstrap at their nominal message size.
//! heman never builds parameters of its own: only these presets.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tfhe::shortint::parameters::v1_4::V1_4_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128;
use tfhe::shortint::parameters::DynamicDistribution;
use tfhe::shortint::parameters::{
    ClassicPBSParameters, PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128,
    PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128,
};

use crate::error::{Result, TfheError};

/// A tfhe-rs parameter preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Preset {
    /// `PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128`: N = 2048, small
    /// keys, fast bootstraps; 4 bits of message and carry.
    #[serde(rename = "2_2")]
    Message2Carry2,
    /// `PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128`: N = 8192, four
    /// times the lookup-table resolution and far less noise per bootstrap.
    #[serde(rename = "3_3")]
    Message3Carry3,
    /// `V1_4_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128` (still shipped by
    /// tfhe-rs 1.8): N = 4096, twice 2_2's resolution at about a third of
    /// 3_3's cost per bootstrap.
    #[serde(rename = "2_3")]
    Message2Carry3,
}

/// Which of the preset's two secret keys an LWE ciphertext is under (what
/// tfhe-rs calls the encryption key choice).
///
/// Bootstraps output under the big key (dimension k*N), where heman
/// computes. The small key (the bootstrap's input dimension) is what the
/// keyswitching key encrypts under, with the preset's LWE noise, so a fresh
/// encryption under it is as secure as the keyswitching key; a bootstrap
/// whose input is under it skips the keyswitch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyChoice {
    /// The big key (dimension k*N): what bootstraps output and heman computes
    /// under.
    #[default]
    Big,
    /// The small key (the bootstrap's input dimension): what the keyswitch
    /// targets; inputs under it skip the keyswitch.
    Small,
}

impl KeyChoice {
    /// The lower-case name, as plans serialise it (`big`, `small`).
    pub fn name(self) -> &'static str {
        match self {
            KeyChoice::Big => "big",
            KeyChoice::Small => "small",
        }
    }
}

impl Preset {
    /// Every preset heman offers, from the cheapest bootstrap to the most
    /// precise.
    pub const ALL: [Preset; 3] = [
        Preset::Message2Carry2,
        Preset::Message2Carry3,
        Preset::Message3Carry3,
    ];

    /// The short name used on the command line and in keyparams (`2_2`, `3_3`).
    pub fn name(self) -> &'static str {
        match self {
            Preset::Message2Carry2 => "2_2",
            Preset::Message2Carry3 => "2_3",
            Preset::Message3Carry3 => "3_3",
        }
    }

    /// tfhe-rs's name of the preset.
    pub fn tfhe_name(self) -> &'static str {
        match self {
            Preset::Message2Carry2 => "PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128",
            Preset::Message3Carry3 => "PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128",
            Preset::Message2Carry3 => "V1_4_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128",
        }
    }

    /// The preset with short name `name` (`2_2`) or tfhe-rs name
    /// (`PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128`).
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name || p.tfhe_name() == name)
            .ok_or_else(|| {
                TfheError::Parameters(format!(
                    "unknown TFHE preset '{name}' (known: {})",
                    Self::ALL.map(Preset::name).join(", ")
                ))
            })
    }

    /// The tfhe-rs parameter set.
    pub fn parameters(self) -> ClassicPBSParameters {
        match self {
            Preset::Message2Carry2 => PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128,
            Preset::Message3Carry3 => PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128,
            Preset::Message2Carry3 => V1_4_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128,
        }
    }

    /// Dimension of the LWE ciphertexts heman computes on: the "big" key
    /// (GLWE dimension x N) that bootstraps output and inputs are encrypted under.
    pub fn lwe_dimension(self) -> usize {
        let p = self.parameters();
        p.glwe_dimension.0 * p.polynomial_size.0
    }

    /// Dimension after the keyswitch, which the bootstrap takes as input.
    pub fn small_lwe_dimension(self) -> usize {
        self.parameters().lwe_dimension.0
    }

    /// Dimension of ciphertexts under `key`.
    pub fn dimension(self, key: KeyChoice) -> usize {
        match key {
            KeyChoice::Big => self.lwe_dimension(),
            KeyChoice::Small => self.small_lwe_dimension(),
        }
    }

    /// The key ciphertexts of `size` words (dimension + 1) are under.
    pub fn key_of_size(self, size: usize) -> Option<KeyChoice> {
        [KeyChoice::Big, KeyChoice::Small]
            .into_iter()
            .find(|&k| self.dimension(k) + 1 == size)
    }

    /// N: the bootstrap reads its input on 2N positions of the torus, N of
    /// them in the half a lookup table covers.
    pub fn polynomial_size(self) -> usize {
        self.parameters().polynomial_size.0
    }

    /// Values (message and carry) the preset guarantees at 2^-128 failure.
    pub fn nominal_values(self) -> u64 {
        let p = self.parameters();
        p.message_modulus.0 * p.carry_modulus.0
    }

    /// The weight 2-norm tfhe-rs allows before a bootstrap at the nominal size.
    pub fn max_noise_level(self) -> u64 {
        self.parameters().max_noise_level.get()
    }

    /// log2 of the failure probability tfhe-rs states at the nominal size.
    pub fn log2_p_fail(self) -> f64 {
        self.parameters().log2_p_fail
    }

    /// SHA-256 of every number that determines keys and ciphertexts.
    pub fn fingerprint(self) -> [u8; 32] {
        let p = self.parameters();
        let mut h = Sha256::new();
        h.update(b"heman-tfhe preset v1");
        h.update(self.tfhe_name().as_bytes());
        for v in [
            p.lwe_dimension.0,
            p.glwe_dimension.0,
            p.polynomial_size.0,
            p.pbs_base_log.0,
            p.pbs_level.0,
            p.ks_base_log.0,
            p.ks_level.0,
            p.message_modulus.0 as usize,
            p.carry_modulus.0 as usize,
        ] {
            h.update((v as u64).to_le_bytes());
        }
        for d in [p.lwe_noise_distribution, p.glwe_noise_distribution] {
            h.update(std_dev(d).to_le_bytes());
        }
        h.finalize().into()
    }
}

/// Standard deviation of a Gaussian noise distribution, as a fraction of the
/// torus (the presets heman uses are all Gaussian).
pub(crate) fn std_dev(d: DynamicDistribution<u64>) -> f64 {
    match d {
        DynamicDistribution::Gaussian(g) => g.std,
        // A TUniform with bound b has variance (2^(2b+1) + 1) / 6 in integer units.
        DynamicDistribution::TUniform(t) => {
            let bound = t.bound_log2() as f64;
            ((2f64.powf(2.0 * bound + 1.0) + 1.0) / 6.0).sqrt() / 2f64.powi(64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_fingerprints_differ() {
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()).unwrap(), p);
            assert_eq!(Preset::from_name(p.tfhe_name()).unwrap(), p);
        }
        assert!(Preset::from_name("9_9").is_err());
        assert_ne!(
            Preset::Message2Carry2.fingerprint(),
            Preset::Message3Carry3.fingerprint()
        );
        assert_eq!(Preset::Message2Carry2.lwe_dimension(), 2048);
        assert_eq!(Preset::Message3Carry3.polynomial_size(), 8192);
        let p = Preset::Message2Carry3;
        assert_eq!(p.key_of_size(4097), Some(KeyChoice::Big));
        assert_eq!(p.key_of_size(931), Some(KeyChoice::Small));
        assert_eq!(p.key_of_size(930), None);
    }
}
