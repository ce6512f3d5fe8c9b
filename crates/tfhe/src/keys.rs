//! Keys. The data owner's [`ClientKey`] holds the secret LWE/GLWE keys; the
//! model owner receives only a [`CompressedServerKey`] (bootstrapping and
//! keyswitching keys with their uniform halves replaced by seeds, and the
//! [`OutputPublicKey`]) and expands it into a [`ServerKey`].

use bincode::Options;
use serde::Serialize;
use tfhe::conformance::ParameterSetConformant;
use tfhe::core_crypto::commons::math::random::CompressionSeed;
use tfhe::core_crypto::prelude::{
    FourierLweBootstrapKeyOwned, LweKeyswitchKeyOwned, LweSecretKeyView, UnixSeeder,
};
use tfhe::shortint;
use tfhe::shortint::atomic_pattern::AtomicPatternServerKey;
use tfhe::shortint::ciphertext::MaxDegree;
use tfhe::shortint::client_key::atomic_pattern::AtomicPatternClientKey;
use tfhe::shortint::engine::ShortintEngine;
use tfhe::shortint::parameters::{AtomicPatternParameters, PBSParameters};
use tfhe::shortint::server_key::{ModulusSwitchConfiguration, ShortintBootstrappingKey};
use tfhe::{Unversionize, Versionize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{malformed, Result, TfheError};
use crate::lwe::{check_magic_and_version, LweVector};
use crate::params::Preset;
use crate::public_key::OutputPublicKey;

const SERVER_KEY_MAGIC: &[u8; 4] = b"HTSK";
const SERVER_KEY_VERSION: u16 = 1;

/// Largest serialised key heman reads (the 3_3 server key is about 1 GiB
/// expanded; compressed keys are far smaller).
const KEY_SIZE_LIMIT: u64 = 4 << 30;

/// tfhe-rs's versioned form of `value` (readable by later tfhe-rs versions).
pub(crate) fn serialize_versioned<T: Versionize>(value: &T) -> Vec<u8> {
    bincode::serialize(&value.versionize()).expect("tfhe-rs keys serialise")
}

pub(crate) fn deserialize_versioned<T: Unversionize>(bytes: &[u8], what: &'static str) -> Result<T>
where
    T::VersionedOwned: Serialize,
{
    let versioned: T::VersionedOwned = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(KEY_SIZE_LIMIT)
        .deserialize(bytes)
        .map_err(|e| malformed(what, e.to_string()))?;
    T::unversionize(versioned).map_err(|e| malformed(what, e.to_string()))
}

fn check_preset(found: shortint::parameters::ShortintParameterSet, preset: Preset) -> Result<()> {
    let expected = preset.parameters();
    let same = found.lwe_dimension() == expected.lwe_dimension
        && found.glwe_dimension() == expected.glwe_dimension
        && found.polynomial_size() == expected.polynomial_size
        && found.message_modulus() == expected.message_modulus
        && found.carry_modulus() == expected.carry_modulus;
    if same {
        Ok(())
    } else {
        Err(TfheError::Parameters(format!(
            "key made for other parameters than the {} preset",
            preset.name()
        )))
    }
}

fn conformance(preset: Preset) -> (AtomicPatternParameters, MaxDegree) {
    let p = preset.parameters();
    (
        AtomicPatternParameters::Standard(PBSParameters::PBS(p)),
        MaxDegree::from_msg_carry_modulus(p.message_modulus, p.carry_modulus),
    )
}

/// The data owner's secret: encrypts inputs, decrypts outputs, and makes the
/// server key. Its key material is overwritten with zeros when dropped.
pub struct ClientKey {
    preset: Preset,
    /// Always `Some` outside `drop`.
    key: Option<shortint::ClientKey>,
}

impl ClientKey {
    /// A fresh secret key, from tfhe-rs's CSPRNG (AES-CTR) seeded by the
    /// operating system (`getrandom`).
    pub fn generate(preset: Preset) -> Self {
        let mut engine = ShortintEngine::new_from_seeder(&mut UnixSeeder::new(0));
        Self {
            preset,
            key: Some(engine.new_client_key(preset.parameters())),
        }
    }

    /// The preset the key was made for.
    pub fn preset(&self) -> Preset {
        self.preset
    }

    pub(crate) fn inner(&self) -> &shortint::ClientKey {
        self.key.as_ref().expect("present until dropped")
    }

    /// The small LWE secret key (the keyswitch's target).
    pub(crate) fn small_key(&self) -> LweSecretKeyView<'_, u64> {
        match &self.inner().atomic_pattern {
            AtomicPatternClientKey::Standard(ap) => ap.small_lwe_secret_key(),
            _ => unreachable!("heman's presets use the standard atomic pattern"),
        }
    }

    /// The evaluation key for the model owner: no secret in it.
    pub fn compressed_server_key(&self) -> CompressedServerKey {
        CompressedServerKey {
            preset: self.preset,
            key: shortint::CompressedServerKey::new(self.inner()),
            output: OutputPublicKey::generate(self),
        }
    }

    /// The serialised key; the buffer is zeroised when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serialize_versioned(self.inner()))
    }

    /// Reads a key serialised by [`ClientKey::to_bytes`], refusing one of
    /// another atomic pattern than KS_PBS or made for other parameters than
    /// `preset`'s.
    pub fn from_bytes(preset: Preset, bytes: &[u8]) -> Result<Self> {
        let key: shortint::ClientKey = deserialize_versioned(bytes, "client key")?;
        let key = Self {
            preset,
            key: Some(key),
        };
        if !matches!(
            key.inner().atomic_pattern,
            AtomicPatternClientKey::Standard(_)
        ) {
            return Err(TfheError::Parameters(
                "client key of another atomic pattern than KS_PBS".into(),
            ));
        }
        check_preset(key.inner().parameters(), preset)?;
        Ok(key)
    }
}

impl Drop for ClientKey {
    fn drop(&mut self) {
        // tfhe-rs does not zeroise its keys: take them apart and do it here.
        if let Some(key) = self.key.take() {
            if let AtomicPatternClientKey::Standard(ap) = key.atomic_pattern {
                let (glwe, lwe, _, _) = ap.into_raw_parts();
                glwe.into_container().zeroize();
                lwe.into_container().zeroize();
            }
        }
    }
}

/// The server key in transport form: bootstrapping and keyswitching keys
/// whose uniform masks are regenerated from seeds, and the public key that
/// re-randomises outputs.
pub struct CompressedServerKey {
    preset: Preset,
    key: shortint::CompressedServerKey,
    output: OutputPublicKey,
}

impl CompressedServerKey {
    /// The preset the key was made for.
    pub fn preset(&self) -> Preset {
        self.preset
    }

    /// Regenerates the masks and moves the bootstrapping key to the Fourier
    /// domain (parallel).
    pub fn expand(&self) -> ServerKey {
        // Keys come from `ClientKey::compressed_server_key` or pass the
        // conformance check on reading: KS_PBS with a classic bootstrap.
        let AtomicPatternServerKey::Standard(ap) = self.key.decompress().atomic_pattern else {
            unreachable!("conformant server keys use the standard atomic pattern")
        };
        let ShortintBootstrappingKey::Classic {
            bsk,
            modulus_switch_noise_reduction_key,
        } = ap.bootstrapping_key
        else {
            unreachable!("conformant server keys hold a classic bootstrapping key")
        };
        ServerKey {
            preset: self.preset,
            keyswitch: ap.key_switching_key,
            bootstrap: bsk,
            modulus_switch: modulus_switch_noise_reduction_key,
            output: self.output.clone(),
        }
    }

    /// `HTSK`, format version, the tfhe-rs server key's length, the tfhe-rs
    /// server key (versioned), the output public key (versioned).
    pub fn to_bytes(&self) -> Vec<u8> {
        let key = serialize_versioned(&self.key);
        let mut out = Vec::with_capacity(14 + key.len());
        out.extend_from_slice(SERVER_KEY_MAGIC);
        out.extend_from_slice(&SERVER_KEY_VERSION.to_le_bytes());
        out.extend_from_slice(&(key.len() as u64).to_le_bytes());
        out.extend_from_slice(&key);
        out.extend_from_slice(&self.output.to_bytes());
        out
    }

    /// Reads a key, refusing one made for other parameters.
    pub fn from_bytes(preset: Preset, bytes: &[u8]) -> Result<Self> {
        check_magic_and_version(
            bytes,
            SERVER_KEY_MAGIC,
            SERVER_KEY_VERSION,
            14,
            "server key",
        )?;
        let length = u64::from_le_bytes(bytes[6..14].try_into().expect("8 bytes"));
        let rest = &bytes[14..];
        let split = usize::try_from(length)
            .ok()
            .filter(|&l| l <= rest.len())
            .ok_or_else(|| malformed("server key", "truncated"))?;
        let key: shortint::CompressedServerKey =
            deserialize_versioned(&rest[..split], "server key")?;
        if !key.is_conformant(&conformance(preset)) {
            return Err(TfheError::Parameters(format!(
                "server key made for other parameters than the {} preset",
                preset.name()
            )));
        }
        if !has_fresh_seeds(&key) {
            return Err(malformed(
                "server key",
                "a compression seed that no key generation makes",
            ));
        }
        let output = OutputPublicKey::from_bytes(preset, &rest[split..])?;
        Ok(Self {
            preset,
            key,
            output,
        })
    }
}

/// Whether `seed` is what tfhe-rs's key generation writes: an AES-CTR key
/// whose stream starts at the first byte. tfhe-rs takes a received table
/// index as it is, and one past the generator's buffer panics while the
/// masks are regenerated (found by the `tfhe_object` fuzz target).
pub(crate) fn is_fresh_seed(seed: &CompressionSeed) -> bool {
    matches!(seed.inner.seed, tfhe_csprng::seeders::SeedKind::Ctr(_))
        && seed.inner.first_index == tfhe_csprng::generators::aes_ctr::TableIndex::FIRST
}

/// Every compression seed of a conformant (KS_PBS, classic bootstrap)
/// compressed server key is fresh.
fn has_fresh_seeds(key: &shortint::CompressedServerKey) -> bool {
    use tfhe::shortint::atomic_pattern::compressed::CompressedAtomicPatternServerKey;
    use tfhe::shortint::server_key::{
        CompressedModulusSwitchConfiguration, ShortintCompressedBootstrappingKey,
    };
    let CompressedAtomicPatternServerKey::Standard(ap) = &key.compressed_ap_server_key else {
        return false;
    };
    let ShortintCompressedBootstrappingKey::Classic {
        bsk,
        modulus_switch_noise_reduction_key,
    } = ap.bootstrapping_key()
    else {
        return false;
    };
    let switch_seed_fresh = match modulus_switch_noise_reduction_key {
        CompressedModulusSwitchConfiguration::DriftTechniqueNoiseReduction(k) => {
            is_fresh_seed(&k.modulus_switch_zeros.compression_seed())
        }
        _ => true,
    };
    is_fresh_seed(&ap.key_switching_key().compression_seed())
        && is_fresh_seed(&bsk.compression_seed())
        && switch_seed_fresh
}

/// What the model owner computes with: keyswitching key, bootstrapping key
/// (Fourier domain) with its modulus-switch configuration, and the output
/// public key.
pub struct ServerKey {
    preset: Preset,
    pub(crate) keyswitch: LweKeyswitchKeyOwned<u64>,
    pub(crate) bootstrap: FourierLweBootstrapKeyOwned,
    pub(crate) modulus_switch: ModulusSwitchConfiguration<u64>,
    output: OutputPublicKey,
}

impl ServerKey {
    /// The preset the key was made for.
    pub fn preset(&self) -> Preset {
        self.preset
    }

    /// Bytes the expanded key occupies in memory.
    pub fn expanded_size(&self) -> u64 {
        let words = self.keyswitch.as_ref().len() + self.output.words();
        // The Fourier-domain key holds complex f64 pairs.
        let fourier = std::mem::size_of_val(self.bootstrap.as_view().data());
        (words * 8 + fourier) as u64
    }

    /// Re-randomises outputs before they leave: see
    /// [`OutputPublicKey::rerandomise`].
    pub fn rerandomise(&self, cts: &mut LweVector, flooding_std: f64) -> Result<()> {
        self.output.rerandomise(cts, flooding_std)
    }
}
