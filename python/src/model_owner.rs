//! The model owner's side: compile an ONNX model (or load a compiled one),
//! parse a data owner's evaluation keys, run inferences on ciphertexts, and
//! the cleartext references (the float model, the compiled arithmetic's
//! simulation) encrypted results are compared with.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use heman_backend::{
    registry, CompileOptions, EvaluationKeys, ModelOwner, ModelSource, Report, ServingOptions,
    TensorInfo,
};
use heman_model::io::dataset::Sample;
use heman_model::{Graph, Tensor};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::array::{self, NamedRaw, Raw};
use crate::error;
use crate::progress::Reporter;

/// A compiled model on the model owner's side.
#[pyclass(frozen, module = "heman._native")]
pub struct Model {
    owner: Box<dyn ModelOwner>,
    /// The compiled model file.
    file: Vec<u8>,
    /// What the compilation chose and measured (a model compiled in this
    /// process; a loaded file does not keep it).
    report: Option<Report>,
    /// The float model (a model compiled in this process).
    graph: Option<Graph>,
}

/// A data owner's evaluation keys, parsed once for many inferences.
#[pyclass(frozen, module = "heman._native")]
pub struct Keys {
    keys: Arc<EvaluationKeys>,
}

/// What a compilation reports, as plain values: `(summary, lines,
/// warnings, agreement)`, the agreement `(samples, same class, same class
/// with noise)`.
type ReportValues = (
    String,
    Vec<String>,
    Vec<String>,
    Option<(usize, usize, Option<usize>)>,
);

/// An inference: the output file's bytes, each stage's `(name, seconds)`,
/// and the seconds the call spent in Rust.
type InferenceValues<'py> = (Bound<'py, PyBytes>, Vec<(String, f64)>, f64);

/// A tensor's description: `(name, shape, calibrated range)`.
type TensorValues = (String, Vec<usize>, Option<(f64, f64)>);

fn tensor_values(info: &TensorInfo) -> TensorValues {
    (info.name.clone(), info.shape.clone(), info.calibrated_range)
}

/// Compiles ONNX bytes (`origin` names them) with a calibration set: a path
/// (`.npz`, `.zip`, a directory of `.npy` or one stacked `.npy`) or an
/// array's bytes and shape, samples stacked along its first axis.
#[pyfunction]
#[pyo3(signature = (model, origin, calibration, backend, options, progress=None))]
pub fn compile(
    py: Python<'_>,
    model: &[u8],
    origin: String,
    calibration: &Bound<'_, PyAny>,
    backend: &str,
    options: Vec<(String, String)>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Model> {
    let backend = registry::by_name(backend).map_err(error::backend)?;
    let mut compile_options = CompileOptions::default();
    for (name, value) in &options {
        compile_options.set(name, value).map_err(error::backend)?;
    }
    let calibration = CalibrationInput::extract(calibration)?;
    let reporter = Reporter::new(progress);
    let result = py.detach(|| {
        let graph =
            heman_model::onnx::parse_onnx(model, Path::new(&origin)).map_err(error::model)?;
        let samples = calibration.samples(&graph)?;
        let source =
            ModelSource::new(origin.clone(), graph, samples, &reporter).map_err(error::backend)?;
        let compilation = backend
            .compile(&source, &compile_options, &reporter)
            .map_err(|e| {
                error::backend(e.context(format!("compiling {origin} for {}", backend.name())))
            })?;
        let owner = backend
            .load_model(
                &compilation.model,
                Path::new(&origin),
                ServingOptions::default(),
            )
            .map_err(error::backend)?;
        Ok::<_, PyErr>(Model {
            owner,
            file: compilation.model,
            report: Some(compilation.report),
            graph: Some(source.graph),
        })
    });
    reporter.outcome()?;
    result
}

/// Loads a compiled model file's bytes (`origin` names them).
#[pyfunction]
pub fn load(py: Python<'_>, bytes: Vec<u8>, origin: String) -> PyResult<Model> {
    py.detach(|| {
        let path = Path::new(&origin);
        let backend = registry::for_file(&bytes, path).map_err(error::backend)?;
        let owner = backend
            .load_model(&bytes, path, ServingOptions::default())
            .map_err(error::backend)?;
        Ok(Model {
            owner,
            file: bytes,
            report: None,
            graph: None,
        })
    })
}

/// Where calibration samples come from.
enum CalibrationInput {
    Path(PathBuf),
    Stacked(Tensor),
}

impl CalibrationInput {
    fn extract(value: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(path) = value.extract::<PathBuf>() {
            return Ok(Self::Path(path));
        }
        let raw: Raw<'_> = value.extract()?;
        Ok(Self::Stacked(array::from_raw(&raw, "calibration")?))
    }

    /// The samples, each fitted to the model's input shape.
    fn samples(self, graph: &Graph) -> PyResult<Vec<Sample>> {
        let (origin, samples) = match self {
            Self::Path(path) => {
                let samples = heman_model::io::dataset::load_arrays(&path).map_err(error::model)?;
                (path.display().to_string(), samples)
            }
            Self::Stacked(stacked) => {
                let origin = "calibration".to_string();
                let samples = heman_model::io::dataset::split_stacked(Path::new(&origin), stacked)
                    .map_err(error::model)?;
                (origin, samples)
            }
        };
        let Some(&input) = graph.inputs.first() else {
            return Err(error::HemanError::new_err("the model has no input"));
        };
        let input = graph.value(input);
        let info = TensorInfo {
            name: input.name.clone(),
            shape: input.shape.clone(),
            calibrated_range: None,
        };
        samples
            .into_iter()
            .map(|s| {
                let what = format!("{origin} sample {}", s.name);
                let tensor = heman_backend::input::fit_input(&s.tensor, &info, &what)
                    .map_err(error::backend)?;
                Ok(Sample {
                    name: s.name,
                    tensor,
                })
            })
            .collect()
    }
}

#[pymethods]
impl Model {
    /// The backend's name.
    #[getter]
    fn backend(&self) -> &'static str {
        self.owner.backend().name()
    }

    /// keyparams.json: what the data owner makes keys from.
    #[getter]
    fn keyparams(&self) -> &str {
        self.owner.keyparams()
    }

    /// The compiled model file's bytes (the weights: the model owner's only).
    #[getter]
    fn file<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.file)
    }

    /// Writes the compiled model file, readable by its owner only.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        heman_artifacts::container::write_file(&path, &self.file, true)
            .map_err(|e| error::backend(e.into()))
    }

    /// The parameter fingerprint keys and ciphertexts carry, in hex.
    #[getter]
    fn fingerprint(&self) -> String {
        self.owner
            .key_fingerprint()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The input: `(name, shape, calibrated range)`.
    #[getter]
    fn input(&self) -> TensorValues {
        tensor_values(self.owner.input())
    }

    /// The outputs, each `(name, shape, calibrated range)`.
    #[getter]
    fn outputs(&self) -> Vec<TensorValues> {
        self.owner.outputs().iter().map(tensor_values).collect()
    }

    /// The most inputs one ciphertext holds (throughput packing), or None.
    #[getter]
    fn max_batch(&self) -> Option<usize> {
        self.owner.max_batch()
    }

    /// The stages an inference runs.
    #[getter]
    fn stage_count(&self) -> usize {
        self.owner.stage_count()
    }

    /// The compilation's report, when compiled in this process.
    #[getter]
    fn report(&self) -> Option<ReportValues> {
        self.report.as_ref().map(|r| {
            (
                r.summary.clone(),
                r.lines.clone(),
                r.warnings.clone(),
                r.agreement
                    .map(|a| (a.samples, a.same_class, a.same_class_with_noise)),
            )
        })
    }

    /// What the compiled model holds, a line each.
    fn describe(&self) -> Vec<String> {
        self.owner.describe()
    }

    /// Parses and checks evaluation keys for this model.
    fn parse_keys(&self, py: Python<'_>, bytes: &[u8]) -> PyResult<Keys> {
        py.detach(|| {
            let origin = Path::new("evaluation keys");
            let keys = self
                .owner
                .parse_keys(bytes, origin)
                .map_err(error::backend)?;
            self.owner.check_keys(&keys).map_err(error::backend)?;
            Ok(Keys {
                keys: Arc::new(keys),
            })
        })
    }

    /// Runs the model on a ciphertext file's bytes: answers the output
    /// file's bytes, each stage's `(name, seconds)` and the seconds the
    /// whole call spent in Rust. `on_stage(name, seconds)` hears of each
    /// stage as it ends.
    #[pyo3(signature = (ciphertext, keys, on_stage=None))]
    fn infer<'py>(
        &self,
        py: Python<'py>,
        ciphertext: &[u8],
        keys: &Keys,
        on_stage: Option<Py<PyAny>>,
    ) -> PyResult<InferenceValues<'py>> {
        let keys = keys.keys.clone();
        let mut failure = None;
        let (result, seconds) = py.detach(|| {
            let start = Instant::now();
            let result = self.owner.check_keys(&keys).and_then(|()| {
                self.owner
                    .infer(&keys, ciphertext, Path::new("ciphertext"), &mut |stage| {
                        if let (Some(callback), None) = (&on_stage, &failure) {
                            failure = Python::attach(|py| {
                                callback
                                    .bind(py)
                                    .call1((stage.name.clone(), stage.seconds))
                                    .err()
                            });
                        }
                    })
            });
            (result, start.elapsed().as_secs_f64())
        });
        if let Some(e) = failure {
            return Err(e);
        }
        let inference = result.map_err(error::backend)?;
        let stages = inference
            .stages
            .into_iter()
            .map(|s| (s.name, s.seconds))
            .collect();
        Ok((PyBytes::new(py, &inference.output), stages, seconds))
    }

    /// The compiled arithmetic in cleartext on an array (`noise`: a seed to
    /// draw the encryption noise with): one array per output.
    #[pyo3(signature = (x, noise=None))]
    fn simulate<'py>(
        &self,
        py: Python<'py>,
        x: Raw<'py>,
        noise: Option<u64>,
    ) -> PyResult<Vec<NamedRaw<'py>>> {
        let x = array::from_raw(&x, "input")?;
        let outputs = py.detach(|| self.per_input(&x, |x| self.owner.simulate(x, noise)))?;
        Ok(self.named(py, &outputs))
    }

    /// The float model on an array (a model compiled in this process): one
    /// array per output.
    fn evaluate<'py>(&self, py: Python<'py>, x: Raw<'py>) -> PyResult<Vec<NamedRaw<'py>>> {
        let Some(graph) = &self.graph else {
            return Err(error::HemanError::new_err(
                "a loaded model file holds no float model: evaluate the ONNX model itself (onnxruntime)",
            ));
        };
        let input = self.owner.input();
        let x = array::from_raw(&x, "input")?;
        let outputs = py.detach(|| {
            self.per_input(&x, |x| {
                let x = heman_backend::input::fit_input(x, input, "input")?;
                Ok(graph.run(&[x])?)
            })
        })?;
        Ok(self.named(py, &outputs))
    }
}

impl Model {
    /// `run` on one input, or for a throughput model on each input of a
    /// batch `[B, ...]`, the outputs stacked along the batch axis (as the
    /// data owner's decryption returns them).
    fn per_input(
        &self,
        x: &Tensor,
        run: impl Fn(&Tensor) -> heman_backend::Result<Vec<Tensor>>,
    ) -> PyResult<Vec<Tensor>> {
        let Some(max) = self.owner.max_batch() else {
            return run(x).map_err(error::backend);
        };
        let items = heman_backend::input::split_batch(x, self.owner.input(), max, "input")
            .map_err(error::backend)?;
        let outputs = items
            .iter()
            .map(&run)
            .collect::<heman_backend::Result<Vec<_>>>()
            .map_err(error::backend)?;
        Ok(heman_backend::input::stack_batch(outputs))
    }

    fn named<'py>(&self, py: Python<'py>, outputs: &[Tensor]) -> Vec<NamedRaw<'py>> {
        array::named_to_raw(
            py,
            self.owner.outputs().iter().map(|o| o.name.clone()),
            outputs,
        )
    }
}
