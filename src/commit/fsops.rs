//! Changes to the tree: removing, moving (with a faithful copy where rename cannot), and
//! hard-linking. All of it on directory handles and single names, never through a symlink.
//!
//! Why a copy fallback: on overlay storage, renaming a directory that came from a lower layer
//! fails with `EXDEV` (unless the kernel has `redirect_dir`). The copy then has to keep what
//! matters to an OS image: owner, mode with setuid/setgid/sticky bits, extended attributes
//! (`security.capability` above all, set after `chown`, which clears it), hard links inside the
//! copied tree, symlinks as links, and modification times.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use rustix::fs::{AtFlags, Gid, Mode, OFlags, Timestamps, Uid};

use super::rootfs::{
    open_dir_nofollow, open_path_nofollow, read_link, split, stat, walk, Entry, Kind, Meta, Root,
    Visitor,
};

/// Remove `name` in `dir` and everything below it, except what is not image content (mount
/// points, other filesystems): those and their parents are kept and returned as paths relative
/// to `dir`. Any depth, any fan-out (see [`walk`]); the first path that could not be removed
/// is the error, after everything else was.
pub fn remove_tree(root: &Root, dir: &Dir, name: &OsStr) -> io::Result<Vec<PathBuf>> {
    let Some(m) = stat(dir, name)? else {
        return Ok(Vec::new());
    };
    if root.is_foreign(&m) {
        return Ok(vec![PathBuf::from(name)]);
    }
    if m.kind != Kind::Dir {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
        return Ok(Vec::new());
    }
    let mut v = Remover {
        root,
        kept: Vec::new(),
        error: None,
    };
    walk(open_dir_nofollow(dir, name)?, Path::new(name), &mut v);
    if let Some(e) = v.error {
        return Err(e);
    }
    if v.kept.is_empty() {
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    }
    Ok(v.kept)
}

struct Remover<'a> {
    root: &'a Root,
    kept: Vec<PathBuf>,
    error: Option<io::Error>,
}

/// Keep the first error of a walk that changes the tree, naming its path.
fn keep_first(slot: &mut Option<io::Error>, doing: &str, rel: &Path, e: io::Error) {
    if slot.is_none() {
        *slot = Some(io::Error::new(
            e.kind(),
            format!("{doing} {}: {e}", rel.display()),
        ));
    }
}

impl Remover<'_> {
    fn fail(&mut self, rel: &Path, e: impl Into<io::Error>) {
        keep_first(&mut self.error, "removing", rel, e.into());
    }
}

impl Visitor for Remover<'_> {
    fn enter(&mut self, e: &Entry) -> bool {
        if self.root.is_foreign(&e.meta) {
            self.kept.push(e.rel.to_path_buf());
            return false;
        }
        if e.meta.kind == Kind::Dir {
            return true;
        }
        if let Err(err) = rustix::fs::unlinkat(e.parent, e.name, AtFlags::empty()) {
            self.fail(e.rel, err);
        }
        false
    }

    fn leave(&mut self, e: &Entry) {
        if self.kept.iter().any(|k| k.starts_with(e.rel)) {
            return;
        }
        if let Err(err) = rustix::fs::unlinkat(e.parent, e.name, AtFlags::REMOVEDIR) {
            self.fail(e.rel, err);
        }
    }

    fn error(&mut self, rel: &Path, e: io::Error) {
        self.fail(rel, e);
    }
}

/// Move `src_dir/src_name` to `dst_dir/dst_name` (which must not exist). Returns true when it
/// had to copy because rename said `EXDEV`.
pub fn move_entry(
    root: &Root,
    src_dir: &Dir,
    src_name: &OsStr,
    dst_dir: &Dir,
    dst_name: &OsStr,
) -> io::Result<bool> {
    match rustix::fs::renameat(src_dir, src_name, dst_dir, dst_name) {
        Ok(()) => Ok(false),
        Err(rustix::io::Errno::XDEV) => {
            copy_tree(src_dir, src_name, dst_dir, dst_name)?;
            let kept = remove_tree(root, src_dir, src_name)?;
            if !kept.is_empty() {
                return Err(io::Error::other(format!(
                    "copied, but could not remove mount points below the source: {kept:?}"
                )));
            }
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

/// `/proc/self/fd/N/name`: a path to `name` in `dir` for the `l*xattr` calls, which have no
/// `*at` form. The kernel resolves the fd link to the directory itself, and the `l` calls do
/// not follow `name` if it is a symlink.
fn proc_path(dir: &Dir, name: &OsStr) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

fn list_xattrs(dir: &Dir, name: &OsStr) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    let p = proc_path(dir, name);
    let size = match rustix::fs::llistxattr_query(&p) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut names = vec![0u8; size];
    let n = rustix::fs::llistxattr(&p, &mut names[..])?;
    names.truncate(n);
    let mut out = Vec::new();
    for key in names.split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let key = OsStr::from_bytes(key);
        let size = rustix::fs::lgetxattr_query(&p, key)?;
        let mut value = vec![0u8; size];
        let n = rustix::fs::lgetxattr(&p, key, &mut value[..])?;
        value.truncate(n);
        out.push((key.to_os_string(), value));
    }
    Ok(out)
}

fn set_xattrs(dir: &Dir, name: &OsStr, xattrs: &[(OsString, Vec<u8>)]) -> io::Result<()> {
    let p = proc_path(dir, name);
    for (k, v) in xattrs {
        match rustix::fs::lsetxattr(&p, k.as_os_str(), v, rustix::fs::XattrFlags::empty()) {
            Ok(()) => {}
            // A host without SELinux cannot take labels; the importer relabels from policy anyway.
            Err(rustix::io::Errno::NOTSUP | rustix::io::Errno::PERM | rustix::io::Errno::INVAL)
                if k.as_bytes() == b"security.selinux" => {}
            Err(e) => {
                return Err(io::Error::new(
                    io::Error::from(e).kind(),
                    format!("setting xattr {k:?} on {name:?}: {e}"),
                ))
            }
        }
    }
    Ok(())
}

fn times_of(dir: &Dir, name: &OsStr) -> io::Result<Timestamps> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    })
}

/// Owner, then mode (chown clears setuid bits), then xattrs (chown clears security.capability),
/// then times.
fn finish_metadata(
    src_dir: &Dir,
    src_name: &OsStr,
    dst_dir: &Dir,
    dst_name: &OsStr,
    m: &Meta,
) -> io::Result<()> {
    rustix::fs::chownat(
        dst_dir,
        dst_name,
        Some(Uid::from_raw(m.uid)),
        Some(Gid::from_raw(m.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if m.kind != Kind::Symlink {
        rustix::fs::chmodat(
            dst_dir,
            dst_name,
            Mode::from_raw_mode(m.perm),
            AtFlags::empty(),
        )?;
    }
    set_xattrs(dst_dir, dst_name, &list_xattrs(src_dir, src_name)?)?;
    rustix::fs::utimensat(
        dst_dir,
        dst_name,
        &times_of(src_dir, src_name)?,
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Copy `src_dir/src_name` to `dst_dir/dst_name` faithfully (see the module doc). Device
/// nodes, FIFOs and sockets are refused: ostree cannot store them either. Any depth, any
/// fan-out (see [`walk`]): the copy follows the walk with one open destination directory.
pub fn copy_tree(
    src_dir: &Dir,
    src_name: &OsStr,
    dst_dir: &Dir,
    dst_name: &OsStr,
) -> io::Result<()> {
    let m = stat(src_dir, src_name)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
    let mut links = HashMap::new();
    copy_one(
        src_dir,
        src_name,
        dst_dir,
        dst_name,
        &m,
        dst_dir,
        Path::new(dst_name),
        &mut links,
    )?;
    if m.kind != Kind::Dir {
        return Ok(());
    }
    let mut v = Copier {
        top: dst_dir,
        top_name: PathBuf::from(dst_name),
        src_top: PathBuf::from(src_name),
        cur: open_dir_nofollow(dst_dir, dst_name)?,
        links,
        error: None,
    };
    walk(
        open_dir_nofollow(src_dir, src_name)?,
        Path::new(src_name),
        &mut v,
    );
    if let Some(e) = v.error {
        return Err(e);
    }
    finish_metadata(src_dir, src_name, dst_dir, dst_name, &m)
}

/// Where the first copy of a multiply-linked inode went, relative to the copy's parent.
type LinkMap = HashMap<(u64, u64), PathBuf>;

/// Copy one entry; a directory is only created (its metadata is set when it is left).
#[allow(clippy::too_many_arguments)]
fn copy_one(
    src_dir: &Dir,
    src_name: &OsStr,
    dst_dir: &Dir,
    dst_name: &OsStr,
    m: &Meta,
    top: &Dir,
    dst_rel: &Path,
    links: &mut LinkMap,
) -> io::Result<()> {
    match m.kind {
        Kind::Dir => {
            rustix::fs::mkdirat(dst_dir, dst_name, Mode::from_raw_mode(0o700))?;
            return Ok(());
        }
        Kind::Symlink => {
            let target = read_link(src_dir, src_name)?;
            rustix::fs::symlinkat(target.as_os_str(), dst_dir, dst_name)?;
        }
        Kind::File => {
            if m.nlink > 1 {
                if let Some(first) = links.get(&(m.dev, m.ino)) {
                    let (parent, name) = split(first);
                    let first_dir = open_path_nofollow(top, parent)?
                        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
                    rustix::fs::linkat(&first_dir, name, dst_dir, dst_name, AtFlags::empty())?;
                    return Ok(());
                }
            }
            let src = rustix::fs::openat(
                src_dir,
                src_name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let dst = rustix::fs::openat(
                dst_dir,
                dst_name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            io::copy(&mut std::fs::File::from(src), &mut std::fs::File::from(dst))?;
            if m.nlink > 1 {
                links.insert((m.dev, m.ino), dst_rel.to_path_buf());
            }
        }
        other => {
            return Err(io::Error::other(format!(
            "{src_name:?} is a {other:?}; ostree cannot store it: remove it or create it at boot"
        )))
        }
    }
    finish_metadata(src_dir, src_name, dst_dir, dst_name, m)
}

struct Copier<'a> {
    top: &'a Dir,
    top_name: PathBuf,
    src_top: PathBuf,
    /// The destination directory matching the walk's current source directory.
    cur: Dir,
    links: LinkMap,
    error: Option<io::Error>,
}

impl Copier<'_> {
    fn dst_rel(&self, rel: &Path) -> PathBuf {
        self.top_name
            .join(rel.strip_prefix(&self.src_top).unwrap_or(rel))
    }

    fn fail(&mut self, rel: &Path, e: io::Error) {
        keep_first(&mut self.error, "copying", rel, e);
    }
}

impl Visitor for Copier<'_> {
    fn enter(&mut self, e: &Entry) -> bool {
        if self.error.is_some() {
            return false;
        }
        let dst_rel = self.dst_rel(e.rel);
        let r = copy_one(
            e.parent,
            e.name,
            &self.cur,
            e.name,
            &e.meta,
            self.top,
            &dst_rel,
            &mut self.links,
        );
        match r {
            Ok(()) => e.meta.kind == Kind::Dir,
            Err(err) => {
                self.fail(e.rel, err);
                false
            }
        }
    }

    fn entered(&mut self, _dir: &Dir, rel: &Path) {
        let name = rel.file_name().unwrap_or_default();
        match open_dir_nofollow(&self.cur, name) {
            Ok(d) => self.cur = d,
            Err(e) => {
                // Keep source and destination in step: stop copying.
                self.fail(rel, e);
            }
        }
    }

    fn leave(&mut self, e: &Entry) {
        match open_dir_nofollow(&self.cur, "..") {
            Ok(d) => self.cur = d,
            Err(err) => return self.fail(e.rel, err),
        }
        if self.error.is_none() {
            if let Err(err) = finish_metadata(e.parent, e.name, &self.cur, e.name, &e.meta) {
                self.fail(e.rel, err);
            }
        }
    }

    fn error(&mut self, rel: &Path, e: io::Error) {
        self.fail(rel, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn copy_keeps_owner_mode_xattrs_links() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src/app");
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::write(src.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            src.join("bin/tool"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        std::fs::hard_link(src.join("bin/tool"), src.join("bin/tool-alias")).unwrap();
        std::os::unix::fs::symlink("bin/tool", src.join("run")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("outside")).unwrap();
        std::fs::write(src.join("data"), b"d").unwrap();
        std::os::unix::fs::chown(src.join("data"), Some(1234), Some(4321)).unwrap();
        // security.capability needs root and a filesystem that takes it; user.* works widely.
        let cap = [1u8, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let have_cap = rustix::fs::lsetxattr(
            src.join("bin/tool"),
            "security.capability",
            &cap,
            rustix::fs::XattrFlags::empty(),
        )
        .is_ok();
        let have_user = rustix::fs::lsetxattr(
            src.join("data"),
            "user.test",
            b"v",
            rustix::fs::XattrFlags::empty(),
        )
        .is_ok();
        std::fs::create_dir_all(t.path().join("dst")).unwrap();

        let root = Root::open(t.path()).unwrap();
        let s = open_dir_nofollow(&root.dir, "src").unwrap();
        let d = open_dir_nofollow(&root.dir, "dst").unwrap();
        copy_tree(&s, OsStr::new("app"), &d, OsStr::new("app")).unwrap();

        let dst = t.path().join("dst/app");
        let tool = std::fs::symlink_metadata(dst.join("bin/tool")).unwrap();
        assert_eq!(tool.mode() & 0o7777, 0o4755);
        assert_eq!(
            tool.ino(),
            std::fs::symlink_metadata(dst.join("bin/tool-alias"))
                .unwrap()
                .ino()
        );
        assert_eq!(
            std::fs::read_link(dst.join("run")).unwrap(),
            Path::new("bin/tool")
        );
        assert_eq!(
            std::fs::read_link(dst.join("outside")).unwrap(),
            Path::new("/etc/passwd")
        );
        let data = std::fs::symlink_metadata(dst.join("data")).unwrap();
        assert_eq!((data.uid(), data.gid()), (1234, 4321));
        if have_cap {
            let mut buf = [0u8; 64];
            let n =
                rustix::fs::lgetxattr(dst.join("bin/tool"), "security.capability", &mut buf[..])
                    .unwrap();
            assert_eq!(&buf[..n], &cap);
        }
        if have_user {
            let mut buf = [0u8; 8];
            let n = rustix::fs::lgetxattr(dst.join("data"), "user.test", &mut buf[..]).unwrap();
            assert_eq!(&buf[..n], b"v");
        }
        assert_eq!(
            std::fs::metadata(src.join("data")).unwrap().mtime(),
            std::fs::metadata(dst.join("data")).unwrap().mtime()
        );
        // The removal of the source afterwards never follows the links out of the tree.
        let kept = remove_tree(&root, &s, OsStr::new("app")).unwrap();
        assert!(kept.is_empty());
        assert!(!src.exists());
        assert!(Path::new("/etc/passwd").exists());
    }
}
