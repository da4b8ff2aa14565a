//! `encapsulate`: write a commit as an image (layout and labels in the [module docs](super)).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::json;

use crate::oci::fetch;
use crate::oci::imgref::{ImageReference, OstreeImageReference, SignatureSource, Transport};

use super::chunking::{self, LayerPlan, COMPONENTS_ANNOTATION, COMPONENT_SEPARATOR};
use super::cli::EncapsulateArgs;
use crate::oci::write::{self, OciDir, MEDIA_CONFIG, MEDIA_LAYER_GZIP, MEDIA_MANIFEST};
use crate::ostree::commit::{self, Commit, Walk};
use crate::ostree::csum::Csum;
use crate::ostree::tar::write::{ExportError, LayerWriter};

use crate::ostree::keys::{
    CONTAINER_CMD, LABEL_BOOTABLE, LABEL_BOOTC, LABEL_COMMIT, LABEL_DIFFID, LABEL_LINUX,
    LABEL_OCI_VERSION,
};

/// How to encapsulate: what `encapsulate`'s options ask for besides the commit itself.
#[derive(Debug, Default, Clone)]
pub struct EncapOptions {
    /// Extra labels (`--label KEY=VALUE`), set after the computed ones.
    pub labels: BTreeMap<String, String>,
    /// Commit metadata keys copied to labels (`--copymeta`); a missing key is an error.
    pub copy_meta: Vec<String>,
    /// Commit metadata keys copied to labels when present (`--copymeta-opt`).
    pub copy_meta_opt: Vec<String>,
    /// The image's `Cmd`; `None` takes the commit's [`CONTAINER_CMD`], if any.
    pub cmd: Option<Vec<String>>,
    /// At most this many content layers after the commit layer (`--max-layers`).
    pub max_layers: u32,
    /// The previous build's content layers (component lists), to keep the layout.
    pub prior: Option<Vec<Vec<String>>>,
}

/// One layer of the written image.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// Digest of the compressed blob.
    pub digest: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
    /// The history entry's `created_by`: the commit subject for the commit layer, else what the
    /// layer holds.
    pub description: String,
    /// The components (packages or directories) in the layer; empty for the commit layer.
    pub components: Vec<String>,
}

/// What [`build_oci`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Built {
    /// The checksum of the commit written.
    pub commit: String,
    /// Digest of the image manifest.
    pub manifest_digest: String,
    /// Size of the image manifest in bytes.
    pub manifest_size: u64,
    /// The layers in order: the commit layer first, then the content layers.
    pub layers: Vec<LayerInfo>,
}

/// The labels of the image for `c` (see the module docs).
pub fn labels_for(
    c: &Commit,
    walk: &Walk,
    opts: &EncapOptions,
) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for k in &opts.copy_meta {
        let v = c.meta_string(k).ok_or_else(|| {
            anyhow!(
                "--copymeta {k}: commit {} has no string metadata {k:?}",
                c.checksum
            )
        })?;
        labels.insert(k.clone(), v);
    }
    for k in &opts.copy_meta_opt {
        if let Some(v) = c.meta_string(k) {
            labels.insert(k.clone(), v);
        }
    }
    let kernel = walk.content.values().flatten().find_map(|p| {
        let kver = p
            .strip_prefix("usr/lib/modules/")?
            .strip_suffix("/vmlinuz")?;
        (!kver.contains('/')).then(|| kver.to_string())
    });
    let bootable = c
        .metadata
        .lookup::<bool>(LABEL_BOOTABLE)
        .ok()
        .flatten()
        .unwrap_or(kernel.is_some());
    labels.insert(LABEL_BOOTABLE.into(), bootable.to_string());
    if bootable {
        labels.insert(LABEL_BOOTC.into(), "1".into());
    }
    if let Some(k) = c.meta_string(LABEL_LINUX).or(kernel) {
        labels.insert(LABEL_LINUX.into(), k);
    }
    if let Some(v) = c.meta_string("version") {
        labels.insert(LABEL_OCI_VERSION.into(), v);
    }
    labels.extend(opts.labels.clone());
    labels.insert(LABEL_COMMIT.into(), c.checksum.clone());
    Ok(labels)
}

/// Write the image for `rev` into the layout at `dir`, tagged `tag`.
pub fn build_oci(
    repo: &ostree::Repo,
    rev: &str,
    dir: &Path,
    tag: Option<&str>,
    opts: &EncapOptions,
) -> Result<Built> {
    let c = Commit::load(repo, rev)?;
    let walk = commit::walk(repo, &c)?;
    let mut sizes = BTreeMap::new();
    for csum in walk.content.keys() {
        sizes.insert(*csum, commit::load_content(repo, csum)?.size);
    }
    let owners = chunking::package_owners(repo, &walk)?;
    let comps = chunking::components(&walk, &owners, &sizes);
    let plans = chunking::pack(&comps, opts.max_layers.max(1), opts.prior.as_deref());
    let chunked: HashSet<&Csum> = plans.iter().flat_map(|p| p.objects.iter()).collect();
    let remainder: BTreeSet<Csum> = walk
        .content
        .keys()
        .filter(|k| !chunked.contains(k))
        .cloned()
        .collect();

    let oci = OciDir::ensure(dir)?;
    let mut layers = Vec::new();
    let first = oci.write_layer::<anyhow::Error>(|w| {
        let mut lw = LayerWriter::new(repo, w);
        lw.commit(&c, &walk)?;
        for csum in &remainder {
            lw.content(csum, &walk.content[csum])?;
        }
        lw.finish()?;
        Ok(())
    })?;
    let description = if c.subject.is_empty() {
        format!("ostree export of commit {}", c.checksum)
    } else {
        c.subject.clone()
    };
    layers.push(LayerInfo {
        digest: first.blob.digest,
        size: first.blob.size,
        diff_id: first.diff_id,
        description,
        components: Vec::new(),
    });
    for plan in &plans {
        layers.push(write_chunk(repo, &oci, &walk, plan)?);
    }

    let mut labels = labels_for(&c, &walk, opts)?;
    labels.insert(
        LABEL_DIFFID.into(),
        layers.last().expect("one layer at least").diff_id.clone(),
    );
    let created = crate::oci::time::rfc3339(c.timestamp);
    let cmd = opts.cmd.clone().or_else(|| {
        c.metadata
            .lookup::<Vec<String>>(CONTAINER_CMD)
            .ok()
            .flatten()
    });
    let mut ctr = json!({ "Labels": labels });
    if let Some(cmd) = cmd {
        ctr["Cmd"] = json!(cmd);
    }
    let config = json!({
        "architecture": write::oci_arch(),
        "os": "linux",
        "created": created,
        "config": ctr,
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "history": layers.iter().map(|l| json!({
            "created": created,
            "created_by": l.description,
        })).collect::<Vec<_>>(),
    });
    let config_blob = oci.write_blob(&serde_json::to_vec(&config)?)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {
            "mediaType": MEDIA_CONFIG,
            "digest": config_blob.digest,
            "size": config_blob.size,
        },
        "layers": layers.iter().map(|l| {
            let mut d = json!({
                "mediaType": MEDIA_LAYER_GZIP,
                "digest": l.digest,
                "size": l.size,
            });
            if !l.components.is_empty() {
                let sep = COMPONENT_SEPARATOR.to_string();
                d["annotations"] = json!({ COMPONENTS_ANNOTATION: l.components.join(&sep) });
            }
            d
        }).collect::<Vec<_>>(),
        "annotations": labels,
    });
    let manifest_blob = oci.write_blob(&serde_json::to_vec(&manifest)?)?;
    oci.set_manifest(&manifest_blob, tag)?;
    Ok(Built {
        commit: c.checksum,
        manifest_digest: manifest_blob.digest,
        manifest_size: manifest_blob.size,
        layers,
    })
}

fn write_chunk(
    repo: &ostree::Repo,
    oci: &OciDir,
    walk: &Walk,
    plan: &LayerPlan,
) -> Result<LayerInfo> {
    let l = oci.write_layer::<anyhow::Error>(|w| {
        let mut lw = LayerWriter::new(repo, w);
        lw.repo_structure()?;
        for csum in &plan.objects {
            lw.content(csum, &walk.content[csum])?;
        }
        lw.finish().map_err(|e: ExportError| anyhow!(e))?;
        Ok(())
    })?;
    Ok(LayerInfo {
        digest: l.blob.digest,
        size: l.blob.size,
        diff_id: l.diff_id,
        description: plan.description(),
        components: plan.components.clone(),
    })
}

/// An image's manifest and config: `oci:`/`oci-archive:` in place, anything else through
/// the image proxy.
pub fn open_image(imgref: &str) -> Result<crate::oci::layout::Image> {
    let r = OstreeImageReference::parse_any(imgref)?.imgref;
    let r = OstreeImageReference {
        sigverify: SignatureSource::ContainerPolicyAllowInsecure,
        imgref: r,
    };
    Ok(fetch::open(&r, &Default::default())?.image)
}

/// Bytes a client holding `old` downloads for `new`: layers (by digest) it lacks, plus the
/// new config and manifest.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadSize {
    /// Layers in `new`.
    pub layers_total: usize,
    /// Layers of `new` that `old` lacks.
    pub layers_new: usize,
    /// Bytes of `new`: all its layers, config and manifest.
    pub bytes_total: u64,
    /// Bytes to download: the missing layers, config and manifest.
    pub bytes_new: u64,
}

/// What a client holding `old` downloads to get `new` (layers compared by digest).
pub fn download_size(
    old: &crate::oci::layout::Image,
    new: &crate::oci::layout::Image,
) -> DownloadSize {
    let have: HashSet<String> = old
        .manifest
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect();
    let meta = new.manifest.config().size() + new.manifest_raw.len() as u64;
    let mut d = DownloadSize {
        layers_total: new.manifest.layers().len(),
        layers_new: 0,
        bytes_total: meta,
        bytes_new: meta,
    };
    for l in new.manifest.layers() {
        d.bytes_total += l.size();
        if !have.contains(&l.digest().to_string()) {
            d.layers_new += 1;
            d.bytes_new += l.size();
        }
    }
    d
}

impl std::fmt::Display for DownloadSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} layers changed: download {} of {} bytes ({:.1}%)",
            self.layers_new,
            self.layers_total,
            self.bytes_new,
            self.bytes_total,
            100.0 * self.bytes_new as f64 / self.bytes_total.max(1) as f64
        )
    }
}

/// `encapsulate download-size OLD NEW`: print [`DownloadSize`] as text or JSON; returns the exit
/// code.
pub fn run_download_size(old: &str, new: &str, json_out: bool) -> Result<u8> {
    let old = open_image(old)?;
    let new = open_image(new)?;
    let d = download_size(&old, &new);
    if json_out {
        let mut v = serde_json::to_value(&d)?;
        v["schema_version"] = crate::commit::report::SCHEMA_VERSION.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{d}");
    }
    Ok(0)
}

fn parse_labels(v: &[String]) -> Result<BTreeMap<String, String>> {
    v.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--label {kv:?}: expected KEY=VALUE"))
        })
        .collect()
}

/// `encapsulate`: write the commit as an image to the destination; returns the exit code.
pub fn run(a: &EncapsulateArgs) -> Result<u8> {
    if a.max_layers == 0 {
        bail!("--max-layers must be at least 1");
    }
    let repo = crate::ostree::repo::open_repo(&a.repo)?;
    let dest = OstreeImageReference::parse_any(&a.imgref)?.imgref;
    let work = tempfile::Builder::new()
        .prefix("ostree-container-encapsulate-")
        .tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
        .context("creating a temporary directory")?;

    // The previous image of this line, to keep its layout and report the download size.
    let previous = previous_manifest(a.previous.as_deref(), &dest)?;
    let prior = previous.as_ref().and_then(chunking::prior_layout);
    let opts = EncapOptions {
        labels: parse_labels(&a.labels)?,
        copy_meta: a.copy_meta.clone(),
        copy_meta_opt: a.copy_meta_opt.clone(),
        cmd: (!a.cmd.is_empty()).then(|| a.cmd.clone()),
        max_layers: a.max_layers,
        prior,
    };

    let built = match dest.transport {
        Transport::OciDir => {
            let (path, tag) = dest.oci_path_and_tag();
            build_oci(&repo, &a.rev, Path::new(path), tag, &opts)?
        }
        Transport::OciArchive => {
            let (path, tag) = dest.oci_path_and_tag();
            let dir = work.path().join("layout");
            let b = build_oci(&repo, &a.rev, &dir, tag, &opts)?;
            OciDir { path: dir }.write_archive(Path::new(path))?;
            b
        }
        _ => {
            let dir = work.path().join("layout");
            let b = build_oci(&repo, &a.rev, &dir, Some("encapsulated"), &opts)?;
            skopeo_push(&dir, &dest)?;
            b
        }
    };
    let download = previous.as_ref().map(|old| {
        let have: HashSet<&str> = old.layers().iter().map(|l| l.digest().as_ref()).collect();
        let new_layers: Vec<&LayerInfo> = built
            .layers
            .iter()
            .filter(|l| !have.contains(l.digest.as_str()))
            .collect();
        DownloadSize {
            layers_total: built.layers.len(),
            layers_new: new_layers.len(),
            bytes_total: built.layers.iter().map(|l| l.size).sum::<u64>() + built.manifest_size,
            bytes_new: new_layers.iter().map(|l| l.size).sum::<u64>() + built.manifest_size,
        }
    });
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "schema_version": crate::commit::report::SCHEMA_VERSION,
                "commit": built.commit,
                "manifest_digest": built.manifest_digest,
                "layers": built.layers,
                "download_from_previous": download,
            }))?
        );
    } else {
        eprintln!(
            "commit {} -> {} layers, {} bytes",
            built.commit,
            built.layers.len(),
            built.layers.iter().map(|l| l.size).sum::<u64>()
        );
        if let Some(d) = &download {
            eprintln!("from the previous image: {d}");
        }
        println!("{}", built.manifest_digest);
    }
    Ok(0)
}

/// The manifest of the previous image of this line: `--previous` when given (an error when
/// it cannot be read), else the image already at the destination, if there is one.
fn previous_manifest(
    explicit: Option<&str>,
    dest: &ImageReference,
) -> Result<Option<oci_spec::image::ImageManifest>> {
    if let Some(p) = explicit {
        let r = OstreeImageReference::parse_any(p)
            .map_err(|e| anyhow!("--previous: {e}"))?
            .imgref;
        return fetch::manifest(&r, &Default::default())
            .with_context(|| format!("--previous {p}"))
            .map(Some);
    }
    match fetch::manifest(dest, &Default::default()) {
        Ok(m) => {
            eprintln!("keeping the layer layout of the image already at {dest}");
            Ok(Some(m))
        }
        Err(e) => {
            tracing::debug!("no previous image at {dest}: {e:#}");
            Ok(None)
        }
    }
}

fn skopeo_push(dir: &Path, dest: &ImageReference) -> Result<()> {
    let mut cmd = Command::new("skopeo");
    cmd.arg("copy").arg("--quiet");
    if !Path::new("/etc/containers/policy.json").exists() {
        cmd.arg("--insecure-policy");
    }
    cmd.arg(format!("oci:{}:encapsulated", dir.display()))
        .arg(dest.to_string());
    let out = cmd.output().context("running skopeo (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "skopeo copy to {dest} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
