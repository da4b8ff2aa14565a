//! Every limit the importers apply to untrusted tar layers, each with where it comes from.
//!
//! A layer that crosses one is refused before its commit is written, naming the layer digest
//! and the path (see [`crate::oci::policy`]). The limits are what the tools that will later
//! read the repository accept: the kernel (a checkout is a real filesystem), ostree (which
//! has to fsck and check out the commit) and Go's `archive/tar` (podman, buildah and umoci
//! read the same layers; a layer they refuse is refused here too).
//!
//! | limit                    | value         | source |
//! |--------------------------|---------------|--------|
//! | [`NAME_MAX`]             | 255 bytes     | kernel `NAME_MAX` (`<linux/limits.h>`): longer names fail with `ENAMETOOLONG` at checkout |
//! | [`PATH_MAX`]             | 4095 bytes    | kernel `PATH_MAX` (4096, the NUL included): the longest path a system call takes; bounds the depth too (at most 2047 levels) |
//! | [`SYMLINK_TARGET_MAX`]   | 4095 bytes    | kernel: `symlink(2)` refuses a longer target; ostree `bare` repositories store symlinks as symlinks, and `bare-user` ones read the target back into a `PATH_MAX + 1` buffer (`ostree-repo.c`), so a longer one fails `ostree fsck` |
//! | [`ID_MAX`]               | 4294967294    | ostree stores owners as `u32`; `(uid_t)-1` means "leave unchanged" to `chown(2)` |
//! | [`SPARSE_MAP_MAX`]       | 1 MiB         | Go `archive/tar` `maxSpecialFileSize`: the largest PAX 1.0 sparse map it reads |
//! | [`TAR_EXTENSION_MAX`]    | 1 MiB         | Go `archive/tar` `maxSpecialFileSize` (`readSpecialFile`): the largest GNU long name or link, PAX extended or global header it reads ("header field too long" above) |
//! | [`GZIP_HEADER_STRING_MAX`] | 512 bytes   | Go `compress/gzip` (its header buffer): the longest gzip file name or comment, NUL included |
//!
//! Symlink targets must also be non-empty (`symlink(2)` refuses an empty target: `ENOENT`) and
//! hold no NUL byte (ostree stores the target as a GVariant string, which cannot hold one:
//! such an object fails `ostree fsck`). Names and targets are UTF-8 for the same reason.
//!
//! There is no separate depth limit: the path limit allows at most 2047 levels (`/a/a/…`).
//! ostree 2022.7 recurses per level in `fsck` and `checkout` with no limit of its own (the
//! old `OSTREE_MAX_RECURSION` is gone): measured here, `ostree checkout` crashes (SIGSEGV) on
//! a commit 10,000 levels deep and handles 5,000. The path limit also bounds the recursion in
//! [`crate::ostree::tree`].

/// Longest file name (one path component), in bytes.
pub const NAME_MAX: usize = 255;

/// Longest path, in bytes, counted as the absolute path `/usr/…` the file has in a checkout
/// (without the terminating NUL that the kernel's 4096 includes).
pub const PATH_MAX: usize = 4095;

/// Longest symlink target, in bytes.
pub const SYMLINK_TARGET_MAX: usize = 4095;

/// Largest uid or gid.
pub const ID_MAX: u64 = u32::MAX as u64 - 1;

/// Largest PAX 1.0 sparse map (the part of the entry's data before the file's own bytes).
pub const SPARSE_MAP_MAX: u64 = 1 << 20;

/// Longest file name or comment in a gzip member header, its NUL included.
pub const GZIP_HEADER_STRING_MAX: usize = 512;

/// Largest tar extension entry: GNU long name (`L`) or long link (`K`), PAX extended (`x`)
/// or global (`g`) header. Enforced on the stream by [`super::tarext`].
pub const TAR_EXTENSION_MAX: u64 = 1 << 20;
