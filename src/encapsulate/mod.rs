//! Encapsulation: an ostree commit to an OCI image and back, losslessly, in ostree-rs-ext's
//! format so that either tool reads what the other writes.
//!
//! Modules: [`chunking`] (which objects go in which layer), [`encap`] (`encapsulate`),
//! [`diff`] (comparing two commits). They stand on the shared bottom layer: the commit reader
//! ([`crate::ostree::commit`]), the tar stream in both directions ([`crate::ostree::tar`]),
//! and the image writer ([`crate::oci::write`]). Importing an encapsulated image is the
//! pull pipeline's job ([`crate::host::encapsulated`]).
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
pub mod diff;
pub mod encap;

use std::io::Write;

use anyhow::{Context, Result};

use crate::ostree::repo::Txn;
use crate::ostree::tar::{read as tarread, write as tarwrite};
use cli::{EncapsulateCommand, TarCommand};

/// Run an encapsulate-side verb; returns the exit code.
pub fn run(cmd: EncapsulateCommand) -> Result<u8> {
    match cmd {
        EncapsulateCommand::Encapsulate(a) => encap::run(&a),
        EncapsulateCommand::Tar(TarCommand::Export { repo, file, rev }) => {
            let repo = crate::ostree::repo::open_repo(&repo)?;
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
            let repo = crate::ostree::repo::open_repo(&repo)?;
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
