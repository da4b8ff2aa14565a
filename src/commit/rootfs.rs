//! Access to the image's root filesystem, without ever following a symlink by accident.
//!
//! The root is opened once as a [`cap_std::fs::Dir`]; everything below works on a directory
//! handle plus a single file name (`*at` calls with `AT_SYMLINK_NOFOLLOW` / `O_NOFOLLOW`), so a
//! symlink anywhere in the image can never lead a read or a write outside the root. Where the
//! image's own view of a path is needed (what `/root/x` means inside the image), [`resolve`]
//! resolves symlinks lexically inside the root, the way `openat2(RESOLVE_IN_ROOT)` would.
//!
//! Mounts: inside a `RUN`, buildah and podman bind-mount files such as /etc/hosts,
//! /etc/resolv.conf and /run/.containerenv, and mount /proc, /sys, /dev. None of that is image
//! content. [`Root::is_foreign`] tells them apart by mount id (statx `STATX_MNT_ID`), which also
//! catches bind mounts of single files from the same filesystem, falling back to the device.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use cap_std::fs::Dir;
use rustix::fs::{AtFlags, Mode, OFlags, StatxFlags};

/// What kind of file a path is, without following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
}

/// The metadata the tool uses, from one `statx` call that does not follow symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// File type.
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Number of hard links.
    pub nlink: u32,
    /// Inode number.
    pub ino: u64,
    /// Device the file is on.
    pub dev: u64,
    /// Mount id, where the kernel reports it.
    pub mnt_id: Option<u64>,
    /// Whether the path is the root of a mount.
    pub mount_root: bool,
}

fn kind_of(mode: u32) -> Kind {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        libc::S_IFIFO => Kind::Fifo,
        libc::S_IFSOCK => Kind::Socket,
        libc::S_IFCHR => Kind::CharDevice,
        libc::S_IFBLK => Kind::BlockDevice,
        _ => Kind::File,
    }
}

/// `statx(dir, name, AT_SYMLINK_NOFOLLOW)`; `Ok(None)` when the name does not exist.
pub fn stat(dir: &Dir, name: impl AsRef<Path>) -> io::Result<Option<Meta>> {
    let name = name.as_ref();
    let name = if name.as_os_str().is_empty() {
        Path::new(".")
    } else {
        name
    };
    match rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS | StatxFlags::MNT_ID,
    ) {
        Ok(st) => {
            let has_mnt = st.stx_mask & StatxFlags::MNT_ID.bits() != 0;
            Ok(Some(Meta {
                kind: kind_of(st.stx_mode as u32),
                perm: st.stx_mode as u32 & 0o7777,
                uid: st.stx_uid,
                gid: st.stx_gid,
                size: st.stx_size,
                nlink: st.stx_nlink,
                ino: st.stx_ino,
                dev: libc::makedev(st.stx_dev_major, st.stx_dev_minor),
                mnt_id: has_mnt.then_some(st.stx_mnt_id),
                mount_root: st
                    .stx_attributes_mask
                    .contains(rustix::fs::StatxAttributes::MOUNT_ROOT)
                    && st
                        .stx_attributes
                        .contains(rustix::fs::StatxAttributes::MOUNT_ROOT),
            }))
        }
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `stat` of a root-relative path whose parents are real directories (no symlink followed);
/// `Ok(None)` when it or a parent does not exist or a parent is not a directory.
pub fn stat_path(root: &Dir, rel: &Path) -> io::Result<Option<Meta>> {
    let (parent, name) = split(rel);
    match open_path_nofollow(root, parent) {
        Ok(Some(d)) => stat(&d, name),
        Ok(None) => Ok(None),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Open the directory `name` in `dir`, refusing to follow a symlink.
pub fn open_dir_nofollow(dir: &Dir, name: impl AsRef<Path>) -> io::Result<Dir> {
    let fd = rustix::fs::openat(
        dir,
        name.as_ref(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(Dir::from_std_file(std::fs::File::from(fd)))
}

/// Open a relative path component by component, never following a symlink.
/// `Ok(None)` when some component does not exist.
pub fn open_path_nofollow(root: &Dir, rel: &Path) -> io::Result<Option<Dir>> {
    let mut cur = root.try_clone()?;
    for c in rel.components() {
        match c {
            Component::Normal(name) => match open_dir_nofollow(&cur, name) {
                Ok(d) => cur = d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            },
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("path {rel:?} leaves the root"),
                ))
            }
        }
    }
    Ok(Some(cur))
}

/// Split a relative path into (parent, file name).
pub fn split(rel: &Path) -> (&Path, &OsStr) {
    (
        rel.parent().unwrap_or(Path::new("")),
        rel.file_name().unwrap_or(OsStr::new(".")),
    )
}

/// The raw target of the symlink `name` in `dir`.
pub fn read_link(dir: &Dir, name: impl AsRef<Path>) -> io::Result<OsString> {
    let t = rustix::fs::readlinkat(dir, name.as_ref(), Vec::new())?;
    Ok(OsString::from_vec(t.into_bytes()))
}

/// The sorted names in a directory.
pub fn list(dir: &Dir) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for e in dir.entries()? {
        names.push(e?.file_name());
    }
    names.sort();
    Ok(names)
}

/// Read a regular file at a root-relative path, following no symlink. `Ok(None)` if it does
/// not exist; an error if it is not a regular file.
pub fn read_optional(root: &Dir, rel: &Path) -> io::Result<Option<Vec<u8>>> {
    let (parent, name) = split(rel);
    let Some(dir) = open_path_nofollow(root, parent)? else {
        return Ok(None);
    };
    let fd = match rustix::fs::openat(
        &dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => {
            return Err(io::Error::other(format!(
                "{} is a symlink; expected a regular file",
                display(rel)
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let mut f = std::fs::File::from(fd);
    if !f.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            display(rel)
        )));
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(Some(buf))
}

/// Create `rel` and its missing parents (mode `mode`), refusing to pass through a symlink.
pub fn create_dir_all(root: &Dir, rel: &Path, mode: u32) -> io::Result<Dir> {
    let mut cur = root.try_clone()?;
    for c in rel.components() {
        if let Component::Normal(name) = c {
            match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(mode)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            cur = open_dir_nofollow(&cur, name).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot create {}: a component is not a directory ({e})",
                        display(rel)
                    ),
                )
            })?;
        }
    }
    Ok(cur)
}

/// Write a file atomically (temporary file in the same directory, then rename), with `mode`,
/// owned by `owner` (uid, gid) or by the caller.
pub fn write_atomic(
    dir: &Dir,
    name: &OsStr,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp{}", std::process::id()));
    let fd = rustix::fs::openat(
        dir,
        tmp.as_os_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    let mut f = std::fs::File::from(fd);
    let res = f
        .write_all(contents)
        .and_then(|_| match owner {
            Some((u, g)) => rustix::fs::fchown(
                &f,
                Some(rustix::fs::Uid::from_raw(u)),
                Some(rustix::fs::Gid::from_raw(g)),
            )
            .map_err(io::Error::from),
            None => Ok(()),
        })
        .and_then(|_| rustix::fs::fchmod(&f, Mode::from_raw_mode(mode)).map_err(io::Error::from))
        .and_then(|_| {
            rustix::fs::renameat(dir, tmp.as_os_str(), dir, name).map_err(io::Error::from)
        });
    if res.is_err() {
        let _ = rustix::fs::unlinkat(dir, tmp.as_os_str(), AtFlags::empty());
    }
    res
}

/// A path for people: absolute in the image, non-UTF-8 bytes and control characters as `\xNN`
/// (a name with a newline cannot fake a line of the report).
pub fn display(rel: &Path) -> String {
    let bytes = rel.as_os_str().as_bytes();
    let bytes = bytes.strip_prefix(b"/").unwrap_or(bytes);
    let mut out = String::from("/");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii_control() {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The longest path the kernel takes in one call (`PATH_MAX` including the terminating NUL).
/// systemd refuses longer paths in its configuration files, so a longer image path cannot be
/// declared in tmpfiles.d.
pub const PATH_MAX: usize = 4096;

/// One entry seen by [`walk`]: the open directory holding it, its name there, its path relative
/// to the root and its metadata (from `statx` without following it).
pub struct Entry<'a> {
    /// The directory holding the entry.
    pub parent: &'a Dir,
    /// Its name in `parent`.
    pub name: &'a OsStr,
    /// Its path relative to the root.
    pub rel: &'a Path,
    /// Its metadata (not following links).
    pub meta: Meta,
}

/// What [`walk`] calls. `enter` sees every entry, parents before children; returning true for
/// a directory descends into it, and then `entered` is called with the directory now open, and
/// `leave` after its contents, with `parent` open again. `error` names a path that could not
/// be read; the walk goes on with the rest.
pub trait Visitor {
    /// Called for each entry; return true to descend into a directory.
    fn enter(&mut self, e: &Entry) -> bool;
    /// Called once a directory is open, before its entries.
    fn entered(&mut self, _dir: &Dir, _rel: &Path) {}
    /// Called after a directory's entries.
    fn leave(&mut self, _e: &Entry) {}
    /// Called for what could not be read; the walk goes on.
    fn error(&mut self, rel: &Path, e: io::Error);
}

struct Level {
    names: std::vec::IntoIter<OsString>,
    name: OsString,
    meta: Meta,
}

fn same_inode(a: &Meta, b: &Meta) -> bool {
    a.ino == b.ino && a.dev == b.dev
}

/// Open the directory `name` in `cur` for the walk, checking that it is the one `stat` saw.
fn descend(cur: &Dir, name: &OsStr, m: &Meta) -> io::Result<(Dir, Vec<OsString>)> {
    let d = open_dir_nofollow(cur, name)?;
    let now = stat(&d, ".")?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
    if !same_inode(&now, m) {
        return Err(io::Error::other("replaced while it was being read"));
    }
    let names = list(&d)?;
    Ok((d, names))
}

/// Walk the tree below `start` (whose path relative to the root is `rel`) depth-first, in name
/// order, without recursion and with a bounded number of open descriptors, whatever the depth
/// or the fan-out: one descriptor for the current directory (plus one while listing); going up
/// opens `..` and checks it is the directory that was left (device and inode), so a tree moved
/// while it is walked stops the walk with an error instead of leading it elsewhere. Names of a
/// directory are read in full before its entries are visited (memory, not descriptors). Symlinks
/// are never followed: they are entries like any other.
pub fn walk(start: Dir, rel: &Path, v: &mut dyn Visitor) {
    let top = match stat(&start, ".")
        .and_then(|m| m.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound)))
    {
        Ok(m) => m,
        Err(e) => return v.error(rel, e),
    };
    let names = match list(&start) {
        Ok(n) => n,
        Err(e) => return v.error(rel, e),
    };
    let mut cur = start;
    let mut path = rel.to_path_buf();
    let mut stack = vec![Level {
        names: names.into_iter(),
        name: OsString::new(),
        meta: top,
    }];
    while let Some(level) = stack.last_mut() {
        if let Some(name) = level.names.next() {
            path.push(&name);
            let m = match stat(&cur, &name) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    path.pop();
                    continue;
                }
                Err(e) => {
                    v.error(&path, e);
                    path.pop();
                    continue;
                }
            };
            let e = Entry {
                parent: &cur,
                name: &name,
                rel: &path,
                meta: m,
            };
            if v.enter(&e) && m.kind == Kind::Dir {
                match descend(&cur, &name, &m) {
                    Ok((d, names)) => {
                        cur = d;
                        v.entered(&cur, &path);
                        stack.push(Level {
                            names: names.into_iter(),
                            name,
                            meta: m,
                        });
                        continue;
                    }
                    Err(e) => v.error(&path, e),
                }
            }
            path.pop();
        } else {
            let done = stack.pop().expect("a level");
            let Some(parent) = stack.last() else { break };
            match open_dir_nofollow(&cur, "..").and_then(|d| {
                let m = stat(&d, ".")?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
                if same_inode(&m, &parent.meta) {
                    Ok(d)
                } else {
                    Err(io::Error::other(
                        "its parent directory was moved while it was being read",
                    ))
                }
            }) {
                Ok(d) => cur = d,
                Err(e) => return v.error(&path, e),
            }
            v.leave(&Entry {
                parent: &cur,
                name: &done.name,
                rel: &path,
                meta: done.meta,
            });
            path.pop();
        }
    }
}

/// The root of the image being worked on.
pub struct Root {
    /// The root directory, opened once.
    pub dir: Dir,
    meta: Meta,
}

impl Root {
    /// Open the directory `path` as the root, once; everything else goes through [`Root::dir`].
    pub fn open(path: &Path) -> io::Result<Root> {
        // The one place src/commit opens a path of the process's filesystem (clippy.toml).
        #[allow(clippy::disallowed_methods)]
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        let meta = stat(&dir, ".")?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(Root { dir, meta })
    }

    /// True for what is not image content: mount points (bind-mounted files included) and
    /// anything on another filesystem than the root.
    pub fn is_foreign(&self, m: &Meta) -> bool {
        if m.mount_root {
            return true;
        }
        match (m.mnt_id, self.meta.mnt_id) {
            (Some(a), Some(b)) => a != b,
            _ => m.dev != self.meta.dev,
        }
    }

    /// The image's view of `path` (absolute or relative to /): symlinks in every component but
    /// the last are resolved inside the root (the last too with `follow_last`). Missing
    /// components are kept as they are.
    pub fn resolve(&self, path: &Path, follow_last: bool) -> io::Result<PathBuf> {
        resolve(path, follow_last, &mut |p: &Path| {
            let (parent, name) = split(p);
            let Some(d) = open_path_nofollow(&self.dir, parent)? else {
                return Ok(None);
            };
            match stat(&d, name)? {
                Some(m) if m.kind == Kind::Symlink => Ok(Some(PathBuf::from(read_link(&d, name)?))),
                _ => Ok(None),
            }
        })
    }
}

/// Resolve `path` inside a root, given a way to read a symlink at a resolved, symlink-free
/// relative path (`Ok(None)` for "not a symlink or missing"). `..` stops at the root, absolute
/// targets restart from the root, and more than 40 links is an error (ELOOP), as in the kernel.
/// Returns a relative path with no `.`, `..` or symlinks left.
pub fn resolve(
    path: &Path,
    follow_last: bool,
    readlink: &mut dyn FnMut(&Path) -> io::Result<Option<PathBuf>>,
) -> io::Result<PathBuf> {
    let mut todo: Vec<OsString> = path.components().rev().filter_map(normal).collect();
    let mut out = PathBuf::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            out.pop();
            continue;
        }
        let candidate = out.join(&c);
        let is_last = todo.is_empty();
        if !is_last || follow_last {
            if let Some(target) = readlink(&candidate)? {
                links += 1;
                if links > 40 {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links at {}",
                        display(&candidate)
                    )));
                }
                if target.is_absolute() {
                    out = PathBuf::new();
                }
                todo.extend(target.components().rev().filter_map(normal));
                continue;
            }
        }
        out = candidate;
    }
    Ok(out)
}

fn normal(c: Component) -> Option<OsString> {
    match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    }
}

/// Where a symlink at `link` (relative to the root) with `target` points, lexically (no
/// filesystem access); `None` when it climbs above the root, which is harmless inside the
/// image (`..` stops at /) but means the link was written for another root.
pub fn lexical_target(link: &Path, target: &Path) -> Option<PathBuf> {
    let mut out: Vec<OsString> = if target.is_absolute() {
        Vec::new()
    } else {
        link.parent()
            .unwrap_or(Path::new(""))
            .components()
            .filter_map(normal)
            .collect()
    };
    for c in target.components() {
        match c {
            Component::ParentDir => {
                out.pop()?;
            }
            Component::Normal(n) => out.push(n.to_os_string()),
            _ => {}
        }
    }
    Some(out.iter().collect())
}

/// Facts about the process's own `/` (not the image's root) that [`guard`](super::guard) needs
/// to tell an image being built from a running system: the only paths src/commit reads outside
/// the opened root (clippy.toml keeps it so).
pub mod process {
    use super::{stat_path, Root};
    use std::path::Path;

    /// Whether `root` is the process's own `/` (true when it cannot tell: the safe side).
    #[allow(clippy::disallowed_methods)]
    pub fn is_own_root(root: &Root) -> bool {
        match (stat_path(&root.dir, Path::new("")), std::fs::metadata("/")) {
            (Ok(Some(r)), Ok(m)) => {
                use std::os::unix::fs::MetadataExt;
                m.ino() == r.ino && m.dev() == r.dev
            }
            _ => true,
        }
    }

    /// Whether `path` (absolute, in the process's filesystem) exists.
    #[allow(clippy::disallowed_methods)]
    pub fn exists(path: &str) -> bool {
        Path::new(path).exists()
    }

    /// The contents of `path` (absolute, in the process's filesystem), if it can be read.
    #[allow(clippy::disallowed_methods)]
    pub fn read(path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve_with(links: &[(&str, &str)], path: &str, follow_last: bool) -> io::Result<String> {
        let map: HashMap<PathBuf, PathBuf> = links
            .iter()
            .map(|(a, b)| (PathBuf::from(a), PathBuf::from(b)))
            .collect();
        let p = resolve(Path::new(path), follow_last, &mut |p: &Path| {
            Ok(map.get(p).cloned())
        })?;
        Ok(p.to_string_lossy().into_owned())
    }

    #[test]
    fn resolves_like_the_image_would() {
        let links = [
            ("root", "var/roothome"),
            ("var/run", "../run"),
            ("opt", "/var/opt"),
            ("loop", "loop"),
            ("up", "../../../.."),
        ];
        assert_eq!(
            resolve_with(&links, "/root/.ssh", false).unwrap(),
            "var/roothome/.ssh"
        );
        assert_eq!(resolve_with(&links, "/root", false).unwrap(), "root");
        assert_eq!(resolve_with(&links, "/root", true).unwrap(), "var/roothome");
        assert_eq!(resolve_with(&links, "/var/run/x", false).unwrap(), "run/x");
        assert_eq!(
            resolve_with(&links, "/opt/app/bin", false).unwrap(),
            "var/opt/app/bin"
        );
        assert_eq!(
            resolve_with(&links, "/up/etc/passwd", false).unwrap(),
            "etc/passwd"
        );
        assert_eq!(resolve_with(&links, "/a/../../b", false).unwrap(), "b");
        assert!(resolve_with(&links, "/loop/x", false).is_err());
    }

    #[test]
    fn lexical_targets() {
        assert_eq!(
            lexical_target(Path::new("var/opt/x"), Path::new("../../usr/lib/opt/x")),
            Some(PathBuf::from("usr/lib/opt/x"))
        );
        assert_eq!(
            lexical_target(Path::new("var/x"), Path::new("/etc")),
            Some(PathBuf::from("etc"))
        );
        assert_eq!(
            lexical_target(Path::new("var/x"), Path::new("../../../etc")),
            None
        );
    }

    #[test]
    fn display_escapes_non_utf8() {
        assert_eq!(
            display(Path::new(OsStr::from_bytes(b"var/a\xffb"))),
            "/var/a\\xffb"
        );
        assert_eq!(display(Path::new("/etc")), "/etc");
        assert_eq!(display(Path::new("var/a\nb\r")), "/var/a\\x0ab\\x0d");
    }

    #[test]
    fn nofollow_access() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::fs::write(t.path().join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("a/link")).unwrap();
        let root = Root::open(t.path()).unwrap();
        assert_eq!(
            read_optional(&root.dir, Path::new("a/b/f")).unwrap(),
            Some(b"x".to_vec())
        );
        assert_eq!(
            read_optional(&root.dir, Path::new("a/missing")).unwrap(),
            None
        );
        assert!(read_optional(&root.dir, Path::new("a/link/passwd")).is_err());
        assert!(open_path_nofollow(&root.dir, Path::new("a/link")).is_err());
        let m = stat(&root.dir, "a/link").unwrap().unwrap();
        assert_eq!(m.kind, Kind::Symlink);
        assert!(!root.is_foreign(&m));
        assert!(create_dir_all(&root.dir, Path::new("a/link/x"), 0o755).is_err());
        assert!(!Path::new("/etc/x").exists());
        let d = create_dir_all(&root.dir, Path::new("n/m"), 0o755).unwrap();
        write_atomic(&d, OsStr::new("f"), b"hello", 0o640, None).unwrap();
        assert_eq!(std::fs::read(t.path().join("n/m/f")).unwrap(), b"hello");
    }
}
