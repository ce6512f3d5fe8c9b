//! The data owner's side: keys made from a model's keyparams (the secret
//! key stays in this object, zeroised on drop, and leaves it only as a
//! keys directory's owner-only file), encryption and decryption.

use std::path::{Path, PathBuf};

use heman_backend::{registry, Backend, DataOwner, DecryptionNoise, KeyFiles, KeysDir};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::array::{self, NamedRaw, Raw};
use crate::error;
use crate::progress::Reporter;

/// A data owner's keys for one keyparams, opened for encryption and
/// decryption.
#[pyclass(frozen, module = "heman._native")]
pub struct KeySet {
    backend: &'static dyn Backend,
    keyparams: Vec<u8>,
    files: KeyFiles,
    owner: Box<dyn DataOwner>,
}

/// Where keyparams come from in messages.
const KEYPARAMS: &str = "keyparams";

/// Makes keys for a keyparams text.
#[pyfunction]
#[pyo3(signature = (keyparams, progress=None))]
pub fn keygen(py: Python<'_>, keyparams: Vec<u8>, progress: Option<Py<PyAny>>) -> PyResult<KeySet> {
    let reporter = Reporter::new(progress);
    let result = py.detach(|| {
        let origin = Path::new(KEYPARAMS);
        let backend = registry::for_keyparams(&keyparams, origin).map_err(error::backend)?;
        let files = backend
            .keygen(&keyparams, origin, &reporter)
            .map_err(error::backend)?;
        KeySet::open(backend, keyparams, files)
    });
    reporter.outcome()?;
    result
}

/// Opens a keys directory (`heman keygen`'s or [`KeySet::save`]'s).
#[pyfunction]
pub fn open_keys(py: Python<'_>, path: PathBuf) -> PyResult<KeySet> {
    py.detach(|| {
        let dir = KeysDir::at(&path);
        let (keyparams, backend) = dir.keyparams().map_err(error::backend)?;
        let files = dir.files().map_err(error::backend)?;
        KeySet::open(backend, keyparams, files)
    })
}

impl KeySet {
    fn open(backend: &'static dyn Backend, keyparams: Vec<u8>, files: KeyFiles) -> PyResult<Self> {
        let owner = backend
            .data_owner(&keyparams, &files.secret, Path::new("secret key"))
            .map_err(error::backend)?;
        Ok(Self {
            backend,
            keyparams,
            files,
            owner,
        })
    }
}

#[pymethods]
impl KeySet {
    /// The backend's name.
    #[getter]
    fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Whether the backend's activations are exact (TFHE) rather than
    /// approximated by polynomials (CKKS).
    #[getter]
    fn exact_activations(&self) -> bool {
        self.backend.exact_activations()
    }

    /// The keyparams text the keys were made from.
    #[getter]
    fn keyparams(&self) -> String {
        String::from_utf8_lossy(&self.keyparams).into_owned()
    }

    /// The evaluation keys file: what the model owner receives.
    #[getter]
    fn eval_keys<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.files.evaluation)
    }

    /// The public key file, where the backend has one.
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.files.public.as_ref().map(|p| PyBytes::new(py, p))
    }

    /// The model's input: `(name, shape, calibrated range)`.
    #[getter]
    fn input(&self) -> (String, Vec<usize>, Option<(f64, f64)>) {
        let i = self.owner.input();
        (i.name.clone(), i.shape.clone(), i.calibrated_range)
    }

    /// The model's output names, in order.
    #[getter]
    fn output_names(&self) -> Vec<String> {
        self.owner
            .outputs()
            .iter()
            .map(|o| o.name.clone())
            .collect()
    }

    /// The most inputs one ciphertext holds (throughput packing), or None.
    #[getter]
    fn max_batch(&self) -> Option<usize> {
        self.owner.max_batch()
    }

    /// Writes the keys directory `heman keygen` writes (the secret key
    /// readable by its owner only).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| {
            std::fs::create_dir_all(&path).map_err(|e| {
                error::FileError::new_err(format!("creating {}: {e}", path.display()))
            })?;
            KeysDir::at(&path)
                .write(&self.files, &self.keyparams)
                .map_err(error::backend)
        })
    }

    /// Encrypts an array (checked against the model's input).
    fn encrypt<'py>(&self, py: Python<'py>, x: Raw<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let x = array::from_raw(&x, "input")?;
        let bytes = py.detach(|| self.encrypt_tensor(&x))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Decrypts an output file's bytes: one array per output and, when
    /// `noise` (log2 of decrypt-side noise over the estimated error) is
    /// given, the line saying what was added.
    #[pyo3(signature = (ciphertext, noise=None))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        ciphertext: &[u8],
        noise: Option<f64>,
    ) -> PyResult<(Vec<NamedRaw<'py>>, Option<String>)> {
        let noise = noise
            .map(|k| DecryptionNoise::parse(&k.to_string()))
            .transpose()
            .map_err(pyo3::exceptions::PyValueError::new_err)?;
        let origin = Path::new("ciphertext");
        let (outputs, note) = py
            .detach(|| match noise {
                None => self.owner.decrypt(ciphertext, origin).map(|o| (o, None)),
                Some(noise) => self
                    .owner
                    .decrypt_for_release(ciphertext, origin, noise)
                    .map(|(o, note)| (o, Some(note))),
            })
            .map_err(error::backend)?;
        let names = self.owner.outputs().iter().map(|o| o.name.clone());
        Ok((array::named_to_raw(py, names, &outputs), note))
    }
}

impl KeySet {
    /// Encrypts a tensor (checked against the model's input).
    pub fn encrypt_tensor(&self, x: &heman_model::Tensor) -> PyResult<Vec<u8>> {
        self.owner.encrypt(x, "input").map_err(error::backend)
    }

    /// The evaluation keys' bytes.
    pub fn evaluation(&self) -> &[u8] {
        &self.files.evaluation
    }

    /// The keyparams bytes.
    pub fn keyparams_bytes(&self) -> &[u8] {
        &self.keyparams
    }
}
