//! The model repository: one folder per model holding one compiled `*.heman`
//! of any backend of the registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use heman_backend::{registry, ModelOwner, ServingOptions};

/// A loaded model: the backend's model owner (the plan holds the weights:
/// never sent out) under its name.
pub struct LoadedModel {
    /// The folder name, the model's name in the protocol.
    pub name: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The backend's side of the model: key checks and inference.
    pub owner: Box<dyn ModelOwner>,
}

impl LoadedModel {
    /// The fingerprint the model's evaluation keys and ciphertexts carry.
    pub fn key_fingerprint(&self) -> [u8; 32] {
        self.owner.key_fingerprint()
    }

    /// The keyparams as JSON text, for data owners.
    pub fn keyparams_json(&self) -> &str {
        self.owner.keyparams()
    }

    /// The platform the protocol reports: `heman_<backend>`.
    pub fn platform(&self) -> String {
        format!("heman_{}", self.owner.backend().name())
    }
}

/// Errors loading a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// A folder or file cannot be read.
    #[error("reading model repository {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A model folder without a compiled model.
    #[error("model folder {0} holds no *.heman compiled model")]
    Empty(PathBuf),
    /// A model folder with several.
    #[error("model folder {0} holds several *.heman files; keep one")]
    Ambiguous(PathBuf),
    /// A `.heman` file that holds something else (keys, ciphertexts).
    #[error("{0} is a {1} file, not a compiled model")]
    NotAModel(PathBuf, String),
    /// A simulation's model: nothing would be encrypted.
    #[error("{0}: a simulation ({1}) is not encrypted: it cannot be served")]
    NotEncrypted(PathBuf, &'static str),
    /// No model at all.
    #[error("model repository {0} holds no model folder")]
    NoModels(PathBuf),
    /// The backend refuses the compiled model.
    #[error(transparent)]
    Backend(#[from] heman_backend::BackendError),
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

/// Loads the one compiled `*.heman` of `folder` as the model `name`,
/// keeping up to `cache_bytes` of encoded weights across requests; refuses
/// another kind of file and a simulation's model (nothing encrypted).
pub fn load_model(
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
    let bytes = std::fs::read(&path).map_err(|e| RepositoryError::Io(path.clone(), e))?;
    let backend = registry::for_file(&bytes, &path)?;
    let (kind, _, _) = heman_artifacts::Container::peek(&bytes, &path)
        .map_err(heman_backend::BackendError::from)?;
    if kind.role != heman_artifacts::Role::CompiledModel {
        return Err(RepositoryError::NotAModel(path, registry::kind_name(kind)));
    }
    if !backend.encrypts() {
        return Err(RepositoryError::NotEncrypted(path, backend.name()));
    }
    let owner = backend.load_model(&bytes, &path, ServingOptions { cache_bytes })?;
    Ok(LoadedModel {
        name: name.to_string(),
        path,
        owner,
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
