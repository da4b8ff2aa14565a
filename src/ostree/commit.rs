//! The one reader of commits and trees in a repository: a commit's object, metadata and
//! detached metadata ([`Commit::load`], [`commit_metadata`], [`commit_timestamp`]); its tree
//! loaded into memory for the importer ([`load_commit_tree`]) or walked object by object for
//! export ([`walk`]: every metadata object in traversal order and every content object with
//! the paths that name it); one dirtree ([`read_dirtree`]) and one content object
//! ([`load_content`]). Checksums are [`Csum`]; dirtrees are parsed by
//! [`super::gvariant::parse_dirtree`].

use std::collections::{BTreeMap, BTreeSet};

use ostree::gio;
use ostree::glib::{self, Variant};

use super::csum::{self, Csum};
use super::gvariant::{self, ParsedTree};
use super::repo::{ctx as repo_ctx, RepoError};
use super::tree::{Dir, FileKind, Node};

#[derive(Debug, thiserror::Error)]
/// Why a commit or one of its objects could not be read.
pub enum CommitError {
    #[error("ostree: {context}: {source}")]
    /// libostree failed.
    Ostree {
        /// What was being done.
        context: String,
        /// libostree's error.
        source: glib::Error,
    },
    #[error("no such commit or ref {0:?}")]
    /// No commit or ref of that name.
    NoRev(String),
    #[error("malformed {what} object {csum}")]
    /// An object does not parse.
    Malformed {
        /// The object's type.
        what: &'static str,
        /// Its checksum.
        csum: String,
    },
    #[error(transparent)]
    /// The repository could not be read.
    Repo(#[from] RepoError),
}

pub(crate) fn ctx(context: impl Into<String>) -> impl FnOnce(glib::Error) -> CommitError {
    let context = context.into();
    move |source| CommitError::Ostree { context, source }
}

/// A commit object and what hangs off it.
pub struct Commit {
    /// The commit's checksum.
    pub checksum: String,
    /// The serialized commit object.
    pub variant: Variant,
    /// The serialized detached metadata (`a{sv}`: signatures), if any.
    pub detached: Option<Variant>,
    /// The commit's metadata.
    pub metadata: glib::VariantDict,
    /// Its subject line.
    pub subject: String,
    /// Its timestamp (seconds since 1970).
    pub timestamp: u64,
    /// The root dirtree's checksum.
    pub root_tree: Csum,
    /// The root dirmeta's checksum.
    pub root_meta: Csum,
}

/// Resolve a ref or checksum to a commit checksum.
pub fn resolve(repo: &ostree::Repo, rev: &str) -> Result<String, CommitError> {
    repo.resolve_rev(rev, true)
        .map_err(ctx(format!("resolving {rev}")))?
        .map(|s| s.to_string())
        .ok_or_else(|| CommitError::NoRev(rev.to_string()))
}

/// The root dirtree and dirmeta checksums of a commit object; None when malformed.
fn roots(v: &Variant) -> Option<(Csum, Csum)> {
    let c = |i| csum::from_bytes(v.child_value(i).fixed_array::<u8>().ok()?);
    Some((c(6)?, c(7)?))
}

fn load_commit_variant(repo: &ostree::Repo, commit: &str) -> Result<Variant, RepoError> {
    repo.load_variant(ostree::ObjectType::Commit, commit)
        .map_err(repo_ctx(format!("loading commit {commit}")))
}

impl Commit {
    /// Load the commit `rev` (a checksum or a ref) and its detached metadata.
    pub fn load(repo: &ostree::Repo, rev: &str) -> Result<Self, CommitError> {
        let checksum = resolve(repo, rev)?;
        let variant = repo
            .load_variant(ostree::ObjectType::Commit, &checksum)
            .map_err(ctx(format!("loading commit {checksum}")))?;
        let detached = repo
            .read_commit_detached_metadata(&checksum, gio::Cancellable::NONE)
            .map_err(ctx(format!("reading detached metadata of {checksum}")))?;
        let metadata = glib::VariantDict::new(Some(&variant.child_value(0)));
        let subject = variant.child_value(3).str().unwrap_or_default().to_string();
        let timestamp = u64::from_be(variant.child_value(5).get::<u64>().unwrap_or(0));
        let (root_tree, root_meta) = roots(&variant).ok_or_else(|| CommitError::Malformed {
            what: "commit",
            csum: checksum.clone(),
        })?;
        Ok(Commit {
            checksum,
            variant,
            detached,
            metadata,
            subject,
            timestamp,
            root_tree,
            root_meta,
        })
    }

    /// A string value of the commit's metadata.
    pub fn meta_string(&self, key: &str) -> Option<String> {
        self.metadata.lookup::<String>(key).ok().flatten()
    }
}

/// One directory met during the walk.
#[derive(Debug, Clone)]
pub struct WalkDir {
    /// Path in the commit, without leading `/` (`""` for the root).
    pub path: String,
    /// Its dirtree checksum.
    pub tree: Csum,
    /// Its dirmeta checksum.
    pub meta: Csum,
}

/// Everything a commit's tree references.
#[derive(Debug, Default)]
pub struct Walk {
    /// Directories in depth-first pre-order, children sorted by name (ostree's dirtree order).
    pub dirs: Vec<WalkDir>,
    /// Content objects and the paths (in the commit, without leading `/`) that name them.
    pub content: BTreeMap<Csum, Vec<String>>,
    /// Distinct metadata objects.
    pub dirtrees: BTreeSet<Csum>,
    /// Distinct dirmeta objects.
    pub dirmetas: BTreeSet<Csum>,
}

/// Read and parse the dirtree `tree`.
pub fn read_dirtree(repo: &ostree::Repo, tree: &Csum) -> Result<ParsedTree, RepoError> {
    let hex = csum::hex(tree);
    let v = repo
        .load_variant(ostree::ObjectType::DirTree, &hex)
        .map_err(repo_ctx(format!("loading dirtree {hex}")))?;
    gvariant::parse_dirtree(&v.data_as_bytes()).ok_or(RepoError::Malformed {
        what: "dirtree",
        csum: hex,
    })
}

/// Load the tree of a commit into memory.
pub fn load_commit_tree(repo: &ostree::Repo, commit: &str) -> Result<Dir, RepoError> {
    let (tree, meta) = commit_root(repo, commit)?;
    load_tree(repo, &tree, meta)
}

/// A commit's root dirtree and dirmeta checksums.
pub fn commit_root(repo: &ostree::Repo, commit: &str) -> Result<(Csum, Csum), RepoError> {
    let v = load_commit_variant(repo, commit)?;
    roots(&v).ok_or_else(|| RepoError::Malformed {
        what: "commit",
        csum: commit.to_string(),
    })
}

/// Load the dirtree `tree` and everything below it, the root having the dirmeta `meta`.
pub fn load_tree(repo: &ostree::Repo, tree: &Csum, meta: Csum) -> Result<Dir, RepoError> {
    let (files, dirs) = read_dirtree(repo, tree)?;
    let mut dir = Dir::new(meta);
    dir.tree = Some(*tree);
    for (name, csum) in files {
        let kind = FileKind::Unknown;
        dir.children.insert(name, Node::File { csum, kind });
    }
    for (name, t, m) in dirs {
        dir.children
            .insert(name, Node::Dir(load_tree(repo, &t, m)?));
    }
    Ok(dir)
}

/// The metadata dictionary of a commit.
pub fn commit_metadata(repo: &ostree::Repo, commit: &str) -> Result<glib::VariantDict, RepoError> {
    let v = load_commit_variant(repo, commit)?;
    Ok(glib::VariantDict::new(Some(&v.child_value(0))))
}

/// A commit's parent checksum, when it has one.
pub fn commit_parent(repo: &ostree::Repo, commit: &str) -> Result<Option<String>, RepoError> {
    let v = load_commit_variant(repo, commit)?;
    let parent = v.child_value(1).fixed_array::<u8>().map(csum::from_bytes);
    Ok(parent.ok().flatten().map(|p| csum::hex(&p)))
}

/// A commit's timestamp (seconds since the epoch).
pub fn commit_timestamp(repo: &ostree::Repo, commit: &str) -> Result<u64, RepoError> {
    let v = load_commit_variant(repo, commit)?;
    Ok(u64::from_be(v.child_value(5).get::<u64>().unwrap_or(0)))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Walk the tree of `commit`.
pub fn walk(repo: &ostree::Repo, commit: &Commit) -> Result<Walk, CommitError> {
    let mut w = Walk::default();
    walk_dir(
        repo,
        &mut w,
        String::new(),
        commit.root_tree,
        commit.root_meta,
    )?;
    Ok(w)
}

fn walk_dir(
    repo: &ostree::Repo,
    w: &mut Walk,
    path: String,
    tree: Csum,
    meta: Csum,
) -> Result<(), CommitError> {
    let (files, dirs) = read_dirtree(repo, &tree)?;
    w.dirtrees.insert(tree);
    w.dirmetas.insert(meta);
    w.dirs.push(WalkDir {
        path: path.clone(),
        tree,
        meta,
    });
    for (name, c) in files {
        w.content.entry(c).or_default().push(join(&path, &name));
    }
    for (name, t, m) in dirs {
        walk_dir(repo, w, join(&path, &name), t, m)?;
    }
    Ok(())
}

/// A content object as stored: owner, mode, xattrs, and either bytes or a symlink target.
pub struct ContentObject {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Full st_mode (type bits included).
    pub mode: u32,
    /// Size in bytes (0 for a symlink).
    pub size: u64,
    /// The target, for a symlink.
    pub symlink_target: Option<String>,
    /// Serialized `a(ayay)`.
    pub xattrs: Variant,
    /// The bytes, for a regular file.
    pub stream: Option<gio::InputStream>,
}

/// Load the content object `csum`.
pub fn load_content(repo: &ostree::Repo, csum: &Csum) -> Result<ContentObject, CommitError> {
    let csum = csum::hex(csum);
    let (stream, info, xattrs) = repo
        .load_file(&csum, gio::Cancellable::NONE)
        .map_err(ctx(format!("loading content object {csum}")))?;
    let mode = info.attribute_uint32("unix::mode");
    let symlink_target = if stream.is_none() {
        Some(
            info.symlink_target()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    } else {
        None
    };
    Ok(ContentObject {
        uid: info.attribute_uint32("unix::uid"),
        gid: info.attribute_uint32("unix::gid"),
        mode,
        size: if stream.is_some() {
            info.size() as u64
        } else {
            0
        },
        symlink_target,
        xattrs,
        stream,
    })
}
