//! Metadata of the merged image commit (its keys: [`crate::ostree::keys`]).
//!
//! The commit's timestamp is the image config's `created` (0 when absent) and its subject is
//! empty, so the same image gives the same commit checksum however and whenever it is
//! imported (from `oci:`, `oci-archive:` or `containers-storage:` alike).

use std::collections::BTreeMap;

use ostree::glib::{prelude::*, Variant};

use crate::ostree::keys::{
    BOOTABLE, IMAGE_CONFIG, IMPORTER_VERSION, LABEL_OCI_VERSION, MANIFEST, MANIFEST_DIGEST, VERSION,
};
use crate::ostree::tree::{Dir, Node};

/// What goes into the merged commit's metadata.
pub struct ImageMeta<'a> {
    /// Digest of the image manifest.
    pub manifest_digest: &'a str,
    /// The manifest JSON, as stored.
    pub manifest_json: &'a str,
    /// The config JSON, as stored.
    pub config_json: &'a str,
    /// The config's labels (for the version).
    pub labels: &'a std::collections::HashMap<String, String>,
    /// The merged tree has a kernel.
    pub bootable: bool,
}

/// The merged commit's metadata (keys in the module docs).
pub fn commit_metadata(m: &ImageMeta<'_>) -> BTreeMap<String, Variant> {
    let mut md = BTreeMap::new();
    md.insert(MANIFEST_DIGEST.to_string(), m.manifest_digest.to_variant());
    md.insert(MANIFEST.to_string(), m.manifest_json.to_variant());
    md.insert(IMAGE_CONFIG.to_string(), m.config_json.to_variant());
    md.insert(
        IMPORTER_VERSION.to_string(),
        env!("CARGO_PKG_VERSION").to_variant(),
    );
    if let Some(v) = m
        .labels
        .get(LABEL_OCI_VERSION)
        .or_else(|| m.labels.get(VERSION))
    {
        md.insert(VERSION.to_string(), v.to_variant());
    }
    if m.bootable {
        md.insert(BOOTABLE.to_string(), true.to_variant());
    }
    md
}

/// The metadata of a commit that records `image` (see [`commit_metadata`]).
pub fn image_commit_metadata(
    image: &crate::oci::layout::Image,
    bootable: bool,
) -> BTreeMap<String, Variant> {
    commit_metadata(&ImageMeta {
        manifest_digest: &image.manifest_digest,
        manifest_json: &String::from_utf8_lossy(&image.manifest_raw),
        config_json: &String::from_utf8_lossy(&image.config_raw),
        labels: &image.labels(),
        bootable,
    })
}

/// Does the tree hold a kernel at `/usr/lib/modules/<kver>/vmlinuz`?
pub fn has_kernel(root: &Dir) -> bool {
    let Some(modules) = root.lookup_dir(&["usr", "lib", "modules"]) else {
        return false;
    };
    modules.children.values().any(|n| match n {
        Node::Dir(d) => matches!(d.children.get("vmlinuz"), Some(Node::File { .. })),
        Node::File { .. } => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ostree::tree::FileKind;
    use std::collections::HashMap;

    #[test]
    fn keys() {
        let mut labels = HashMap::new();
        labels.insert(LABEL_OCI_VERSION.to_string(), "42.1".to_string());
        let md = commit_metadata(&ImageMeta {
            manifest_digest: "sha256:aa",
            manifest_json: "{}",
            config_json: "{\"a\":1}",
            labels: &labels,
            bootable: true,
        });
        assert_eq!(md[MANIFEST_DIGEST].str(), Some("sha256:aa"));
        assert_eq!(md[MANIFEST].str(), Some("{}"));
        assert_eq!(md[IMAGE_CONFIG].str(), Some("{\"a\":1}"));
        assert_eq!(md[VERSION].str(), Some("42.1"));
        assert_eq!(md[BOOTABLE].get::<bool>(), Some(true));
        let md = commit_metadata(&ImageMeta {
            bootable: false,
            labels: &HashMap::new(),
            ..ImageMeta {
                manifest_digest: "d",
                manifest_json: "",
                config_json: "",
                labels: &labels,
                bootable: false,
            }
        });
        assert!(!md.contains_key(VERSION) && !md.contains_key(BOOTABLE));
    }

    #[test]
    fn kernel_detection() {
        let f = || Node::File {
            csum: [1; 32],
            kind: FileKind::Regular,
        };
        let mut kver = Dir::new([0; 32]);
        let mut root = Dir::new([0; 32]);
        let put = |root: &mut Dir, kver: Dir| {
            let mut modules = Dir::new([0; 32]);
            modules.children.insert("6.1.0".into(), Node::Dir(kver));
            let mut lib = Dir::new([0; 32]);
            lib.children.insert("modules".into(), Node::Dir(modules));
            let mut usr = Dir::new([0; 32]);
            usr.children.insert("lib".into(), Node::Dir(lib));
            root.children.insert("usr".into(), Node::Dir(usr));
        };
        put(&mut root, kver.clone());
        assert!(!has_kernel(&root));
        kver.children.insert("vmlinuz".into(), f());
        put(&mut root, kver);
        assert!(has_kernel(&root));
    }
}
