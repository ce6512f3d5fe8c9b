//! Where registered evaluation keys live: blobs put and got by id. A local
//! directory for one server (survives restarts), an S3-compatible object
//! store for several replicas behind one load balancer.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use sha2::{Digest, Sha256};

/// A boxed future: what a dyn-compatible async trait method returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a key store failed (not the client's fault: answered as a 500).
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The directory store cannot be read or written.
    #[error("key store {0}: {1}")]
    Io(PathBuf, io::Error),
    /// The object store failed.
    #[error("object store: {0}")]
    Object(#[from] object_store::Error),
    /// A key id that cannot name stored keys.
    #[error("'{0}' is not a key id (64 lowercase hex digits)")]
    BadId(String),
    /// The store's configuration is wrong.
    #[error("{0}")]
    Config(String),
}

/// A store of evaluation-key blobs addressed by their SHA-256 (hex).
/// Asynchronous, as a remote store is; callers never block a runtime thread.
pub trait KeyStore: Send + Sync + 'static {
    /// Stores `bytes` under `id` (idempotent: same id, same bytes).
    fn put(&self, id: &str, bytes: Bytes) -> BoxFuture<'_, Result<(), KeyStoreError>>;
    /// The bytes stored under `id`, `None` when there are none.
    fn get(&self, id: &str) -> BoxFuture<'_, Result<Option<Bytes>, KeyStoreError>>;
    /// Where the keys live, for logs.
    fn describe(&self) -> String;
}

/// The id of a key blob: lowercase hex SHA-256 of its bytes. Content
/// addressing makes registration idempotent and lets a client compute the
/// id of its keys without asking.
pub fn key_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `id` looks like a key id (64 lowercase hex digits): refuses path
/// tricks before an id reaches a file name or an object key.
pub fn valid_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn checked(id: &str) -> Result<(), KeyStoreError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(KeyStoreError::BadId(id.to_string()))
    }
}

/// Keys as files `<dir>/<id>.keys`.
#[derive(Debug, Clone)]
pub struct DirectoryKeyStore {
    dir: PathBuf,
}

impl DirectoryKeyStore {
    /// A store in `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, KeyStoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| KeyStoreError::Io(dir.clone(), e))?;
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
    fn put(&self, id: &str, bytes: Bytes) -> BoxFuture<'_, Result<(), KeyStoreError>> {
        let id = id.to_string();
        Box::pin(async move {
            checked(&id)?;
            let path = self.path(&id);
            let io = |e| KeyStoreError::Io(path.clone(), e);
            if tokio::fs::try_exists(&path).await.map_err(io)? {
                return Ok(());
            }
            // Write then rename, so that a crash never leaves a partial key
            // file; the temporary name is unique so that concurrent
            // registrations of the same keys cannot interleave their writes.
            let tmp = self.dir.join(format!(
                ".{id}.{}.{}.tmp",
                std::process::id(),
                temporary_suffix()
            ));
            tokio::fs::write(&tmp, &bytes).await.map_err(io)?;
            tokio::fs::rename(&tmp, &path).await.map_err(io)
        })
    }

    fn get(&self, id: &str) -> BoxFuture<'_, Result<Option<Bytes>, KeyStoreError>> {
        let id = id.to_string();
        Box::pin(async move {
            checked(&id)?;
            let path = self.path(&id);
            match tokio::fs::read(&path).await {
                Ok(b) => Ok(Some(Bytes::from(b))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(KeyStoreError::Io(path, e)),
            }
        })
    }

    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }
}

/// A per-call distinct number for temporary file names.
fn temporary_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Keys as objects `<prefix>/<id>.keys` in any [`ObjectStore`] (S3 and
/// S3-compatible servers in practice).
pub struct ObjectKeyStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    description: String,
}

impl ObjectKeyStore {
    /// A store over `store`, keys under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, description: String) -> Self {
        Self {
            store,
            prefix: ObjectPath::from(prefix),
            description,
        }
    }

    fn object(&self, id: &str) -> ObjectPath {
        self.prefix.child(format!("{id}.keys"))
    }
}

impl KeyStore for ObjectKeyStore {
    fn put(&self, id: &str, bytes: Bytes) -> BoxFuture<'_, Result<(), KeyStoreError>> {
        let id = id.to_string();
        Box::pin(async move {
            checked(&id)?;
            // A PUT is atomic in S3: readers see all of an object or none.
            // Same id, same bytes: a replica racing us writes the same object.
            self.store
                .put(&self.object(&id), PutPayload::from_bytes(bytes))
                .await?;
            Ok(())
        })
    }

    fn get(&self, id: &str) -> BoxFuture<'_, Result<Option<Bytes>, KeyStoreError>> {
        let id = id.to_string();
        Box::pin(async move {
            checked(&id)?;
            match self.store.get(&self.object(&id)).await {
                Ok(r) => Ok(Some(r.bytes().await?)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// Where `heman serve` keeps keys: a directory, or `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyStoreLocation {
    /// A local directory.
    Directory(PathBuf),
    /// An S3 bucket and prefix.
    S3(S3Location),
}

/// An S3 bucket and prefix, and how to reach it. Credentials come from the
/// standard `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...), never
/// from the command line, where other users could read them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The key prefix inside it (models' keys under `<prefix>/<id>.keys`).
    pub prefix: String,
    /// An S3-compatible server's URL (default: AWS, or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// The region (default: `AWS_REGION`).
    pub region: Option<String>,
    /// Plain `http://` endpoints (a local S3-compatible server).
    pub allow_http: bool,
    /// Credentials given in code (tests, embedding programs); when `None`,
    /// the environment's.
    pub credentials: Option<(String, String)>,
}

impl KeyStoreLocation {
    /// `s3://bucket[/prefix]` or a directory path.
    pub fn parse(text: &str) -> Result<Self, KeyStoreError> {
        let Some(rest) = text.strip_prefix("s3://") else {
            return Ok(Self::Directory(PathBuf::from(text)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(KeyStoreError::Config(format!(
                "'{text}': no bucket name (s3://BUCKET/PREFIX)"
            )));
        }
        Ok(Self::S3(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            ..Default::default()
        }))
    }

    /// Opens (and for a directory, creates) the store.
    pub fn open(&self) -> Result<Arc<dyn KeyStore>, KeyStoreError> {
        match self {
            Self::Directory(dir) => Ok(Arc::new(DirectoryKeyStore::new(dir)?)),
            Self::S3(s3) => {
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(&s3.bucket);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(region) = &s3.region {
                    builder = builder.with_region(region);
                }
                if s3.allow_http {
                    builder = builder.with_allow_http(true);
                }
                if let Some((id, secret)) = &s3.credentials {
                    builder = builder
                        .with_access_key_id(id)
                        .with_secret_access_key(secret);
                }
                let store = builder.build()?;
                let description = format!(
                    "s3://{}/{}{}",
                    s3.bucket,
                    s3.prefix,
                    s3.endpoint
                        .as_ref()
                        .map(|e| format!(" at {e}"))
                        .unwrap_or_default()
                );
                Ok(Arc::new(ObjectKeyStore::new(
                    Arc::new(store),
                    &s3.prefix,
                    description,
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            KeyStoreLocation::parse("keys/").unwrap(),
            KeyStoreLocation::Directory("keys/".into())
        );
        let KeyStoreLocation::S3(s3) = KeyStoreLocation::parse("s3://b/some/prefix/").unwrap()
        else {
            panic!("not s3")
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("b", "some/prefix")
        );
        let KeyStoreLocation::S3(s3) = KeyStoreLocation::parse("s3://b").unwrap() else {
            panic!("not s3")
        };
        assert_eq!(s3.prefix, "");
        assert!(KeyStoreLocation::parse("s3:///x").is_err());
    }

    #[tokio::test]
    async fn directory_store_round_trip_and_refuses_bad_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirectoryKeyStore::new(dir.path()).unwrap();
        let blob = Bytes::from_static(b"keys");
        let id = key_id(&blob);
        assert_eq!(store.get(&id).await.unwrap(), None);
        store.put(&id, blob.clone()).await.unwrap();
        store.put(&id, blob.clone()).await.unwrap();
        assert_eq!(store.get(&id).await.unwrap(), Some(blob.clone()));
        assert!(store.put("../x", blob).await.is_err());
        assert!(store.get("../../etc/passwd").await.is_err());
        // Only the key file is left: no temporaries.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
