//! Progress: one bar per imported layer on a terminal (bytes of the blob fetched and read,
//! files, rate), nothing otherwise or with `--quiet`; the one-line summary; and, with
//! `--progress-fd N`, machine-readable events on file descriptor N.
//!
//! # `--progress-fd` format (JSON Lines)
//!
//! One JSON object per line, written and flushed as it happens; every object has `stage`:
//!
//! - `{"stage":"start","imgref":…,"manifest":…,"layers":4,"layers_to_fetch":1,"bytes_to_fetch":N}`
//!   once the manifest and config are read and the plan is made;
//! - `{"stage":"fetch","layer":"sha256:…","index":4,"layers":4,"bytes":done,"total":size}` while a
//!   layer blob is fetched (from a local layout: read by the importer): once when it starts
//!   (`bytes` = 0), at most every 1 MiB of the blob, and once at its end (`bytes` = `total`);
//!   several layers can be fetched at once, so their events interleave;
//! - `{"stage":"imported","layer":"sha256:…","index":4,"layers":4}` when a fetched layer's
//!   commit is written;
//! - `{"stage":"reuse","layer":"sha256:…","index":2,"layers":4}` for a layer already stored;
//! - `{"stage":"commit"}` when the layers are in and the merged commit is being written;
//! - `{"stage":"done","commit":…,"manifest":…,"unchanged":bool}` at the end of a pull that
//!   succeeded.
//!
//! An error ends the stream without `done` (the message goes to stderr, the exit code is
//! non-zero).

use std::io::{IsTerminal, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::layer::LayerCounts;

/// Where events go with `--progress-fd`.
pub type EventSink = Arc<Mutex<std::fs::File>>;

/// Open `--progress-fd N`: the descriptor must be open (and is owned from here on).
#[allow(unsafe_code)] // taking a raw descriptor; see the two SAFETY comments
pub fn event_sink(fd: i32) -> anyhow::Result<EventSink> {
    use std::os::fd::FromRawFd;
    if fd < 0 {
        anyhow::bail!("--progress-fd {fd}: not a file descriptor");
    }
    // SAFETY: fcntl on an arbitrary number is harmless; it fails when nothing is open there.
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(b)
        .map_err(|e| anyhow::anyhow!("--progress-fd {fd}: not an open file descriptor: {e}"))?;
    // SAFETY: the descriptor is open and given to us by the caller for this purpose.
    let f = unsafe { std::fs::File::from_raw_fd(fd) };
    Ok(Arc::new(Mutex::new(f)))
}

/// Where the bars go: several layers can be in flight (one written, the next ones fetched).
#[derive(Debug, Clone)]
pub struct Progress {
    bars: Option<MultiProgress>,
    events: Option<EventSink>,
}

impl Progress {
    /// Bars only when stderr is a terminal and not quiet; events when a sink is given.
    pub fn new(quiet: bool, events: Option<EventSink>) -> Self {
        let enabled = !quiet && std::io::stderr().is_terminal();
        Progress {
            bars: enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            events,
        }
    }

    /// No bars and no events.
    pub fn hidden() -> Self {
        Progress {
            bars: None,
            events: None,
        }
    }

    /// Write one event (see the module docs); a broken sink is ignored.
    pub fn event(&self, v: serde_json::Value) {
        emit(&self.events, &v);
    }

    /// Wrap a layer blob's reader: its bar, and `fetch` events (see the module docs).
    pub fn track_layer(
        &self,
        pb: &ProgressBar,
        r: Box<dyn Read + Send>,
        layer: &str,
        index: usize,
        layers: usize,
        total: u64,
    ) -> Box<dyn Read + Send> {
        let r = Box::new(pb.wrap_read(r));
        match &self.events {
            None => r,
            Some(sink) => {
                let f = FetchEvents {
                    inner: r,
                    sink: Some(sink.clone()),
                    layer: layer.to_string(),
                    index,
                    layers,
                    total,
                    done: 0,
                    last: 0,
                };
                f.emit();
                Box::new(f)
            }
        }
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

fn emit(sink: &Option<EventSink>, v: &serde_json::Value) {
    if let Some(s) = sink {
        if let Ok(mut f) = s.lock() {
            let _ = writeln!(f, "{v}").and_then(|_| f.flush());
        }
    }
}

/// Emits `fetch` events as a blob is read.
struct FetchEvents {
    inner: Box<dyn Read + Send>,
    sink: Option<EventSink>,
    layer: String,
    index: usize,
    layers: usize,
    total: u64,
    done: u64,
    last: u64,
}

const EVENT_EVERY: u64 = 1 << 20;

impl FetchEvents {
    fn emit(&self) {
        emit(
            &self.sink,
            &serde_json::json!({
                "stage": "fetch",
                "layer": self.layer,
                "index": self.index,
                "layers": self.layers,
                "bytes": self.done,
                "total": self.total,
            }),
        );
    }
}

impl Read for FetchEvents {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if (n == 0 && self.last != self.done) || self.done - self.last >= EVENT_EVERY {
            self.last = self.done;
            self.emit();
        }
        Ok(n)
    }
}

/// Human-readable byte count.
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}
