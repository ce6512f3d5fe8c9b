//! The binary container every heman file uses.
//!
//! ```text
//! "HEMAN" | kind u8 | version u16 LE | fingerprint [32] | length u64 LE | payload | sha256 [32]
//! ```

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{invalid, io, ArtifactError, Result};

const MAGIC: &[u8; 5] = b"HEMAN";
const HEADER: usize = 5 + 1 + 2 + 32 + 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    CompiledModel = 1,
    EvaluationKeys = 2,
    SecretKey = 3,
    PublicKey = 4,
    Ciphertexts = 5,
    TfheCompiledModel = 6,
    TfheServerKey = 7,
    TfheClientKey = 8,
    TfheCiphertexts = 9,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Kind::CompiledModel,
            2 => Kind::EvaluationKeys,
            3 => Kind::SecretKey,
            4 => Kind::PublicKey,
            5 => Kind::Ciphertexts,
            6 => Kind::TfheCompiledModel,
            7 => Kind::TfheServerKey,
            8 => Kind::TfheClientKey,
            9 => Kind::TfheCiphertexts,
            _ => return None,
        })
    }

    /// The format version this heman writes and reads for the kind. Each
    /// kind has its own, so that a change to one (a compiled plan gaining a
    /// field) leaves files of the others readable.
    pub fn version(self) -> u16 {
        match self {
            // 2: linear transforms carry pool window sums.
            Kind::CompiledModel => 2,
            _ => 1,
        }
    }

    /// What makes a file of the kind anew, for errors about unreadable ones.
    fn remedy(self) -> &'static str {
        match self {
            Kind::CompiledModel | Kind::TfheCompiledModel => {
                "compile the model again with `heman keyparams`"
            }
            Kind::EvaluationKeys
            | Kind::SecretKey
            | Kind::PublicKey
            | Kind::TfheServerKey
            | Kind::TfheClientKey => "generate the keys again with `heman keygen`",
            Kind::Ciphertexts | Kind::TfheCiphertexts => {
                "encrypt the input again with `heman encrypt`"
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::CompiledModel => "compiled model",
            Kind::EvaluationKeys => "evaluation keys",
            Kind::SecretKey => "secret key",
            Kind::PublicKey => "public key",
            Kind::Ciphertexts => "ciphertexts",
            Kind::TfheCompiledModel => "TFHE compiled model",
            Kind::TfheServerKey => "TFHE server key",
            Kind::TfheClientKey => "TFHE client key",
            Kind::TfheCiphertexts => "TFHE ciphertexts",
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
            version: kind.version(),
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
        if version != kind.version() {
            return Err(invalid(
                path,
                format!(
                    "{} in format version {version}; this heman reads version {}: {}",
                    kind.name(),
                    kind.version(),
                    kind.remedy()
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

    /// The kind of a heman file, from its header alone (`None` for a file
    /// that is not one).
    pub fn peek_kind(path: &Path) -> Result<Option<Kind>> {
        use std::io::Read;
        let mut head = [0u8; 6];
        let mut file = std::fs::File::open(path).map_err(|e| io(path, e))?;
        let n = file.read(&mut head).map_err(|e| io(path, e))?;
        Ok((n == 6 && &head[..5] == MAGIC)
            .then(|| Kind::from_byte(head[5]))
            .flatten())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(kind: Kind, version: u16) -> Vec<u8> {
        let mut container = Container::new(kind, [7; 32], b"payload".to_vec());
        container.version = version;
        container.to_bytes()
    }

    #[test]
    fn round_trip_keeps_kind_fingerprint_and_payload() {
        let path = Path::new("x.heman");
        let c = Container::from_bytes_expecting(
            &bytes_of(Kind::Ciphertexts, Kind::Ciphertexts.version()),
            path,
            Kind::Ciphertexts,
            Some(&[7; 32]),
        )
        .unwrap();
        assert_eq!(c.payload, b"payload");
        let e = Container::from_bytes_expecting(
            &bytes_of(Kind::Ciphertexts, 1),
            path,
            Kind::Ciphertexts,
            Some(&[8; 32]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("x.heman"), "{e}");
    }

    #[test]
    fn a_file_of_another_version_names_the_versions_and_the_remedy() {
        let old = Kind::CompiledModel.version() - 1;
        let e = Container::from_bytes(&bytes_of(Kind::CompiledModel, old), Path::new("m.heman"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.heman"), "{e}");
        assert!(
            e.contains(&format!(
                "compiled model in format version {old}; this heman reads version {}",
                Kind::CompiledModel.version()
            )),
            "{e}"
        );
        assert!(e.contains("heman keyparams"), "{e}");
        // Another kind's version is its own: keys of version 1 still read.
        assert!(Container::from_bytes(&bytes_of(Kind::EvaluationKeys, 1), Path::new("k")).is_ok());
    }

    #[test]
    fn damaged_and_cut_files_are_refused() {
        let mut bytes = bytes_of(Kind::PublicKey, 1);
        bytes[HEADER] ^= 1;
        let e = Container::from_bytes(&bytes, Path::new("p")).unwrap_err();
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
        bytes.truncate(30);
        let e = Container::from_bytes(&bytes, Path::new("p")).unwrap_err();
        assert!(e.to_string().contains("truncated header"), "{e}");
    }
}
