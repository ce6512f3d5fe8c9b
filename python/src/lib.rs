//! `heman._native`: the extension module under the `heman` Python package.
//! Both parties' operations over the backend seam (`heman-backend`), with
//! the bytes of heman's files in and out, so that Python and the CLI read
//! each other's files. Arrays cross as little-endian `f64` bytes and a
//! shape; the package's Python layer turns them into numpy arrays. Every
//! long call releases the interpreter lock (`Python::detach`).

#![warn(missing_docs)]

mod array;
mod data_owner;
mod error;
mod model_owner;
mod progress;
mod query;

use pyo3::prelude::*;

// The allocator of the library's own memory, as the CLI's: inference
// allocates and frees ciphertexts of hundreds of KiB by the thousand, and
// glibc's malloc returns each to the kernel (a throughput model's inference
// ran about 1.5-1.9x slower with it). Arrays and bytes handed to Python are
// copies in Python's own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The library's warnings (an input outside the calibrated range, ...)
    // on standard error, as the CLI's.
    heman_server::logging::init("warn");
    error::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model_owner::Model>()?;
    m.add_class::<model_owner::Keys>()?;
    m.add_class::<data_owner::KeySet>()?;
    m.add_function(wrap_pyfunction!(model_owner::compile, m)?)?;
    m.add_function(wrap_pyfunction!(model_owner::load, m)?)?;
    m.add_function(wrap_pyfunction!(data_owner::keygen, m)?)?;
    m.add_function(wrap_pyfunction!(data_owner::open_keys, m)?)?;
    m.add_function(wrap_pyfunction!(query::server_keyparams, m)?)?;
    m.add_function(wrap_pyfunction!(query::query, m)?)?;
    m.add_function(wrap_pyfunction!(backends, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    Ok(())
}

/// The backends this build holds: `(name, about, exact activations)`.
#[pyfunction]
fn backends() -> Vec<(&'static str, &'static str, bool)> {
    heman_backend::registry::backends()
        .iter()
        .map(|b| (b.name(), b.about(), b.exact_activations()))
        .collect()
}

/// Sizes the worker pool every operation runs on (default: all cores);
/// only before the first operation, as the CLI's `--threads`.
#[pyfunction]
fn set_threads(threads: usize) -> PyResult<()> {
    if threads == 0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "threads must be at least 1",
        ));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| {
            error::HemanError::new_err(format!(
                "the worker pool is already running ({e}): call set_threads before any other heman call"
            ))
        })
}
