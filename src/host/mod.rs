//! Host side: import a finished OCI image into an ostree repository.
//!
//! Modules, in the order data flows through them:
//! - [`imgref`]: the `ostree-…:` image reference grammar;
//! - [`fetch`]: reaching the image (native `oci:`/`oci-archive:`, containers/image's proxy
//!   ([`proxy`]) for the rest, a decompressed copy for `containers-storage:`);
//! - [`oci`]: reading the layout, verifying digests;
//! - [`layer`]: decompressing ([`gzip`]) and parsing one layer, with [`policy`] deciding each
//!   entry;
//! - [`tree`]: layer trees and the merged tree (whiteouts, symlink safety);
//! - [`repo`]: ostree object formats and writing ([`gvariant`]: their serialisation);
//! - [`import`]: the pull pipeline, read top to bottom (open, classify, the one "unchanged"
//!   check, plan, import in one transaction), and `check`; [`metadata`]: commit metadata;
//!   [`selinux`]: labels from the image's own policy; [`inflight`]: layer blobs fetched
//!   ahead of the importer, several at once; [`baserecord`]: the diff_ids of a stored
//!   encapsulated base;
//! - [`refescape`]: ref names; [`manage`]: list/remove/prune/history; [`progress`].

pub mod baserecord;
pub mod cli;
pub mod fetch;
pub mod gvariant;
pub mod gzip;
pub mod imgref;
pub mod import;
pub mod inflight;
pub mod layer;
pub mod limits;
pub mod manage;
pub mod metadata;
pub mod oci;
pub mod policy;
pub mod progress;
pub mod proxy;
pub mod refescape;
pub mod repo;
pub mod selinux;
pub mod sparse;
pub mod tree;

use anyhow::Result;

use cli::{HostCommand, ImageCommand, UnencapsulateArgs};
use imgref::OstreeImageReference;

/// Run a host-side verb (`unencapsulate`, `image …`); returns the exit code.
pub fn run(cmd: HostCommand) -> Result<u8> {
    match cmd {
        HostCommand::Unencapsulate(UnencapsulateArgs {
            repo,
            write_ref,
            quiet,
            fetch,
            progress,
            imgref,
        }) => pull(&repo, &imgref, quiet, write_ref, &fetch, &progress),
        HostCommand::Image(c) => run_image(c),
    }
}

fn pull(
    repo: &std::path::Path,
    imgref: &str,
    quiet: bool,
    write_ref: Option<String>,
    fetch: &cli::FetchArgs,
    progress_args: &cli::ProgressArgs,
) -> Result<u8> {
    let events = progress_args
        .progress_fd
        .map(progress::event_sink)
        .transpose()?;
    let r = OstreeImageReference::parse_any(imgref)?;
    let repo = import::open_repo(repo)?;
    let res = import::pull(
        &repo,
        &r,
        &import::PullOptions {
            quiet,
            write_ref,
            fetch: fetch.options(),
            events,
        },
    )?;
    if !quiet {
        eprintln!("{}", res.summary());
    }
    println!("{}", res.commit);
    Ok(0)
}

fn run_image(c: ImageCommand) -> Result<u8> {
    match c {
        ImageCommand::Pull {
            repo,
            imgref,
            quiet,
            fetch,
            progress,
        } => pull(&repo, &imgref, quiet, None, &fetch, &progress),
        ImageCommand::Check {
            repo,
            imgref,
            json,
            fetch,
        } => {
            let r = OstreeImageReference::parse_any(&imgref)?;
            let repo = import::open_repo(&repo)?;
            let c = import::check(&repo, &r, &fetch.options())?;
            if json {
                println!("{}", serde_json::to_string(&c)?);
            } else if c.changed {
                println!(
                    "{r}: changed ({} -> {}); {} of {} layers to fetch, {}",
                    c.stored_manifest_digest.as_deref().unwrap_or("not stored"),
                    c.manifest_digest,
                    c.layers_missing,
                    c.layers_total,
                    progress::bytes(c.bytes_missing)
                );
            } else {
                println!("{r}: unchanged ({})", c.manifest_digest);
            }
            Ok(0)
        }
        ImageCommand::List { repo } => {
            let repo = import::open_repo(&repo)?;
            for i in manage::list(&repo)? {
                println!("{i}");
            }
            Ok(0)
        }
        ImageCommand::Remove { repo, imgrefs } => {
            let repo = import::open_repo(&repo)?;
            let refs = imgrefs
                .iter()
                .map(|s| import::parse_any_imgref(s))
                .collect::<Result<Vec<_>>>()?;
            manage::remove(&repo, &refs)?;
            Ok(0)
        }
        ImageCommand::Prune { repo } => {
            let repo = import::open_repo(&repo)?;
            let r = manage::prune(&repo)?;
            println!(
                "removed {} unused layers, pruned {} objects, freed {}",
                r.layers_removed,
                r.objects_pruned,
                progress::bytes(r.bytes_freed)
            );
            Ok(0)
        }
        ImageCommand::History { repo, imgref } => {
            let repo = import::open_repo(&repo)?;
            print!(
                "{}",
                manage::history(&repo, &import::parse_any_imgref(&imgref)?)?
            );
            Ok(0)
        }
        ImageCommand::Metadata {
            repo,
            config,
            imgref,
        } => {
            let repo = import::open_repo(&repo)?;
            let (m, c) =
                import::stored_manifest_and_config(&repo, &import::parse_any_imgref(&imgref)?)?;
            println!("{}", if config { c } else { m });
            Ok(0)
        }
    }
}
