//! A progress bar on stderr that appears only on a terminal and only once
//! the work has taken more than a second.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// See the module documentation.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    shown: bool,
}

const DELAY: Duration = Duration::from_secs(1);

impl Progress {
    /// A bar over `total` units of `what` (hidden unless `allowed`).
    pub fn new(total: u64, what: &'static str, allowed: bool) -> Progress {
        let bar = allowed.then(|| {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
            let style = ProgressStyle::with_template(&format!(
                "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {what} (eta {{eta}})"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style);
            b
        });
        Progress {
            bar,
            start: Instant::now(),
            shown: false,
        }
    }

    /// `n` more units done.
    pub fn inc(&mut self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
            if !self.shown && self.start.elapsed() > DELAY {
                self.shown = true;
                b.set_draw_target(ProgressDrawTarget::stderr());
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
