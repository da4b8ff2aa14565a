//! ostree-rs-ext's tar stream of a commit, in both directions: [`write`](mod@write) exports a commit
//! (`tar export`, the layers of `encapsulate`), [`read`] imports one back object by object
//! keeping every checksum (`tar import`, and the ostree layers of an encapsulated image).
//!
//! # Tar stream (ostree-rs-ext format version 1)
//!
//! ```text
//! ./                                         root directory (owner/mode of the root dirmeta)
//! sysroot/ sysroot/ostree/ sysroot/ostree/repo/ …/objects/ …/objects/00 … …/objects/ff
//! sysroot/ostree/repo/{extensions,refs,refs/heads,refs/mirrors,refs/remotes,state,tmp,tmp/cache}
//! sysroot/ostree/repo/config                 "[core]\nrepo_version=1\nmode=bare-split-xattrs\n"
//! sysroot/ostree/repo/objects/XX/YYYY.commit       first object: the commit
//! sysroot/ostree/repo/objects/XX/YYYY.commitmeta   detached metadata (signatures), if any
//! …/XX/YYYY.dirmeta, …/XX/YYYY.dirtree       every metadata object, depth first; each
//! usr/, usr/bin/, …                          directory gets an entry with its owner and mode
//! var/tmp/                                   (1777, unless the commit has it)
//! then, per content object:
//!   …/XX/YYYY.file-xattrs        the object's xattrs, serialised a(ayay), named by their
//!                                SHA-256 (written once per layer; empty xattrs too)
//!   …/XX/YYYY.file-xattrs-link   hard link to that .file-xattrs: binds xattrs to the object
//!   …/XX/YYYY.file               regular file (uid, gid, mode incl. setuid) or symlink
//!   usr/bin/foo …                a hard link to the .file at each path that names it
//!                                (empty regular files: a plain empty file instead)
//! ```
//!
//! All names are relative (no leading `./` except the root), `usr/etc` is written as `etc`,
//! mtimes are 0, and the commit's own `/sysroot` gets no checkout entries. Extended
//! attributes never appear as tar xattrs, so a container runtime unpacking the layer cannot
//! rewrite `security.selinux` or `security.capability`; a reader takes them from the
//! `.file-xattrs` objects.

pub mod read;
pub mod write;
