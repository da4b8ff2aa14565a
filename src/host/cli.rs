//! Host-side subcommands, flattened into the top-level CLI. Names and arguments follow
//! ostree-rs-ext's `ostree container` CLI where they overlap.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The host-side verbs: `unencapsulate` and `image …`.
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Import an image into an ostree repository and print the merged commit.
    ///
    /// Unlike ostree-rs-ext, any image is accepted (plain layered images included).
    Unencapsulate(UnencapsulateArgs),
    /// Manage images stored in an ostree repository.
    #[command(subcommand)]
    Image(ImageCommand),
}

/// How to reach registries: the options ostree-rs-ext and skopeo give these names.
#[derive(Debug, Args, Clone, Default)]
pub struct FetchArgs {
    /// containers auth.json for registries (default: /etc/ostree/auth.json, then
    /// /run/ostree/auth.json, then containers/image's own defaults).
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Directory of certificates for registries (*.crt, *.cert, *.key), as skopeo --cert-dir.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Do not verify registries' TLS certificates.
    #[arg(long)]
    pub insecure_skip_tls_verification: bool,
    /// Signature policy for ostree-image-signed: (and ostree-unverified-*), as skopeo
    /// --policy (default: /etc/containers/policy.json).
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,
    /// Directory of registry configuration files (where signatures are looked up), as skopeo
    /// --registries.d (default: containers/image's, /etc/containers/registries.d).
    #[arg(long = "registries.d", value_name = "DIR")]
    pub registries_d: Option<PathBuf>,
}

/// Machine-readable progress.
#[derive(Debug, Args, Clone, Default)]
pub struct ProgressArgs {
    /// Write progress events as JSON Lines to this open file descriptor (docs/exporter.md).
    #[arg(long, value_name = "FD")]
    pub progress_fd: Option<i32>,
}

impl FetchArgs {
    /// The fetch options these arguments give (temporary directory left to the importer).
    pub fn options(&self) -> crate::oci::fetch::FetchOptions {
        crate::oci::fetch::FetchOptions {
            authfile: self.authfile.clone(),
            cert_dir: self.cert_dir.clone(),
            insecure_skip_tls_verification: self.insecure_skip_tls_verification,
            tmp_dir: None,
            policy: self.policy.clone(),
            registries_d: self.registries_d.clone(),
        }
    }
}

/// Arguments of `unencapsulate`.
#[derive(Debug, Args)]
pub struct UnencapsulateArgs {
    /// Path to the ostree repository.
    #[arg(long, value_name = "REPO")]
    pub repo: PathBuf,
    /// Also point this ref at the imported commit.
    #[arg(long, value_name = "REF")]
    pub write_ref: Option<String>,
    /// No progress bars and no summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// How to reach registries.
    #[command(flatten)]
    pub fetch: FetchArgs,
    /// Machine-readable progress.
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// Image reference, e.g. ostree-unverified-image:oci:/srv/os:latest.
    pub imgref: String,
}

/// `image …`: images stored in an ostree repository.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import (or update) an image and print the merged commit.
    Pull {
        /// Path to the ostree repository.
        repo: PathBuf,
        /// Image reference, e.g. ostree-unverified-registry:quay.io/org/os:latest.
        imgref: String,
        /// No progress bars and no summary.
        #[arg(long, short)]
        quiet: bool,
        /// How to reach registries.
        #[command(flatten)]
        fetch: FetchArgs,
        /// Machine-readable progress.
        #[command(flatten)]
        progress: ProgressArgs,
    },
    /// Fetch only an image's manifest and config, and report whether it differs from the
    /// stored one and how much a pull would download (JSON with --json). Exit 0 either way.
    Check {
        /// Path to the ostree repository.
        repo: PathBuf,
        /// Image reference, as for `image pull`.
        imgref: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// How to reach registries.
        #[command(flatten)]
        fetch: FetchArgs,
    },
    /// List stored images.
    List {
        /// Path to the ostree repository.
        #[arg(long, value_name = "REPO")]
        repo: PathBuf,
    },
    /// Remove stored images' refs (objects are freed by `image prune`).
    Remove {
        /// Path to the ostree repository.
        #[arg(long, value_name = "REPO")]
        repo: PathBuf,
        /// Images, as listed by `image list` or as ostree-… references.
        #[arg(required = true)]
        imgrefs: Vec<String>,
    },
    /// Drop layers no stored image uses and delete unreachable objects.
    Prune {
        /// Path to the ostree repository.
        #[arg(long, value_name = "REPO")]
        repo: PathBuf,
    },
    /// Show a stored image's build history.
    History {
        /// Path to the ostree repository.
        #[arg(long, value_name = "REPO")]
        repo: PathBuf,
        /// The image, as listed by `image list` or as an ostree-… reference.
        imgref: String,
    },
    /// Print a stored image's manifest (or config) JSON.
    Metadata {
        /// Path to the ostree repository.
        #[arg(long, value_name = "REPO")]
        repo: PathBuf,
        /// Print the config instead of the manifest.
        #[arg(long)]
        config: bool,
        /// The image, as listed by `image list` or as an ostree-… reference.
        imgref: String,
    },
}
