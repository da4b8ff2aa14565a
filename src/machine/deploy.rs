//! `deploy` and `switch`: pull an image into the sysroot's own repository and deploy it.
//!
//! What ostree-rs-ext's `deploy` does, with the same result on disk: the image is imported with
//! [`crate::host::import::pull`] (its ref `ostree/container/image/<escaped imgref>` in the
//! sysroot's repository), its merged commit must hold a kernel
//! (`/usr/lib/modules/<version>/vmlinuz`), and it is deployed with an origin naming the image
//! ([`super::origin`]; `--target-imgref` names another reference there, the one later upgrades
//! follow). The previous deployment of the stateroot is the merge deployment: its /etc changes are
//! carried over three ways and its kernel arguments kept unless `--karg` is given.
//!
//! On a booted machine the new deployment is staged (`ostree_sysroot_stage_tree`): it is
//! finished at shutdown by `ostree-finalize-staged.service`, so /etc edits made until then are
//! kept. Anywhere else (a disk image's sysroot being built) it is written at once and becomes the
//! default, the previous one staying as the rollback.

use anyhow::{bail, Context, Result};
use ostree::gio;
use ostree::gio::prelude::FileExt;
use serde::Serialize;

use super::origin;
use super::sysroot::Machine;
use crate::host::import::{self, PullOptions};
use crate::oci::imgref::OstreeImageReference;

/// What to deploy.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// The image to pull and deploy.
    pub imgref: OstreeImageReference,
    /// Written to the origin instead of `imgref` (what upgrades will follow).
    pub target_imgref: Option<OstreeImageReference>,
    /// The stateroot (default: the booted or default deployment's, else the only one).
    pub stateroot: Option<String>,
    /// Replace the kernel arguments (else the merge deployment's are kept).
    pub kargs: Option<Vec<String>>,
    /// No progress bars.
    pub quiet: bool,
    /// Registry options, and where progress events go.
    pub pull: PullOptions,
}

/// What was deployed.
#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    /// The image the origin names.
    pub image: String,
    /// The image that was pulled (differs with `--target-imgref`).
    pub pulled: String,
    /// The merged commit deployed.
    pub commit: String,
    /// The image's manifest digest.
    pub manifest_digest: String,
    /// The image's version label, if any.
    pub version: Option<String>,
    /// The stateroot deployed into.
    pub stateroot: String,
    /// Staged for the next boot (booted machine) rather than written at once.
    pub staged: bool,
    /// The deployment's directory relative to the sysroot.
    pub path: String,
    /// The pull's own summary (layers imported and reused, bytes read).
    pub pull_summary: String,
}

/// The kernel versions of a commit: directories of `/usr/lib/modules` holding a `vmlinuz` file.
pub fn commit_kernels(repo: &ostree::Repo, commit: &str) -> Result<Vec<String>> {
    let (root, _) = repo
        .read_commit(commit, gio::Cancellable::NONE)
        .with_context(|| format!("reading commit {commit}"))?;
    let modules = root.resolve_relative_path("usr/lib/modules");
    let nofollow = gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS;
    if modules.query_file_type(nofollow, gio::Cancellable::NONE) != gio::FileType::Directory {
        return Ok(Vec::new());
    }
    let mut kernels = Vec::new();
    for info in modules.enumerate_children(
        "standard::name,standard::type",
        nofollow,
        gio::Cancellable::NONE,
    )? {
        let info = info?;
        if info.file_type() != gio::FileType::Directory {
            continue;
        }
        let vmlinuz = modules.child(info.name()).child("vmlinuz");
        if vmlinuz.query_file_type(nofollow, gio::Cancellable::NONE) == gio::FileType::Regular {
            kernels.push(info.name().to_string_lossy().into_owned());
        }
    }
    kernels.sort();
    Ok(kernels)
}

/// Pull `req.imgref` and deploy it into `m` (staged when `m` is booted). The caller holds the
/// sysroot lock.
pub fn deploy(m: &Machine, req: &DeployRequest) -> Result<Deployed> {
    let imgref = &req.imgref;
    let stateroot = m.stateroot(req.stateroot.as_deref())?;
    let repo = m.repo()?;
    let image_ref = crate::ostree::refs::image_ref(&imgref.imgref);
    let had_image = repo.resolve_rev(&image_ref, true)?.is_some();
    let pulled = import::pull(
        &repo,
        imgref,
        &PullOptions {
            quiet: req.quiet,
            write_ref: None,
            ..req.pull.clone()
        },
    )
    .with_context(|| format!("pulling {imgref} into {}/ostree/repo", m.path.display()))?;
    if commit_kernels(&repo, &pulled.commit)?.is_empty() {
        // Leave the repository's refs as they were (the objects go with the next prune).
        if !had_image {
            repo.set_ref_immediate(None, &image_ref, None, gio::Cancellable::NONE)?;
        }
        bail!(
            "{imgref} (commit {}) has no kernel: no /usr/lib/modules/<version>/vmlinuz, so a machine \
             cannot boot it; build the image FROM a bootable base (containerfiles/debian made with \
             `mkcontext --variant bootable`)",
            pulled.commit
        );
    }
    let follows = req.target_imgref.as_ref().unwrap_or(imgref);
    let origin = origin::for_image(follows);
    let merge = m.sysroot.merge_deployment(Some(&stateroot));
    let kargs: Option<Vec<&str>> = req
        .kargs
        .as_ref()
        .map(|k| k.iter().map(String::as_str).collect());
    let opts = ostree::SysrootDeployTreeOpts {
        override_kernel_argv: kargs.as_deref(),
        ..Default::default()
    };
    let cancel = gio::Cancellable::NONE;
    let staged = m.is_booted();
    let deployment = if staged {
        m.sysroot
            .stage_tree_with_options(
                Some(&stateroot),
                &pulled.commit,
                Some(&origin),
                merge.as_ref(),
                &opts,
                cancel,
            )
            .context("staging the deployment")?
    } else {
        let d = m
            .sysroot
            .deploy_tree_with_options(
                Some(&stateroot),
                &pulled.commit,
                Some(&origin),
                merge.as_ref(),
                Some(&opts),
                cancel,
            )
            .context("deploying")?;
        m.sysroot
            .simple_write_deployment(
                Some(&stateroot),
                &d,
                merge.as_ref(),
                ostree::SysrootSimpleWriteDeploymentFlags::NONE,
                cancel,
            )
            .context("writing the deployments (boot entries)")?;
        d
    };
    let (_, version) = super::status::commit_image_facts(&repo, &pulled.commit)?;
    Ok(Deployed {
        image: follows.to_string(),
        pulled: imgref.to_string(),
        commit: pulled.commit.clone(),
        manifest_digest: pulled.manifest_digest.clone(),
        version,
        stateroot,
        staged,
        path: m.deployment_dir(&deployment),
        pull_summary: pulled.summary(),
    })
}

impl Deployed {
    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let when = if self.staged {
            "staged for the next boot"
        } else {
            "deployed (the default at the next boot)"
        };
        let mut s = format!(
            "{} {when}\n  stateroot: {}\n  commit: {}\n  digest: {}\n",
            self.image, self.stateroot, self.commit, self.manifest_digest
        );
        if let Some(v) = &self.version {
            s.push_str(&format!("  version: {v}\n"));
        }
        s.push_str(&format!("  deployment: {}\n", self.path));
        s
    }
}
