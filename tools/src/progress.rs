//! The one progress bar of the tools (sst-dump and db_bench): on stderr,
//! only on a terminal and only once the work has taken more than a second;
//! shared by threads (`inc` takes `&self`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// See the module documentation.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    shown: AtomicBool,
}

const DELAY: Duration = Duration::from_secs(1);

impl Progress {
    /// A bar over `total` units of `what` (hidden unless `allowed`).
    pub fn new(total: u64, what: &'static str, allowed: bool) -> Progress {
        Progress::labelled("", total, what, allowed)
    }

    /// A bar over `total` units of `what`, named `label` (hidden unless
    /// `allowed`).
    pub fn labelled(label: &str, total: u64, what: &'static str, allowed: bool) -> Progress {
        let bar = allowed.then(|| {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
            let style = ProgressStyle::with_template(&format!(
                "{{spinner}} {{prefix}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style);
            b.set_prefix(label.to_string());
            b
        });
        Progress {
            bar,
            start: Instant::now(),
            shown: AtomicBool::new(false),
        }
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
            if !self.shown.load(Ordering::Relaxed)
                && self.start.elapsed() > DELAY
                && !self.shown.swap(true, Ordering::Relaxed)
            {
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
