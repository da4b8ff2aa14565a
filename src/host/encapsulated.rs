//! Importing the ostree layers of an encapsulated image back into the commit they were made
//! from: same checksum, same commit metadata, same detached metadata (signatures).
//!
//! An image is encapsulated when its config has the `ostree.final-diffid` label: the layers
//! up to and including the one with that diff_id are the ostree layers (the first holds the
//! commit). This module only reads those layers; the pull pipeline
//! ([`crate::host::import`]) decides when to, runs the transaction, and checks whether the
//! image is unchanged.
//!
//! With a remote (`ostree-remote-image:<remote>:…`), the commit's detached signature is
//! verified against the remote's keys (its `gpgkeypath`/keyring in the repository config or
//! `/etc/ostree/remotes.d`) before any object is written.
//!
//! Imported through the host importer (`image pull`, `unencapsulate`), the image is also
//! recorded like any other: its ostree layers' blob refs name the commit, and its
//! `ostree/container/image/…` ref names an *image commit*: the same tree, the image's
//! manifest and config in its metadata, the original commit as its parent. So `image list`,
//! `history`, `metadata` and `prune` know it, a second pull of the same manifest is a no-op,
//! and the original commit (checksum, metadata, signatures) stays as it was.

use std::io::BufReader;

use anyhow::{bail, Context, Result};

use crate::host::import::PullResult;
use crate::host::metadata;
use crate::host::progress::Progress;
use crate::oci::fetch::Source;
use crate::oci::imgref::ImageReference;
use crate::oci::layout::Image;
use crate::ostree::refs::blob_ref;
use crate::ostree::repo::ObjectWriter;

use crate::ostree::keys::{self, LABEL_COMMIT, LABEL_DIFFID};
use crate::ostree::tar::read::Importer;

/// How many leading layers are ostree layers, when the image is encapsulated.
pub fn ostree_layer_count(
    labels: &std::collections::HashMap<String, String>,
    diff_ids: &[String],
) -> Option<usize> {
    let target = labels.get(LABEL_DIFFID)?;
    diff_ids.iter().position(|d| d == target).map(|i| i + 1)
}

/// Read the ostree `layers` of the image in `source` into `imp`, verifying each blob's
/// digest and size and each layer's diff_id; counts go to `res`. The caller owns the
/// transaction and calls `imp.finish()`.
pub fn read_ostree_layers(
    imp: &mut Importer<'_>,
    source: &Source,
    layers: &[(&oci_spec::image::Descriptor, String)],
    res: &mut PullResult,
    progress: &Progress,
) -> Result<()> {
    let n = layers.len();
    for (i, (desc, diff_id)) in layers.iter().enumerate() {
        let digest = desc.digest().to_string();
        let what = format!("ostree layer {}/{n} ({digest})", i + 1);
        let pb = progress.layer(&format!("ostree layer {}/{n}", i + 1), desc.size());
        let mut layer = source.open_layer(desc, diff_id, &what, |raw| {
            progress.track_layer(&pb, raw, &digest, i + 1, n, desc.size())
        })?;
        let imported = imp.import_layer(BufReader::with_capacity(1 << 20, &mut layer));
        // The blob first (a corrupt blob explains everything after it), the diff_id last.
        let verified = match layer.finish() {
            Err(e) if e.is_blob() => return Err(e.into()),
            v => v,
        };
        imported.with_context(|| what.clone())?;
        res.tar_bytes += verified?.tar_bytes;
        pb.finish_and_clear();
        res.blob_bytes += desc.size();
        res.layers_imported += 1;
    }
    Ok(())
}

/// The commit `imp` finished, checked against the image's `ostree.commit` label.
pub fn finish_commit(imp: Importer<'_>, img: &Image) -> Result<String> {
    let commit = imp.finish()?;
    if let Some(want) = img.labels().get(LABEL_COMMIT) {
        if *want != commit {
            bail!(
                "the image's {LABEL_COMMIT} label says {want}, but its ostree layers hold {commit}"
            );
        }
    }
    Ok(commit)
}

/// Within the caller's transaction: blob refs for the ostree layers, and the image ref on a
/// new image commit over `commit` (see the module docs). Returns the image commit.
pub fn record_image(
    repo: &ostree::Repo,
    img: &Image,
    commit: &str,
    layers: &[(&oci_spec::image::Descriptor, String)],
    imgref: &ImageReference,
) -> Result<String> {
    for (desc, _) in layers {
        repo.transaction_set_ref(None, &blob_ref(desc.digest().as_ref()), Some(commit));
    }
    let original = crate::ostree::commit::Commit::load(repo, commit)?;
    let bootable = original
        .metadata
        .lookup_value(keys::BOOTABLE, None)
        .is_some()
        || img.labels().contains_key(keys::BOOTABLE);
    let md = metadata::image_commit_metadata(img, bootable);
    let image_commit = ObjectWriter::new(repo).write_commit(
        Some(commit),
        &original.root_tree,
        &original.root_meta,
        &md,
        "",
        original.timestamp,
    )?;
    repo.transaction_set_ref(
        None,
        &crate::ostree::refs::image_ref(imgref),
        Some(&image_commit),
    );
    Ok(image_commit)
}
