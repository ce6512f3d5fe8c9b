//! The log of a program that embeds heman (the CLI, the Python module, the
//! Triton backend): standard error, filtered by `HEMAN_LOG`.

/// The environment variable holding the log filter (`warn`, `info`,
/// `heman_runtime=debug`, ...).
pub const FILTER_VARIABLE: &str = "HEMAN_LOG";

/// Starts the log at `default` unless [`FILTER_VARIABLE`] says otherwise;
/// where a log is already started (a second initialisation), keeps it.
pub fn init(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(FILTER_VARIABLE)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
