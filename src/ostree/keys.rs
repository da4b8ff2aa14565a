//! Every commit metadata key and image label this project reads or writes, in one place.
//!
//! # Merged image commit (`ostree/container/image/…`)
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
//! # Layer commit (`ostree/container/blob/…`)
//!
//! | key                              | type | value                                           |
//! |----------------------------------|------|-------------------------------------------------|
//! | `ostree.container.diff-id`       | s    | the layer's diff_id, as the image config lists it |
//! | `ostree.container.lower-chain`   | s    | ChainID of the layers below, when the tree took something from them |
//!
//! # diff_id record of an ostree layer (`ostree/container/diffid/…`)
//!
//! | key                              | type | value                                           |
//! |----------------------------------|------|-------------------------------------------------|
//! | `ostree.container.diff-id`       | s    | the diff_id the layer was verified against      |
//! | `ostree.container.base-commit`   | s    | the encapsulated base commit the layer holds    |
//!
//! # Labels of an encapsulated image (ostree-rs-ext's names)
//!
//! | label                              | value                                          |
//! |------------------------------------|------------------------------------------------|
//! | `ostree.commit`                    | the commit checksum                            |
//! | `ostree.final-diffid`              | diff_id of the last ostree layer               |
//! | `ostree.bootable`                  | `true` when bootable                           |
//! | `containers.bootc`                 | `1` when bootable                              |
//! | `ostree.linux`                     | the kernel version                             |
//! | `org.opencontainers.image.version` | the commit's `version` metadata                |
//!
//! Each content layer's descriptor carries the annotation `ostree.components`.
//!
//! # Summary (what `serve` generates; ostree's own names)
//!
//! Per ref: `ostree.commit.timestamp` (t, big-endian), `ostree.commit.version` (s). Top level:
//! `ostree.summary.mode` (s), `ostree.summary.last-modified` (t, big-endian),
//! `ostree.summary.tombstone-commits` (b), `ostree.summary.indexed-deltas` (b).

/// Commit key: `sha256:…` of the image manifest.
pub const MANIFEST_DIGEST: &str = "ostree.manifest-digest";
/// Commit key: the manifest JSON, as stored in the image.
pub const MANIFEST: &str = "ostree.manifest";
/// Commit key: the config JSON, as stored in the image.
pub const IMAGE_CONFIG: &str = "ostree.container.image-config";
/// Commit key: the version of the program that imported the image.
pub const IMPORTER_VERSION: &str = "ostree.importer.version";
/// Commit key: the image's version (ostree's own `version` key).
pub const VERSION: &str = "version";
/// Commit key: whether the image has a kernel.
pub const BOOTABLE: &str = "ostree.bootable";
/// Commit key of an encapsulated commit: the container command (`--cmd`).
pub const CONTAINER_CMD: &str = "ostree.container-cmd";

/// Layer commit key: the layer's diff_id.
pub const LAYER_DIFF_ID: &str = "ostree.container.diff-id";
/// Layer commit key: ChainID of the lower layers the layer's tree depends on.
pub const LOWER_CHAIN: &str = "ostree.container.lower-chain";
/// Key of an ostree layer's diff_id record (`ostree/container/diffid/…`): the encapsulated
/// base commit the layer holds (with [`LAYER_DIFF_ID`]).
pub const BASE_COMMIT: &str = "ostree.container.base-commit";

/// Label: the encapsulated commit's checksum.
pub const LABEL_COMMIT: &str = "ostree.commit";
/// Label: the diff_id of the last ostree layer; its presence makes an image encapsulated.
pub const LABEL_DIFFID: &str = "ostree.final-diffid";
/// Label: `true` when the commit is bootable.
pub const LABEL_BOOTABLE: &str = "ostree.bootable";
/// Label: `1` when bootable (bootc's name).
pub const LABEL_BOOTC: &str = "containers.bootc";
/// Label: the kernel version.
pub const LABEL_LINUX: &str = "ostree.linux";
/// Label (OCI's): the image version, source of [`VERSION`].
pub const LABEL_OCI_VERSION: &str = "org.opencontainers.image.version";
/// Layer descriptor annotation: the components a content layer holds.
pub const COMPONENTS_ANNOTATION: &str = "ostree.components";

/// Summary, per ref: the commit's timestamp (big-endian).
pub const SUMMARY_COMMIT_TIMESTAMP: &str = "ostree.commit.timestamp";
/// Summary, per ref: the commit's `version` metadata.
pub const SUMMARY_COMMIT_VERSION: &str = "ostree.commit.version";
/// Summary: the repository mode clients should expect.
pub const SUMMARY_MODE: &str = "ostree.summary.mode";
/// Summary: when it was generated (seconds since the epoch, big-endian).
pub const SUMMARY_LAST_MODIFIED: &str = "ostree.summary.last-modified";
/// Summary: whether the repository keeps tombstone commits.
pub const SUMMARY_TOMBSTONE_COMMITS: &str = "ostree.summary.tombstone-commits";
/// Summary: whether `delta-indexes/` exist.
pub const SUMMARY_INDEXED_DELTAS: &str = "ostree.summary.indexed-deltas";
