//! OCI and ostree fixtures for the exporter and machine tests (host only): hand-made OCI layouts
//! (for what buildah cannot produce), [`Repo`] (an ostree repository and its refs), [`Scratch`]
//! (a directory that goes away even with mounts and immutable deployments), `image pull`, and
//! filesystem snapshots for comparing an ostree checkout with an independent unpack.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::run;

use sha2::{Digest, Sha256};

/// A scratch directory that really goes away: buildah's overlay driver leaves its storage
/// mounted and `ostree admin deploy` makes deployments immutable, either of which stops a
/// plain `TempDir` from deleting itself.
pub struct Scratch(Option<tempfile::TempDir>);

impl Scratch {
    pub fn new() -> Scratch {
        Scratch(Some(
            tempfile::Builder::new()
                .prefix("exporter-test-")
                .tempdir()
                .unwrap(),
        ))
    }

    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("live scratch dir").path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else { return };
        let root = dir.path().to_path_buf();
        // Unmount whatever is mounted below it, deepest first.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<PathBuf> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(PathBuf::from)
            .filter(|p| p.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(&p).status();
        }
        // Deployments are immutable (chattr +i).
        let deploy = root.join("sysroot/ostree/deploy");
        if deploy.exists() {
            let _ = Command::new("chattr")
                .arg("-R")
                .arg("-i")
                .arg(&deploy)
                .output();
        }
        let _ = dir.close();
    }
}

/// `image pull` (quiet), returning the commit.
pub fn pull(repo: &Path, imgref: &str) -> String {
    run(super::bin_cmd(["image", "pull", "--quiet"])
        .arg(repo)
        .arg(imgref))
    .trim()
    .to_string()
}

/// A fresh ostree repository.
pub struct Repo {
    pub path: PathBuf,
}

impl Repo {
    pub fn init(path: PathBuf, mode: &str) -> Repo {
        run(Command::new("ostree")
            .arg(format!("--repo={}", path.display()))
            .args(["init", &format!("--mode={mode}")]));
        Repo { path }
    }

    pub fn ostree<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        let mut c = Command::new("ostree");
        c.arg(format!("--repo={}", self.path.display())).args(args);
        c
    }

    /// All refs and what they point to.
    pub fn refs(&self) -> BTreeMap<String, String> {
        let list = run(&mut self.ostree(["refs"]));
        list.lines()
            .filter(|l| !l.is_empty())
            .map(|r| {
                (
                    r.to_string(),
                    run(&mut self.ostree(["rev-parse", r])).trim().to_string(),
                )
            })
            .collect()
    }

    pub fn fsck(&self) {
        run(&mut self.ostree(["fsck"]));
    }

    /// `ostree checkout` (as root: owners, modes and xattrs are real).
    pub fn checkout(&self, rev: &str, dest: &Path) {
        run(self.ostree(["checkout", rev]).arg(dest));
    }

    pub fn metadata(&self, rev: &str, key: &str) -> String {
        run(&mut self.ostree(["show", "--print-metadata-key", key, rev]))
            .trim()
            .to_string()
    }
}

fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names[..]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let s = String::from_utf8_lossy(name).into_owned();
        if s == "security.selinux" {
            continue;
        }
        let cn = CString::new(name).unwrap();
        let mut val = vec![0u8; 4096];
        let m = rustix::fs::lgetxattr(path, cn.as_c_str(), &mut val[..])
            .unwrap_or_else(|e| panic!("lgetxattr {} {s}: {e}", path.display()));
        val.truncate(m);
        out.push((s, val));
    }
    out.sort();
    out
}

/// One line per path: type, mode, owner, symlink target or content hash, xattrs.
pub type Snapshot = BTreeMap<String, String>;

pub fn snapshot(root: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let what = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("link -> {}", std::fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            format!(
                "file {}",
                hex::encode(Sha256::digest(std::fs::read(&p).unwrap()))
            )
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() || ft.is_socket() {
            "special".to_string()
        } else {
            "?".to_string()
        };
        let mode = if ft.is_symlink() {
            0o777
        } else {
            md.mode() & 0o7777
        };
        let xa: Vec<String> = xattrs(&p)
            .iter()
            .map(|(n, v)| format!("{n}={}", hex::encode(v)))
            .collect();
        out.insert(
            rel,
            format!(
                "{what} {mode:04o} {}:{} [{}]",
                md.uid(),
                md.gid(),
                xa.join(",")
            ),
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// What the importer should make of an unpacked image: /etc at /usr/etc, nothing below
/// /run, /tmp, /proc, /sys, /dev, no empty /etc/hostname or /etc/resolv.conf.
pub fn as_ostree_sees_it(mut s: Snapshot) -> Snapshot {
    let mut out = BTreeMap::new();
    for (k, v) in std::mem::take(&mut s) {
        let top = k.split('/').next().unwrap();
        if ["run", "tmp", "proc", "sys", "dev"].contains(&top) && k.contains('/') {
            continue;
        }
        if (k == "etc/hostname" || k == "etc/resolv.conf")
            && v.starts_with(&format!("file {}", hex::encode(Sha256::digest(b""))))
        {
            continue;
        }
        let k = if k == "etc" || k.starts_with("etc/") {
            format!("usr/{k}")
        } else {
            k
        };
        out.insert(k, v);
    }
    out
}

/// Assert two snapshots are equal, showing only the differing paths.
pub fn assert_same(a: &Snapshot, b: &Snapshot, what: &str) {
    let mut diffs = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            Some(w) if w == v => {}
            Some(w) => diffs.push(format!("{k}: {v}  !=  {w}")),
            None => diffs.push(format!("{k}: only in first: {v}")),
        }
    }
    for (k, w) in b {
        if !a.contains_key(k) {
            diffs.push(format!("{k}: only in second: {w}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

pub fn umoci_unpack(oci_dir: &Path, tag: &str, bundle: &Path) -> PathBuf {
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", oci_dir.display()))
        .arg(bundle));
    bundle.join("rootfs")
}

// ---------- hand-made OCI layouts ----------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

/// One tar entry to write.
pub enum Ent {
    Dir(&'static str, u32),
    File(String, u32, Vec<u8>),
    /// Owner and PAX xattrs too.
    FileFull {
        path: String,
        mode: u32,
        uid: u64,
        gid: u64,
        data: Vec<u8>,
        xattrs: Vec<(&'static str, Vec<u8>)>,
    },
    Link(&'static str, &'static str),
    Hard(&'static str, &'static str),
    Char(&'static str),
    Fifo(&'static str),
    /// A path written raw into the header (for `..` tests).
    RawPath(&'static [u8]),
}

pub fn file(p: &str, data: &[u8]) -> Ent {
    Ent::File(p.to_string(), 0o644, data.to_vec())
}

pub fn make_tar(entries: &[Ent]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Ent::Dir(p, m) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*m);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            Ent::File(p, m, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, p, &d[..]).unwrap();
            }
            Ent::FileFull {
                path,
                mode,
                uid,
                gid,
                data,
                xattrs,
            } => {
                if !xattrs.is_empty() {
                    let recs: Vec<(String, &[u8])> = xattrs
                        .iter()
                        .map(|(n, v)| (format!("SCHILY.xattr.{n}"), &v[..]))
                        .collect();
                    b.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), *v)))
                        .unwrap();
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*gid);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, &data[..]).unwrap();
            }
            Ent::Link(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            Ent::Hard(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            Ent::Char(p) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            Ent::Fifo(p) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            Ent::RawPath(p) => {
                // Bypass the tar crate's own `..` check by writing the name field directly.
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(1);
                let name = &mut h.as_old_mut().name;
                name[..p.len()].copy_from_slice(p);
                h.set_cksum();
                b.append(&h, &b"x"[..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn compress(tar: &[u8], c: Comp) -> Vec<u8> {
    match c {
        Comp::None => tar.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(tar, 1).unwrap(),
    }
}

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A layer ready to go into a layout; fields can be tampered with before writing.
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: String,
    pub diff_id: String,
    /// Digest and size written into the manifest (default: the blob's).
    pub digest: String,
    pub size: u64,
}

impl Layer {
    pub fn new(entries: &[Ent], c: Comp) -> Layer {
        let tar = make_tar(entries);
        let blob = compress(&tar, c);
        let media_type = match c {
            Comp::None => "application/vnd.oci.image.layer.v1.tar",
            Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
        .to_string();
        Layer {
            digest: sha(&blob),
            size: blob.len() as u64,
            diff_id: sha(&tar),
            blob,
            media_type,
        }
    }
}

fn put_blob(dir: &Path, data: &[u8]) -> String {
    let d = sha(data);
    let p = dir
        .join("blobs/sha256")
        .join(d.strip_prefix("sha256:").unwrap());
    std::fs::write(p, data).unwrap();
    d
}

/// Write an OCI layout with one image tagged `tag`; `labels` go into the config.
pub fn write_layout(
    dir: &Path,
    tag: &str,
    layers: &[Layer],
    labels: &[(&str, &str)],
    created: &str,
) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for l in layers {
        let p = dir
            .join("blobs/sha256")
            .join(l.digest.strip_prefix("sha256:").unwrap_or("bad"));
        std::fs::write(p, &l.blob).unwrap();
    }
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let config = serde_json::json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": [{"created": created, "created_by": "hand-made test layer"}],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put_blob(dir, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size})).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let md = put_blob(dir, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// The root of a tiny OS that libostree deploys: the usual top-level directories, a placeholder
/// kernel and initramfs in /usr/lib/modules/6.1.0, os-release, /etc/passwd and the /ostree link.
pub fn placeholder_os() -> Vec<Ent> {
    let mut ents: Vec<Ent> = [
        "usr",
        "usr/bin",
        "usr/lib",
        "usr/lib/modules",
        "etc",
        "var",
        "boot",
        "sysroot",
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
    ]
    .iter()
    .map(|d| Ent::Dir(d, 0o755))
    .collect();
    ents.extend([
        file("usr/lib/modules/6.1.0/vmlinuz", &[7u8; 4096]),
        file("usr/lib/modules/6.1.0/initramfs.img", &[8u8; 4096]),
        file("usr/lib/os-release", b"ID=test\nVERSION_ID=1\n"),
        Ent::Link("etc/os-release", "../usr/lib/os-release"),
        file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        Ent::Link("ostree", "sysroot/ostree"),
    ]);
    ents
}
