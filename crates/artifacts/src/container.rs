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

/// What a file holds, whatever the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The model owner's compiled model (weights: never leaves it).
    CompiledModel = 1,
    /// What the data owner sends the model owner once: no secret.
    EvaluationKeys = 2,
    /// The data owner's secret key.
    SecretKey = 3,
    /// The data owner's public key.
    PublicKey = 4,
    /// Encrypted tensors, inputs or outputs.
    Ciphertexts = 5,
}

impl Role {
    fn from_nibble(b: u8) -> Option<Self> {
        Some(match b {
            1 => Role::CompiledModel,
            2 => Role::EvaluationKeys,
            3 => Role::SecretKey,
            4 => Role::PublicKey,
            5 => Role::Ciphertexts,
            _ => return None,
        })
    }

    /// What the file is, in messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::CompiledModel => "compiled model",
            Role::EvaluationKeys => "evaluation keys",
            Role::SecretKey => "secret key",
            Role::PublicKey => "public key",
            Role::Ciphertexts => "ciphertexts",
        }
    }

    /// What makes a file of the role anew, for errors about unreadable ones.
    pub fn remedy(self) -> &'static str {
        match self {
            Role::CompiledModel => "compile the model again with `heman keyparams`",
            Role::EvaluationKeys | Role::SecretKey | Role::PublicKey => {
                "generate the keys again with `heman keygen`"
            }
            Role::Ciphertexts => "encrypt the input again with `heman encrypt`",
        }
    }
}

/// The kind of a file: which backend wrote it (its tag, assigned by the
/// backend registry of `heman-backend`, 1 to 15) and what it holds. One header
/// byte: `tag << 4 | role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kind {
    /// The backend's tag.
    pub backend: u8,
    /// What the file holds.
    pub role: Role,
}

impl Kind {
    /// The kind of `role` files of the backend tagged `backend` (1 to 15).
    pub const fn new(backend: u8, role: Role) -> Self {
        assert!(backend >= 1 && backend <= 15, "backend tags are 1 to 15");
        Self { backend, role }
    }

    fn byte(self) -> u8 {
        self.backend << 4 | self.role as u8
    }

    /// The kind in a header byte. Bytes below 16 are the kinds of heman's
    /// first format, before files named their backend: refused with the
    /// command that makes the file anew.
    fn from_byte(b: u8, path: &Path) -> Result<Self> {
        let role = Role::from_nibble(b & 15);
        match (b >> 4, role) {
            (0, _) => {
                // The first format's kinds 1-9: CKKS 1-5 in role order, TFHE
                // 6 model, 7 keys, 8 secret key, 9 ciphertexts.
                let old = match b {
                    1 | 6 => Some(Role::CompiledModel),
                    2 | 7 | 3 | 8 | 4 => Some(Role::EvaluationKeys),
                    5 | 9 => Some(Role::Ciphertexts),
                    _ => None,
                };
                Err(invalid(
                    path,
                    match old {
                        Some(role) => format!(
                            "written by an earlier heman (a file format before backend tags); {}",
                            role.remedy()
                        ),
                        None => format!("unknown content kind {b}"),
                    },
                ))
            }
            (backend, Some(role)) => Ok(Self { backend, role }),
            (_, None) => Err(invalid(path, format!("unknown content kind {b}"))),
        }
    }

    /// What the file is, in messages (the backend by its tag; the backend
    /// registry names it).
    pub fn name(self) -> String {
        format!("{} (backend tag {})", self.role.name(), self.backend)
    }
}

/// A decoded container.
#[derive(Debug, Clone)]
pub struct Container {
    /// Which backend wrote it and what it holds.
    pub kind: Kind,
    /// The format version of the payload (each backend and role has its own).
    pub version: u16,
    /// The parameter fingerprint keys, ciphertexts and models share.
    pub fingerprint: [u8; 32],
    /// The content.
    pub payload: Vec<u8>,
}

/// A container decoded in place: the payload borrowed from the bytes it
/// came in, so a large received file (evaluation keys: gigabytes) is never
/// copied just to be parsed.
#[derive(Debug, Clone, Copy)]
pub struct ContainerView<'a> {
    /// Which backend wrote it and what it holds.
    pub kind: Kind,
    /// The format version of the payload.
    pub version: u16,
    /// The parameter fingerprint.
    pub fingerprint: [u8; 32],
    /// The content.
    pub payload: &'a [u8],
}

impl<'a> ContainerView<'a> {
    /// Decodes any container in `bytes` (checksum checked, version not);
    /// `path` names the file in errors.
    pub fn new(bytes: &'a [u8], path: &Path) -> Result<Self> {
        let (kind, version, fingerprint) = Container::peek(bytes, path)?;
        let length = u64::from_le_bytes(bytes[40..48].try_into().expect("8 bytes"));
        let end = usize::try_from(length)
            .ok()
            .and_then(|l| HEADER.checked_add(l))
            .and_then(|e| e.checked_add(32));
        if end != Some(bytes.len()) {
            return Err(invalid(
                path,
                format!(
                    "truncated or padded {}: {} bytes, the header announces {}",
                    kind.role.name(),
                    bytes.len(),
                    HEADER as u128 + length as u128 + 32
                ),
            ));
        }
        let length = length as usize;
        let body = &bytes[..HEADER + length];
        if Sha256::digest(body).as_slice() != &bytes[HEADER + length..] {
            return Err(invalid(
                path,
                format!("damaged {} (checksum mismatch)", kind.role.name()),
            ));
        }
        Ok(Self {
            kind,
            version,
            fingerprint,
            payload: &body[HEADER..],
        })
    }

    /// Decodes a container in `bytes` that must be as `expected`.
    pub fn expecting(bytes: &'a [u8], path: &Path, expected: Expected) -> Result<Self> {
        let view = Self::new(bytes, path)?;
        check_header(path, (view.kind, view.version, &view.fingerprint), expected)?;
        Ok(view)
    }
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The kind, format version and parameter fingerprint a file must have.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// Backend and role.
    pub kind: Kind,
    /// The one format version read.
    pub version: u16,
    /// The parameters the file must be bound to (`None`: any).
    pub fingerprint: Option<&'a [u8; 32]>,
}

impl Container {
    /// A container of `kind` in format `version`.
    pub fn new(kind: Kind, version: u16, fingerprint: [u8; 32], payload: Vec<u8>) -> Self {
        Self {
            kind,
            version,
            fingerprint,
            payload,
        }
    }

    /// The file's bytes, checksum included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.payload.len() + 32);
        out.extend_from_slice(MAGIC);
        out.push(self.kind.byte());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&(self.payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.payload);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// The header alone: kind, version and fingerprint, checked for a
    /// known kind but not against the payload (cheap: for dispatch and early
    /// refusals).
    pub fn peek(bytes: &[u8], path: &Path) -> Result<(Kind, u16, [u8; 32])> {
        if bytes.len() < 5 || &bytes[..5] != MAGIC {
            return Err(invalid(path, "not a heman file (no HEMAN header)"));
        }
        if bytes.len() < HEADER {
            return Err(invalid(path, "truncated header"));
        }
        let kind = Kind::from_byte(bytes[5], path)?;
        let version = u16::from_le_bytes([bytes[6], bytes[7]]);
        let fingerprint: [u8; 32] = bytes[8..40].try_into().expect("32 bytes");
        Ok((kind, version, fingerprint))
    }

    /// Decodes any container (its version unchecked: see
    /// [`Container::from_bytes_expecting`]); `path` names the file in errors.
    /// The payload is copied: [`ContainerView`] borrows it instead.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let view = ContainerView::new(bytes, path)?;
        Ok(Self {
            kind: view.kind,
            version: view.version,
            fingerprint: view.fingerprint,
            payload: view.payload.to_vec(),
        })
    }

    /// The kind of a heman file, from its header alone (`None` for a file
    /// that is not one).
    pub fn peek_kind(path: &Path) -> Result<Option<Kind>> {
        use std::io::Read;
        let mut head = [0u8; HEADER];
        let mut file = std::fs::File::open(path).map_err(|e| io(path, e))?;
        let n = file.read(&mut head).map_err(|e| io(path, e))?;
        if n < 6 || &head[..5] != MAGIC {
            return Ok(None);
        }
        Kind::from_byte(head[5], path).map(Some)
    }

    /// Reads any container.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Reads a container that must be as `expected`.
    pub fn read_expecting(path: &Path, expected: Expected) -> Result<Self> {
        Self::read(path)?.expecting(path, expected)
    }

    /// As [`Container::read_expecting`] on bytes read from `path` (or received).
    pub fn from_bytes_expecting(bytes: &[u8], path: &Path, expected: Expected) -> Result<Self> {
        Self::from_bytes(bytes, path)?.expecting(path, expected)
    }

    /// This container if it is as `expected`: kind, then format version,
    /// then parameters.
    pub fn expecting(self, path: &Path, expected: Expected) -> Result<Self> {
        check_header(path, (self.kind, self.version, &self.fingerprint), expected)?;
        Ok(self)
    }

    /// Writes the container, readable by the owner only when `private`.
    pub fn write(&self, path: &Path, private: bool) -> Result<()> {
        write_file(path, &self.to_bytes(), private)
    }
}

/// Checks a header (kind, version, fingerprint) against `expected`.
pub fn check_header(
    path: &Path,
    (kind, version, fingerprint): (Kind, u16, &[u8; 32]),
    expected: Expected,
) -> Result<()> {
    if kind != expected.kind {
        return Err(invalid(
            path,
            if kind.backend == expected.kind.backend {
                format!(
                    "holds {}, expected {}",
                    kind.role.name(),
                    expected.kind.role.name()
                )
            } else {
                format!("holds {}, expected {}", kind.name(), expected.kind.name())
            },
        ));
    }
    if version != expected.version {
        return Err(invalid(
            path,
            format!(
                "{} in format version {version}; this heman reads version {}: {}",
                kind.role.name(),
                expected.version,
                kind.role.remedy()
            ),
        ));
    }
    if let Some(wanted) = expected.fingerprint {
        if fingerprint != wanted {
            return Err(ArtifactError::Mismatch {
                path: path.to_path_buf(),
                found: hex(&fingerprint[..8]),
                expected: hex(&wanted[..8]),
            });
        }
    }
    Ok(())
}

/// Writes `bytes` to `path`; a private file is created with mode 0600 before
/// any byte is written.
///
/// The bytes go to a new file beside `path` (created exclusively, so never
/// through a link someone planted) that is then renamed over `path`: a
/// symbolic link at `path` is replaced, not followed (a secret key is never
/// written to wherever a link points), and a reader never sees a half-written
/// file.
pub fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| invalid(path, "not a file name"))?
        .to_string_lossy();
    let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = path.with_file_name(format!(".{name}.{}.{unique}.tmp", std::process::id()));
    let written = write_new(&temporary, bytes, private)
        .and_then(|()| std::fs::rename(&temporary, path).map_err(|e| io(path, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Creates `path`, which must not exist (not even as a dangling link), and
/// writes `bytes` to it.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io(path, e))?;
    #[cfg(unix)]
    if private {
        // The mode above is masked by the umask; this is not.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io(path, e))?;
    }
    file.write_all(bytes).map_err(|e| io(path, e))?;
    file.sync_all().map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link planted where a secret key is about to be written is replaced,
    /// not followed: its target keeps its bytes, the key lands at the path
    /// with mode 0600.
    #[cfg(unix)]
    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("heman-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, b"theirs").unwrap();
        let key = dir.join("secret.key");
        let _ = std::fs::remove_file(&key);
        std::os::unix::fs::symlink(&target, &key).unwrap();
        write_file(&key, b"secret", true).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"theirs");
        assert!(!std::fs::symlink_metadata(&key).unwrap().is_symlink());
        assert_eq!(std::fs::read(&key).unwrap(), b"secret");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 2, "temporary files left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const KIND: Kind = Kind::new(1, Role::Ciphertexts);

    fn bytes_of(kind: Kind, version: u16) -> Vec<u8> {
        Container::new(kind, version, [7; 32], b"payload".to_vec()).to_bytes()
    }

    fn expected(kind: Kind, version: u16, fingerprint: Option<&[u8; 32]>) -> Expected<'_> {
        Expected {
            kind,
            version,
            fingerprint,
        }
    }

    #[test]
    fn round_trip_keeps_kind_fingerprint_and_payload() {
        let path = Path::new("x.heman");
        let c = Container::from_bytes_expecting(
            &bytes_of(KIND, 3),
            path,
            expected(KIND, 3, Some(&[7; 32])),
        )
        .unwrap();
        assert_eq!(
            (c.kind, c.version, c.payload.as_slice()),
            (KIND, 3, &b"payload"[..])
        );
        let e = Container::from_bytes_expecting(
            &bytes_of(KIND, 3),
            path,
            expected(KIND, 3, Some(&[8; 32])),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.heman") && e.contains("other parameters"),
            "{e}"
        );
    }

    #[test]
    fn another_role_or_backend_is_named() {
        let path = Path::new("k");
        let keys = Kind::new(1, Role::EvaluationKeys);
        let e = Container::from_bytes_expecting(&bytes_of(keys, 1), path, expected(KIND, 1, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("holds evaluation keys, expected ciphertexts"),
            "{e}"
        );
        let other = Kind::new(2, Role::Ciphertexts);
        let e = Container::from_bytes_expecting(&bytes_of(other, 1), path, expected(KIND, 1, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("backend tag 2") && e.contains("backend tag 1"),
            "{e}"
        );
    }

    #[test]
    fn a_file_of_another_version_names_the_versions_and_the_remedy() {
        let model = Kind::new(1, Role::CompiledModel);
        let e = Container::from_bytes_expecting(
            &bytes_of(model, 2),
            Path::new("m.heman"),
            expected(model, 3, None),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("m.heman"), "{e}");
        assert!(
            e.contains("compiled model in format version 2; this heman reads version 3"),
            "{e}"
        );
        assert!(e.contains("heman keyparams"), "{e}");
    }

    #[test]
    fn files_of_the_first_format_are_refused_with_the_remedy() {
        // The first format's kind byte 6: a TFHE compiled model.
        let mut bytes = bytes_of(KIND, 1);
        bytes[5] = 6;
        let e = Container::from_bytes(&bytes, Path::new("old.heman"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("earlier heman") && e.contains("heman keyparams"),
            "{e}"
        );
        bytes[5] = 0x1f;
        let e = Container::from_bytes(&bytes, Path::new("x")).unwrap_err();
        assert!(e.to_string().contains("unknown content kind"), "{e}");
    }

    #[test]
    fn damaged_and_cut_files_are_refused() {
        let mut bytes = bytes_of(Kind::new(1, Role::PublicKey), 1);
        bytes[HEADER] ^= 1;
        let e = Container::from_bytes(&bytes, Path::new("p")).unwrap_err();
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
        bytes.truncate(30);
        let e = Container::from_bytes(&bytes, Path::new("p")).unwrap_err();
        assert!(e.to_string().contains("truncated header"), "{e}");
    }
}
