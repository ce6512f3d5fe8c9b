//! Progress of long steps, reported to whoever shows it (the CLI's bars, a
//! Python callback), so that the library itself draws nothing.

/// Receives the progress of long steps.
pub trait Progress: Sync {
    /// A step of `total` units (`None`: unknown length) begins.
    fn start(&self, step: &str, total: Option<u64>);
    /// `units` more of the current step are done.
    fn advance(&self, units: u64);
    /// The current step ends.
    fn finish(&self);
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
