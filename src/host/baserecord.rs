//! Records of the diff_ids the ostree layers of an encapsulated base were verified against.
//!
//! The ostree layers of an encapsulated base all have blob refs naming the base commit, which
//! cannot hold their diff_ids (its checksum and metadata are the image's). So each gets a
//! record: ref `ostree/container/diffid/<escaped layer digest>` ([`diffid_ref`]) names a commit
//! with the base's root tree and dirmeta, no parent, subject the layer digest, timestamp 0, and
//! in its metadata:
//!
//! - `ostree.container.diff-id`: the diff_id the layer was verified against (as in a plain
//!   layer's commit);
//! - `ostree.container.base-commit`: the base commit.
//!
//! A stored base is reused only when every one of its layers has a record for that base with
//! the diff_id the image lists ([`verified`]); another diff_id is an error, and no record means
//! the base is read again (which verifies it) and recorded ([`record`]).

use anyhow::Result;
use ostree::glib::prelude::ToVariant;

use super::import::reusable;
use crate::ostree::keys::{BASE_COMMIT, LAYER_DIFF_ID};
use crate::ostree::refs::diffid_ref;
use crate::ostree::repo::ObjectWriter;

/// Whether the ostree layer `digest` of the stored base commit `base` was verified against
/// `diff_id`: its record says so. An error when it was verified against another diff_id (as
/// for a plain layer's commit); `false` when there is no record for this base.
pub fn verified(repo: &ostree::Repo, base: &str, digest: &str, diff_id: &str) -> Result<bool> {
    let Some(record) = repo.resolve_rev(&diffid_ref(digest), true)? else {
        return Ok(false);
    };
    let md = crate::ostree::commit::commit_metadata(repo, record.as_str())?;
    if md.lookup::<String>(BASE_COMMIT).ok().flatten().as_deref() != Some(base) {
        return Ok(false);
    }
    reusable(repo, record.as_str(), diff_id, "")
}

/// Within the transaction: record the diff_id each ostree layer of the base commit `base` was
/// verified against, as a commit (`ostree.container.diff-id`, `ostree.container.base-commit`;
/// the base's root, no parent, so no new object but itself) under
/// `ostree/container/diffid/<escaped digest>`. The base commit itself cannot hold them: its
/// checksum and metadata are the image's, and all its layers name it.
pub fn record(
    repo: &ostree::Repo,
    base: &str,
    layers: &[(&oci_spec::image::Descriptor, String)],
) -> Result<()> {
    let (tree, meta) = crate::ostree::commit::commit_root(repo, base)?;
    let mut w = ObjectWriter::new(repo);
    for (desc, diff_id) in layers {
        let mut md = std::collections::BTreeMap::new();
        md.insert(LAYER_DIFF_ID.to_string(), diff_id.to_variant());
        md.insert(BASE_COMMIT.to_string(), base.to_variant());
        let digest = desc.digest().to_string();
        let record = w.write_commit(None, &tree, &meta, &md, &digest, 0)?;
        repo.transaction_set_ref(None, &diffid_ref(&digest), Some(&record));
    }
    Ok(())
}
