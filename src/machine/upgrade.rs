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
//! [`latest`] is the one place that asks the image's source: `oci:` and `oci-archive:` are read in
//! place (index, manifest, config; no layer is opened), everything else with `skopeo inspect`.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::origin::{self, Origin};
use super::status::commit_image_facts;
use super::sysroot::Machine;
use crate::host::imgref::{ImageReference, OstreeImageReference, Transport};
use crate::host::oci::Layout;
use crate::host::refescape::blob_ref;

/// An image as its source has it now, without its layers.
#[derive(Debug, Clone)]
pub struct Latest {
    /// Its manifest digest.
    pub manifest_digest: String,
    /// (digest, compressed size) of each layer.
    pub layers: Vec<(String, u64)>,
    /// Its version label.
    pub version: Option<String>,
}

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

const AUTH_FILES: &[&str] = &["/etc/ostree/auth.json", "/run/ostree/auth.json"];

fn skopeo_inspect(imgref: &ImageReference, extra: &[&str]) -> Result<Vec<u8>> {
    let mut cmd = Command::new("skopeo");
    cmd.arg("inspect").args(extra);
    if imgref.transport == Transport::Registry {
        if let Some(auth) = AUTH_FILES.iter().find(|p| Path::new(p).exists()) {
            cmd.args(["--authfile", auth]);
        }
    }
    let out = cmd
        .arg(imgref.to_string())
        .output()
        .context("running skopeo (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "skopeo inspect {imgref} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// The manifest digest, layers and version label of `imgref` now.
pub fn latest(imgref: &ImageReference) -> Result<Latest> {
    if matches!(imgref.transport, Transport::OciDir | Transport::OciArchive) {
        let (path, tag) = imgref.oci_path_and_tag();
        let layout = if imgref.transport == Transport::OciDir {
            Layout::open_dir(Path::new(path))?
        } else {
            Layout::open_archive(Path::new(path))?
        };
        let image = layout.resolve(tag)?;
        let labels = image.labels();
        return Ok(Latest {
            layers: image
                .manifest
                .layers()
                .iter()
                .map(|d| (d.digest().to_string(), d.size()))
                .collect(),
            version: version_label(&labels),
            manifest_digest: image.manifest_digest,
        });
    }
    // --raw gives the bytes whose digest the import records; for a manifest list, this
    // machine's entry (whose manifest is then asked for by digest). Plain `inspect` resolves a
    // list itself and gives the config's labels.
    let mut raw = skopeo_inspect(imgref, &["--raw"])?;
    let manifest_digest = match list_entry_digest(&raw)? {
        Some(d) => {
            raw = skopeo_inspect(&by_digest(imgref, &d), &["--raw"])?;
            d
        }
        None => format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&raw))
        ),
    };
    let manifest: serde_json::Value = serde_json::from_slice(&raw)
        .with_context(|| format!("skopeo inspect --raw {imgref}: not JSON"))?;
    let layers = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some((l["digest"].as_str()?.to_string(), l["size"].as_u64()?)))
        .collect();
    let info: serde_json::Value = serde_json::from_slice(&skopeo_inspect(imgref, &[])?)
        .with_context(|| format!("skopeo inspect {imgref}: not JSON"))?;
    let labels: std::collections::HashMap<String, String> =
        serde_json::from_value(info["Labels"].clone()).unwrap_or_default();
    Ok(Latest {
        manifest_digest,
        layers,
        version: version_label(&labels),
    })
}

/// `imgref` pinned to `digest` (`docker://host/os@sha256:…`): the tag, if any, is dropped.
fn by_digest(imgref: &ImageReference, digest: &str) -> ImageReference {
    let name = imgref.name.split('@').next().unwrap_or(&imgref.name);
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let repo = match name[last_slash..].rfind(':') {
        Some(i) => &name[..last_slash + i],
        None => name,
    };
    ImageReference {
        transport: imgref.transport,
        name: format!("{repo}@{digest}"),
    }
}

fn version_label(labels: &std::collections::HashMap<String, String>) -> Option<String> {
    labels
        .get(crate::host::metadata::LABEL_OCI_VERSION)
        .or_else(|| labels.get(crate::host::metadata::VERSION))
        .cloned()
}

/// For a manifest list, the digest of this machine's entry (linux, this architecture).
fn list_entry_digest(raw: &[u8]) -> Result<Option<String>> {
    let v: serde_json::Value = serde_json::from_slice(raw).context("manifest is not JSON")?;
    let Some(list) = v["manifests"].as_array() else {
        return Ok(None);
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    list.iter()
        .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch)
        .and_then(|m| m["digest"].as_str().map(|s| Some(s.to_string())))
        .with_context(|| format!("the manifest list has no linux/{arch} image"))
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
pub fn check(m: &Machine) -> Result<Check> {
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
    let latest = latest(&imgref.imgref).with_context(|| format!("looking up {imgref}"))?;
    let mut layers_to_download = 0;
    let mut download_bytes = 0;
    for (digest, size) in &latest.layers {
        if repo.resolve_rev(&blob_ref(digest), true)?.is_none() {
            layers_to_download += 1;
            download_bytes += size;
        }
    }
    Ok(Check {
        image: imgref.to_string(),
        stateroot,
        deployed_commit,
        update_available: deployed_digest.as_deref() != Some(latest.manifest_digest.as_str()),
        deployed_digest,
        deployed_version,
        latest_digest: latest.manifest_digest,
        latest_version: latest.version,
        layers: latest.layers.len(),
        layers_to_download,
        download_bytes,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_list_entry_for_this_machine() {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let list = format!(
            r#"{{"schemaVersion":2,"manifests":[
            {{"digest":"sha256:other","platform":{{"os":"linux","architecture":"riscv"}}}},
            {{"digest":"sha256:mine","platform":{{"os":"linux","architecture":"{arch}"}}}}]}}"#
        );
        assert_eq!(
            list_entry_digest(list.as_bytes()).unwrap().as_deref(),
            Some("sha256:mine")
        );
        assert_eq!(
            list_entry_digest(br#"{"schemaVersion":2,"layers":[]}"#).unwrap(),
            None
        );
        let none = r#"{"manifests":[{"digest":"sha256:x","platform":{"os":"linux","architecture":"riscv"}}]}"#;
        assert!(list_entry_digest(none.as_bytes()).is_err());
    }

    #[test]
    fn pinned_by_digest() {
        let pin = |s: &str| by_digest(&s.parse().unwrap(), "sha256:ab").to_string();
        assert_eq!(
            pin("docker://quay.io/org/os:stable"),
            "docker://quay.io/org/os@sha256:ab"
        );
        assert_eq!(
            pin("docker://127.0.0.1:5000/os:1"),
            "docker://127.0.0.1:5000/os@sha256:ab"
        );
        assert_eq!(
            pin("docker://127.0.0.1:5000/os"),
            "docker://127.0.0.1:5000/os@sha256:ab"
        );
        assert_eq!(
            pin("docker://quay.io/os@sha256:00"),
            "docker://quay.io/os@sha256:ab"
        );
    }
}
