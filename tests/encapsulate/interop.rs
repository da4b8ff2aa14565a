//! Building the ostree-rs-ext helper (tests/interop, its own crate and lockfile: ostree-sys
//! `links = "ostree-1"` may appear only once in a dependency graph, so it cannot be a
//! dev-dependency). Built once per target dir, under a lock, in
//! `$CARGO_TARGET_TMPDIR/interop-target`; later runs only check it is fresh.

use std::path::PathBuf;

use super::common;

pub fn helper() -> PathBuf {
    let target = common::target_tmp().join("interop-target");
    std::fs::create_dir_all(&target).unwrap();
    let _lock = common::lock_file(&target.join(".build-lock"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = common::top().join("tests/interop/Cargo.toml");
    common::run(
        common::cmd(
            &cargo,
            [
                "build",
                "--locked",
                "--quiet",
                "--manifest-path",
                manifest.to_str().unwrap(),
            ],
        )
        .env("CARGO_TARGET_DIR", &target),
    );
    target.join("debug/ostree-container-interop")
}
