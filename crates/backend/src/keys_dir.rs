//! The data owner's keys directory: the keyparams it was made from, the
//! secret key (mode 0600), the evaluation keys for the model owner and,
//! where the backend has one, the public key.

use std::path::{Path, PathBuf};

use heman_artifacts::container::write_file;

use crate::error::{BackendError, Result};
use crate::interface::{Backend, DataOwner, KeyFiles};
use crate::progress::Progress;
use crate::registry;

/// The secret key's file name.
pub const SECRET_KEY: &str = "secret.key";
/// The public key's file name.
pub const PUBLIC_KEY: &str = "public.key";
/// The evaluation keys' file name.
pub const EVAL_KEYS: &str = "eval.keys";
/// The keyparams copy's file name.
pub const KEYPARAMS: &str = "keyparams.json";

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        BackendError::Artifact(heman_artifacts::ArtifactError::Io {
            path: path.to_path_buf(),
            error: e,
        })
    })
}

/// A keys directory.
pub struct KeysDir {
    /// Where it is.
    pub path: PathBuf,
}

impl KeysDir {
    /// The directory at `path` (nothing read yet).
    pub fn at(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// `name` inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Makes keys for the keyparams file at `keyparams` and writes them,
    /// with a copy of the keyparams; answers the backend.
    pub fn generate(
        &self,
        keyparams: &Path,
        progress: &dyn Progress,
    ) -> Result<&'static dyn Backend> {
        let text = read(keyparams)?;
        let backend = registry::for_keyparams(&text, keyparams)?;
        let keys = backend.keygen(&text, keyparams, progress)?;
        std::fs::create_dir_all(&self.path).map_err(|e| {
            BackendError::Artifact(heman_artifacts::ArtifactError::Io {
                path: self.path.clone(),
                error: e,
            })
        })?;
        self.write(&keys, &text)?;
        Ok(backend)
    }

    /// Writes keys made from `keyparams`: the secret key readable by its
    /// owner only.
    pub fn write(&self, keys: &KeyFiles, keyparams: &[u8]) -> Result<()> {
        write_file(&self.file(SECRET_KEY), &keys.secret, true)?;
        write_file(&self.file(EVAL_KEYS), &keys.evaluation, false)?;
        if let Some(public) = &keys.public {
            write_file(&self.file(PUBLIC_KEY), public, false)?;
        }
        write_file(&self.file(KEYPARAMS), keyparams, false)?;
        Ok(())
    }

    /// The keyparams text the keys were made from and its backend.
    pub fn keyparams(&self) -> Result<(Vec<u8>, &'static dyn Backend)> {
        let path = self.file(KEYPARAMS);
        let text = std::fs::read(&path).map_err(|e| {
            BackendError::Artifact(heman_artifacts::ArtifactError::Invalid {
                path: self.path.clone(),
                message: format!("not a keys directory made by `heman keygen` ({KEYPARAMS}: {e})"),
            })
        })?;
        let backend = registry::for_keyparams(&text, &path)?;
        Ok((text, backend))
    }

    /// Every key file in the directory (the public key where there is one).
    pub fn files(&self) -> Result<KeyFiles> {
        let public = self.file(PUBLIC_KEY);
        Ok(KeyFiles {
            secret: zeroize::Zeroizing::new(read(&self.file(SECRET_KEY))?),
            evaluation: read(&self.file(EVAL_KEYS))?,
            public: if public.exists() {
                Some(read(&public)?)
            } else {
                None
            },
        })
    }

    /// Opens the data owner's side: keyparams and secret key.
    pub fn open(&self) -> Result<Box<dyn DataOwner>> {
        let (text, backend) = self.keyparams()?;
        let secret = zeroize::Zeroizing::new(read(&self.file(SECRET_KEY))?);
        backend.data_owner(&text, &secret, &self.file(SECRET_KEY))
    }
}
