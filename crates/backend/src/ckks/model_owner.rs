//! The model owner's side of a CKKS model: the compiled plan prepared once
//! (encoded weight diagonals kept across requests), evaluation keys checked
//! and parsed, and inference on fresh encryptions only, whose outputs leave
//! re-randomised and flooded.

use std::path::{Path, PathBuf};
use std::time::Instant;

use heman_artifacts::ckks::{Ciphertexts, CompiledModel, EvaluationKeys as CkksKeys};
use heman_artifacts::Role;
use heman_ckks::keys::{galois_element_conjugate, galois_element_for_step};
use heman_ckks::{Bootstrapper, CkksParameters};
use heman_compiler::graph::split_outputs;
use heman_model::Tensor;
use heman_runtime::ckks::{Executor, PreparedPlan};
use rand::SeedableRng;

use crate::error::{refused, runtime_error, BackendError, Result};
use crate::interface::{
    Backend, EvaluationKeys, Inference, ModelOwner, ServingOptions, StageTiming, TensorInfo,
};

self_cell::self_cell!(
    /// A compiled model and its prepared plan, which borrows the plan: built
    /// once at load so that every request reuses the encoded diagonals.
    struct Prepared {
        owner: CompiledModel,
        #[covariant]
        dependent: PreparedPlan,
    }
);

/// A loaded CKKS model.
pub struct CkksModel {
    prepared: Prepared,
    params: CkksParameters,
    /// The bootstrapping circuit, when the plan bootstraps.
    bootstrapper: Option<Bootstrapper>,
    keyparams: String,
    input: TensorInfo,
    outputs: Vec<TensorInfo>,
    origin: PathBuf,
}

/// The cache budget below which the bootstrapping circuit's DFT matrices
/// are encoded when used rather than kept encoded.
const LEAN_BELOW_CACHE_BYTES: usize = 8 << 30;

/// Loads a compiled model file.
pub fn load(bytes: &[u8], origin: &Path, options: ServingOptions) -> Result<CkksModel> {
    let compiled = CompiledModel::from_bytes(bytes, origin)?;
    let params = compiled.keyparams.ckks_parameters(origin)?;
    let keyparams = serde_json::to_string(&compiled.keyparams)
        .map_err(|e| BackendError::Internal(format!("keyparams as JSON: {e}")))?;
    let input = super::tensor_info(&compiled.keyparams.input);
    let outputs = crate::input::output_infos(
        &compiled.keyparams.outputs,
        compiled.keyparams.output.calibrated_range,
    );
    // The circuit's DFT matrices encoded once take about 2 GiB at N = 2^16:
    // kept only where the cache may hold that much beside the weights.
    let lean = options.cache_bytes < LEAN_BELOW_CACHE_BYTES;
    let bootstrapper = heman_runtime::ckks::bootstrapping::circuit(&params, &compiled.plan, lean)
        .map_err(|e| {
        BackendError::Compile(format!("{}: bootstrapping circuit: {e}", origin.display()))
    })?;
    let prepared = Prepared::new(compiled, |c| {
        PreparedPlan::new(&c.plan, &params, options.cache_bytes)
    });
    Ok(CkksModel {
        prepared,
        params,
        bootstrapper,
        keyparams,
        input,
        outputs,
        origin: origin.to_path_buf(),
    })
}

impl CkksModel {
    fn model(&self) -> &CompiledModel {
        self.prepared.borrow_owner()
    }

    /// The input ciphertexts of a request, parsed under these parameters;
    /// whether they are fresh encryptions the runtime checks before it runs
    /// ([`Executor::run_fresh`]), so no entry point can skip it.
    fn input_ciphertexts(&self, input: &[u8], origin: &Path) -> Result<Ciphertexts> {
        crate::registry::check_kind(input, origin, &super::CKKS, Role::Ciphertexts)
            .map_err(|e| e.context("input ciphertext refused"))?;
        let file = Ciphertexts::from_bytes(input, origin, &self.params)
            .map_err(refused("input ciphertext"))?;
        super::check_packing(self.model().plan.packing, file.batch, origin)
            .map_err(|e| e.context("input ciphertext refused"))?;
        Ok(file)
    }
}

impl ModelOwner for CkksModel {
    fn backend(&self) -> &'static dyn Backend {
        &super::CKKS
    }

    fn keyparams(&self) -> &str {
        &self.keyparams
    }

    fn key_fingerprint(&self) -> [u8; 32] {
        self.params.fingerprint()
    }

    fn input(&self) -> &TensorInfo {
        &self.input
    }

    fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    fn check_key_header(&self, bytes: &[u8], origin: &Path) -> Result<()> {
        crate::registry::check_key_header(
            bytes,
            origin,
            &super::CKKS,
            heman_artifacts::ckks::expected(Role::EvaluationKeys, Some(&self.params.fingerprint())),
        )
    }

    fn parse_keys(&self, bytes: &[u8], origin: &Path) -> Result<EvaluationKeys> {
        self.check_key_header(bytes, origin)?;
        let keys = CkksKeys::from_bytes(bytes, origin, &self.params)
            .map_err(refused("evaluation keys"))?;
        let kp = &self.model().keyparams;
        let memory = super::evaluation_key_bytes(
            self.params.n(),
            kp.parameters.switching_key_limbs(),
            kp.q.len(),
            keys.galois.len(),
        );
        Ok(EvaluationKeys::new(keys, memory))
    }

    fn check_keys(&self, keys: &EvaluationKeys) -> Result<()> {
        let keys: &CkksKeys = keys.get()?;
        let n = self.params.n();
        if self.bootstrapper.is_some() {
            let conjugation = keys.galois.contains(galois_element_conjugate(n));
            if !conjugation || keys.encapsulation.is_none() {
                return Err(BackendError::Refused(format!(
                    "{} bootstraps and these evaluation keys lack the {}; make keys from its keyparams",
                    self.origin.display(),
                    if conjugation { "encapsulation keys" } else { "conjugation key" }
                )));
            }
        }
        let missing: Vec<usize> = self
            .model()
            .keyparams
            .rotation_steps
            .iter()
            .copied()
            .filter(|&s| !keys.galois.contains(galois_element_for_step(s as i64, n)))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(BackendError::Refused(format!(
                "these evaluation keys lack the rotation keys for steps {missing:?} that {} uses; make keys from its keyparams",
                self.origin.display()
            )))
        }
    }

    fn input_masks_digest(&self, input: &[u8], origin: &Path) -> Result<[u8; 32]> {
        let cts = self.input_ciphertexts(input, origin)?.ciphertexts;
        let seeds = cts.iter().map(|ct| {
            ct.seed()
                .copied()
                .ok_or_else(crate::error::not_a_fresh_input)
        });
        crate::input::masks_digest(b"ckks", seeds)
    }

    fn infer(
        &self,
        keys: &EvaluationKeys,
        input: &[u8],
        origin: &Path,
        on_stage: &mut dyn FnMut(&StageTiming),
    ) -> Result<Inference> {
        let keys: &CkksKeys = keys.get()?;
        let Ciphertexts {
            ciphertexts: cts,
            batch,
        } = self.input_ciphertexts(input, origin)?;
        let mut executor = Executor::new(&self.params, &keys.relin, &keys.galois, &keys.public)
            .map_err(|e| BackendError::Refused(format!("evaluation keys refused: {e}")))?;
        if let Some(b) = &self.bootstrapper {
            executor = executor.with_bootstrapping(b, keys.encapsulation.as_ref());
        }
        let plan = &self.model().plan;
        let mut stages = Vec::with_capacity(plan.stages.len());
        let mut last = Instant::now();
        // Outputs leave re-randomised with the data owner's public key and
        // flooded (model-owner privacy: their c1 and noise say nothing of the
        // weights).
        let flooding = heman_runtime::ckks::flooding_of(&self.model().keyparams.output_flooding);
        let out = executor
            .run_fresh(self.prepared.borrow_dependent(), cts, &flooding, |index| {
                let timing = StageTiming {
                    name: plan.stages[index].op.name().to_string(),
                    seconds: last.elapsed().as_secs_f64(),
                };
                last = Instant::now();
                on_stage(&timing);
                stages.push(timing);
            })
            .map_err(runtime_error)?;
        Ok(Inference {
            output: Ciphertexts {
                ciphertexts: out,
                batch,
            }
            .to_bytes(&self.params),
            stages,
        })
    }

    fn simulate(&self, x: &Tensor, noise: Option<u64>) -> Result<Vec<Tensor>> {
        let model = self.model();
        let x = crate::input::fit_input(x, &self.input, "simulated input")?;
        let plan = &model.plan;
        let mut slots = heman_compiler::ckks::simulate::simulate_slots(plan, &x);
        if let Some(seed) = noise {
            // The flooding dominates the output error: a Gaussian of its
            // expected size per slot.
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let sigma = model.keyparams.output_flooding.slot_error;
            for v in slots.iter_mut().flatten() {
                *v += sigma * heman_compiler::gaussian::standard_normal(&mut rng);
            }
        }
        let joined = Tensor::new(
            plan.output_shape.clone(),
            heman_compiler::ckks::simulate::output_values(plan, &slots),
        );
        Ok(split_outputs(&joined, &plan.outputs))
    }

    fn stage_count(&self) -> usize {
        self.model().plan.stages.len()
    }

    fn max_batch(&self) -> Option<usize> {
        let plan = &self.model().plan;
        (plan.packing == heman_compiler::ckks::Packing::Throughput).then_some(plan.slots)
    }

    fn describe(&self) -> Vec<String> {
        super::describe::model(self.model())
    }
}
