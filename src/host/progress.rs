//! Progress display: one bar per imported layer on a terminal (bytes of the blob read, files,
//! rate), nothing otherwise or with `--quiet`; and the one-line summary.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::layer::LayerCounts;

/// Where the bars go: several layers can be in flight (one written, the next one read).
#[derive(Debug, Clone)]
pub struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    /// Bars only when stderr is a terminal and not quiet.
    pub fn new(quiet: bool) -> Self {
        let enabled = !quiet && std::io::stderr().is_terminal();
        Progress {
            bars: enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    pub fn hidden() -> Self {
        Progress { bars: None }
    }

    /// A bar for one layer of `size` compressed bytes.
    pub fn layer(&self, label: &str, size: u64) -> ProgressBar {
        let Some(bars) = &self.bars else {
            return ProgressBar::hidden();
        };
        let pb = bars.add(ProgressBar::new(size)).with_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        pb.set_prefix(label.to_string());
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    }

    /// Update a bar's file count (cheap; called per entry).
    pub fn files(pb: &ProgressBar, c: &LayerCounts) {
        if !pb.is_hidden() && c.entries % 64 == 0 {
            pb.set_message(format!("{} files", c.files));
        }
    }
}

/// Human-readable byte count.
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}
