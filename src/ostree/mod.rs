//! ostree repositories and objects, the shared bottom layer under the importer
//! ([`crate::host`]), encapsulation ([`crate::encapsulate`]) and the server
//! ([`crate::serve`]). Each object format is parsed and written once, here.
//!
//! - [`csum`]: the one checksum type;
//! - [`repo`]: opening a repository, its transaction, computing checksums and writing objects;
//! - [`gvariant`]: the serialised formats (file header, dirmeta, dirtree, xattrs), written and
//!   parsed;
//! - [`tree`]: in-memory trees of checksums, layer application and whiteouts;
//! - [`commit`]: the one reader of commits and trees: a commit, its metadata and detached
//!   metadata, its tree loaded into memory or walked object by object, content objects;
//! - [`refs`]: the ref namespace (`ostree/container/…`) and ref escaping;
//! - [`keys`]: every commit metadata key and image label this project reads or writes;
//! - [`tar`]: ostree-rs-ext's tar stream of a commit, both directions.

pub mod commit;
pub mod csum;
pub mod gvariant;
pub mod keys;
pub mod refs;
pub mod repo;
pub mod tar;
pub mod tree;
