//! What a sysroot runs: its deployments, which is booted or staged, and the image each follows.
//!
//! `status --json` prints `{"sysroot": DIR, "booted": bool, "deployments": [...]}`, deployments in
//! libostree's order (the first is what the next boot starts; a staged deployment comes first),
//! each:
//!
//! | key               | value                                                          |
//! |-------------------|----------------------------------------------------------------|
//! | `stateroot`       | libostree's osname                                             |
//! | `checksum`        | the deployed commit                                            |
//! | `serial`          | deployment serial (the directory is `<checksum>.<serial>`)     |
//! | `path`            | the deployment's directory, relative to the sysroot            |
//! | `booted`, `staged`, `pinned`, `default` | booleans (`default`: the next boot's)    |
//! | `image`           | the origin's `container-image-reference`, or null              |
//! | `refspec`         | the origin's `refspec` (a deployment of an ostree ref), or null |
//! | `manifest_digest` | the commit's `ostree.manifest-digest`, or null                  |
//! | `version`         | the commit's `version` (the image's version label), or null     |
//! | `timestamp`       | the commit's timestamp (seconds since the epoch)                |

use anyhow::{Context, Result};
use serde::Serialize;

use super::origin::{self, Origin};
use super::sysroot::Machine;
use crate::ostree::keys;

#[derive(Debug, Clone, Serialize)]
/// One deployment, as `status` shows it.
pub struct DeploymentStatus {
    /// Its stateroot.
    pub stateroot: String,
    /// The commit deployed.
    pub checksum: String,
    /// libostree's deploy serial (several deployments of one commit).
    pub serial: i32,
    /// The deployment's directory.
    pub path: String,
    /// The running system is this deployment.
    pub booted: bool,
    /// Staged for the next boot.
    pub staged: bool,
    /// Pinned (kept by cleanups).
    pub pinned: bool,
    /// The one the next boot starts.
    pub default: bool,
    /// The image its origin follows.
    pub image: Option<String>,
    /// The ostree ref its origin follows, when not an image.
    pub refspec: Option<String>,
    /// The image's manifest digest, from the commit.
    pub manifest_digest: Option<String>,
    /// The image's version label.
    pub version: Option<String>,
    /// The commit's timestamp (seconds since 1970).
    pub timestamp: u64,
}

#[derive(Debug, Clone, Serialize)]
/// What `status` prints: the sysroot and its deployments.
pub struct Status {
    /// The sysroot's path.
    pub sysroot: String,
    /// Whether the sysroot is the running system's.
    pub booted: bool,
    /// Deployments, in boot order.
    pub deployments: Vec<DeploymentStatus>,
}

/// Image facts recorded in a commit's metadata: (manifest digest, version).
pub fn commit_image_facts(
    r: &ostree::Repo,
    commit: &str,
) -> Result<(Option<String>, Option<String>)> {
    let md = crate::ostree::commit::commit_metadata(r, commit)?;
    let get = |k: &str| md.lookup::<String>(k).ok().flatten();
    Ok((get(keys::MANIFEST_DIGEST), get(keys::VERSION)))
}

/// One deployment's status.
pub fn deployment_status(
    m: &Machine,
    d: &ostree::Deployment,
    default: bool,
) -> Result<DeploymentStatus> {
    let r = m.repo()?;
    let checksum = d.csum().to_string();
    let (manifest_digest, version) = commit_image_facts(&r, &checksum)
        .with_context(|| format!("reading deployed commit {checksum}"))?;
    let (image, refspec) = match origin::read(d.origin().as_ref())? {
        Origin::Image(i) => (Some(i.to_string()), None),
        Origin::Refspec(s) => (None, Some(s)),
        Origin::Unknown => (None, None),
    };
    let booted = m.sysroot.booted_deployment().is_some_and(|b| b.equal(d));
    Ok(DeploymentStatus {
        stateroot: d.osname().to_string(),
        serial: d.deployserial(),
        path: m.deployment_dir(d),
        booted,
        staged: d.is_staged(),
        pinned: d.is_pinned(),
        default,
        image,
        refspec,
        manifest_digest,
        version,
        timestamp: crate::ostree::commit::commit_timestamp(&r, &checksum)?,
        checksum,
    })
}

/// The status of the sysroot `m`.
pub fn status(m: &Machine) -> Result<Status> {
    let deployments = m
        .sysroot
        .deployments()
        .iter()
        .enumerate()
        .map(|(i, d)| deployment_status(m, d, i == 0))
        .collect::<Result<_>>()?;
    Ok(Status {
        sysroot: m.path.display().to_string(),
        booted: m.is_booted(),
        deployments,
    })
}

impl Status {
    /// `ostree admin status`-like text: `*` marks the booted deployment.
    pub fn to_text(&self) -> String {
        if self.deployments.is_empty() {
            return format!("{}: no deployments\n", self.sysroot);
        }
        let mut out = String::new();
        for d in &self.deployments {
            let mut marks = Vec::new();
            for (on, word) in [
                (d.staged, "staged"),
                (d.default && !d.staged, "default"),
                (d.pinned, "pinned"),
            ] {
                if on {
                    marks.push(word);
                }
            }
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!(" ({})", marks.join(", "))
            };
            out.push_str(&format!(
                "{} {} {}.{}{marks}\n",
                if d.booted { "*" } else { " " },
                d.stateroot,
                d.checksum,
                d.serial
            ));
            let follows = match (&d.image, &d.refspec) {
                (Some(i), _) => format!("image: {i}"),
                (None, Some(r)) => format!("ostree ref: {r} (not an image)"),
                (None, None) => "origin: none".to_string(),
            };
            out.push_str(&format!("    {follows}\n"));
            if let Some(m) = &d.manifest_digest {
                out.push_str(&format!("    digest: {m}\n"));
            }
            if let Some(v) = &d.version {
                out.push_str(&format!("    version: {v}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_marks_booted_staged_and_default() {
        let d = |csum: &str, booted, staged, default| DeploymentStatus {
            stateroot: "debian".into(),
            checksum: csum.into(),
            serial: 0,
            path: format!("ostree/deploy/debian/deploy/{csum}.0"),
            booted,
            staged,
            pinned: false,
            default,
            image: Some("ostree-unverified-image:oci:/srv/os:latest".into()),
            refspec: None,
            manifest_digest: Some("sha256:aa".into()),
            version: Some("2".into()),
            timestamp: 0,
        };
        let s = Status {
            sysroot: "/".into(),
            booted: true,
            deployments: vec![d("bbb", false, true, true), d("aaa", true, false, false)],
        };
        assert_eq!(
            s.to_text(),
            "  debian bbb.0 (staged)\n    image: ostree-unverified-image:oci:/srv/os:latest\n    digest: sha256:aa\n    version: 2\n\
             * debian aaa.0\n    image: ostree-unverified-image:oci:/srv/os:latest\n    digest: sha256:aa\n    version: 2\n"
        );
    }
}
