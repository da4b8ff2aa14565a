//! Encapsulation: an ostree commit to an OCI image and back, losslessly, in ostree-rs-ext's
//! format so that either tool reads what the other writes.
//!
//! Modules: [`commit`] (reading a commit and walking its tree), [`tarwrite`] / [`tarread`]
//! (the tar stream), [`chunking`] (which objects go in which layer), [`ociwrite`] (writing an
//! image), [`encap`] (`encapsulate`), [`unencap`] (importing an encapsulated image),
//! [`diff`] (comparing two commits).
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
//!
//! # Image
//!
//! Layer 1 (the "commit layer") is the stream above up to the directory entries, followed by
//! the content objects no other layer holds. Layers 2… each hold the repository skeleton and
//! then a set of content objects with their hard links ([`chunking`] decides which). Layers
//! are gzip-compressed tar. The config's labels:
//!
//! | label | value |
//! |---|---|
//! | `ostree.commit` | the commit checksum |
//! | `ostree.final-diffid` | diff_id of the last ostree layer (later layers are derived) |
//! | `ostree.bootable` | `true` when the commit says so or has a kernel |
//! | `containers.bootc` | `1` when bootable |
//! | `ostree.linux` | the kernel version (`usr/lib/modules/<kver>/vmlinuz`) |
//! | `org.opencontainers.image.version` | the commit's `version` metadata |
//!
//! plus `--label` and `--copymeta` labels; the manifest's annotations repeat them. Each content
//! layer's descriptor carries `ostree.components`: the comma-separated components (packages
//! or directories) it holds, which the next build reads to keep the layout. The config's
//! `created` and every history entry take the commit's timestamp, so the same commit gives
//! the same manifest digest.

pub mod chunking;
pub mod cli;
pub mod commit;
pub mod diff;
pub mod encap;
pub mod ociwrite;
pub mod tarread;
pub mod tarwrite;
pub mod unencap;

use std::io::Write;

use anyhow::{Context, Result};

pub use crate::host::import::Txn;
use cli::{EncapsulateCommand, TarCommand};

/// Run an encapsulate-side verb; returns the exit code.
pub fn run(cmd: EncapsulateCommand) -> Result<u8> {
    match cmd {
        EncapsulateCommand::Encapsulate(a) => encap::run(&a),
        EncapsulateCommand::Tar(TarCommand::Export { repo, file, rev }) => {
            let repo = commit::open_repo(&repo)?;
            match file {
                Some(f) => {
                    let out = std::fs::File::create(&f)
                        .with_context(|| format!("creating {}", f.display()))?;
                    let out = tarwrite::export_commit(&repo, &rev, std::io::BufWriter::new(out))?;
                    out.into_inner()
                        .map_err(|e| e.into_error())
                        .and_then(|f| f.sync_all())
                        .with_context(|| format!("writing {}", f.display()))?;
                }
                None => {
                    let out = std::io::stdout().lock();
                    let mut out =
                        tarwrite::export_commit(&repo, &rev, std::io::BufWriter::new(out))?;
                    out.flush().context("writing to stdout")?;
                }
            }
            Ok(0)
        }
        EncapsulateCommand::Tar(TarCommand::Import {
            repo,
            file,
            remote,
            write_ref,
        }) => {
            let repo = commit::open_repo(&repo)?;
            let input: Box<dyn std::io::Read> = match &file {
                Some(f) => Box::new(
                    std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?,
                ),
                None => Box::new(std::io::stdin().lock()),
            };
            let txn = Txn::begin(&repo)?;
            let mut imp = tarread::Importer::new(&repo, remote)?;
            imp.import_layer(std::io::BufReader::new(input))?;
            let c = imp.finish()?;
            if let Some(r) = &write_ref {
                repo.transaction_set_ref(None, r, Some(&c));
            }
            txn.commit()?;
            println!("{c}");
            Ok(0)
        }
        EncapsulateCommand::Diff(a) => diff::run(&a),
        EncapsulateCommand::DownloadSize { old, new, json } => {
            encap::run_download_size(&old, &new, json)
        }
    }
}
