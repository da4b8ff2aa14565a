//! `ostree container commit` in real `buildah bud --isolation chroot` builds, with the vfs and
//! the overlay storage drivers, on the Debian base made with mmdebstrap; then an existing
//! machine upgrading to the result, simulated the way ostree does it: the new image's /usr, the
//! *old* image's /etc/passwd, group, shadow, gshadow and /var, and the real `systemd-sysusers
//! --root` and `systemd-tmpfiles --create --root` that run at boot.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{base_image, run, run_output, Buildah, Driver, Variant};

/// The build-side binary as it is bind-mounted into builds: `--no-default-features` (no
/// libostree), built once per test run into its own target dir.
fn glibc_only_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = common::target_tmp().join("glibc-only");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--no-default-features",
                "--bin",
                "ostree-container",
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(common::top()));
        target.join("debug/ostree-container")
    })
}

#[test]
fn build_side_binary_needs_only_glibc() {
    let out = run(Command::new("ldd").arg(glibc_only_bin()));
    let libs: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // glibc (libc, libm, the loader, the vDSO) and GCC's libgcc_s, which Rust's unwinder uses and
    // every glibc-based distribution ships; nothing of libostree, glib or libselinux.
    let allowed = [
        "linux-vdso.so.1",
        "libc.so.6",
        "libm.so.6",
        "libgcc_s.so.1",
        "/lib64/ld-linux-x86-64.so.2",
    ];
    for l in &libs {
        assert!(allowed.contains(l), "unexpected library {l} in:\n{out}");
    }
    assert!(libs.contains(&"libc.so.6"), "{out}");
}

const PKG: &str = "chrony";

/// Three RUN steps, one per way of being called:
/// 1. `ostree container commit` through libostree's own dispatch (the base has `ostree` and our
///    binary at /usr/libexec/libostree/ext/ostree-container);
/// 2. libostree's `ostree` purged, then our binary called by its own name;
/// 3. in that image without libostree, the glibc-only binary bind-mounted as /usr/bin/ostree
///    (buildah 1.28 deletes a file that exists at a mount target, so this is only done where the
///    image has no `ostree`, which is the case it is for).
fn containerfile(base: &str) -> String {
    format!(
        r#"FROM {base}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {PKG} \
    && groupadd -g 2500 builders && useradd -u 1500 -U -G builders -m -d /var/home/builder -s /bin/bash builder \
    && install -d -o builder -g builders /usr/share/builder-data \
    && mkdir -p /opt/vendor/bin && printf '#!/bin/sh\necho vendor-ok\n' > /opt/vendor/bin/hello && chmod 755 /opt/vendor/bin/hello \
    && mkdir -p /var/lib/appstate && echo seeded > /var/lib/appstate/config && chown builder: /var/lib/appstate \
    && echo junk > /tmp/junk && rm -rf /var/lib/apt/lists/* \
    && ostree container commit
RUN DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq ostree && test ! -e /usr/bin/ostree \
    && /usr/libexec/libostree/ext/ostree-container commit
RUN --mount=type=bind,source=ostree-container,target=/usr/bin/ostree \
    useradd -r -u 901 -U -d /var/lib/second -s /usr/sbin/nologin second && mkdir -p /var/lib/second && chown second: /var/lib/second \
    && printf '#!/bin/sh\necho local-ok\n' > /usr/local/bin/localtool && chmod 755 /usr/local/bin/localtool \
    && ostree container commit --json > /commit-report.json && mv /commit-report.json /usr/share/commit-report.json
"#
    )
}

struct Rootfs {
    ctr: String,
    path: PathBuf,
}

fn mount_image(b: &Buildah, image: &str) -> Rootfs {
    let ctr = b.from(image);
    let path = b.mount(&ctr);
    Rootfs { ctr, path }
}

fn cp_a(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}

fn ids_of(passwd: &str, user: &str) -> (u32, u32) {
    common::passwd_ids(passwd, user).unwrap_or_else(|| panic!("no user {user} in:\n{passwd}"))
}

fn build_and_upgrade(driver: Driver) {
    let b = Buildah::new(driver);
    let base = base_image(&b, Variant::Minbase);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("Containerfile"), containerfile(&base)).unwrap();
    fs::copy(glibc_only_bin(), ctx.path().join("ostree-container")).unwrap();
    let tag = format!("localhost/commit-test-{}:latest", driver.name());
    b.bud(ctx.path(), None, &tag, &[]);

    let new = mount_image(&b, &tag);
    let old = mount_image(&b, &base);
    let newp = &new.path;

    // The image itself: the second commit found nothing fatal; /tmp is clean; the tool wrote
    // its files; the package database lives in /usr.
    let report: serde_json::Value =
        serde_json::from_str(&common::read(newp.join("usr/share/commit-report.json"))).unwrap();
    assert_eq!(report["counts"]["errors"], 0, "{report:#}");
    assert!(!newp.join("tmp/junk").exists());
    assert!(
        fs::symlink_metadata(newp.join("usr/bin/ostree")).is_err(),
        "the bind-mounted binary left something at /usr/bin/ostree"
    );
    assert_eq!(
        fs::read_link(newp.join("var/lib/dpkg")).unwrap(),
        Path::new("../../usr/lib/sysimage/dpkg")
    );
    let lint = run_output(
        Command::new(common::bin())
            .args(["lint", "--json", "--root"])
            .arg(newp),
    );
    let lint: serde_json::Value = serde_json::from_slice(&lint.stdout).unwrap();
    let leftover: Vec<&str> = lint["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    for check in [
        "var-content",
        "undeclared-accounts",
        "orphan-shadow",
        "tmp-run-content",
    ] {
        assert!(!leftover.contains(&check), "{check} after commit: {lint:#}");
    }

    // An existing machine: new /usr, old /etc accounts and old /var.
    let machine_dir = tempfile::tempdir_in(common::target_tmp()).unwrap();
    let m = machine_dir.path().join("root");
    cp_a(newp, &m);
    for f in ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"] {
        fs::copy(old.path.join(f), m.join(f)).unwrap();
    }
    fs::remove_dir_all(m.join("var")).unwrap();
    cp_a(&old.path.join("var"), &m.join("var"));
    assert!(
        common::passwd_ids(&common::read(m.join("etc/passwd")), "builder").is_none(),
        "the old machine has no builder"
    );

    run(Command::new("systemd-sysusers").arg(format!("--root={}", m.display())));
    let tmpfiles = run_output(
        Command::new("systemd-tmpfiles")
            .arg("--create")
            .arg(format!("--root={}", m.display())),
    );
    // tmpfiles exits 65 (DATAERR) or 73 (CANTCREAT) for lines it cannot apply; the lines this
    // tool wrote must all apply.
    let tmpfiles_err = String::from_utf8_lossy(&tmpfiles.stderr);
    assert!(!tmpfiles_err.contains("ostree-container"), "{tmpfiles_err}");

    let built_passwd = common::read(newp.join("etc/passwd"));
    let machine_passwd = common::read(m.join("etc/passwd"));
    for user in ["_chrony", "builder", "second"] {
        assert_eq!(
            ids_of(&machine_passwd, user),
            ids_of(&built_passwd, user),
            "{user} must have the build's ids"
        );
    }
    let machine_group = common::read(m.join("etc/group"));
    let (gid, members) = common::group_entry(&machine_group, "builders").expect("group builders");
    assert_eq!(gid, 2500);
    assert!(
        members.contains(&"builder".to_string()),
        "builder in builders: {members:?}"
    );
    // Files in /usr owned by the new user still belong to it, by name.
    let data = fs::metadata(m.join("usr/share/builder-data")).unwrap();
    assert_eq!((data.uid(), data.gid()), (1500, 2500));
    // /var directories exist with their owners.
    let (chrony_uid, chrony_gid) = ids_of(&machine_passwd, "_chrony");
    let lib_chrony = fs::metadata(m.join("var/lib/chrony")).unwrap();
    assert_eq!(
        (lib_chrony.uid(), lib_chrony.gid()),
        (chrony_uid, chrony_gid)
    );
    let appstate = fs::metadata(m.join("var/lib/appstate")).unwrap();
    assert_eq!(appstate.uid(), 1500);
    assert_eq!(common::read(m.join("var/lib/appstate/config")), "seeded\n");
    assert_eq!(fs::metadata(m.join("var/lib/second")).unwrap().uid(), 901);
    // /opt/vendor and /usr/local/bin/localtool work; dpkg knows the package.
    let chroot = |args: &[&str]| run(Command::new("chroot").arg(&m).args(args));
    assert_eq!(chroot(&["/opt/vendor/bin/hello"]).trim(), "vendor-ok");
    assert_eq!(chroot(&["/usr/local/bin/localtool"]).trim(), "local-ok");
    let status = chroot(&["dpkg-query", "-W", "-f=${Status}", PKG]);
    assert_eq!(status.trim(), "install ok installed");
    // /usr/local stays writable on the machine.
    fs::write(m.join("usr/local/bin/machine-own"), "x").unwrap();

    for r in [new, old] {
        b.umount(&r.ctr);
        b.rm(&r.ctr);
    }
}

#[test]
fn buildah_vfs_build_upgrades_an_existing_machine() {
    build_and_upgrade(Driver::Vfs);
}

#[test]
fn buildah_overlay_build_upgrades_an_existing_machine() {
    build_and_upgrade(Driver::Overlay);
}
