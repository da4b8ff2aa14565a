//! Layer blobs fetched ahead of the importer: several layers download at once while the
//! importer parses and writes the one whose turn it is (issue 11).
//!
//! Layer trees are applied in order (a layer's tree needs the merged tree below it for the
//! metadata of parents it does not list), but fetching a blob needs nothing from the layers
//! below. So, from a registry, [`Inflight`] starts fetching the blobs to import in image
//! order, each on a thread of its own, up to [`MAX_SPOOLS`] at once, and the importer reads
//! each one when its turn comes. Other sources are local ([`fetch_ahead`]): a layout (`oci:`,
//! `oci-archive:`, the temporary copy of a `containers-storage:` image) is read in place, and
//! a blob the proxy reads from local storage (`containers-storage:`, `docker-archive:`,
//! `dir:`) is streamed into the importer when its turn comes, as a copy to a spool would only
//! add writes.
//!
//! # Spools
//!
//! A fetched blob goes to a *spool*: an unlinked temporary file in the repository's `tmp/`
//! (`O_TMPFILE`), so nothing is left behind when the pull ends, fails, or is killed. The fetch
//! hashes the blob as it arrives and checks it against the manifest's digest and size; a blob
//! longer than its size is cut off there. The importer reads a spool while it is still being
//! written (the reader waits for more bytes), so the layer whose turn it is streams as it did
//! before, and the layers after it are on disk, verified, when their turn comes.
//!
//! # Bounds
//!
//! At most [`MAX_SPOOLS`] spools exist at once, the ones being read included, and together
//! they hold at most [`SPOOL_BYTES`] of blobs, except that one spool may always exist ([`room`]):
//! disk use is bounded by the largest blobs, not by the image. A spool is gone once the
//! importer has read it. Memory does not depend on layer size: a fetch holds one buffer, and
//! the proxy a few chunks per blob.
//!
//! # Errors
//!
//! A failed fetch (an error from the registry, a digest or size mismatch) is kept with its
//! message, which names the layer and its digest. The importer gets it when it reads that
//! blob, or, sooner, when it opens any blob after the failure: the pull then stops at the next
//! layer instead of importing layers it will throw away. Either way the transaction is
//! aborted and nothing moves. Dropping the [`Inflight`] (the pull ended or failed) cancels the
//! fetches still running; their threads end at their next chunk.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use anyhow::{anyhow, Result};
use indicatif::ProgressBar;

use super::fetch::Source;
use super::imgref::Transport;
use super::oci::DigestReader;
use super::progress::Progress;

/// Spools (blobs being fetched, fetched, or being read) at most at once.
pub const MAX_SPOOLS: usize = 3;

/// Bytes the spools may hold together, unless there is only one.
pub const SPOOL_BYTES: u64 = 4 << 30;

/// Bytes read from the source per chunk.
const CHUNK: usize = 256 << 10;

/// Whether blobs are fetched ahead into spools: only from a registry, through the proxy.
pub fn fetch_ahead(transport: Transport, through_proxy: bool) -> bool {
    through_proxy && transport == Transport::Registry
}

/// Whether a fetch of `size` bytes may start when `live` spools holding `live_bytes` exist.
pub fn room(live: usize, live_bytes: u64, size: u64) -> bool {
    live == 0 || (live < MAX_SPOOLS && live_bytes.saturating_add(size) <= SPOOL_BYTES)
}

/// A blob to import.
#[derive(Debug, Clone)]
pub struct Blob {
    /// The layer's place in the image (from 1): the key for [`Inflight::open`].
    pub index: usize,
    /// The image's layer count.
    pub layers: usize,
    /// The blob's digest, from the manifest.
    pub digest: String,
    /// The blob's size, from the manifest.
    pub size: u64,
    /// For the progress bar: "layer 2/3".
    pub label: String,
    /// For messages: "layer 2/3 (sha256:…)".
    pub name: String,
}

/// One blob's fetch, as the threads share it.
#[derive(Default)]
struct Slot {
    /// Its spool, once the fetch started and until the importer has read it.
    file: Option<Arc<File>>,
    /// Bytes in the spool so far.
    written: u64,
    /// Set when the fetch ended: `Ok`, or its error message.
    end: Option<Result<(), String>>,
    /// The importer is done with it (read it, or gave up): not to be fetched any more.
    consumed: bool,
    /// Its progress bar, made by whichever of the fetch and the importer comes first.
    bar: Option<ProgressBar>,
}

#[derive(Default)]
struct State {
    slots: Vec<Slot>,
    /// Spools that exist, and the bytes of their blobs.
    live: usize,
    live_bytes: u64,
    /// The first fetch that failed (its message).
    failed: Option<String>,
    /// The pull is over: fetches stop, readers fail.
    cancelled: bool,
}

struct Shared {
    blobs: Vec<Blob>,
    state: Mutex<State>,
    cv: Condvar,
    progress: Progress,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("in-flight lock")
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.cv.wait(g).expect("in-flight lock")
    }

    fn bar(&self, st: &mut State, i: usize) -> ProgressBar {
        let b = &self.blobs[i];
        st.slots[i]
            .bar
            .get_or_insert_with(|| self.progress.layer(&b.label, b.size))
            .clone()
    }

    /// The fetch of slot `i` ended.
    fn end(&self, i: usize, r: Result<(), String>) {
        let mut st = self.lock();
        if let Err(e) = &r {
            if !st.cancelled && st.failed.is_none() {
                st.failed = Some(e.clone());
            }
        }
        st.slots[i].end = Some(r);
        self.cv.notify_all();
    }
}

/// Blobs being fetched ahead of the importer (see the module docs); dropping it cancels the
/// fetches still running.
pub struct Inflight<'env> {
    shared: Arc<Shared>,
    /// Fetched ahead into spools (else opened when their turn comes).
    ahead: bool,
    source: &'env Source,
}

impl<'env> Inflight<'env> {
    /// Start fetching `blobs` (in the order the importer will read them) from `source`, on
    /// threads of the scope `s`, into spools under `tmp`, when [`fetch_ahead`] says so for
    /// `transport`; else each is opened when its turn comes.
    pub fn start<'scope>(
        s: &'scope std::thread::Scope<'scope, 'env>,
        source: &'env Source,
        transport: Transport,
        blobs: Vec<Blob>,
        tmp: &'env Path,
        progress: &Progress,
    ) -> Self {
        let ahead = fetch_ahead(transport, source.is_remote());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                slots: blobs.iter().map(|_| Slot::default()).collect(),
                ..Default::default()
            }),
            blobs,
            cv: Condvar::new(),
            progress: progress.clone(),
        });
        if ahead && !shared.blobs.is_empty() {
            let sh = shared.clone();
            s.spawn(move || schedule(s, &sh, source, tmp));
        }
        Inflight {
            shared,
            ahead,
            source,
        }
    }

    /// The blob of the layer at `index` (as in [`Blob::index`]) and its progress bar. Fetched
    /// ahead: a reader of its spool (waiting for bytes still to come), or an error when any
    /// fetch has failed already.
    pub fn open(&self, index: usize) -> Result<(Box<dyn Read + Send>, ProgressBar)> {
        let sh = &self.shared;
        let i = sh
            .blobs
            .iter()
            .position(|b| b.index == index)
            .ok_or_else(|| anyhow!("layer {index} is not to be fetched"))?;
        let b = &sh.blobs[i];
        if !self.ahead {
            let bar = sh.progress.layer(&b.label, b.size);
            let r = self.source.open_blob(&b.digest, b.size)?;
            let r = sh
                .progress
                .track_layer(&bar, r, &b.digest, b.index, b.layers, b.size);
            return Ok((r, bar));
        }
        let mut st = sh.lock();
        if let Some(e) = &st.failed {
            return Err(anyhow!("{e}"));
        }
        let bar = sh.bar(&mut st, i);
        Ok((
            Box::new(SpoolReader {
                shared: sh.clone(),
                slot: i,
                pos: 0,
            }),
            bar,
        ))
    }
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.shared.lock().cancelled = true;
        self.shared.cv.notify_all();
    }
}

/// Start the fetches in order, each when there is [`room`] for its spool.
fn schedule<'scope, 'env>(
    s: &'scope std::thread::Scope<'scope, 'env>,
    sh: &Arc<Shared>,
    source: &'env Source,
    tmp: &'env Path,
) {
    for (i, b) in sh.blobs.iter().enumerate() {
        let mut st = sh.lock();
        while !st.cancelled && !st.slots[i].consumed && !room(st.live, st.live_bytes, b.size) {
            st = sh.wait(st);
        }
        if st.cancelled {
            return;
        }
        if st.slots[i].consumed {
            continue;
        }
        let file = match tempfile::tempfile_in(tmp) {
            Ok(f) => Arc::new(f),
            Err(e) => {
                drop(st);
                sh.end(
                    i,
                    Err(format!(
                        "{}: creating a spool file in {}: {e}",
                        b.name,
                        tmp.display()
                    )),
                );
                continue;
            }
        };
        st.live += 1;
        st.live_bytes += b.size;
        st.slots[i].file = Some(file.clone());
        let bar = sh.bar(&mut st, i);
        drop(st);
        sh.cv.notify_all();
        let sh = sh.clone();
        s.spawn(move || {
            let r = fetch(&sh, i, source, &file, bar);
            sh.end(i, r);
        });
    }
}

/// Fetch blob `i` into `file`, verifying its digest and size.
fn fetch(
    sh: &Shared,
    i: usize,
    source: &Source,
    file: &File,
    bar: ProgressBar,
) -> Result<(), String> {
    let b = &sh.blobs[i];
    let blob = source
        .open_blob(&b.digest, b.size)
        .map_err(|e| format!("{}: {e:#}", b.name))?;
    let blob = sh
        .progress
        .track_layer(&bar, blob, &b.digest, b.index, b.layers, b.size);
    let mut r = DigestReader::new(blob);
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    loop {
        // Never more than the manifest's size (and one byte, to tell a longer blob).
        let want = (b.size + 1 - off).min(CHUNK as u64) as usize;
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{}: fetching: {e}", b.name)),
        };
        file.write_all_at(&buf[..n], off)
            .map_err(|e| format!("{}: writing its spool file: {e}", b.name))?;
        off += n as u64;
        {
            let mut st = sh.lock();
            if st.cancelled || st.slots[i].consumed {
                return Err(format!("{}: fetch cancelled", b.name));
            }
            st.slots[i].written = off;
        }
        sh.cv.notify_all();
        if off > b.size {
            break;
        }
    }
    r.verify(&format!("{} blob", b.name), &b.digest, Some(b.size))
        .map_err(|e| e.to_string())
}

/// Reads a spool as its fetch writes it; gives its room back when dropped.
struct SpoolReader {
    shared: Arc<Shared>,
    slot: usize,
    pos: u64,
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let sh = &self.shared;
        let mut st = sh.lock();
        loop {
            if st.cancelled {
                return Err(io::Error::other("the pull was cancelled"));
            }
            let slot = &st.slots[self.slot];
            if let Some(file) = slot.file.as_ref().filter(|_| self.pos < slot.written) {
                let n = ((slot.written - self.pos) as usize).min(buf.len());
                let file = file.clone();
                drop(st);
                let n = file.read_at(&mut buf[..n], self.pos)?;
                self.pos += n as u64;
                return Ok(n);
            }
            match &slot.end {
                Some(Ok(())) => return Ok(0),
                Some(Err(e)) => return Err(io::Error::other(e.clone())),
                None => st = sh.wait(st),
            }
        }
    }
}

impl Drop for SpoolReader {
    fn drop(&mut self) {
        let sh = &self.shared;
        let mut st = sh.lock();
        let size = sh.blobs[self.slot].size;
        let slot = &mut st.slots[self.slot];
        slot.consumed = true;
        if slot.file.take().is_some() {
            st.live -= 1;
            st.live_bytes -= size;
        }
        drop(st);
        sh.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_registries_are_fetched_ahead() {
        assert!(fetch_ahead(Transport::Registry, true));
        for t in [
            Transport::OciDir,
            Transport::OciArchive,
            Transport::DockerArchive,
            Transport::ContainerStorage,
            Transport::Dir,
        ] {
            assert!(!fetch_ahead(t, true), "{t:?}");
            assert!(!fetch_ahead(t, false), "{t:?}");
        }
    }

    #[test]
    fn room_for_a_spool() {
        let gib = 1u64 << 30;
        // One spool may always exist, however large its blob.
        assert!(room(0, 0, 100 * gib));
        assert!(room(1, gib, gib));
        assert!(room(2, 2 * gib, gib));
        assert!(!room(MAX_SPOOLS, 3, 1), "at most MAX_SPOOLS");
        assert!(!room(1, 3 * gib, 2 * gib), "at most SPOOL_BYTES together");
        assert!(room(1, 3 * gib, gib));
        assert!(!room(1, u64::MAX, 1), "no overflow");
    }
}
