//! The integration tests: one binary (`[[test]] it` in Cargo.toml, `autotests = false`), one
//! module per topic, and [`support`] for what they share (the binary under test, running
//! commands, buildah and podman, skopeo, the registry, ostree, hand-made OCI layouts, the HTTP
//! client for `serve`, qemu).
//!
//! Topics:
//! - [`commit_tree`]: `commit` and `lint` on fixture trees.
//! - [`commit_buildah`]: `ostree container commit` in real buildah builds (vfs and overlay).
//! - [`docs`]: man pages, completions and docs/cli.md from the CLI definition.
//! - [`encapsulate`]: commit -> image -> commit, chunking, signatures, ostree-rs-ext interop
//!   (host only).
//! - [`examples`]: examples/ and containerfiles/debian built, deployed and checked.
//! - [`exporter`]: `image pull`, `unencapsulate`, `image list/remove/prune/…` (host only).
//! - [`machine`]: `deploy`, `switch`, `upgrade`, `status`, and the qemu boot (host only).
//! - [`serve`]: `ostree-container serve` with the real `ostree pull`.
//!
//! Run one topic with `cargo test --test it exporter::`, one test with
//! `cargo test --test it examples::users`. Everything expects root on Debian 12 with
//! `scripts/deps` installed.

mod support;

mod commit_buildah;
mod commit_tree;
mod docs;
#[cfg(feature = "host")]
mod encapsulate;
mod examples;
#[cfg(feature = "host")]
mod exporter;
#[cfg(feature = "host")]
mod machine;
#[cfg(feature = "host")] // `serve` is a host-side verb
mod serve;
