//! Importing an encapsulated image back into the commit it was made from: same checksum,
//! same commit metadata, same detached metadata (signatures).
//!
//! An image is encapsulated when its config has the `ostree.final-diffid` label: the layers
//! up to and including the one with that diff_id are the ostree layers (the first holds the
//! commit). Only images with no layers after it are handled here; derived images go through
//! the generic importer.
//!
//! `ostree-remote-image:<remote>:…` references always come here: the image is fetched without
//! containers-policy checks, and the commit's detached signature is verified against the
//! remote's keys (its `gpgkeypath`/keyring in the repository config or
//! `/etc/ostree/remotes.d`) before any object is written. Everything is written in one
//! transaction: a bad or missing signature, a corrupt or incomplete layer leaves nothing
//! behind.
//!
//! Imported through the host importer (`image pull`, `unencapsulate`), the image is also
//! recorded like any other: its ostree layers' blob refs name the commit, and its
//! `ostree/container/image/…` ref names an *image commit*: the same tree, the image's
//! manifest and config in its metadata, the original commit as its parent. So `image list`,
//! `history`, `metadata` and `prune` know it, a second pull of the same manifest is a no-op,
//! and the original commit (checksum, metadata, signatures) stays as it was.

use std::io::{self, BufReader, Read};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use crate::host::fetch;
use crate::host::imgref::ImageReference;
use crate::host::imgref::{OstreeImageReference, SignatureSource, Transport};
use crate::host::import::{image_ref_name, PullResult};
use crate::host::metadata;
use crate::host::oci::{self, Compression, DigestReader, Image, Layout};
use crate::host::refescape::blob_ref;
use crate::host::repo::{self as hostrepo, ObjectWriter};

use super::encap::{LABEL_COMMIT, LABEL_DIFFID};
use super::tarread::Importer;
use super::Txn;

/// How many leading layers are ostree layers, when the image is encapsulated.
pub fn ostree_layer_count(
    labels: &std::collections::HashMap<String, String>,
    diff_ids: &[String],
) -> Option<usize> {
    let target = labels.get(LABEL_DIFFID)?;
    diff_ids.iter().position(|d| d == target).map(|i| i + 1)
}

/// Import the ostree layers of `img` and return the commit; the caller's `write_ref`, if
/// any, is set in the same transaction, and so is the record of the image as `record`, if
/// given (see the module docs).
pub fn import_image(
    repo: &ostree::Repo,
    layout: &Layout,
    img: &Image,
    remote: Option<String>,
    write_ref: Option<&str>,
    record: Option<&ImageReference>,
) -> Result<(String, PullResult)> {
    let start = Instant::now();
    let layers = img.layers()?;
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.clone()).collect();
    let n = ostree_layer_count(&img.labels(), &diff_ids).ok_or_else(|| {
        anyhow!(
            "not an encapsulated ostree image: no {LABEL_DIFFID} label naming one of its layers"
        )
    })?;
    let txn = Txn::begin(repo)?;
    let mut imp = Importer::new(repo, remote)?;
    let mut res = PullResult {
        manifest_digest: img.manifest_digest.clone(),
        ..Default::default()
    };
    for (i, (desc, diff_id)) in layers[..n].iter().enumerate() {
        let digest = desc.digest().to_string();
        let what = format!("layer {}/{n} ({digest})", i + 1);
        let compression = oci::layer_compression(desc.media_type().as_ref())?;
        let mut blob = DigestReader::new(layout.open_blob(&digest)?);
        {
            let decompressed: Box<dyn Read + '_> = match compression {
                Compression::None => Box::new(&mut blob),
                Compression::Gzip => {
                    Box::new(flate2::read::GzDecoder::new(BufReader::new(&mut blob)))
                }
                Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(&mut blob)?),
            };
            let mut tar = DigestReader::new(decompressed);
            imp.import_layer(BufReader::with_capacity(1 << 20, &mut tar))
                .with_context(|| what.clone())?;
            io::copy(&mut tar, &mut io::sink()).with_context(|| what.clone())?;
            tar.verify(&format!("{what} (uncompressed)"), diff_id, None)?;
            res.tar_bytes += tar.count();
        }
        io::copy(&mut blob, &mut io::sink()).with_context(|| what.clone())?;
        blob.verify(&what, &digest, Some(desc.size()))?;
        res.blob_bytes += desc.size();
        res.layers_imported += 1;
    }
    res.objects_written = imp.stats.content + imp.stats.metadata;
    res.files = imp.stats.content;
    let commit = imp.finish()?;
    if let Some(want) = img.labels().get(LABEL_COMMIT) {
        if *want != commit {
            bail!(
                "the image's {LABEL_COMMIT} label says {want}, but its commit layer holds {commit}"
            );
        }
    }
    if let Some(r) = write_ref {
        repo.transaction_set_ref(None, r, Some(&commit));
    }
    if let Some(imgref) = record {
        record_image(repo, img, &commit, &layers[..n], imgref)?;
    }
    txn.commit()?;
    res.commit = commit.clone();
    res.elapsed = start.elapsed();
    Ok((commit, res))
}

/// Within the caller's transaction: blob refs for the ostree layers, and the image ref on a
/// new image commit over `commit` (see the module docs). Returns the image commit.
fn record_image(
    repo: &ostree::Repo,
    img: &Image,
    commit: &str,
    layers: &[(&oci_spec::image::Descriptor, String)],
    imgref: &ImageReference,
) -> Result<String> {
    for (desc, _) in layers {
        repo.transaction_set_ref(None, &blob_ref(desc.digest().as_ref()), Some(commit));
    }
    let original = super::commit::Commit::load(repo, commit)?;
    let csum = |hex_csum: &str| -> Result<crate::host::tree::Csum> {
        hex::decode(hex_csum)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("commit {commit}: malformed tree checksum {hex_csum}"))
    };
    let bootable = original
        .metadata
        .lookup_value(metadata::BOOTABLE, None)
        .is_some()
        || img.labels().contains_key(metadata::BOOTABLE);
    let md = metadata::image_commit_metadata(img, bootable);
    let image_commit = ObjectWriter::new(repo).write_commit(
        Some(commit),
        &csum(&original.root_tree)?,
        &csum(&original.root_meta)?,
        &md,
        "",
        original.timestamp,
    )?;
    repo.transaction_set_ref(None, &image_ref_name(imgref), Some(&image_commit));
    Ok(image_commit)
}

/// When the image ref of `imgref` already records `manifest_digest` and its original commit
/// is here, that commit.
fn already_imported(
    repo: &ostree::Repo,
    imgref: &ImageReference,
    manifest_digest: &str,
) -> Result<Option<String>> {
    let Some(image_commit) = repo.resolve_rev(&image_ref_name(imgref), true)? else {
        return Ok(None);
    };
    let md = hostrepo::commit_metadata(repo, &image_commit)?;
    if md
        .lookup::<String>(metadata::MANIFEST_DIGEST)
        .ok()
        .flatten()
        .as_deref()
        != Some(manifest_digest)
    {
        return Ok(None);
    }
    let v = repo.load_variant(ostree::ObjectType::Commit, &image_commit)?;
    let parent = hex::encode(v.child_value(1).fixed_array::<u8>().unwrap_or_default());
    if parent.is_empty()
        || !repo.has_object(
            ostree::ObjectType::Commit,
            &parent,
            ostree::gio::Cancellable::NONE,
        )?
    {
        return Ok(None);
    }
    Ok(Some(parent))
}

type Labels = std::collections::HashMap<String, String>;

/// Labels of an image without fetching its layers (`skopeo inspect --config` for remote
/// transports; the layout itself for `oci:`/`oci-archive:`).
fn peek(r: &OstreeImageReference) -> Result<Option<(Labels, Vec<String>)>> {
    match r.imgref.transport {
        Transport::OciDir | Transport::OciArchive => {
            let (path, tag) = r.imgref.oci_path_and_tag();
            let layout = if r.imgref.transport == Transport::OciDir {
                Layout::open_dir(Path::new(path))
            } else {
                Layout::open_archive(Path::new(path))
            };
            // Let the generic importer report unreadable images.
            let Ok(img) = layout.and_then(|l| l.resolve(tag)) else {
                return Ok(None);
            };
            Ok(Some((img.labels(), img.config.rootfs().diff_ids().clone())))
        }
        _ => {
            let out = Command::new("skopeo")
                .args(["inspect", "--config"])
                .arg(r.imgref.to_string())
                .output()
                .context("running skopeo inspect")?;
            if !out.status.success() {
                return Ok(None);
            }
            let cfg: oci_spec::image::ImageConfiguration =
                serde_json::from_slice(&out.stdout).context("parsing skopeo inspect --config")?;
            let labels = cfg
                .config()
                .as_ref()
                .and_then(|c| c.labels().clone())
                .unwrap_or_default();
            Ok(Some((labels, cfg.rootfs().diff_ids().clone())))
        }
    }
}

/// For the host importer: import `r` here when it is an encapsulated commit with no derived
/// layers, or when it asks for ostree signature verification; `None` for anything else.
pub fn pull_if_encapsulated(
    repo: &ostree::Repo,
    r: &OstreeImageReference,
    write_ref: Option<&str>,
) -> Result<Option<PullResult>> {
    let remote = match &r.sigverify {
        SignatureSource::OstreeRemote(remote) => Some(remote.clone()),
        _ => None,
    };
    if remote.is_none() {
        let Some((labels, diff_ids)) = peek(r)? else {
            return Ok(None);
        };
        if ostree_layer_count(&labels, &diff_ids) != Some(diff_ids.len()) {
            return Ok(None);
        }
    }
    let fetch_ref = match &remote {
        // The ostree signature is the check; containers-policy does not apply.
        Some(_) => OstreeImageReference {
            sigverify: SignatureSource::ContainerPolicyAllowInsecure,
            imgref: r.imgref.clone(),
        },
        None => r.clone(),
    };
    let tmp = crate::host::import::repo_path(repo)?.join("tmp");
    let source = fetch::open(&fetch_ref, &tmp)?;
    let img = source.layout.resolve(source.tag.as_deref())?;
    if let Some(remote) = &remote {
        let diff_ids = img.config.rootfs().diff_ids().clone();
        match ostree_layer_count(&img.labels(), &diff_ids) {
            Some(n) if n == diff_ids.len() => {}
            Some(_) => bail!(
                "{r}: the image has layers after its ostree commit, which remote {remote:?} cannot verify"
            ),
            None => bail!(
                "{r}: not an encapsulated ostree commit (no {LABEL_DIFFID} label), so remote {remote:?} cannot verify it"
            ),
        }
    }
    if let Some(commit) = already_imported(repo, &r.imgref, &img.manifest_digest)? {
        if let Some(w) = write_ref {
            repo.set_ref_immediate(None, w, Some(&commit), ostree::gio::Cancellable::NONE)?;
        }
        return Ok(Some(PullResult {
            commit,
            manifest_digest: img.manifest_digest.clone(),
            unchanged: true,
            ..Default::default()
        }));
    }
    let (_, res) = import_image(
        repo,
        &source.layout,
        &img,
        remote,
        write_ref,
        Some(&r.imgref),
    )?;
    Ok(Some(res))
}
