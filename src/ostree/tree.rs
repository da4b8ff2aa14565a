//! In-memory filesystem trees of ostree checksums: one per layer while it is imported, and
//! the merged image.
//!
//! A [`Dir`] maps names (sorted bytewise, as ostree's dirtree objects require) to content
//! object checksums or subdirectories, plus the checksum of its own dirmeta object. A layer
//! tree keeps its whiteouts as they appear in the layer (empty files named `.wh.<name>` and
//! `.wh..wh..opq`), exactly as ostree-rs-ext stores layer commits; [`apply_layer`] interprets
//! them when folding a layer onto the image below it. Only a *file* node is a whiteout: a
//! directory named `.wh.bin` (from a layer entry `usr/.wh.bin/x`, which umoci and
//! containers/storage unpack as a plain directory) is an ordinary directory, as in ostree's
//! own whiteout processing at checkout.
//!
//! The recursive functions here are bounded by the path limits of
//! [`crate::oci::limits`]: no tree is deeper than 2047 levels.
//!
//! # Security
//!
//! [`LayerBuilder`] never writes below something that is not a directory: a path whose
//! parent is a symlink (or a regular file), in this layer or in the layers below, is an
//! error rather than being resolved, so an image cannot place files through a link.

use std::collections::BTreeMap;

pub use super::csum::Csum;

/// Name prefix of a whiteout: `.wh.NAME` deletes `NAME` from the layers below.
pub const WH_PREFIX: &str = ".wh.";
/// Name of the opaque marker: the directory holding it hides everything below it.
pub const WH_OPAQUE: &str = ".wh..wh..opq";

/// What kind of non-directory a file node is, when known (trees loaded back from a
/// repository do not record it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file (or a whiteout marker).
    Regular,
    /// A symbolic link.
    Symlink,
    /// Loaded from a repository, where the kind is not recorded.
    Unknown,
}

/// An entry of a [`Dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A non-directory: a content object.
    File {
        /// The content object's checksum.
        csum: Csum,
        /// Regular file or symlink, when known.
        kind: FileKind,
    },
    /// A directory.
    Dir(Dir),
}

/// A directory of the tree being built: its metadata and entries, as a dirtree holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dir {
    /// Checksum of the dirmeta object (owner, mode, xattrs).
    pub meta: Csum,
    /// Entries by name, sorted (the order of a dirtree).
    pub children: BTreeMap<String, Node>,
    /// Checksum of this directory's dirtree object when it is in the repository and the
    /// directory has not changed since (set by loading and writing, cleared by merging), so
    /// unchanged subtrees are not serialised again.
    pub tree: Option<Csum>,
}

/// Why a layer's entry cannot be placed in the tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    /// A parent of the entry is a symlink or file, in this layer or below.
    #[error("{path:?}: refusing to write through {what} {parent:?}")]
    ThroughNonDir {
        /// The entry.
        path: String,
        /// The parent that is not a directory.
        parent: String,
        /// What the parent is ("symlink", "regular file", …).
        what: &'static str,
    },
    /// A whiteout marker and a directory of the same path in one layer.
    #[error(
        "{path:?}: {parent:?} is a whiteout (it deletes {deleted:?} from the layers below) and a \
         directory in the same layer; umoci and podman would delete {deleted:?} and keep the \
         directory, which one ostree tree cannot hold: rebuild the layer without the entry {parent:?}"
    )]
    WhiteoutAsDirectory {
        /// The entry placed below the whiteout.
        path: String,
        /// The whiteout used as a directory.
        parent: String,
        /// The path the whiteout deletes.
        deleted: String,
    },
    /// A hard link whose target is missing or not a file.
    #[error("{path:?}: hard link target {target:?} {why}")]
    BadHardlink {
        /// The link.
        path: String,
        /// Its target.
        target: String,
        /// What is wrong with the target.
        why: &'static str,
    },
}

impl Dir {
    /// An empty directory with the dirmeta `meta`.
    pub fn new(meta: Csum) -> Self {
        Dir {
            meta,
            children: BTreeMap::new(),
            tree: None,
        }
    }

    /// Whether any whiteout marker is in this directory or below.
    pub fn has_whiteouts(&self) -> bool {
        self.children.iter().any(|(name, node)| match node {
            Node::File { .. } => name.starts_with(WH_PREFIX),
            Node::Dir(d) => d.has_whiteouts(),
        })
    }

    /// Whether `name` here is a whiteout marker (a file named `.wh.…`).
    fn is_marker(&self, name: &str) -> bool {
        matches!(self.children.get(name), Some(Node::File { .. }))
    }

    /// The node at `path` (components), if any.
    pub fn lookup(&self, path: &[&str]) -> Option<&Node> {
        let (first, rest) = path.split_first()?;
        let node = self.children.get(*first)?;
        if rest.is_empty() {
            return Some(node);
        }
        match node {
            Node::Dir(d) => d.lookup(rest),
            Node::File { .. } => None,
        }
    }

    /// The directory at `path` (components; empty: this one), if it is one.
    pub fn lookup_dir(&self, path: &[&str]) -> Option<&Dir> {
        if path.is_empty() {
            return Some(self);
        }
        match self.lookup(path)? {
            Node::Dir(d) => Some(d),
            Node::File { .. } => None,
        }
    }

    /// Number of non-directory entries below this directory.
    pub fn count_files(&self) -> u64 {
        self.children
            .values()
            .map(|n| match n {
                Node::File { .. } => 1,
                Node::Dir(d) => d.count_files(),
            })
            .sum()
    }
}

fn what(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Symlink => "symlink",
        FileKind::Regular => "regular file",
        FileKind::Unknown => "non-directory",
    }
}

/// Builds one layer's tree, consulting the merged tree of the layers below for parent
/// directories the layer does not list and for hard links to lower files.
pub struct LayerBuilder<'a> {
    /// The layer's tree so far.
    pub root: Dir,
    lower: &'a Dir,
    default_dirmeta: Csum,
    /// The tree took something from the lower layers: the metadata (or absence) of a parent
    /// directory the layer does not list, or the content of a hard link's target. Such a tree
    /// is right only over the same lower layers.
    pub uses_lower: bool,
}

impl<'a> LayerBuilder<'a> {
    /// `default_dirmeta` is used for parents the layer does not list and the lower layers
    /// lack (root:root 0755).
    pub fn new(lower: &'a Dir, default_dirmeta: Csum) -> Self {
        LayerBuilder {
            root: Dir::new(lower.meta),
            lower,
            default_dirmeta,
            uses_lower: false,
        }
    }

    /// Walk to (creating as needed) the directory holding `path`'s last component.
    fn parent_mut(&mut self, path: &[&str]) -> Result<&mut Dir, TreeError> {
        let full = path.join("/");
        let mut dir = &mut self.root;
        let mut lower = Some(self.lower);
        for (i, comp) in path[..path.len() - 1].iter().enumerate() {
            let lower_node = lower.and_then(|l| l.children.get(*comp));
            if !dir.children.contains_key(*comp) {
                // Not in this layer yet: the directory must exist below (or not at all).
                let meta = match lower_node {
                    Some(Node::Dir(d)) => d.meta,
                    Some(Node::File { kind, .. }) if !dir_has_whiteout(dir, comp) => {
                        return Err(TreeError::ThroughNonDir {
                            path: full,
                            parent: path[..=i].join("/"),
                            what: what(*kind),
                        })
                    }
                    _ => self.default_dirmeta,
                };
                self.uses_lower = true;
                dir.children
                    .insert(comp.to_string(), Node::Dir(Dir::new(meta)));
            }
            lower = match lower_node {
                Some(Node::Dir(d)) => Some(d),
                _ => None,
            };
            dir = match dir.children.get_mut(*comp) {
                Some(Node::Dir(d)) => d,
                Some(Node::File { .. }) if comp.starts_with(WH_PREFIX) => {
                    return Err(whiteout_as_dir(&full, &path[..=i]))
                }
                Some(Node::File { kind, .. }) => {
                    return Err(TreeError::ThroughNonDir {
                        path: full,
                        parent: path[..=i].join("/"),
                        what: what(*kind),
                    })
                }
                None => unreachable!("inserted above"),
            };
        }
        Ok(dir)
    }

    /// A directory entry: sets its metadata, keeping children already in this layer.
    pub fn add_dir(&mut self, path: &[&str], meta: Csum) -> Result<(), TreeError> {
        if path.is_empty() {
            self.root.meta = meta;
            return Ok(());
        }
        let name = path[path.len() - 1];
        let parent = self.parent_mut(path)?;
        match parent.children.get_mut(name) {
            Some(Node::Dir(d)) => d.meta = meta,
            _ => {
                parent
                    .children
                    .insert(name.to_string(), Node::Dir(Dir::new(meta)));
            }
        }
        Ok(())
    }

    /// A non-directory entry (replaces whatever this layer had there, except that a whiteout
    /// marker does not replace a directory of the same name).
    pub fn add_file(&mut self, path: &[&str], csum: Csum, kind: FileKind) -> Result<(), TreeError> {
        let name = path[path.len() - 1];
        let parent = self.parent_mut(path)?;
        if name.starts_with(WH_PREFIX) && matches!(parent.children.get(name), Some(Node::Dir(_))) {
            return Err(whiteout_as_dir(&path.join("/"), path));
        }
        parent
            .children
            .insert(name.to_string(), Node::File { csum, kind });
        Ok(())
    }

    /// A hard link to `target`, found in this layer or else in the layers below.
    pub fn add_hardlink(&mut self, path: &[&str], target: &[&str]) -> Result<(), TreeError> {
        let err = |why| TreeError::BadHardlink {
            path: path.join("/"),
            target: target.join("/"),
            why,
        };
        if target.is_empty() {
            return Err(err("is the root directory"));
        }
        let found = match self.root.lookup(target) {
            Some(n) => Some(n),
            None => {
                self.uses_lower = true;
                self.lower.lookup(target)
            }
        };
        match found {
            Some(Node::File { csum, kind }) => {
                let (csum, kind) = (*csum, *kind);
                self.add_file(path, csum, kind)
            }
            Some(Node::Dir(_)) => Err(err("is a directory")),
            None => Err(err("does not exist in this layer or below")),
        }
    }
}

fn whiteout_as_dir(path: &str, parent: &[&str]) -> TreeError {
    let last = parent[parent.len() - 1];
    let mut deleted: Vec<&str> = parent[..parent.len() - 1].to_vec();
    deleted.push(last.strip_prefix(WH_PREFIX).unwrap_or(last));
    TreeError::WhiteoutAsDirectory {
        path: path.to_string(),
        parent: parent.join("/"),
        deleted: deleted.join("/"),
    }
}

fn dir_has_whiteout(dir: &Dir, name: &str) -> bool {
    dir.is_marker(WH_OPAQUE) || dir.is_marker(&format!("{WH_PREFIX}{name}"))
}

/// Fold one layer's tree onto the merged tree of the layers below (OCI whiteout semantics):
/// an opaque marker empties the lower directory, `.wh.<name>` removes `<name>`, a directory
/// merges into a lower directory, anything else replaces.
pub fn apply_layer(lower: &mut Dir, upper: &Dir) {
    lower.tree = None;
    lower.meta = upper.meta;
    if upper.is_marker(WH_OPAQUE) {
        lower.children.clear();
    }
    for (name, node) in &upper.children {
        if matches!(node, Node::Dir(_)) {
            continue;
        }
        if let Some(target) = name.strip_prefix(WH_PREFIX) {
            if name != WH_OPAQUE && !target.starts_with(".wh.") {
                lower.children.remove(target);
            }
        }
    }
    for (name, node) in &upper.children {
        match node {
            Node::File { .. } if name.starts_with(WH_PREFIX) => continue,
            Node::Dir(ud) => match lower.children.get_mut(name) {
                Some(Node::Dir(ld)) => apply_layer(ld, ud),
                // A new directory without whiteouts is taken as it is, written dirtree included.
                _ if !ud.has_whiteouts() => {
                    lower.children.insert(name.clone(), Node::Dir(ud.clone()));
                }
                _ => {
                    let mut fresh = Dir::new(ud.meta);
                    apply_layer(&mut fresh, ud);
                    lower.children.insert(name.clone(), Node::Dir(fresh));
                }
            },
            Node::File { .. } => {
                lower.children.insert(name.clone(), node.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u8) -> Csum {
        [n; 32]
    }
    const DM: Csum = [0xdd; 32];

    fn file(n: u8) -> Node {
        Node::File {
            csum: c(n),
            kind: FileKind::Regular,
        }
    }

    fn build(lower: &Dir, f: impl FnOnce(&mut LayerBuilder)) -> Dir {
        let mut b = LayerBuilder::new(lower, DM);
        f(&mut b);
        b.root
    }

    fn paths(d: &Dir, prefix: &str, out: &mut Vec<String>) {
        for (n, node) in &d.children {
            let p = format!("{prefix}{n}");
            match node {
                Node::Dir(sub) => {
                    out.push(format!("{p}/"));
                    paths(sub, &format!("{p}/"), out);
                }
                Node::File { csum, .. } => out.push(format!("{p}={}", csum[0])),
            }
        }
    }

    fn listing(d: &Dir) -> Vec<String> {
        let mut v = Vec::new();
        paths(d, "", &mut v);
        v
    }

    #[test]
    fn whiteouts_and_opaque() {
        let empty = Dir::new(DM);
        let l1 = build(&empty, |b| {
            b.add_file(&["a", "x"], c(1), FileKind::Regular).unwrap();
            b.add_file(&["a", "y"], c(2), FileKind::Regular).unwrap();
            b.add_file(&["b", "z"], c(3), FileKind::Regular).unwrap();
            b.add_file(&["keep"], c(4), FileKind::Regular).unwrap();
        });
        let mut merged = Dir::new(DM);
        apply_layer(&mut merged, &l1);
        let l2 = build(&merged, |b| {
            b.add_file(&["a", ".wh.x"], c(0), FileKind::Regular)
                .unwrap();
            b.add_file(&["b", ".wh..wh..opq"], c(0), FileKind::Regular)
                .unwrap();
            b.add_file(&["b", "new"], c(5), FileKind::Regular).unwrap();
            b.add_file(&[".wh.keep"], c(0), FileKind::Regular).unwrap();
            b.add_file(&["keep"], c(6), FileKind::Regular).unwrap();
        });
        apply_layer(&mut merged, &l2);
        assert_eq!(listing(&merged), ["a/", "a/y=2", "b/", "b/new=5", "keep=6"]);
    }

    #[test]
    fn whiteout_names_as_directories_delete_nothing() {
        let empty = Dir::new(DM);
        let l1 = build(&empty, |b| {
            b.add_file(&["usr", "bin", "sh"], c(1), FileKind::Regular)
                .unwrap();
            b.add_file(&["usr", "keep"], c(2), FileKind::Regular)
                .unwrap();
        });
        let mut merged = Dir::new(DM);
        apply_layer(&mut merged, &l1);
        let l2 = build(&merged, |b| {
            b.add_file(&["usr", ".wh.bin", "x"], c(3), FileKind::Regular)
                .unwrap();
            b.add_file(&["usr", ".wh..wh..opq", "y"], c(4), FileKind::Regular)
                .unwrap();
        });
        assert!(!l2.has_whiteouts());
        apply_layer(&mut merged, &l2);
        assert_eq!(
            listing(&merged),
            [
                "usr/",
                "usr/.wh..wh..opq/",
                "usr/.wh..wh..opq/y=4",
                "usr/.wh.bin/",
                "usr/.wh.bin/x=3",
                "usr/bin/",
                "usr/bin/sh=1",
                "usr/keep=2"
            ]
        );
    }

    #[test]
    fn whiteout_that_is_also_a_directory_is_an_error() {
        let empty = Dir::new(DM);
        let mut b = LayerBuilder::new(&empty, DM);
        b.add_file(&["usr", ".wh.bin"], c(0), FileKind::Regular)
            .unwrap();
        let e = b
            .add_file(&["usr", ".wh.bin", "x"], c(1), FileKind::Regular)
            .unwrap_err();
        assert_eq!(
            e,
            TreeError::WhiteoutAsDirectory {
                path: "usr/.wh.bin/x".into(),
                parent: "usr/.wh.bin".into(),
                deleted: "usr/bin".into()
            }
        );
        assert!(e.to_string().contains("rebuild the layer"), "{e}");
        // The other order.
        let mut b = LayerBuilder::new(&empty, DM);
        b.add_file(&["usr", ".wh.bin", "x"], c(1), FileKind::Regular)
            .unwrap();
        assert!(matches!(
            b.add_file(&["usr", ".wh.bin"], c(0), FileKind::Regular),
            Err(TreeError::WhiteoutAsDirectory { .. })
        ));
    }

    #[test]
    fn implicit_parents_keep_lower_meta() {
        let mut lower = Dir::new(DM);
        lower
            .children
            .insert("usr".into(), Node::Dir(Dir::new(c(9))));
        let l = build(&lower, |b| {
            b.add_file(&["usr", "f"], c(1), FileKind::Regular).unwrap()
        });
        match l.children.get("usr") {
            Some(Node::Dir(d)) => assert_eq!(d.meta, c(9)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn write_through_symlink_rejected() {
        let mut lower = Dir::new(DM);
        lower.children.insert(
            "lnk".into(),
            Node::File {
                csum: c(1),
                kind: FileKind::Symlink,
            },
        );
        let mut b = LayerBuilder::new(&lower, DM);
        let e = b
            .add_file(&["lnk", "passwd"], c(2), FileKind::Regular)
            .unwrap_err();
        assert_eq!(
            e,
            TreeError::ThroughNonDir {
                path: "lnk/passwd".into(),
                parent: "lnk".into(),
                what: "symlink"
            }
        );
        // Within one layer too.
        let empty = Dir::new(DM);
        let mut b = LayerBuilder::new(&empty, DM);
        b.add_file(&["l"], c(1), FileKind::Symlink).unwrap();
        assert!(b
            .add_file(&["l", "x", "y"], c(2), FileKind::Regular)
            .is_err());
        // Replacing the link by a directory first is fine.
        let mut b = LayerBuilder::new(&lower, DM);
        b.add_dir(&["lnk"], DM).unwrap();
        b.add_file(&["lnk", "passwd"], c(2), FileKind::Regular)
            .unwrap();
        // So is whiting it out first.
        let mut b = LayerBuilder::new(&lower, DM);
        b.add_file(&[".wh.lnk"], c(0), FileKind::Regular).unwrap();
        b.add_file(&["lnk", "passwd"], c(2), FileKind::Regular)
            .unwrap();
    }

    #[test]
    fn hardlinks_within_and_across_layers() {
        let mut lower = Dir::new(DM);
        lower.children.insert("low".into(), file(7));
        let l = build(&lower, |b| {
            b.add_file(&["d", "f"], c(3), FileKind::Regular).unwrap();
            b.add_hardlink(&["d", "g"], &["d", "f"]).unwrap();
            b.add_hardlink(&["h"], &["low"]).unwrap();
            assert!(matches!(
                b.add_hardlink(&["i"], &["missing"]),
                Err(TreeError::BadHardlink { .. })
            ));
            assert!(matches!(
                b.add_hardlink(&["j"], &["d"]),
                Err(TreeError::BadHardlink { .. })
            ));
        });
        assert_eq!(listing(&l), ["d/", "d/f=3", "d/g=3", "h=7"]);
    }

    #[test]
    fn dir_replaces_file_and_file_replaces_dir() {
        let mut lower = Dir::new(DM);
        let mut sub = Dir::new(DM);
        sub.children.insert("x".into(), file(1));
        lower.children.insert("d".into(), Node::Dir(sub));
        lower.children.insert("f".into(), file(2));
        let l = build(&lower, |b| {
            b.add_file(&["d"], c(3), FileKind::Regular).unwrap();
            b.add_dir(&["f"], DM).unwrap();
            b.add_file(&["f", "y"], c(4), FileKind::Regular).unwrap();
        });
        let mut merged = lower.clone();
        apply_layer(&mut merged, &l);
        assert_eq!(listing(&merged), ["d=3", "f/", "f/y=4"]);
    }
}
