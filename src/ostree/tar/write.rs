//! Writing the tar stream of a commit (ostree-rs-ext's tar format, version 1).
//!
//! See the [module docs](super) for the layout. Every entry has mtime 0, and entries come in a
//! fixed order (directory walk order, content objects by checksum), so the same commit always
//! gives the same bytes.

use std::collections::HashSet;
use std::io::{self, Read, Write};

use ostree::gio::prelude::*;
use sha2::{Digest, Sha256};

use crate::ostree::commit::{self, Commit, CommitError, Walk};
use crate::ostree::csum::{self, Csum};

/// Where the embedded repository lives in the stream.
pub const REPO_DIR: &str = "sysroot/ostree/repo";
/// The embedded repository's config: its mode marks the stream as ostree-rs-ext's format 1.
pub const REPO_CONFIG: &str = "[core]\nrepo_version=1\nmode=bare-split-xattrs\n";
/// Standard repository subdirectories written after `objects/00`…`objects/ff`.
const REPO_SUBDIRS: &[&str] = &[
    "extensions",
    "refs",
    "refs/heads",
    "refs/mirrors",
    "refs/remotes",
    "state",
    "tmp",
    "tmp/cache",
];

#[derive(Debug, thiserror::Error)]
/// Why a commit could not be written as a tar stream.
pub enum ExportError {
    #[error("writing {what}: {source}")]
    /// Writing failed.
    Io {
        /// What was being written.
        what: String,
        /// The error.
        source: io::Error,
    },
    #[error(transparent)]
    /// The commit could not be read.
    Commit(#[from] CommitError),
    #[error("dirmeta object {0} is malformed")]
    /// A dirmeta object is malformed (its checksum).
    Dirmeta(String),
}

fn io_ctx(what: impl Into<String>) -> impl FnOnce(io::Error) -> ExportError {
    let what = what.into();
    move |source| ExportError::Io { what, source }
}

/// `sysroot/ostree/repo/objects/<2>/<62>.<suffix>`
pub fn object_path(csum: &str, suffix: &str) -> String {
    format!("{REPO_DIR}/objects/{}/{}.{suffix}", &csum[..2], &csum[2..])
}

/// The path of a commit path in the stream: `usr/etc` is written back as `etc`.
pub fn tar_path(p: &str) -> String {
    if p == "usr/etc" {
        "etc".to_string()
    } else if let Some(rest) = p.strip_prefix("usr/etc/") {
        format!("etc/{rest}")
    } else {
        p.to_string()
    }
}

/// Is this commit path under the top-level `sysroot`, which the stream uses for the
/// embedded repository (so its own entries are left out; its objects are still written)?
fn under_sysroot(p: &str) -> bool {
    p == "sysroot" || p.starts_with("sysroot/")
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Writes one layer (or a whole export) to a tar stream.
pub struct LayerWriter<'r, W: Write> {
    repo: &'r ostree::Repo,
    out: tar::Builder<W>,
    wrote_xattrs: HashSet<String>,
    wrote_meta: HashSet<String>,
    /// Content objects written.
    pub objects: u64,
}

fn header(kind: tar::EntryType, uid: u32, gid: u32, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_mode(mode & 0o7777);
    h.set_size(size);
    h.set_mtime(0);
    h
}

impl<'r, W: Write> LayerWriter<'r, W> {
    /// A writer of tar entries for `repo`'s objects into `out`.
    pub fn new(repo: &'r ostree::Repo, out: W) -> Self {
        let mut out = tar::Builder::new(out);
        out.mode(tar::HeaderMode::Deterministic);
        LayerWriter {
            repo,
            out,
            wrote_xattrs: HashSet::new(),
            wrote_meta: HashSet::new(),
            objects: 0,
        }
    }

    /// End the tar stream; the writer back.
    pub fn finish(self) -> Result<W, ExportError> {
        self.out
            .into_inner()
            .map_err(io_ctx("the end of the tar stream"))
    }

    /// A GNU long name (`L`) or long link (`K`) record for names over 100 bytes.
    fn long_record(&mut self, kind: u8, bytes: &[u8]) -> io::Result<()> {
        let mut h = header(
            tar::EntryType::new(kind),
            0,
            0,
            0o644,
            bytes.len() as u64 + 1,
        );
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_cksum();
        self.out.append(&h, bytes.chain(&[0u8][..]))
    }

    /// Append an entry with raw (unnormalised) name and link name bytes.
    fn entry(
        &mut self,
        mut h: tar::Header,
        path: &[u8],
        link: Option<&[u8]>,
        data: impl Read,
    ) -> io::Result<()> {
        if path.len() > 100 {
            self.long_record(b'L', path)?;
        }
        let n = path.len().min(100);
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        name[..n].copy_from_slice(&path[..n]);
        if let Some(link) = link {
            if link.len() > 100 {
                self.long_record(b'K', link)?;
            }
            let n = link.len().min(100);
            let l = &mut h.as_old_mut().linkname;
            l.fill(0);
            l[..n].copy_from_slice(&link[..n]);
        }
        h.set_cksum();
        self.out.append(&h, data)
    }

    fn dir(&mut self, path: &str, uid: u32, gid: u32, mode: u32) -> Result<(), ExportError> {
        let h = header(tar::EntryType::Directory, uid, gid, mode, 0);
        self.entry(h, path.as_bytes(), None, io::empty())
            .map_err(io_ctx(path))
    }

    fn data(&mut self, path: &str, data: &[u8]) -> Result<(), ExportError> {
        let h = header(tar::EntryType::Regular, 0, 0, 0o644, data.len() as u64);
        self.entry(h, path.as_bytes(), None, data)
            .map_err(io_ctx(path))
    }

    fn hardlink(
        &mut self,
        mut h: tar::Header,
        path: &str,
        target: &str,
    ) -> Result<(), ExportError> {
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        self.entry(h, path.as_bytes(), Some(target.as_bytes()), io::empty())
            .map_err(io_ctx(path))
    }

    /// The embedded repository's directories and config.
    pub fn repo_structure(&mut self) -> Result<(), ExportError> {
        for d in ["sysroot", "sysroot/ostree", REPO_DIR] {
            self.dir(d, 0, 0, 0o755)?;
        }
        self.dir(&format!("{REPO_DIR}/objects"), 0, 0, 0o755)?;
        for i in 0..=0xffu32 {
            self.dir(&format!("{REPO_DIR}/objects/{i:02x}"), 0, 0, 0o755)?;
        }
        for d in REPO_SUBDIRS {
            self.dir(&format!("{REPO_DIR}/{d}"), 0, 0, 0o755)?;
        }
        self.data(&format!("{REPO_DIR}/config"), REPO_CONFIG.as_bytes())
    }

    /// Write a dirtree or dirmeta object (once per stream); returns it.
    fn metadata_object(
        &mut self,
        objtype: ostree::ObjectType,
        csum: &Csum,
        suffix: &str,
    ) -> Result<ostree::glib::Variant, ExportError> {
        let csum = &csum::hex(csum);
        let v = self
            .repo
            .load_variant(objtype, csum)
            .map_err(commit::ctx(format!("loading {suffix} {csum}")))?;
        if self.wrote_meta.insert(format!("{csum}.{suffix}")) {
            self.data(&object_path(csum, suffix), &v.data_as_bytes())?;
        }
        Ok(v)
    }

    /// Write a dirmeta object; returns its uid, gid and mode.
    fn dirmeta(&mut self, csum: &Csum) -> Result<(u32, u32, u32), ExportError> {
        let v = self.metadata_object(ostree::ObjectType::DirMeta, csum, "dirmeta")?;
        dirmeta_attrs(&v).ok_or_else(|| ExportError::Dirmeta(csum::hex(csum)))
    }

    /// The commit layer's structure: the root directory, the embedded repository, the commit
    /// and its detached metadata, every dirtree and dirmeta object, and a directory entry for
    /// every directory of the commit (content objects are written by [`Self::content`]).
    pub fn commit(&mut self, c: &Commit, walk: &Walk) -> Result<(), ExportError> {
        // The root directory comes first; its dirmeta object only after the commit, which
        // must be the first object in the stream.
        let root_meta = csum::hex(&c.root_meta);
        let root = self
            .repo
            .load_variant(ostree::ObjectType::DirMeta, &root_meta)
            .map_err(commit::ctx(format!("loading dirmeta {root_meta}")))?;
        let (uid, gid, mode) =
            dirmeta_attrs(&root).ok_or_else(|| ExportError::Dirmeta(root_meta.clone()))?;
        self.dir("./", uid, gid, mode)?;
        self.repo_structure()?;
        self.data(
            &object_path(&c.checksum, "commit"),
            &c.variant.data_as_bytes(),
        )?;
        if let Some(d) = &c.detached {
            self.data(&object_path(&c.checksum, "commitmeta"), &d.data_as_bytes())?;
        }
        self.dirmeta(&c.root_meta)?;
        let mut have_vartmp = false;
        for d in &walk.dirs {
            if !d.path.is_empty() {
                let (uid, gid, mode) = self.dirmeta(&d.meta)?;
                if !under_sysroot(&d.path) {
                    self.dir(&tar_path(&d.path), uid, gid, mode)?;
                }
            }
            self.metadata_object(ostree::ObjectType::DirTree, &d.tree, "dirtree")?;
            have_vartmp |= d.path == "var/tmp";
        }
        if !have_vartmp {
            // Container runtimes expect /var/tmp; ostree-rs-ext adds it too.
            self.dir("var/tmp", 0, 0, 0o1777)?;
        }
        Ok(())
    }

    /// One content object (its xattrs object and link first), then a hard link to it at each
    /// of `paths` (a plain empty file for empty regular files).
    pub fn content(&mut self, csum: &Csum, paths: &[String]) -> Result<(), ExportError> {
        let obj = commit::load_content(self.repo, csum)?;
        let csum = &csum::hex(csum);
        let xattrs = obj.xattrs.data_as_bytes();
        let xcsum = sha256_hex(&xattrs);
        let xpath = object_path(&xcsum, "file-xattrs");
        if self.wrote_xattrs.insert(xcsum.clone()) {
            self.data(&xpath, &xattrs)?;
        }
        let link_h = header(tar::EntryType::Link, 0, 0, 0o644, 0);
        self.hardlink(link_h, &object_path(csum, "file-xattrs-link"), &xpath)?;

        let objpath = object_path(csum, "file");
        let h = match (&obj.symlink_target, obj.stream) {
            (Some(target), _) => {
                let h = header(tar::EntryType::Symlink, obj.uid, obj.gid, 0o777, 0);
                self.entry(
                    h.clone(),
                    objpath.as_bytes(),
                    Some(target.as_bytes()),
                    io::empty(),
                )
                .map_err(io_ctx(&objpath))?;
                h
            }
            (None, Some(stream)) => {
                let h = header(
                    tar::EntryType::Regular,
                    obj.uid,
                    obj.gid,
                    obj.mode,
                    obj.size,
                );
                let r = io::BufReader::with_capacity(128 * 1024, stream.into_read());
                self.entry(h.clone(), objpath.as_bytes(), None, r)
                    .map_err(io_ctx(&objpath))?;
                h
            }
            (None, None) => {
                return Err(CommitError::Malformed {
                    what: "content",
                    csum: csum.to_string(),
                }
                .into())
            }
        };
        self.objects += 1;
        for p in paths.iter().filter(|p| !under_sysroot(p)) {
            let tp = tar_path(p);
            if h.entry_type() == tar::EntryType::Regular && obj.size == 0 {
                // Not a hard link: a container build that rewrites an empty file would
                // otherwise rewrite the object too (ostree-rs-ext does the same).
                self.entry(h.clone(), tp.as_bytes(), None, io::empty())
                    .map_err(io_ctx(&tp))?;
            } else {
                self.hardlink(h.clone(), &tp, &objpath)?;
            }
        }
        Ok(())
    }
}

/// Owner and mode of a dirmeta object `(uuua(ayay))`.
fn dirmeta_attrs(v: &ostree::glib::Variant) -> Option<(u32, u32, u32)> {
    let (uid, gid, mode, _) = crate::ostree::gvariant::parse_dirmeta(&v.data_as_bytes())?;
    Some((uid, gid, mode))
}

/// Write the whole commit as one tar stream (what `tar export` prints, and what a
/// single-layer image holds).
pub fn export_commit<W: Write>(repo: &ostree::Repo, rev: &str, out: W) -> Result<W, ExportError> {
    let c = Commit::load(repo, rev)?;
    let walk = commit::walk(repo, &c)?;
    let mut w = LayerWriter::new(repo, out);
    w.commit(&c, &walk)?;
    for (csum, paths) in &walk.content {
        w.content(csum, paths)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(tar_path("usr/etc"), "etc");
        assert_eq!(tar_path("usr/etc/passwd"), "etc/passwd");
        assert_eq!(tar_path("usr/etcetera"), "usr/etcetera");
        assert_eq!(tar_path("usr/bin/sh"), "usr/bin/sh");
        let c = "ab".to_string() + &"0".repeat(62);
        assert_eq!(
            object_path(&c, "file"),
            format!("sysroot/ostree/repo/objects/ab/{}.file", "0".repeat(62))
        );
        assert!(under_sysroot("sysroot/ostree"));
        assert!(!under_sysroot("sysroots"));
    }
}
