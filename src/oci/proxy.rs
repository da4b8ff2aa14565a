//! Reading an image through containers/image's own proxy: `skopeo experimental-image-proxy`,
//! driven by the `containers-image-proxy` crate (the client ostree-rs-ext and bootc use).
//!
//! # Why the proxy
//!
//! Every transport containers/image knows (`docker://`, `containers-storage:`, `dir:`,
//! `docker-archive:`, …) with its registries.conf, mirrors, authentication, TLS settings and
//! signature policy, without copying the whole image first: the manifest and config are read
//! on their own, and each blob is streamed only when asked for. Blobs arrive through a pipe
//! per request; skopeo checks each blob against the digest and size it is asked for, and the
//! importer hashes the stream again as it reads it ([`crate::oci::layout::DigestReader`]).
//!
//! # Protocol version
//!
//! Debian 12's skopeo 1.9.3 speaks protocol 0.2.4; crate version 0.7.1 (the one ostree-ext 0.15
//! uses) works with it (`GetLayerInfo`, which 0.2.5 added, is not needed here: diff_ids come from
//! the config).
//!
//! # Threads
//!
//! The crate is asynchronous; the importer is not. A [`ProxyImage`] owns a small tokio runtime;
//! [`ProxyImage::open_blob`] starts a task that copies the blob's pipe into a bounded channel,
//! and returns a plain [`Read`] over that channel, so several blobs can stream at once while
//! the importer's threads block on them. Memory is bounded by the channel (a few chunks per
//! blob).
//!
//! skopeo serves one request at a time, and `FinishPipe` waits until skopeo has written the
//! whole blob into its pipe: sent at once, it would hold every other request back until that
//! blob is read. So it is sent only once the blob's size has arrived (or its pipe has been
//! silent for a second, which is how a blob shorter than its size shows), and blobs
//! fetched together ([`crate::host::inflight`]) really stream at once.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use containers_image_proxy::{ImageProxy, ImageProxyConfig, OpenedImage};
use tokio::io::AsyncReadExt;

use super::imgref::ImageReference;
use super::layout::MAX_JSON_SIZE;

/// How to reach registries, as ostree-rs-ext and skopeo spell these options.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// containers auth.json (`skopeo --authfile`); default: see [`default_authfile`].
    pub authfile: Option<PathBuf>,
    /// Certificates for registries (`skopeo --cert-dir`: `*.crt`, `*.cert`, `*.key`).
    pub cert_dir: Option<PathBuf>,
    /// Do not verify the registry's TLS certificate (`skopeo --tls-verify=false`).
    pub insecure_skip_tls_verification: bool,
    /// Where temporary files go (a copy of a containers-storage: image; skopeo's own `$TMPDIR`),
    /// default `$TMPDIR`.
    pub tmp_dir: Option<PathBuf>,
    /// The signature policy (`skopeo --policy`); default /etc/containers/policy.json
    /// ([`super::sigpolicy`]).
    pub policy: Option<PathBuf>,
    /// Registry configuration, e.g. where signatures are (`skopeo --registries.d`).
    pub registries_d: Option<PathBuf>,
}

impl FetchOptions {
    /// skopeo's global options for these settings: `--insecure-policy`, or `--policy P` when
    /// one was given; `--registries.d D` when given.
    pub fn skopeo_global_args(&self, insecure_policy: bool) -> Vec<std::ffi::OsString> {
        let mut args = Vec::new();
        match (&self.policy, insecure_policy) {
            (_, true) => args.push("--insecure-policy".into()),
            (Some(p), false) => args.extend(["--policy".into(), p.into()]),
            (None, false) => {}
        }
        if let Some(d) = &self.registries_d {
            args.extend(["--registries.d".into(), d.into()]);
        }
        args
    }
}

/// The auth files ostree-rs-ext looks for, in order, before containers/image's own defaults
/// (`$REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json`, …).
pub const AUTH_FILES: &[&str] = &["/etc/ostree/auth.json", "/run/ostree/auth.json"];

/// The auth file to use when none is given: the first of [`AUTH_FILES`] that exists.
pub fn default_authfile() -> Option<PathBuf> {
    AUTH_FILES.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Chunk size of the channel between the proxy's pipe and the importer.
const CHUNK: usize = 256 << 10;
/// Chunks in flight per blob.
const CHUNKS_IN_FLIGHT: usize = 8;
/// A blob pipe silent this long before its size is reached: ask skopeo how the copy ended.
const STALL: std::time::Duration = std::time::Duration::from_secs(1);

/// An image opened in a running proxy; closed (and skopeo stopped) when dropped.
pub struct ProxyImage {
    rt: tokio::runtime::Runtime,
    proxy: Option<Arc<ImageProxy>>,
    img: Arc<OpenedImage>,
    name: String,
    /// skopeo's `$TMPDIR`, removed after skopeo exits (fields drop after [`Drop::drop`]).
    _tmp: tempfile::TempDir,
}

/// What [`ProxyImage::open`] read: the manifest digest (of the manifest as stored, before any
/// conversion), the manifest converted to OCI, and the config.
pub struct Fetched {
    /// Digest of the manifest as stored.
    pub manifest_digest: String,
    /// The manifest, converted to OCI.
    pub manifest_raw: Vec<u8>,
    /// The config's bytes.
    pub config_raw: Vec<u8>,
}

/// The skopeo command line: global options first (`--insecure-policy` unless the image is to
/// be checked against a policy that exists), then what the crate adds (`experimental-image-proxy`
/// and its options).
#[allow(unsafe_code)] // `pre_exec`; see the SAFETY comment
fn skopeo_command(opts: &FetchOptions, insecure_policy: bool, tmp: &Path) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new("skopeo");
    // Debian 12's skopeo 1.9 copies each containers-storage blob it serves into a file in its
    // directory for big temporary files (/var/tmp; $TMPDIR is not read) and leaves it there:
    // one file per blob and pull, as large as the layer. `--tmpdir` is ours, removed when the
    // image is closed.
    c.arg("--tmpdir").arg(tmp);
    c.args(opts.skopeo_global_args(insecure_policy));
    // As the crate does by default: skopeo goes away with us.
    // SAFETY: only an async-signal-safe prctl runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(io::Error::from)
        });
    }
    c
}

impl ProxyImage {
    /// Start skopeo, open `imgref` (containers/image applies the signature policy here unless
    /// `insecure_policy`) and read its manifest and config.
    pub fn open(
        imgref: &ImageReference,
        opts: &FetchOptions,
        insecure_policy: bool,
    ) -> Result<(ProxyImage, Fetched)> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the image proxy's runtime")?;
        let name = imgref.to_string();
        let tmp_parent = opts.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
        let tmp = tempfile::Builder::new()
            .prefix("ostree-container-proxy-")
            .tempdir_in(&tmp_parent)
            .with_context(|| {
                format!("creating a temporary directory in {}", tmp_parent.display())
            })?;
        let is_registry = imgref.transport == super::imgref::Transport::Registry;
        let config = ImageProxyConfig {
            authfile: if is_registry {
                opts.authfile.clone().or_else(default_authfile)
            } else {
                None
            },
            certificate_directory: opts.cert_dir.clone(),
            insecure_skip_tls_verification: Some(opts.insecure_skip_tls_verification),
            skopeo_cmd: Some(skopeo_command(opts, insecure_policy, tmp.path())),
            ..Default::default()
        };
        let (proxy, img, fetched) = rt.block_on(async {
            let proxy = ImageProxy::new_with_config(config)
                .await
                .map_err(|e| anyhow!("starting skopeo experimental-image-proxy (is skopeo installed?): {e}"))?;
            let img = proxy
                .open_image(&name)
                .await
                .map_err(|e| anyhow!("opening {name}: {e}"))?;
            let (manifest_digest, manifest_raw) = proxy
                .fetch_manifest_raw_oci(&img)
                .await
                .map_err(|e| anyhow!("{name}: reading the manifest: {e}"))?;
            // The config blob as stored (GetFullConfig would hand back containers/image's
            // re-serialisation, whose digest is not the manifest's), refused above the limit.
            let (config_digest, config_size) = config_descriptor(&manifest_raw)
                .map_err(|e| anyhow!("{name}: the manifest: {e}"))?;
            if config_size > MAX_JSON_SIZE {
                bail!(
                    "{name}: the config {config_digest} is {config_size} bytes, more than the {MAX_JSON_SIZE} bytes allowed for image metadata"
                );
            }
            let digest: oci_spec_proxy::image::Digest = config_digest
                .parse()
                .map_err(|e| anyhow!("{name}: config digest {config_digest}: {e}"))?;
            let stored = async {
                let (reader, driver) = proxy
                    .get_blob(&img, &digest, config_size)
                    .await
                    .map_err(|e| anyhow!("{name}: reading the config: {e}"))?;
                let read = async move {
                    let mut config_raw = Vec::new();
                    reader
                        .take(MAX_JSON_SIZE + 1)
                        .read_to_end(&mut config_raw)
                        .await
                        .map(|_| config_raw)
                };
                let (read, finished) = tokio::join!(read, driver);
                let config_raw = read.map_err(|e| anyhow!("{name}: reading the config: {e}"))?;
                finished.map_err(|e| anyhow!("{name}: reading the config: {e}"))?;
                anyhow::Ok(config_raw)
            }
            .await;
            // A Docker-format image: GetManifest converted its manifest to OCI, and with it the
            // config, whose new digest names no stored blob. GetFullConfig hands back that
            // converted config; it is used when it is what the converted manifest lists.
            let config_raw = match stored {
                Ok(c) => c,
                Err(e) => match proxy.fetch_config_raw(&img).await {
                    Ok(c) if sha256_digest(&c) == config_digest => c,
                    _ => return Err(e),
                },
            };
            anyhow::Ok((
                proxy,
                img,
                Fetched {
                    manifest_digest,
                    manifest_raw,
                    config_raw,
                },
            ))
        })?;
        Ok((
            ProxyImage {
                rt,
                proxy: Some(Arc::new(proxy)),
                img: Arc::new(img),
                name,
                _tmp: tmp,
            },
            fetched,
        ))
    }

    /// Stream the blob `digest` of `size` bytes (checked by skopeo; the caller hashes it too).
    pub fn open_blob(&self, digest: &str, size: u64) -> Result<Box<dyn Read + Send>> {
        let proxy = self.proxy.clone().expect("proxy is running");
        let img = self.img.clone();
        let parsed: oci_spec_proxy::image::Digest = digest
            .parse()
            .map_err(|e| anyhow!("{}: blob digest {digest}: {e}", self.name))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
        let what = format!("{}: blob {digest}", self.name);
        self.rt.spawn(async move {
            let res: Result<(), String> = async {
                let (mut reader, driver) = proxy
                    .get_blob(&img, &parsed, size)
                    .await
                    .map_err(|e| e.to_string())?;
                // skopeo answers FinishPipe (the driver) only once it has written the whole
                // blob, and answers no other request meanwhile; it closes its end of the pipe
                // only after that. So FinishPipe is sent once `size` bytes are here (or the
                // pipe has stalled: a short blob), and other blobs can stream at once; from
                // then on both run together. The copy owns the pipe: on an error it is closed
                // at once, skopeo's writer fails, and FinishPipe returns.
                let mut got = 0u64;
                while got < size {
                    let mut buf = vec![0u8; CHUNK];
                    let n = match tokio::time::timeout(STALL, reader.read(&mut buf)).await {
                        Err(_) => break,
                        Ok(n) => n.map_err(|e| e.to_string())?,
                    };
                    if n == 0 {
                        break;
                    }
                    got += n as u64;
                    buf.truncate(n);
                    if tx.send(Ok(buf)).await.is_err() {
                        return Err("reader went away".to_string());
                    }
                }
                let tx2 = tx.clone();
                let copy = async move {
                    let (mut reader, tx) = (reader, tx2);
                    loop {
                        let mut buf = vec![0u8; CHUNK];
                        let n = reader.read(&mut buf).await.map_err(|e| e.to_string())?;
                        if n == 0 {
                            return Ok(());
                        }
                        buf.truncate(n);
                        if tx.send(Ok(buf)).await.is_err() {
                            return Err("reader went away".to_string());
                        }
                    }
                };
                let (copied, finished) = tokio::join!(copy, driver);
                copied?;
                finished.map_err(|e| e.to_string())
            }
            .await;
            if let Err(e) = res {
                let _ = tx.send(Err(io::Error::other(format!("{what}: {e}")))).await;
            }
        });
        Ok(Box::new(ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        }))
    }
}

impl Drop for ProxyImage {
    fn drop(&mut self) {
        let Some(proxy) = self.proxy.take() else {
            return;
        };
        let img = self.img.clone();
        self.rt.block_on(async move {
            let _ = proxy.close_image(&img).await;
            // Every blob task holds a clone; once they are done, shut skopeo down cleanly.
            if let Ok(p) = Arc::try_unwrap(proxy) {
                if let Err(e) = p.finalize().await {
                    tracing::debug!("image proxy: {e}");
                }
            }
        });
    }
}

/// The crate's own oci-spec (0.7), for its `Digest` type.
use containers_image_proxy::oci_spec as oci_spec_proxy;

/// A blocking reader over the chunks a blob task sends.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => {
                    self.buf = chunk?;
                    self.pos = 0;
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The config descriptor's digest and size in a manifest.
fn config_descriptor(manifest: &[u8]) -> Result<(String, u64)> {
    #[derive(serde::Deserialize)]
    struct Desc {
        digest: String,
        size: u64,
    }
    #[derive(serde::Deserialize)]
    struct Manifest {
        config: Desc,
    }
    let m: Manifest = serde_json::from_slice(manifest).context("no config descriptor")?;
    Ok((m.config.digest, m.config.size))
}

/// `sha256:<hex>` of `data`.
fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_reader_joins_chunks_and_passes_errors() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.try_send(Ok(b"hello ".to_vec())).unwrap();
        tx.try_send(Ok(Vec::new())).unwrap();
        tx.try_send(Ok(b"world".to_vec())).unwrap();
        drop(tx);
        let mut r = ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        };
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world");

        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.try_send(Ok(b"part".to_vec())).unwrap();
        tx.try_send(Err(io::Error::other("blob sha256:x: digest mismatch")))
            .unwrap();
        drop(tx);
        let mut r = ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        };
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
    }

    #[test]
    fn config_descriptor_from_manifest() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:ab","size":7},"layers":[]}"#;
        assert_eq!(config_descriptor(m).unwrap(), ("sha256:ab".to_string(), 7));
        assert!(config_descriptor(b"{}").is_err());
        assert!(config_descriptor(b"not json").is_err());
    }
}
