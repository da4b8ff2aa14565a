//! The examples in examples/ and the Debian base in containerfiles/debian, built with real
//! buildah, exported to ostree, deployed into a temporary sysroot with `ostree admin deploy`, and
//! checked the way their users would check a machine.
//!
//! The heavy tests use the overlay driver and the small `minbase` rootfs (with a placeholder
//! kernel); one test builds the base on vfs.

mod common;

use common::*;

/// The base image has the ostree layout, the binary where libostree's dispatch finds it, a
/// kernel in /usr/lib/modules and an empty /boot.
fn check_base_layout(b: &Buildah, image: &str) {
    let ctr = b.from(image);
    let root = b.mount(&ctr);
    let links = [
        ("home", "var/home"),
        ("root", "var/roothome"),
        ("opt", "var/opt"),
        ("srv", "var/srv"),
        ("mnt", "var/mnt"),
        ("media", "run/media"),
        ("usr/local", "../var/usrlocal"),
        ("ostree", "sysroot/ostree"),
        ("var/run", "../run"),
    ];
    for (p, want) in links {
        let got = std::fs::read_link(root.join(p))
            .unwrap_or_else(|e| panic!("/{p} should be a symlink: {e}"));
        assert_eq!(got.to_str().unwrap(), want, "/{p}");
    }
    assert!(root.join("sysroot").is_dir());
    assert_eq!(
        std::fs::read_dir(root.join("boot")).unwrap().count(),
        0,
        "/boot is empty"
    );
    let kernels: Vec<_> = std::fs::read_dir(root.join("usr/lib/modules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.join("vmlinuz").is_file() && d.join("initramfs.img").is_file())
        .collect();
    assert_eq!(
        kernels.len(),
        1,
        "one kernel with its initramfs: {kernels:?}"
    );
    let ext = root.join("usr/libexec/libostree/ext/ostree-container");
    assert!(ext.is_file(), "{} missing", ext.display());
    // libostree's own CLI reaches our binary, and the base passes lint.
    let mut c = b.cmd();
    c.args(["run", "--isolation", "chroot", &ctr, "--"]);
    c.args(["ostree", "container", "lint", "--fatal-warnings"]);
    let out = run_output(&mut c);
    assert!(out.status.success(), "base fails lint:\n{}", report(&c, &out));
    b.umount(&ctr);
    b.rm(&ctr);
}

#[test]
fn base_minbase_overlay_layout() {
    let b = Buildah::shared(Driver::Overlay);
    let image = base_image(&b, Variant::Minbase);
    check_base_layout(&b, &image);
}

/// vfs once, on a private storage: the copy from the shared one and the driver both work.
#[test]
fn base_minbase_vfs_private_storage() {
    let b = Buildah::new(Driver::Vfs);
    let image = base_image(&b, Variant::Minbase);
    check_base_layout(&b, &image);
}
