//! Reading one layer blob: decompress, verify, parse the tar, classify each entry with
//! [`crate::oci::policy`], checksum its content, and hand the results to the writer.
//!
//! Runs on its own thread ([`read_layer`] takes a channel), so decompression, tar parsing and
//! SHA-256 overlap with the repository writes on the importing thread. Memory stays bounded:
//! files up to [`SPILL_THRESHOLD`] travel in memory, at most [`MEMORY_BUDGET`] bytes of them
//! at a time, larger ones are spilled to an unlinked temporary file while being hashed.
//!
//! # Tar entries
//!
//! Owner from the header (PAX `uid`/`gid` when present), mode `st_mode & 07777` (setuid,
//! setgid and sticky kept), extended attributes from PAX `SCHILY.xattr.<name>` records
//! (`security.selinux` is dropped: labels come from the image's policy, never from the tar).
//! Whiteouts become empty regular files under their own name in the layer's tree, as
//! ostree-rs-ext stores them.
//!
//! # Trust
//!
//! The compressed stream is hashed against the manifest's layer digest and size, and the
//! decompressed stream against the config's diff_id; both are read to their end even when
//! the tar ends early. When decompression or parsing fails, the blob digest is checked first,
//! so a corrupted blob is reported as a digest mismatch naming both digests; before that, an
//! error reading the blob itself (a failed fetch, [`crate::host::inflight`]) is reported as it
//! is.

use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};

use super::sparse;
use crate::oci::layer::{LayerReadError, LayerReader};
use crate::oci::layout::OciError;
use crate::oci::limits::TAR_EXTENSION_MAX;
use crate::oci::policy::{
    classify, normalize, owners, pax_records, symlink_target, xattr_name, Disposition, EntryKind,
    Filtered, Rejected,
};
use crate::oci::tarext::ExtensionCap;
use crate::ostree::repo::{content_checksum, file_header, spill, Meta, S_IFDIR, S_IFLNK, S_IFREG};
use crate::ostree::tree::{Csum, WH_OPAQUE, WH_PREFIX};

/// Files larger than this are spilled to a temporary file instead of held in memory.
pub const SPILL_THRESHOLD: u64 = 8 << 20;

/// Why a layer could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The blob or its decompressed stream failed a digest or size check.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// The blob, its decompression or its diff_id failed ([`crate::oci::layer`]).
    #[error(transparent)]
    Layer(#[from] LayerReadError),
    /// Reading the stream or a spill file failed.
    #[error("{what}")]
    Io {
        /// What was being read (the entry's path, or the stream), for the message.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The import policy refused a tar entry.
    #[error("{path:?}: {reason}")]
    Rejected {
        /// The entry's path as the tar gives it.
        path: String,
        /// Why ([`crate::oci::policy`]).
        reason: Rejected,
    },
    /// The other end of the reader/writer pipeline went away (it failed first).
    #[error("the importer stopped")]
    Stopped,
}

/// Bytes of file content held in memory between the reader and the writer, per layer.
pub const MEMORY_BUDGET: u64 = 64 << 20;

/// A counting semaphore over bytes: the reader waits while more than [`MEMORY_BUDGET`] of
/// content is on its way to the writer, so memory does not grow with layer size even when a
/// layer is full of multi-megabyte files.
#[derive(Clone, Default)]
pub struct Budget(Arc<(Mutex<BudgetState>, Condvar)>);

#[derive(Default)]
struct BudgetState {
    /// Bytes taken.
    used: u64,
    /// Readers waiting in [`Budget::acquire`] (for tests to see that one waits).
    waiting: usize,
}

/// Whether `n` more bytes may be taken when `used` are: they fit, or nothing is taken (a single
/// item larger than the budget goes through alone).
fn fits(used: u64, n: u64) -> bool {
    used == 0 || used + n <= MEMORY_BUDGET
}

/// Bytes taken from a [`Budget`]; given back when dropped (after the writer is done).
pub struct Permit {
    budget: Budget,
    n: u64,
}

impl Budget {
    /// Wait until `n` bytes fit (a single item larger than the budget waits for an empty one).
    pub fn acquire(&self, n: u64) -> Permit {
        let (lock, cv) = &*self.0;
        let mut st = lock.lock().expect("budget lock");
        st.waiting += 1;
        while !fits(st.used, n) {
            st = cv.wait(st).expect("budget lock");
        }
        st.waiting -= 1;
        st.used += n;
        Permit {
            budget: self.clone(),
            n,
        }
    }

    /// Take `n` bytes if they fit now, without waiting.
    pub fn try_acquire(&self, n: u64) -> Option<Permit> {
        let mut st = self.0 .0.lock().expect("budget lock");
        fits(st.used, n).then(|| {
            st.used += n;
            Permit {
                budget: self.clone(),
                n,
            }
        })
    }

    /// Readers waiting for bytes to be given back.
    pub fn waiting(&self) -> usize {
        self.0 .0.lock().expect("budget lock").waiting
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let (lock, cv) = &*self.budget.0;
        lock.lock().expect("budget lock").used -= self.n;
        cv.notify_all();
    }
}

/// File content as it travels to the writer.
pub enum Data {
    /// In memory, counted against the layer's [`Budget`] until dropped.
    Mem(Vec<u8>, Option<Permit>),
    /// Larger than [`SPILL_THRESHOLD`]: in an unlinked temporary file, with its length.
    Spilled(std::fs::File, u64),
}

/// One classified tar entry, ready to write.
pub enum Item {
    /// Directory (empty path: the layer root).
    Dir {
        /// Path components below the layer root.
        path: Vec<String>,
        /// Owner, mode and xattrs.
        meta: Meta,
    },
    /// Regular file, symlink or whiteout marker.
    File {
        /// Path components below the layer root.
        path: Vec<String>,
        /// The ostree file header (owner, mode, symlink target, xattrs) the checksum covers.
        header: Vec<u8>,
        /// The content object's checksum (header and data).
        csum: Csum,
        /// The file's bytes (empty for symlinks and markers).
        data: Data,
        /// The entry is a symlink (its target is in `header`).
        symlink: bool,
    },
    /// A hard link to an entry earlier in the same layer.
    Hardlink {
        /// Path components of the link.
        path: Vec<String>,
        /// Path components of the entry it links to.
        target: Vec<String>,
    },
}

/// What one layer held.
#[derive(Debug, Default, Clone, Copy)]
pub struct LayerCounts {
    /// Tar entries read.
    pub entries: u64,
    /// Regular files, symlinks and hard links imported.
    pub files: u64,
    /// Whiteouts and opaque markers.
    pub whiteouts: u64,
    /// Entries the import policy filtered out (see [`crate::oci::policy`]).
    pub filtered: u64,
    /// Compressed and uncompressed sizes.
    pub blob_bytes: u64,
    /// Bytes of the decompressed tar stream.
    pub tar_bytes: u64,
}

fn entry_kind(t: tar::EntryType) -> EntryKind {
    use tar::EntryType as T;
    match t {
        T::Regular | T::Continuous => EntryKind::Regular,
        T::Directory => EntryKind::Directory,
        T::Symlink => EntryKind::Symlink,
        T::Link => EntryKind::Hardlink,
        T::Char => EntryKind::CharDevice,
        T::Block => EntryKind::BlockDevice,
        T::Fifo => EntryKind::Fifo,
        T::XGlobalHeader => EntryKind::PaxGlobalHeader,
        other => EntryKind::Other(other.as_byte()),
    }
}

/// A path from the tar as shown in messages: lossy UTF-8, and a hostile 200 kB path cut to
/// its first 200 characters (with its length).
fn lossy(p: &[u8]) -> String {
    const SHOWN: usize = 200;
    let s = String::from_utf8_lossy(p);
    match s.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], p.len()),
        None => s.into_owned(),
    }
}

fn comps(p: &str) -> Vec<String> {
    if p.is_empty() {
        Vec::new()
    } else {
        p.split('/').map(str::to_string).collect()
    }
}

/// Read and classify one layer (opened with [`crate::oci::fetch::Source::open_layer`]),
/// sending its items to `tx`; tar parsing and content hashing run on the calling thread. The
/// blob is verified before a parse error is reported, the diff_id after.
pub fn read_layer(
    mut layer: LayerReader,
    tx: &SyncSender<Item>,
    spill_dir: &Path,
    on_entry: &dyn Fn(&LayerCounts),
) -> Result<LayerCounts, LayerError> {
    let mut counts = LayerCounts::default();
    let parsed = parse_tar(&mut layer, tx, spill_dir, &mut counts, on_entry);
    let verified = match layer.finish() {
        Err(e) if e.is_blob() => return Err(e.into()),
        v => v,
    };
    parsed?;
    let v = verified?;
    counts.blob_bytes = v.blob_bytes;
    counts.tar_bytes = v.tar_bytes;
    Ok(counts)
}

fn parse_tar(
    stream: &mut impl Read,
    tx: &SyncSender<Item>,
    spill_dir: &Path,
    counts: &mut LayerCounts,
    on_entry: &dyn Fn(&LayerCounts),
) -> Result<(), LayerError> {
    let ioe = |what: String| move |source| LayerError::Io { what, source };
    let budget = Budget::default();
    let mut ar = tar::Archive::new(ExtensionCap::new(stream, TAR_EXTENSION_MAX));
    let send = |item| tx.send(item).map_err(|_| LayerError::Stopped);
    let mut last_path = String::new();
    for entry in ar.entries().map_err(ioe("reading tar".into()))? {
        let mut entry = entry.map_err(ioe(format!("reading tar after {last_path:?}")))?;
        counts.entries += 1;
        let kind = entry_kind(entry.header().entry_type());
        let header_path = entry.path_bytes().into_owned();
        let pax = pax_records(&mut entry).map_err(ioe(lossy(&header_path)))?;
        let sparse = match kind {
            EntryKind::Regular => sparse::from_pax(&pax).map_err(|why| LayerError::Rejected {
                path: lossy(&header_path),
                reason: Rejected::BadSparse(why),
            })?,
            _ => None,
        };
        let raw_path = match sparse.as_ref().and_then(|s| s.name.clone()) {
            Some(name) => name,
            None => header_path,
        };
        last_path = lossy(&raw_path);
        let size = sparse.as_ref().map_or(entry.size(), |s| s.size);
        let disp = classify(&raw_path, kind, size);
        let reject = |reason| LayerError::Rejected {
            path: lossy(&raw_path),
            reason,
        };
        if let Disposition::Filtered(
            Filtered::Volatile
            | Filtered::BuildToolStub
            | Filtered::AufsMetadata
            | Filtered::PaxGlobalHeader,
        ) = disp
        {
            counts.filtered += 1;
            continue;
        }
        let (uid, gid) = owners(&pax, entry.header()).map_err(reject)?;
        let mut meta = Meta {
            uid,
            gid,
            mode: entry.header().mode().map_err(ioe(lossy(&raw_path)))? & 0o7777,
            xattrs: pax
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("SCHILY.xattr.")?, v)))
                .filter(|(name, _)| *name != "security.selinux")
                .map(|(name, v)| Ok((xattr_name(name)?.as_bytes().to_vec(), v.clone())))
                .collect::<Result<_, Rejected>>()
                .map_err(reject)?,
        };
        // The last record of a name counts (PAX), after a stable sort by name.
        meta.xattrs.reverse();
        meta.xattrs.sort_by(|a, b| a.0.cmp(&b.0));
        meta.xattrs.dedup_by(|a, b| a.0 == b.0);
        let path = match disp {
            Disposition::Reject(r) => return Err(reject(r)),
            Disposition::Filtered(_) => unreachable!("filtered above"),
            Disposition::Root => {
                if kind == EntryKind::Directory {
                    meta.mode |= S_IFDIR;
                    send(Item::Dir {
                        path: Vec::new(),
                        meta,
                    })?;
                }
                continue;
            }
            Disposition::Whiteout { dir, name } => {
                counts.whiteouts += 1;
                let mut p = comps(&dir);
                p.push(format!("{WH_PREFIX}{name}"));
                send_marker(p, meta, tx)?;
                continue;
            }
            Disposition::Opaque { dir } => {
                counts.whiteouts += 1;
                let mut p = comps(&dir);
                p.push(WH_OPAQUE.to_string());
                send_marker(p, meta, tx)?;
                continue;
            }
            Disposition::Keep(p) => comps(&p),
        };
        match kind {
            EntryKind::Directory => {
                meta.mode |= S_IFDIR;
                send(Item::Dir { path, meta })?;
            }
            EntryKind::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| reject(Rejected::SymlinkEmpty))?
                    .into_owned();
                let target = symlink_target(&target).map_err(reject)?;
                meta.mode = S_IFLNK | 0o777;
                let header = file_header(&meta, target);
                let csum = content_checksum(&header, &[]);
                counts.files += 1;
                send(Item::File {
                    path,
                    header,
                    csum,
                    data: Data::Mem(Vec::new(), None),
                    symlink: true,
                })?;
            }
            EntryKind::Hardlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| reject(Rejected::Unsupported(kind)))?
                    .into_owned();
                let target = normalize(&target).map_err(reject)?;
                counts.files += 1;
                send(Item::Hardlink {
                    path,
                    target: target.into_iter().map(String::from).collect(),
                })?;
            }
            EntryKind::Regular => {
                meta.mode |= S_IFREG;
                let header = file_header(&meta, "");
                let what = lossy(&raw_path);
                let (csum, data) = match sparse {
                    None => read_content(&mut entry, size, &header, &budget, spill_dir),
                    Some(sp) => {
                        let map = match sp.map {
                            Some(m) => m,
                            None => {
                                sparse::read_map_v1(&mut entry)
                                    .map_err(|why| reject(Rejected::BadSparse(why)))?
                                    .0
                            }
                        };
                        sparse::validate(&map, sp.size)
                            .map_err(|why| reject(Rejected::BadSparse(why)))?;
                        let mut expanded = sparse::Expand::new(&mut entry, map, sp.size);
                        read_content(&mut expanded, size, &header, &budget, spill_dir)
                    }
                }
                .map_err(ioe(what))?;
                counts.files += 1;
                send(Item::File {
                    path,
                    header,
                    csum,
                    data,
                    symlink: false,
                })?;
            }
            other => return Err(reject(Rejected::Unsupported(other))),
        }
        on_entry(counts);
    }
    check_end_of_archive(&mut ar.into_inner())
        .map_err(ioe(format!("end of the tar archive (after {last_path:?})")))
}

/// The tar reader stopped at a zero block (or at the end of the stream). Go's `archive/tar`
/// (podman, buildah, umoci) reads one more block there: the end of the stream or a second
/// zero block ends the archive, anything else is "invalid tar header". A layer whose entries
/// go on after a single zero block is refused the same way rather than cut short.
fn check_end_of_archive(r: &mut impl Read) -> io::Result<()> {
    let mut block = [0u8; 512];
    let mut n = 0;
    while n < block.len() {
        match r.read(&mut block[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if n == 0 || (n == block.len() && block.iter().all(|&b| b == 0)) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "a single zero block is followed by more data: the entries after it would be lost \
         (Go's tar reader, hence podman and umoci, refuses such a layer as \"invalid tar header\"); \
         write the layer again with one tar archive (its end is two zero blocks)",
    ))
}

/// A regular file's bytes, hashed: in memory up to [`SPILL_THRESHOLD`], else spilled.
fn read_content(
    r: &mut dyn Read,
    size: u64,
    header: &[u8],
    budget: &Budget,
    spill_dir: &Path,
) -> io::Result<(Csum, Data)> {
    if size <= SPILL_THRESHOLD {
        let permit = budget.acquire(size);
        let mut buf = Vec::with_capacity(size as usize);
        r.read_to_end(&mut buf)?;
        Ok((content_checksum(header, &buf), Data::Mem(buf, Some(permit))))
    } else {
        let (csum, f, len) = spill(r, header, spill_dir)?;
        Ok((csum, Data::Spilled(f, len)))
    }
}

fn send_marker(path: Vec<String>, mut meta: Meta, tx: &SyncSender<Item>) -> Result<(), LayerError> {
    meta.mode = S_IFREG | (meta.mode & 0o7777);
    meta.xattrs.clear();
    let header = file_header(&meta, "");
    let csum = content_checksum(&header, &[]);
    tx.send(Item::File {
        path,
        header,
        csum,
        data: Data::Mem(Vec::new(), None),
        symlink: false,
    })
    .map_err(|_| LayerError::Stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_fits() {
        assert!(fits(0, MEMORY_BUDGET * 2), "alone, anything goes through");
        assert!(fits(MEMORY_BUDGET - 20, 20));
        assert!(!fits(MEMORY_BUDGET - 10, 20));
        assert!(!fits(1, MEMORY_BUDGET));
    }

    #[test]
    fn budget_blocks_until_released() {
        let b = Budget::default();
        let p1 = b.acquire(MEMORY_BUDGET - 10);
        assert!(b.try_acquire(20).is_none(), "64 MiB are taken");
        let small = b.try_acquire(10).expect("10 bytes still fit");
        drop(small);
        let b2 = b.clone();
        let waiter = std::thread::spawn(move || b2.acquire(20).n);
        // Deterministic: the waiter registers under the lock before it waits, and cannot get
        // through while p1 holds the budget; so once it is counted it is blocked.
        while b.waiting() == 0 {
            assert!(
                !waiter.is_finished(),
                "got 20 bytes while the budget was used up"
            );
            std::thread::yield_now();
        }
        assert!(!waiter.is_finished());
        drop(p1);
        assert_eq!(waiter.join().unwrap(), 20);
        assert_eq!(b.waiting(), 0);
        // An item larger than the whole budget still gets through alone.
        let _big = b.acquire(MEMORY_BUDGET * 2);
        assert!(b.try_acquire(1).is_none());
    }

    /// Files up to 8 MiB stay in memory and count against the budget; larger ones are spilled
    /// to a temporary file. Both give the checksum of the same bytes.
    #[test]
    fn large_files_spill_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let header = b"header".to_vec();
        let budget = Budget::default();
        for size in [SPILL_THRESHOLD, SPILL_THRESHOLD + 1] {
            let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let (csum, data) =
                read_content(&mut &content[..], size, &header, &budget, dir.path()).unwrap();
            assert_eq!(csum, content_checksum(&header, &content), "{size}");
            match data {
                Data::Mem(buf, Some(_permit)) => {
                    assert_eq!(size, SPILL_THRESHOLD, "{size} bytes held in memory");
                    assert_eq!(buf, content);
                    assert!(
                        budget.try_acquire(MEMORY_BUDGET).is_none(),
                        "held bytes count"
                    );
                }
                Data::Spilled(mut f, len) => {
                    assert_eq!(size, SPILL_THRESHOLD + 1, "{size} bytes spilled");
                    assert_eq!(len, size);
                    let mut back = Vec::new();
                    f.read_to_end(&mut back).unwrap();
                    assert_eq!(back, content);
                    assert!(
                        budget.try_acquire(MEMORY_BUDGET).is_some(),
                        "spilled bytes do not count"
                    );
                }
                Data::Mem(_, None) => panic!("in memory without a permit"),
            }
        }
    }
}
