//! ostree-rs-ext on the other side:
//!
//! - [`helper()`] builds the ostree-rs-ext helper (tests/interop, its own crate and lockfile:
//!   ostree-sys `links = "ostree-1"` may appear only once in a dependency graph, so it cannot be
//!   a dev-dependency). Built once per target dir, under a lock, in
//!   `$CARGO_TARGET_TMPDIR/interop-target`; later runs only check it is fresh.
//! - [`export_v0()`] writes a commit in ostree-rs-ext's tar format version 0, which ostree-ext
//!   0.15 can no longer write (its `ExportOptions` lost `format_version`).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ostree::gio::prelude::*;
use ostree::{gio, glib};
use sha2::{Digest, Sha256};

use crate::support;

pub fn helper() -> PathBuf {
    let target = support::target_tmp().join("interop-target");
    std::fs::create_dir_all(&target).unwrap();
    let _lock = support::lock_file(&target.join(".build-lock"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = support::top().join("tests/interop/Cargo.toml");
    support::run(
        support::cmd(
            &cargo,
            [
                "build",
                "--locked",
                "--quiet",
                "--manifest-path",
                manifest.to_str().unwrap(),
            ],
        )
        .env("CARGO_TARGET_DIR", &target),
    );
    target.join("debug/ostree-container-interop")
}

/// Writes commit `rev` of the repository at `repo` to `out` in ostree-rs-ext's tar format
/// version 0, entry for entry as ostree-rs-ext's exporter did with
/// `ExportOptions { format_version: 0 }` (ostree-rs-ext `lib/src/tar/export.rs`,
/// `OstreeTarWriter`, in the last versions that had format 0), with the same tar crate:
///
/// - `./` (root dirmeta), the repository skeleton, `sysroot/ostree/repo/xattrs/`, and
///   `sysroot/config` (format 1 has `sysroot/ostree/repo/config`);
/// - the commit, its detached metadata, the root dirmeta, then depth first each dirtree, its
///   content objects and their checkout hard links (`./usr/…`, `./usr/etc` as `./etc`), then
///   each subdirectory's dirmeta, directory entry and dirtree (the root's `sysroot` skipped);
/// - per content object with xattrs: `xattrs/HASH` (once) and a `.file.xattrs` hard link to
///   it; objects without xattrs get neither;
/// - tar modes with the file type bits (`0o100755`, `0o120777`, `0o40755`).
pub fn export_v0(repo: &Path, rev: &str, out: &Path) {
    let r = ostree::Repo::new_for_path(repo);
    r.open(gio::Cancellable::NONE).unwrap();
    let commit = r.require_rev(rev).unwrap();
    let mut w = V0Writer {
        repo: r,
        out: tar::Builder::new(BufWriter::new(File::create(out).unwrap())),
        written: HashSet::new(),
    };
    w.commit(&commit);
    w.out.into_inner().unwrap().flush().unwrap();
}

const REPO: &str = "sysroot/ostree/repo";

struct V0Writer {
    repo: ostree::Repo,
    out: tar::Builder<BufWriter<File>>,
    /// Paths of the objects and xattrs already written.
    written: HashSet<String>,
}

fn object_path(csum: &str, suffix: &str) -> String {
    format!("{REPO}/objects/{}/{}.{suffix}", &csum[..2], &csum[2..])
}

fn header(kind: tar::EntryType, uid: u32, gid: u32, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_mode(mode);
    h.set_size(size);
    h
}

/// `dir` joined with `name`, `./usr/etc` written as `./etc` (ostree-rs-ext's `map_path`).
fn checkout_path(dir: &str, name: &str) -> String {
    let p = format!("{}/{name}", dir.trim_end_matches('/'));
    match p.strip_prefix("./usr/etc") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("./etc{rest}"),
        _ => p,
    }
}

fn hex_of(v: &glib::Variant) -> String {
    hex::encode(v.data_as_bytes())
}

impl V0Writer {
    fn commit(&mut self, csum: &str) {
        let (commit, _) = self.repo.load_commit(csum).unwrap();
        let root_tree = hex_of(&commit.child_value(6));
        let root_meta = hex_of(&commit.child_value(7));
        let meta = self.load(ostree::ObjectType::DirMeta, &root_meta);
        self.dir("./", &meta);
        self.repo_structure();
        self.object("commit", csum, &commit);
        let detached = self
            .repo
            .read_commit_detached_metadata(csum, gio::Cancellable::NONE)
            .unwrap();
        if let Some(d) = detached {
            self.object("commitmeta", csum, &d);
        }
        self.object("dirmeta", &root_meta, &meta);
        self.dirtree("./", &root_tree, true);
    }

    fn repo_structure(&mut self) {
        let objects = format!("{REPO}/objects");
        for d in ["sysroot", "sysroot/ostree", REPO, &objects] {
            self.default_dir(d);
        }
        for i in 0..=0xff {
            self.default_dir(&format!("{objects}/{i:02x}"));
        }
        for d in [
            "extensions",
            "refs",
            "refs/heads",
            "refs/mirrors",
            "refs/remotes",
            "state",
            "tmp",
            "tmp/cache",
            "xattrs",
        ] {
            self.default_dir(&format!("{REPO}/{d}"));
        }
        let config = "[core]\nrepo_version=1\nmode=bare-split-xattrs\n";
        self.data("sysroot/config", config.as_bytes());
    }

    fn dirtree(&mut self, dir: &str, csum: &str, is_root: bool) {
        let v = self.load(ostree::ObjectType::DirTree, csum);
        self.object("dirtree", csum, &v);
        type Tree = (Vec<(String, Vec<u8>)>, Vec<(String, Vec<u8>, Vec<u8>)>);
        let (files, dirs): Tree = v.get().unwrap();
        for (name, c) in files {
            let (objpath, mut h) = self.content(&hex::encode(c));
            self.out
                .append_link(&mut h, checkout_path(dir, &name), &objpath)
                .unwrap();
        }
        for (name, tree, meta) in dirs {
            let meta = hex::encode(meta);
            let mv = self.load(ostree::ObjectType::DirMeta, &meta);
            self.object("dirmeta", &meta, &mv);
            if is_root && name == "sysroot" {
                continue;
            }
            let sub = checkout_path(dir, &name);
            self.dir(&sub, &mv);
            self.dirtree(&sub, &hex::encode(tree), false);
        }
    }

    /// Writes content object `csum` (once) after its xattrs; returns its path and the header
    /// for the hard links to it.
    fn content(&mut self, csum: &str) -> (String, tar::Header) {
        let (stream, info, xattrs) = self.repo.load_file(csum, gio::Cancellable::NONE).unwrap();
        let uid = info.attribute_uint32("unix::uid");
        let gid = info.attribute_uint32("unix::gid");
        let mode = info.attribute_uint32("unix::mode");
        let path = object_path(csum, "file");
        if self.written.insert(path.clone()) {
            self.xattrs(csum, &xattrs);
            match stream {
                Some(s) => {
                    let mut h = header(tar::EntryType::Regular, uid, gid, mode, info.size() as u64);
                    self.out.append_data(&mut h, &path, s.into_read()).unwrap();
                }
                None => {
                    let target = info.symlink_target().unwrap();
                    let target = target.to_str().unwrap();
                    let mut h = header(tar::EntryType::Symlink, uid, gid, mode, 0);
                    // Kept verbatim when it has "//", which tar's path handling would fold.
                    if target.contains("//") {
                        h.set_link_name_literal(target).unwrap();
                        self.out
                            .append_data(&mut h, &path, std::io::empty())
                            .unwrap();
                    } else {
                        self.out.append_link(&mut h, &path, target).unwrap();
                    }
                }
            }
        }
        (path, header(tar::EntryType::Link, uid, gid, mode, 0))
    }

    fn xattrs(&mut self, csum: &str, xattrs: &glib::Variant) {
        let data = xattrs.data_as_bytes();
        if data.is_empty() {
            return;
        }
        let path = format!("{REPO}/xattrs/{}", hex::encode(Sha256::digest(&data)));
        if self.written.insert(path.clone()) {
            self.data(&path, &data);
        }
        let mut h = header(tar::EntryType::Link, 0, 0, 0o644, 0);
        self.out
            .append_link(&mut h, object_path(csum, "file.xattrs"), &path)
            .unwrap();
    }

    /// A commit, commitmeta, dirtree or dirmeta object; dirtrees and dirmetas once.
    fn object(&mut self, suffix: &str, csum: &str, v: &glib::Variant) {
        let path = object_path(csum, suffix);
        if self.written.insert(path.clone()) {
            self.data(&path, &v.data_as_bytes());
        }
    }

    fn dir(&mut self, path: &str, dirmeta: &glib::Variant) {
        let m = ostree::DirMetaParsed::from_variant(dirmeta).unwrap();
        let mut h = header(tar::EntryType::Directory, m.uid, m.gid, m.mode, 0);
        self.out
            .append_data(&mut h, path, std::io::empty())
            .unwrap();
    }

    fn default_dir(&mut self, path: &str) {
        let mut h = header(tar::EntryType::Directory, 0, 0, 0o755, 0);
        self.out
            .append_data(&mut h, path, std::io::empty())
            .unwrap();
    }

    fn data(&mut self, path: &str, data: &[u8]) {
        let mut h = header(tar::EntryType::Regular, 0, 0, 0o644, data.len() as u64);
        self.out.append_data(&mut h, path, data).unwrap();
    }

    fn load(&self, t: ostree::ObjectType, csum: &str) -> glib::Variant {
        self.repo.load_variant(t, csum).unwrap()
    }
}
