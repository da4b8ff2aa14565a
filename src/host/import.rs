//! Importing an image: the orchestration of [`oci`](super::oci), [`layer`](super::layer),
//! [`tree`](super::tree) and [`repo`](super::repo).
//!
//! # What is stored
//!
//! - one commit per layer, ref `ostree/container/blob/<escaped layer digest>`: the layer's
//!   files, with `etc` at `usr/etc` and its whiteouts kept as empty `.wh.*` files; parents the
//!   layer does not list get the lower layers' metadata;
//! - the merged image, ref `ostree/container/image/<escaped image reference>`, with the
//!   metadata described in [`metadata`](super::metadata).
//!
//! A layer whose ref already exists is not read again: its tree is loaded from the
//! repository. A layer tree that took something from the layers below it (the metadata of a
//! parent directory it does not list, a hard link to a lower file) records their chain ID
//! (`ostree.container.lower-chain`, as OCI's ChainID) and is reused only over the same lower
//! layers; elsewhere it is read again. Pulling an image whose manifest digest equals the one
//! already stored does nothing.
//!
//! # Atomicity
//!
//! Everything is written in one ostree transaction: objects go to the transaction's staging
//! directory and the refs are set when it is committed. An error aborts the transaction; a
//! killed import leaves only a staging directory that libostree reuses or cleans up. Either
//! way no ref moves and `ostree fsck` stays clean.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use ostree::gio::{self, prelude::FileExt};
use ostree::glib::prelude::ToVariant;

use super::fetch;
use super::imgref::{ImageReference, OstreeImageReference};
use super::layer::{self, Data, Item, LayerCounts, LayerError, LayerSource};
use super::metadata;
use super::oci;
use super::progress::Progress;
use super::refescape::{self, blob_ref, IMAGE_PREFIX};
use super::repo::{self, Meta, ObjectWriter, S_IFDIR};
use super::tree::{apply_layer, Dir, FileKind, LayerBuilder};

#[derive(Debug, Default, Clone)]
pub struct PullOptions {
    pub quiet: bool,
    /// Also point this ref at the merged commit.
    pub write_ref: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct PullResult {
    pub commit: String,
    pub manifest_digest: String,
    /// The image ref already pointed at this manifest.
    pub unchanged: bool,
    pub layers_reused: usize,
    pub layers_imported: usize,
    pub blob_bytes: u64,
    pub tar_bytes: u64,
    pub files: u64,
    pub filtered: u64,
    pub objects_written: u64,
    /// SELinux: paths looked up, and paths whose labelled object came from the image's
    /// previous commit.
    pub labels_looked_up: u64,
    pub labels_reused: u64,
    pub elapsed: Duration,
}

impl PullResult {
    pub fn summary(&self) -> String {
        if self.unchanged {
            return format!(
                "image unchanged ({}), commit {}",
                self.manifest_digest, self.commit
            );
        }
        format!(
            "layers: {} imported, {} reused; {} read ({} uncompressed), {} files ({} new objects, {} filtered) in {:.1?}",
            self.layers_imported,
            self.layers_reused,
            super::progress::bytes(self.blob_bytes),
            super::progress::bytes(self.tar_bytes),
            self.files,
            self.objects_written,
            self.filtered,
            self.elapsed
        ) + &if self.labels_looked_up + self.labels_reused > 0 {
            format!(
                "; SELinux: {} paths labelled, {} kept from the previous version",
                self.labels_looked_up, self.labels_reused
            )
        } else {
            String::new()
        }
    }
}

/// The ref holding an image's merged commit.
pub fn image_ref_name(imgref: &ImageReference) -> String {
    refescape::prefix_escape(IMAGE_PREFIX, &imgref.to_string())
        .expect("image reference is non-empty")
}

pub fn repo_path(repo: &ostree::Repo) -> Result<PathBuf> {
    repo.path()
        .path()
        .ok_or_else(|| anyhow!("repository has no local path"))
}

pub fn open_repo(path: &Path) -> Result<ostree::Repo> {
    let repo = ostree::Repo::new_for_path(path);
    repo.open(gio::Cancellable::NONE)
        .with_context(|| format!("opening ostree repository {}", path.display()))?;
    Ok(repo)
}

/// An ostree transaction (all writes of an import, an unencapsulation or a `tar import`) that
/// is aborted unless committed, so an error or a panic leaves the repository as it was.
pub struct Txn<'a> {
    repo: &'a ostree::Repo,
    done: bool,
}

impl<'a> Txn<'a> {
    pub fn begin(repo: &'a ostree::Repo) -> Result<Self> {
        repo.prepare_transaction(gio::Cancellable::NONE)
            .context("starting an ostree transaction")?;
        Ok(Txn { repo, done: false })
    }

    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.repo
            .commit_transaction(gio::Cancellable::NONE)
            .context("committing the ostree transaction")?;
        Ok(())
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.repo.abort_transaction(gio::Cancellable::NONE);
        }
    }
}

/// Writes the page cache back (`syncfs`) every few hundred milliseconds while an import runs,
/// so the transaction's final sync has little left to wait for: disk writes overlap the CPU
/// work instead of following it (measured: ~0.3 s of ~3.7 s on the benchmark image).
/// Durability is unchanged: libostree still syncs when the transaction commits. Stops when
/// dropped.
struct Flusher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn start(repo_path: &Path) -> Option<Flusher> {
        let dir = std::fs::File::open(repo_path).ok()?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let (lock, cv) = &*s;
            let mut stopped = lock.lock().expect("flusher lock");
            while !*stopped {
                stopped = cv
                    .wait_timeout(stopped, Duration::from_millis(300))
                    .expect("flusher lock")
                    .0;
                if *stopped {
                    break;
                }
                drop(stopped);
                let _ = rustix::fs::syncfs(&dir);
                stopped = lock.lock().expect("flusher lock");
            }
        });
        Some(Flusher {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        *self.stop.0.lock().expect("flusher lock") = true;
        self.stop.1.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn default_dirmeta() -> Meta {
    Meta {
        uid: 0,
        gid: 0,
        mode: S_IFDIR | 0o755,
        xattrs: Vec::new(),
    }
}

/// Import (or update) the image `r` into `repo`.
pub fn pull(
    repo: &ostree::Repo,
    r: &OstreeImageReference,
    opts: &PullOptions,
) -> Result<PullResult> {
    // Encapsulated ostree commits (and ostree-remote-image: references) are imported as the
    // original commit, signatures included: see crate::encapsulate::unencap.
    if let Some(res) =
        crate::encapsulate::unencap::pull_if_encapsulated(repo, r, opts.write_ref.as_deref())?
    {
        return Ok(res);
    }
    let start = Instant::now();
    let tmp = repo_path(repo)?.join("tmp");
    let source = fetch::open(r, &tmp)?;
    let image = source.layout.resolve(source.tag.as_deref())?;
    tracing::debug!(elapsed = ?start.elapsed(), manifest = %image.manifest_digest, "resolved");
    let image_ref = image_ref_name(&r.imgref);
    let progress = Progress::new(opts.quiet);

    let previous = repo.resolve_rev(&image_ref, true)?.map(|c| c.to_string());
    if let Some(prev) = &previous {
        let md = repo::commit_metadata(repo, prev)?;
        if md
            .lookup::<String>(metadata::MANIFEST_DIGEST)
            .ok()
            .flatten()
            .as_deref()
            == Some(image.manifest_digest.as_str())
        {
            if let Some(w) = &opts.write_ref {
                repo.set_ref_immediate(None, w, Some(prev), gio::Cancellable::NONE)?;
            }
            return Ok(PullResult {
                commit: prev.to_string(),
                manifest_digest: image.manifest_digest.clone(),
                unchanged: true,
                elapsed: start.elapsed(),
                ..Default::default()
            });
        }
    }

    let txn = Txn::begin(repo)?;
    let flusher = Flusher::start(&repo_path(repo)?);
    let mut w = ObjectWriter::new(repo);
    let mut result = PullResult {
        manifest_digest: image.manifest_digest.clone(),
        ..Default::default()
    };
    let default_meta = w.write_dirmeta(&default_dirmeta())?;
    let mut merged = Dir::new(default_meta);
    let layers = image.layers()?;
    let n = layers.len();
    // An image derived from an ostree-encapsulated commit: its first layers hold the commit
    // (ostree-rs-ext's format); import that commit as it is and build on its tree.
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.clone()).collect();
    let n_ostree =
        crate::encapsulate::unencap::ostree_layer_count(&image.labels(), &diff_ids).unwrap_or(0);
    if n_ostree > 0 {
        let base = import_ostree_base(
            repo,
            &source.layout,
            &image,
            &layers[..n_ostree],
            &mut result,
        )?;
        for (desc, _) in &layers[..n_ostree] {
            repo.transaction_set_ref(None, &blob_ref(desc.digest().as_ref()), Some(&base));
        }
        merged = repo::load_commit_tree(repo, &base)?;
    }
    // Plan the remaining layers: reuse a stored layer commit, or import.
    let chains = lower_chains(&diff_ids);
    let jobs: Vec<LayerJob> = layers
        .iter()
        .enumerate()
        .skip(n_ostree)
        .map(|(i, (desc, diff_id))| {
            let digest = desc.digest().to_string();
            let bref = blob_ref(&digest);
            let lower_chain = chains[i].clone();
            let existing = match repo.resolve_rev(&bref, true)? {
                Some(c) => reusable_over(repo, c.as_str(), &lower_chain)?.then(|| c.to_string()),
                None => None,
            };
            let label = format!("layer {}/{n}", i + 1);
            Ok(LayerJob {
                name: format!("{label} ({digest})"),
                label,
                media_type: desc.media_type().to_string(),
                size: desc.size(),
                diff_id: diff_id.clone(),
                digest,
                bref,
                existing,
                lower_chain,
            })
        })
        .collect::<Result<_>>()?;
    std::thread::scope(|s| -> Result<()> {
        // While one layer is written, the next one to import is already being read.
        let mut prefetched: Option<(usize, Pipeline<'_>)> = None;
        for (k, job) in jobs.iter().enumerate() {
            let layer_tree = match &job.existing {
                Some(c) => {
                    result.layers_reused += 1;
                    repo::load_commit_tree(repo, c)?
                }
                None => {
                    let pipeline = match prefetched.take() {
                        Some((kk, p)) if kk == k => p,
                        _ => start_layer(s, &source.layout, job, &tmp, &progress)?,
                    };
                    if let Some((k2, j2)) = jobs
                        .iter()
                        .enumerate()
                        .skip(k + 1)
                        .find(|(_, j)| j.existing.is_none())
                    {
                        // An error here surfaces when that layer's turn comes.
                        if let Ok(p) = start_layer(s, &source.layout, j2, &tmp, &progress) {
                            prefetched = Some((k2, p));
                        }
                    }
                    let (mut tree, counts, uses_lower) =
                        finish_layer(&mut w, &merged, pipeline, default_meta)
                            .with_context(|| format!("importing {}", job.name))?;
                    let t = w.write_tree(&mut tree)?;
                    let mut md = std::collections::BTreeMap::new();
                    if uses_lower {
                        md.insert(LOWER_CHAIN.to_string(), job.lower_chain.to_variant());
                    }
                    let commit = w.write_commit(None, &t, &tree.meta, &md, &job.digest, 0)?;
                    repo.transaction_set_ref(None, &job.bref, Some(&commit));
                    result.layers_imported += 1;
                    result.blob_bytes += counts.blob_bytes;
                    result.tar_bytes += counts.tar_bytes;
                    result.filtered += counts.filtered;
                    tree
                }
            };
            apply_layer(&mut merged, &layer_tree);
            tracing::debug!(elapsed = ?start.elapsed(), layer = n_ostree + k + 1, "layer done");
        }
        Ok(())
    })?;
    if let Some(mut policy) = super::selinux::load_policy(repo, &merged, &tmp)? {
        // The previous version of this image, labelled and not: unchanged subtrees and files
        // keep their labelled objects (when the policy itself is unchanged).
        let before = match &previous {
            Some(prev) => previous_trees(&mut w, prev)
                .map_err(|e| tracing::debug!("previous version not reusable: {e:#}"))
                .ok(),
            None => None,
        };
        w.write_tree(&mut merged)?;
        let mut relabeler = super::selinux::Relabeler::new(&mut w, &mut policy);
        if let Some((unlabelled, labelled)) = before {
            relabeler.set_previous(unlabelled, labelled);
        }
        relabeler
            .relabel(&mut merged)
            .context("labelling with the image's SELinux policy")?;
        result.labels_reused = relabeler.reused;
        result.labels_looked_up = policy.lookups;
        tracing::debug!(elapsed = ?start.elapsed(), lookups = policy.lookups, "SELinux labels applied");
    }
    result.files = merged.count_files();
    let root_tree = w.write_tree(&mut merged)?;
    tracing::debug!(elapsed = ?start.elapsed(), "merged tree written");
    let md = metadata::image_commit_metadata(&image, metadata::has_kernel(&merged));
    let created = image
        .config
        .created()
        .as_deref()
        .and_then(metadata::parse_rfc3339)
        .unwrap_or(0);
    // No subject: the commit depends on the image alone, not on how it was reached.
    let commit = w.write_commit(None, &root_tree, &merged.meta, &md, "", created)?;
    repo.transaction_set_ref(None, &image_ref, Some(&commit));
    if let Some(wr) = &opts.write_ref {
        repo.transaction_set_ref(None, wr, Some(&commit));
    }
    result.objects_written = w.stats.content_written + w.stats.metadata_written;
    drop(flusher);
    txn.commit()?;
    tracing::debug!(elapsed = ?start.elapsed(), "transaction committed");
    result.commit = commit;
    result.elapsed = start.elapsed();
    Ok(result)
}

/// The commit held by the ostree layers of an encapsulated base: reused when every one of
/// their refs names the same commit, else imported (objects, checksum and detached metadata
/// kept) with the encapsulate side's importer, inside our transaction.
fn import_ostree_base(
    repo: &ostree::Repo,
    layout: &oci::Layout,
    image: &oci::Image,
    layers: &[(&oci_spec::image::Descriptor, String)],
    result: &mut PullResult,
) -> Result<String> {
    let existing: Vec<Option<String>> = layers
        .iter()
        .map(|(d, _)| {
            Ok(repo
                .resolve_rev(&blob_ref(d.digest().as_ref()), true)?
                .map(|s| s.to_string()))
        })
        .collect::<Result<_>>()?;
    if let Some(Some(first)) = existing.first() {
        if existing
            .iter()
            .all(|c| c.as_deref() == Some(first.as_str()))
        {
            result.layers_reused += layers.len();
            return Ok(first.clone());
        }
    }
    let mut imp = crate::encapsulate::tarread::Importer::new(repo, None)?;
    let n = layers.len();
    for (i, (desc, diff_id)) in layers.iter().enumerate() {
        let digest = desc.digest().to_string();
        let what = format!("ostree layer {}/{n} ({digest})", i + 1);
        let compression =
            oci::layer_compression(desc.media_type().as_ref()).with_context(|| what.clone())?;
        let mut blob = oci::DigestReader::new(std::io::BufReader::with_capacity(
            256 << 10,
            layout.open_blob(&digest)?,
        ));
        {
            let decompressed: Box<dyn std::io::Read + '_> = match compression {
                oci::Compression::None => Box::new(&mut blob),
                oci::Compression::Gzip => Box::new(super::gzip::GzipReader::new(
                    std::io::BufReader::new(&mut blob),
                )),
                oci::Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(&mut blob)?),
            };
            let mut tar = oci::DigestReader::new(decompressed);
            let imported = imp.import_layer(std::io::BufReader::with_capacity(1 << 20, &mut tar));
            let drained = std::io::copy(&mut tar, &mut std::io::sink());
            let tar_digest = tar.finish();
            drop(tar);
            std::io::copy(&mut blob, &mut std::io::sink()).with_context(|| what.clone())?;
            blob.verify(&what, &digest, Some(desc.size()))?;
            imported.with_context(|| what.clone())?;
            drained.with_context(|| what.clone())?;
            if tar_digest.0 != *diff_id {
                return Err(oci::OciError::DigestMismatch {
                    what: format!("{what} uncompressed content (diff_id)"),
                    expected: diff_id.clone(),
                    actual: tar_digest.0,
                }
                .into());
            }
            result.tar_bytes += tar_digest.1;
        }
        result.blob_bytes += desc.size();
        result.layers_imported += 1;
    }
    let commit = imp.finish()?;
    if let Some(want) = image.labels().get(crate::encapsulate::encap::LABEL_COMMIT) {
        if *want != commit {
            anyhow::bail!(
                "the image's ostree.commit label says {want}, but its ostree layers hold {commit}"
            );
        }
    }
    Ok(commit)
}

/// The previous version of an image: its merged tree rebuilt from its layer commits
/// (unlabelled, dirtrees written so subtrees compare by checksum) and its stored commit's tree.
fn previous_trees(w: &mut ObjectWriter<'_>, prev: &str) -> Result<(Dir, Dir)> {
    let repo = w.repo;
    let md = repo::commit_metadata(repo, prev)?;
    let manifest: String = md
        .lookup(metadata::MANIFEST)
        .ok()
        .flatten()
        .ok_or_else(|| anyhow!("no manifest in {prev}"))?;
    let v: serde_json::Value = serde_json::from_str(&manifest)?;
    let mut unlabelled: Option<Dir> = None;
    let mut last: Option<String> = None;
    for l in v["layers"].as_array().into_iter().flatten() {
        let digest = l["digest"]
            .as_str()
            .ok_or_else(|| anyhow!("layer without digest"))?;
        let commit = repo
            .resolve_rev(&blob_ref(digest), true)?
            .ok_or_else(|| anyhow!("layer {digest} is gone"))?
            .to_string();
        // The ostree layers of an encapsulated base all name the base commit.
        if last.as_deref() == Some(commit.as_str()) {
            continue;
        }
        let tree = repo::load_commit_tree(repo, &commit)?;
        match &mut unlabelled {
            None => {
                let mut d = Dir::new(tree.meta);
                apply_layer(&mut d, &tree);
                unlabelled = Some(d);
            }
            Some(d) => apply_layer(d, &tree),
        }
        last = Some(commit);
    }
    let mut unlabelled = unlabelled.ok_or_else(|| anyhow!("no layers"))?;
    w.write_tree(&mut unlabelled)?;
    Ok((unlabelled, repo::load_commit_tree(repo, prev)?))
}

/// One layer still to apply.
struct LayerJob {
    digest: String,
    bref: String,
    /// "layer 2/3" (progress bars) and "layer 2/3 (sha256:…)" (messages).
    label: String,
    name: String,
    media_type: String,
    size: u64,
    diff_id: String,
    /// The layer's commit, when already stored and right over these lower layers.
    existing: Option<String>,
    /// The chain ID of the layers below ("" for the first).
    lower_chain: String,
}

/// Layer commit metadata: the chain ID of the lower layers the tree was built over, when it
/// took something from them.
const LOWER_CHAIN: &str = "ostree.container.lower-chain";

/// For each layer, the chain ID of the layers below it, as OCI defines ChainID:
/// `ChainID(L0) = DiffID(L0)`, `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`; "" for
/// the first layer.
fn lower_chains(diff_ids: &[String]) -> Vec<String> {
    let mut chains = Vec::with_capacity(diff_ids.len());
    let mut chain = String::new();
    for d in diff_ids {
        chains.push(chain.clone());
        chain = if chain.is_empty() {
            d.clone()
        } else {
            let h = <sha2::Sha256 as sha2::Digest>::digest(format!("{chain} {d}").as_bytes());
            format!("sha256:{}", hex::encode(h))
        };
    }
    chains
}

/// Whether the stored layer commit `commit` is right over lower layers with chain ID
/// `lower_chain`: it took nothing from below, or it was built over the same chain.
fn reusable_over(repo: &ostree::Repo, commit: &str, lower_chain: &str) -> Result<bool> {
    let md = repo::commit_metadata(repo, commit)?;
    Ok(match md.lookup::<String>(LOWER_CHAIN).ok().flatten() {
        Some(built_over) => built_over == lower_chain,
        None => true,
    })
}

/// A layer being read (decompressed, parsed, hashed) on its own threads.
struct Pipeline<'scope> {
    rx: Receiver<Item>,
    reader: std::thread::ScopedJoinHandle<'scope, Result<LayerCounts, LayerError>>,
    pb: indicatif::ProgressBar,
}

fn start_layer<'scope, 'env>(
    s: &'scope std::thread::Scope<'scope, 'env>,
    layout: &'env oci::Layout,
    job: &'env LayerJob,
    spill_dir: &'env Path,
    progress: &Progress,
) -> Result<Pipeline<'scope>> {
    let compression = oci::layer_compression(&job.media_type).with_context(|| job.name.clone())?;
    let pb = progress.layer(&job.label, job.size);
    let blob: Box<dyn std::io::Read + Send> =
        Box::new(pb.wrap_read(layout.open_blob(&job.digest)?));
    let (tx, rx) = sync_channel::<Item>(256);
    let bar = pb.clone();
    let reader = s.spawn(move || {
        let src = LayerSource {
            blob,
            compression,
            digest: &job.digest,
            size: job.size,
            diff_id: &job.diff_id,
            name: &job.name,
        };
        let r = layer::read_layer(src, &tx, spill_dir, &|c| Progress::files(&bar, c));
        drop(tx);
        r
    });
    Ok(Pipeline { rx, reader, pb })
}

/// Write a layer's objects as its reader produces them, building its tree.
fn finish_layer(
    w: &mut ObjectWriter<'_>,
    lower: &Dir,
    p: Pipeline<'_>,
    default_meta: super::tree::Csum,
) -> Result<(Dir, LayerCounts, bool)> {
    let mut builder = LayerBuilder::new(lower, default_meta);
    let written: Result<()> = (|| {
        for item in p.rx.iter() {
            write_item(w, &mut builder, item)?;
        }
        Ok(())
    })();
    drop(p.rx);
    let read = p
        .reader
        .join()
        .map_err(|_| anyhow!("layer reader thread panicked"))?;
    p.pb.finish_and_clear();
    match (read, written) {
        (Err(LayerError::Stopped), Err(e)) => Err(e),
        (Err(e), _) => Err(e.into()),
        (Ok(_), Err(e)) => Err(e),
        (Ok(counts), Ok(())) => Ok((builder.root, counts, builder.uses_lower)),
    }
}

fn write_item(w: &mut ObjectWriter<'_>, b: &mut LayerBuilder<'_>, item: Item) -> Result<()> {
    match item {
        Item::Dir { path, meta } => {
            let m = w.write_dirmeta(&meta)?;
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            b.add_dir(&p, m)?;
        }
        Item::File {
            path,
            header,
            csum,
            data,
            symlink,
        } => {
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            match data {
                // The permit is given back once the bytes are written.
                Data::Mem(v, _permit) => w.write_content(&csum, &header, v)?,
                Data::Spilled(f, len) => w.write_content_stream(&csum, &header, f, len)?,
            }
            let kind = if symlink {
                FileKind::Symlink
            } else {
                FileKind::Regular
            };
            b.add_file(&p, csum, kind)?;
        }
        Item::Hardlink { path, target } => {
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            let t: Vec<&str> = target.iter().map(String::as_str).collect();
            b.add_hardlink(&p, &t)?;
        }
    }
    Ok(())
}

/// Parse what the user typed as an image: a full `ostree-…:` reference or a bare
/// containers/image reference (`oci:/path:tag`, `docker://…`).
pub fn parse_any_imgref(s: &str) -> Result<ImageReference> {
    match s.parse::<OstreeImageReference>() {
        Ok(r) => Ok(r.imgref),
        Err(e) => s.parse::<ImageReference>().map_err(|_| anyhow!(e)),
    }
}

/// Resolve the merged commit of a stored image.
pub fn stored_image(repo: &ostree::Repo, imgref: &ImageReference) -> Result<String> {
    let r = image_ref_name(imgref);
    repo.resolve_rev(&r, true)?
        .map(|s| s.to_string())
        .ok_or_else(|| anyhow!("image {imgref} is not in the repository (no ref {r})"))
}

/// The stored manifest and config JSON of an image.
pub fn stored_manifest_and_config(
    repo: &ostree::Repo,
    imgref: &ImageReference,
) -> Result<(String, String)> {
    let commit = stored_image(repo, imgref)?;
    let md = repo::commit_metadata(repo, &commit)?;
    let get = |k: &str| -> Result<String> {
        md.lookup::<String>(k)
            .ok()
            .flatten()
            .ok_or_else(|| anyhow!("commit {commit} has no {k} metadata"))
    };
    Ok((get(metadata::MANIFEST)?, get(metadata::IMAGE_CONFIG)?))
}

#[cfg(test)]
mod tests {
    use super::lower_chains;

    #[test]
    fn chain_ids_as_oci_defines_them() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let c = lower_chains(&[d('a'), d('b'), d('c')]);
        assert_eq!(c[0], "");
        assert_eq!(c[1], d('a'));
        // printf 'sha256:aaa… sha256:bbb…' | sha256sum
        assert_eq!(
            c[2],
            "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c"
        );
        assert_ne!(lower_chains(&[d('b'), d('b'), d('c')])[2], c[2]);
    }
}
