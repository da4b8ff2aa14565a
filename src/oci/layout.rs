//! Reading images from an OCI image layout, as a directory (`oci:`) or a tar archive of one
//! (`oci-archive:`, read in place: blobs are located in the tar once and read by offset).
//!
//! # Layout
//!
//! `oci-layout`, `index.json` (an image index whose manifests carry the tag in the
//! `org.opencontainers.image.ref.name` annotation) and `blobs/<alg>/<hex>`. A manifest may
//! itself be an index (multi-platform); the entry for `linux/<this architecture>` is used.
//!
//! # Trust
//!
//! Every blob read here is checked against the digest and size its descriptor gives: small
//! blobs (manifests, configs) when read, layers by wrapping their stream in a
//! [`DigestReader`] whose result the caller checks at the end of the stream
//! ([`DigestReader::verify`]). Digests must be `sha256:` followed by 64 lower-case hex
//! digits, so a digest can never name a path outside `blobs/sha256`.
//!
//! # Size limits
//!
//! `index.json`, manifests (and indexes) and configs are read whole into memory, so each is
//! refused above [`MAX_JSON_SIZE`] (4 MiB) before it is read: the limit containers/image
//! itself applies to manifests and configs fetched from registries (`pkg/iolimits`:
//! `MaxManifestBodySize` and `MaxConfigBodySize`, both 4 MiB). A descriptor claiming more is
//! an error naming the blob; an `index.json` longer than that is read no further.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use sha2::{Digest as _, Sha256};

/// The `index.json` annotation holding an image's tag.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The largest `index.json`, manifest, index or config read (see the module docs).
pub const MAX_JSON_SIZE: u64 = 4 << 20;

/// Why an OCI layout or one of its blobs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// Reading a file of the layout failed.
    #[error("{path}: {source}")]
    Io {
        /// The file (or archive member) read.
        path: String,
        /// The system's error.
        source: io::Error,
    },
    /// A JSON blob (index, manifest, config) did not parse.
    #[error("{what}: invalid JSON: {reason}")]
    Json {
        /// The blob, named for the message.
        what: String,
        /// The parser's message.
        reason: String,
    },
    /// A digest that is not `sha256:` and 64 lower-case hex digits.
    #[error("unsupported digest {0:?} (expected sha256:<64 hex digits>)")]
    BadDigest(String),
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    /// A blob does not hash to the digest its descriptor gives.
    DigestMismatch {
        /// The blob, named for the message.
        what: String,
        /// The descriptor's digest.
        expected: String,
        /// The digest of the bytes read.
        actual: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    /// A blob's length differs from its descriptor's size.
    SizeMismatch {
        /// The blob, named for the message.
        what: String,
        /// The descriptor's size.
        expected: u64,
        /// The bytes read.
        actual: u64,
    },
    #[error("{path}: no image tagged {tag:?} in index.json (tags: {available})")]
    /// The image reference names a tag that `index.json` does not hold.
    NoSuchTag {
        /// The layout.
        path: String,
        /// The tag asked for.
        tag: String,
        /// The tags present, comma-separated.
        available: String,
    },
    /// No tag given, and `index.json` holds more than one image.
    #[error("{path}: index.json holds {n} images; name one with {path}:<tag>")]
    Ambiguous {
        /// The layout.
        path: String,
        /// How many images it holds.
        n: usize,
    },
    /// `index.json` lists no image.
    #[error("{path}: index.json holds no image")]
    Empty {
        /// The layout.
        path: String,
    },
    /// An image index has no entry for this machine's platform.
    #[error("no manifest for linux/{arch} in the image index")]
    NoPlatform {
        /// The OCI name of this machine's architecture (`amd64`, `arm64`, …).
        arch: String,
    },
    /// A layer media type that is not a (compressed) tar layer.
    #[error("unknown layer media type {0:?} (expected an OCI or Docker tar layer, uncompressed, gzip or zstd)")]
    UnknownMediaType(String),
    /// A JSON blob larger than [`MAX_JSON_SIZE`], refused before it is read.
    #[error("{what} is {size} bytes, more than the {limit} bytes allowed for image metadata (containers/image's own limit); refusing to read it")]
    TooLarge {
        /// The blob or file, named for the message.
        what: String,
        /// Its size, as the descriptor or the file gives it.
        size: u64,
        /// [`MAX_JSON_SIZE`].
        limit: u64,
    },
    /// The manifest's layers and the config's diff_ids differ in number.
    #[error("image has {layers} layers but its config lists {diff_ids} diff_ids")]
    LayerCount {
        /// Layers in the manifest.
        layers: usize,
        /// diff_ids in the config.
        diff_ids: usize,
    },
}

fn io_err(path: impl Into<String>) -> impl FnOnce(io::Error) -> OciError {
    let path = path.into();
    move |source| OciError::Io { path, source }
}

/// Compression of a layer blob, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// `+gzip` / `.tar.gzip`.
    Gzip,
    /// `+zstd` / `.tar.zstd`.
    Zstd,
}

/// The compression of a layer from its media type (OCI or Docker); other types are refused.
pub fn layer_compression(media_type: &str) -> Result<Compression, OciError> {
    Ok(match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
        other => return Err(OciError::UnknownMediaType(other.to_string())),
    })
}

/// The hex part of a `sha256:` digest, validated.
pub fn sha256_hex(digest: &str) -> Result<&str, OciError> {
    match digest.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(h)
        }
        _ => Err(OciError::BadDigest(digest.to_string())),
    }
}

/// A reader that hashes and counts what passes through it.
pub struct DigestReader<R> {
    inner: R,
    /// None: counting only ([`DigestReader::count_only`]).
    hasher: Option<Sha256>,
    count: u64,
}

impl<R: Read> DigestReader<R> {
    /// Start hashing and counting from the current position of `inner`.
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Some(Sha256::new()),
            count: 0,
        }
    }

    /// Count without hashing, for a stream whose digest is known otherwise (an uncompressed
    /// layer's tar is its blob, already hashed): [`Self::finish`] gives no digest.
    pub fn count_only(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: None,
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The wrapped reader (reading from it directly bypasses the hash).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Give back the wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// `sha256:<hex>` of everything read so far ("" when counting only), and the byte count.
    pub fn finish(&self) -> (String, u64) {
        let digest = match &self.hasher {
            Some(h) => format!("sha256:{}", hex::encode(h.clone().finalize())),
            None => String::new(),
        };
        (digest, self.count)
    }

    /// Check what was read against an expected digest (and size, when given).
    pub fn verify(&self, what: &str, expected: &str, size: Option<u64>) -> Result<(), OciError> {
        let (actual, count) = self.finish();
        if actual != expected {
            return Err(OciError::DigestMismatch {
                what: what.into(),
                expected: expected.into(),
                actual,
            });
        }
        if let Some(size) = size {
            if size != count {
                return Err(OciError::SizeMismatch {
                    what: what.into(),
                    expected: size,
                    actual: count,
                });
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// An OCI layout, in a directory or in a tar archive.
pub enum Layout {
    /// A layout directory (`oci:`).
    Dir(PathBuf),
    /// A tar archive of a layout (`oci-archive:`), read in place.
    Archive {
        /// The archive file.
        path: PathBuf,
        /// Each member's path in the layout, with the offset and size of its data in the file.
        entries: HashMap<String, (u64, u64)>,
    },
}

/// A resolved image: its manifest and config, both verified.
pub struct Image {
    /// Digest of the manifest, as the index (or the platform entry) names it.
    pub manifest_digest: String,
    /// The manifest's bytes, exactly as stored (they hash to `manifest_digest`).
    pub manifest_raw: Vec<u8>,
    /// The parsed manifest.
    pub manifest: ImageManifest,
    /// The config's bytes, exactly as stored.
    pub config_raw: Vec<u8>,
    /// The parsed config.
    pub config: ImageConfiguration,
}

impl Image {
    /// The layer descriptors with their diff_ids.
    pub fn layers(&self) -> Result<Vec<(&Descriptor, String)>, OciError> {
        let layers = self.manifest.layers();
        let diff_ids = self.config.rootfs().diff_ids();
        if layers.len() != diff_ids.len() {
            return Err(OciError::LayerCount {
                layers: layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        Ok(layers.iter().zip(diff_ids.iter().cloned()).collect())
    }

    /// The config's labels (empty when it has none).
    pub fn labels(&self) -> HashMap<String, String> {
        self.config
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .unwrap_or_default()
    }
}

fn current_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

impl Layout {
    /// Open a layout directory (it must hold `index.json`).
    pub fn open_dir(path: &Path) -> Result<Self, OciError> {
        let index = path.join("index.json");
        std::fs::metadata(&index).map_err(io_err(index.display().to_string()))?;
        Ok(Layout::Dir(path.to_path_buf()))
    }

    /// Index the tar archive's members (one pass over the headers; contents are skipped).
    pub fn open_archive(path: &Path) -> Result<Self, OciError> {
        let name = path.display().to_string();
        let f = File::open(path).map_err(io_err(&name))?;
        let mut ar = tar::Archive::new(io::BufReader::new(f));
        let mut entries = HashMap::new();
        for e in ar.entries().map_err(io_err(&name))? {
            let e = e.map_err(io_err(&name))?;
            if e.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let p = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let p = p.trim_start_matches("./").to_string();
            entries.insert(p, (e.raw_file_position(), e.size()));
        }
        Ok(Layout::Archive {
            path: path.to_path_buf(),
            entries,
        })
    }

    fn describe(&self) -> String {
        match self {
            Layout::Dir(p) => p.display().to_string(),
            Layout::Archive { path, .. } => path.display().to_string(),
        }
    }

    /// Open a file of the layout by its relative path.
    pub fn open(&self, rel: &str) -> Result<Box<dyn Read + Send>, OciError> {
        match self {
            Layout::Dir(p) => {
                let full = p.join(rel);
                let f = File::open(&full).map_err(io_err(full.display().to_string()))?;
                Ok(Box::new(f))
            }
            Layout::Archive { path, entries } => {
                let what = format!("{}:{rel}", path.display());
                let &(off, size) = entries.get(rel).ok_or_else(|| OciError::Io {
                    path: what.clone(),
                    source: io::Error::new(io::ErrorKind::NotFound, "not in the archive"),
                })?;
                let mut f = File::open(path).map_err(io_err(&what))?;
                f.seek(SeekFrom::Start(off)).map_err(io_err(&what))?;
                Ok(Box::new(f.take(size)))
            }
        }
    }

    /// The size of a file of the layout, when known without reading it.
    fn size_of(&self, rel: &str) -> Option<u64> {
        match self {
            Layout::Dir(p) => std::fs::metadata(p.join(rel)).ok().map(|m| m.len()),
            Layout::Archive { entries, .. } => entries.get(rel).map(|e| e.1),
        }
    }

    /// Open a blob by digest (not verified: wrap in a [`DigestReader`]).
    pub fn open_blob(&self, digest: &str) -> Result<Box<dyn Read + Send>, OciError> {
        let hex = sha256_hex(digest)?;
        self.open(&format!("blobs/sha256/{hex}"))
    }

    /// Read a small blob (manifest, index, config) whole and verify it against its
    /// descriptor; refused above [`MAX_JSON_SIZE`] before anything is read.
    pub fn read_blob(&self, desc: &Descriptor, what: &str) -> Result<Vec<u8>, OciError> {
        let digest = desc.digest().to_string();
        if desc.size() > MAX_JSON_SIZE {
            return Err(OciError::TooLarge {
                what: format!("{what} {digest}"),
                size: desc.size(),
                limit: MAX_JSON_SIZE,
            });
        }
        let r = self.open_blob(&digest)?;
        // Never read more than the descriptor claims (+1 to detect a longer blob).
        let mut r = DigestReader::new(r.take(desc.size() + 1));
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).map_err(io_err(what))?;
        r.verify(what, &digest, Some(desc.size()))?;
        Ok(buf)
    }

    /// Find the image: by tag, or the only one in index.json.
    pub fn resolve(&self, tag: Option<&str>) -> Result<Image, OciError> {
        let mut raw = Vec::new();
        let what = format!("{}/index.json", self.describe());
        self.open("index.json")?
            .take(MAX_JSON_SIZE + 1)
            .read_to_end(&mut raw)
            .map_err(io_err(&what))?;
        if raw.len() as u64 > MAX_JSON_SIZE {
            return Err(OciError::TooLarge {
                what,
                size: self.size_of("index.json").unwrap_or(raw.len() as u64),
                limit: MAX_JSON_SIZE,
            });
        }
        let index = ImageIndex::from_reader(&raw[..]).map_err(|e| OciError::Json {
            what: format!("{}/index.json", self.describe()),
            reason: e.to_string(),
        })?;
        let manifests = index.manifests();
        let desc = match tag {
            Some(t) => manifests
                .iter()
                .find(|d| {
                    d.annotations()
                        .as_ref()
                        .and_then(|a| a.get(REF_NAME_ANNOTATION))
                        .map(|s| s.as_str())
                        == Some(t)
                })
                .ok_or_else(|| OciError::NoSuchTag {
                    path: self.describe(),
                    tag: t.to_string(),
                    available: manifests
                        .iter()
                        .filter_map(|d| d.annotations().as_ref()?.get(REF_NAME_ANNOTATION).cloned())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?,
            None => match manifests.len() {
                0 => {
                    return Err(OciError::Empty {
                        path: self.describe(),
                    })
                }
                1 => &manifests[0],
                n => {
                    return Err(OciError::Ambiguous {
                        path: self.describe(),
                        n,
                    })
                }
            },
        };
        self.resolve_descriptor(desc, 0)
    }

    fn resolve_descriptor(&self, desc: &Descriptor, depth: u32) -> Result<Image, OciError> {
        let mt = desc.media_type().to_string();
        let raw = self.read_blob(desc, "manifest")?;
        if mt.contains("image.index") || mt.contains("manifest.list") {
            let idx = ImageIndex::from_reader(&raw[..]).map_err(|e| OciError::Json {
                what: "image index".into(),
                reason: e.to_string(),
            })?;
            let arch = current_arch();
            let d = idx
                .manifests()
                .iter()
                .find(|d| {
                    d.platform()
                        .as_ref()
                        .map(|p| {
                            p.os().to_string() == "linux" && p.architecture().to_string() == arch
                        })
                        .unwrap_or(false)
                })
                .ok_or(OciError::NoPlatform {
                    arch: arch.to_string(),
                })?;
            if depth > 2 {
                return Err(OciError::NoPlatform {
                    arch: arch.to_string(),
                });
            }
            return self.resolve_descriptor(d, depth + 1);
        }
        let manifest = parse_manifest(&raw)?;
        let config_raw = self.read_blob(manifest.config(), "config")?;
        Image::new(desc.digest().to_string(), raw, manifest, config_raw)
    }
}

fn parse_manifest(raw: &[u8]) -> Result<ImageManifest, OciError> {
    ImageManifest::from_reader(raw).map_err(|e| OciError::Json {
        what: "manifest".into(),
        reason: e.to_string(),
    })
}

impl Image {
    /// An image from its manifest digest, manifest and config as read (already verified
    /// against their digests, or checked by whoever fetched them).
    pub fn new(
        manifest_digest: String,
        manifest_raw: Vec<u8>,
        manifest: ImageManifest,
        config_raw: Vec<u8>,
    ) -> Result<Image, OciError> {
        let config =
            ImageConfiguration::from_reader(&config_raw[..]).map_err(|e| OciError::Json {
                what: "config".into(),
                reason: e.to_string(),
            })?;
        Ok(Image {
            manifest_digest,
            manifest_raw,
            manifest,
            config_raw,
            config,
        })
    }

    /// An image from a manifest and config fetched elsewhere (the image proxy), both refused
    /// above [`MAX_JSON_SIZE`]; the config is checked against the manifest's digest for it.
    pub fn from_fetched(
        name: &str,
        manifest_digest: String,
        manifest_raw: Vec<u8>,
        config_raw: Vec<u8>,
    ) -> Result<Image, OciError> {
        for (what, raw) in [("manifest", &manifest_raw), ("config", &config_raw)] {
            if raw.len() as u64 > MAX_JSON_SIZE {
                return Err(OciError::TooLarge {
                    what: format!("{name}: {what}"),
                    size: raw.len() as u64,
                    limit: MAX_JSON_SIZE,
                });
            }
        }
        let manifest = parse_manifest(&manifest_raw)?;
        let mut r = DigestReader::new(&config_raw[..]);
        io::copy(&mut r, &mut io::sink()).map_err(io_err(name))?;
        r.verify(
            &format!("{name}: config"),
            manifest.config().digest().as_ref(),
            Some(manifest.config().size()),
        )?;
        Image::new(manifest_digest, manifest_raw, manifest, config_raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar+gzip").unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(),
            Compression::Zstd
        );
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar").unwrap(),
            Compression::None
        );
        assert_eq!(
            layer_compression("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(),
            Compression::Gzip
        );
        let e = layer_compression("application/x-foo")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown layer media type \"application/x-foo\""),
            "{e}"
        );
    }

    #[test]
    fn digests() {
        let h = "a".repeat(64);
        assert_eq!(sha256_hex(&format!("sha256:{h}")).unwrap(), h);
        for bad in [
            "sha256:../../etc/passwd",
            "sha512:aa",
            &format!("sha256:{}", "A".repeat(64)),
            "sha256:",
        ] {
            assert!(sha256_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digest_reader_mismatch_names_both() {
        let mut r = DigestReader::new(&b"hello"[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let want = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        r.verify("x", want, Some(5)).unwrap();
        let e = r
            .verify("layer 1", &format!("sha256:{}", "0".repeat(64)), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want) && e.contains(&"0".repeat(64)), "{e}");
        assert!(r.verify("x", want, Some(6)).is_err());
    }
}
