//! Machine-side subcommands (`deploy`, `switch`, `upgrade`, `status`), flattened into the
//! top-level CLI. Names and behaviour follow ostree-rs-ext's `container image deploy` and bootc's
//! `switch`, `upgrade --check` and `status`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
/// The machine verbs: `deploy`, `switch`, `upgrade`, `status`.
pub enum MachineCommand {
    /// Pull an image into a sysroot's repository and deploy it, recording the image in the origin.
    ///
    /// On a booted machine the deployment is staged for the next boot; on any other sysroot (a
    /// disk image being built) it is written at once and becomes the default.
    Deploy(DeployArgs),
    /// Move this machine to another image, staged for the next boot.
    ///
    /// Keeps the stateroot and kernel arguments of the booted (or default) deployment.
    Switch(SwitchArgs),
    /// Look for a new version of the image the machine follows, and deploy it.
    ///
    /// Reads the origin of the booted deployment (the default one in a sysroot that is not
    /// booted). "Already up to date" exits 0.
    Upgrade(UpgradeArgs),
    /// Show the deployments, which is booted or staged, and the image each follows.
    Status(SysrootArgs),
}

/// Options every machine verb takes.
#[derive(Debug, Args, Clone)]
pub struct SysrootArgs {
    /// The sysroot: `/` on a running machine, or a disk image's mounted root.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub sysroot: PathBuf,
    /// Print one JSON document instead of human-readable lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
/// Arguments of `deploy`.
pub struct DeployArgs {
    #[command(flatten)]
    /// The sysroot and the output format.
    pub common: SysrootArgs,
    #[command(flatten)]
    /// How the image is fetched.
    pub fetch: crate::host::cli::FetchArgs,
    #[command(flatten)]
    /// How progress is shown.
    pub progress: crate::host::cli::ProgressArgs,
    /// The stateroot (libostree's osname) to deploy into; it must exist (`ostree admin os-init`).
    /// Default: the booted or default deployment's, else the only one.
    #[arg(long, value_name = "NAME")]
    pub stateroot: Option<String>,
    /// A kernel argument (repeatable); replaces the previous deployment's arguments.
    #[arg(long, value_name = "ARG")]
    pub karg: Vec<String>,
    /// Record this reference in the origin instead of IMGREF: what later upgrades pull (e.g. the
    /// registry the machine will follow, when IMGREF is a local copy).
    #[arg(long, value_name = "REF")]
    pub target_imgref: Option<String>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    /// Image reference, e.g. ostree-unverified-registry:quay.io/org/os:latest.
    pub imgref: String,
}

#[derive(Debug, Args)]
/// Arguments of `switch`.
pub struct SwitchArgs {
    #[command(flatten)]
    /// The sysroot and the output format.
    pub common: SysrootArgs,
    #[command(flatten)]
    /// How the image is fetched.
    pub fetch: crate::host::cli::FetchArgs,
    #[command(flatten)]
    /// How progress is shown.
    pub progress: crate::host::cli::ProgressArgs,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    /// Image reference, e.g. ostree-unverified-registry:quay.io/org/os:latest.
    pub imgref: String,
}

#[derive(Debug, Args)]
/// Arguments of `upgrade`.
pub struct UpgradeArgs {
    #[command(flatten)]
    /// The sysroot and the output format.
    pub common: SysrootArgs,
    #[command(flatten)]
    /// How the image is fetched.
    pub fetch: crate::host::cli::FetchArgs,
    #[command(flatten)]
    /// How progress is shown.
    pub progress: crate::host::cli::ProgressArgs,
    /// Only say whether there is a new version and how much it would download.
    #[arg(long)]
    pub check: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}
