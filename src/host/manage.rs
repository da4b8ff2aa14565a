//! Listing, removing and pruning stored images, and showing their history and metadata.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use ostree::gio;

use super::import::{stored_image, stored_manifest_and_config};
use crate::oci::imgref::ImageReference;
use crate::ostree::refs::{self, BLOB_PREFIX, DIFFID_PREFIX, IMAGE_PREFIX};

fn refs_with_prefix(repo: &ostree::Repo, prefix: &str) -> Result<Vec<(String, String)>> {
    let all = repo
        .list_refs(None, gio::Cancellable::NONE)
        .context("listing refs")?;
    let want = format!("{prefix}/");
    let mut v: Vec<(String, String)> = all
        .into_iter()
        .filter(|(r, _)| r.starts_with(&want))
        .collect();
    v.sort();
    Ok(v)
}

/// Stored images (containers/image form, e.g. `oci:/srv/os:latest`), sorted.
pub fn list(repo: &ostree::Repo) -> Result<Vec<String>> {
    refs_with_prefix(repo, IMAGE_PREFIX)?
        .into_iter()
        .map(|(r, _)| Ok(refs::unprefix_unescape(IMAGE_PREFIX, &r)?))
        .collect()
}

/// Remove the images' refs (their objects go with the next `image prune`).
pub fn remove(repo: &ostree::Repo, imgrefs: &[ImageReference]) -> Result<()> {
    for i in imgrefs {
        stored_image(repo, i)?;
    }
    for i in imgrefs {
        repo.set_ref_immediate(
            None,
            &crate::ostree::refs::image_ref(i),
            None,
            gio::Cancellable::NONE,
        )
        .with_context(|| format!("removing {i}"))?;
    }
    Ok(())
}

/// What `prune` did.
#[derive(Debug, Default)]
pub struct PruneResult {
    /// Layer refs removed because no stored image uses them.
    pub layers_removed: usize,
    /// Objects deleted as unreachable from any ref.
    pub objects_pruned: i32,
    /// Bytes those objects took.
    pub bytes_freed: u64,
}

fn manifest_layer_digests(manifest: &str) -> Result<Vec<String>> {
    let v: serde_json::Value =
        serde_json::from_str(manifest).context("parsing a stored manifest")?;
    Ok(v["layers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["digest"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// Drop layer refs no stored image uses, then delete unreachable objects.
pub fn prune(repo: &ostree::Repo) -> Result<PruneResult> {
    let mut used = BTreeSet::new();
    for img in list(repo)? {
        let imgref: ImageReference = img.parse()?;
        let (manifest, _) = stored_manifest_and_config(repo, &imgref)?;
        used.extend(manifest_layer_digests(&manifest)?);
    }
    let mut res = PruneResult::default();
    // A layer's diff_id record goes with its blob ref.
    for prefix in [BLOB_PREFIX, DIFFID_PREFIX] {
        for (r, _) in refs_with_prefix(repo, prefix)? {
            let digest = refs::unprefix_unescape(prefix, &r).unwrap_or_default();
            if !used.contains(&digest) {
                repo.set_ref_immediate(None, &r, None, gio::Cancellable::NONE)
                    .with_context(|| format!("removing {r}"))?;
                res.layers_removed += usize::from(prefix == BLOB_PREFIX);
            }
        }
    }
    let (_, pruned, freed) = repo
        .prune(
            ostree::RepoPruneFlags::REFS_ONLY,
            -1,
            gio::Cancellable::NONE,
        )
        .context("pruning unreachable objects")?;
    res.objects_pruned = pruned;
    res.bytes_freed = freed;
    Ok(res)
}

/// `CREATED  CREATED BY` lines from the image config's history.
pub fn history(repo: &ostree::Repo, imgref: &ImageReference) -> Result<String> {
    let (_, config) = stored_manifest_and_config(repo, imgref)?;
    let v: serde_json::Value =
        serde_json::from_str(&config).context("parsing the stored config")?;
    let mut out = format!("{:<22} {}\n", "CREATED", "CREATED BY");
    for h in v["history"].as_array().into_iter().flatten() {
        let created = h["created"].as_str().unwrap_or("-");
        let created = created.get(..19).unwrap_or(created);
        let by = h["created_by"].as_str().unwrap_or("-");
        let empty = if h["empty_layer"].as_bool() == Some(true) {
            " (no layer)"
        } else {
            ""
        };
        out.push_str(&format!("{created:<22} {by}{empty}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn layer_digests_from_manifest() {
        let m = r#"{"schemaVersion":2,"config":{"digest":"sha256:c"},"layers":[{"digest":"sha256:a"},{"digest":"sha256:b"}]}"#;
        assert_eq!(
            super::manifest_layer_digests(m).unwrap(),
            ["sha256:a", "sha256:b"]
        );
    }
}
