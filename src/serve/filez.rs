//! Content objects in archive form (`.filez`), made from a bare, bare-user or bare-user-only
//! repository's `.file` objects, checked against their checksum, and cached on disk.
//!
//! # The `.filez` format (libostree's `ostree_raw_file_to_archive_z2_stream`)
//!
//! ```text
//! u32 BE   length of the header variant
//! 4 bytes  zero (pads the variant to offset 8)
//! header   GVariant (tuuuusa(ayay)): size, uid, gid, st_mode, rdev (0), symlink target
//!          ("" for a regular file), xattrs; every integer big-endian; xattr names keep
//!          their trailing NUL
//! body     raw deflate (no zlib or gzip framing) of the file's bytes; absent for a symlink
//! ```
//!
//! A client (`ostree pull`) decompresses it, rebuilds the uncompressed content stream (the
//! same framing around the header `(uuuusa(ayay))` without the size, then the bytes) and checks
//! its SHA-256 against the object's name. So do we, before anything is served: each object is
//! hashed as it is compressed and a mismatch is an error, never a response.
//!
//! # Where the metadata comes from
//!
//! | mode | regular file | symlink |
//! | --- | --- | --- |
//! | `bare` | the file's uid, gid, st_mode and xattrs | the link's lstat, target and xattrs |
//! | `bare-user` | the `user.ostreemeta` xattr: GVariant `(uuua(ayay))`, integers BE | a regular file holding the target and a NUL, `S_IFLNK` in `user.ostreemeta` |
//! | `bare-user-only` | uid 0, gid 0, the file's st_mode, no xattrs | a real symlink, uid 0, gid 0 |
//! | `bare-split-xattrs` | the file's uid, gid, st_mode; xattrs from `<object>.file-xattrs-link` (`a(ayay)`) | the link's lstat and target; xattrs likewise |
//!
//! `listxattr` order is the file system's; objects are hashed with the xattrs sorted by name and,
//! when that order differs, also in `listxattr` order, and whichever matches is served.
//!
//! # Cache
//!
//! `<cache>/<2 hex>/<62 hex>.filez`, written to a temporary file in `<cache>` and renamed into
//! place, so concurrent requests for one object at worst both compress it, and a reader never
//! sees a partial file. Objects are immutable, so the cache is never invalidated.

#![warn(missing_docs)]

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::write::DeflateEncoder;
use flate2::Compression;
use ostree::glib::{prelude::*, Variant};
use rustix::fs::{AtFlags, FileType};
use sha2::{Digest, Sha256};

use super::repo::{self, is_not_found, Mode, RepoDir};
use crate::ostree::repo::content_hasher;

/// Names keep their trailing NUL, as in the header.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Why a `.filez` object could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FilezError {
    /// The repository has no such content object (its checksum).
    #[error("no content object {0} in the repository")]
    NotFound(String),
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    #[error("object {checksum}: {what}")]
    /// The object is malformed.
    BadObject {
        /// Its checksum.
        checksum: String,
        /// What is wrong.
        what: String,
    },
    #[error(
        "object {checksum} does not match its checksum (content hashes to {got}); not serving it"
    )]
    /// The object's content does not hash to its name.
    Mismatch {
        /// Its name.
        checksum: String,
        /// What its content hashes to.
        got: String,
    },
}

fn io_ctx(context: impl Into<String>) -> impl FnOnce(io::Error) -> FilezError {
    let context = context.into();
    move |source| FilezError::Io { context, source }
}

/// A content object read from a non-archive repository.
#[derive(Debug)]
pub struct FileObject {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `st_mode`, file type included.
    pub mode: u32,
    /// The target, for a symlink (empty otherwise).
    pub symlink_target: String,
    /// The xattr orders to try: sorted by name first, then `listxattr` order if different.
    pub xattr_orders: Vec<Xattrs>,
    /// Its bytes.
    pub content: Content,
}

/// A content object's bytes, where they are.
#[derive(Debug)]
pub enum Content {
    /// A symlink: no bytes.
    None,
    /// A regular file of the given size.
    File(File, u64),
}

const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;
const S_IFREG: u32 = 0o100000;
const OSTREEMETA: &str = "user.ostreemeta";

/// Read a content object (`objects/xx/….file`) of a bare-family repository.
pub fn load(repo: &RepoDir, checksum: &str) -> Result<FileObject, FilezError> {
    let rel = repo::object_path(checksum, "file");
    let nf = |e: io::Error| {
        if is_not_found(&e) {
            FilezError::NotFound(checksum.to_string())
        } else {
            FilezError::Io {
                context: format!("reading {rel}"),
                source: e,
            }
        }
    };
    let (dir, name) = repo.open_parent(&rel).map_err(nf)?;
    let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| nf(e.into()))?;
    let bad = |what: &str| FilezError::BadObject {
        checksum: checksum.to_string(),
        what: what.to_string(),
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Symlink => {
            if repo.mode() == Mode::BareUser {
                return Err(bad("a symlink in a bare-user repository"));
            }
            let target =
                rustix::fs::readlinkat(&dir, name, Vec::new()).map_err(|e| nf(e.into()))?;
            let target = target
                .into_string()
                .map_err(|_| bad("symlink target is not UTF-8"))?;
            let (uid, gid, xattrs) = if repo.mode() == Mode::BareSplitXattrs {
                (
                    st.st_uid,
                    st.st_gid,
                    split_xattrs(repo, checksum).map_err(nf)?,
                )
            } else if repo.mode() == Mode::Bare {
                // No xattr calls on a link by descriptor: go through the directory's /proc path,
                // whose last component is not followed by l*xattr.
                let p = PathBuf::from(format!(
                    "/proc/self/fd/{}/{name}",
                    std::os::fd::AsRawFd::as_raw_fd(&dir)
                ));
                (st.st_uid, st.st_gid, link_xattrs(&p).map_err(nf)?)
            } else {
                (0, 0, Vec::new())
            };
            Ok(FileObject {
                uid,
                gid,
                mode: st.st_mode,
                symlink_target: target,
                xattr_orders: orders(xattrs),
                content: Content::None,
            })
        }
        FileType::RegularFile => {
            let mut f = repo::open_regular_at(&dir, name).map_err(nf)?;
            let size = f.metadata().map_err(nf)?.len();
            match repo.mode() {
                Mode::Bare => Ok(FileObject {
                    uid: st.st_uid,
                    gid: st.st_gid,
                    mode: st.st_mode,
                    symlink_target: String::new(),
                    xattr_orders: orders(fd_xattrs(&f).map_err(nf)?),
                    content: Content::File(f, size),
                }),
                Mode::BareSplitXattrs => Ok(FileObject {
                    uid: st.st_uid,
                    gid: st.st_gid,
                    mode: st.st_mode,
                    symlink_target: String::new(),
                    xattr_orders: orders(split_xattrs(repo, checksum).map_err(nf)?),
                    content: Content::File(f, size),
                }),
                Mode::BareUserOnly => Ok(FileObject {
                    uid: 0,
                    gid: 0,
                    mode: st.st_mode,
                    symlink_target: String::new(),
                    xattr_orders: vec![Vec::new()],
                    content: Content::File(f, size),
                }),
                Mode::BareUser => {
                    let meta = fd_xattr(&f, OSTREEMETA)
                        .map_err(nf)?
                        .ok_or_else(|| bad("no user.ostreemeta xattr"))?;
                    let (uid, gid, mode, xattrs) = parse_ostreemeta(&meta)
                        .ok_or_else(|| bad("malformed user.ostreemeta xattr"))?;
                    match mode & S_IFMT {
                        S_IFREG => Ok(FileObject {
                            uid,
                            gid,
                            mode,
                            symlink_target: String::new(),
                            xattr_orders: vec![xattrs],
                            content: Content::File(f, size),
                        }),
                        S_IFLNK => {
                            // The target, NUL-terminated.
                            let mut t = Vec::new();
                            Read::by_ref(&mut f)
                                .take(64 * 1024)
                                .read_to_end(&mut t)
                                .map_err(nf)?;
                            if t.last() == Some(&0) {
                                t.pop();
                            }
                            if t.contains(&0) {
                                return Err(bad("symlink target with a NUL"));
                            }
                            let t = String::from_utf8(t)
                                .map_err(|_| bad("symlink target is not UTF-8"))?;
                            Ok(FileObject {
                                uid,
                                gid,
                                mode,
                                symlink_target: t,
                                xattr_orders: vec![xattrs],
                                content: Content::None,
                            })
                        }
                        _ => Err(bad("user.ostreemeta names neither a file nor a symlink")),
                    }
                }
                Mode::Archive => Err(bad("archive repositories serve .filez as stored")),
            }
        }
        _ => Err(FilezError::NotFound(checksum.to_string())),
    }
}

/// The xattrs of a `bare-split-xattrs` object: `<object>.file-xattrs-link` holds `a(ayay)`;
/// no link means no xattrs.
fn split_xattrs(repo: &RepoDir, checksum: &str) -> io::Result<Xattrs> {
    let mut data = Vec::new();
    match repo.open_file(&repo::object_path(checksum, "file-xattrs-link")) {
        Ok(mut f) => {
            f.read_to_end(&mut data)?;
        }
        Err(e) if is_not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    crate::ostree::gvariant::parse_xattrs(&data)
        .map(with_nuls)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed .file-xattrs"))
}

/// A `user.ostreemeta` xattr, `(uuua(ayay))` like a dirmeta: uid, gid, mode, xattrs.
fn parse_ostreemeta(data: &[u8]) -> Option<(u32, u32, u32, Xattrs)> {
    let (uid, gid, mode, x) = crate::ostree::gvariant::parse_dirmeta(data)?;
    Some((uid, gid, mode, with_nuls(x)))
}

/// Names as a file header carries them, with their NUL.
fn with_nuls(x: crate::ostree::gvariant::Xattrs) -> Xattrs {
    x.into_iter().map(|(n, v)| (with_nul(&n), v)).collect()
}

/// Sorted order first, then the original if it differs.
fn orders(xattrs: Xattrs) -> Vec<Xattrs> {
    let mut sorted = xattrs.clone();
    sorted.sort();
    if sorted == xattrs {
        vec![sorted]
    } else {
        vec![sorted, xattrs]
    }
}

fn split_names(list: &[u8]) -> Vec<Vec<u8>> {
    list.split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn with_nul(name: &[u8]) -> Vec<u8> {
    let mut n = name.to_vec();
    n.push(0);
    n
}

fn fd_xattr(f: &File, name: &str) -> io::Result<Option<Vec<u8>>> {
    let size = match rustix::fs::fgetxattr_query(f, name) {
        Ok(n) => n,
        Err(rustix::io::Errno::NODATA) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut buf = vec![0u8; size];
    let n = rustix::fs::fgetxattr(f, name, &mut buf[..])?;
    buf.truncate(n);
    Ok(Some(buf))
}

fn fd_xattrs(f: &File) -> io::Result<Xattrs> {
    let size = rustix::fs::flistxattr_query(f)?;
    let mut list = vec![0u8; size];
    let n = rustix::fs::flistxattr(f, &mut list[..])?;
    list.truncate(n);
    let mut out = Vec::new();
    for name in split_names(&list) {
        let cname = std::ffi::CString::new(name.clone()).expect("no NUL inside");
        let size = rustix::fs::fgetxattr_query(f, cname.as_c_str())?;
        let mut v = vec![0u8; size];
        let n = rustix::fs::fgetxattr(f, cname.as_c_str(), &mut v[..])?;
        v.truncate(n);
        out.push((with_nul(&name), v));
    }
    Ok(out)
}

fn link_xattrs(p: &Path) -> io::Result<Xattrs> {
    let size = rustix::fs::llistxattr_query(p)?;
    let mut list = vec![0u8; size];
    let n = rustix::fs::llistxattr(p, &mut list[..])?;
    list.truncate(n);
    let mut out = Vec::new();
    for name in split_names(&list) {
        let cname = std::ffi::CString::new(name.clone()).expect("no NUL inside");
        let size = rustix::fs::lgetxattr_query(p, cname.as_c_str())?;
        let mut v = vec![0u8; size];
        let n = rustix::fs::lgetxattr(p, cname.as_c_str(), &mut v[..])?;
        v.truncate(n);
        out.push((with_nul(&name), v));
    }
    Ok(out)
}

/// The content-object header `(uuuusa(ayay))` (what the checksum covers).
pub fn file_header(o: &FileObject, xattrs: &Xattrs) -> Variant {
    (
        o.uid.to_be(),
        o.gid.to_be(),
        o.mode.to_be(),
        0u32,
        o.symlink_target.as_str(),
        xattrs.clone(),
    )
        .to_variant()
}

/// The archive header `(tuuuusa(ayay))`.
pub fn zlib_header(o: &FileObject, xattrs: &Xattrs) -> Variant {
    let size = match &o.content {
        Content::File(_, n) => *n,
        Content::None => 0,
    };
    (
        size.to_be(),
        o.uid.to_be(),
        o.gid.to_be(),
        o.mode.to_be(),
        0u32,
        o.symlink_target.as_str(),
        xattrs.clone(),
    )
        .to_variant()
}

/// Write `o` as a `.filez` stream to `out`, checking it against `checksum`.
/// Returns the number of bytes written.
pub fn write_archive(
    o: FileObject,
    checksum: &str,
    level: u32,
    out: &mut impl Write,
) -> Result<u64, FilezError> {
    let mut hashers: Vec<Sha256> = o
        .xattr_orders
        .iter()
        .map(|x| content_hasher(&file_header(&o, x)))
        .collect();
    let hasher_done = |hashers: Vec<Sha256>| -> Result<usize, FilezError> {
        let mut got = String::new();
        for (i, h) in hashers.into_iter().enumerate() {
            let d = hex::encode(h.finalize());
            if d == checksum {
                return Ok(i);
            }
            if got.is_empty() {
                got = d;
            }
        }
        Err(FilezError::Mismatch {
            checksum: checksum.to_string(),
            got,
        })
    };
    // The header goes first and depends on which xattr order matches, known only after
    // hashing. With one candidate (nearly always) stream straight to `out`.
    let w = |e| FilezError::Io {
        context: format!("writing .filez for {checksum}"),
        source: e,
    };
    if hashers.len() == 1 {
        let hdr = zlib_header(&o, &o.xattr_orders[0]);
        let mut n = write_framed(out, &hdr).map_err(w)?;
        if let Content::File(f, _) = o.content {
            let mut counter = CountingWriter { inner: out, n: 0 };
            let mut enc = DeflateEncoder::new(&mut counter, Compression::new(level));
            pump(f, &mut hashers, &mut enc, checksum)?;
            enc.finish().map_err(w)?;
            n += counter.n;
        }
        hasher_done(hashers)?;
        return Ok(n);
    }
    // Several candidate orders: compress the body aside, then write the matching header.
    let mut body = Vec::new();
    if let Content::File(ref f, _) = o.content {
        let mut enc = DeflateEncoder::new(&mut body, Compression::new(level));
        pump(f, &mut hashers, &mut enc, checksum)?;
        enc.finish().map_err(w)?;
    }
    let i = hasher_done(hashers)?;
    let hdr = zlib_header(&o, &o.xattr_orders[i]);
    let mut n = write_framed(out, &hdr).map_err(w)?;
    if matches!(o.content, Content::File(..)) {
        out.write_all(&body).map_err(w)?;
        n += body.len() as u64;
    }
    Ok(n)
}

fn pump(
    mut f: impl Read,
    hashers: &mut [Sha256],
    enc: &mut impl Write,
    checksum: &str,
) -> Result<(), FilezError> {
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let k = f
            .read(&mut buf)
            .map_err(io_ctx(format!("reading object {checksum}")))?;
        if k == 0 {
            return Ok(());
        }
        for h in hashers.iter_mut() {
            h.update(&buf[..k]);
        }
        enc.write_all(&buf[..k])
            .map_err(io_ctx(format!("writing .filez for {checksum}")))?;
    }
}

fn write_framed(out: &mut impl Write, v: &Variant) -> io::Result<u64> {
    let data = v.data();
    out.write_all(&(data.len() as u32).to_be_bytes())?;
    out.write_all(&[0u8; 4])?;
    out.write_all(data)?;
    Ok(8 + data.len() as u64)
}

struct CountingWriter<'a, W> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(b)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The on-disk cache of translated objects.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    level: u32,
}

impl Cache {
    /// `dir` is created if missing. `level` is the deflate level (0–9).
    pub fn new(dir: PathBuf, level: u32) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Cache {
            dir,
            level: level.min(9),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `.filez` form of a content object: from the cache, or made now (and cached).
    /// Returns the open file and whether it was made by this call.
    pub fn get(&self, repo: &RepoDir, checksum: &str) -> Result<(File, bool), FilezError> {
        let sub = self.dir.join(&checksum[..2]);
        let path = sub.join(format!("{}.filez", &checksum[2..]));
        match File::open(&path) {
            Ok(f) => return Ok((f, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_ctx(format!("opening {}", path.display()))(e)),
        }
        let o = load(repo, checksum)?;
        std::fs::create_dir_all(&sub).map_err(io_ctx(format!("creating {}", sub.display())))?;
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(io_ctx(format!("temporary file in {}", self.dir.display())))?;
        let mut w = BufWriter::with_capacity(256 * 1024, tmp);
        write_archive(o, checksum, self.level, &mut w)?;
        let tmp = w
            .into_inner()
            .map_err(|e| io_ctx("flushing the .filez")(e.into_error()))?;
        tmp.persist(&path)
            .map_err(|e| io_ctx(format!("renaming into {}", path.display()))(e.error))?;
        let f = File::open(&path).map_err(io_ctx(format!("opening {}", path.display())))?;
        Ok((f, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::DeflateDecoder;

    fn obj(content: &[u8], dir: &Path, xattrs: Xattrs) -> FileObject {
        let p = dir.join("f");
        std::fs::write(&p, content).unwrap();
        FileObject {
            uid: 0,
            gid: 0,
            mode: S_IFREG | 0o4755,
            symlink_target: String::new(),
            xattr_orders: orders(xattrs),
            content: Content::File(File::open(&p).unwrap(), content.len() as u64),
        }
    }

    fn checksum_of(o: &FileObject, x: &Xattrs, content: &[u8]) -> String {
        let mut h = content_hasher(&file_header(o, x));
        h.update(content);
        hex::encode(h.finalize())
    }

    /// Parse a .filez the way libostree's `ostree_content_stream_parse` does.
    fn parse(z: &[u8]) -> (Variant, Vec<u8>) {
        let len = u32::from_be_bytes(z[..4].try_into().unwrap()) as usize;
        assert_eq!(&z[4..8], &[0, 0, 0, 0]);
        let v = Variant::from_bytes_with_type(
            &ostree::glib::Bytes::from(&z[8..8 + len]),
            ostree::glib::VariantTy::new("(tuuuusa(ayay))").unwrap(),
        );
        let mut body = Vec::new();
        DeflateDecoder::new(&z[8 + len..])
            .read_to_end(&mut body)
            .unwrap();
        (v, body)
    }

    #[test]
    fn round_trip_and_verification() {
        let d = tempfile::tempdir().unwrap();
        let content = b"hello world\n".repeat(1000);
        let x: Xattrs = vec![
            (b"user.b\0".to_vec(), b"2".to_vec()),
            (b"user.a\0".to_vec(), b"1".to_vec()),
        ];
        // The object was checksummed with the listxattr order (b before a).
        let o = obj(&content, d.path(), x.clone());
        let c = checksum_of(&o, &x, &content);
        let mut out = Vec::new();
        write_archive(o, &c, 6, &mut out).unwrap();
        let (v, body) = parse(&out);
        assert_eq!(body, content);
        let (size, _, _, mode, rdev, target, xs): (u64, u32, u32, u32, u32, String, Xattrs) =
            v.get().unwrap();
        assert_eq!(u64::from_be(size), content.len() as u64);
        assert_eq!(u32::from_be(mode), S_IFREG | 0o4755);
        assert_eq!((rdev, target.as_str()), (0, ""));
        assert_eq!(xs, x);

        // A wrong checksum is refused.
        let o = obj(&content, d.path(), x.clone());
        let e = write_archive(o, &"0".repeat(64), 6, &mut Vec::new()).unwrap_err();
        assert!(matches!(e, FilezError::Mismatch { .. }), "{e}");
    }

    #[test]
    fn empty_file_and_symlink() {
        let d = tempfile::tempdir().unwrap();
        let o = obj(b"", d.path(), Vec::new());
        let c = checksum_of(&o, &Vec::new(), b"");
        let mut out = Vec::new();
        write_archive(o, &c, 6, &mut out).unwrap();
        assert_eq!(parse(&out).1, b"");

        let l = FileObject {
            uid: 0,
            gid: 0,
            mode: S_IFLNK | 0o777,
            symlink_target: "../target".into(),
            xattr_orders: vec![Vec::new()],
            content: Content::None,
        };
        let c = checksum_of(&l, &Vec::new(), b"");
        let mut out = Vec::new();
        let n = write_archive(l, &c, 6, &mut out).unwrap();
        assert_eq!(n as usize, out.len());
        let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
        assert_eq!(out.len(), 8 + len, "no body after a symlink's header");
    }

    #[test]
    fn ostreemeta() {
        let v = (
            1000u32.to_be(),
            100u32.to_be(),
            (S_IFREG | 0o644).to_be(),
            vec![(b"user.x\0".to_vec(), b"v".to_vec())],
        )
            .to_variant();
        let (u, g, m, x) = parse_ostreemeta(v.data()).unwrap();
        assert_eq!((u, g, m), (1000, 100, S_IFREG | 0o644));
        assert_eq!(x, vec![(b"user.x\0".to_vec(), b"v".to_vec())]);
        assert!(parse_ostreemeta(b"junk").is_none());
    }
}
