//! The binary container every heman file uses.
//!
//! ```text
//! "HEMAN" | kind u8 | version u16 LE | fingerprint [32] | length u64 LE | payload | sha256 [32]
//! ```

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{invalid, io, ArtifactError, Result};

const MAGIC: &[u8; 5] = b"HEMAN";
/// Current format version of every kind.
pub const VERSION: u16 = 1;
const HEADER: usize = 5 + 1 + 2 + 32 + 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    CompiledModel = 1,
    EvaluationKeys = 2,
    SecretKey = 3,
    PublicKey = 4,
    Ciphertexts = 5,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Kind::CompiledModel,
            2 => Kind::EvaluationKeys,
            3 => Kind::SecretKey,
            4 => Kind::PublicKey,
            5 => Kind::Ciphertexts,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::CompiledModel => "compiled model",
            Kind::EvaluationKeys => "evaluation keys",
            Kind::SecretKey => "secret key",
            Kind::PublicKey => "public key",
            Kind::Ciphertexts => "ciphertexts",
        }
    }
}

/// A decoded container.
#[derive(Debug, Clone)]
pub struct Container {
    pub kind: Kind,
    pub version: u16,
    pub fingerprint: [u8; 32],
    pub payload: Vec<u8>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Container {
    pub fn new(kind: Kind, fingerprint: [u8; 32], payload: Vec<u8>) -> Self {
        Self {
            kind,
            version: VERSION,
            fingerprint,
            payload,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.payload.len() + 32);
        out.extend_from_slice(MAGIC);
        out.push(self.kind as u8);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&(self.payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.payload);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Decodes any container; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        if bytes.len() < 5 || &bytes[..5] != MAGIC {
            return Err(invalid(path, "not a heman file (no HEMAN header)"));
        }
        if bytes.len() < HEADER {
            return Err(invalid(path, "truncated header"));
        }
        let kind = Kind::from_byte(bytes[5])
            .ok_or_else(|| invalid(path, format!("unknown content kind {}", bytes[5])))?;
        let version = u16::from_le_bytes([bytes[6], bytes[7]]);
        if version != VERSION {
            return Err(invalid(
                path,
                format!(
                    "{} in format version {version}; this heman reads version {VERSION}",
                    kind.name()
                ),
            ));
        }
        let fingerprint: [u8; 32] = bytes[8..40].try_into().expect("32 bytes");
        let length = u64::from_le_bytes(bytes[40..48].try_into().expect("8 bytes")) as usize;
        let end = HEADER.checked_add(length).and_then(|e| e.checked_add(32));
        if end != Some(bytes.len()) {
            return Err(invalid(
                path,
                format!(
                    "truncated or padded {}: {} bytes, the header announces {}",
                    kind.name(),
                    bytes.len(),
                    HEADER as u128 + length as u128 + 32
                ),
            ));
        }
        let body = &bytes[..HEADER + length];
        if Sha256::digest(body).as_slice() != &bytes[HEADER + length..] {
            return Err(invalid(
                path,
                format!("damaged {} (checksum mismatch)", kind.name()),
            ));
        }
        Ok(Self {
            kind,
            version,
            fingerprint,
            payload: body[HEADER..].to_vec(),
        })
    }

    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Reads a container that must be of `kind` and, when given, made for the
    /// parameters with `fingerprint`.
    pub fn read_expecting(path: &Path, kind: Kind, fingerprint: Option<&[u8; 32]>) -> Result<Self> {
        Self::read(path)?.expecting(path, kind, fingerprint)
    }

    /// As [`Container::read_expecting`] on bytes read from `path` (or received).
    pub fn from_bytes_expecting(
        bytes: &[u8],
        path: &Path,
        kind: Kind,
        fingerprint: Option<&[u8; 32]>,
    ) -> Result<Self> {
        Self::from_bytes(bytes, path)?.expecting(path, kind, fingerprint)
    }

    /// This container if it is of `kind` (and bound to `fingerprint`).
    fn expecting(self, path: &Path, kind: Kind, fingerprint: Option<&[u8; 32]>) -> Result<Self> {
        let container = self;
        if container.kind != kind {
            return Err(invalid(
                path,
                format!(
                    "is a {} file, expected a {} file",
                    container.kind.name(),
                    kind.name()
                ),
            ));
        }
        if let Some(expected) = fingerprint {
            if &container.fingerprint != expected {
                return Err(ArtifactError::Mismatch {
                    path: path.to_path_buf(),
                    found: hex(&container.fingerprint[..8]),
                    expected: hex(&expected[..8]),
                });
            }
        }
        Ok(container)
    }

    /// Writes the container, readable by the owner only when `private`.
    pub fn write(&self, path: &Path, private: bool) -> Result<()> {
        write_file(path, &self.to_bytes(), private)
    }
}

/// Writes `bytes` to `path`; a private file is created with mode 0600 before
/// any byte is written.
pub fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io(path, e))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io(path, e))?;
    }
    file.write_all(bytes).map_err(|e| io(path, e))
}
