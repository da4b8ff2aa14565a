//! Writing ostree objects: checksums computed here (SHA-256 from the `sha2` crate, which uses
//! the CPU's SHA instructions), objects handed to libostree already checksummed.
//!
//! # Object formats (ostree's GVariant serialisations; integers big-endian)
//!
//! - content ("file") object: the file header `(uuuusa(ayay))` = uid, gid, st_mode, rdev
//!   (0), symlink target (or ""), xattrs (names with their trailing NUL, sorted by name),
//!   framed as header length (u32 BE), 4 zero bytes, the header; then the file's bytes
//!   (nothing for a symlink). The object's checksum is SHA-256 over exactly this stream
//!   (libostree's `_ostree_write_variant_with_size` includes the framing), and the same stream
//!   is what `ostree_repo_write_content_trusted` takes; libostree does not re-hash it.
//! - dirmeta `(uuua(ayay))`: uid, gid, st_mode, xattrs.
//! - dirtree `(a(say)a(sayay))`: files (name, content checksum), then directories (name,
//!   dirtree checksum, dirmeta checksum), each sorted by name bytewise.
//! - commit `(a{sv}aya(say)sstayay)`: metadata, parent checksum (empty), related objects
//!   (none), subject, body, timestamp (u64 BE), root dirtree, root dirmeta.
//!
//! Metadata objects are written with `ostree_repo_write_metadata`, which checks our
//! checksum against its own.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use ostree::gio::{self, prelude::*};
use ostree::glib::{self, Variant};
use sha2::{Digest, Sha256};

use super::gvariant;
pub use super::tree::Csum;
use super::tree::{Dir, FileKind, Node};

/// Why reading or writing repository objects failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A libostree call failed.
    #[error("ostree: {context}: {source}")]
    Ostree {
        /// What was being done (names the object).
        context: String,
        /// libostree's error.
        source: glib::Error,
    },
    /// An object in the repository does not have the shape its type requires.
    #[error("malformed {what} object {csum}")]
    Malformed {
        /// The object type ("commit", "dirtree", …).
        what: &'static str,
        /// Its checksum, hex.
        csum: String,
    },
}

fn ctx(context: impl Into<String>) -> impl FnOnce(glib::Error) -> RepoError {
    let context = context.into();
    move |source| RepoError::Ostree { context, source }
}

/// Owner, mode and xattrs of a file or directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Full st_mode: type bits and permission bits (incl. setuid/setgid/sticky).
    pub mode: u32,
    /// Sorted by name; names without trailing NUL.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// File type bits of `st_mode`: directory.
pub const S_IFDIR: u32 = 0o040000;
/// File type bits of `st_mode`: regular file.
pub const S_IFREG: u32 = 0o100000;
/// File type bits of `st_mode`: symbolic link.
pub const S_IFLNK: u32 = 0o120000;

/// The content-object header (see module docs), serialised.
pub fn file_header(meta: &Meta, symlink_target: &str) -> Vec<u8> {
    gvariant::file_header(meta.uid, meta.gid, meta.mode, symlink_target, &meta.xattrs)
}

/// The dirmeta object for a directory's owner, mode and xattrs, serialised.
pub fn dirmeta(meta: &Meta) -> Vec<u8> {
    gvariant::dirmeta(meta.uid, meta.gid, meta.mode, &meta.xattrs)
}

/// A serialised content-object header: our own bytes, or a glib `Variant` built elsewhere.
pub trait HeaderBytes {
    /// The serialised header.
    fn header_bytes(&self) -> &[u8];
}

impl HeaderBytes for [u8] {
    fn header_bytes(&self) -> &[u8] {
        self
    }
}

impl HeaderBytes for Vec<u8> {
    fn header_bytes(&self) -> &[u8] {
        self
    }
}

impl HeaderBytes for Variant {
    fn header_bytes(&self) -> &[u8] {
        self.data()
    }
}

/// SHA-256 of `data`: the checksum of a metadata object from its serialised bytes.
pub fn sha256(data: &[u8]) -> Csum {
    Sha256::digest(data).into()
}

/// Checksum of a content object from its header and bytes.
pub fn content_checksum(header: &(impl HeaderBytes + ?Sized), content: &[u8]) -> Csum {
    let mut h = content_hasher(header);
    h.update(content);
    h.finalize().into()
}

/// A hasher started with the header, for content streamed in pieces.
pub fn content_hasher(header: &(impl HeaderBytes + ?Sized)) -> Sha256 {
    let mut h = Sha256::new();
    h.update(stream_prefix(header.header_bytes()));
    h
}

fn stream_prefix(header: &[u8]) -> Vec<u8> {
    let data = header;
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(&[0u8; 4]);
    v.extend_from_slice(data);
    v
}

/// Counts of what was written.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteStats {
    /// Content objects written.
    pub content_written: u64,
    /// Bytes of file content in the content objects written.
    pub content_bytes_written: u64,
    /// Content objects not written because the repository already had them.
    pub content_reused: u64,
    /// Metadata objects (dirtree, dirmeta, commit) written.
    pub metadata_written: u64,
}

/// Writes objects into one repository, remembering what it already holds.
pub struct ObjectWriter<'r> {
    /// The repository written to.
    pub repo: &'r ostree::Repo,
    known: HashSet<(u8, Csum)>,
    /// What was written so far.
    pub stats: WriteStats,
}

const CONTENT: u8 = 0;
const TREE: u8 = 1;
const META: u8 = 2;
const COMMIT: u8 = 3;

impl<'r> ObjectWriter<'r> {
    /// A writer that knows nothing yet of what `repo` holds.
    pub fn new(repo: &'r ostree::Repo) -> Self {
        ObjectWriter {
            repo,
            known: HashSet::new(),
            stats: WriteStats::default(),
        }
    }

    fn has(
        &mut self,
        kind: u8,
        objtype: ostree::ObjectType,
        csum: &Csum,
    ) -> Result<bool, RepoError> {
        if self.known.contains(&(kind, *csum)) {
            return Ok(true);
        }
        let hex = hex::encode(csum);
        let have = self
            .repo
            .has_object(objtype, &hex, gio::Cancellable::NONE)
            .map_err(ctx(format!("checking for object {hex}")))?;
        if have {
            self.known.insert((kind, *csum));
        }
        Ok(have)
    }

    /// Write a content object whose bytes are in memory. `csum` must be
    /// [`content_checksum`] of them (libostree trusts it). The bytes are handed over, not copied.
    pub fn write_content(
        &mut self,
        csum: &Csum,
        header: &(impl HeaderBytes + ?Sized),
        content: Vec<u8>,
    ) -> Result<(), RepoError> {
        if self.has(CONTENT, ostree::ObjectType::File, csum)? {
            self.stats.content_reused += 1;
            return Ok(());
        }
        let prefix = stream_prefix(header.header_bytes());
        let content_len = content.len() as u64;
        let len = prefix.len() as u64 + content_len;
        let stream = gio::MemoryInputStream::from_bytes(&glib::Bytes::from_owned(prefix));
        if content_len > 0 {
            stream.add_bytes(&glib::Bytes::from_owned(content));
        }
        let hex = hex::encode(csum);
        self.repo
            .write_content_trusted(&hex, &stream, len, gio::Cancellable::NONE)
            .map_err(ctx(format!("writing content object {hex}")))?;
        self.known.insert((CONTENT, *csum));
        self.stats.content_written += 1;
        self.stats.content_bytes_written += content_len;
        Ok(())
    }

    /// Write a content object whose bytes come from a reader of `len` bytes.
    pub fn write_content_stream(
        &mut self,
        csum: &Csum,
        header: &(impl HeaderBytes + ?Sized),
        content: impl Read + Send + 'static,
        len: u64,
    ) -> Result<(), RepoError> {
        if self.has(CONTENT, ostree::ObjectType::File, csum)? {
            self.stats.content_reused += 1;
            return Ok(());
        }
        let prefix = stream_prefix(header.header_bytes());
        let total = prefix.len() as u64 + len;
        let stream = gio::ReadInputStream::new(std::io::Cursor::new(prefix).chain(content));
        let hex = hex::encode(csum);
        self.repo
            .write_content_trusted(&hex, &stream, total, gio::Cancellable::NONE)
            .map_err(ctx(format!("writing content object {hex}")))?;
        self.known.insert((CONTENT, *csum));
        self.stats.content_written += 1;
        self.stats.content_bytes_written += len;
        Ok(())
    }

    fn write_meta(
        &mut self,
        kind: u8,
        objtype: ostree::ObjectType,
        data: &[u8],
    ) -> Result<Csum, RepoError> {
        let csum = sha256(data);
        if self.has(kind, objtype, &csum)? {
            return Ok(csum);
        }
        let ty = match objtype {
            ostree::ObjectType::DirTree => "(a(say)a(sayay))",
            ostree::ObjectType::DirMeta => "(uuua(ayay))",
            _ => "(a{sv}aya(say)sstayay)",
        };
        let v = Variant::from_data_with_type(data, glib::VariantTy::new(ty).expect("valid type"));
        let hex = hex::encode(csum);
        self.repo
            .write_metadata(objtype, Some(&hex), &v, gio::Cancellable::NONE)
            .map_err(ctx(format!("writing {objtype:?} object {hex}")))?;
        self.known.insert((kind, csum));
        self.stats.metadata_written += 1;
        Ok(csum)
    }

    /// Write the dirmeta object for `meta` (unless already there); returns its checksum.
    pub fn write_dirmeta(&mut self, meta: &Meta) -> Result<Csum, RepoError> {
        self.write_meta(META, ostree::ObjectType::DirMeta, &dirmeta(meta))
    }

    /// Write the dirtree objects of `dir` and everything below; returns the root dirtree
    /// checksum. (Dirmeta objects were written when the tree was built.)
    pub fn write_tree(&mut self, dir: &mut Dir) -> Result<Csum, RepoError> {
        if let Some(t) = dir.tree {
            return Ok(t);
        }
        for node in dir.children.values_mut() {
            if let Node::Dir(d) = node {
                self.write_tree(d)?;
            }
        }
        let files = dir.children.iter().filter_map(|(n, node)| match node {
            Node::File { csum, .. } => Some((n.as_str(), csum)),
            Node::Dir(_) => None,
        });
        let dirs = dir.children.iter().filter_map(|(n, node)| match node {
            Node::Dir(d) => Some((n.as_str(), d.tree.as_ref().expect("written above"), &d.meta)),
            Node::File { .. } => None,
        });
        let data = gvariant::dirtree(files, dirs);
        let t = self.write_meta(TREE, ostree::ObjectType::DirTree, &data)?;
        dir.tree = Some(t);
        Ok(t)
    }

    /// Write a commit object for `root` (already written with [`Self::write_tree`]).
    /// Write a commit object (`parent`: a checksum, or none).
    pub fn write_commit(
        &mut self,
        parent: Option<&str>,
        root_tree: &Csum,
        root_meta: &Csum,
        metadata: &BTreeMap<String, Variant>,
        subject: &str,
        timestamp: u64,
    ) -> Result<String, RepoError> {
        let dict = glib::VariantDict::new(None);
        for (k, v) in metadata {
            dict.insert_value(k, v);
        }
        let v = Variant::tuple_from_iter([
            dict.end(),
            parent
                .map(|p| hex::decode(p).unwrap_or_default())
                .unwrap_or_default()
                .to_variant(),
            Vec::<(String, Vec<u8>)>::new().to_variant(),
            subject.to_variant(),
            "".to_variant(),
            timestamp.to_be().to_variant(),
            root_tree.to_vec().to_variant(),
            root_meta.to_vec().to_variant(),
        ]);
        let csum = self.write_meta(COMMIT, ostree::ObjectType::Commit, &v.data_as_bytes())?;
        Ok(hex::encode(csum))
    }
}

fn csum_from(bytes: &[u8], what: &'static str, of: &str) -> Result<Csum, RepoError> {
    bytes.try_into().map_err(|_| RepoError::Malformed {
        what,
        csum: of.to_string(),
    })
}

/// Load the tree of a commit back into memory.
pub fn load_commit_tree(repo: &ostree::Repo, commit: &str) -> Result<Dir, RepoError> {
    let (tree, meta) = commit_root(repo, commit)?;
    load_tree(repo, &tree, meta)
}

/// A commit's root dirtree and dirmeta checksums.
pub fn commit_root(repo: &ostree::Repo, commit: &str) -> Result<(Csum, Csum), RepoError> {
    let v = repo
        .load_variant(ostree::ObjectType::Commit, commit)
        .map_err(ctx(format!("loading commit {commit}")))?;
    let tree = csum_from(
        v.child_value(6).fixed_array::<u8>().unwrap_or_default(),
        "commit",
        commit,
    )?;
    let meta = csum_from(
        v.child_value(7).fixed_array::<u8>().unwrap_or_default(),
        "commit",
        commit,
    )?;
    Ok((tree, meta))
}

/// Load the dirtree `tree` and everything below it, the root having the dirmeta `meta`.
pub fn load_tree(repo: &ostree::Repo, tree: &Csum, meta: Csum) -> Result<Dir, RepoError> {
    let hex = hex::encode(tree);
    let v = repo
        .load_variant(ostree::ObjectType::DirTree, &hex)
        .map_err(ctx(format!("loading dirtree {hex}")))?;
    let (files, dirs) =
        gvariant::parse_dirtree(&v.data_as_bytes()).ok_or_else(|| RepoError::Malformed {
            what: "dirtree",
            csum: hex.clone(),
        })?;
    let mut dir = Dir::new(meta);
    dir.tree = Some(*tree);
    for (name, csum) in files {
        dir.children.insert(
            name,
            Node::File {
                csum,
                kind: FileKind::Unknown,
            },
        );
    }
    for (name, t, m) in dirs {
        dir.children
            .insert(name, Node::Dir(load_tree(repo, &t, m)?));
    }
    Ok(dir)
}

/// The metadata dictionary of a commit.
pub fn commit_metadata(repo: &ostree::Repo, commit: &str) -> Result<glib::VariantDict, RepoError> {
    let v = repo
        .load_variant(ostree::ObjectType::Commit, commit)
        .map_err(ctx(format!("loading commit {commit}")))?;
    Ok(glib::VariantDict::new(Some(&v.child_value(0))))
}

/// A commit's timestamp (seconds since the epoch).
pub fn commit_timestamp(repo: &ostree::Repo, commit: &str) -> Result<u64, RepoError> {
    let v = repo
        .load_variant(ostree::ObjectType::Commit, commit)
        .map_err(ctx(format!("loading commit {commit}")))?;
    Ok(u64::from_be(v.child_value(5).get::<u64>().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let m = Meta {
            uid: 1,
            gid: 2,
            mode: S_IFREG | 0o644,
            xattrs: vec![(b"user.a".to_vec(), b"v".to_vec())],
        };
        let h = file_header(&m, "");
        // uid big-endian at the start
        assert_eq!(&h[..4], &[0, 0, 0, 1]);
        let d = dirmeta(&m);
        assert_eq!(&d[8..12], &(S_IFREG | 0o644).to_be_bytes());
    }

    /// Pinned against `ostree commit` of a symlink `hlink -> ../usr/bin/hello` owned by root.
    #[test]
    fn symlink_checksum_matches_libostree() {
        let m = Meta {
            mode: S_IFLNK | 0o777,
            ..Default::default()
        };
        let c = content_checksum(&file_header(&m, "../usr/bin/hello"), &[]);
        assert_eq!(
            hex::encode(c),
            "326fd9742928082ac17f23fee26fbe10d4c388be4d83acb7325789c439ee937d"
        );
    }

    /// Pinned against `ostree commit` of a root-owned 0644 file holding "hello\n".
    #[test]
    fn regular_checksum_matches_libostree() {
        let m = Meta {
            mode: S_IFREG | 0o644,
            ..Default::default()
        };
        let c = content_checksum(&file_header(&m, ""), b"hello\n");
        assert_eq!(
            hex::encode(c),
            "44f778e59f0a4748d6b0c90a47347212a231c4ad1e8f7ea5c5dffc7749153a6b"
        );
    }

    #[test]
    fn stream_prefix_is_size_then_padding() {
        let h = file_header(
            &Meta {
                mode: S_IFREG | 0o644,
                ..Default::default()
            },
            "",
        );
        let p = stream_prefix(&h);
        assert_eq!(
            u32::from_be_bytes(p[..4].try_into().unwrap()) as usize,
            h.len()
        );
        assert_eq!(&p[4..8], &[0, 0, 0, 0]);
    }
}
