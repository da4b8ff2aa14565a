//! `upgrade [--check]`: is there a new version of the image a deployment follows, how much would
//! it download, and (without `--check`) pull and deploy it.
//!
//! The deployment followed is the booted one, else the sysroot's default; its origin names the
//! image ([`super::origin`]). The version compared against is the newest of the stateroot (a staged
//! deployment, else that one): "new" means the manifest digest the image reference resolves to now
//! differs from the one recorded in that deployment's commit (`ostree.manifest-digest`). The bytes
//! to download are the compressed sizes of the new manifest's layers whose
//! `ostree/container/blob/<escaped digest>` ref is not in the sysroot's repository.
//!
//! The image's source is asked through the pull pipeline's [`import::check`]: manifest and
//! config only, no layer is opened.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::origin::{self, Origin};
use super::status::commit_image_facts;
use super::sysroot::Machine;
use crate::host::import;
use crate::oci::fetch::FetchOptions;
use crate::oci::imgref::OstreeImageReference;

/// What `upgrade --check` finds.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The image followed.
    pub image: String,
    /// The stateroot.
    pub stateroot: String,
    /// The commit compared against (staged, booted or default deployment).
    pub deployed_commit: String,
    /// The deployed image's manifest digest.
    pub deployed_digest: Option<String>,
    /// The deployed image's version label.
    pub deployed_version: Option<String>,
    /// The image's manifest digest now.
    pub latest_digest: String,
    /// Its version label now.
    pub latest_version: Option<String>,
    /// The digests differ.
    pub update_available: bool,
    /// Layers of the new image.
    pub layers: usize,
    /// Of those, layers not stored yet.
    pub layers_to_download: usize,
    /// Their compressed size.
    pub download_bytes: u64,
}

/// The deployment `upgrade` works from, and the image it follows.
pub fn followed(m: &Machine) -> Result<(ostree::Deployment, OstreeImageReference)> {
    let Some(current) = m.current_deployment() else {
        bail!(
            "{} has no deployment to upgrade; deploy an image first (`ostree-container deploy --sysroot {} IMGREF`)",
            m.path.display(),
            m.path.display()
        );
    };
    let what = format!("deployment {}", m.deployment_dir(&current));
    match origin::read(current.origin().as_ref()).with_context(|| what.clone())? {
        Origin::Image(i) => Ok((current, i)),
        Origin::Refspec(r) => bail!(
            "{what} follows the ostree ref {r}, not an image; upgrade it with `ostree admin upgrade`, \
             or move it to an image with `ostree-container switch IMGREF`"
        ),
        Origin::Unknown => bail!(
            "{what} has no container-image-reference in its origin; move it to an image with \
             `ostree-container switch IMGREF`"
        ),
    }
}

/// Compare the image's current manifest with what the stateroot has.
pub fn check(m: &Machine, fetch: &FetchOptions) -> Result<Check> {
    let (current, imgref) = followed(m)?;
    let stateroot = current.osname().to_string();
    // A staged deployment of the same stateroot is newer than the booted one.
    let newest = m
        .sysroot
        .staged_deployment()
        .filter(|s| s.osname() == current.osname())
        .unwrap_or(current);
    let deployed_commit = newest.csum().to_string();
    let repo = m.repo()?;
    let (deployed_digest, deployed_version) = commit_image_facts(&repo, &deployed_commit)?;
    // The pull pipeline's own check: manifest and config only, signatures verified when the
    // reference asks for it, missing layers counted against the sysroot's blob refs.
    let latest =
        import::check(&repo, &imgref, fetch).with_context(|| format!("looking up {imgref}"))?;
    Ok(Check {
        image: imgref.to_string(),
        stateroot,
        deployed_commit,
        update_available: deployed_digest.as_deref() != Some(latest.manifest_digest.as_str()),
        deployed_digest,
        deployed_version,
        latest_digest: latest.manifest_digest,
        latest_version: latest.version,
        layers: latest.layers_total,
        layers_to_download: latest.layers_missing,
        download_bytes: latest.bytes_missing,
    })
}

impl Check {
    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let v = |v: &Option<String>| {
            v.as_deref()
                .map(|v| format!(" (version {v})"))
                .unwrap_or_default()
        };
        if !self.update_available {
            return format!(
                "{}: already up to date: {}{}\n",
                self.image,
                self.latest_digest,
                v(&self.latest_version)
            );
        }
        format!(
            "{}: new version {}{}\n  deployed: {}{}\n  to download: {} in {} of {} layers\n",
            self.image,
            self.latest_digest,
            v(&self.latest_version),
            self.deployed_digest
                .as_deref()
                .unwrap_or("(no manifest digest)"),
            v(&self.deployed_version),
            crate::host::progress::bytes(self.download_bytes),
            self.layers_to_download,
            self.layers
        )
    }
}
