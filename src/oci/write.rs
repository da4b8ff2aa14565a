//! Writing an OCI image layout: blobs named by their digest, `index.json` with the tag in
//! `org.opencontainers.image.ref.name`, and (for `oci-archive:`) a reproducible tar of it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::layout::REF_NAME_ANNOTATION;

/// OCI image manifest media type.
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip-compressed layer media type.
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[derive(Debug, thiserror::Error)]
/// Why an OCI layout could not be written.
pub enum OciWriteError {
    #[error("{path}: {source}")]
    /// Writing failed.
    Io {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    /// A JSON document could not be written.
    Json {
        /// The file.
        path: String,
        /// The error.
        source: serde_json::Error,
    },
}

fn io_ctx(path: &Path) -> impl FnOnce(io::Error) -> OciWriteError + '_ {
    move |source| OciWriteError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A blob written: `sha256:<hex>` and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// A layer written: the compressed blob and the diff_id of its uncompressed tar.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// The compressed blob.
    pub blob: Blob,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
}

/// Hashes and counts what is written through it.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    /// Hash what is written to `inner`.
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The writer back, the `sha256:` digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        )
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An OCI layout directory being written.
pub struct OciDir {
    /// The layout's directory.
    pub path: PathBuf,
}

impl OciDir {
    /// Create the layout (or open an existing one).
    pub fn ensure(path: &Path) -> Result<Self, OciWriteError> {
        let blobs = path.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io_ctx(&blobs))?;
        let layout = path.join("oci-layout");
        if !layout.exists() {
            fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_ctx(&layout))?;
        }
        let index = path.join("index.json");
        if !index.exists() {
            fs::write(&index, br#"{"schemaVersion":2,"manifests":[]}"#).map_err(io_ctx(&index))?;
        }
        Ok(OciDir {
            path: path.to_path_buf(),
        })
    }

    fn blob_tmp(&self) -> Result<tempfile::NamedTempFile, OciWriteError> {
        let dir = self.path.join("blobs/sha256");
        tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(io_ctx(&dir))
    }

    fn persist(&self, tmp: tempfile::NamedTempFile, digest: &str) -> Result<(), OciWriteError> {
        let dest = self
            .path
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        tmp.as_file().sync_all().map_err(io_ctx(&dest))?;
        tmp.persist(&dest).map_err(|e| OciWriteError::Io {
            path: dest.display().to_string(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Write `data` as a blob.
    pub fn write_blob(&self, data: &[u8]) -> Result<Blob, OciWriteError> {
        let mut tmp = self.blob_tmp()?;
        tmp.write_all(data).map_err(io_ctx(&self.path))?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(data)));
        self.persist(tmp, &digest)?;
        Ok(Blob {
            digest,
            size: data.len() as u64,
        })
    }

    /// Write a gzip-compressed layer whose tar stream `f` produces.
    pub fn write_layer<E: From<OciWriteError>>(
        &self,
        f: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<LayerBlob, E> {
        let tmp = self.blob_tmp()?;
        let file = io::BufWriter::with_capacity(1 << 20, tmp);
        let gz = GzEncoder::new(HashWriter::new(file), flate2::Compression::default());
        let mut tar = HashWriter::new(gz);
        f(&mut tar)?;
        let (gz, diff_id, _) = tar.finish();
        let ioe = |e: io::Error| OciWriteError::Io {
            path: self.path.display().to_string(),
            source: e,
        };
        let hw = gz.finish().map_err(ioe)?;
        let (file, digest, size) = hw.finish();
        let tmp = file.into_inner().map_err(|e| ioe(e.into_error()))?;
        self.persist(tmp, &digest)?;
        Ok(LayerBlob {
            blob: Blob { digest, size },
            diff_id,
        })
    }

    /// Point `tag` at the manifest (replacing what it named); with no tag, the manifest
    /// becomes the only one in the index.
    pub fn set_manifest(&self, manifest: &Blob, tag: Option<&str>) -> Result<(), OciWriteError> {
        let path = self.path.join("index.json");
        let raw = fs::read(&path).map_err(io_ctx(&path))?;
        let mut index: Value =
            serde_json::from_slice(&raw).map_err(|source| OciWriteError::Json {
                path: path.display().to_string(),
                source,
            })?;
        let mut manifests: Vec<Value> = index
            .get("manifests")
            .and_then(|m| m.as_array())
            .cloned()
            .unwrap_or_default();
        let mut desc = json!({
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest.digest,
            "size": manifest.size,
        });
        match tag {
            Some(t) => {
                manifests.retain(|m| {
                    m.pointer(&format!(
                        "/annotations/{}",
                        REF_NAME_ANNOTATION.replace('/', "~1")
                    ))
                    .and_then(|v| v.as_str())
                        != Some(t)
                });
                desc["annotations"] = json!({ REF_NAME_ANNOTATION: t });
            }
            None => manifests.clear(),
        }
        manifests.push(desc);
        index["schemaVersion"] = json!(2);
        index["manifests"] = Value::Array(manifests);
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec(&index).expect("JSON value")).map_err(io_ctx(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_ctx(&path))?;
        Ok(())
    }

    /// Write the layout as a tar archive: sorted entries, mtime 0, root-owned.
    pub fn write_archive(&self, dest: &Path) -> Result<(), OciWriteError> {
        let tmp = dest.with_extension("tmp");
        let f = fs::File::create(&tmp).map_err(io_ctx(&tmp))?;
        let mut b = tar::Builder::new(io::BufWriter::new(f));
        let mut files = Vec::new();
        let blobs = self.path.join("blobs/sha256");
        for e in fs::read_dir(&blobs).map_err(io_ctx(&blobs))? {
            let name = e.map_err(io_ctx(&blobs))?.file_name();
            let name = name.to_string_lossy().into_owned();
            if !name.starts_with('.') {
                files.push(format!("blobs/sha256/{name}"));
            }
        }
        files.sort();
        let mut entries = vec![
            ("oci-layout".to_string(), false),
            ("index.json".into(), false),
        ];
        entries.push(("blobs".into(), true));
        entries.push(("blobs/sha256".into(), true));
        entries.extend(files.into_iter().map(|f| (f, false)));
        for (name, dir) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            let ioe = io_ctx(&tmp);
            if dir {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, format!("{name}/"), io::empty())
                    .map_err(ioe)?;
            } else {
                let p = self.path.join(&name);
                let f = fs::File::open(&p).map_err(io_ctx(&p))?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(f.metadata().map_err(io_ctx(&p))?.len());
                b.append_data(&mut h, &name, f).map_err(ioe)?;
            }
        }
        let w = b.into_inner().map_err(io_ctx(&tmp))?;
        let f = w.into_inner().map_err(|e| OciWriteError::Io {
            path: tmp.display().to_string(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(io_ctx(&tmp))?;
        fs::rename(&tmp, dest).map_err(io_ctx(dest))?;
        Ok(())
    }
}

/// The OCI architecture name of this machine.
pub fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_index() {
        let d = tempfile::tempdir().unwrap();
        let o = OciDir::ensure(d.path()).unwrap();
        let b = o.write_blob(b"hello").unwrap();
        assert_eq!(
            b.digest,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        o.set_manifest(&b, Some("a")).unwrap();
        o.set_manifest(&b, Some("b")).unwrap();
        o.set_manifest(&b, Some("a")).unwrap();
        let idx: Value =
            serde_json::from_slice(&fs::read(d.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(idx["manifests"].as_array().unwrap().len(), 2);
        let l = o
            .write_layer::<OciWriteError>(|w| w.write_all(b"x").map_err(io_ctx(Path::new("x"))))
            .unwrap();
        assert_eq!(
            l.diff_id,
            format!("sha256:{}", hex::encode(Sha256::digest(b"x")))
        );
        assert!(d
            .path()
            .join("blobs/sha256")
            .join(&l.blob.digest[7..])
            .exists());
    }
}
