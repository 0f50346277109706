//! Progress bars: the command layer's [`Progress`] implementation on top of indicatif.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use electra_convert::Progress;

/// Drives one indicatif bar with the bytes a conversion writes.
pub struct BarProgress(pub ProgressBar);

impl BarProgress {
    /// `convert`'s bar: shown on a terminal unless `quiet`, hidden otherwise.
    pub fn for_terminal(quiet: bool) -> BarProgress {
        if quiet || !std::io::stderr().is_terminal() {
            return BarProgress(ProgressBar::hidden());
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} writing {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({eta})",
            )
            .expect("progress template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        BarProgress(bar)
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for BarProgress {
    fn begin(&mut self, total_bytes: u64) {
        self.0.set_length(total_bytes);
        self.0.set_position(0);
    }

    fn stage(&mut self, what: &str) {
        self.0.set_message(what.to_string());
    }

    fn advance(&mut self, bytes: u64) {
        self.0.inc(bytes);
    }
}
