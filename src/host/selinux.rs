//! SELinux labels from the image's own policy, as `ostree commit --selinux-policy` applies
//! them (never the host's policy).
//!
//! When the merged tree has `/usr/etc/selinux/config` (the image's `/etc/selinux/config`),
//! that directory is copied out of the repository into a temporary root and loaded with
//! libostree's `OstreeSePolicy` (libselinux `file_contexts` lookups, the same code `ostree
//! commit --selinux-policy` uses, so labels are identical). Every file and directory of the
//! merged tree then gets `security.selinux` = the label for its path (as stored: `/usr/etc/…`,
//! like libostree) and mode, with a trailing NUL. Lookups (tens to hundreds of µs each with a
//! full distribution policy) run on all cores, one policy handle per thread. Changing an xattr
//! changes a content object's checksum, so each labelled object is written anew: its bytes are
//! read back from the repository, hashed and written (once per distinct object and label).
//! Layer commits stay unlabelled, as in ostree-rs-ext.
//!
//! Updates are cheap: given the image's previous version (its unlabelled merged tree, rebuilt
//! from its layer commits, and its labelled commit), and when `/usr/etc/selinux` did not
//! change, a subtree or file identical (same unlabelled checksum at the same path) to the
//! previous version's takes the previous labelled form without any lookup.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use ostree::gio::{self, prelude::*};

use crate::ostree::gvariant;
use crate::ostree::repo::{self, Csum, Meta, ObjectWriter};
use crate::ostree::tree::{Dir, Node};

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
    /// Label every (path, mode), spreading the lookups over threads: each thread gets its own
    /// policy handle (libselinux handles are not shared), created here, one after the other.
    fn labels(&mut self, targets: &[(String, u32)]) -> Result<Vec<Option<Vec<u8>>>> {
        self.lookups += targets.len() as u64;
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let chunk = targets.len().div_ceil(threads).max(256);
        let mut handles = vec![self.policy.clone()];
        let root = gio::File::for_path(self._root.path());
        while handles.len() < targets.len().div_ceil(chunk) {
            handles.push(
                ostree::SePolicy::new(&root, gio::Cancellable::NONE)
                    .map_err(ctx("loading the image's SELinux policy".into()))?,
            );
        }
        let results: Vec<Result<Vec<Option<Vec<u8>>>>> = std::thread::scope(|s| {
            let workers: Vec<_> = targets
                .chunks(chunk)
                .zip(handles)
                .map(|(part, policy)| {
                    s.spawn(move || {
                        part.iter()
                            .map(|(path, mode)| {
                                let l = policy
                                    .label(path, *mode, gio::Cancellable::NONE)
                                    .map_err(ctx(format!("SELinux label for {path}")))?;
                                Ok(l.map(|l| {
                                    let mut v = l.as_bytes().to_vec();
                                    v.push(0);
                                    v
                                }))
                            })
                            .collect()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(anyhow!("SELinux labelling thread panicked")))
                })
                .collect()
        });
        let mut out = Vec::with_capacity(targets.len());
        for r in results {
            out.extend(r?);
        }
        Ok(out)
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

/// What a content object is, read from the repository.
struct ObjInfo {
    meta: Meta,
    symlink_target: Option<String>,
}

/// Relabels a merged tree in place, writing the new objects: (1) read every directory's and
/// object's metadata, (2) look all labels up (in parallel), (3) write what changed.
pub struct Relabeler<'a, 'r> {
    /// Where relabelled objects are written.
    pub w: &'a mut ObjectWriter<'r>,
    /// The policy labels are looked up in.
    pub policy: &'a mut Policy,
    dirmetas: HashMap<Csum, Meta>,
    objects: HashMap<Csum, ObjInfo>,
    targets: Vec<(String, u32)>,
    /// (object or dirmeta, label) → relabelled checksum.
    done: HashMap<(Csum, Option<Vec<u8>>), Csum>,
    /// The image's previous version: (unlabelled merged tree, labelled commit tree).
    previous: Option<(Dir, Dir)>,
    /// Paths taken from the previous version: a directory's labelled subtree, or a file's
    /// labelled object.
    kept: HashMap<String, Node>,
    /// Paths (files and directories) whose labels were kept rather than looked up.
    pub reused: u64,
}

fn child_path(path: &str, name: &str) -> String {
    if path == "/" {
        format!("/{name}")
    } else {
        format!("{path}/{name}")
    }
}

impl<'a, 'r> Relabeler<'a, 'r> {
    /// A relabeler with no previous version to reuse labels from.
    pub fn new(w: &'a mut ObjectWriter<'r>, policy: &'a mut Policy) -> Self {
        Relabeler {
            w,
            policy,
            dirmetas: HashMap::new(),
            objects: HashMap::new(),
            targets: Vec::new(),
            done: HashMap::new(),
            previous: None,
            kept: HashMap::new(),
            reused: 0,
        }
    }

    /// Keep what did not change since the image's previous version. Only used when the
    /// policy (`/usr/etc/selinux`) is the same in both; the unlabelled tree must have been
    /// written (dirtree checksums known), as must the tree being labelled.
    pub fn set_previous(&mut self, unlabelled: Dir, labelled: Dir) {
        self.previous = Some((unlabelled, labelled));
    }

    /// Decide, before any lookup, which paths keep their previous labelled form.
    fn match_previous(&mut self, dir: &Dir, prev_u: &Dir, prev_l: &Dir, path: &str) {
        for (name, node) in &dir.children {
            let child = child_path(path, name);
            match (node, prev_u.children.get(name), prev_l.children.get(name)) {
                (Node::Dir(d), Some(Node::Dir(pu)), Some(Node::Dir(pl))) => {
                    if d.tree.is_some() && d.tree == pu.tree && d.meta == pu.meta {
                        self.reused += 1 + count_paths(d);
                        self.kept.insert(child, Node::Dir(pl.clone()));
                    } else {
                        self.match_previous(d, pu, pl, &child);
                    }
                }
                (
                    Node::File { csum, .. },
                    Some(Node::File { csum: pc, .. }),
                    Some(pl @ Node::File { .. }),
                ) if csum == pc => {
                    self.reused += 1;
                    self.kept.insert(child, pl.clone());
                }
                _ => {}
            }
        }
    }

    /// Label `root` and everything below.
    pub fn relabel(&mut self, root: &mut Dir) -> Result<()> {
        if let Some((pu, pl)) = self.previous.take() {
            let policy = ["usr", "etc", "selinux"];
            let same_policy = match (root.lookup_dir(&policy), pu.lookup_dir(&policy)) {
                (Some(a), Some(b)) => a.tree.is_some() && a.tree == b.tree,
                _ => false,
            };
            if same_policy {
                self.match_previous(root, &pu, &pl, "/");
            }
        }
        self.collect(root, "/")?;
        let targets = std::mem::take(&mut self.targets);
        let labels = self.policy.labels(&targets)?;
        let mut next = labels.into_iter();
        self.apply(root, "/", &mut next)
    }

    fn collect(&mut self, dir: &Dir, path: &str) -> Result<()> {
        let repo = self.w.repo;
        if let std::collections::hash_map::Entry::Vacant(e) = self.dirmetas.entry(dir.meta) {
            let hex = hex::encode(dir.meta);
            let v = repo
                .load_variant(ostree::ObjectType::DirMeta, &hex)
                .map_err(ctx(format!("reading dirmeta {hex}")))?;
            let (uid, gid, mode, xattrs) = gvariant::parse_dirmeta(&v.data_as_bytes())
                .ok_or_else(|| anyhow!("malformed dirmeta {hex}"))?;
            e.insert(Meta {
                uid,
                gid,
                mode,
                xattrs,
            });
        }
        self.targets
            .push((path.to_string(), self.dirmetas[&dir.meta].mode));
        for (name, node) in &dir.children {
            let child = child_path(path, name);
            if self.kept.contains_key(&child) {
                continue;
            }
            match node {
                Node::Dir(d) => self.collect(d, &child)?,
                Node::File { csum, .. } => {
                    if !self.objects.contains_key(csum) {
                        let hex = hex::encode(csum);
                        let (info, xattrs) = repo
                            .query_file(&hex, gio::Cancellable::NONE)
                            .map_err(ctx(format!("reading object {hex} ({child})")))?;
                        let meta = Meta {
                            uid: info.attribute_uint32("unix::uid"),
                            gid: info.attribute_uint32("unix::gid"),
                            mode: info.attribute_uint32("unix::mode"),
                            xattrs: gvariant::parse_xattrs(&xattrs.data_as_bytes())
                                .unwrap_or_default(),
                        };
                        let symlink_target = (info.file_type() == gio::FileType::SymbolicLink)
                            .then(|| {
                                info.symlink_target()
                                    .map(|t| t.to_string_lossy().into_owned())
                                    .unwrap_or_default()
                            });
                        self.objects.insert(
                            *csum,
                            ObjInfo {
                                meta,
                                symlink_target,
                            },
                        );
                    }
                    self.targets.push((child, self.objects[csum].meta.mode));
                }
            }
        }
        Ok(())
    }

    fn apply(
        &mut self,
        dir: &mut Dir,
        path: &str,
        labels: &mut impl Iterator<Item = Option<Vec<u8>>>,
    ) -> Result<()> {
        let label = labels
            .next()
            .ok_or_else(|| anyhow!("labels out of step at {path}"))?;
        let key = (dir.meta, label.clone());
        dir.meta = match self.done.get(&key) {
            Some(m) => *m,
            None => {
                let mut meta = self.dirmetas[&dir.meta].clone();
                meta.xattrs = with_label(std::mem::take(&mut meta.xattrs), label);
                let m = self.w.write_dirmeta(&meta)?;
                self.done.insert(key, m);
                m
            }
        };
        dir.tree = None;
        for (name, node) in dir.children.iter_mut() {
            let child = child_path(path, name);
            if let Some(kept) = self.kept.remove(&child) {
                *node = kept;
                continue;
            }
            match node {
                Node::Dir(d) => self.apply(d, &child, labels)?,
                Node::File { csum, .. } => {
                    let label = labels
                        .next()
                        .ok_or_else(|| anyhow!("labels out of step at {child}"))?;
                    *csum = self.relabel_file(csum, &child, label)?;
                }
            }
        }
        Ok(())
    }

    fn relabel_file(&mut self, csum: &Csum, path: &str, label: Option<Vec<u8>>) -> Result<Csum> {
        let key = (*csum, label.clone());
        if let Some(c) = self.done.get(&key) {
            return Ok(*c);
        }
        let info = &self.objects[csum];
        let mut meta = info.meta.clone();
        meta.xattrs = with_label(std::mem::take(&mut meta.xattrs), label);
        let new = match &info.symlink_target {
            Some(target) => {
                let header = repo::file_header(&meta, target);
                let c = repo::content_checksum(&header, &[]);
                self.w.write_content(&c, &header, Vec::new())?;
                c
            }
            None => {
                let hex = hex::encode(csum);
                let (input, _, _) = self
                    .w
                    .repo
                    .load_file(&hex, gio::Cancellable::NONE)
                    .map_err(ctx(format!("reading object {hex} ({path})")))?;
                let mut content = Vec::new();
                if let Some(input) = input {
                    input
                        .into_read()
                        .read_to_end(&mut content)
                        .with_context(|| format!("reading {path}"))?;
                }
                let header = repo::file_header(&meta, "");
                let c = repo::content_checksum(&header, &content);
                self.w.write_content(&c, &header, content)?;
                c
            }
        };
        self.done.insert(key, new);
        Ok(new)
    }
}

/// Files and directories below `d`.
fn count_paths(d: &Dir) -> u64 {
    d.children
        .values()
        .map(|n| match n {
            Node::Dir(c) => 1 + count_paths(c),
            Node::File { .. } => 1,
        })
        .sum()
}
