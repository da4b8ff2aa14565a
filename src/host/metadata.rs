//! Metadata of the merged image commit.
//!
//! | key                              | type | value                                           |
//! |----------------------------------|------|-------------------------------------------------|
//! | `ostree.manifest-digest`         | s    | `sha256:…` of the image manifest                |
//! | `ostree.manifest`                | s    | the manifest JSON, as stored in the image       |
//! | `ostree.container.image-config`  | s    | the config JSON, as stored in the image         |
//! | `ostree.importer.version`        | s    | this program's version                          |
//! | `version`                        | s    | label `org.opencontainers.image.version` (or `version`) |
//! | `ostree.bootable`                | b    | true when `/usr/lib/modules/*/vmlinuz` exists   |
//!
//! The commit's timestamp is the image config's `created` (0 when absent) and its subject is
//! empty, so the same image gives the same commit checksum however and whenever it is
//! imported (from `oci:`, `oci-archive:` or `containers-storage:` alike).

use std::collections::BTreeMap;

use ostree::glib::{prelude::*, Variant};

use super::tree::{Dir, Node};

/// Key: `sha256:…` of the image manifest.
pub const MANIFEST_DIGEST: &str = "ostree.manifest-digest";
/// Key: the manifest JSON, as stored in the image.
pub const MANIFEST: &str = "ostree.manifest";
/// Key: the config JSON, as stored in the image.
pub const IMAGE_CONFIG: &str = "ostree.container.image-config";
/// Key: the version of the program that imported the image.
pub const IMPORTER_VERSION: &str = "ostree.importer.version";
/// Key: the image's version, from its labels.
pub const VERSION: &str = "version";
/// Key: whether the image has a kernel.
pub const BOOTABLE: &str = "ostree.bootable";

/// The image label [`VERSION`] is taken from first.
pub const LABEL_OCI_VERSION: &str = "org.opencontainers.image.version";

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
    image: &super::oci::Image,
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

/// Seconds since the epoch of an RFC 3339 timestamp (`2024-01-02T03:04:05.123Z`,
/// `…+02:00`); None when it does not parse or is before 1970.
///
/// The string is untrusted (the image config's `created`): it is sliced with `get`, never
/// by index, so a multi-byte character at any offset is "does not parse", not a panic.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = s.get(r)?;
        if !d.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        d.parse().ok()
    };
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (h, mi, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = frac.get(n..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && o.get(3..4) == Some(":") => {
            let sign = match o.get(..1) {
                Some("+") => 1,
                Some("-") => -1,
                _ => return None,
            };
            let (oh, om) = (o.get(1..3)?, o.get(4..6)?);
            if !(oh.bytes().chain(om.bytes())).all(|c| c.is_ascii_digit()) {
                return None;
            }
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let t = days * 86400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::tree::FileKind;
    use std::collections::HashMap;

    #[test]
    fn rfc3339() {
        let table = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2024-02-29T12:34:56Z", Some(1709210096)),
            ("2024-02-29T12:34:56.123456789Z", Some(1709210096)),
            ("2024-02-29T14:34:56+02:00", Some(1709210096)),
            ("2024-02-29T10:34:56-02:00", Some(1709210096)),
            ("2000-03-01T00:00:00Z", Some(951868800)),
            ("1969-12-31T23:59:59Z", None),
            ("2024-13-01T00:00:00Z", None),
            ("2024-01-01", None),
            ("2024-01-01T00:00:00", None),
            ("2024-01-01T00:00:00.Z", None),
            ("garbage-and-more-garbage", None),
            ("2024-+1-01T00:00:00Z", None),
            ("2024-01-01T00:00:00+0a:00", None),
        ];
        for (s, want) in table {
            assert_eq!(parse_rfc3339(s), want, "{s}");
        }
    }

    /// A multi-byte character at every offset of a valid timestamp (the config's `created`
    /// is untrusted) is "does not parse", never a panic.
    #[test]
    fn rfc3339_multibyte_anywhere_never_panics() {
        for base in ["2024-02-29T14:34:56+02:00", "2024-02-29T12:34:56.123Z"] {
            for i in 0..=base.len() {
                for ch in ["é", "€", "😀"] {
                    let mut s = base.to_string();
                    s.insert_str(i, ch);
                    assert_eq!(parse_rfc3339(&s), None, "{s}");
                    let mut r = base.to_string();
                    r.replace_range(i.min(base.len() - 1)..=i.min(base.len() - 1), ch);
                    let _ = parse_rfc3339(&r);
                }
            }
        }
    }

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
