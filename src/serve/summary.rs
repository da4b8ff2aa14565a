//! The repository summary (`summary`), generated from the refs being served.
//!
//! # Format (libostree's `OSTREE_SUMMARY_GVARIANT_STRING`, as `ostree summary -u` writes it)
//!
//! ```text
//! (a(s(taya{sv}))a{sv})
//!   refs, sorted by name (clients binary-search them):
//!     name, (size of the .commit object (t, BE), checksum (32 bytes), {
//!        "ostree.commit.timestamp": t, BE        the commit's timestamp
//!        "ostree.commit.version":   s            the commit's "version" metadata, if any
//!     })
//!   metadata:
//!     "ostree.summary.mode":              s      "archive-z2" (what we present)
//!     "ostree.summary.last-modified":     t, BE  seconds since the epoch, when generated
//!     "ostree.summary.tombstone-commits": b      false
//!     "ostree.summary.indexed-deltas":    b      true only if the repository has delta-indexes/
//! ```
//!
//! A commit object is `(a{sv}aya(say)sstayay)`: metadata, parent, related, subject, body,
//! timestamp (t, BE), root dirtree, root dirmeta.
//!
//! When the repository has a signed summary (`summary.sig`), that summary and its signature are
//! served as stored instead, since a regenerated one would not match the signature; see
//! [`super::http`].

#![warn(missing_docs)]

use std::io::Read;

use ostree::glib::{self, prelude::*, Variant, VariantDict};

use super::repo::{self, is_not_found, RepoDir};
use crate::ostree::keys;

/// Why the summary could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// A ref's commit could not be read.
    #[error("reading commit {checksum} of ref {name}: {source}")]
    Commit {
        /// The ref.
        name: String,
        /// Its commit.
        checksum: String,
        /// The error.
        source: std::io::Error,
    },
    /// A ref's commit is malformed.
    #[error("commit {checksum} of ref {name} is not a valid commit object")]
    BadCommit {
        /// The ref.
        name: String,
        /// Its commit.
        checksum: String,
    },
}

/// One ref as the summary describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefEntry {
    /// The ref's name.
    pub name: String,
    /// Its commit.
    pub checksum: String,
    /// The commit object's size in bytes.
    pub commit_size: u64,
    /// The commit's timestamp (seconds since 1970).
    pub timestamp: u64,
    /// The commit's `version` metadata, if any.
    pub version: Option<String>,
}

/// Read what the summary needs about each `(ref, commit)`. Refs whose commit object is missing
/// are left out (and reported in the second list).
pub fn ref_entries(
    repo: &RepoDir,
    refs: &[(String, String)],
) -> Result<(Vec<RefEntry>, Vec<String>), SummaryError> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for (name, checksum) in refs {
        let mut data = Vec::new();
        let r = repo
            .open_file(&repo::object_path(checksum, "commit"))
            .and_then(|mut f| f.read_to_end(&mut data));
        match r {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {
                missing.push(name.clone());
                continue;
            }
            Err(source) => {
                return Err(SummaryError::Commit {
                    name: name.clone(),
                    checksum: checksum.clone(),
                    source,
                })
            }
        }
        let (timestamp, version) = parse_commit(&data).ok_or_else(|| SummaryError::BadCommit {
            name: name.clone(),
            checksum: checksum.clone(),
        })?;
        out.push(RefEntry {
            name: name.clone(),
            checksum: checksum.clone(),
            commit_size: data.len() as u64,
            timestamp,
            version,
        });
    }
    Ok((out, missing))
}

/// The timestamp and `version` metadata of a serialised commit.
pub fn parse_commit(data: &[u8]) -> Option<(u64, Option<String>)> {
    let v = Variant::from_bytes_with_type(
        &glib::Bytes::from(data),
        glib::VariantTy::new("(a{sv}aya(say)sstayay)").ok()?,
    );
    if !v.is_normal_form() {
        return None;
    }
    let ts = u64::from_be(v.try_child_value(5)?.get::<u64>()?);
    let md = VariantDict::new(Some(&v.try_child_value(0)?));
    let version = md.lookup::<String>(keys::VERSION).ok().flatten();
    Some((ts, version))
}

/// Serialise a summary for `refs` (sorted here by name).
pub fn build(refs: &[RefEntry], last_modified: u64, indexed_deltas: bool) -> Vec<u8> {
    let mut refs: Vec<&RefEntry> = refs.iter().collect();
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    let entries: Vec<Variant> = refs
        .iter()
        .map(|r| {
            let md = VariantDict::new(None);
            md.insert_value(
                keys::SUMMARY_COMMIT_TIMESTAMP,
                &r.timestamp.to_be().to_variant(),
            );
            if let Some(v) = &r.version {
                md.insert_value(keys::SUMMARY_COMMIT_VERSION, &v.to_variant());
            }
            let csum = hex::decode(&r.checksum).expect("refs hold validated checksums");
            let inner = Variant::tuple_from_iter([
                r.commit_size.to_be().to_variant(),
                csum.to_variant(),
                md.end(),
            ]);
            Variant::tuple_from_iter([r.name.to_variant(), inner])
        })
        .collect();
    let refs_v = Variant::array_from_iter_with_type(
        glib::VariantTy::new("(s(taya{sv}))").expect("valid type"),
        entries,
    );
    let md = VariantDict::new(None);
    md.insert_value(keys::SUMMARY_MODE, &"archive-z2".to_variant());
    md.insert_value(
        keys::SUMMARY_LAST_MODIFIED,
        &last_modified.to_be().to_variant(),
    );
    md.insert_value(keys::SUMMARY_TOMBSTONE_COMMITS, &false.to_variant());
    if indexed_deltas {
        md.insert_value(keys::SUMMARY_INDEXED_DELTAS, &true.to_variant());
    }
    let v = Variant::tuple_from_iter([refs_v, md.end()]);
    v.data().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_round_trip() {
        let c = "a6c0fa4bbe5823132e0b0a105a7d60cb8333ab54d1113a830d9a9f4a1a3e0ef1";
        let refs = vec![
            RefEntry {
                name: "z".into(),
                checksum: c.into(),
                commit_size: 142,
                timestamp: 1_700_000_000,
                version: None,
            },
            RefEntry {
                name: "a/b".into(),
                checksum: c.into(),
                commit_size: 142,
                timestamp: 1_700_000_000,
                version: Some("1.2".into()),
            },
        ];
        let data = build(&refs, 1_800_000_000, false);
        let v = Variant::from_bytes_with_type(
            &glib::Bytes::from(&data[..]),
            glib::VariantTy::new("(a(s(taya{sv}))a{sv})").unwrap(),
        );
        assert!(v.is_normal_form());
        let r0 = v.child_value(0).child_value(0);
        assert_eq!(r0.child_value(0).get::<String>().unwrap(), "a/b");
        let inner = r0.child_value(1);
        assert_eq!(
            u64::from_be(inner.child_value(0).get::<u64>().unwrap()),
            142
        );
        assert_eq!(hex::encode(inner.child_value(1).data()), c);
        let md = VariantDict::new(Some(&inner.child_value(2)));
        assert_eq!(
            md.lookup::<String>(keys::SUMMARY_COMMIT_VERSION)
                .unwrap()
                .unwrap(),
            "1.2"
        );
        let top = VariantDict::new(Some(&v.child_value(1)));
        assert_eq!(
            top.lookup::<String>(keys::SUMMARY_MODE).unwrap().unwrap(),
            "archive-z2"
        );
        assert_eq!(
            u64::from_be(
                top.lookup::<u64>(keys::SUMMARY_LAST_MODIFIED)
                    .unwrap()
                    .unwrap()
            ),
            1_800_000_000
        );
    }
}
