//! Versioned binary serialisation of parameters, keys, ciphertexts and plaintexts.
//!
//! Layout (little-endian):
//! ```text
//! magic "HEMANCKS" (8) | version u16 | kind u8 | flags u8 (bit 0: seeded) |
//! parameter fingerprint (32) | body length u64 | body | SHA-256(everything before) (32)
//! ```
//! Residues are bit-packed at the width of their prime. The seeded form of keys and of fresh
//! secret-key ciphertexts stores the 32-byte seed of the uniform part instead of the
//! polynomial, which halves the size. Keys have no other form: a reader regenerates their
//! uniform half, so whoever made a key cannot have chosen it. Loading checks every field and returns a typed error
//! on foreign, truncated or damaged bytes, or on a parameter mismatch; it never panics.

use crate::bootstrapping::EncapsulationKeys;
use crate::error::{CkksError, Result};
use crate::keys::{GaloisKeys, PublicKey, RelinearizationKey, SecretKey, SwitchingKey};
use crate::params::{CkksParameters, SecretDistribution};
use crate::plaintext::{Ciphertext, Plaintext};
use crate::ring::Poly;
use crate::sampling::{uniform_from_seed, Seed};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Magic header of every serialised object.
pub const MAGIC: [u8; 8] = *b"HEMANCKS";
/// Format version written and read by this build.
pub const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 1 + 1 + 32 + 8;
const CHECKSUM_LEN: usize = 32;
const FLAG_SEEDED: u8 = 1;

/// The kind of a serialised object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// [`CkksParameters`].
    Parameters,
    /// [`SecretKey`].
    SecretKey,
    /// [`PublicKey`].
    PublicKey,
    /// [`RelinearizationKey`].
    RelinearizationKey,
    /// [`GaloisKeys`].
    GaloisKeys,
    /// [`Ciphertext`].
    Ciphertext,
    /// [`Plaintext`].
    Plaintext,
    /// [`EncapsulationKeys`].
    EncapsulationKeys,
}

impl ObjectKind {
    fn code(self) -> u8 {
        match self {
            Self::Parameters => 1,
            Self::SecretKey => 2,
            Self::PublicKey => 3,
            Self::RelinearizationKey => 4,
            Self::GaloisKeys => 5,
            Self::Ciphertext => 6,
            Self::Plaintext => 7,
            Self::EncapsulationKeys => 8,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Self::Parameters,
            2 => Self::SecretKey,
            3 => Self::PublicKey,
            4 => Self::RelinearizationKey,
            5 => Self::GaloisKeys,
            6 => Self::Ciphertext,
            7 => Self::Plaintext,
            8 => Self::EncapsulationKeys,
            _ => return None,
        })
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Parameters => "parameters",
            Self::SecretKey => "secret key",
            Self::PublicKey => "public key",
            Self::RelinearizationKey => "relinearisation key",
            Self::GaloisKeys => "Galois keys",
            Self::Ciphertext => "ciphertext",
            Self::Plaintext => "plaintext",
            Self::EncapsulationKeys => "encapsulation keys",
        }
    }
}

/// What the header of a serialised object says (for inspection tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Object kind.
    pub kind: ObjectKind,
    /// Format version.
    pub version: u16,
    /// Whether the object is in seeded (compressed) form.
    pub seeded: bool,
    /// Fingerprint of the parameters the object was made for.
    pub fingerprint: [u8; 32],
    /// Body length in bytes.
    pub body_len: u64,
}

/// Reads and verifies the header and checksum of a serialised object without decoding it.
pub fn inspect(bytes: &[u8]) -> Result<ObjectInfo> {
    let (info, _) = open(bytes)?;
    Ok(info)
}

fn open(bytes: &[u8]) -> Result<(ObjectInfo, &[u8])> {
    if bytes.len() < 8 {
        return if MAGIC.starts_with(bytes) {
            Err(CkksError::Truncated {
                needed: HEADER_LEN - bytes.len(),
            })
        } else {
            Err(CkksError::BadMagic)
        };
    }
    if bytes[..8] != MAGIC {
        return Err(CkksError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(CkksError::Truncated {
            needed: HEADER_LEN - bytes.len(),
        });
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != FORMAT_VERSION {
        return Err(CkksError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let kind = ObjectKind::from_code(bytes[10])
        .ok_or_else(|| CkksError::Corrupt(format!("unknown object kind {}", bytes[10])))?;
    let flags = bytes[11];
    if flags & !FLAG_SEEDED != 0 {
        return Err(CkksError::Corrupt(format!("unknown flags {flags:#x}")));
    }
    let mut fingerprint = [0u8; 32];
    fingerprint.copy_from_slice(&bytes[12..44]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[44..52]);
    let body_len = u64::from_le_bytes(len);
    let total = (HEADER_LEN as u64)
        .checked_add(body_len)
        .and_then(|t| t.checked_add(CHECKSUM_LEN as u64))
        .ok_or_else(|| CkksError::Corrupt("body length overflows".into()))?;
    if (bytes.len() as u64) < total {
        return Err(CkksError::Truncated {
            needed: usize::try_from(total - bytes.len() as u64).unwrap_or(usize::MAX),
        });
    }
    if (bytes.len() as u64) > total {
        return Err(CkksError::Corrupt(format!(
            "{} trailing bytes",
            bytes.len() as u64 - total
        )));
    }
    let body_end = HEADER_LEN + body_len as usize;
    let digest = Sha256::digest(&bytes[..body_end]);
    if digest[..] != bytes[body_end..] {
        return Err(CkksError::Corrupt("checksum mismatch".into()));
    }
    Ok((
        ObjectInfo {
            kind,
            version,
            seeded: flags & FLAG_SEEDED != 0,
            fingerprint,
            body_len,
        },
        &bytes[HEADER_LEN..body_end],
    ))
}

fn seal(kind: ObjectKind, seeded: bool, fingerprint: &[u8; 32], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + CHECKSUM_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(kind.code());
    out.push(if seeded { FLAG_SEEDED } else { 0 });
    out.extend_from_slice(fingerprint);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// Opens bytes expected to hold `kind` for `params`.
fn open_for<'a>(
    bytes: &'a [u8],
    kind: ObjectKind,
    params: &CkksParameters,
) -> Result<(ObjectInfo, Reader<'a>)> {
    let (info, body) = open(bytes)?;
    if info.kind != kind {
        return Err(CkksError::WrongKind {
            expected: kind.name(),
            found: info.kind.name().to_string(),
        });
    }
    if info.fingerprint != params.fingerprint() {
        return Err(CkksError::FingerprintMismatch);
    }
    Ok((info, Reader { buf: body, pos: 0 }))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                // The checksum matched, so a short body means the writer and the header disagree.
                CkksError::Corrupt("body shorter than its contents".into())
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }

    fn seed(&mut self) -> Result<Seed> {
        let mut s = [0u8; 32];
        s.copy_from_slice(self.take(32)?);
        Ok(s)
    }

    fn finish(&self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(CkksError::Corrupt(
                "unexpected bytes after the object".into(),
            ))
        }
    }
}

/// Appends `vals` packed at `width` bits each.
fn write_packed(out: &mut Vec<u8>, vals: &[u64], width: u32) {
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    for &v in vals {
        acc |= (v as u128) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

/// Reads `n` values of `width` bits, each required to be below `bound`.
fn read_packed(r: &mut Reader<'_>, n: usize, width: u32, bound: u64) -> Result<Vec<u64>> {
    let nbytes = (n * width as usize).div_ceil(8);
    let bytes = r.take(nbytes)?;
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let mut out = Vec::with_capacity(n);
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    let mut it = bytes.iter();
    for _ in 0..n {
        while bits < width {
            let b = it.next().copied().unwrap_or(0);
            acc |= (b as u128) << bits;
            bits += 8;
        }
        let v = (acc as u64) & mask;
        acc >>= width;
        bits -= width;
        if v >= bound {
            return Err(CkksError::Corrupt(format!("residue {v} out of range")));
        }
        out.push(v);
    }
    Ok(out)
}

fn write_poly(out: &mut Vec<u8>, params: &CkksParameters, p: &Poly, basis: &[usize]) {
    let ring = params.ring();
    for (j, &idx) in basis.iter().enumerate() {
        write_packed(out, p.limb(j), ring.modulus(idx).bits());
    }
}

fn read_poly(r: &mut Reader<'_>, params: &CkksParameters, basis: &[usize]) -> Result<Poly> {
    let ring = params.ring();
    let n = ring.n();
    let mut data = Vec::with_capacity(n * basis.len());
    for &idx in basis {
        let m = ring.modulus(idx);
        data.extend(read_packed(r, n, m.bits(), m.value())?);
    }
    Ok(Poly::from_data(n, data))
}

fn read_level(r: &mut Reader<'_>, params: &CkksParameters) -> Result<usize> {
    let level = r.u32()? as usize;
    if level > params.max_level() {
        return Err(CkksError::Corrupt(format!(
            "level {level} beyond the parameters' {}",
            params.max_level()
        )));
    }
    Ok(level)
}

fn read_scale(r: &mut Reader<'_>) -> Result<f64> {
    let s = r.f64()?;
    if !(s.is_finite() && s > 0.0) {
        return Err(CkksError::Corrupt(format!("invalid scale {s}")));
    }
    Ok(s)
}

impl CkksParameters {
    /// Serialises the parameter set (primes, scale, secret distribution).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.log_n().to_le_bytes());
        b.extend_from_slice(&self.log_scale().to_le_bytes());
        match self.secret_distribution() {
            SecretDistribution::UniformTernary => b.extend_from_slice(&0u64.to_le_bytes()),
            SecretDistribution::HammingWeight(h) => b.extend_from_slice(&(h as u64).to_le_bytes()),
        }
        for list in [self.q(), self.p()] {
            b.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for x in list {
                b.extend_from_slice(&x.to_le_bytes());
            }
        }
        // A digit size other than the default follows; older files end here.
        if self.alpha() != self.p().len() {
            b.extend_from_slice(&(self.alpha() as u32).to_le_bytes());
        }
        seal(ObjectKind::Parameters, false, &self.fingerprint(), &b)
    }

    /// Loads and re-validates a parameter set (security table included).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (info, body) = open(bytes)?;
        if info.kind != ObjectKind::Parameters {
            return Err(CkksError::WrongKind {
                expected: ObjectKind::Parameters.name(),
                found: info.kind.name().into(),
            });
        }
        let mut r = Reader { buf: body, pos: 0 };
        let log_n = r.u32()?;
        let log_scale = r.u32()?;
        let h = r.u64()?;
        let mut lists = Vec::new();
        for _ in 0..2 {
            let len = r.u32()? as usize;
            if len > 64 {
                return Err(CkksError::Corrupt(format!("{len} primes")));
            }
            let mut v = Vec::with_capacity(len);
            for _ in 0..len {
                v.push(r.u64()?);
            }
            lists.push(v);
        }
        let digit_size = if r.pos < r.buf.len() {
            Some(r.u32()? as usize)
        } else {
            None
        };
        r.finish()?;
        let secret = if h == 0 {
            SecretDistribution::UniformTernary
        } else {
            SecretDistribution::HammingWeight(
                usize::try_from(h).map_err(|_| CkksError::Corrupt("weight".into()))?,
            )
        };
        let mut params = Self::from_primes(log_n, &lists[0], &lists[1], log_scale, secret)?;
        if let Some(d) = digit_size {
            params = params.with_digit_size(d)?;
        }
        if params.fingerprint() != info.fingerprint {
            return Err(CkksError::FingerprintMismatch);
        }
        Ok(params)
    }
}

impl Ciphertext {
    /// Full serialisation.
    pub fn to_bytes(&self, params: &CkksParameters) -> Vec<u8> {
        self.write(params, false)
    }

    /// Seeded serialisation (fresh secret-key ciphertexts only): c_1 is stored as its seed.
    pub fn to_bytes_seeded(&self, params: &CkksParameters) -> Result<Vec<u8>> {
        if self.seed.is_none() || self.parts.len() != 2 {
            return Err(CkksError::NotSeeded);
        }
        Ok(self.write(params, true))
    }

    fn write(&self, params: &CkksParameters, seeded: bool) -> Vec<u8> {
        let basis = params.q_basis(self.level);
        let mut b = Vec::new();
        b.extend_from_slice(&(self.level as u32).to_le_bytes());
        b.extend_from_slice(&self.scale.to_bits().to_le_bytes());
        b.push(self.parts.len() as u8);
        match (seeded, self.seed) {
            (true, Some(seed)) => {
                write_poly(&mut b, params, &self.parts[0], &basis);
                b.extend_from_slice(&seed);
            }
            _ => {
                for p in &self.parts {
                    write_poly(&mut b, params, p, &basis);
                }
            }
        }
        seal(ObjectKind::Ciphertext, seeded, &params.fingerprint(), &b)
    }

    /// Loads a ciphertext (full or seeded) made for `params`.
    pub fn from_bytes(params: &CkksParameters, bytes: &[u8]) -> Result<Self> {
        let (info, mut r) = open_for(bytes, ObjectKind::Ciphertext, params)?;
        let level = read_level(&mut r, params)?;
        let scale = read_scale(&mut r)?;
        let parts_len = r.u8()? as usize;
        if !(2..=3).contains(&parts_len) || (info.seeded && parts_len != 2) {
            return Err(CkksError::Corrupt(format!("{parts_len} ciphertext parts")));
        }
        let basis = params.q_basis(level);
        let (parts, seed) = if info.seeded {
            let c0 = read_poly(&mut r, params, &basis)?;
            let seed = r.seed()?;
            let c1 = uniform_from_seed(params.ring(), &seed, 0, &basis);
            (vec![c0, c1], Some(seed))
        } else {
            let parts = (0..parts_len)
                .map(|_| read_poly(&mut r, params, &basis))
                .collect::<Result<Vec<_>>>()?;
            (parts, None)
        };
        r.finish()?;
        Ok(Ciphertext {
            parts,
            level,
            scale,
            seed,
        })
    }
}

impl Plaintext {
    /// Serialises the plaintext.
    pub fn to_bytes(&self, params: &CkksParameters) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(self.level() as u32).to_le_bytes());
        b.extend_from_slice(&self.scale().to_bits().to_le_bytes());
        write_poly(&mut b, params, self.poly(), &params.q_basis(self.level()));
        seal(ObjectKind::Plaintext, false, &params.fingerprint(), &b)
    }

    /// Loads a plaintext made for `params`.
    pub fn from_bytes(params: &CkksParameters, bytes: &[u8]) -> Result<Self> {
        let (_, mut r) = open_for(bytes, ObjectKind::Plaintext, params)?;
        let level = read_level(&mut r, params)?;
        let scale = read_scale(&mut r)?;
        let poly = read_poly(&mut r, params, &params.q_basis(level))?;
        r.finish()?;
        Ok(Plaintext::new(poly, level, scale))
    }
}

impl SecretKey {
    /// Serialises the secret key (2 bits per coefficient). Handle the bytes as secret.
    pub fn to_bytes(&self, params: &CkksParameters) -> Vec<u8> {
        let vals: Vec<u64> = self.coeffs.iter().map(|&c| (c + 1) as u64).collect();
        let mut b = Vec::new();
        write_packed(&mut b, &vals, 2);
        let out = seal(ObjectKind::SecretKey, false, &params.fingerprint(), &b);
        zeroize::Zeroize::zeroize(&mut b);
        out
    }

    /// Loads a secret key made for `params`.
    pub fn from_bytes(params: &CkksParameters, bytes: &[u8]) -> Result<Self> {
        let (_, mut r) = open_for(bytes, ObjectKind::SecretKey, params)?;
        let mut vals = read_packed(&mut r, params.n(), 2, 3)?;
        r.finish()?;
        let coeffs: Vec<i64> = vals.iter().map(|&v| v as i64 - 1).collect();
        zeroize::Zeroize::zeroize(&mut vals);
        Ok(SecretKey::from_coeffs(params, coeffs))
    }
}

/// Opens a key's bytes, refusing the full form (see [`CkksError::UnseededKey`]).
fn open_key<'a>(bytes: &'a [u8], kind: ObjectKind, params: &CkksParameters) -> Result<Reader<'a>> {
    let (info, r) = open_for(bytes, kind, params)?;
    if !info.seeded {
        return Err(CkksError::UnseededKey(kind.name()));
    }
    Ok(r)
}

impl PublicKey {
    /// Seeded serialisation: b, and a as its 32-byte seed. Keys have no full
    /// form: a reader regenerates a from the seed, so the key's maker cannot
    /// have chosen it.
    pub fn to_bytes(&self, params: &CkksParameters) -> Vec<u8> {
        let basis = params.q_basis(params.max_level());
        let mut b = Vec::new();
        write_poly(&mut b, params, &self.b, &basis);
        b.extend_from_slice(&self.seed);
        seal(ObjectKind::PublicKey, true, &params.fingerprint(), &b)
    }

    /// Loads a seeded public key made for `params`.
    pub fn from_bytes(params: &CkksParameters, bytes: &[u8]) -> Result<Self> {
        let mut r = open_key(bytes, ObjectKind::PublicKey, params)?;
        let basis = params.q_basis(params.max_level());
        let b = read_poly(&mut r, params, &basis)?;
        let seed = r.seed()?;
        r.finish()?;
        let a = uniform_from_seed(params.ring(), &seed, 0, &basis);
        Ok(PublicKey {
            fingerprint: params.fingerprint(),
            b,
            a,
            seed,
        })
    }
}

/// The b halves and the seed of the a halves.
fn write_switching_key(b: &mut Vec<u8>, params: &CkksParameters, key: &SwitchingKey) {
    let basis = params.full_basis();
    b.extend_from_slice(&(key.b.len() as u32).to_le_bytes());
    for part in &key.b {
        write_poly(b, params, part, &basis);
    }
    b.extend_from_slice(&key.seed);
}

fn read_switching_key(r: &mut Reader<'_>, params: &CkksParameters) -> Result<SwitchingKey> {
    let basis = params.full_basis();
    let dnum = r.u32()? as usize;
    if dnum != params.dnum() {
        return Err(CkksError::Corrupt(format!(
            "{dnum} key digits, parameters have {}",
            params.dnum()
        )));
    }
    let b = (0..dnum)
        .map(|_| read_poly(r, params, &basis))
        .collect::<Result<Vec<_>>>()?;
    let seed = r.seed()?;
    let a = (0..dnum)
        .map(|j| uniform_from_seed(params.ring(), &seed, j as u64, &basis))
        .collect();
    Ok(SwitchingKey { b, a, seed })
}

impl RelinearizationKey {
    /// Seeded serialisation (the uniform halves as one 32-byte seed), the
    /// only form keys have.
    pub fn to_bytes(&self, params: &CkksParameters) -> Vec<u8> {
        let mut b = Vec::new();
        write_switching_key(&mut b, params, &self.key);
        seal(
            ObjectKind::RelinearizationKey,
            true,
            &params.fingerprint(),
            &b,
        )
    }

    /// Loads a seeded relinearisation key made for `params`.
    pub fn from_bytes(params: &CkksParameters, bytes: &[u8]) -> Result<Self> {
        let mut r = open_key(bytes, ObjectKind::RelinearizationKey, params)?;
        let key = read_switching_key(&mut r, params)?;
        r.finish()?;
        Ok(RelinearizationKey {
            fingerprint: params.fingerprint(),
            key,
        })
    }
}

impl GaloisKeys {
    /// Seeded serialisation (the uniform halves as one 32-byte seed per
    /// key), the only form keys have.
    pub fn to_bytes(&self, params: &CkksParameters) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(self.keys.len() as u32).to_le_bytes());
        for (g, key) in &self.keys {
            b.extend_from_slice(&g.to_le_bytes());
            write_switching_key(&mut b, params, key);
        }
        seal(ObjectKind::GaloisKeys, true, &params.fingerprint(), &b)
    }

    /// Loads seeded Galois keys made for `params`.
    pub fn from_bytes(params: &CkksParameters, bytes: &[u8]) -> Result<Self> {
        let mut r = open_key(bytes, ObjectKind::GaloisKeys, params)?;
        let count = r.u32()? as usize;
        let two_n = 2 * params.n() as u64;
        let mut keys = BTreeMap::new();
        for _ in 0..count {
            let g = r.u64()?;
            if g % 2 == 0 || g >= two_n || g == 1 {
                return Err(CkksError::Corrupt(format!("invalid Galois element {g}")));
            }
            let key = read_switching_key(&mut r, params)?;
            if keys.insert(g, key).is_some() {
                return Err(CkksError::Corrupt(format!("Galois element {g} repeated")));
            }
        }
        r.finish()?;
        Ok(GaloisKeys {
            fingerprint: params.fingerprint(),
            keys,
        })
    }
}

impl EncapsulationKeys {
    /// Seeded serialisation: the ephemeral secret's weight, the key to it (over q_0 p_0)
    /// and the key back (over the whole chain).
    pub fn to_bytes(&self, params: &CkksParameters) -> Result<Vec<u8>> {
        let small = params.encapsulation(self.weight)?;
        let mut b = Vec::new();
        b.extend_from_slice(&(self.weight as u32).to_le_bytes());
        write_switching_key(&mut b, &small, &self.dense_to_sparse);
        write_switching_key(&mut b, params, &self.sparse_to_dense);
        Ok(seal(
            ObjectKind::EncapsulationKeys,
            true,
            &params.fingerprint(),
            &b,
        ))
    }

    /// Loads seeded encapsulation keys made for `params`; the weight must be a published
    /// point ([`CkksParameters::encapsulation`]).
    pub fn from_bytes(params: &CkksParameters, bytes: &[u8]) -> Result<Self> {
        let mut r = open_key(bytes, ObjectKind::EncapsulationKeys, params)?;
        let weight = r.u32()? as usize;
        if weight == 0 || weight > params.n() {
            return Err(CkksError::Corrupt(format!(
                "ephemeral secret weight {weight} outside 1..={}",
                params.n()
            )));
        }
        let small = params.encapsulation(weight)?;
        let dense_to_sparse = read_switching_key(&mut r, &small)?;
        let sparse_to_dense = read_switching_key(&mut r, params)?;
        r.finish()?;
        Ok(EncapsulationKeys {
            fingerprint: params.fingerprint(),
            weight,
            dense_to_sparse,
            sparse_to_dense,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyGenerator;
    use proptest::prelude::*;

    /// A public key in full form, with `a` = 0 (what a data owner would send
    /// to make re-randomisation add nothing to `c1`), and a relinearisation
    /// key likewise: refused by name, well-formed as they are otherwise.
    #[test]
    fn keys_with_a_chosen_uniform_half_are_refused() {
        let params = CkksParameters::new(12, &[36, 30], &[36], 30).unwrap();
        let mut keygen = KeyGenerator::new(&params).unwrap();
        let sk = keygen.gen_secret_key();
        let pk = keygen.gen_public_key(&sk).unwrap();
        let basis = params.q_basis(params.max_level());
        let mut body = Vec::new();
        write_poly(&mut body, &params, &pk.b, &basis);
        write_poly(
            &mut body,
            &params,
            &Poly::zero(params.n(), basis.len()),
            &basis,
        );
        body.extend_from_slice(&pk.seed);
        let full = seal(ObjectKind::PublicKey, false, &params.fingerprint(), &body);
        assert_eq!(
            PublicKey::from_bytes(&params, &full),
            Err(CkksError::UnseededKey("public key"))
        );
        let rlk = keygen.gen_relin_key(&sk).unwrap().to_bytes(&params);
        let (_, body) = open(&rlk).unwrap();
        let unflagged = seal(
            ObjectKind::RelinearizationKey,
            false,
            &params.fingerprint(),
            body,
        );
        assert!(matches!(
            RelinearizationKey::from_bytes(&params, &unflagged),
            Err(CkksError::UnseededKey(_))
        ));
    }

    proptest! {
        #[test]
        fn packing_roundtrip(vals in proptest::collection::vec(any::<u64>(), 0..50), width in 1u32..=64) {
            let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
            let vals: Vec<u64> = vals.iter().map(|v| v & mask).collect();
            let mut out = Vec::new();
            write_packed(&mut out, &vals, width);
            prop_assert_eq!(out.len(), (vals.len() * width as usize).div_ceil(8));
            let mut r = Reader { buf: &out, pos: 0 };
            let back = read_packed(&mut r, vals.len(), width, u64::MAX).unwrap();
            prop_assert_eq!(back, vals);
        }
    }
}
