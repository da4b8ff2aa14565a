//! Reaching an image: its manifest and config first, then its blobs one at a time, on demand.
//!
//! `oci:` and `oci-archive:` with `ostree-unverified-*` (or `ostree-remote-*`, whose check is
//! the ostree signature) are read in place ([`crate::oci::layout`]). Every other transport
//! (`registry:`/`docker://`, `containers-storage:`, `docker-archive:`, `dir:`), and any image
//! whose reference asks for containers-policy verification (`ostree-image-signed:`), goes
//! through containers/image's proxy ([`crate::oci::proxy`]), so registries, mirrors,
//! authentication, TLS and the signature policy are exactly containers/image's, and only the
//! blobs the importer asks for are fetched.
//!
//! `containers-storage:` needs care. Through Debian 12's skopeo 1.9.3 proxy, an image built
//! here (buildah, podman) streams fine: its layers are listed uncompressed, and the storage's
//! diffs are exactly those blobs, so nothing is compressed or copied. An image that came into
//! the storage from a registry still lists gzip layers, but the storage hands back their
//! uncompressed diffs under the gzip digests, so the stream matches neither its media type nor
//! its digest. (Checked here; this is why ostree-ext 0.15 refuses containers-storage with this
//! skopeo as "too old".) Such an image is copied with
//! `skopeo copy --dest-oci-accept-uncompressed-layers` into a temporary `oci:` layout of
//! *uncompressed* layers, which is then read in place; the copy writes the stored diffs out as
//! they are instead of compressing them for the importer to decompress again.
//!
//! Authentication for registries: `--authfile`, else `/etc/ostree/auth.json`, else
//! `/run/ostree/auth.json`, else containers/image's defaults (`$REGISTRY_AUTH_FILE`,
//! `${XDG_RUNTIME_DIR}/containers/auth.json`, …). Policy ([`super::sigpolicy`], as
//! ostree-rs-ext): `ostree-image-signed:` is verified against containers-policy.json (`--policy`,
//! else /etc/containers/policy.json), and refused when that policy accepts anything by default;
//! `ostree-unverified-*` is fetched with skopeo's `--insecure-policy`; `ostree-remote-*` is
//! checked by its ostree signature instead, so it is fetched with `--insecure-policy` too.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::imgref::{ImageReference, OstreeImageReference, SignatureSource, Transport};
use super::layer::{LayerFacts, LayerReader};
use super::layout::{Image, Layout};
pub use super::proxy::FetchOptions;
use super::proxy::ProxyImage;

/// An opened image: manifest and config read and checked, blobs on demand.
pub struct Source {
    /// The image's manifest and config.
    pub image: Image,
    blobs: Blobs,
    /// The temporary layout of a copied image, removed when the source is dropped.
    _tmp: Option<tempfile::TempDir>,
}

enum Blobs {
    Layout(Layout),
    Proxy(ProxyImage),
    Storage(super::storage::StorageImage),
}

impl Source {
    /// Open the layer `desc` (whose config diff_id is `diff_id`) for reading: its tar stream,
    /// decompressed and verified as [`LayerReader`] describes. `track` wraps the raw blob as
    /// fetched (progress bars and events count compressed bytes); `name` is for messages.
    pub fn open_layer(
        &self,
        desc: &oci_spec::image::Descriptor,
        diff_id: &str,
        name: &str,
        track: impl FnOnce(Box<dyn Read + Send>) -> Box<dyn Read + Send>,
    ) -> Result<LayerReader> {
        let facts = LayerFacts::of(desc, diff_id, name).with_context(|| name.to_string())?;
        let blob = track(self.open_blob(&facts.digest, facts.size)?);
        Ok(LayerReader::new(blob, facts))
    }

    /// Open the blob `digest` of `size` bytes, not yet verified: the caller wraps it in a
    /// [`super::layout::DigestReader`] and checks the digest at the end of the stream (layers
    /// go through [`Self::open_layer`] instead).
    pub fn open_blob(&self, digest: &str, size: u64) -> Result<Box<dyn Read + Send>> {
        match &self.blobs {
            Blobs::Layout(l) => Ok(l.open_blob(digest)?),
            Blobs::Proxy(p) => p.open_blob(digest, size),
            Blobs::Storage(s) => s.open_blob(digest),
        }
    }

    /// Whether blobs come through the proxy (from a registry or another store) rather than
    /// from a layout on disk.
    pub fn is_remote(&self) -> bool {
        matches!(self.blobs, Blobs::Proxy(_))
    }
}

/// How a reference is read: in place, or through the proxy and with which policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `oci:` / `oci-archive:` read here.
    Native,
    /// Through the proxy; `insecure_policy` adds skopeo's `--insecure-policy`.
    Proxy {
        /// Pass skopeo `--insecure-policy`.
        insecure_policy: bool,
    },
    /// `containers-storage:`: through the proxy when every layer is listed uncompressed (an
    /// image built here: the storage's diffs are exactly those blobs), else
    /// `skopeo copy --dest-oci-accept-uncompressed-layers` into a temporary layout, read in
    /// place (see the module docs).
    CopyDecompressed {
        /// Pass skopeo `--insecure-policy`.
        insecure_policy: bool,
    },
    /// `ostree-image-signed:`: `skopeo copy` under the signature policy into a temporary
    /// layout, read in place. The proxy of Debian 12's skopeo 1.9 never evaluates the policy
    /// (skopeo's `OpenImage` does since containers/skopeo#2029, 2023), while `copy` does,
    /// before it copies any blob; the import reads exactly what was verified.
    CopyVerified,
}

/// Which [`Route`] reads `r` (the policy rules: [`super::sigpolicy`]).
pub fn route(r: &OstreeImageReference) -> Route {
    let native_transport = matches!(
        r.imgref.transport,
        Transport::OciDir | Transport::OciArchive
    );
    let via = match &r.sigverify {
        SignatureSource::ContainerPolicy => return Route::CopyVerified,
        _ if native_transport => Route::Native,
        // Unverified: no policy applies (as ostree-rs-ext); for ostree-remote-*, the ostree
        // signature is the check.
        SignatureSource::ContainerPolicyAllowInsecure | SignatureSource::OstreeRemote(_) => {
            Route::Proxy {
                insecure_policy: true,
            }
        }
    };
    match (r.imgref.transport, via) {
        (Transport::ContainerStorage, Route::Proxy { insecure_policy }) => {
            Route::CopyDecompressed { insecure_policy }
        }
        (_, via) => via,
    }
}

/// Open the image named by `r`: read its manifest and config, nothing else yet.
pub fn open(r: &OstreeImageReference, opts: &FetchOptions) -> Result<Source> {
    if r.sigverify == SignatureSource::ContainerPolicy {
        super::sigpolicy::require_verifying_policy(opts.policy.as_deref())?;
    }
    match route(r) {
        Route::Native => {
            let layout = open_layout(&r.imgref)?;
            let (_, tag) = r.imgref.oci_path_and_tag();
            let image = layout.resolve(tag)?;
            Ok(Source {
                image,
                blobs: Blobs::Layout(layout),
                _tmp: None,
            })
        }
        Route::Proxy { insecure_policy } => open_proxy(r, opts, insecure_policy),
        Route::CopyDecompressed { insecure_policy } => {
            // Read in place when the store can be (src/oci/storage.rs); else the proxy.
            match super::storage::open(&r.imgref) {
                Ok(Some((image, store))) => {
                    return Ok(Source {
                        image,
                        blobs: Blobs::Storage(store),
                        _tmp: None,
                    })
                }
                Ok(None) => {}
                Err(e) => tracing::debug!("{}: read through the proxy: {e:#}", r.imgref),
            }
            let source = open_proxy(r, opts, insecure_policy)?;
            if all_layers_uncompressed(&source.image) {
                return Ok(source);
            }
            drop(source);
            copy_decompressed(r, opts, insecure_policy)
        }
        Route::CopyVerified => copy_decompressed(r, opts, false),
    }
}

fn open_proxy(
    r: &OstreeImageReference,
    opts: &FetchOptions,
    insecure_policy: bool,
) -> Result<Source> {
    let (proxy, f) = ProxyImage::open(&r.imgref, opts, insecure_policy)?;
    let image = Image::from_fetched(
        &r.imgref.to_string(),
        f.manifest_digest,
        f.manifest_raw,
        f.config_raw,
    )?;
    Ok(Source {
        image,
        blobs: Blobs::Proxy(proxy),
        _tmp: None,
    })
}

/// Whether every layer of `image` is listed as an uncompressed tar.
fn all_layers_uncompressed(image: &Image) -> bool {
    image.manifest.layers().iter().all(|l| {
        matches!(
            super::layout::layer_compression(l.media_type().as_ref()),
            Ok(super::layout::Compression::None)
        )
    })
}

/// The arguments of `skopeo copy` for `r` into the layout `dest` (tag `import`), layers
/// written uncompressed.
fn copy_args(
    r: &OstreeImageReference,
    opts: &FetchOptions,
    insecure_policy: bool,
    dest: &Path,
) -> Vec<std::ffi::OsString> {
    let mut args = opts.skopeo_global_args(insecure_policy);
    args.extend(["copy", "--quiet", "--dest-oci-accept-uncompressed-layers"].map(Into::into));
    if r.sigverify == SignatureSource::ContainerPolicy {
        // Verified on the way in; an `oci:` layout cannot store them.
        args.push("--remove-signatures".into());
    }
    if r.imgref.transport == Transport::Registry {
        if let Some(a) = opts
            .authfile
            .clone()
            .or_else(super::proxy::default_authfile)
        {
            args.extend(["--src-authfile".into(), a.into()]);
        }
        if let Some(d) = &opts.cert_dir {
            args.extend(["--src-cert-dir".into(), d.into()]);
        }
        if opts.insecure_skip_tls_verification {
            args.push("--src-tls-verify=false".into());
        }
    }
    args.push(r.imgref.to_string().into());
    args.push(format!("oci:{}:import", dest.display()).into());
    args
}

fn copy_decompressed(
    r: &OstreeImageReference,
    opts: &FetchOptions,
    insecure_policy: bool,
) -> Result<Source> {
    let parent = opts.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("ostree-container-fetch-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    let dest = tmp.path().join("layout");
    // containers/image's own big temporary files (default /var/tmp) go in our directory,
    // removed with it.
    let out = Command::new("skopeo")
        .arg("--tmpdir")
        .arg(tmp.path())
        .args(copy_args(r, opts, insecure_policy, &dest))
        .output()
        .context("running skopeo (is it installed?)")?;
    if !out.status.success() {
        let err = skopeo_message(&String::from_utf8_lossy(&out.stderr));
        if r.sigverify == SignatureSource::ContainerPolicy && err.contains("Source image rejected")
        {
            bail!(
                "the signature policy ({}) refused {}: {err}; nothing was imported",
                super::sigpolicy::policy_path(opts.policy.as_deref()).display(),
                r.imgref
            );
        }
        bail!("skopeo copy {} failed: {err}", r.imgref);
    }
    let layout = Layout::open_dir(&dest)?;
    let image = layout.resolve(Some("import"))?;
    Ok(Source {
        image,
        blobs: Blobs::Layout(layout),
        _tmp: Some(tmp),
    })
}

/// skopeo's error without its logrus decoration: the `msg="…"` of a `level=fatal` line, else
/// the whole text trimmed.
fn skopeo_message(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| l.contains("level=fatal"))
        .find_map(|l| {
            let m = l.split_once(" msg=\"")?.1;
            Some(m.strip_suffix('"').unwrap_or(m).replace("\\\"", "\""))
        })
        .unwrap_or_else(|| stderr.trim().to_string())
}

fn open_layout(imgref: &ImageReference) -> Result<Layout> {
    let (path, _) = imgref.oci_path_and_tag();
    Ok(if imgref.transport == Transport::OciDir {
        Layout::open_dir(Path::new(path))?
    } else {
        Layout::open_archive(Path::new(path))?
    })
}

/// The manifest of `imgref`, without fetching its layers (read in place for `oci:` and
/// `oci-archive:`, through the proxy for the rest, with the default policy rules).
pub fn manifest(
    imgref: &ImageReference,
    opts: &FetchOptions,
) -> Result<oci_spec::image::ImageManifest> {
    let r = OstreeImageReference {
        sigverify: SignatureSource::ContainerPolicyAllowInsecure,
        imgref: imgref.clone(),
    };
    Ok(open(&r, opts)?.image.manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_command_line() {
        let cs = "ostree-unverified-image:containers-storage:localhost/os";
        let signed = "ostree-image-signed:docker://r.example/os:1";
        let plain = FetchOptions::default();
        let full = FetchOptions {
            policy: Some("/p.json".into()),
            registries_d: Some("/r.d".into()),
            authfile: Some("/a.json".into()),
            insecure_skip_tls_verification: true,
            ..Default::default()
        };
        let copy = "copy --quiet --dest-oci-accept-uncompressed-layers";
        let table = [
            (cs, &plain, true, format!("--insecure-policy {copy} containers-storage:localhost/os oci:/t:import")),
            (cs, &plain, false, format!("{copy} containers-storage:localhost/os oci:/t:import")),
            (cs, &full, false, format!("--policy /p.json --registries.d /r.d {copy} containers-storage:localhost/os oci:/t:import")),
            (cs, &full, true, format!("--insecure-policy --registries.d /r.d {copy} containers-storage:localhost/os oci:/t:import")),
            // Signed, from a registry: the policy, signatures dropped after the check, and
            // the registry options as skopeo copy spells them.
            (signed, &full, false, format!("--policy /p.json --registries.d /r.d {copy} --remove-signatures --src-authfile /a.json --src-tls-verify=false docker://r.example/os:1 oci:/t:import")),
        ];
        for (r, opts, insecure, want) in table {
            let got = copy_args(&r.parse().unwrap(), opts, insecure, Path::new("/t"))
                .join(std::ffi::OsStr::new(" "));
            assert_eq!(got.to_str().unwrap(), want, "{r}");
        }
    }

    #[test]
    fn skopeo_messages_lose_their_decoration() {
        let fatal = "time=\"2026-11-30T05:50:53Z\" level=fatal msg=\"Source image rejected: A signature was required, but no signature exists\"\n";
        assert_eq!(
            skopeo_message(fatal),
            "Source image rejected: A signature was required, but no signature exists"
        );
        let quoted = r#"time="x" level=fatal msg="Invalid GPG signature: gpgme.Signature{Fingerprint:\"63\"}""#;
        assert_eq!(
            skopeo_message(quoted),
            r#"Invalid GPG signature: gpgme.Signature{Fingerprint:"63"}"#
        );
        assert_eq!(skopeo_message("  plain error\n"), "plain error");
    }

    #[test]
    fn routes() {
        let proxy = |insecure_policy| Route::Proxy { insecure_policy };
        let table = [
            ("ostree-unverified-image:oci:/srv/os:1", Route::Native),
            ("ostree-unverified-image:oci-archive:/a.tar", Route::Native),
            ("ostree-remote-image:r:oci:/srv/os:1", Route::Native),
            // Unverified: no policy, whatever the system has (as ostree-rs-ext).
            ("ostree-unverified-registry:quay.io/os:1", proxy(true)),
            // Signed: copied under the policy, even for oci:.
            (
                "ostree-image-signed:docker://quay.io/os:1",
                Route::CopyVerified,
            ),
            ("ostree-image-signed:oci:/srv/os:1", Route::CopyVerified),
            ("ostree-remote-registry:r:quay.io/os:1", proxy(true)),
            (
                "ostree-unverified-image:containers-storage:localhost/os",
                Route::CopyDecompressed {
                    insecure_policy: true,
                },
            ),
            (
                "ostree-image-signed:containers-storage:localhost/os",
                Route::CopyVerified,
            ),
        ];
        for (r, want) in table {
            assert_eq!(route(&r.parse().unwrap()), want, "{r}");
        }
    }
}
