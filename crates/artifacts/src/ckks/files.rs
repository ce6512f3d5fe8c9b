//! The binary artifacts of the workflow.

use std::path::Path;

use heman_ckks::{
    Ciphertext, CkksParameters, EncapsulationKeys, GaloisKeys, PublicKey, RelinearizationKey,
    SecretKey,
};
use heman_compiler::ckks::Plan;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keyparams::KeyParams;
use super::{expected, kind, version};
use crate::container::{hex, Container, ContainerView, Role};
use crate::error::{invalid, ArtifactError, Result};

fn ckks_error(path: &Path) -> impl Fn(heman_ckks::CkksError) -> ArtifactError + '_ {
    move |error| ArtifactError::Ckks {
        path: path.to_path_buf(),
        error,
    }
}

/// Length-prefixed byte strings, for payloads of several parts.
fn join_parts(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum::<usize>() + 4);
    out.extend_from_slice(&(parts.len() as u32).to_le_bytes());
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn split_parts<'a>(payload: &'a [u8], path: &Path) -> Result<Vec<&'a [u8]>> {
    let bad = || invalid(path, "malformed payload");
    let count = u32::from_le_bytes(
        payload
            .get(..4)
            .ok_or_else(bad)?
            .try_into()
            .expect("4 bytes"),
    ) as usize;
    let mut rest = &payload[4..];
    let mut parts = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let len = u64::from_le_bytes(rest.get(..8).ok_or_else(bad)?.try_into().expect("8 bytes"))
            as usize;
        let part = rest
            .get(8..8usize.checked_add(len).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        parts.push(part);
        rest = &rest[8 + len..];
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(parts)
}

/// The model owner's compiled model: the plan (weights included) and the
/// keyparams it was compiled with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompiledModel {
    /// The keyparams it was compiled with.
    pub keyparams: KeyParams,
    /// The plan (weights included).
    pub plan: Plan,
}

/// SHA-256 of a plan's serialisation (hex).
pub fn plan_fingerprint(plan: &Plan) -> String {
    hex(&Sha256::digest(
        bincode::serialize(plan).expect("plan serialises"),
    ))
}

impl CompiledModel {
    /// The compiled model file, bound to `params`.
    pub fn to_bytes(&self, params: &CkksParameters) -> Vec<u8> {
        let payload = bincode::serialize(self).expect("model serialises");
        Container::new(
            kind(Role::CompiledModel),
            version(Role::CompiledModel),
            params.fingerprint(),
            payload,
        )
        .to_bytes()
    }

    /// Writes the compiled model file (mode 0600: it holds the weights).
    pub fn write(&self, path: &Path, params: &CkksParameters) -> Result<()> {
        crate::container::write_file(path, &self.to_bytes(params), true)
    }

    /// Reads a compiled model file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| crate::error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses a compiled model file read from `path`.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let container = ContainerView::expecting(bytes, path, expected(Role::CompiledModel, None))?;
        let model: Self = bincode::deserialize(container.payload)
            .map_err(|e| invalid(path, format!("malformed compiled model: {e}")))?;
        model
            .plan
            .check_wiring()
            .map_err(|e| invalid(path, format!("malformed plan: {e}")))?;
        if plan_fingerprint(&model.plan) != model.keyparams.model_fingerprint {
            return Err(invalid(
                path,
                "the plan does not match its keyparams fingerprint",
            ));
        }
        Ok(model)
    }
}

/// What the data owner sends the model owner once: no secret.
pub struct EvaluationKeys {
    /// The relinearisation key.
    pub relin: RelinearizationKey,
    /// The Galois keys of exactly the plan's rotations.
    pub galois: GaloisKeys,
    /// The data owner's public key: the model owner re-randomises every
    /// output ciphertext with a fresh encryption of zero under it.
    pub public: PublicKey,
    /// The bootstrapping circuit's encapsulation keys, when the plan
    /// bootstraps (a fourth part of the file).
    pub encapsulation: Option<EncapsulationKeys>,
}

impl EvaluationKeys {
    /// Seeded form: the uniform half of every key is a 32-byte seed.
    pub fn to_bytes(&self, params: &CkksParameters) -> Vec<u8> {
        let mut parts = vec![
            self.relin.to_bytes(params),
            self.galois.to_bytes(params),
            self.public.to_bytes(params),
        ];
        if let Some(e) = &self.encapsulation {
            parts.push(
                e.to_bytes(params)
                    .expect("encapsulation keys made for these parameters"),
            );
        }
        let payload = join_parts(&parts);
        Container::new(
            kind(Role::EvaluationKeys),
            version(Role::EvaluationKeys),
            params.fingerprint(),
            payload,
        )
        .to_bytes()
    }

    /// Parses evaluation keys read from (or received as) `path`.
    pub fn from_bytes(bytes: &[u8], path: &Path, params: &CkksParameters) -> Result<Self> {
        let container = ContainerView::expecting(
            bytes,
            path,
            expected(Role::EvaluationKeys, Some(&params.fingerprint())),
        )?;
        let parts = split_parts(container.payload, path)?;
        let encapsulation = match parts.len() {
            3 => None,
            4 => Some(parts[3]),
            n => {
                return Err(invalid(
                    path,
                    format!(
                        "evaluation keys hold {n} parts, expected 3 (relinearisation, Galois and public key) or 4 (and bootstrapping's encapsulation keys); make them again with heman keygen"
                    ),
                ))
            }
        };
        let (relin, galois, public) = (parts[0], parts[1], parts[2]);
        Ok(Self {
            relin: RelinearizationKey::from_bytes(params, relin).map_err(ckks_error(path))?,
            galois: GaloisKeys::from_bytes(params, galois).map_err(ckks_error(path))?,
            public: PublicKey::from_bytes(params, public).map_err(ckks_error(path))?,
            encapsulation: encapsulation
                .map(|e| EncapsulationKeys::from_bytes(params, e))
                .transpose()
                .map_err(ckks_error(path))?,
        })
    }

    /// Writes the evaluation keys file.
    pub fn write(&self, path: &Path, params: &CkksParameters) -> Result<()> {
        crate::container::write_file(path, &self.to_bytes(params), false)
    }

    /// Reads an evaluation keys file.
    pub fn read(path: &Path, params: &CkksParameters) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| crate::error::io(path, e))?;
        Self::from_bytes(&bytes, path, params)
    }
}

/// The data owner's secret key file (to be written with mode 0600).
pub fn secret_key_to_bytes(params: &CkksParameters, sk: &SecretKey) -> Vec<u8> {
    let mut container = Container::new(
        kind(Role::SecretKey),
        version(Role::SecretKey),
        params.fingerprint(),
        sk.to_bytes(params),
    );
    let bytes = container.to_bytes();
    // The payload is the secret key's serialisation.
    zeroize::Zeroize::zeroize(&mut container.payload);
    bytes
}

/// Parses a secret key file read from `path`.
pub fn secret_key_from_bytes(
    bytes: &[u8],
    path: &Path,
    params: &CkksParameters,
) -> Result<SecretKey> {
    let mut container = Container::from_bytes_expecting(
        bytes,
        path,
        expected(Role::SecretKey, Some(&params.fingerprint())),
    )?;
    let key = SecretKey::from_bytes(params, &container.payload).map_err(ckks_error(path));
    // The payload copy holds the secret too.
    zeroize::Zeroize::zeroize(&mut container.payload);
    key
}

/// Writes the data owner's secret key file (mode 0600).
pub fn write_secret_key(path: &Path, params: &CkksParameters, sk: &SecretKey) -> Result<()> {
    let mut bytes = secret_key_to_bytes(params, sk);
    let written = crate::container::write_file(path, &bytes, true);
    zeroize::Zeroize::zeroize(&mut bytes);
    written
}

/// Reads the data owner's secret key file.
pub fn read_secret_key(path: &Path, params: &CkksParameters) -> Result<SecretKey> {
    let bytes =
        zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| crate::error::io(path, e))?);
    secret_key_from_bytes(&bytes, path, params)
}

/// The public key file (seeded form).
pub fn public_key_to_bytes(params: &CkksParameters, pk: &PublicKey) -> Vec<u8> {
    Container::new(
        kind(Role::PublicKey),
        version(Role::PublicKey),
        params.fingerprint(),
        pk.to_bytes(params),
    )
    .to_bytes()
}

/// Writes the public key file.
pub fn write_public_key(path: &Path, params: &CkksParameters, pk: &PublicKey) -> Result<()> {
    crate::container::write_file(path, &public_key_to_bytes(params, pk), false)
}

/// Reads a public key file.
pub fn read_public_key(path: &Path, params: &CkksParameters) -> Result<PublicKey> {
    let container =
        Container::read_expecting(path, expected(Role::PublicKey, Some(&params.fingerprint())))?;
    PublicKey::from_bytes(params, &container.payload).map_err(ckks_error(path))
}

/// A ciphertexts file: a data owner's input or a model owner's output.
/// Its first part says how the ciphertexts pack their inputs: 0 for one
/// input over the slots (latency packing), else the number of inputs a
/// throughput batch holds, one per slot from slot 0.
pub struct Ciphertexts {
    /// The ciphertexts, in layout order.
    pub ciphertexts: Vec<Ciphertext>,
    /// The inputs of a throughput batch (`None`: latency packing).
    pub batch: Option<usize>,
}

impl Ciphertexts {
    /// The file's bytes, bound to `params` (fresh encryptions in seeded
    /// form).
    pub fn to_bytes(&self, params: &CkksParameters) -> Vec<u8> {
        let header = (self.batch.unwrap_or(0) as u32).to_le_bytes().to_vec();
        let cts: Vec<Vec<u8>> = self
            .ciphertexts
            .par_iter()
            .map(|ct| {
                ct.to_bytes_seeded(params)
                    .unwrap_or_else(|_| ct.to_bytes(params))
            })
            .collect();
        let parts: Vec<Vec<u8>> = std::iter::once(header).chain(cts).collect();
        Container::new(
            kind(Role::Ciphertexts),
            version(Role::Ciphertexts),
            params.fingerprint(),
            join_parts(&parts),
        )
        .to_bytes()
    }

    /// Parses a ciphertexts file read from `path`, bound to `params` (a
    /// batch larger than the parameters' slots refused).
    pub fn from_bytes(bytes: &[u8], path: &Path, params: &CkksParameters) -> Result<Self> {
        let container = ContainerView::expecting(
            bytes,
            path,
            expected(Role::Ciphertexts, Some(&params.fingerprint())),
        )?;
        let parts = split_parts(container.payload, path)?;
        let (header, cts) = parts
            .split_first()
            .ok_or_else(|| invalid(path, "no packing header"))?;
        let batch = match <[u8; 4]>::try_from(*header) {
            Ok(b) => u32::from_le_bytes(b) as usize,
            Err(_) => return Err(invalid(path, "a packing header of other than 4 bytes")),
        };
        if batch > params.slots() {
            return Err(invalid(
                path,
                format!(
                    "a batch of {batch} inputs; a ciphertext holds at most {}",
                    params.slots()
                ),
            ));
        }
        // In parallel: a throughput batch is thousands of seeded
        // ciphertexts, each expanding its c1 from its seed.
        let ciphertexts = cts
            .par_iter()
            .map(|part| Ciphertext::from_bytes(params, part).map_err(ckks_error(path)))
            .collect::<Result<_>>()?;
        Ok(Self {
            ciphertexts,
            batch: (batch > 0).then_some(batch),
        })
    }

    /// Writes the ciphertexts file.
    pub fn write(&self, path: &Path, params: &CkksParameters) -> Result<()> {
        crate::container::write_file(path, &self.to_bytes(params), false)
    }

    /// Reads a ciphertexts file.
    pub fn read(path: &Path, params: &CkksParameters) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| crate::error::io(path, e))?;
        Self::from_bytes(&bytes, path, params)
    }
}
