//! The registry: every backend this build has, and the one place that
//! turns a name, a file header or a keyparams text into a backend. Adding a
//! backend is its folder and one line here.

use std::path::Path;

use heman_artifacts::{Container, Kind};

use crate::error::{BackendError, Result};
use crate::interface::Backend;

/// Every backend of this build: one line each.
static BACKENDS: &[&dyn Backend] = &[
    #[cfg(feature = "ckks")]
    &crate::ckks::CKKS,
    #[cfg(feature = "tfhe")]
    &crate::tfhe::TFHE,
    #[cfg(feature = "ckks")]
    &crate::simulation::CKKS_SIM,
    #[cfg(feature = "tfhe")]
    &crate::simulation::TFHE_SIM,
];

/// Every backend of this build, in the order they are listed.
pub fn backends() -> &'static [&'static dyn Backend] {
    BACKENDS
}

/// The names of every backend, for help texts and errors.
pub fn names() -> Vec<&'static str> {
    backends().iter().map(|b| b.name()).collect()
}

/// The backend named `name`.
pub fn by_name(name: &str) -> Result<&'static dyn Backend> {
    backends()
        .iter()
        .copied()
        .find(|b| b.name() == name)
        .ok_or_else(|| {
            BackendError::Compile(format!(
                "no backend '{name}' in this build (it has: {})",
                names().join(", ")
            ))
        })
}

/// The backend whose tag `kind` carries; `path` names the file in errors.
pub fn by_kind(kind: Kind, path: &Path) -> Result<&'static dyn Backend> {
    backends()
        .iter()
        .copied()
        .find(|b| b.tag() == kind.backend)
        .ok_or_else(|| {
            BackendError::Compile(format!(
                "{}: a {} of a backend this build does not have (tag {}; it has: {})",
                path.display(),
                kind.role.name(),
                kind.backend,
                names().join(", ")
            ))
        })
}

/// The backend that wrote a heman file (from its header).
pub fn for_file(bytes: &[u8], path: &Path) -> Result<&'static dyn Backend> {
    let (kind, _, _) = Container::peek(bytes, path)?;
    by_kind(kind, path)
}

/// The backend a keyparams text is for (its `backend` field).
pub fn for_keyparams(json: &[u8], path: &Path) -> Result<&'static dyn Backend> {
    let name = heman_artifacts::keyparams_backend(json, path)?;
    by_name(&name).map_err(|e| e.context(path.display()))
}

/// What a file of `kind` is, with its backend's name where this build has
/// it ("tfhe evaluation keys").
pub fn kind_name(kind: Kind) -> String {
    match backends().iter().find(|b| b.tag() == kind.backend) {
        Some(b) => format!("{} {}", b.name(), kind.role.name()),
        None => kind.name(),
    }
}

/// Checks that a file's header is of `backend` and `role`, naming both
/// backends when it is not (a TFHE key file sent for a CKKS model).
pub fn check_kind(
    bytes: &[u8],
    path: &Path,
    backend: &dyn Backend,
    role: heman_artifacts::Role,
) -> Result<()> {
    let (kind, _, _) =
        Container::peek(bytes, path).map_err(|e| BackendError::Refused(e.to_string()))?;
    if kind.backend != backend.tag() || kind.role != role {
        return Err(BackendError::Refused(format!(
            "{}: holds {}, expected {} {}",
            path.display(),
            kind_name(kind),
            backend.name(),
            role.name()
        )));
    }
    Ok(())
}

/// Checks the header of evaluation keys for a model of `backend` against
/// `expected` (format version and parameters) without reading further: a
/// refusal naming the file.
pub fn check_key_header(
    bytes: &[u8],
    path: &Path,
    backend: &dyn Backend,
    expected: heman_artifacts::Expected,
) -> Result<()> {
    check_kind(bytes, path, backend, heman_artifacts::Role::EvaluationKeys)?;
    let (kind, version, fingerprint) =
        Container::peek(bytes, path).map_err(|e| BackendError::Refused(e.to_string()))?;
    heman_artifacts::container::check_header(path, (kind, version, &fingerprint), expected)
        .map_err(|e| BackendError::Refused(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_are_unique_and_found() {
        let all = backends();
        for (i, a) in all.iter().enumerate() {
            assert!((1..=15).contains(&a.tag()), "{}", a.name());
            for b in &all[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert_ne!(a.tag(), b.tag(), "{} and {}", a.name(), b.name());
            }
            assert_eq!(by_name(a.name()).unwrap().tag(), a.tag());
        }
        let e = by_name("paillier").err().expect("refused").to_string();
        assert!(e.contains("paillier") && e.contains("it has"), "{e}");
    }
}
