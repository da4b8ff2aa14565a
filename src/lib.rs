//! Build ostree-based operating-system images with ordinary container tools.
//!
//! Two halves:
//! - [`build`]: runs inside a Containerfile (`ostree container commit`, `lint`). It never links
//!   libostree, so the binary built with `--no-default-features` needs only glibc.
//! - `host` (cargo feature `host`, on by default): imports a finished OCI image into an ostree
//!   repository; `encapsulate` turns a commit back into an image; `serve` publishes a repository
//!   or an image's commit as an ostree HTTP remote; `machine` deploys an image into a sysroot,
//!   records it in the origin, and upgrades it (`deploy`, `switch`, `upgrade`, `status`).

pub mod build;
pub mod cli;
#[cfg(feature = "host")]
pub mod encapsulate;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "host")]
pub mod machine;
#[cfg(feature = "host")]
pub mod serve;
