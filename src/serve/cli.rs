//! The `serve` subcommand, flattened into the top-level CLI.

#![warn(missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// The `serve` verb.
#[derive(Debug, clap::Subcommand)]
pub enum ServeCommand {
    /// Serve an ostree repository (or the commit inside an image) as an ostree HTTP remote.
    ///
    /// With neither --repo nor --image, serves this system's (or container's)
    /// /sysroot/ostree/repo. Prints `listening on http://ADDR:PORT/PREFIX` on stdout once the
    /// socket is bound; the access log goes to stderr. SIGTERM stops it gracefully.
    Serve(ServeArgs),
}

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The repository to serve (any mode: archive, bare, bare-user, bare-user-only,
    /// bare-split-xattrs).
    #[arg(long, value_name = "REPO", conflicts_with = "image")]
    pub repo: Option<PathBuf>,
    /// Serve the commit of this image (imported first into a private archive repository under
    /// --cache-dir), e.g. ostree-unverified-image:oci:/srv/os:latest or oci:/srv/os:latest.
    #[arg(long, value_name = "IMGREF")]
    pub image: Option<String>,
    /// Address and port to listen on (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// URL path under which the repository appears.
    #[arg(long, value_name = "PATH", default_value = "/repo")]
    pub prefix: String,
    /// Also serve the commit of --image (or, for a repository without refs, its newest
    /// commit) under this ref name.
    #[arg(long = "ref", value_name = "NAME")]
    pub ref_name: Option<String>,
    /// Where converted `.filez` objects (and --image's repository) are kept; default: a
    /// temporary directory removed at exit.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Deflate level (0-9) for `.filez` objects made from non-archive repositories.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: u32,
    /// At most this many connections are served at once; more wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's head.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds without any I/O after which a connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub idle_timeout: u64,
    /// Seconds to let requests in flight finish after SIGTERM.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub shutdown_timeout: u64,
}
