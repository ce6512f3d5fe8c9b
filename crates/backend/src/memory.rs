//! This machine's memory, as Linux reports it (`/proc/meminfo`): what sizes the default
//! weight cache and what a dry run's keys are checked against before they are made.

/// A `/proc/meminfo` field in bytes, if the file and field exist.
fn meminfo(field: &str) -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<usize>().ok())
        .map(|kib| kib.saturating_mul(1024))
}

/// Physical memory, if known.
pub fn total_bytes() -> Option<usize> {
    meminfo("MemTotal")
}

/// Memory available to a new allocation without swapping, if known.
pub fn available_bytes() -> Option<usize> {
    meminfo("MemAvailable")
}

/// Bytes as GiB, for messages.
pub fn gib(bytes: usize) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}
