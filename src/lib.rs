//! Build ostree-based operating-system images with ordinary container tools.
//!
//! Two halves:
//! - [`commit`]: runs inside a Containerfile (`ostree container commit`, `lint`). It never links
//!   libostree, so the binary built with `--no-default-features` needs only glibc.
//! - `host` (cargo feature `host`, on by default): imports a finished OCI image into an ostree
//!   repository; `encapsulate` turns a commit back into an image; `serve` publishes a repository
//!   or an image's commit as an ostree HTTP remote; `machine` deploys an image into a sysroot,
//!   records it in the origin, and upgrades it (`deploy`, `switch`, `upgrade`, `status`).

pub mod commit;
/// The old name of [`commit`], kept only while src/encapsulate/encap.rs (rebuilt with the pull
/// pipeline, issue 11) still says `crate::build::report`; remove it once that lands.
#[doc(hidden)]
pub use commit as build;
pub mod cli;
#[cfg(feature = "host")]
pub mod encapsulate;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "host")]
pub mod machine;
#[cfg(feature = "host")]
pub mod serve;
