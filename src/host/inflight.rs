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
//! fetches still running; their threads end at their next chunk (a read waiting on a stalled
//! network is not interrupted: the failed pull ends when it returns).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use anyhow::{anyhow, Result};
use indicatif::ProgressBar;

use super::progress::Progress;
use crate::oci::imgref::Transport;
use crate::oci::layout::DigestReader;

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

/// Opens a blob of the image by digest and size, unverified (`fetch::Source::open_blob`).
pub type Opener<'env> = &'env (dyn Fn(&str, u64) -> Result<Box<dyn Read + Send>> + Sync);

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

    /// The fetch of slot `i` ended. Its error stops the pull, unless the pull or the reader
    /// of that blob stopped it (the reader's own error is the one to report).
    fn end(&self, i: usize, r: Result<(), String>) {
        let mut st = self.lock();
        if let Err(e) = &r {
            if !st.cancelled && !st.slots[i].consumed && st.failed.is_none() {
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
    open: Opener<'env>,
}

impl<'env> Inflight<'env> {
    /// Start fetching `blobs` (in the order the importer will read them) with `open`, on
    /// threads of the scope `s`, into spools under `tmp`, when `ahead` ([`fetch_ahead`]);
    /// else each is opened when its turn comes.
    pub fn start<'scope>(
        s: &'scope std::thread::Scope<'scope, 'env>,
        open: Opener<'env>,
        ahead: bool,
        blobs: Vec<Blob>,
        tmp: &'env Path,
        progress: &Progress,
    ) -> Self {
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
            s.spawn(move || schedule(s, &sh, open, tmp));
        }
        Inflight {
            shared,
            ahead,
            open,
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
            let r = (self.open)(&b.digest, b.size)?;
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
    open: Opener<'env>,
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
            let r = fetch(&sh, i, open, &file, bar);
            sh.end(i, r);
        });
    }
}

/// Fetch blob `i` into `file`, verifying its digest and size.
fn fetch(
    sh: &Shared,
    i: usize,
    open: Opener<'_>,
    file: &File,
    bar: ProgressBar,
) -> Result<(), String> {
    let b = &sh.blobs[i];
    let blob = open(&b.digest, b.size).map_err(|e| format!("{}: {e:#}", b.name))?;
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// Blob `i`: 300 kB (more than one chunk) that differ with `i`.
    fn data(i: usize) -> Vec<u8> {
        (0..300_000).map(|n| (n * 7 + i * 13) as u8).collect()
    }

    fn blobs(n: usize) -> Vec<Blob> {
        (1..=n)
            .map(|i| {
                let d = data(i);
                Blob {
                    index: i,
                    layers: n,
                    digest: format!("sha256:{}", hex::encode(crate::ostree::repo::sha256(&d))),
                    size: d.len() as u64,
                    label: format!("layer {i}/{n}"),
                    name: format!("layer {i}/{n} (test)"),
                }
            })
            .collect()
    }

    /// A source whose blob `i` is `data(i)` (`broken`: one byte changed), counting the fetches
    /// that started.
    struct Fake {
        started: AtomicUsize,
        broken: usize,
    }

    impl Fake {
        fn open(&self, digest: &str, _size: u64) -> Result<Box<dyn Read + Send>> {
            let i = (1..=9)
                .find(|i| blobs(*i).last().unwrap().digest == digest)
                .unwrap();
            self.started.fetch_add(1, Ordering::SeqCst);
            let mut d = data(i);
            if i == self.broken {
                d[1000] ^= 1;
            }
            Ok(Box::new(io::Cursor::new(d)))
        }

        /// Wait until `n` fetches have started, at most `secs` (and a moment more, for any
        /// extra to show).
        fn wait_started(&self, n: usize, secs: u64) -> usize {
            let t = Instant::now();
            while self.started.load(Ordering::SeqCst) < n && t.elapsed() < Duration::from_secs(secs)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(100));
            self.started.load(Ordering::SeqCst)
        }
    }

    fn read_all(inflight: &Inflight<'_>, index: usize) -> io::Result<Vec<u8>> {
        let (mut r, _) = inflight.open(index).map_err(io::Error::other)?;
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        Ok(v)
    }

    /// `n` blobs (`broken`: that one corrupted) through an [`Inflight`] (`ahead` or not),
    /// handed to `check` with the fake source and the spool directory.
    fn with_inflight(
        n: usize,
        broken: usize,
        ahead: bool,
        check: impl FnOnce(&Fake, &Inflight<'_>, &Path),
    ) {
        let fake = Fake {
            started: AtomicUsize::new(0),
            broken,
        };
        let tmp = tempfile::tempdir().unwrap();
        let open = |d: &str, size: u64| fake.open(d, size);
        std::thread::scope(|s| {
            let hidden = Progress::hidden();
            let inflight = Inflight::start(s, &open, ahead, blobs(n), tmp.path(), &hidden);
            check(&fake, &inflight, tmp.path());
            // Dropping the Inflight cancels what is left, so the scope ends.
        });
    }

    #[test]
    fn fetches_run_ahead_in_order_within_the_bound() {
        with_inflight(5, 0, true, |fake, inflight, tmp| {
            // Three spools at most, though none is read yet.
            assert_eq!(fake.wait_started(MAX_SPOOLS, 10), MAX_SPOOLS);
            for i in 1..=5 {
                assert_eq!(read_all(inflight, i).unwrap(), data(i), "blob {i}");
            }
            assert_eq!(fake.started.load(Ordering::SeqCst), 5);
            // Spools are unnamed files: nothing is left in tmp.
            assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);
        });
    }

    #[test]
    fn a_failure_is_reported_at_the_next_open() {
        with_inflight(4, 3, true, |fake, inflight, _| {
            assert_eq!(fake.wait_started(MAX_SPOOLS, 10), MAX_SPOOLS);
            // Blob 3 has failed by now: the pull stops at the next blob it opens.
            let e = inflight.open(1).err().expect("blob 3 failed").to_string();
            assert!(
                e.contains("layer 3/4 (test)") && e.contains("digest mismatch"),
                "{e}"
            );
        });
    }

    #[test]
    fn local_sources_are_opened_when_their_turn_comes() {
        with_inflight(3, 0, false, |fake, inflight, _| {
            assert_eq!(fake.wait_started(1, 0), 0);
            assert_eq!(read_all(inflight, 2).unwrap(), data(2));
            assert_eq!(fake.started.load(Ordering::SeqCst), 1);
        });
    }

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
