//! OCI images, the shared bottom layer under the importer ([`crate::host`]), encapsulation
//! ([`crate::encapsulate`]) and the server ([`crate::serve`]). Nothing here knows ostree.
//!
//! - [`imgref`]: image references, one parser (`ostree-…:` forms and bare containers/image
//!   transports) for every verb;
//! - [`fetch`]: reaching an image on any transport: manifest and config first, then each
//!   blob on demand; [`fetch::Source::open_layer`] and [`layer`]: the one way to read a
//!   layer (decompressed on its own thread; digest, size and diff_id verified);
//! - [`proxy`]: containers/image's own proxy (`skopeo experimental-image-proxy`);
//!   [`storage`]: `containers-storage:` read in place, where it can be;
//! - [`layout`]: reading an OCI image layout (`oci:`, `oci-archive:` in place), digests;
//!   [`write`](mod@write): writing one; [`gzip`]: decoding layers; [`time`]: RFC 3339 timestamps;
//! - [`sigpolicy`]: containers' signature policy, as `ostree-image-signed:` needs it;
//! - [`policy`] and [`limits`]: the rules for untrusted layer tar entries (paths, whiteouts,
//!   owners, link targets) and every limit they apply; [`tarext`]: the cap on tar extension
//!   headers, applied before the tar crate reads them.

pub mod fetch;
pub mod gzip;
pub mod imgref;
pub mod layer;
pub mod layout;
pub mod limits;
pub mod policy;
pub mod proxy;
pub mod sigpolicy;
pub mod storage;
pub mod tarext;
pub mod time;
pub mod write;
