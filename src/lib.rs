//! Build ostree-based operating-system images with ordinary container tools.
//!
//! Two halves:
//! - [`commit`]: runs inside a Containerfile (`ostree container commit`, `lint`). It never links
//!   libostree, so the binary built with `--no-default-features` needs only glibc.
//! - `host` (cargo feature `host`, on by default): imports a finished OCI image into an ostree
//!   repository; `encapsulate` turns a commit back into an image; `serve` publishes a repository
//!   or an image's commit as an ostree HTTP remote; `machine` deploys an image into a sysroot,
//!   records it in the origin, and upgrades it (`deploy`, `switch`, `upgrade`, `status`).

// No unsafe code in the library (system calls go through rustix and cap-std), except where a
// function allows it for a use justified by a `SAFETY:` comment (src/host/progress.rs
// `event_sink`, src/oci/proxy.rs `skopeo_command`).
#![deny(unsafe_code)]

pub mod cli;
// src/commit reaches the image only through the root opened in src/commit/rootfs.rs: clippy.toml
// lists the path-based calls that would bypass it. Unit tests build their fixtures with std::fs.
#[cfg_attr(not(test), deny(clippy::disallowed_methods))]
pub mod commit;
#[cfg(feature = "host")]
pub mod encapsulate;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "host")]
pub mod machine;
pub mod manual;
#[cfg(feature = "host")]
pub mod oci;
#[cfg(feature = "host")]
pub mod ostree;
#[cfg(feature = "host")]
pub mod serve;
