//! Progress bars: the command layer's [`Progress`] implementation on top of indicatif.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use electra_convert::Progress;

/// Drives one indicatif bar with the bytes a conversion fetches (from a bucket) and writes.
pub struct BarProgress {
    pub bar: ProgressBar,
    /// Whether the bar's template says `fetching`/`writing` (convert's own bar); a batch job's
    /// bar keeps the template the batch display gave it.
    restyle: bool,
}

impl BarProgress {
    /// `convert`'s bar: shown on a terminal unless `quiet`, hidden otherwise.
    pub fn for_terminal(quiet: bool) -> BarProgress {
        if quiet || !std::io::stderr().is_terminal() {
            return BarProgress::keeping_style(ProgressBar::hidden());
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(style("writing"));
        bar.enable_steady_tick(Duration::from_millis(200));
        BarProgress { bar, restyle: true }
    }

    /// A bar styled by the caller (a batch job's), left as it is.
    pub fn keeping_style(bar: ProgressBar) -> BarProgress {
        BarProgress {
            bar,
            restyle: false,
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The bar's look: `verb` is what the bytes are being used for (`writing`, `fetching`).
fn style(verb: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!(
        "{{spinner}} {verb} {{msg}} [{{bar:30}}] {{binary_bytes}}/{{binary_total_bytes}} ({{eta}})"
    ))
    .expect("progress template")
    .progress_chars("=> ")
}

impl Progress for BarProgress {
    fn begin(&mut self, total_bytes: u64) {
        if self.restyle {
            self.bar.set_style(style("writing"));
        }
        self.bar.set_length(total_bytes);
        self.bar.set_position(0);
    }

    fn stage(&mut self, what: &str) {
        self.bar.set_message(what.to_string());
    }

    fn advance(&mut self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// From a bucket: bytes fetched of the bytes needed, before any is written.
    fn fetching(&mut self, fetched: u64, needed: u64) {
        if self.bar.length() != Some(needed) {
            if self.restyle {
                self.bar.set_style(style("fetching"));
            }
            self.bar.set_length(needed);
        }
        self.bar.set_position(fetched.min(needed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_bytes_fetched_of_needed_then_bytes_written() {
        let mut p = BarProgress::keeping_style(ProgressBar::hidden());
        p.fetching(0, 1000);
        assert_eq!((p.bar.length(), p.bar.position()), (Some(1000), 0));
        p.fetching(400, 1000);
        assert_eq!(p.bar.position(), 400);
        // Coalescing gaps can bring more than needed: the bar stops at full.
        p.fetching(1010, 1000);
        assert_eq!(p.bar.position(), 1000);
        p.begin(5000);
        assert_eq!((p.bar.length(), p.bar.position()), (Some(5000), 0));
        p.advance(1200);
        assert_eq!(p.bar.position(), 1200);
    }
}
