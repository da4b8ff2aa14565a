//! containers-policy.json, as far as choosing how an image is verified needs it.
//!
//! # Which policy, and what skopeo is told
//!
//! containers/image checks signatures when the proxy opens an image (`skopeo
//! experimental-image-proxy`), against the policy skopeo is given:
//!
//! | reference                | skopeo global options                                                  |
//! |--------------------------|------------------------------------------------------------------------|
//! | `ostree-image-signed:`   | `--policy P` when `--policy P` was given, else the default file [`DEFAULT_POLICY`]; refused before skopeo runs when that policy's default is `insecureAcceptAnything` or the file is missing |
//! | `ostree-unverified-*`    | the policy as above when its file exists, else `--insecure-policy`       |
//! | `ostree-remote-*`        | `--insecure-policy` (the ostree signature is the check)                  |
//!
//! `--registries.d D` is passed on in every case: it says where signatures are looked up
//! (`lookaside` in registries.d, containers-registries.d(5)).
//!
//! # The `insecureAcceptAnything` refusal
//!
//! As ostree-rs-ext (`container::skopeo::container_policy_is_default_insecure`, checked in
//! `ImageImporter::prepare`): when the first requirement of the policy's `default` is
//! `insecureAcceptAnything`, `ostree-image-signed:` is refused, even if the policy has stricter
//! rules for some registries, because an image from any other registry would be accepted
//! unsigned while the reference promises a verified one. Debian's and Fedora's stock
//! policy.json is exactly that default, so a machine must be configured (a `reject` default,
//! `signedBy` rules per registry) before `ostree-image-signed:` can work.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The policy containers/image reads when none is given.
pub const DEFAULT_POLICY: &str = "/etc/containers/policy.json";

/// The policy file in effect: the one given, else [`DEFAULT_POLICY`].
pub fn policy_path(given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| PathBuf::from(DEFAULT_POLICY), Path::to_path_buf)
}

/// Whether a policy's default accepts anything: its first `default` requirement has type
/// `insecureAcceptAnything` (ostree-rs-ext's test; a missing or empty `default` is not).
pub fn default_is_insecure(json: &[u8]) -> Result<bool, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Requirement {
        #[serde(rename = "type")]
        ty: String,
    }
    #[derive(serde::Deserialize)]
    struct Policy {
        default: Option<Vec<Requirement>>,
    }
    let p: Policy = serde_json::from_slice(json)?;
    Ok(p.default
        .as_ref()
        .and_then(|d| d.first())
        .is_some_and(|r| r.ty == "insecureAcceptAnything"))
}

/// Refuse `ostree-image-signed:` unless the policy in effect (see [`policy_path`]) exists and
/// does not accept anything by default.
pub fn require_verifying_policy(given: Option<&Path>) -> Result<()> {
    let path = policy_path(given);
    let json = std::fs::read(&path).with_context(|| {
        format!(
            "ostree-image-signed: needs a containers signature policy: reading {}; write one \
             (containers-policy.json(5)) or give --policy",
            path.display()
        )
    })?;
    let insecure = default_is_insecure(&json)
        .with_context(|| format!("ostree-image-signed: reading {}", path.display()))?;
    if insecure {
        bail!(
            "ostree-image-signed: containers-policy.json specifies a default of \
             `insecureAcceptAnything`; refusing usage ({}: an image would be accepted without \
             any signature; give the registry a `signedBy` requirement and the default \
             `reject`, or use ostree-unverified-registry: / ostree-unverified-image: to pull \
             without verification)",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_default_as_ostree_rs_ext_reads_it() {
        let cases: &[(&str, bool)] = &[
            (r#"{"default":[{"type":"insecureAcceptAnything"}]}"#, true),
            // Debian's stock file, with transports.
            (
                r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker-daemon":{"":[{"type":"insecureAcceptAnything"}]}}}"#,
                true,
            ),
            // Stricter rules for one registry do not make the default safe.
            (
                r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"r.example":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k"}]}}}"#,
                true,
            ),
            (r#"{"default":[{"type":"reject"}]}"#, false),
            (
                r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k"}]}"#,
                false,
            ),
            // Only the first requirement counts (as ostree-rs-ext).
            (
                r#"{"default":[{"type":"reject"},{"type":"insecureAcceptAnything"}]}"#,
                false,
            ),
            (r#"{"default":[]}"#, false),
            (r#"{"transports":{}}"#, false),
        ];
        for (json, want) in cases {
            assert_eq!(
                default_is_insecure(json.as_bytes()).unwrap(),
                *want,
                "{json}"
            );
        }
        assert!(default_is_insecure(b"{\"default\": 3}").is_err());
    }

    #[test]
    fn missing_or_insecure_policy_refused() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("none.json");
        let e = require_verifying_policy(Some(&missing)).unwrap_err();
        assert!(format!("{e:#}").contains("none.json"), "{e:#}");
        let p = d.path().join("policy.json");
        std::fs::write(&p, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
        let e = require_verifying_policy(Some(&p)).unwrap_err();
        assert!(format!("{e:#}").contains("refusing usage"), "{e:#}");
        std::fs::write(&p, r#"{"default":[{"type":"reject"}]}"#).unwrap();
        require_verifying_policy(Some(&p)).unwrap();
    }
}
