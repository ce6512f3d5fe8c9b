//! Where registered evaluation keys live: put/get bytes by id. A local
//! directory now; an S3-compatible store can implement the same trait.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A store of evaluation-key blobs addressed by their SHA-256 (hex).
pub trait KeyStore: Send + Sync + 'static {
    /// Stores `bytes` under `id` (idempotent).
    fn put(&self, id: &str, bytes: &[u8]) -> io::Result<()>;
    /// The bytes stored under `id`, `None` when there are none.
    fn get(&self, id: &str) -> io::Result<Option<Vec<u8>>>;
}

/// The id of a key blob: lowercase hex SHA-256 of its bytes.
pub fn key_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `id` looks like a key id (64 lowercase hex digits): refuses path tricks.
pub fn valid_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Keys as files `<dir>/<id>.keys`; survives restarts.
#[derive(Debug, Clone)]
pub struct DirectoryKeyStore {
    dir: PathBuf,
}

impl DirectoryKeyStore {
    /// A store in `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The file of key `id`.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.keys"))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl KeyStore for DirectoryKeyStore {
    fn put(&self, id: &str, bytes: &[u8]) -> io::Result<()> {
        if !valid_id(id) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad key id"));
        }
        let path = self.path(id);
        if path.exists() {
            return Ok(());
        }
        // Write then rename, so a crash never leaves a partial key file.
        let tmp = self.dir.join(format!(".{id}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)
    }

    fn get(&self, id: &str) -> io::Result<Option<Vec<u8>>> {
        if !valid_id(id) {
            return Ok(None);
        }
        match std::fs::read(self.path(id)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
