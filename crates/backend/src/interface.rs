//! What each party does, whatever the backend: the model owner compiles,
//! checks evaluation keys and infers; the data owner makes keys, encrypts
//! and decrypts. Bytes in, bytes out: every file crosses this seam in the
//! form it is written in, so the CLI, the server and any other caller get
//! the same checks and the same behaviour.

use std::any::Any;
use std::path::Path;

use heman_model::io::dataset::Sample;
use heman_model::{CalibrationRanges, Graph, Tensor};
use zeroize::Zeroizing;

use crate::error::Result;
use crate::progress::Progress;

/// What the model owner asks of a compilation. Each backend reads the
/// options that apply to it and refuses the others by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompileOptions {
    /// CKKS: size the output flooding for this many bits of statistical
    /// security (Li-Micciancio-Schultz-Sorrell 2022) instead of at the
    /// measured output noise.
    pub flooding_security: Option<u32>,
    /// CKKS: flood outputs at the tail bound drawn from the dry runs rather
    /// than at the largest noise they showed (docs/SECURITY.md).
    pub flooding_tail_bound: bool,
    /// Classical security level in bits (128, 192 or 256; `None`: 128).
    /// CKKS chooses its modulus under that level's table; TFHE's presets
    /// are 128-bit only.
    pub security: Option<u32>,
    /// TFHE: the tfhe-rs parameter preset (`2_2`, `2_3`, `3_3`).
    pub preset: Option<String>,
    /// TFHE: only bit widths whose every read is right with probability
    /// 1 - 2^-40 (the encrypted result is then the quantised model's).
    pub exact: bool,
    /// TFHE: the calibrated accumulator windows' margin, a share of each
    /// window's calibrated range added on both sides (`None`: chosen on
    /// held-out calibration samples).
    pub accumulator_margin: Option<f64>,
    /// CKKS: when the plan bootstraps: `auto` (only when no modulus chain
    /// holds its depth; `None` means this), `always` or `never`.
    pub bootstrapping: Option<String>,
    /// CKKS: the share of each activation input's calibrated width its
    /// polynomial's interval extends past on both sides (`None`: 0.1).
    pub activation_margin: Option<f64>,
    /// CKKS: `latency` (one input spread over the slots; `None` means this)
    /// or `throughput` (one input per slot, a batch per ciphertext).
    pub packing: Option<String>,
    /// CKKS throughput packing: the inputs one ciphertext holds at least
    /// (`None`: the slots of the ring the model's depth needs).
    pub batch: Option<usize>,
    /// Simulations: draw the encryption noise at every inference (CKKS:
    /// the output flooding's Gaussian; TFHE: every read's noise, misreads
    /// included).
    pub noise: bool,
}

impl CompileOptions {
    /// Sets one option from its name and value as text (`preset=2_3`,
    /// `exact=true`, `flooding_security=40`): for suites and bindings.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let bad =
            |what: &str| crate::BackendError::Compile(format!("option {name}={value}: {what}"));
        match name {
            "flooding_security" => {
                self.flooding_security = Some(value.parse().map_err(|_| bad("not a bit count"))?)
            }
            "flooding_tail_bound" => {
                self.flooding_tail_bound = value.parse().map_err(|_| bad("not true or false"))?
            }
            "security" => self.security = Some(value.parse().map_err(|_| bad("not a bit count"))?),
            "preset" => self.preset = Some(value.to_string()),
            "exact" => self.exact = value.parse().map_err(|_| bad("not true or false"))?,
            "accumulator_margin" => {
                self.accumulator_margin = Some(value.parse().map_err(|_| bad("not a number"))?)
            }
            "noise" => self.noise = value.parse().map_err(|_| bad("not true or false"))?,
            "bootstrapping" => self.bootstrapping = Some(value.to_string()),
            "activation_margin" => {
                self.activation_margin = Some(value.parse().map_err(|_| bad("not a number"))?)
            }
            "packing" => self.packing = Some(value.to_string()),
            "batch" => self.batch = Some(value.parse().map_err(|_| bad("not a count"))?),
            _ => {
                return Err(bad(
                    "no such option (flooding_security, flooding_tail_bound, security, preset, exact, accumulator_margin, noise, bootstrapping, activation_margin, packing, batch)",
                ))
            }
        }
        Ok(())
    }

    /// Refuses the options only simulations take (for the real backends).
    pub(crate) fn refuse_simulation_options(&self) -> Result<()> {
        if self.noise {
            return Err(crate::BackendError::Compile(
                "--noise applies to simulations only (ckks-sim, tfhe-sim)".into(),
            ));
        }
        Ok(())
    }
}

/// The calibration a compilation reads: the samples and the value ranges
/// measured on them.
pub struct Calibration {
    /// The calibration inputs.
    pub samples: Vec<Sample>,
    /// Every intermediate value's range over them.
    pub ranges: CalibrationRanges,
}

/// A model to compile: the graph and its calibration.
pub struct ModelSource {
    /// The model's name in messages (its file name).
    pub name: String,
    /// The simplified graph.
    pub graph: Graph,
    /// Its calibration.
    pub calibration: Calibration,
}

impl ModelSource {
    /// Loads an ONNX model and measures its calibration set (`.zip`, `.npz`
    /// or a directory of `.npy`), showing the measurement's progress.
    pub fn load(model: &Path, calibration: &Path, progress: &dyn Progress) -> Result<Self> {
        let graph = heman_model::load_onnx(model)?;
        let samples = heman_model::io::dataset::load_arrays(calibration)?;
        Self::new(model.display().to_string(), graph, samples, progress)
            .map_err(|e| e.context(format!("calibration set {}", calibration.display())))
    }

    /// A model from its graph and calibration samples (ranges measured here).
    pub fn new(
        name: String,
        graph: Graph,
        samples: Vec<Sample>,
        progress: &dyn Progress,
    ) -> Result<Self> {
        progress.start("calibrating", Some(samples.len() as u64));
        let ranges =
            CalibrationRanges::measure_with_progress(&graph, &samples, |_| progress.advance(1));
        progress.finish();
        Ok(Self {
            name,
            graph,
            calibration: Calibration {
                samples,
                ranges: ranges?,
            },
        })
    }

    /// The compiled output's name and calibrated range: the only output's,
    /// or for several (concatenated) their names joined and the hull of
    /// their ranges.
    pub fn joined_output(&self) -> (String, Option<(f64, f64)>) {
        let ranges: Option<Vec<(f64, f64)>> = self
            .graph
            .outputs
            .iter()
            .map(|&id| self.range_of(id))
            .collect();
        let hull = ranges.map(|r| {
            r.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(a, b)| {
                    (lo.min(a), hi.max(b))
                })
        });
        (
            heman_compiler::graph::outputs::joined_name(&self.graph),
            hull,
        )
    }

    /// The calibrated range of a graph value, by id.
    pub fn range_of(&self, id: heman_model::ValueId) -> Option<(f64, f64)> {
        self.calibration
            .ranges
            .get(&self.graph.value(id).name)
            .map(|r| (r.min, r.max))
    }
}

/// What `keyparams` prints of a compilation.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One line: the parameters chosen (for tables and the demo).
    pub summary: String,
    /// Everything chosen and measured, a line each.
    pub lines: Vec<String>,
    /// What the model owner should know before serving the model.
    pub warnings: Vec<String>,
    /// How often the compiled model keeps the float model's class on the
    /// calibration samples, where the compilation measured it.
    pub agreement: Option<Agreement>,
}

/// The compiled model's class against the float model's on calibration
/// samples: what a compilation predicts of its accuracy before any key is
/// made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// The samples compared.
    pub samples: usize,
    /// Those on which the compiled arithmetic (polynomials or quantisation)
    /// picks the float model's class.
    pub same_class: usize,
    /// The same with the encryption noise drawn, where it was simulated.
    pub same_class_with_noise: Option<usize>,
}

/// A compiled model, as files.
pub struct Compilation {
    /// The backend that compiled it.
    pub backend: &'static dyn Backend,
    /// keyparams.json: for the data owner; nothing of the weights.
    pub keyparams: String,
    /// The compiled model file (weights: the model owner's only).
    pub model: Vec<u8>,
    /// What was chosen and measured.
    pub report: Report,
}

/// The data owner's keys, as files.
pub struct KeyFiles {
    /// The secret key file (never leaves the data owner; zeroised on drop).
    pub secret: Zeroizing<Vec<u8>>,
    /// The evaluation keys file: what the model owner receives, no secret.
    pub evaluation: Vec<u8>,
    /// The public key file, where the backend has one apart from the
    /// evaluation keys.
    pub public: Option<Vec<u8>>,
}

/// Where one stage of an inference spent its time.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTiming {
    /// The stage's name (its last node, or what it computes).
    pub name: String,
    /// Wall time, in seconds.
    pub seconds: f64,
}

/// One inference's output file and where its time went.
pub struct Inference {
    /// The output ciphertext file, re-randomised and flooded.
    pub output: Vec<u8>,
    /// Per stage of the compiled model.
    pub stages: Vec<StageTiming>,
}

/// A tensor crossing the encryption boundary (as a simulation's keyparams
/// record it too).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TensorInfo {
    /// The graph value's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// The [min, max] calibration saw.
    pub calibrated_range: Option<(f64, f64)>,
}

/// Evaluation keys parsed by a model owner: opaque to callers, shared by
/// every model of the same parameters.
pub struct EvaluationKeys {
    keys: Box<dyn Any + Send + Sync>,
    /// Bytes they take in memory once parsed (expanded).
    pub memory_bytes: u64,
}

impl EvaluationKeys {
    /// Wraps a backend's parsed keys.
    pub fn new<K: Any + Send + Sync>(keys: K, memory_bytes: u64) -> Self {
        Self {
            keys: Box::new(keys),
            memory_bytes,
        }
    }

    /// The backend's keys, if these are of type `K`.
    pub fn get<K: Any>(&self) -> Result<&K> {
        self.keys.downcast_ref().ok_or_else(|| {
            crate::BackendError::Internal("evaluation keys of another backend".into())
        })
    }
}

/// How a model owner keeps a loaded model.
#[derive(Debug, Clone, Copy)]
pub struct ServingOptions {
    /// Memory for encoded weights kept across inferences, in bytes.
    pub cache_bytes: usize,
}

impl Default for ServingOptions {
    fn default() -> Self {
        Self {
            cache_bytes: default_cache_bytes(),
        }
    }
}

/// The default memory for encoded weights: a quarter of this machine's memory (Linux's
/// `MemTotal`), at least 1 GiB; 1 GiB where the total is unknown. Encoding a weight
/// diagonal costs about as much as using it, so a model whose diagonals all fit (Orion's
/// LeNet: 4.3 GiB) runs twice as fast as one re-encoding most of them.
pub fn default_cache_bytes() -> usize {
    const FLOOR: usize = 1 << 30;
    crate::memory::total_bytes().map_or(FLOOR, |t| (t / 4).max(FLOOR))
}

/// A scheme heman runs models under: one entry of the registry.
pub trait Backend: Send + Sync {
    /// Its name on the command line and in keyparams.json.
    fn name(&self) -> &'static str;
    /// Its tag in file headers (1 to 15, unique in the registry).
    fn tag(&self) -> u8;
    /// One line on what it is.
    fn about(&self) -> &'static str;
    /// Whether activations such as ReLU run exactly (TFHE's lookup tables)
    /// rather than as polynomial approximations (CKKS).
    fn exact_activations(&self) -> bool;
    /// Whether its ciphertexts are encryptions (a simulation's are not:
    /// never send one to another party).
    fn encrypts(&self) -> bool {
        true
    }
    /// The backend whose compiled models this one runs (a simulation's),
    /// whose compile options and suite settings apply.
    fn base(&self) -> Option<&'static dyn Backend> {
        None
    }

    /// The model owner compiles: keyparams, compiled model, report.
    fn compile(
        &self,
        source: &ModelSource,
        options: &CompileOptions,
        progress: &dyn Progress,
    ) -> Result<Compilation>;

    /// The model owner loads a compiled model file (`origin` names it).
    fn load_model(
        &self,
        bytes: &[u8],
        origin: &Path,
        options: ServingOptions,
    ) -> Result<Box<dyn ModelOwner>>;

    /// The data owner makes keys for a keyparams text (`origin` names it).
    fn keygen(&self, keyparams: &[u8], origin: &Path, progress: &dyn Progress) -> Result<KeyFiles>;

    /// The data owner opens its keys: keyparams and secret key file.
    fn data_owner(
        &self,
        keyparams: &[u8],
        secret_key: &[u8],
        origin: &Path,
    ) -> Result<Box<dyn DataOwner>>;

    /// What a keyparams text holds, a line each (for `inspect`).
    fn describe_keyparams(&self, keyparams: &[u8], origin: &Path) -> Result<Vec<String>>;
}

/// The model owner's side of one compiled model: checks what the data owner
/// sends and runs the model on it. Outputs leave re-randomised and flooded.
pub trait ModelOwner: Send + Sync {
    /// The backend the model was compiled for.
    fn backend(&self) -> &'static dyn Backend;
    /// The keyparams (JSON) data owners make keys from.
    fn keyparams(&self) -> &str;
    /// The parameter fingerprint its keys and ciphertexts carry.
    fn key_fingerprint(&self) -> [u8; 32];
    /// The input the model takes.
    fn input(&self) -> &TensorInfo;
    /// The tensors the model returns, in the model's order.
    fn outputs(&self) -> &[TensorInfo];
    /// Checks the header of evaluation-key bytes (kind, format, parameters)
    /// without parsing them: cheap, so that bad bodies are refused early.
    /// `origin` names them in errors.
    fn check_key_header(&self, bytes: &[u8], origin: &Path) -> Result<()>;
    /// Parses evaluation keys (header checked first). Keys depend on the
    /// parameters only: models of the same fingerprint share them.
    fn parse_keys(&self, bytes: &[u8], origin: &Path) -> Result<EvaluationKeys>;
    /// Checks that parsed keys serve this model (every rotation it needs).
    fn check_keys(&self, keys: &EvaluationKeys) -> Result<()>;
    /// A digest of what the input's masks are made from (the seeds of its
    /// fresh encryptions), refusing inputs that are not fresh. A server
    /// answers each digest once per key: the outputs' weight-dependent part
    /// depends on the masks only, so answers to inputs sharing masks, with
    /// whatever bodies, would let the data owner average the output
    /// flooding down (Li, Micciancio, Schultz, Sorrell, CRYPTO 2022).
    fn input_masks_digest(&self, input: &[u8], origin: &Path) -> Result<[u8; 32]>;
    /// Runs the model on an encrypted input file (`origin` names it): only
    /// fresh encryptions are taken; the output is re-randomised and flooded
    /// before it is returned. `on_stage` hears of each stage as it ends.
    fn infer(
        &self,
        keys: &EvaluationKeys,
        input: &[u8],
        origin: &Path,
        on_stage: &mut dyn FnMut(&StageTiming),
    ) -> Result<Inference>;
    /// The compiled model's arithmetic in cleartext on `x` (the reference
    /// encrypted results are compared with): CKKS's polynomials and slot
    /// layouts, TFHE's quantisation and lookup tables. With `noise`, the
    /// encryption noise is drawn as well (seeded). One tensor per output.
    fn simulate(&self, x: &Tensor, noise: Option<u64>) -> Result<Vec<Tensor>>;
    /// How many stages an inference runs (for progress).
    fn stage_count(&self) -> usize;
    /// The most inputs one encrypted request holds when the model is
    /// compiled for throughput packing (its inputs and outputs then carry a
    /// batch axis first); `None` for one input per request.
    fn max_batch(&self) -> Option<usize> {
        None
    }
    /// What the compiled model holds, a line each (for `inspect`).
    fn describe(&self) -> Vec<String>;
}

/// The data owner's side: its secret key and the model's keyparams.
pub trait DataOwner: Send + Sync {
    /// The input the model takes.
    fn input(&self) -> &TensorInfo;
    /// The tensors the model returns, in the model's order.
    fn outputs(&self) -> &[TensorInfo];
    /// The most inputs one ciphertext file holds when the model is
    /// compiled for throughput packing; `None` for one input per file.
    fn max_batch(&self) -> Option<usize> {
        None
    }
    /// Encrypts an input (checked against the model's input: shape, finite
    /// values; `origin` names it), as a ciphertext file; a batch `[B, ...]`
    /// where [`DataOwner::max_batch`] allows one.
    fn encrypt(&self, x: &Tensor, origin: &str) -> Result<Vec<u8>>;
    /// Decrypts an output file (`origin` names it) into the model's
    /// outputs, one tensor each in [`DataOwner::outputs`]' order (with the
    /// batch axis first for a throughput model), and applies the
    /// post-processing the model owner left to the data owner (Softmax).
    fn decrypt(&self, output: &[u8], origin: &Path) -> Result<Vec<Tensor>>;
    /// As [`DataOwner::decrypt`], for a result that will reach another
    /// party (the model owner among them): decrypt-side noise hides the
    /// key-dependent error an approximate decryption carries. Answers the
    /// result and a line saying what was added.
    fn decrypt_for_release(
        &self,
        output: &[u8],
        origin: &Path,
        noise: DecryptionNoise,
    ) -> Result<(Vec<Tensor>, String)>;
}

/// Decrypt-side noise: a Gaussian of `2^factor_log2` times the decryption's
/// estimated error added to every released value (CKKS; exact decryptions
/// carry no error to hide). Against key recovery from released decryptions
/// (Li, Micciancio, EUROCRYPT 2021).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecryptionNoise {
    /// `log2` of the added deviation over the estimated error.
    pub factor_log2: f64,
}

/// The release of a decryption that carries no key-dependent error: the
/// decryption itself, and the line saying why nothing was added.
pub(crate) fn released_unchanged(outputs: Vec<Tensor>, why: &str) -> (Vec<Tensor>, String) {
    (outputs, format!("decryption noise: none added ({why})"))
}

impl DecryptionNoise {
    /// Noise as large as the error itself: the error is drowned in fresh
    /// noise of its size, for about half a bit of precision.
    pub const MATCHED: Self = Self { factor_log2: 0.0 };

    /// `matched`, or `log2` of the factor (`0` to `20`).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        if text == "matched" {
            return Ok(Self::MATCHED);
        }
        match text.parse::<f64>() {
            Ok(k) if (0.0..=20.0).contains(&k) => Ok(Self { factor_log2: k }),
            _ => Err(format!(
                "'{text}': `matched`, or log2 of the noise over the estimated error, 0 to 20"
            )),
        }
    }
}
