//! Getting an image into a readable OCI layout.
//!
//! `oci:` and `oci-archive:` are read in place ([`crate::host::oci`]). Every other transport
//! (`registry:`/`docker://`, `containers-storage:`, `docker-archive:`, `dir:`), and any image
//! whose reference asks for signature verification (`ostree-image-signed:`), goes through
//! `skopeo copy` into a temporary `oci:` directory, so registries, mirrors, authentication and
//! the signature policy are exactly containers/image's.
//!
//! Authentication for registries: `/etc/ostree/auth.json`, else `/run/ostree/auth.json`, else
//! containers/image's defaults (`$REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json`,
//! …). Policy: `ostree-image-signed:` always uses containers-policy.json; for
//! `ostree-unverified-*` the default policy is used when `/etc/containers/policy.json`
//! exists and skopeo's `--insecure-policy` otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::imgref::{ImageReference, OstreeImageReference, SignatureSource, Transport};
use super::oci::Layout;

/// An opened layout, and the tag to look up in it; keeps any temporary copy alive.
pub struct Source {
    pub layout: Layout,
    pub tag: Option<String>,
    _tmp: Option<tempfile::TempDir>,
}

const AUTH_FILES: &[&str] = &["/etc/ostree/auth.json", "/run/ostree/auth.json"];

/// Open the image named by `r`; `tmp_parent` holds any temporary copy.
pub fn open(r: &OstreeImageReference, tmp_parent: &Path) -> Result<Source> {
    if let SignatureSource::OstreeRemote(remote) = &r.sigverify {
        bail!(
            "{r}: verifying signatures through the ostree remote {remote:?} is not supported by this importer; \
             use ostree-image-signed: (containers-policy.json) or ostree-unverified-image:"
        );
    }
    let native = r.sigverify == SignatureSource::ContainerPolicyAllowInsecure;
    match r.imgref.transport {
        Transport::OciDir if native => {
            let (path, tag) = r.imgref.oci_path_and_tag();
            Ok(Source {
                layout: Layout::open_dir(Path::new(path))?,
                tag: tag.map(String::from),
                _tmp: None,
            })
        }
        Transport::OciArchive if native => {
            let (path, tag) = r.imgref.oci_path_and_tag();
            Ok(Source {
                layout: Layout::open_archive(Path::new(path))?,
                tag: tag.map(String::from),
                _tmp: None,
            })
        }
        _ => skopeo_copy(r, tmp_parent),
    }
}

/// The arguments of `skopeo copy` for `r` into the layout `dest` (tag `import`), given
/// whether the system policy file exists and which auth file applies.
fn skopeo_args(
    r: &OstreeImageReference,
    policy_exists: bool,
    auth: Option<&str>,
    dest: &Path,
) -> Vec<String> {
    let mut args = vec!["copy".to_string(), "--quiet".to_string()];
    if r.sigverify == SignatureSource::ContainerPolicyAllowInsecure && !policy_exists {
        args.push("--insecure-policy".into());
    }
    if r.imgref.transport == Transport::Registry {
        if let Some(auth) = auth {
            args.extend(["--src-authfile".to_string(), auth.to_string()]);
        }
    }
    args.push(r.imgref.to_string());
    args.push(format!("oci:{}:import", dest.display()));
    args
}

fn skopeo_copy(r: &OstreeImageReference, tmp_parent: &Path) -> Result<Source> {
    let tmp = tempfile::Builder::new()
        .prefix("ostree-container-fetch-")
        .tempdir_in(tmp_parent)
        .with_context(|| format!("creating a temporary directory in {}", tmp_parent.display()))?;
    let dest: PathBuf = tmp.path().join("layout");
    let policy_exists = Path::new("/etc/containers/policy.json").exists();
    let auth = AUTH_FILES.iter().copied().find(|p| Path::new(p).exists());
    let mut cmd = Command::new("skopeo");
    cmd.args(skopeo_args(r, policy_exists, auth, &dest));
    let out = cmd.output().context("running skopeo (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "skopeo copy {} failed: {}",
            r.imgref,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(Source {
        layout: Layout::open_dir(&dest)?,
        tag: Some("import".into()),
        _tmp: Some(tmp),
    })
}

/// The manifest of `imgref`, without fetching its layers: read in place for `oci:` and
/// `oci-archive:`, with `skopeo inspect --raw` for every other transport (registry
/// authentication as for copying). A manifest list is an error: it names no single image.
pub fn manifest(imgref: &ImageReference) -> Result<oci_spec::image::ImageManifest> {
    let raw = match imgref.transport {
        Transport::OciDir | Transport::OciArchive => {
            let (path, tag) = imgref.oci_path_and_tag();
            let layout = if imgref.transport == Transport::OciDir {
                Layout::open_dir(Path::new(path))?
            } else {
                Layout::open_archive(Path::new(path))?
            };
            return Ok(layout.resolve(tag)?.manifest);
        }
        _ => {
            let mut cmd = Command::new("skopeo");
            cmd.args(["inspect", "--raw"]);
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
            out.stdout
        }
    };
    let v: serde_json::Value = serde_json::from_slice(&raw)
        .with_context(|| format!("{imgref}: the manifest is not JSON"))?;
    if v.get("manifests").is_some() {
        bail!("{imgref} is a manifest list; name one image of it by its digest");
    }
    serde_json::from_value(v).with_context(|| format!("{imgref}: parsing the manifest"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(r: &str, policy: bool, auth: Option<&str>) -> String {
        skopeo_args(&r.parse().unwrap(), policy, auth, Path::new("/t")).join(" ")
    }

    #[test]
    fn skopeo_command_lines() {
        let a = "/etc/ostree/auth.json";
        let table = [
            (
                "ostree-unverified-registry:quay.io/os:1",
                true,
                Some(a),
                "copy --quiet --src-authfile /etc/ostree/auth.json docker://quay.io/os:1 oci:/t:import",
            ),
            (
                "ostree-unverified-registry:quay.io/os:1",
                false,
                None,
                "copy --quiet --insecure-policy docker://quay.io/os:1 oci:/t:import",
            ),
            // Signed: never --insecure-policy, whatever the system has.
            (
                "ostree-image-signed:docker://quay.io/os:1",
                false,
                Some(a),
                "copy --quiet --src-authfile /etc/ostree/auth.json docker://quay.io/os:1 oci:/t:import",
            ),
            // Auth files are for registries only.
            (
                "ostree-unverified-image:containers-storage:localhost/os",
                true,
                Some(a),
                "copy --quiet containers-storage:localhost/os oci:/t:import",
            ),
            (
                "ostree-image-signed:oci:/srv/os:1",
                true,
                None,
                "copy --quiet oci:/srv/os:1 oci:/t:import",
            ),
        ];
        for (r, policy, auth, want) in table {
            assert_eq!(args(r, policy, auth), want, "{r}");
        }
    }
}
