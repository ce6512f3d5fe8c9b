//! The model repository: one folder per model holding one compiled `*.heman`
//! of either backend.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use heman_artifacts::tfhe::TfheCompiledModel;
use heman_artifacts::{CompiledModel, Container, Kind};
use heman_ckks::CkksParameters;
use heman_runtime::PreparedPlan;

/// The plan as the runtime prepares it: keeps encoded weight diagonals across
/// requests.
pub type Prepared<'a> = PreparedPlan<'a>;

self_cell::self_cell!(
    /// A compiled model and its prepared plan, which borrows the plan: built
    /// once at load so that every request reuses the encoded diagonals.
    pub struct PreparedModel {
        owner: CompiledModel,
        #[covariant]
        dependent: Prepared,
    }
);

/// What a model computes with, by backend (the plans hold the weights:
/// never sent out).
pub enum Backend {
    /// CKKS: the compiled model with its prepared plan, and its parameters.
    Ckks {
        model: PreparedModel,
        params: CkksParameters,
    },
    /// TFHE: the compiled model (integer weights and lookup functions), and
    /// the parameter fingerprint its keys and ciphertexts carry.
    Tfhe {
        model: Box<TfheCompiledModel>,
        fingerprint: [u8; 32],
    },
}

/// A loaded model.
pub struct LoadedModel {
    /// The folder name, the model's name in the protocol.
    pub name: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    pub backend: Backend,
    /// The keyparams as JSON text, for data owners.
    pub keyparams_json: String,
}

impl LoadedModel {
    /// The fingerprint the model's evaluation keys and ciphertexts carry.
    pub fn key_fingerprint(&self) -> [u8; 32] {
        match &self.backend {
            Backend::Ckks { params, .. } => params.fingerprint(),
            Backend::Tfhe { fingerprint, .. } => *fingerprint,
        }
    }

    /// The kind of file its evaluation keys come in.
    pub fn key_kind(&self) -> Kind {
        match &self.backend {
            Backend::Ckks { .. } => Kind::EvaluationKeys,
            Backend::Tfhe { .. } => Kind::TfheServerKey,
        }
    }

    /// The platform the protocol reports.
    pub fn platform(&self) -> &'static str {
        match &self.backend {
            Backend::Ckks { .. } => "heman_ckks",
            Backend::Tfhe { .. } => "heman_tfhe",
        }
    }
}

/// Errors loading a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("reading model repository {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("model folder {0} holds no *.heman compiled model")]
    Empty(PathBuf),
    #[error("model folder {0} holds several *.heman files; keep one")]
    Ambiguous(PathBuf),
    #[error("{0} is a {1} file, not a compiled model")]
    NotAModel(PathBuf, &'static str),
    #[error("model repository {0} holds no model folder")]
    NoModels(PathBuf),
    #[error(transparent)]
    Artifact(#[from] heman_artifacts::ArtifactError),
}

/// All models, by name.
#[derive(Clone, Default)]
pub struct Repository {
    models: BTreeMap<String, Arc<LoadedModel>>,
}

impl Repository {
    /// Loads every sub-folder of `dir` as a model; each keeps up to
    /// `cache_bytes` of encoded weights across requests.
    pub fn load(dir: &Path, cache_bytes: usize) -> Result<Self, RepositoryError> {
        let io = |e| RepositoryError::Io(dir.to_path_buf(), e);
        let mut models = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            // Hidden folders (version control, editors) are not models.
            if !path.is_dir() || name.starts_with('.') {
                continue;
            }
            let model = load_model(&name, &path, cache_bytes)?;
            tracing::info!(model = %name, path = %model.path.display(), "loaded model");
            models.insert(name, Arc::new(model));
        }
        if models.is_empty() {
            return Err(RepositoryError::NoModels(dir.to_path_buf()));
        }
        Ok(Self { models })
    }

    /// The model named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedModel>> {
        self.models.get(name).cloned()
    }

    /// The names of all models.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }
}

fn load_model(
    name: &str,
    folder: &Path,
    cache_bytes: usize,
) -> Result<LoadedModel, RepositoryError> {
    let io = |e| RepositoryError::Io(folder.to_path_buf(), e);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "heman") {
            found.push(path);
        }
    }
    let path = match found.len() {
        0 => return Err(RepositoryError::Empty(folder.to_path_buf())),
        1 => found.remove(0),
        _ => return Err(RepositoryError::Ambiguous(folder.to_path_buf())),
    };
    let kind = Container::peek_kind(&path)?;
    let (backend, keyparams_json) = match kind {
        Some(Kind::TfheCompiledModel) => {
            let model = TfheCompiledModel::read(&path)?;
            let fingerprint = model.keyparams.fingerprint(&path)?;
            let json =
                serde_json::to_string(&model.keyparams).expect("keyparams serialise to JSON");
            (
                Backend::Tfhe {
                    model: Box::new(model),
                    fingerprint,
                },
                json,
            )
        }
        Some(other) if other != Kind::CompiledModel => {
            return Err(RepositoryError::NotAModel(path, other.name()))
        }
        // Not a heman file at all: reading it as a CKKS model says why.
        _ => {
            let compiled = CompiledModel::read(&path)?;
            let params = compiled.keyparams.ckks_parameters(&path)?;
            let json =
                serde_json::to_string(&compiled.keyparams).expect("keyparams serialise to JSON");
            let model = PreparedModel::new(compiled, |c| {
                PreparedPlan::new(&c.plan, &params, cache_bytes)
            });
            (Backend::Ckks { model, params }, json)
        }
    };
    Ok(LoadedModel {
        name: name.to_string(),
        path,
        backend,
        keyparams_json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_errors_name_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let load = || Repository::load(dir.path(), 0).err().expect("refused");
        assert!(matches!(load(), RepositoryError::NoModels(_)));
        // Hidden folders are skipped, not refused.
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        assert!(matches!(load(), RepositoryError::NoModels(_)));
        let model = dir.path().join("m");
        std::fs::create_dir(&model).unwrap();
        assert!(matches!(load(), RepositoryError::Empty(p) if p == model));
        std::fs::write(model.join("a.heman"), b"x").unwrap();
        std::fs::write(model.join("b.heman"), b"x").unwrap();
        assert!(matches!(load(), RepositoryError::Ambiguous(p) if p == model));
        std::fs::remove_file(model.join("b.heman")).unwrap();
        assert!(load().to_string().contains("a.heman"), "{}", load());
        assert!(Repository::load(&dir.path().join("absent"), 0).is_err());
    }
}
