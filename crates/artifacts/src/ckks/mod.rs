//! The CKKS backend's files: `keyparams.json` with `"backend": "ckks"`, the
//! compiled model, the data owner's secret and public keys, the evaluation
//! keys and ciphertexts, all in the shared container under [`TAG`].

mod files;
mod keyparams;

pub use files::{
    plan_fingerprint, public_key_to_bytes, read_public_key, read_secret_key, secret_key_from_bytes,
    secret_key_to_bytes, write_public_key, write_secret_key, Ciphertexts, CompiledModel,
    EvaluationKeys,
};
pub use keyparams::{KeyParams, TensorSpec};

use crate::container::{Expected, Kind, Role};

/// The CKKS backend's tag in container headers.
pub const TAG: u8 = 1;

/// The name in keyparams.json and on the command line.
pub const BACKEND: &str = "ckks";

/// The format version of each role's files.
pub fn version(role: Role) -> u16 {
    match role {
        // 3: the plan's own format version (2: linear transforms carry pool
        // window sums).
        Role::CompiledModel => heman_compiler::ckks::Plan::FORMAT_VERSION,
        // 2: a packing header (latency, or a throughput batch's size).
        Role::Ciphertexts => 2,
        _ => 1,
    }
}

/// The kind of CKKS files of `role`.
pub const fn kind(role: Role) -> Kind {
    Kind::new(TAG, role)
}

/// What a CKKS file of `role` must be, bound to `fingerprint` when given.
pub fn expected(role: Role, fingerprint: Option<&[u8; 32]>) -> Expected<'_> {
    Expected {
        kind: kind(role),
        version: version(role),
        fingerprint,
    }
}
