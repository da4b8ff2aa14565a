//! Reading tar streams in ostree-rs-ext's format back into a repository, object by object,
//! keeping every checksum.
//!
//! Both of ostree-rs-ext's tar formats are read, with no option: format 1 (see the module
//! documentation of [`super`]) and the older format 0, told apart entry by entry by the names
//! that carry the extended attributes (`classify`, the path policy).
//!
//! # Format 0
//!
//! Written by ostree-rs-ext's first exporter and later by `tar::export_commit` with
//! `ExportOptions { format_version: 0 }`, the default there. ostree-ext 0.15 no longer writes
//! it; its importer still reads it, except content objects without xattrs. Old tarballs and
//! single-layer images use it. Source:
//! ostree-rs-ext `lib/src/tar/export.rs` (`v0_xattrs_path`, `v0_xattrs_object_path`,
//! `filter_mode`, `write_repo_structure`) and ostree-ext 0.15.3 `src/tar/import.rs`
//! (`process_xattr_ref`, `process_split_xattrs_content`). It differs from format 1 in:
//!
//! ```text
//! ./usr/bin/foo …                 checkout paths were built with a leading ./ (tar-rs drops it
//!                                 except in GNU long names)
//! sysroot/config                  the repository config (format 1: sysroot/ostree/repo/config)
//! sysroot/ostree/repo/xattrs/     an extra directory, holding:
//! sysroot/ostree/repo/xattrs/HASH       an object's xattrs, serialised a(ayay), named by their
//!                                       SHA-256 (written once per stream)
//! …/objects/XX/YYYY.file.xattrs   hard link to that xattrs/HASH: binds it to content object
//!                                 XXYYYY, which follows; only for objects that have xattrs
//! …/objects/XX/YYYY.file          as in format 1, but the tar mode has the file type bits too
//!                                 (0o100644, 0o120777; directories 0o40755)
//! ```
//!
//! Commit, detached metadata, dirtree and dirmeta objects are named and ordered as in format 1.
//! A content object without a `.file.xattrs` link has no xattrs.
//!
//! # Security
//!
//! The stream is untrusted. Only entries under `sysroot/ostree/repo/objects/` (and, for format
//! 0, `sysroot/ostree/repo/xattrs/`) are read; the checkout paths beside them are ignored (they
//! are hard links to the same objects). Every object is checked against the checksum its name
//! claims before it is written: content objects are hashed here (header as ostree serialises
//! it, xattrs included, then the bytes), xattrs objects are hashed here, metadata objects
//! are checked by libostree. Sizes of metadata and xattrs objects are bounded. When a remote
//! is given, the commit and its detached metadata (the first two objects of the commit
//! layer) are verified against the remote's keys before anything is written. The caller
//! holds the transaction: an error leaves nothing behind once it is aborted.
//!
//! The exporter's limits ([`crate::oci::limits`]) apply here too, as the checksums only
//! prove that an object is what its name says, not that ostree can check it out: owner ids
//! out of range and symlink targets that are empty, too long or hold a NUL are refused
//! ([`crate::oci::policy::owner_id`], [`crate::oci::policy::symlink_target`]), and before
//! the commit's tree is walked, `longest_path` refuses names over 255 bytes and paths over
//! 4095 (which also bounds the walk's recursion).

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;

use ostree::gio;
use ostree::glib::{self, Variant};

use crate::oci::limits::{NAME_MAX, PATH_MAX, TAR_EXTENSION_MAX};
use crate::oci::policy::Rejected;
use crate::oci::tarext::ExtensionCap;
use crate::ostree::csum;
use crate::ostree::gvariant::{self, ParsedTree, Xattrs};
use crate::ostree::repo::{self, Csum, Meta, ObjectWriter, RepoError, S_IFLNK, S_IFREG};

use super::write::{sha256_hex, REPO_DIR};
use crate::ostree::commit::{self, Commit, CommitError};

/// Largest commit, dirtree, dirmeta or detached-metadata object accepted (as libostree).
const MAX_METADATA_SIZE: u64 = 10 << 20;
/// Largest xattrs object accepted.
const MAX_XATTRS_SIZE: u64 = 1 << 20;
/// Regular files above this size are spilled to a temporary file while they are hashed.
const IN_MEMORY_MAX: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
/// Why a tar stream could not be imported.
pub enum ImportError {
    #[error("reading the tar stream: {0}")]
    /// Reading the stream failed.
    Io(#[from] io::Error),
    #[error("ostree: {context}: {source}")]
    /// libostree failed.
    Ostree {
        /// What was being done.
        context: String,
        /// libostree's error.
        source: glib::Error,
    },
    #[error(transparent)]
    /// The repository could not be read.
    Repo(#[from] RepoError),
    #[error(transparent)]
    /// A commit could not be read.
    Commit(#[from] CommitError),
    #[error("{path}: {why}")]
    /// An entry is not what the format allows.
    Format {
        /// The entry's path.
        path: String,
        /// What is wrong.
        why: String,
    },
    #[error(
        "{path}: checksum mismatch: the stream calls it {expected}, its content hashes to {actual}"
    )]
    /// An object does not hash to its name.
    Checksum {
        /// The entry's path.
        path: String,
        /// The checksum its name says.
        expected: String,
        /// What its content hashes to.
        actual: String,
    },
    #[error("no commit object in the stream")]
    /// The stream holds no commit.
    NoCommit,
    #[error("commit {commit} has no detached signature, and remote {remote:?} requires one; nothing was imported")]
    /// `--remote` was given and the commit is not signed.
    MissingSignature {
        /// The commit.
        commit: String,
        /// The remote whose keys were to verify it.
        remote: String,
    },
    #[error("commit {commit}: signature verification against remote {remote:?} failed: {reason}; nothing was imported")]
    /// The commit's signature does not verify.
    BadSignature {
        /// The commit.
        commit: String,
        /// The remote whose keys were used.
        remote: String,
        /// Why it fails.
        reason: String,
    },
    #[error("commit {commit} is incomplete: {what} is missing from every layer")]
    /// The commit's tree references objects the stream lacks.
    Incomplete {
        /// The commit.
        commit: String,
        /// What is missing.
        what: String,
    },
}

fn format_err(path: &str, why: impl Into<String>) -> ImportError {
    ImportError::Format {
        path: path.to_string(),
        why: why.into(),
    }
}

fn octx(context: impl Into<String>) -> impl FnOnce(glib::Error) -> ImportError {
    let context = context.into();
    move |source| ImportError::Ostree { context, source }
}

/// Counts of what was read.
#[derive(Debug, Default, Clone, Copy)]
pub struct ImportStats {
    /// Content objects written.
    pub content: u64,
    /// Their bytes.
    pub content_bytes: u64,
    /// Metadata objects written.
    pub metadata: u64,
}

/// Imports the layers of one commit into a repository (inside the caller's transaction).
pub struct Importer<'r> {
    repo: &'r ostree::Repo,
    w: ObjectWriter<'r>,
    remote: Option<String>,
    spill_dir: PathBuf,
    /// xattrs objects by their checksum, parsed.
    xattrs: HashMap<String, Xattrs>,
    /// The xattrs announced for the next content object: (object, xattrs checksum).
    next_xattrs: Option<(String, String)>,
    /// The commit read but not yet written: waiting to see whether detached metadata follows.
    pending: Option<(String, Vec<u8>)>,
    commit: Option<String>,
    /// Counts so far.
    pub stats: ImportStats,
}

/// The kinds of object entry, by the suffix of their name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectKind {
    Commit,
    CommitMeta,
    DirTree,
    DirMeta,
    /// A content object (regular file or symlink).
    File,
    /// Format 1: `.file-xattrs`, an xattrs object named by its own SHA-256.
    Xattrs,
    /// Format 1: `.file-xattrs-link`, binding a `.file-xattrs` to the content object named.
    XattrsLink,
    /// Format 0: `.file.xattrs`, a hard link to `xattrs/HASH` for the content object named.
    XattrsLinkV0,
}

impl ObjectKind {
    fn from_suffix(suffix: &str) -> Option<Self> {
        Some(match suffix {
            "commit" => Self::Commit,
            "commitmeta" => Self::CommitMeta,
            "dirtree" => Self::DirTree,
            "dirmeta" => Self::DirMeta,
            "file" => Self::File,
            "file-xattrs" => Self::Xattrs,
            "file-xattrs-link" => Self::XattrsLink,
            "file.xattrs" => Self::XattrsLinkV0,
            _ => return None,
        })
    }
}

/// An entry of the stream that the importer reads.
#[derive(Debug, PartialEq, Eq)]
enum RepoEntry {
    /// `sysroot/ostree/repo/objects/XX/YYYY.SUFFIX`: object `XXYYYY`.
    Object { csum: String, kind: ObjectKind },
    /// Format 0: `sysroot/ostree/repo/xattrs/HASH`, an xattrs object named by its SHA-256.
    XattrsV0 { csum: String },
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What an object entry's name says: checksum and suffix.
fn parse_object_path(rel: &str) -> Option<(String, &str)> {
    let (dir, file) = rel.split_once('/')?;
    let (rest, suffix) = file.split_once('.')?;
    let csum = format!("{dir}{rest}");
    (dir.len() == 2 && is_sha256_hex(&csum)).then_some((csum, suffix))
}

/// The path policy: which entry (by its name, with or without a leading `./`) is read as
/// what. `Ok(None)` for everything outside the repository's objects and xattrs (checkout
/// paths, `config`, `refs/`): those are ignored. A name inside them that is not an object
/// of a known kind is an error.
fn classify(path: &str) -> Result<Option<RepoEntry>, String> {
    let p = path.trim_start_matches("./");
    let Some(repo_rel) = p.strip_prefix(REPO_DIR).and_then(|r| r.strip_prefix('/')) else {
        return Ok(None);
    };
    if let Some(rel) = repo_rel.strip_prefix("objects/") {
        let (csum, suffix) = parse_object_path(rel).ok_or("not an object name")?;
        let kind = ObjectKind::from_suffix(suffix)
            .ok_or_else(|| format!("unknown object type {suffix:?}"))?;
        return Ok(Some(RepoEntry::Object { csum, kind }));
    }
    if let Some(name) = repo_rel.strip_prefix("xattrs/") {
        if !is_sha256_hex(name) {
            return Err("not an xattrs object name".into());
        }
        return Ok(Some(RepoEntry::XattrsV0 { csum: name.into() }));
    }
    Ok(None)
}

/// The link target of a hard-link entry, as text.
fn link_target<R: Read>(e: &tar::Entry<'_, R>) -> String {
    e.link_name_bytes()
        .map(|t| String::from_utf8_lossy(&t).into_owned())
        .unwrap_or_default()
}

fn read_bounded(
    e: &mut impl Read,
    size: u64,
    max: u64,
    path: &str,
) -> Result<Vec<u8>, ImportError> {
    if size > max {
        return Err(format_err(
            path,
            format!("{size} bytes, more than the {max} allowed"),
        ));
    }
    let mut buf = Vec::with_capacity(size as usize);
    e.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

impl<'r> Importer<'r> {
    /// `remote`: verify the commit's signature against this remote before writing it.
    pub fn new(repo: &'r ostree::Repo, remote: Option<String>) -> Result<Self, ImportError> {
        let spill_dir = crate::ostree::repo::repo_path(repo)
            .map(|p| p.join("tmp"))
            .unwrap_or_else(|_| std::env::temp_dir());
        Ok(Importer {
            repo,
            w: ObjectWriter::new(repo),
            remote,
            spill_dir,
            xattrs: HashMap::new(),
            next_xattrs: None,
            pending: None,
            commit: None,
            stats: ImportStats::default(),
        })
    }

    /// Read one tar stream (format 0 or 1). The first stream must be the commit layer (its
    /// first object is the commit); later ones hold content objects only.
    pub fn import_layer(&mut self, r: impl Read) -> Result<(), ImportError> {
        let first = self.commit.is_none();
        let mut ar = tar::Archive::new(ExtensionCap::new(r, TAR_EXTENSION_MAX));
        let mut seen_object = false;
        for e in ar.entries()? {
            let mut e = e?;
            if e.header().entry_type() == tar::EntryType::Directory {
                continue;
            }
            let raw = e.path_bytes().into_owned();
            let path = String::from_utf8_lossy(&raw).into_owned();
            let Some(entry) = classify(&path).map_err(|why| format_err(&path, why))? else {
                continue;
            };
            if let Some((pc, pbytes)) = self.pending.take() {
                if let RepoEntry::Object {
                    csum,
                    kind: ObjectKind::CommitMeta,
                } = &entry
                {
                    if *csum == pc {
                        let size = e.header().size()?;
                        let d = read_bounded(&mut e, size, MAX_METADATA_SIZE, &path)?;
                        self.write_commit(&pc, pbytes, Some(d))?;
                        continue;
                    }
                }
                self.write_commit(&pc, pbytes, None)?;
            }
            let is_commit = matches!(
                entry,
                RepoEntry::Object {
                    kind: ObjectKind::Commit,
                    ..
                }
            );
            if first && !seen_object && !is_commit {
                return Err(format_err(
                    &path,
                    "the first object of the commit layer must be the commit",
                ));
            }
            seen_object = true;
            match entry {
                RepoEntry::Object { csum, kind } => self.object(&mut e, &path, csum, kind)?,
                RepoEntry::XattrsV0 { csum } => self.xattrs_object(&mut e, &path, csum)?,
            }
        }
        if let Some((pc, pbytes)) = self.pending.take() {
            self.write_commit(&pc, pbytes, None)?;
        }
        if self.commit.is_none() {
            return Err(ImportError::NoCommit);
        }
        Ok(())
    }

    fn object<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        path: &str,
        csum: String,
        kind: ObjectKind,
    ) -> Result<(), ImportError> {
        match kind {
            ObjectKind::Commit => {
                if self.commit.is_some() {
                    return Err(format_err(path, "a second commit object"));
                }
                let size = e.header().size()?;
                self.pending = Some((csum, read_bounded(e, size, MAX_METADATA_SIZE, path)?));
            }
            ObjectKind::CommitMeta => {
                return Err(format_err(
                    path,
                    "detached metadata not right after its commit",
                ))
            }
            ObjectKind::DirTree | ObjectKind::DirMeta => self.metadata(e, path, csum, kind)?,
            ObjectKind::Xattrs => self.xattrs_object(e, path, csum)?,
            ObjectKind::XattrsLink => self.xattrs_link(e, path, csum)?,
            ObjectKind::XattrsLinkV0 => self.xattrs_link_v0(e, path, csum)?,
            ObjectKind::File => {
                let xattrs = match self.next_xattrs.take() {
                    Some((f, x)) if f == csum => self.xattrs.get(&x).cloned().ok_or_else(|| {
                        format_err(path, format!("xattrs object {x} not in this layer"))
                    })?,
                    Some((f, _)) => {
                        return Err(format_err(path, format!("follows the xattrs link of {f}")))
                    }
                    // No link: no xattrs (the checksum check catches a lie).
                    None => Vec::new(),
                };
                self.content(e, path, &csum, xattrs)?;
            }
        }
        Ok(())
    }

    /// A dirtree or dirmeta object.
    fn metadata<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        path: &str,
        csum: String,
        kind: ObjectKind,
    ) -> Result<(), ImportError> {
        let size = e.header().size()?;
        let data = read_bounded(e, size, MAX_METADATA_SIZE, path)?;
        let (objtype, ty) = if kind == ObjectKind::DirTree {
            (ostree::ObjectType::DirTree, "(a(say)a(sayay))")
        } else {
            (ostree::ObjectType::DirMeta, "(uuua(ayay))")
        };
        let v = Variant::from_bytes_with_type(
            &glib::Bytes::from_owned(data),
            glib::VariantTy::new(ty).expect("valid type"),
        );
        let actual = sha256_hex(&v.data_as_bytes());
        if actual != csum {
            return Err(ImportError::Checksum {
                path: path.into(),
                expected: csum,
                actual,
            });
        }
        self.repo
            .write_metadata(objtype, Some(&csum), &v, gio::Cancellable::NONE)
            .map_err(octx(format!("writing {path}")))?;
        self.stats.metadata += 1;
        Ok(())
    }

    /// An xattrs object named by its SHA-256: `.file-xattrs` (format 1) or `xattrs/HASH`
    /// (format 0). Checked and kept for the content objects that link to it.
    fn xattrs_object<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        path: &str,
        csum: String,
    ) -> Result<(), ImportError> {
        let kind = e.header().entry_type();
        if kind != tar::EntryType::Regular {
            return Err(format_err(
                path,
                format!("xattrs object of type {kind:?}, not a regular file"),
            ));
        }
        let actual = self.read_xattrs(e, path)?;
        if actual != csum {
            return Err(ImportError::Checksum {
                path: path.into(),
                expected: csum,
                actual,
            });
        }
        Ok(())
    }

    /// Read a serialized xattrs object (size bounded), keep it, and return its SHA-256.
    fn read_xattrs<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        path: &str,
    ) -> Result<String, ImportError> {
        let size = e.header().size()?;
        let data = read_bounded(e, size, MAX_XATTRS_SIZE, path)?;
        let mut x =
            gvariant::parse_xattrs(&data).ok_or_else(|| format_err(path, "malformed xattrs"))?;
        x.sort();
        let c = sha256_hex(&data);
        self.xattrs.insert(c.clone(), x);
        Ok(c)
    }

    /// Format 1: `.file-xattrs-link` names the xattrs of content object `csum`, which follows.
    fn xattrs_link<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        path: &str,
        csum: String,
    ) -> Result<(), ImportError> {
        let xcsum = match e.header().entry_type() {
            tar::EntryType::Link => match classify(&link_target(e)) {
                Ok(Some(RepoEntry::Object {
                    csum: x,
                    kind: ObjectKind::Xattrs,
                })) => x,
                _ => return Err(format_err(path, "link to something not an xattrs object")),
            },
            // Written as a copy when a file system's link limit was reached.
            tar::EntryType::Regular => self.read_xattrs(e, path)?,
            t => return Err(format_err(path, format!("unexpected entry type {t:?}"))),
        };
        self.next_xattrs = Some((csum, xcsum));
        Ok(())
    }

    /// Format 0: `.file.xattrs` is a hard link to `xattrs/HASH`, naming the xattrs of content
    /// object `csum`, which follows. Only a hard link is accepted (as by ostree-rs-ext).
    fn xattrs_link_v0<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        path: &str,
        csum: String,
    ) -> Result<(), ImportError> {
        let kind = e.header().entry_type();
        if kind != tar::EntryType::Link {
            return Err(format_err(
                path,
                format!("format-0 xattrs link of type {kind:?}, not a hard link"),
            ));
        }
        let xcsum = match classify(&link_target(e)) {
            Ok(Some(RepoEntry::XattrsV0 { csum: x })) => x,
            _ => {
                return Err(format_err(
                    path,
                    format!("link to something not under {REPO_DIR}/xattrs/"),
                ))
            }
        };
        self.next_xattrs = Some((csum, xcsum));
        Ok(())
    }

    fn content<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        path: &str,
        csum: &str,
        xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), ImportError> {
        let (uid, gid) =
            crate::oci::policy::entry_owner(e).map_err(|r| format_err(path, r.to_string()))?;
        let h = e.header();
        let perms = h.mode()? & 0o7777;
        let size = h.size()?;
        let kind = h.entry_type();
        let expected: crate::ostree::tree::Csum = hex::decode(csum)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| format_err(path, "bad checksum"))?;
        let check = |actual: crate::ostree::tree::Csum| -> Result<(), ImportError> {
            if actual != expected {
                return Err(ImportError::Checksum {
                    path: path.into(),
                    expected: csum.into(),
                    actual: hex::encode(actual),
                });
            }
            Ok(())
        };
        match kind {
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| format_err(path, "symlink without target"))?;
                let target = crate::oci::policy::symlink_target(&target)
                    .map_err(|r| format_err(path, r.to_string()))?
                    .to_string();
                let meta = Meta {
                    uid,
                    gid,
                    mode: S_IFLNK | 0o777,
                    xattrs,
                };
                let header = repo::file_header(&meta, &target);
                check(repo::content_checksum(&header, &[]))?;
                self.w
                    .write_content_stream(&expected, &header, io::empty(), 0)?;
            }
            tar::EntryType::Regular => {
                let meta = Meta {
                    uid,
                    gid,
                    mode: S_IFREG | perms,
                    xattrs,
                };
                let header = repo::file_header(&meta, "");
                if size <= IN_MEMORY_MAX {
                    let mut buf = Vec::with_capacity(size as usize);
                    e.read_to_end(&mut buf)?;
                    check(repo::content_checksum(&header, &buf))?;
                    let len = buf.len() as u64;
                    self.w
                        .write_content_stream(&expected, &header, io::Cursor::new(buf), len)?;
                } else {
                    let (csum, f, _) = repo::spill(e, &header, &self.spill_dir)?;
                    check(csum)?;
                    self.w.write_content_stream(&expected, &header, f, size)?;
                }
                self.stats.content_bytes += size;
            }
            t => return Err(format_err(path, format!("content object of type {t:?}"))),
        }
        self.stats.content += 1;
        Ok(())
    }

    fn write_commit(
        &mut self,
        csum: &str,
        data: Vec<u8>,
        detached: Option<Vec<u8>>,
    ) -> Result<(), ImportError> {
        let path = format!("{csum}.commit");
        let actual = sha256_hex(&data);
        if actual != csum {
            return Err(ImportError::Checksum {
                path,
                expected: csum.into(),
                actual,
            });
        }
        let bytes = glib::Bytes::from_owned(data);
        let detached = detached.map(glib::Bytes::from_owned);
        if let Some(remote) = &self.remote {
            let d = detached
                .as_ref()
                .ok_or_else(|| ImportError::MissingSignature {
                    commit: csum.into(),
                    remote: remote.clone(),
                })?;
            self.repo
                .signature_verify_commit_data(remote, &bytes, d, ostree::RepoVerifyFlags::empty())
                .map_err(|e| ImportError::BadSignature {
                    commit: csum.into(),
                    remote: remote.clone(),
                    reason: e.to_string(),
                })?;
        }
        let ty = glib::VariantTy::new("(a{sv}aya(say)sstayay)").expect("valid type");
        let v = Variant::from_bytes_with_type(&bytes, ty);
        self.repo
            .write_metadata(
                ostree::ObjectType::Commit,
                Some(csum),
                &v,
                gio::Cancellable::NONE,
            )
            .map_err(octx(format!("writing commit {csum}")))?;
        if let Some(d) = detached {
            let v = Variant::from_bytes_with_type(&d, glib::VariantTy::VARDICT);
            self.repo
                .write_commit_detached_metadata(csum, Some(&v), gio::Cancellable::NONE)
                .map_err(octx(format!("writing detached metadata of {csum}")))?;
        }
        self.stats.metadata += 1;
        self.commit = Some(csum.to_string());
        Ok(())
    }

    /// Check that every object of the commit arrived; returns the commit checksum.
    pub fn finish(self) -> Result<String, ImportError> {
        let c = self.commit.ok_or(ImportError::NoCommit)?;
        let incomplete = |what: String| ImportError::Incomplete {
            commit: c.clone(),
            what,
        };
        let commit = Commit::load(self.repo, &c)?;
        longest_path(&commit.root_tree, &mut |t| {
            commit::read_dirtree(self.repo, t).map_err(|e| match e {
                RepoError::Malformed { csum, .. } => format_err(&csum, "malformed dirtree object"),
                e => incomplete(format!("dirtree {}: {e}", csum::hex(t))),
            })
        })?;
        let walk = commit::walk(self.repo, &commit).map_err(|e| incomplete(e.to_string()))?;
        let has = |kind, c: &Csum, what: &str| -> Result<(), ImportError> {
            let hex = csum::hex(c);
            let have = self
                .repo
                .has_object(kind, &hex, gio::Cancellable::NONE)
                .map_err(octx(format!("looking for {what} {hex}")))?;
            if have {
                Ok(())
            } else {
                Err(incomplete(format!("{what} {hex}")))
            }
        };
        for m in &walk.dirmetas {
            has(ostree::ObjectType::DirMeta, m, "dirmeta")?;
        }
        for (f, paths) in &walk.content {
            has(ostree::ObjectType::File, f, "content object").map_err(|e| match e {
                ImportError::Incomplete { commit, what } => ImportError::Incomplete {
                    commit,
                    what: format!("{what} (/{})", paths[0]),
                },
                e => e,
            })?;
        }
        Ok(c)
    }
}

/// The longest path in the tree below `root`, in bytes as `/a/b`, each dirtree read once
/// through `load` (iteratively: a hostile commit can be 20,000 levels deep, or list the same
/// subtree many times). Refuses a name longer than [`NAME_MAX`] or a path longer than
/// [`PATH_MAX`], naming the dirtree and the name.
fn longest_path(
    root: &Csum,
    load: &mut dyn FnMut(&Csum) -> Result<ParsedTree, ImportError>,
) -> Result<usize, ImportError> {
    let too_long =
        |tree: &Csum, what: String| format_err(&format!("dirtree {}", hex::encode(tree)), what);
    // Longest path below each finished dirtree (its own name not included).
    let mut below: HashMap<Csum, usize> = HashMap::new();
    // Dirtrees being visited, with the subdirectories still to finish.
    let mut stack: Vec<(Csum, ParsedTree)> = vec![(*root, load(root)?)];
    while let Some((tree, (files, dirs))) = stack.last() {
        if let Some((_, child, _)) = dirs.iter().find(|(_, c, _)| !below.contains_key(c)) {
            // Each level is at least two bytes ("/a").
            if stack.len() * 2 > PATH_MAX {
                return Err(too_long(
                    tree,
                    format!("more than {} levels deep", PATH_MAX / 2),
                ));
            }
            let child = *child;
            let parsed = load(&child)?;
            stack.push((child, parsed));
            continue;
        }
        let mut longest = 0;
        for (name, _) in files {
            longest = longest.max(1 + name.len());
        }
        for (name, child, _) in dirs {
            longest = longest.max(1 + name.len() + below[child]);
        }
        if let Some(name) = files
            .iter()
            .map(|(n, _)| n)
            .chain(dirs.iter().map(|(n, _, _)| n))
            .find(|n| n.len() > NAME_MAX)
        {
            return Err(too_long(
                tree,
                Rejected::NameTooLong(name.len()).to_string(),
            ));
        }
        if longest > PATH_MAX {
            return Err(too_long(tree, Rejected::PathTooLong(longest).to_string()));
        }
        let tree = *tree;
        below.insert(tree, longest);
        stack.pop();
    }
    Ok(below[root])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_path_is_bounded_and_iterative() {
        let t = |n: u8| [n; 32];
        let m = [0xdd; 32];
        // 0: { a/ -> 1, b/ -> 1, f }, 1: { longname } ; a chain 10 -> 11 -> … deep.
        let mut trees: HashMap<Csum, ParsedTree> = HashMap::new();
        trees.insert(
            t(0),
            (
                vec![("f".into(), t(99))],
                vec![("a".into(), t(1), m), ("b".into(), t(1), m)],
            ),
        );
        trees.insert(t(1), (vec![("n".repeat(40), t(99))], vec![]));
        let mut loads = 0;
        let mut load = |c: &Csum| {
            loads += 1;
            Ok(trees[c].clone())
        };
        assert_eq!(longest_path(&t(0), &mut load).unwrap(), "/a/".len() + 40);
        assert_eq!(loads, 2, "a subtree listed twice is read once");
        // Too long a name.
        let mut trees2 = trees.clone();
        trees2.insert(t(1), (vec![("n".repeat(256), t(99))], vec![]));
        let e = longest_path(&t(0), &mut |c| Ok(trees2[c].clone())).unwrap_err();
        assert!(e.to_string().contains("NAME_MAX"), "{e}");
        // 100,000 levels, each a distinct dirtree: refused, no stack overflow.
        let deep = |i: u32| {
            let mut c = [0u8; 32];
            c[..4].copy_from_slice(&i.to_be_bytes());
            c[31] = 1;
            c
        };
        let e = longest_path(&deep(0), &mut |c| {
            let i = u32::from_be_bytes(c[..4].try_into().unwrap());
            Ok((vec![], vec![("a".into(), deep(i + 1), m)]))
        })
        .unwrap_err();
        assert!(e.to_string().contains("levels deep"), "{e}");
        // 2,000 levels of "/a" and a file: 4,002 bytes, accepted.
        let n = longest_path(&deep(0), &mut |c| {
            let i = u32::from_be_bytes(c[..4].try_into().unwrap());
            Ok(if i == 2000 {
                (vec![("f".into(), t(99))], vec![])
            } else {
                (vec![], vec![("a".into(), deep(i + 1), m)])
            })
        })
        .unwrap();
        assert_eq!(n, 4002);
    }

    #[test]
    fn object_names() {
        let c = "ab".to_string() + &"c".repeat(62);
        let rel = format!("ab/{}.file-xattrs-link", "c".repeat(62));
        assert_eq!(parse_object_path(&rel), Some((c, "file-xattrs-link")));
        assert_eq!(parse_object_path("ab/short.file"), None);
        assert_eq!(
            parse_object_path(&format!("AB/{}.file", "c".repeat(62))),
            None
        );
        assert_eq!(
            parse_object_path(&format!("../{}.file", "c".repeat(62))),
            None
        );
    }

    #[test]
    fn path_policy() {
        let c = "ab".to_string() + &"c".repeat(62);
        let obj = |kind| {
            Ok(Some(RepoEntry::Object {
                csum: c.clone(),
                kind,
            }))
        };
        let o =
            |suffix: &str| format!("sysroot/ostree/repo/objects/ab/{}.{suffix}", "c".repeat(62));
        // (path, expected)
        let table: Vec<(String, Result<Option<RepoEntry>, String>)> = vec![
            (o("commit"), obj(ObjectKind::Commit)),
            (o("commitmeta"), obj(ObjectKind::CommitMeta)),
            (o("dirtree"), obj(ObjectKind::DirTree)),
            (o("dirmeta"), obj(ObjectKind::DirMeta)),
            (o("file"), obj(ObjectKind::File)),
            (o("file-xattrs"), obj(ObjectKind::Xattrs)),
            (o("file-xattrs-link"), obj(ObjectKind::XattrsLink)),
            // Format 0.
            (o("file.xattrs"), obj(ObjectKind::XattrsLinkV0)),
            (
                format!("./{}", o("file.xattrs")),
                obj(ObjectKind::XattrsLinkV0),
            ),
            (
                format!("sysroot/ostree/repo/xattrs/{c}"),
                Ok(Some(RepoEntry::XattrsV0 { csum: c.clone() })),
            ),
            (
                format!("./sysroot/ostree/repo/xattrs/{c}"),
                Ok(Some(RepoEntry::XattrsV0 { csum: c.clone() })),
            ),
            // Ignored: checkout paths, config (both places), refs, look-alikes outside the repo.
            ("usr/bin/foo".into(), Ok(None)),
            ("./usr/bin/foo".into(), Ok(None)),
            ("./".into(), Ok(None)),
            ("sysroot/config".into(), Ok(None)),
            ("sysroot/ostree/repo/config".into(), Ok(None)),
            ("sysroot/ostree/repo/refs/heads/x".into(), Ok(None)),
            ("sysroot/ostree/repository/objects/x".into(), Ok(None)),
            (format!("usr/{}", o("file")), Ok(None)),
            (format!("../{}", o("file")), Ok(None)),
            // Errors inside objects/ and xattrs/.
            (
                o("file.other"),
                Err("unknown object type \"file.other\"".into()),
            ),
            (o("filez"), Err("unknown object type \"filez\"".into())),
            (
                "sysroot/ostree/repo/objects/ab/short.file".into(),
                Err("not an object name".into()),
            ),
            (
                format!("sysroot/ostree/repo/objects/../{}.file", "c".repeat(62)),
                Err("not an object name".into()),
            ),
            (
                "sysroot/ostree/repo/xattrs/short".into(),
                Err("not an xattrs object name".into()),
            ),
            (
                format!("sysroot/ostree/repo/xattrs/{}", c.to_uppercase()),
                Err("not an xattrs object name".into()),
            ),
            (
                format!("sysroot/ostree/repo/xattrs/{c}/x"),
                Err("not an xattrs object name".into()),
            ),
        ];
        for (path, want) in table {
            assert_eq!(classify(&path), want, "{path}");
        }
    }

    /// An extension header over [`TAR_EXTENSION_MAX`] is refused at its header block: the
    /// 2 GiB it declares are never read.
    #[test]
    fn huge_extension_headers_are_refused_before_they_are_read() {
        let d = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("ostree")
            .arg(format!("--repo={}", d.path().display()))
            .args(["init", "--mode=archive"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let repo = crate::ostree::repo::open_repo(d.path()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_path("PaxHeaders.0/sysroot/ostree/repo/objects/aa/bb.commit")
            .unwrap();
        h.set_size(2 << 30);
        h.set_cksum();
        let mut imp = Importer::new(&repo, None).unwrap();
        match imp.import_layer(h.as_bytes().as_slice()) {
            Err(ImportError::Io(e)) => {
                let t = crate::oci::tarext::too_large(&e).expect("the cap's error");
                assert_eq!((t.size, t.limit), (2 << 30, TAR_EXTENSION_MAX));
                assert!(e.to_string().contains("PaxHeaders.0/sysroot"), "{e}");
            }
            other => panic!("not refused by the cap: {other:?}"),
        }
    }

    /// A content object over 64 MiB goes through the spill path (a temporary file): it arrives
    /// whole, and a byte changed on the way is caught by its checksum there too.
    #[test]
    fn objects_over_64_mib_are_spilled_and_checked() {
        use crate::ostree::repo::Txn;
        let d = tempfile::tempdir().unwrap();
        let ostree = |args: &[&str]| {
            let out = std::process::Command::new("ostree")
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "ostree {args:?}: {out:?}");
            out.stdout
        };
        let (src, dst, tree) = (
            d.path().join("src"),
            d.path().join("dst"),
            d.path().join("t"),
        );
        std::fs::create_dir_all(tree.join("usr")).unwrap();
        let big: Vec<u8> = (0..IN_MEMORY_MAX + 1).map(|i| (i % 251) as u8).collect();
        std::fs::write(tree.join("usr/big"), &big).unwrap();
        for r in [&src, &dst] {
            ostree(&["init", &format!("--repo={}", r.display()), "--mode=archive"]);
        }
        ostree(&[
            "commit",
            &format!("--repo={}", src.display()),
            &format!("--tree=dir={}", tree.display()),
            "--branch=main",
            "--owner-uid=0",
            "--owner-gid=0",
        ]);
        let src_repo = crate::ostree::repo::open_repo(&src).unwrap();
        let stream = super::super::write::export_commit(&src_repo, "main", Vec::new()).unwrap();
        let want = commit::resolve(&src_repo, "main").unwrap();

        let dst_repo = crate::ostree::repo::open_repo(&dst).unwrap();
        let import = |stream: &[u8]| -> Result<(String, ImportStats), ImportError> {
            let txn = Txn::begin(&dst_repo).unwrap();
            let mut imp = Importer::new(&dst_repo, None)?;
            imp.import_layer(stream)?;
            let stats = imp.stats;
            let c = imp.finish()?;
            txn.commit().unwrap();
            Ok((c, stats))
        };

        // One byte changed in the middle of the big file: refused by its checksum.
        let at = stream
            .windows(4096)
            .position(|w| w == &big[..4096])
            .expect("the file's bytes are in the stream");
        let mut bad = stream.clone();
        bad[at + (32 << 20)] ^= 1;
        match import(&bad) {
            Err(ImportError::Checksum { .. }) => {}
            other => panic!("a changed byte was not caught: {other:?}"),
        }

        let (c, stats) = import(&stream).unwrap();
        assert_eq!(c, want);
        assert!(stats.content_bytes > IN_MEMORY_MAX, "{stats:?}");
        let cat = ostree(&["cat", &format!("--repo={}", dst.display()), &c, "/usr/big"]);
        assert!(cat == big, "the file differs after the import");
        ostree(&["fsck", &format!("--repo={}", dst.display())]);
    }
}
