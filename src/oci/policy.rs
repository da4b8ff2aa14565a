//! What happens to each tar entry of an image layer: the path and whiteout rules as one pure
//! function, [`classify`].
//!
//! # Rules, in order
//!
//! 1. The path is split on `/`; empty and `.` components are dropped, so `./usr/bin`,
//!    `/usr/bin` and `usr//bin` are the same path (absolute paths are normalised, never
//!    followed). A `..` component rejects the layer. Names must be UTF-8 (ostree stores
//!    names as strings).
//! 2. Nothing left: the entry is the layer's root directory ([`Disposition::Root`]).
//! 3. A first component `etc` becomes `usr/etc` (ostree keeps the image's /etc there and
//!    merges it into the machine's /etc at deploy time).
//! 4. Whiteouts (OCI image spec, "Whiteouts"): a last component `.wh..wh..opq` makes its
//!    directory opaque (lower layers' children hidden); `.wh.<name>` deletes `<name>` from
//!    lower layers; other `.wh..wh.` names are aufs bookkeeping and are dropped.
//! 5. Anything below /run, /tmp, /proc, /sys or /dev is dropped (the directories themselves
//!    are kept); these are mounted over at runtime.
//! 6. Zero-size regular files /etc/hostname and /etc/resolv.conf are dropped: buildah and
//!    podman leave them behind as mount points.
//! 7. Character and block devices and FIFOs cannot be stored by ostree: the layer is
//!    rejected, naming the path. (Those under /dev were already dropped by rule 5.)
//! 8. PAX global headers (`pax_global_header`, type `g`, as `git archive` writes) are
//!    dropped: Go's tar reader returns them as entries of their own and umoci ignores them.
//!    Old GNU sparse entries (type `S`) are refused, as umoci refuses them; PAX sparse files
//!    are expanded by [`crate::host::sparse`].
//! 9. Limits ([`crate::oci::limits`]): a name longer than 255 bytes or a path longer than
//!    4095 bytes (as `/usr/…`) rejects the layer; so do a symlink target that is empty,
//!    longer than 4095 bytes or holds a NUL ([`symlink_target`]), and an owner id that is
//!    negative or above 4294967294 ([`owner_id`]): ids are never wrapped.
//!
//! Whiteouts are recognised by the last component only, as umoci and containers/storage do:
//! `usr/.wh.bin/x` is a file `x` in a directory named `.wh.bin`, and deletes nothing.
//!
//! # Security
//!
//! The output path never contains `..`, never starts with `/` and never is empty; whether a
//! parent of the path is a symlink is decided later, against the tree being built (see
//! [`crate::ostree::tree`]), where writes through a symlink are rejected.

use std::fmt;
use std::io::{self, Read};

use super::limits::{ID_MAX, NAME_MAX, PATH_MAX, SYMLINK_TARGET_MAX};

/// Type of a tar entry, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Regular file (`0`, the old `\0`, or contiguous `7`).
    Regular,
    /// Directory (`5`).
    Directory,
    /// Symbolic link (`2`).
    Symlink,
    /// Hard link to an earlier entry (`1`).
    Hardlink,
    /// Character device (`3`).
    CharDevice,
    /// Block device (`4`).
    BlockDevice,
    /// Named pipe (`6`).
    Fifo,
    /// A PAX global header (`g`).
    PaxGlobalHeader,
    /// Any other tar entry type (GNU sparse, …), named by its type byte.
    Other(u8),
}

/// Why an entry was dropped (counted in the import summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filtered {
    /// Below /run, /tmp, /proc, /sys or /dev.
    Volatile,
    /// Zero-size /etc/hostname or /etc/resolv.conf left by the build tool.
    BuildToolStub,
    /// `.wh..wh.*` aufs metadata.
    AufsMetadata,
    /// A PAX global header.
    PaxGlobalHeader,
}

/// Why the layer is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// A `..` component.
    DotDot,
    /// The name is not UTF-8.
    NotUtf8,
    /// A whiteout with no name after `.wh.`.
    EmptyWhiteout,
    /// ostree cannot store this type of file.
    Unsupported(EntryKind),
    /// A NUL byte in a name (possible in PAX `path` records and GNU long names).
    NulInName,
    /// An extended attribute name that is empty or holds a NUL byte.
    BadXattrName(String),
    /// A path component longer than [`NAME_MAX`].
    NameTooLong(usize),
    /// A path longer than [`PATH_MAX`].
    PathTooLong(usize),
    /// A symlink with an empty target.
    SymlinkEmpty,
    /// A symlink target holding a NUL byte.
    SymlinkNul,
    /// A symlink target longer than [`SYMLINK_TARGET_MAX`].
    SymlinkTooLong(usize),
    /// A symlink target that is not UTF-8.
    SymlinkNotUtf8,
    /// A uid or gid that is negative, too large or not a number (which, value as written).
    BadOwner(&'static str, String),
    /// A PAX sparse file that cannot be read (why).
    BadSparse(String),
}

/// The outcome for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Store at this path (relative, normalised, `etc` mapped to `usr/etc`).
    Keep(String),
    /// The layer's root directory: its metadata is the root's.
    Root,
    /// Remove `name` in `dir` ("" for the root) from the lower layers.
    Whiteout {
        /// The directory holding the whiteout.
        dir: String,
        /// The name it deletes.
        name: String,
    },
    /// Hide the lower layers' children of `dir`.
    Opaque {
        /// The directory holding the opaque marker.
        dir: String,
    },
    /// Dropped without error.
    Filtered(Filtered),
    /// The whole layer is rejected.
    Reject(Rejected),
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::DotDot => f.write_str("path contains a `..` component"),
            Rejected::NotUtf8 => f.write_str("path is not valid UTF-8"),
            Rejected::EmptyWhiteout => f.write_str("whiteout names no file"),
            Rejected::Unsupported(EntryKind::CharDevice) => {
                f.write_str("character device nodes cannot be stored in ostree (only below /dev, which is dropped)")
            }
            Rejected::Unsupported(EntryKind::BlockDevice) => {
                f.write_str("block device nodes cannot be stored in ostree (only below /dev, which is dropped)")
            }
            Rejected::Unsupported(EntryKind::Fifo) => {
                f.write_str("FIFOs cannot be stored in ostree (only below /dev, which is dropped)")
            }
            Rejected::Unsupported(EntryKind::Other(b'S')) => f.write_str(
                "old GNU sparse file (tar type 'S'): umoci and podman refuse these too; \
                 write the layer with `tar --format=pax` (PAX sparse files are read)",
            ),
            Rejected::Unsupported(EntryKind::Other(t)) => {
                write!(f, "unsupported tar entry type {:?}", char::from(*t))
            }
            Rejected::Unsupported(k) => write!(f, "unsupported entry type {k:?}"),
            Rejected::NameTooLong(n) => write!(
                f,
                "a name of {n} bytes is longer than the kernel's NAME_MAX ({NAME_MAX})"
            ),
            Rejected::PathTooLong(n) => write!(
                f,
                "a path of {n} bytes is longer than the kernel's PATH_MAX ({PATH_MAX} bytes without the NUL)"
            ),
            Rejected::NulInName => f.write_str(
                "path holds a NUL byte (Go's tar reader refuses it; ostree cannot store it)",
            ),
            Rejected::BadXattrName(n) => write!(
                f,
                "extended attribute name {n:?} is empty or holds a NUL byte (Go's tar reader refuses it)"
            ),
            Rejected::SymlinkEmpty => f.write_str("symlink with an empty target"),
            Rejected::SymlinkNul => f.write_str(
                "symlink target holds a NUL byte (ostree stores it as a string, which cannot)",
            ),
            Rejected::SymlinkTooLong(n) => write!(
                f,
                "symlink target of {n} bytes is longer than the kernel accepts ({SYMLINK_TARGET_MAX})"
            ),
            Rejected::SymlinkNotUtf8 => f.write_str("symlink target is not valid UTF-8"),
            Rejected::BadOwner(which, v) => write!(
                f,
                "{which} {v} is out of range (0 to {ID_MAX}); ids are never wrapped: give the file an owner in range"
            ),
            Rejected::BadSparse(why) => write!(f, "PAX sparse file: {why}"),
        }
    }
}

const VOLATILE: &[&str] = &["run", "tmp", "proc", "sys", "dev"];
const WH_PREFIX: &str = ".wh.";
const WH_OPAQUE: &str = ".wh..wh..opq";
const WH_META_PREFIX: &str = ".wh..wh.";

/// Split and normalise a raw tar path into components, mapping `etc` to `usr/etc`.
/// `Err` for `..`, non-UTF-8, a name longer than [`NAME_MAX`] or a path longer than
/// [`PATH_MAX`] (counted as `/` followed by the normalised path).
pub fn normalize(path: &[u8]) -> Result<Vec<&str>, Rejected> {
    // Checked first, so that the split below never handles a huge path.
    if path.len() > PATH_MAX * 2 + 8 {
        return Err(Rejected::PathTooLong(path.len()));
    }
    let s = std::str::from_utf8(path).map_err(|_| Rejected::NotUtf8)?;
    let mut out = Vec::new();
    let mut len = 0;
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(Rejected::DotDot),
            c if c.contains('\0') => return Err(Rejected::NulInName),
            c if c.len() > NAME_MAX => return Err(Rejected::NameTooLong(c.len())),
            c => {
                len += 1 + c.len();
                out.push(c);
            }
        }
    }
    if out.first() == Some(&"etc") {
        out.splice(0..1, ["usr", "etc"]);
        len += "/usr".len();
    }
    if len > PATH_MAX {
        return Err(Rejected::PathTooLong(len));
    }
    Ok(out)
}

/// An extended attribute name from a PAX `SCHILY.xattr.<name>` record: non-empty, no NUL
/// (ostree stores the name NUL-terminated, and the kernel takes it as a C string).
pub fn xattr_name(name: &str) -> Result<&str, Rejected> {
    if name.is_empty() || name.contains('\0') {
        return Err(Rejected::BadXattrName(name.to_string()));
    }
    Ok(name)
}

/// A symlink target as ostree can store it: non-empty, UTF-8, no NUL, at most
/// [`SYMLINK_TARGET_MAX`] bytes. The target is not interpreted (it may be absolute or hold
/// `..`: it is resolved on the machine, never while importing).
pub fn symlink_target(target: &[u8]) -> Result<&str, Rejected> {
    if target.is_empty() {
        return Err(Rejected::SymlinkEmpty);
    }
    if target.contains(&0) {
        return Err(Rejected::SymlinkNul);
    }
    if target.len() > SYMLINK_TARGET_MAX {
        return Err(Rejected::SymlinkTooLong(target.len()));
    }
    std::str::from_utf8(target).map_err(|_| Rejected::SymlinkNotUtf8)
}

/// The uid or gid of a tar entry (`which` names it in errors): the PAX record when there is
/// one (decimal digits only), else the header field, octal or base-256 (GNU; a first byte
/// with `0x40` set is negative). Negative values and values above [`ID_MAX`] are refused,
/// never wrapped.
pub fn owner_id(which: &'static str, pax: Option<&[u8]>, field: &[u8]) -> Result<u32, Rejected> {
    let bad = |v: String| Rejected::BadOwner(which, v);
    let value: u64 = match pax {
        Some(v) => {
            let s = String::from_utf8_lossy(v);
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("{s:?} (PAX record)")));
            }
            s.parse().map_err(|_| bad(format!("{s} (PAX record)")))?
        }
        None => match field.first() {
            Some(b) if b & 0x80 != 0 => {
                if b & 0x40 != 0 {
                    return Err(bad("negative (base-256 header field)".into()));
                }
                let mut v: u64 = u64::from(b & 0x3f);
                for &byte in &field[1..] {
                    v = v
                        .checked_mul(256)
                        .map(|v| v | u64::from(byte))
                        .ok_or_else(|| bad("above 2^64 (base-256 header field)".into()))?;
                }
                v
            }
            _ => {
                let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
                let s = String::from_utf8_lossy(&field[..end]);
                let t = s.trim_matches(' ');
                if t.is_empty() {
                    0
                } else {
                    u64::from_str_radix(t, 8).map_err(|_| bad(format!("{s:?} (header field)")))?
                }
            }
        },
    };
    if value > ID_MAX {
        return Err(bad(value.to_string()));
    }
    Ok(value as u32)
}

/// Decide what to do with one tar entry. `size` is the entry's content size.
pub fn classify(path: &[u8], kind: EntryKind, size: u64) -> Disposition {
    if kind == EntryKind::PaxGlobalHeader {
        return Disposition::Filtered(Filtered::PaxGlobalHeader);
    }
    let comps = match normalize(path) {
        Ok(c) => c,
        Err(r) => return Disposition::Reject(r),
    };
    let Some((&last, parents)) = comps.split_last() else {
        return Disposition::Root;
    };
    let dir = parents.join("/");
    // Rule 5 applies to whiteouts too: nothing below the volatile directories matters.
    if comps.len() > 1 && VOLATILE.contains(&comps[0]) {
        return Disposition::Filtered(Filtered::Volatile);
    }
    if last == WH_OPAQUE {
        return Disposition::Opaque { dir };
    }
    if last.starts_with(WH_META_PREFIX) {
        return Disposition::Filtered(Filtered::AufsMetadata);
    }
    if let Some(name) = last.strip_prefix(WH_PREFIX) {
        if name.is_empty() || name == "." || name == ".." {
            return Disposition::Reject(Rejected::EmptyWhiteout);
        }
        // `.wh.etc` at the root removes usr/etc.
        if parents.is_empty() && name == "etc" {
            return Disposition::Whiteout {
                dir: "usr".into(),
                name: "etc".into(),
            };
        }
        return Disposition::Whiteout {
            dir,
            name: name.to_string(),
        };
    }
    match kind {
        EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Fifo | EntryKind::Other(_) => {
            return Disposition::Reject(Rejected::Unsupported(kind))
        }
        _ => {}
    }
    if kind == EntryKind::Regular
        && size == 0
        && comps.len() == 3
        && dir == "usr/etc"
        && (last == "hostname" || last == "resolv.conf")
        && path_is_top_etc(path)
    {
        return Disposition::Filtered(Filtered::BuildToolStub);
    }
    Disposition::Keep(comps.join("/"))
}

/// Was the raw path under /etc (rather than /usr/etc)? Only /etc stubs are the build tool's.
fn path_is_top_etc(path: &[u8]) -> bool {
    let s = String::from_utf8_lossy(path);
    s.trim_start_matches("./")
        .trim_start_matches('/')
        .starts_with("etc/")
}

/// The owner (uid, gid) of a tar entry, from its PAX records or header, never wrapped (see
/// [`owner_id`]).
pub fn entry_owner<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<(u32, u32), Rejected> {
    let pax = pax_records(entry).map_err(|e| Rejected::BadOwner("owner", e.to_string()))?;
    owners(&pax, entry.header())
}

/// The owner (uid, gid) from already-read PAX records (the last value of a key wins) or the
/// header's fields, each through [`owner_id`].
pub fn owners(pax: &[(String, Vec<u8>)], h: &tar::Header) -> Result<(u32, u32), Rejected> {
    let value = |k: &str| {
        pax.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| &v[..])
    };
    let h = h.as_old();
    Ok((
        owner_id("uid", value("uid"), &h.uid)?,
        owner_id("gid", value("gid"), &h.gid)?,
    ))
}

/// The entry's PAX records, in order (keys that are not UTF-8 are skipped).
pub fn pax_records<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Ok(key) = ext.key() {
                out.push((key.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::EntryKind;
    use super::{
        classify, normalize, owner_id, symlink_target, xattr_name, Disposition, Filtered as F,
        Rejected,
    };
    use Disposition::*;
    use EntryKind::*;

    fn keep(s: &str) -> Disposition {
        Keep(s.into())
    }

    #[test]
    fn table() {
        let wh = |d: &str, n: &str| Whiteout {
            dir: d.into(),
            name: n.into(),
        };
        let table: Vec<(&str, EntryKind, u64, Disposition)> = vec![
            ("./", Directory, 0, Root),
            ("/", Directory, 0, Root),
            (".", Directory, 0, Root),
            ("usr/bin/bash", Regular, 10, keep("usr/bin/bash")),
            ("./usr//bin/./bash", Regular, 10, keep("usr/bin/bash")),
            ("/usr/bin/bash", Regular, 10, keep("usr/bin/bash")),
            ("etc", Directory, 0, keep("usr/etc")),
            ("./etc/passwd", Regular, 5, keep("usr/etc/passwd")),
            ("usr/etc/passwd", Regular, 5, keep("usr/etc/passwd")),
            ("etcetera/x", Regular, 5, keep("etcetera/x")),
            ("var/etc/x", Regular, 5, keep("var/etc/x")),
            ("../x", Regular, 1, Reject(Rejected::DotDot)),
            ("usr/../../x", Regular, 1, Reject(Rejected::DotDot)),
            ("usr/..", Directory, 0, Reject(Rejected::DotDot)),
            ("usr/bin/..foo", Regular, 1, keep("usr/bin/..foo")),
            ("run", Directory, 0, keep("run")),
            ("run/lock", Directory, 0, Filtered(F::Volatile)),
            ("tmp/x", Regular, 1, Filtered(F::Volatile)),
            ("./proc/1", Directory, 0, Filtered(F::Volatile)),
            ("sys/x", Symlink, 0, Filtered(F::Volatile)),
            ("dev/null", CharDevice, 0, Filtered(F::Volatile)),
            ("dev/sda", BlockDevice, 0, Filtered(F::Volatile)),
            ("dev/.wh.x", Regular, 0, Filtered(F::Volatile)),
            ("var/run", Symlink, 0, keep("var/run")),
            ("var/tmp/x", Regular, 1, keep("var/tmp/x")),
            ("usr/lib/x.wh.y", Regular, 1, keep("usr/lib/x.wh.y")),
            ("etc/hostname", Regular, 0, Filtered(F::BuildToolStub)),
            ("./etc/resolv.conf", Regular, 0, Filtered(F::BuildToolStub)),
            ("etc/hostname", Regular, 9, keep("usr/etc/hostname")),
            ("etc/resolv.conf", Symlink, 0, keep("usr/etc/resolv.conf")),
            ("usr/etc/hostname", Regular, 0, keep("usr/etc/hostname")),
            ("etc/hosts", Regular, 0, keep("usr/etc/hosts")),
            ("usr/bin/.wh.foo", Regular, 0, wh("usr/bin", "foo")),
            (".wh.opt", Regular, 0, wh("", "opt")),
            (".wh.etc", Regular, 0, wh("usr", "etc")),
            ("etc/.wh.motd", Regular, 0, wh("usr/etc", "motd")),
            (
                "usr/share/.wh..wh..opq",
                Regular,
                0,
                Opaque {
                    dir: "usr/share".into(),
                },
            ),
            (".wh..wh..opq", Regular, 0, Opaque { dir: "".into() }),
            (
                "etc/.wh..wh..opq",
                Regular,
                0,
                Opaque {
                    dir: "usr/etc".into(),
                },
            ),
            ("usr/.wh..wh.plnk", Directory, 0, Filtered(F::AufsMetadata)),
            ("usr/.wh.", Regular, 0, Reject(Rejected::EmptyWhiteout)),
            ("usr/.wh..", Regular, 0, Reject(Rejected::EmptyWhiteout)),
            ("usr/.wh...", Regular, 0, Reject(Rejected::EmptyWhiteout)),
            ("usr/fifo", Fifo, 0, Reject(Rejected::Unsupported(Fifo))),
            (
                "usr/null",
                CharDevice,
                0,
                Reject(Rejected::Unsupported(CharDevice)),
            ),
            (
                "var/sda",
                BlockDevice,
                0,
                Reject(Rejected::Unsupported(BlockDevice)),
            ),
            (
                "usr/sparse",
                Other(b'S'),
                0,
                Reject(Rejected::Unsupported(Other(b'S'))),
            ),
            ("usr/link", Hardlink, 0, keep("usr/link")),
        ];
        for (path, kind, size, want) in table {
            assert_eq!(
                classify(path.as_bytes(), kind, size),
                want,
                "{path} {kind:?}"
            );
        }
    }

    #[test]
    fn limits_table() {
        let name = |n: usize| format!("usr/{}", "n".repeat(n));
        // Paths of exactly `n` bytes counted as `/usr/…`.
        let path = |n: usize| {
            let rest = n - "/usr/".len();
            let k = (rest - 1) / 2;
            format!("usr/{}{}", "p/".repeat(k), "q".repeat(rest - 2 * k))
        };
        assert_eq!(format!("/{}", path(4095)).len(), 4095);
        let table: Vec<(String, EntryKind, Disposition)> = vec![
            (name(255), Regular, keep(&name(255))),
            (name(256), Regular, Reject(Rejected::NameTooLong(256))),
            (name(5000), Directory, Reject(Rejected::NameTooLong(5000))),
            ("usr/a\0b".into(), Regular, Reject(Rejected::NulInName)),
            ("usr/ab\0".into(), Regular, Reject(Rejected::NulInName)),
            (path(4095), Regular, keep(&path(4095))),
            (path(4096), Regular, Reject(Rejected::PathTooLong(4096))),
            // `etc` becomes `usr/etc`: four bytes more.
            (
                format!("etc/{}", &path(4092)[4..]),
                Regular,
                Reject(Rejected::PathTooLong(4096)),
            ),
            // Dropped components do not count; a huge path is refused before it is split.
            (format!("./{}", path(4095)), Regular, keep(&path(4095))),
            (
                "a/".repeat(100_000),
                Directory,
                Reject(Rejected::PathTooLong(200_000)),
            ),
            // The whiteout rules look at the last component only.
            ("usr/.wh.bin/x".into(), Regular, keep("usr/.wh.bin/x")),
            (
                "usr/.wh..wh..opq/x".into(),
                Regular,
                keep("usr/.wh..wh..opq/x"),
            ),
            (
                "pax_global_header".into(),
                PaxGlobalHeader,
                Filtered(F::PaxGlobalHeader),
            ),
            (
                "../evil".into(),
                PaxGlobalHeader,
                Filtered(F::PaxGlobalHeader),
            ),
        ];
        for (p, kind, want) in table {
            assert_eq!(
                classify(p.as_bytes(), kind, 1),
                want,
                "{} {kind:?}",
                p.len()
            );
        }
    }

    #[test]
    fn xattr_names() {
        assert_eq!(xattr_name("user.a"), Ok("user.a"));
        assert!(xattr_name("").is_err());
        assert!(xattr_name("user.a\0security.evil").is_err());
    }

    #[test]
    fn symlink_targets() {
        let long = "t".repeat(4095);
        let table: Vec<(&[u8], Result<&str, Rejected>)> = vec![
            (b"../lib/x", Ok("../lib/x")),
            (b"/abs/x", Ok("/abs/x")),
            (long.as_bytes(), Ok(&long)),
            (&[b't'; 4096], Err(Rejected::SymlinkTooLong(4096))),
            (&[b'x'; 5000], Err(Rejected::SymlinkTooLong(5000))),
            (b"", Err(Rejected::SymlinkEmpty)),
            (b"/usr/bin\0evil", Err(Rejected::SymlinkNul)),
            (b"\0", Err(Rejected::SymlinkNul)),
            (b"\xff", Err(Rejected::SymlinkNotUtf8)),
        ];
        for (t, want) in table {
            assert_eq!(symlink_target(t), want, "{}", String::from_utf8_lossy(t));
        }
    }

    /// Header fields as tar writes them: 7 octal digits and a NUL, or base-256 (GNU).
    fn octal(v: u64) -> [u8; 8] {
        let mut f = [0u8; 8];
        f[..7].copy_from_slice(format!("{v:07o}").as_bytes());
        f
    }

    fn base256(v: i64) -> [u8; 8] {
        let mut f = v.to_be_bytes();
        f[0] |= 0x80;
        f
    }

    #[test]
    fn owner_ids_are_never_wrapped() {
        let bad = |v: &str| Err(Rejected::BadOwner("uid", v.into()));
        type Case<'a> = (Option<&'a [u8]>, [u8; 8], Result<u32, Rejected>);
        let table: Vec<Case> = vec![
            (None, octal(0), Ok(0)),
            (None, octal(1000), Ok(1000)),
            (None, octal(0o7777777), Ok(0o7777777)),
            (None, *b"  1750 \0", Ok(1000)),
            (None, [0; 8], Ok(0)),
            (None, base256(70_000), Ok(70_000)),
            (None, base256(4294967294), Ok(4294967294)),
            (None, base256(4294967295), bad("4294967295")),
            (None, base256(1 << 32), bad("4294967296")),
            (None, base256(-1), bad("negative (base-256 header field)")),
            (None, [0xff; 8], bad("negative (base-256 header field)")),
            (None, *b"12x4567\0", bad("\"12x4567\" (header field)")),
            (Some(b"4294967294"), octal(5), Ok(4294967294)),
            (Some(b"0"), base256(-1), Ok(0)),
            (Some(b"4294967296"), octal(0), bad("4294967296")),
            (
                Some(b"18446744073709551616"),
                octal(0),
                bad("18446744073709551616 (PAX record)"),
            ),
            (Some(b"-1"), octal(0), bad("\"-1\" (PAX record)")),
            (Some(b"+5"), octal(0), bad("\"+5\" (PAX record)")),
            (Some(b""), octal(0), bad("\"\" (PAX record)")),
            (Some(b" 5"), octal(0), bad("\" 5\" (PAX record)")),
        ];
        for (pax, field, want) in table {
            assert_eq!(owner_id("uid", pax, &field), want, "{pax:?} {field:?}");
        }
    }

    /// Arbitrary bytes never panic the classifiers, and what they keep is within the limits.
    #[test]
    fn fuzz_classifiers_never_panic() {
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet: &[&[u8]] = &[
            b"/",
            b".",
            b"..",
            b".wh.",
            b".wh..wh..opq",
            b"etc",
            b"a",
            b"\0",
            b"\xff",
            b"\xc3\xa9",
            b"dev",
            b"usr",
        ];
        let kinds = [
            Regular,
            Directory,
            Symlink,
            Hardlink,
            Fifo,
            Other(b'S'),
            PaxGlobalHeader,
        ];
        for _ in 0..20_000 {
            let mut p = Vec::new();
            let parts = next() % 12;
            for _ in 0..parts {
                let n = next() as usize;
                p.extend_from_slice(alphabet[n % alphabet.len()]);
                if n % 97 == 0 {
                    p.extend(std::iter::repeat(b'n').take(next() as usize % 600));
                }
            }
            let kind = kinds[next() as usize % kinds.len()];
            if let Keep(k) = classify(&p, kind, next() % 3) {
                assert!(
                    !k.is_empty() && !k.starts_with('/') && k.len() < 4095,
                    "{k:?}"
                );
                assert!(k
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != ".." && c.len() <= 255));
            }
            let _ = normalize(&p);
            let _ = symlink_target(&p);
            let mut field = [0u8; 8];
            field.copy_from_slice(&next().to_le_bytes());
            if let Ok(id) = owner_id("gid", None, &field) {
                assert!(id < u32::MAX);
            }
            let _ = owner_id("gid", Some(&p), &field);
        }
    }

    #[test]
    fn not_utf8() {
        assert_eq!(classify(b"usr/\xff", Regular, 0), Reject(Rejected::NotUtf8));
    }

    #[test]
    fn messages_name_the_problem() {
        assert!(Rejected::Unsupported(CharDevice)
            .to_string()
            .contains("character device"));
        assert!(Rejected::Unsupported(Fifo).to_string().contains("FIFO"));
        assert!(Rejected::DotDot.to_string().contains(".."));
    }
}
