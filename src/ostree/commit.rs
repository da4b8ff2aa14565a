//! Reading one commit out of a repository: its object, detached metadata, and a walk of its
//! tree that lists every metadata object in traversal order and every content object with the
//! paths that reference it.

use std::collections::{BTreeMap, BTreeSet};

use ostree::gio;
use ostree::glib::{self, Variant};

use crate::ostree::repo::RepoError;

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
    pub root_tree: String,
    /// The root dirmeta's checksum.
    pub root_meta: String,
}

/// Resolve a ref or checksum to a commit checksum.
pub fn resolve(repo: &ostree::Repo, rev: &str) -> Result<String, CommitError> {
    repo.resolve_rev(rev, true)
        .map_err(ctx(format!("resolving {rev}")))?
        .map(|s| s.to_string())
        .ok_or_else(|| CommitError::NoRev(rev.to_string()))
}

fn hex_of(v: &Variant, what: &'static str, of: &str) -> Result<String, CommitError> {
    csum_hex(v.fixed_array::<u8>().unwrap_or_default(), what, of)
}

fn csum_hex(b: &[u8], what: &'static str, of: &str) -> Result<String, CommitError> {
    if b.len() != 32 {
        return Err(CommitError::Malformed {
            what,
            csum: of.to_string(),
        });
    }
    Ok(hex::encode(b))
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
        let root_tree = hex_of(&variant.child_value(6), "commit", &checksum)?;
        let root_meta = hex_of(&variant.child_value(7), "commit", &checksum)?;
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
    pub tree: String,
    /// Its dirmeta checksum.
    pub meta: String,
}

/// Everything a commit's tree references.
#[derive(Debug, Default)]
pub struct Walk {
    /// Directories in depth-first pre-order, children sorted by name (ostree's dirtree order).
    pub dirs: Vec<WalkDir>,
    /// Content objects and the paths (in the commit, without leading `/`) that name them.
    pub content: BTreeMap<String, Vec<String>>,
    /// Distinct metadata objects.
    pub dirtrees: BTreeSet<String>,
    /// Distinct dirmeta objects.
    pub dirmetas: BTreeSet<String>,
}

type TreeVariant = (Vec<(String, Vec<u8>)>, Vec<(String, Vec<u8>, Vec<u8>)>);

/// Load a dirtree object: the raw variant and its (files, directories).
pub fn load_dirtree(
    repo: &ostree::Repo,
    csum: &str,
) -> Result<(Variant, TreeVariant), CommitError> {
    let v = repo
        .load_variant(ostree::ObjectType::DirTree, csum)
        .map_err(ctx(format!("loading dirtree {csum}")))?;
    let t: TreeVariant = v.get().ok_or_else(|| CommitError::Malformed {
        what: "dirtree",
        csum: csum.to_string(),
    })?;
    Ok((v, t))
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
        commit.root_tree.clone(),
        commit.root_meta.clone(),
    )?;
    Ok(w)
}

fn walk_dir(
    repo: &ostree::Repo,
    w: &mut Walk,
    path: String,
    tree: String,
    meta: String,
) -> Result<(), CommitError> {
    let (_, (files, dirs)) = load_dirtree(repo, &tree)?;
    w.dirtrees.insert(tree.clone());
    w.dirmetas.insert(meta.clone());
    w.dirs.push(WalkDir {
        path: path.clone(),
        tree: tree.clone(),
        meta,
    });
    for (name, c) in files {
        let c = csum_hex(&c, "dirtree", &tree)?;
        w.content.entry(c).or_default().push(join(&path, &name));
    }
    for (name, t, m) in dirs {
        let t = csum_hex(&t, "dirtree", &tree)?;
        let m = csum_hex(&m, "dirtree", &tree)?;
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
pub fn load_content(repo: &ostree::Repo, csum: &str) -> Result<ContentObject, CommitError> {
    let (stream, info, xattrs) = repo
        .load_file(csum, gio::Cancellable::NONE)
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
