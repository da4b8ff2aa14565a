//! Host side: import a finished OCI image into an ostree repository.
//!
//! Modules, in the order data flows through them:
//! - [`import`]: the pull pipeline, read top to bottom (open, classify, the one "unchanged"
//!   check, plan, import in one transaction), and `check`;
//! - [`layer`]: one plain layer's tar entries, decided by [`crate::oci::policy`], checksummed
//!   ([`sparse`]: PAX sparse files); [`encapsulated`]: the ostree layers of an encapsulated
//!   image, through [`crate::ostree::tar::read`];
//! - [`inflight`]: layer blobs fetched ahead of the importer, several at once (registries);
//!   [`baserecord`]: the diff_ids a stored encapsulated base was verified against;
//! - [`metadata`]: the merged commit's metadata; [`selinux`]: labels from the image's own
//!   policy;
//! - [`manage`]: list/remove/prune/history; [`progress`]: bars and `--progress-fd` events.
//!
//! Image references, fetching, layouts and layer opening are in [`crate::oci`]; object
//! formats, trees, refs and the transaction in [`crate::ostree`].

pub mod baserecord;
pub mod cli;
pub mod encapsulated;
pub mod import;
pub mod inflight;
pub mod layer;
pub mod manage;
pub mod metadata;
pub mod progress;
pub mod selinux;
pub mod sparse;

use std::path::Path;

use anyhow::{Context, Result};

use crate::oci::imgref::OstreeImageReference;
use crate::ostree::repo::open_repo;
use cli::{HostCommand, ImageCommand, UnencapsulateArgs};

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
    let repo = open_repo(repo)?;
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
            let repo = open_repo(&repo)?;
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
            let repo = open_repo(&repo)?;
            for i in manage::list(&repo)? {
                println!("{i}");
            }
            Ok(0)
        }
        ImageCommand::Remove { repo, imgrefs } => {
            let repo = open_repo(&repo)?;
            let refs = imgrefs
                .iter()
                .map(|s| import::parse_any_imgref(s))
                .collect::<Result<Vec<_>>>()?;
            manage::remove(&repo, &refs)?;
            Ok(0)
        }
        ImageCommand::Prune { repo } => {
            let repo = open_repo(&repo)?;
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
            let repo = open_repo(&repo)?;
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
            let repo = open_repo(&repo)?;
            let (m, c) =
                import::stored_manifest_and_config(&repo, &import::parse_any_imgref(&imgref)?)?;
            println!("{}", if config { c } else { m });
            Ok(0)
        }
    }
}

/// Import `imgref` into the archive repository `repo_path` (created if missing); returns the
/// ref naming the image's commit and the commit (`serve --image`).
pub fn pull_into_archive(
    imgref: &str,
    repo_path: &Path,
    write_ref: Option<&str>,
) -> Result<(String, String)> {
    let r = OstreeImageReference::parse_any(imgref)?;
    if !repo_path.join("config").exists() {
        std::fs::create_dir_all(repo_path)
            .with_context(|| format!("creating {}", repo_path.display()))?;
        let repo = ostree::Repo::new_for_path(repo_path);
        repo.create(ostree::RepoMode::Archive, ostree::gio::Cancellable::NONE)
            .with_context(|| format!("creating repository {}", repo_path.display()))?;
    }
    let repo = open_repo(repo_path)?;
    let opts = import::PullOptions {
        quiet: true,
        write_ref: write_ref.map(str::to_string),
        ..Default::default()
    };
    let res = import::pull(&repo, &r, &opts).with_context(|| format!("importing {imgref}"))?;
    eprintln!("imported {imgref}: {}", res.summary());
    let name = write_ref
        .map(str::to_string)
        .unwrap_or_else(|| crate::ostree::refs::image_ref(&r.imgref));
    Ok((name, res.commit))
}
