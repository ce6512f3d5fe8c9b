//! Progress bars for long steps (hidden when stderr is not a terminal), and
//! the backend seam's progress shown with them.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

pub fn bar(len: usize, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// A spinner for a step of unknown length.
pub fn spinner(message: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(message.to_string());
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    spinner
}

/// The seam's progress as bars (known length) and spinners (unknown).
#[derive(Default)]
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl heman_backend::Progress for Bars {
    fn start(&self, step: &str, total: Option<u64>) {
        let shown = match total {
            Some(n) => bar(n as usize, step),
            None => spinner(step),
        };
        if let Some(old) = self.current.lock().expect("progress lock").replace(shown) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, units: u64) {
        if let Some(bar) = &*self.current.lock().expect("progress lock") {
            bar.inc(units);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.current.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}
