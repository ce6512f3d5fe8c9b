//! Vectors of LWE ciphertexts, the values a network computes on, and their
//! encryption and decryption. Computed values are under the big key
//! (dimension k*N); fresh inputs may be under either key ([`KeyChoice`]).
//!
//! A ciphertext encrypts a *torus plaintext*, a `u64` read modulo 2^64: the
//! caller chooses how integers are scaled into it (see [`crate::Encoding`]).

use rayon::prelude::*;
use tfhe::core_crypto::commons::math::random::{CompressionSeed, Seed};
use tfhe::core_crypto::prelude::{
    decrypt_lwe_ciphertext, par_encrypt_seeded_lwe_ciphertext_list, CiphertextModulus,
    LweCiphertext, LweCiphertextCount, LweSize, PlaintextList, SeededLweCiphertextList, Seeder,
    UnixSeeder,
};

use crate::error::{malformed, Result, TfheError};
use crate::keys::ClientKey;
use crate::params::{KeyChoice, Preset};

const VECTOR_MAGIC: &[u8; 4] = b"HTLV";
const SEEDED_MAGIC: &[u8; 4] = b"HTLS";
const FORMAT_VERSION: u16 = 1;

/// `count` LWE ciphertexts of `size` = dimension + 1 words each (mask then
/// body), stored contiguously.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LweVector {
    size: usize,
    data: Vec<u64>,
}

impl LweVector {
    /// `count` trivial encryptions of zero (mask and body zero).
    pub fn zeros(preset: Preset, count: usize) -> Self {
        let size = preset.lwe_dimension() + 1;
        Self {
            size,
            data: vec![0; size * count],
        }
    }

    /// Trivial encryptions (zero mask, body = plaintext): public values in
    /// ciphertext form, e.g. to check lookup tables without noise.
    pub fn trivial(preset: Preset, plaintexts: &[u64]) -> Self {
        let mut v = Self::zeros(preset, plaintexts.len());
        let size = v.size;
        for (ct, &p) in v.data.chunks_exact_mut(size).zip(plaintexts) {
            ct[size - 1] = p;
        }
        v
    }

    pub(crate) fn from_parts(size: usize, data: Vec<u64>) -> Self {
        debug_assert_eq!(data.len() % size, 0);
        Self { size, data }
    }

    /// Words per ciphertext (dimension + 1).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of ciphertexts.
    pub fn len(&self) -> usize {
        self.data.len() / self.size
    }

    /// Whether the vector holds no ciphertext.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The words (mask then body) of ciphertext `index`.
    pub fn get(&self, index: usize) -> &[u64] {
        &self.data[index * self.size..(index + 1) * self.size]
    }

    /// The ciphertexts in order, each as its words.
    pub fn iter(&self) -> std::slice::ChunksExact<'_, u64> {
        self.data.chunks_exact(self.size)
    }

    /// The ciphertexts as a parallel iterator, each as its words.
    pub fn par_iter(&self) -> rayon::slice::ChunksExact<'_, u64> {
        self.data.par_chunks_exact(self.size)
    }

    /// The ciphertexts as a parallel iterator of mutable words, to compute
    /// each in place.
    pub fn par_iter_mut(&mut self) -> rayon::slice::ChunksExactMut<'_, u64> {
        self.data.par_chunks_exact_mut(self.size)
    }

    /// The ciphertexts at `indices`, in that order (a gather).
    pub fn select(&self, indices: &[usize]) -> Self {
        let mut data = Vec::with_capacity(indices.len() * self.size);
        for &i in indices {
            data.extend_from_slice(self.get(i));
        }
        Self::from_parts(self.size, data)
    }

    /// The ciphertexts of `parts` one after another (what a weighted sum
    /// over several vectors reads); all must have one size.
    pub fn concatenate(parts: &[&LweVector]) -> Result<Self> {
        let size = parts.first().map_or(1, |p| p.size);
        if let Some(p) = parts.iter().find(|p| p.size != size) {
            return Err(TfheError::Shape(format!(
                "concatenating ciphertexts of {} and {size} words",
                p.size
            )));
        }
        let data = parts.iter().flat_map(|p| p.data.iter().copied()).collect();
        Ok(Self::from_parts(size, data))
    }

    /// Adds ciphertext `ct` to ciphertext `index` (their plaintexts add,
    /// and so do their noise variances).
    pub fn add_assign(&mut self, index: usize, ct: &[u64]) {
        let size = self.size;
        for (a, &b) in self.data[index * size..(index + 1) * size]
            .iter_mut()
            .zip(ct)
        {
            *a = a.wrapping_add(b);
        }
    }

    /// Adds `plaintext` to every ciphertext's body (the mask is unchanged, so
    /// the noise is too).
    pub fn add_plaintext(&mut self, plaintext: u64) {
        let size = self.size;
        for ct in self.data.chunks_exact_mut(size) {
            ct[size - 1] = ct[size - 1].wrapping_add(plaintext);
        }
    }

    /// `HTLV`, format version (u16), words per ciphertext (u32), ciphertext
    /// count (u64), then every word; all little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 + self.data.len() * 8);
        out.extend_from_slice(VECTOR_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.size as u32).to_le_bytes());
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        for w in &self.data {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Reads ciphertexts, which must have the preset's dimension.
    pub fn from_bytes(preset: Preset, bytes: &[u8]) -> Result<Self> {
        let (size, count, rest) = read_header(bytes, VECTOR_MAGIC, preset, "LWE vector")?;
        let words = size
            .checked_mul(count)
            .filter(|w| w.checked_mul(8) == Some(rest.len()))
            .ok_or_else(|| malformed("LWE vector", "length disagrees with its header"))?;
        Ok(Self::from_parts(size, read_words(rest, words)))
    }
}

/// Checks that `bytes` start with `magic` and format `version` (u16 LE) and
/// hold at least `header_len` bytes: the framing of heman's own TFHE files.
pub(crate) fn check_magic_and_version(
    bytes: &[u8],
    magic: &[u8; 4],
    version: u16,
    header_len: usize,
    what: &'static str,
) -> Result<()> {
    if bytes.len() < header_len || &bytes[..4] != magic {
        return Err(malformed(what, "no header"));
    }
    let found = u16::from_le_bytes([bytes[4], bytes[5]]);
    if found != version {
        return Err(malformed(
            what,
            format!("format version {found}, this heman reads {version}"),
        ));
    }
    Ok(())
}

fn read_header<'a>(
    bytes: &'a [u8],
    magic: &[u8; 4],
    preset: Preset,
    what: &'static str,
) -> Result<(usize, usize, &'a [u8])> {
    check_magic_and_version(bytes, magic, FORMAT_VERSION, 18, what)?;
    let size = u32::from_le_bytes(bytes[6..10].try_into().expect("4 bytes")) as usize;
    let count = u64::from_le_bytes(bytes[10..18].try_into().expect("8 bytes")) as usize;
    if preset.key_of_size(size).is_none() {
        return Err(TfheError::Parameters(format!(
            "{what} of dimension {}, the {} preset has {} (big key) and {} (small key)",
            size.saturating_sub(1),
            preset.name(),
            preset.lwe_dimension(),
            preset.small_lwe_dimension()
        )));
    }
    Ok((size, count, &bytes[18..]))
}

fn read_words(bytes: &[u8], count: usize) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .take(count)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// Fresh encryptions in compressed form: one public seed regenerates every
/// mask, so each ciphertext costs one word (its body) instead of k*N + 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededLweVector {
    size: usize,
    seed: u128,
    bodies: Vec<u64>,
}

impl SeededLweVector {
    /// Words per expanded ciphertext: the LWE dimension plus one (the body).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of ciphertexts.
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    /// The seed every mask is expanded from: public (it travels with the
    /// bodies), and what makes two encryptions distinct whatever their bodies.
    pub fn seed(&self) -> u128 {
        self.seed
    }

    /// Whether the vector holds no ciphertext.
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    /// Regenerates the masks (parallel).
    pub fn expand(&self) -> LweVector {
        let seeded = SeededLweCiphertextList::from_container(
            self.bodies.clone(),
            LweSize(self.size),
            CompressionSeed::from(Seed(self.seed)),
            CiphertextModulus::new_native(),
        );
        let list = seeded.par_decompress_into_lwe_ciphertext_list();
        LweVector::from_parts(self.size, list.into_container())
    }

    /// `HTLS`, format version (u16), words per ciphertext (u32), ciphertext
    /// count (u64), the seed (u128), then the bodies; all little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(34 + self.bodies.len() * 8);
        out.extend_from_slice(SEEDED_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.size as u32).to_le_bytes());
        out.extend_from_slice(&(self.bodies.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.seed.to_le_bytes());
        for w in &self.bodies {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Reads compressed ciphertexts, which must have the dimension of one of
    /// the preset's keys.
    pub fn from_bytes(preset: Preset, bytes: &[u8]) -> Result<Self> {
        let (size, count, rest) = read_header(bytes, SEEDED_MAGIC, preset, "seeded LWE vector")?;
        if rest.len() < 16 || Some(rest.len() - 16) != count.checked_mul(8) {
            return Err(malformed(
                "seeded LWE vector",
                "length disagrees with its header",
            ));
        }
        let seed = u128::from_le_bytes(rest[..16].try_into().expect("16 bytes"));
        Ok(Self {
            size,
            seed,
            bodies: read_words(&rest[16..], count),
        })
    }
}

/// Whether a slice starts like a serialised [`SeededLweVector`] (rather
/// than an expanded [`LweVector`]).
pub fn is_seeded(bytes: &[u8]) -> bool {
    bytes.starts_with(SEEDED_MAGIC)
}

impl ClientKey {
    /// Encrypts torus plaintexts under `key` with that key's fresh noise
    /// (the preset's GLWE noise for the big key, its LWE noise for the
    /// small one); the masks come from a public seed, the noise from a
    /// CSPRNG seeded by the operating system.
    pub fn encrypt(&self, plaintexts: &[u64], key: KeyChoice) -> SeededLweVector {
        let (key, noise) = match key {
            KeyChoice::Big => self.inner().encryption_key_and_noise(),
            KeyChoice::Small => (
                self.small_key(),
                self.preset().parameters().lwe_noise_distribution,
            ),
        };
        let size = key.lwe_dimension().to_lwe_size();
        let mut seeder = UnixSeeder::new(0);
        let seed = seeder.seed().0;
        let mut list = SeededLweCiphertextList::new(
            0u64,
            size,
            LweCiphertextCount(plaintexts.len()),
            CompressionSeed::from(Seed(seed)),
            CiphertextModulus::new_native(),
        );
        par_encrypt_seeded_lwe_ciphertext_list(
            &key,
            &mut list,
            &PlaintextList::from_container(plaintexts),
            noise,
            &mut seeder,
        );
        SeededLweVector {
            size: size.0,
            seed,
            bodies: list.into_container(),
        }
    }

    /// The phases (body minus mask times key) of `cts`: each plaintext plus
    /// its noise.
    pub fn decrypt(&self, cts: &LweVector) -> Result<Vec<u64>> {
        let key = self.inner().encryption_key();
        if cts.size() != key.lwe_dimension().to_lwe_size().0 {
            return Err(TfheError::Parameters(format!(
                "ciphertexts of dimension {}, the key has {}",
                cts.size() - 1,
                key.lwe_dimension().0
            )));
        }
        Ok(cts
            .iter()
            .map(|ct| {
                let ct = LweCiphertext::from_container(ct, CiphertextModulus::new_native());
                decrypt_lwe_ciphertext(&key, &ct).0
            })
            .collect())
    }
}
