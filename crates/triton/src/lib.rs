//! `libtriton_heman.so`: heman's backend for Triton Inference Server.
//!
//! A model directory of Triton's repository holds `config.pbtxt` with
//! `backend: "heman"` and a version folder (`1/`) with one compiled
//! `*.heman` model of any backend (CKKS, TFHE). Requests carry one BYTES
//! input `ciphertext` (a heman ciphertext file) and the registered keys' id
//! (request parameter `key_id`, or a BYTES input of that name), and are
//! answered with one BYTES output `ciphertext`. Keys are registered through
//! Triton too: a request with the BYTES input `eval_keys` (an `eval.keys`
//! file) stores them in the model's key store and answers output `key_id`.
//! The key store (`parameters` `key_store`: a directory or an S3 bucket) is
//! the one `heman serve` uses, so replicas of either share keys. Key
//! checks, the query ledger and the output flooding are `heman-server`'s
//! own code.

#![warn(missing_docs)]

mod api;
mod execute;
mod ffi;
mod model;

use std::ffi::c_void;
use std::path::Path;
use std::ptr;

use api::{check, text, Failure};
use model::{ModelState, Settings};

// The library's allocations by mimalloc, as the CLI's (see its main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Checks the server's API version and starts the library's log (stderr,
/// `HEMAN_LOG`, default `warn`).
///
/// # Safety
/// Called by Triton once, when it loads the backend.
#[no_mangle]
pub unsafe extern "C" fn TRITONBACKEND_Initialize(
    _backend: *mut ffi::TRITONBACKEND_Backend,
) -> *mut ffi::TRITONSERVER_Error {
    heman_server::logging::init("warn");
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two out-parameters of ours.
    let version = unsafe { ffi::TRITONBACKEND_ApiVersion(&mut major, &mut minor) };
    if let Err(e) = check(version, "the backend API version") {
        return e.into_raw();
    }
    if major != ffi::API_MAJOR || minor < ffi::API_MINOR {
        return Failure {
            code: ffi::ERROR_UNSUPPORTED,
            message: format!(
                "the heman backend needs TRITONBACKEND API {}.{} or a later {0}.x; this Triton has {major}.{minor}",
                ffi::API_MAJOR,
                ffi::API_MINOR
            ),
        }
        .into_raw();
    }
    ptr::null_mut()
}

/// Loads a model: its configuration's settings, its compiled file, its key
/// store; kept as the model's state.
///
/// # Safety
/// Called by Triton with a live model.
#[no_mangle]
pub unsafe extern "C" fn TRITONBACKEND_ModelInitialize(
    model: *mut ffi::TRITONBACKEND_Model,
) -> *mut ffi::TRITONSERVER_Error {
    // A panic must not cross into Triton: the model fails to load instead.
    let loaded = std::panic::catch_unwind(|| {
        // SAFETY: the caller's contract.
        unsafe { load(model) }
    })
    .unwrap_or_else(|_| {
        Err(Failure::internal(
            "the heman backend panicked loading the model",
        ))
    });
    match loaded {
        Ok(state) => {
            let state = Box::into_raw(Box::new(state)) as *mut c_void;
            // SAFETY: the state is ours until ModelFinalize takes it back.
            let set = unsafe { ffi::TRITONBACKEND_ModelSetState(model, state) };
            match check(set, "keeping the model's state") {
                Ok(()) => ptr::null_mut(),
                Err(e) => {
                    // SAFETY: Triton did not take it: freed here, once.
                    drop(unsafe { Box::from_raw(state as *mut ModelState) });
                    e.into_raw()
                }
            }
        }
        Err(e) => e.into_raw(),
    }
}

/// The model's state from what Triton knows of it.
///
/// # Safety
/// `model` is live.
unsafe fn load(model: *mut ffi::TRITONBACKEND_Model) -> Result<ModelState, Failure> {
    let (mut name, mut version) = (ptr::null(), 0u64);
    let (mut artifact, mut location) = (0, ptr::null());
    let mut message = ptr::null_mut();
    // SAFETY: the caller's contract; the strings are Triton's, copied at once;
    // the configuration message is ours to delete.
    let (name, location, config) = unsafe {
        check(ffi::TRITONBACKEND_ModelName(model, &mut name), "model name")?;
        check(
            ffi::TRITONBACKEND_ModelVersion(model, &mut version),
            "model version",
        )?;
        check(
            ffi::TRITONBACKEND_ModelRepository(model, &mut artifact, &mut location),
            "model location",
        )?;
        check(
            ffi::TRITONBACKEND_ModelConfig(model, 1, &mut message),
            "model configuration",
        )?;
        let (mut json, mut size) = (ptr::null(), 0usize);
        let serialised = ffi::TRITONSERVER_MessageSerializeToJson(message, &mut json, &mut size);
        let config = check(serialised, "model configuration")
            .map(|()| std::slice::from_raw_parts(json as *const u8, size).to_vec());
        let _ = check(
            ffi::TRITONSERVER_MessageDelete(message),
            "model configuration",
        );
        (text(name), text(location), config?)
    };
    if artifact != ffi::ARTIFACT_FILESYSTEM {
        return Err(Failure::invalid(format!(
            "model '{name}': the heman backend reads models from a local file system only"
        )));
    }
    let config: serde_json::Value = serde_json::from_slice(&config)
        .map_err(|e| Failure::internal(format!("model '{name}': configuration: {e}")))?;
    let settings = Settings::from_config(&config, &name)?;
    ModelState::load(&name, Path::new(&location), version, settings)
}

/// Frees the model's state.
///
/// # Safety
/// Called by Triton once per initialised model, after its instances.
#[no_mangle]
pub unsafe extern "C" fn TRITONBACKEND_ModelFinalize(
    model: *mut ffi::TRITONBACKEND_Model,
) -> *mut ffi::TRITONSERVER_Error {
    let mut state = ptr::null_mut();
    // SAFETY: the state set in ModelInitialize, taken back once.
    unsafe {
        if let Err(e) = check(
            ffi::TRITONBACKEND_ModelState(model, &mut state),
            "model state",
        ) {
            return e.into_raw();
        }
        if !state.is_null() {
            drop(Box::from_raw(state as *mut ModelState));
        }
    }
    ptr::null_mut()
}

/// Answers a batch of requests with the model's state: each request one
/// response. Requests of a model instance come one batch at a time; several
/// instances share the model's state (its parts are thread-safe).
///
/// # Safety
/// Called by Triton with a live instance and `count` live requests.
#[no_mangle]
pub unsafe extern "C" fn TRITONBACKEND_ModelInstanceExecute(
    instance: *mut ffi::TRITONBACKEND_ModelInstance,
    requests: *mut *mut ffi::TRITONBACKEND_Request,
    count: u32,
) -> *mut ffi::TRITONSERVER_Error {
    let (mut model, mut state) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: the caller's contract; the state outlives its instances.
    unsafe {
        let found = check(
            ffi::TRITONBACKEND_ModelInstanceModel(instance, &mut model),
            "the instance's model",
        )
        .and_then(|()| {
            check(
                ffi::TRITONBACKEND_ModelState(model, &mut state),
                "model state",
            )
        });
        if let Err(e) = found {
            // Returning an error leaves the requests to Triton.
            return e.into_raw();
        }
        let state = &*(state as *const ModelState);
        let requests = std::slice::from_raw_parts(requests, count as usize);
        execute::batch(state, instance, requests);
    }
    ptr::null_mut()
}
