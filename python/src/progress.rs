//! Progress of long calls reported to a Python object with `start(step,
//! total)`, `advance(units)` and `finish()` methods (the package's tqdm bar
//! or a caller's callback). Called from worker threads, each call takes the
//! interpreter lock for its own duration only.

use std::sync::Mutex;

use heman_backend::Progress;
use pyo3::prelude::*;

/// A Python progress object, or none; remembers the first exception it
/// raised, for the call to raise once the work is done.
pub struct Reporter {
    target: Option<Py<PyAny>>,
    failure: Mutex<Option<PyErr>>,
}

impl Reporter {
    /// Reports to `target` (nothing when `None`).
    pub fn new(target: Option<Py<PyAny>>) -> Self {
        Self {
            target,
            failure: Mutex::new(None),
        }
    }

    /// Calls one method of the target, unless an earlier call failed.
    fn call<F>(&self, method: F)
    where
        F: for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>>,
    {
        let Some(target) = &self.target else {
            return;
        };
        // Held across the call: one progress call at a time, in order.
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_some() {
            return;
        }
        Python::attach(|py| {
            if let Err(e) = method(target.bind(py)) {
                *failure = Some(e);
            }
        });
    }

    /// The exception the progress object raised, if any: `Ok` otherwise.
    pub fn outcome(self) -> PyResult<()> {
        match self.failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Progress for Reporter {
    fn start(&self, step: &str, total: Option<u64>) {
        self.call(|t| t.call_method1("start", (step, total)));
    }

    fn advance(&self, units: u64) {
        self.call(|t| t.call_method1("advance", (units,)));
    }

    fn finish(&self) {
        self.call(|t| t.call_method0("finish"));
    }
}
