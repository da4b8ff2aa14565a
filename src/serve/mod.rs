//! `serve`: an ostree repository, or the commit inside an image, as an ostree HTTP remote
//! that `ostree pull` (libostree's HTTP fetcher) reads.
//!
//! Clients expect an archive-mode repository over HTTP: `config` saying `mode=archive-z2`,
//! `refs/heads/<ref>`, `objects/<xx>/<rest>.{commit,commitmeta,dirtree,dirmeta,filez}` and
//! `summary` (plus `summary.sig` where the repository has one). That layout is served from a
//! repository of any mode:
//!
//! - [`path`]: which request paths exist (a pure function, the security boundary);
//! - [`repo`]: reading the repository directory without following symlinks;
//! - [`filez`]: `.filez` objects made from `bare`/`bare-user`/`bare-user-only`/
//!   `bare-split-xattrs` content objects, verified against their checksums and cached;
//! - [`summary`]: the summary generated from the refs;
//! - [`http`]: hyper on tokio: ranges, ETags, HEAD, limits, graceful shutdown, access log.
//!
//! Sources: `--repo REPO`; `--image IMGREF`, imported with the host importer (passed in as
//! [`ImportImage`]: [`crate::host::pull_into_archive`]) into a private archive
//! repository under the cache directory;
//! or, with neither, `/sysroot/ostree/repo`, so that an image's `CMD` can be
//! `ostree-container serve`.

pub mod cli;
pub mod filez;
pub mod http;
pub mod path;
pub mod repo;
pub mod summary;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// The repository served when neither `--repo` nor `--image` is given.
pub const SELF_REPO: &str = "/sysroot/ostree/repo";

/// How `--image` is imported: `(imgref, archive repository path (created if missing), ref to
/// write)` to `(ref naming the image's commit, commit)`. The importer lives in
/// [`crate::host`]; the CLI passes it in, so that this module does not depend on it.
pub type ImportImage = fn(&str, &Path, Option<&str>) -> Result<(String, String)>;

/// `serve`: serve the chosen repository until SIGTERM or SIGINT; returns the exit code.
pub fn run(cmd: cli::ServeCommand, import_image: ImportImage) -> Result<u8> {
    match cmd {
        cli::ServeCommand::Serve(args) => serve(args, import_image),
    }
}

fn serve(args: cli::ServeArgs, import_image: ImportImage) -> Result<u8> {
    let prefix = path::normalize_prefix(&args.prefix)
        .ok_or_else(|| anyhow!("invalid --prefix {:?}", args.prefix))?;
    if let Some(r) = &args.ref_name {
        if !path::valid_ref(r) {
            bail!("invalid ref name {r:?}");
        }
    }
    let tmp;
    let cache_root: PathBuf = match &args.cache_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("ostree-container-serve-")
                .tempdir()
                .context("creating a cache directory")?;
            tmp.path().to_path_buf()
        }
    };
    let mut extra_refs = Vec::new();
    let repo_path = match (&args.repo, &args.image) {
        (Some(r), None) => r.clone(),
        (None, Some(img)) => {
            let p = cache_root.join("image-repo");
            let (name, commit) = import_image(img, &p, args.ref_name.as_deref())?;
            eprintln!("serving {img} as ref {name} (commit {commit})");
            p
        }
        (None, None) => {
            let p = PathBuf::from(SELF_REPO);
            if !p.join("config").exists() {
                bail!("no --repo or --image given and there is no repository at {SELF_REPO}");
            }
            p
        }
        (Some(_), Some(_)) => bail!("--repo and --image are mutually exclusive"),
    };
    let repo = repo::RepoDir::open(&repo_path)?;
    if let (Some(name), None) = (&args.ref_name, &args.image) {
        if repo.read_ref(name)?.is_none() {
            let c = repo
                .newest_commit()
                .with_context(|| format!("looking for commits in {}", repo_path.display()))?
                .ok_or_else(|| {
                    anyhow!("{} holds no commit to serve as {name}", repo_path.display())
                })?;
            eprintln!("serving commit {c} as ref {name}");
            extra_refs.push((name.clone(), c));
        }
    }
    let cache = if repo.mode() == repo::Mode::Archive {
        None
    } else {
        Some(filez::Cache::new(
            cache_root.join("filez"),
            args.compression_level,
        )?)
    };
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "serving {} ({} mode) as an archive-z2 remote",
        repo_path.display(),
        repo.mode().name()
    );
    let state = Arc::new(http::State::new(repo, cache, prefix.clone(), extra_refs));
    let limits = http::Limits {
        max_connections: args.max_connections,
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()
        .context("starting the async runtime")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}{prefix}")?;
        out.flush()?;
    }
    rt.block_on(http::serve(listener, state, limits))
        .context("serving")?;
    eprintln!("stopped");
    Ok(0)
}
