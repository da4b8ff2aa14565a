//! Encapsulation subcommands, flattened into the top-level CLI. Names and options follow
//! ostree-rs-ext's `ostree container encapsulate` and `ostree-ext-cli tar` where they overlap.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
/// The verbs that write commits as images and tar streams, and compare commits.
pub enum EncapsulateCommand {
    /// Write an ostree commit as a container image (ostree-rs-ext's format, chunked).
    Encapsulate(EncapsulateArgs),
    /// The lossless tar stream of one commit (ostree-rs-ext's `tar` format).
    #[command(subcommand)]
    Tar(TarCommand),
    /// Files and directories added, removed and modified between two commits.
    Diff(DiffArgs),
    /// Bytes a client holding image OLD downloads to get image NEW (layers it lacks).
    DownloadSize {
        /// The image the client has (oci:, oci-archive:, or any skopeo transport).
        old: String,
        /// The image it updates to.
        new: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
/// Arguments of `encapsulate`.
pub struct EncapsulateArgs {
    /// Path to the ostree repository.
    #[arg(long, value_name = "REPO")]
    pub repo: PathBuf,
    /// Add a label to the image config (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Copy this commit metadata key (a string) into a label of the same name (repeatable).
    #[arg(long = "copymeta", value_name = "KEY")]
    pub copy_meta: Vec<String>,
    /// Like --copymeta, but a missing key is not an error.
    #[arg(long = "copymeta-opt", value_name = "KEY")]
    pub copy_meta_opt: Vec<String>,
    /// The image's CMD (repeat for each argument); default: the commit's `ostree.container-cmd`.
    #[arg(long = "cmd", value_name = "ARG")]
    pub cmd: Vec<String>,
    /// Pack the content into at most this many layers (the first holds the commit).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_layers: u32,
    /// A previous image of the same line whose layer layout to keep (default: the image
    /// already at the destination, for `oci:`).
    #[arg(long, value_name = "IMGREF")]
    pub previous: Option<String>,
    /// Print the result as JSON (manifest digest, layers, download size).
    #[arg(long)]
    pub json: bool,
    /// Commit checksum or ref.
    pub rev: String,
    /// Destination: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, or any skopeo destination
    /// (`docker://…`, `containers-storage:…`).
    pub imgref: String,
}

#[derive(Debug, Subcommand)]
/// `tar export` and `tar import`.
pub enum TarCommand {
    /// Write the tar stream of a commit (to stdout, or --file).
    Export {
        #[arg(long, value_name = "REPO")]
        /// The repository.
        repo: PathBuf,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Commit checksum or ref.
        rev: String,
    },
    /// Import a tar stream (from stdin, or --file) and print the commit checksum.
    Import {
        #[arg(long, value_name = "REPO")]
        /// The repository.
        repo: PathBuf,
        /// Read this file instead of stdin.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Verify the commit's signature against this remote's keys before writing.
        #[arg(long, value_name = "REMOTE")]
        remote: Option<String>,
        /// Also point this ref at the commit.
        #[arg(long, value_name = "REF")]
        write_ref: Option<String>,
    },
}

#[derive(Debug, Args)]
/// Arguments of `diff`.
pub struct DiffArgs {
    #[arg(long, value_name = "REPO")]
    /// The repository.
    pub repo: PathBuf,
    /// Only compare below this directory (e.g. /usr).
    #[arg(long, value_name = "PATH")]
    pub subdir: Option<String>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// The older commit (checksum or ref).
    pub from: String,
    /// The newer commit.
    pub to: String,
}
