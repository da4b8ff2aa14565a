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
//!
//! # Security
//!
//! The output path never contains `..`, never starts with `/` and never is empty; whether a
//! parent of the path is a symlink is decided later, against the tree being built (see
//! [`crate::host::tree`]), where writes through a symlink are rejected.

use std::fmt;

/// Type of a tar entry, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Regular,
    Directory,
    Symlink,
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
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
}

/// The outcome for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Store at this path (relative, normalised, `etc` mapped to `usr/etc`).
    Keep(String),
    /// The layer's root directory: its metadata is the root's.
    Root,
    /// Remove `name` in `dir` ("" for the root) from the lower layers.
    Whiteout { dir: String, name: String },
    /// Hide the lower layers' children of `dir`.
    Opaque { dir: String },
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
            Rejected::Unsupported(EntryKind::Other(t)) => {
                write!(f, "unsupported tar entry type {:?}", char::from(*t))
            }
            Rejected::Unsupported(k) => write!(f, "unsupported entry type {k:?}"),
        }
    }
}

const VOLATILE: &[&str] = &["run", "tmp", "proc", "sys", "dev"];
const WH_PREFIX: &str = ".wh.";
const WH_OPAQUE: &str = ".wh..wh..opq";
const WH_META_PREFIX: &str = ".wh..wh.";

/// Split and normalise a raw tar path into components, mapping `etc` to `usr/etc`.
/// `Err` for `..` or non-UTF-8.
pub fn normalize(path: &[u8]) -> Result<Vec<&str>, Rejected> {
    let s = std::str::from_utf8(path).map_err(|_| Rejected::NotUtf8)?;
    let mut out = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(Rejected::DotDot),
            c => out.push(c),
        }
    }
    if out.first() == Some(&"etc") {
        out.splice(0..1, ["usr", "etc"]);
    }
    Ok(out)
}

/// Decide what to do with one tar entry. `size` is the entry's content size.
pub fn classify(path: &[u8], kind: EntryKind, size: u64) -> Disposition {
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

#[cfg(test)]
mod tests {
    use super::EntryKind;
    use super::{classify, Disposition, Filtered as F, Rejected};
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
