//! SELinux labels from the image's own policy, as `ostree commit --selinux-policy` applies
//! them (never the host's policy).
//!
//! When the merged tree has `/usr/etc/selinux/config` (the image's `/etc/selinux/config`),
//! that directory is copied out of the repository into a temporary root and loaded with
//! libostree's `OstreeSePolicy` (libselinux `file_contexts` lookups, the same code `ostree
//! commit --selinux-policy` uses, so labels are identical). Every file and directory of the
//! merged tree then gets `security.selinux` = the label for its path (as stored: `/usr/etc/…`,
//! like libostree) and mode, with a trailing NUL. Changing an xattr changes a content object's
//! checksum, so each labelled object is written anew: its bytes are read back from the
//! repository, hashed and written (once per distinct object and label). Layer commits stay
//! unlabelled, as in ostree-rs-ext.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use ostree::gio::{self, prelude::*};

use super::gvariant;
use super::repo::{self, Csum, Meta, ObjectWriter};
use super::tree::{Dir, Node};

const XATTR: &[u8] = b"security.selinux";

/// The image's policy, loaded from a temporary copy of its `/usr/etc/selinux`.
pub struct Policy {
    policy: ostree::SePolicy,
    _root: tempfile::TempDir,
    /// Lookups done (for the summary/debug log).
    pub lookups: u64,
}

fn ctx(what: String) -> impl FnOnce(ostree::glib::Error) -> anyhow::Error {
    move |e| anyhow!("{what}: {e}")
}

/// Load the policy the merged tree carries, if any.
pub fn load_policy(repo: &ostree::Repo, merged: &Dir, tmp: &Path) -> Result<Option<Policy>> {
    if !matches!(
        merged.lookup(&["usr", "etc", "selinux", "config"]),
        Some(Node::File { .. })
    ) {
        return Ok(None);
    }
    let Some(selinux) = merged.lookup_dir(&["usr", "etc", "selinux"]) else {
        return Ok(None);
    };
    let root = tempfile::Builder::new()
        .prefix("ostree-container-selinux-")
        .tempdir_in(tmp)
        .context("creating a directory for the image's SELinux policy")?;
    let dest = root.path().join("usr/etc/selinux");
    std::fs::create_dir_all(&dest)?;
    extract(repo, selinux, &dest)?;
    let policy = ostree::SePolicy::new(&gio::File::for_path(root.path()), gio::Cancellable::NONE)
        .map_err(ctx("loading the image's SELinux policy".into()))?;
    if policy.name().is_none() {
        // SELINUX=disabled, or no policy type: nothing to label with.
        return Ok(None);
    }
    Ok(Some(Policy {
        policy,
        _root: root,
        lookups: 0,
    }))
}

/// Copy a subtree out of the repository (regular files and symlinks; owners and xattrs are
/// not needed to read a policy).
fn extract(repo: &ostree::Repo, dir: &Dir, dest: &Path) -> Result<()> {
    for (name, node) in &dir.children {
        let p = dest.join(name);
        match node {
            Node::Dir(d) => {
                std::fs::create_dir_all(&p)?;
                extract(repo, d, &p)?;
            }
            Node::File { csum, .. } => {
                let hex = hex::encode(csum);
                let (input, info, _) = repo
                    .load_file(&hex, gio::Cancellable::NONE)
                    .map_err(ctx(format!("reading object {hex}")))?;
                if info.file_type() == gio::FileType::SymbolicLink {
                    if let Some(t) = info.symlink_target() {
                        std::os::unix::fs::symlink(t, &p)?;
                    }
                } else if let Some(input) = input {
                    let mut f = std::fs::File::create(&p)?;
                    std::io::copy(&mut input.into_read(), &mut f)?;
                }
            }
        }
    }
    Ok(())
}

impl Policy {
    fn label(&mut self, path: &str, mode: u32) -> Result<Option<Vec<u8>>> {
        self.lookups += 1;
        let l = self
            .policy
            .label(path, mode, gio::Cancellable::NONE)
            .map_err(ctx(format!("SELinux label for {path}")))?;
        Ok(l.map(|l| {
            let mut v = l.as_bytes().to_vec();
            v.push(0);
            v
        }))
    }
}

/// `xattrs` with security.selinux set to `label` (or removed), sorted.
fn with_label(
    mut xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    label: Option<Vec<u8>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    xattrs.retain(|(n, _)| n != XATTR);
    if let Some(l) = label {
        xattrs.push((XATTR.to_vec(), l));
    }
    xattrs.sort();
    xattrs
}

/// Relabels a merged tree in place, writing the new objects.
pub struct Relabeler<'a, 'r> {
    pub w: &'a mut ObjectWriter<'r>,
    pub policy: &'a mut Policy,
    /// (object, label) → relabelled object.
    done: HashMap<(Csum, Option<Vec<u8>>), Csum>,
    dirmetas: HashMap<(Csum, Option<Vec<u8>>), Csum>,
}

impl<'a, 'r> Relabeler<'a, 'r> {
    pub fn new(w: &'a mut ObjectWriter<'r>, policy: &'a mut Policy) -> Self {
        Relabeler {
            w,
            policy,
            done: HashMap::new(),
            dirmetas: HashMap::new(),
        }
    }

    /// Label `dir` (at `path`, "/" for the root) and everything below.
    pub fn relabel(&mut self, dir: &mut Dir, path: &str) -> Result<()> {
        let repo = self.w.repo;
        let hex = hex::encode(dir.meta);
        let v = repo
            .load_variant(ostree::ObjectType::DirMeta, &hex)
            .map_err(ctx(format!("reading dirmeta {hex}")))?;
        let (uid, gid, mode, xattrs) = gvariant::parse_dirmeta(&v.data_as_bytes())
            .ok_or_else(|| anyhow!("malformed dirmeta {hex}"))?;
        let label = self.policy.label(path, mode)?;
        let key = (dir.meta, label.clone());
        dir.meta = match self.dirmetas.get(&key) {
            Some(m) => *m,
            None => {
                let m = self.w.write_dirmeta(&Meta {
                    uid,
                    gid,
                    mode,
                    xattrs: with_label(xattrs, label),
                })?;
                self.dirmetas.insert(key, m);
                m
            }
        };
        dir.tree = None;
        for (name, node) in dir.children.iter_mut() {
            let child = if path == "/" {
                format!("/{name}")
            } else {
                format!("{path}/{name}")
            };
            match node {
                Node::Dir(d) => self.relabel(d, &child)?,
                Node::File { csum, .. } => *csum = self.relabel_file(csum, &child)?,
            }
        }
        Ok(())
    }

    fn relabel_file(&mut self, csum: &Csum, path: &str) -> Result<Csum> {
        let repo = self.w.repo;
        let hex = hex::encode(csum);
        let (input, info, xattrs) = repo
            .load_file(&hex, gio::Cancellable::NONE)
            .map_err(ctx(format!("reading object {hex} ({path})")))?;
        let mode = info.attribute_uint32("unix::mode");
        let label = self.policy.label(path, mode)?;
        let key = (*csum, label.clone());
        if let Some(c) = self.done.get(&key) {
            return Ok(*c);
        }
        let xattrs = gvariant::parse_xattrs(&xattrs.data_as_bytes()).unwrap_or_default();
        let meta = Meta {
            uid: info.attribute_uint32("unix::uid"),
            gid: info.attribute_uint32("unix::gid"),
            mode,
            xattrs: with_label(xattrs, label),
        };
        let new = if info.file_type() == gio::FileType::SymbolicLink {
            let target = info
                .symlink_target()
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let header = repo::file_header(&meta, &target);
            let c = repo::content_checksum(&header, &[]);
            self.w.write_content(&c, &header, Vec::new())?;
            c
        } else {
            let header = repo::file_header(&meta, "");
            let mut content = Vec::with_capacity(info.size().max(0) as usize);
            if let Some(input) = input {
                input
                    .into_read()
                    .read_to_end(&mut content)
                    .with_context(|| format!("reading {path}"))?;
            }
            let c = repo::content_checksum(&header, &content);
            self.w.write_content(&c, &header, content)?;
            c
        };
        self.done.insert(key, new);
        Ok(new)
    }
}
