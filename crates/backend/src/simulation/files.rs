//! A simulation's files: keyparams naming the simulated backend, the
//! compiled model (the base backend's file inside), empty keys and
//! cleartext tensors, all in heman's container under the simulation's tag.

use std::path::Path;

use heman_artifacts::container::{hex, Container, Expected, Kind};
use heman_artifacts::Role;
use heman_model::Tensor;
use serde::{Deserialize, Serialize};

use super::Simulation;
use crate::error::{BackendError, Result};
use crate::interface::{ModelOwner, TensorInfo};

/// Every simulation file is in format 1.
const VERSION: u16 = 1;

/// The largest tensor rank a file may announce.
const MAX_RANK: usize = 16;

/// A simulation's keyparams.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyParams {
    /// `heman-keyparams`.
    pub format: String,
    /// The keyparams version.
    pub version: u32,
    /// The simulation's name.
    pub backend: String,
    /// What protects the data: nothing.
    pub security: String,
    /// The backend whose compiled model is simulated.
    pub simulates: String,
    /// Whether the encryption noise is drawn.
    pub noise: bool,
    /// The model's input.
    pub input: TensorInfo,
    /// The model's outputs, in order.
    pub outputs: Vec<TensorInfo>,
    /// The simulated model's parameter fingerprint (hex): keys and tensors
    /// carry it.
    pub params_fingerprint: String,
    /// The simulated keyparams' model fingerprint.
    pub model_fingerprint: String,
    /// The simulated backend's keyparams.
    pub base: serde_json::Value,
}

fn invalid(origin: &Path, message: impl std::fmt::Display) -> BackendError {
    BackendError::Refused(format!("{}: {message}", origin.display()))
}

impl KeyParams {
    /// The keyparams of `base` keyparams (text) of `model`, simulated.
    pub fn new(
        simulation: &Simulation,
        base: &str,
        model: &dyn ModelOwner,
        noise: bool,
    ) -> Result<Self> {
        let base: serde_json::Value = serde_json::from_str(base)
            .map_err(|e| BackendError::Internal(format!("the base keyparams: {e}")))?;
        let input = model.input();
        Ok(Self {
            format: heman_artifacts::KEYPARAMS_FORMAT.into(),
            version: heman_artifacts::KEYPARAMS_VERSION,
            backend: simulation.name.into(),
            security: "none: a cleartext simulation, nothing is encrypted".into(),
            simulates: simulation.base.name().into(),
            noise,
            input: input.clone(),
            outputs: model.outputs().to_vec(),
            params_fingerprint: hex(&model.key_fingerprint()),
            model_fingerprint: base["model_fingerprint"]
                .as_str()
                .unwrap_or_default()
                .into(),
            base,
        })
    }

    /// Parses keyparams text of `simulation` read from `origin`.
    pub fn from_json(simulation: &Simulation, bytes: &[u8], origin: &Path) -> Result<Self> {
        let kp: Self = serde_json::from_slice(bytes)
            .map_err(|e| invalid(origin, format!("not {} keyparams: {e}", simulation.name)))?;
        if kp.backend != simulation.name || kp.simulates != simulation.base.name() {
            return Err(invalid(
                origin,
                format!(
                    "keyparams of {} simulating {}, expected {}",
                    kp.backend, kp.simulates, simulation.name
                ),
            ));
        }
        Ok(kp)
    }

    /// The keyparams as JSON text.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| BackendError::Internal(format!("keyparams as JSON: {e}")))
    }

    /// The fingerprint every file of the model carries.
    pub fn fingerprint(&self, origin: &Path) -> Result<[u8; 32]> {
        let bytes: Vec<u8> = (0..self.params_fingerprint.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(self.params_fingerprint.get(i..i + 2)?, 16).ok())
            .collect();
        bytes
            .try_into()
            .map_err(|_| invalid(origin, "params_fingerprint is not 32 bytes of hex"))
    }
}

/// A simulation file of `role` bound to `fingerprint`.
pub fn container(
    simulation: &Simulation,
    role: Role,
    fingerprint: [u8; 32],
    payload: Vec<u8>,
) -> Vec<u8> {
    Container::new(
        Kind::new(simulation.tag, role),
        VERSION,
        fingerprint,
        payload,
    )
    .to_bytes()
}

/// The payload of a simulation file of `role`, checked against its kind,
/// format and `fingerprint` (when given).
pub fn payload(
    simulation: &Simulation,
    role: Role,
    bytes: &[u8],
    origin: &Path,
    fingerprint: Option<&[u8; 32]>,
) -> Result<Vec<u8>> {
    crate::registry::check_kind(bytes, origin, simulation, role)?;
    let expected = Expected {
        kind: Kind::new(simulation.tag, role),
        version: VERSION,
        fingerprint,
    };
    Container::from_bytes_expecting(bytes, origin, expected)
        .map(|c| c.payload)
        .map_err(|e| BackendError::Refused(e.to_string()))
}

/// The compiled model file: the keyparams and the base backend's file.
pub fn model_file(simulation: &Simulation, keyparams: &KeyParams, base: &[u8]) -> Result<Vec<u8>> {
    let json = keyparams.to_json()?;
    let mut payload = Vec::with_capacity(8 + json.len() + base.len());
    payload.extend_from_slice(&(json.len() as u64).to_le_bytes());
    payload.extend_from_slice(json.as_bytes());
    payload.extend_from_slice(base);
    let fingerprint = keyparams.fingerprint(Path::new("keyparams"))?;
    Ok(container(
        simulation,
        Role::CompiledModel,
        fingerprint,
        payload,
    ))
}

/// The keyparams and the base backend's file of a compiled model file.
pub fn read_model(
    simulation: &Simulation,
    bytes: &[u8],
    origin: &Path,
) -> Result<(KeyParams, Vec<u8>)> {
    let payload = payload(simulation, Role::CompiledModel, bytes, origin, None)?;
    let length = payload
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or_else(|| invalid(origin, "truncated simulation model"))?;
    let json = usize::try_from(length)
        .ok()
        .and_then(|l| payload.get(8..8usize.checked_add(l)?))
        .ok_or_else(|| invalid(origin, "keyparams longer than the file"))?;
    let keyparams = KeyParams::from_json(simulation, json, origin)?;
    Ok((keyparams, payload[8 + json.len()..].to_vec()))
}

/// A tensor as bytes: rank (u32), extents (u64 each), values (f64), little
/// endian.
pub fn tensor_bytes(tensor: &Tensor) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 8 * (tensor.shape().len() + tensor.len()));
    out.extend_from_slice(&(tensor.shape().len() as u32).to_le_bytes());
    for &extent in tensor.shape() {
        out.extend_from_slice(&(extent as u64).to_le_bytes());
    }
    for &v in tensor.data() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The tensor of [`tensor_bytes`], every length checked before anything is
/// allocated.
pub fn tensor_from_bytes(bytes: &[u8], origin: &Path) -> Result<Tensor> {
    let bad = |what: &str| invalid(origin, format!("malformed tensor: {what}"));
    let rank = bytes
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or_else(|| bad("no rank"))?;
    if rank > MAX_RANK {
        return Err(bad("rank above 16"));
    }
    let values_at = 4 + 8 * rank;
    let extents = bytes.get(4..values_at).ok_or_else(|| bad("cut extents"))?;
    let shape: Vec<usize> = extents
        .chunks_exact(8)
        .map(|c| usize::try_from(u64::from_le_bytes(c.try_into().expect("8 bytes"))))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("an extent beyond this machine"))?;
    let count = shape
        .iter()
        .try_fold(1usize, |n, &e| n.checked_mul(e))
        .ok_or_else(|| bad("too many values"))?;
    let values = &bytes[values_at..];
    if count.checked_mul(8) != Some(values.len()) {
        return Err(bad("the values do not fill the announced shape"));
    }
    let data = values
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    Ok(Tensor::new(shape, data))
}

/// Several tensors as bytes: their count (u32), then each one's length in
/// bytes (u64) and [`tensor_bytes`], little endian.
pub fn tensors_bytes(tensors: &[Tensor]) -> Vec<u8> {
    let mut out = (tensors.len() as u32).to_le_bytes().to_vec();
    for tensor in tensors {
        let bytes = tensor_bytes(tensor);
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

/// The tensors of [`tensors_bytes`]: exactly `count` of them, every length
/// checked before anything is allocated.
pub fn tensors_from_bytes(bytes: &[u8], count: usize, origin: &Path) -> Result<Vec<Tensor>> {
    let bad = |what: &str| invalid(origin, format!("malformed tensors: {what}"));
    let announced = bytes
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or_else(|| bad("no count"))?;
    if announced != count {
        return Err(bad(&format!(
            "{announced} tensors, the model has {count} outputs"
        )));
    }
    let mut rest = &bytes[4..];
    let mut tensors = Vec::with_capacity(count);
    for _ in 0..count {
        let length = rest
            .get(..8)
            .and_then(|b| usize::try_from(u64::from_le_bytes(b.try_into().expect("8 bytes"))).ok())
            .ok_or_else(|| bad("a cut length"))?;
        let body = rest
            .get(
                8..8usize
                    .checked_add(length)
                    .ok_or_else(|| bad("a length beyond the file"))?,
            )
            .ok_or_else(|| bad("a length beyond the file"))?;
        tensors.push(tensor_from_bytes(body, origin)?);
        rest = &rest[8 + length..];
    }
    if !rest.is_empty() {
        return Err(bad("bytes after the last tensor"));
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_and_bad_lengths_are_refused_before_allocating() {
        let t = Tensor::new(vec![2, 3], (0..6).map(f64::from).collect());
        let bytes = tensor_bytes(&t);
        assert_eq!(tensor_from_bytes(&bytes, Path::new("t")).unwrap(), t);
        // An extent of 2^62 values: refused by arithmetic, not by allocation.
        let mut huge = bytes.clone();
        huge[4..12].copy_from_slice(&(1u64 << 62).to_le_bytes());
        let e = tensor_from_bytes(&huge, Path::new("t"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t: malformed tensor"), "{e}");
        let mut rank = bytes.clone();
        rank[..4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(tensor_from_bytes(&rank, Path::new("t")).is_err());
        assert!(tensor_from_bytes(&bytes[..bytes.len() - 1], Path::new("t")).is_err());
    }

    #[test]
    fn several_tensors_round_trip_and_bad_counts_are_refused() {
        let a = Tensor::new(vec![1, 3], vec![1.0, 2.0, 3.0]);
        let b = Tensor::new(vec![2], vec![-1.0, 0.5]);
        let bytes = tensors_bytes(&[a.clone(), b.clone()]);
        let origin = Path::new("t");
        assert_eq!(tensors_from_bytes(&bytes, 2, origin).unwrap(), vec![a, b]);
        assert!(tensors_from_bytes(&bytes, 1, origin).is_err());
        assert!(tensors_from_bytes(&bytes[..bytes.len() - 1], 2, origin).is_err());
        let mut long = bytes.clone();
        long[4..12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(tensors_from_bytes(&long, 2, origin).is_err());
        let mut trailing = bytes;
        trailing.push(0);
        assert!(tensors_from_bytes(&trailing, 2, origin).is_err());
    }
}
