//! `ostree container commit` in real `buildah bud --isolation chroot` builds, with the vfs and
//! the overlay storage drivers, on the Debian base made with mmdebstrap; then an existing
//! machine upgrading to the result, simulated the way ostree does it: the new image's /usr, the
//! *old* image's /etc/passwd, group, shadow, gshadow and /var, and the real `systemd-sysusers
//! --root` and `systemd-tmpfiles --create --root` that run at boot.

use crate::support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{base_image, run, run_output, Buildah, Driver, Variant};

/// The build-side binary as it is bind-mounted into builds: `--no-default-features` (no
/// libostree), built once per test run into its own target dir.
fn glibc_only_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = support::target_tmp().join("glibc-only");
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
            .current_dir(support::top()));
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
    support::passwd_ids(passwd, user).unwrap_or_else(|| panic!("no user {user} in:\n{passwd}"))
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
        serde_json::from_str(&support::read(newp.join("usr/share/commit-report.json"))).unwrap();
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
        Command::new(support::bin())
            .args(["lint", "--json", "--root"])
            .arg(newp),
    );
    let lint_code = lint.status.code();
    let lint: serde_json::Value = serde_json::from_slice(&lint.stdout).unwrap();
    // The exit code says what the findings say: 1 with an error finding, else 0 (2: could not run).
    let has_error = lint["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["severity"] == "error");
    assert_eq!(lint_code, Some(i32::from(has_error)), "{lint:#}");
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

    // An existing machine: new /usr, old /etc accounts and old /var. Its directory's name
    // contains "ostree-container", as a clone of this project's does: nothing may depend on
    // the path.
    let machine_dir = tempfile::Builder::new()
        .prefix("ostree-container-machine-")
        .tempdir_in(support::target_tmp())
        .unwrap();
    let m = machine_dir.path().join("root");
    cp_a(newp, &m);
    for f in ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"] {
        fs::copy(old.path.join(f), m.join(f)).unwrap();
    }
    fs::remove_dir_all(m.join("var")).unwrap();
    cp_a(&old.path.join("var"), &m.join("var"));
    // The machine was installed from a base whose /var/lib/dpkg was still a real directory (a
    // base built before `commit` moved it, or by another tool): its database knows nothing of
    // what the new image installed.
    let machine_dpkg = m.join("var/lib/dpkg");
    fs::remove_file(&machine_dpkg).unwrap();
    cp_a(&old.path.join("usr/lib/sysimage/dpkg"), &machine_dpkg);
    assert!(!support::read(machine_dpkg.join("status")).contains(&format!("Package: {PKG}\n")));
    assert!(
        support::passwd_ids(&support::read(m.join("etc/passwd")), "builder").is_none(),
        "the old machine has no builder"
    );

    run(Command::new("systemd-sysusers").arg(format!("--root={}", m.display())));
    let tmpfiles = run_output(
        Command::new("systemd-tmpfiles")
            .arg("--create")
            .arg(format!("--root={}", m.display())),
    );
    // Every line this tool wrote did what it says (whatever tmpfiles printed about other lines).
    let tmpfiles_err = String::from_utf8_lossy(&tmpfiles.stderr);
    // The image's other tmpfiles.d files may fail outside a booted machine; ours alone must not.
    let ours = run_output(
        Command::new("systemd-tmpfiles")
            .arg("--create")
            .arg(format!("--root={}", m.display()))
            .arg("ostree-container-var.conf"),
    );
    assert!(
        ours.status.success(),
        "systemd-tmpfiles on ostree-container-var.conf: {}\n{}\n(all files: {}\n{tmpfiles_err})",
        ours.status,
        String::from_utf8_lossy(&ours.stderr),
        tmpfiles.status,
    );
    let conf = support::read(m.join("usr/lib/tmpfiles.d/ostree-container-var.conf"));
    assert_lines_applied(&m, &conf, &tmpfiles_err);

    let built_passwd = support::read(newp.join("etc/passwd"));
    let machine_passwd = support::read(m.join("etc/passwd"));
    for user in ["_chrony", "builder", "second"] {
        assert_eq!(
            ids_of(&machine_passwd, user),
            ids_of(&built_passwd, user),
            "{user} must have the build's ids"
        );
    }
    let machine_group = support::read(m.join("etc/group"));
    let (gid, members) = support::group_entry(&machine_group, "builders").expect("group builders");
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
    assert_eq!(support::read(m.join("var/lib/appstate/config")), "seeded\n");
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

/// Each `d`, `L`, `L+` and `C` line of `conf` holds in the machine root `m`: the directory with
/// its mode, the link with its target, the file. (The test's paths need no unquoting.)
fn assert_lines_applied(m: &Path, conf: &str, tmpfiles_err: &str) {
    let mut n = 0;
    for line in conf.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split(' ').collect();
        assert!(
            f.len() >= 7 && !f[1].starts_with('"'),
            "unexpected line {line:?}"
        );
        let path = m.join(f[1].trim_start_matches('/'));
        let meta = fs::symlink_metadata(&path);
        let ok = match f[0] {
            "d" => meta.is_ok_and(|x| x.is_dir() && format!("{:04o}", x.mode() & 0o7777) == f[2]),
            "L" | "L+" => fs::read_link(&path).is_ok_and(|t| t == Path::new(&f[6..].join(" "))),
            "C" => meta.is_ok_and(|x| x.is_file()),
            other => panic!("unexpected type {other} in {line:?}"),
        };
        assert!(ok, "{line:?} did not apply\n{tmpfiles_err}");
        n += 1;
    }
    assert!(n > 10, "{conf}");
}

#[test]
fn buildah_vfs_build_upgrades_an_existing_machine() {
    build_and_upgrade(Driver::Vfs);
}

#[test]
fn buildah_overlay_build_upgrades_an_existing_machine() {
    build_and_upgrade(Driver::Overlay);
}

/// Every path, type, mode, owner, size, time and link target below `root`, and every file's
/// SHA-256: what a change to the tree would show. (Not the times of directories: each
/// `buildah run` adds and removes its mount targets in /run and /etc.)
fn tree_listing(root: &Path) -> String {
    let list = run(Command::new("sh")
        .arg("-c")
        .arg(
            "cd \"$0\" && { find . -xdev -type d -printf '%p %y %m %U:%G\\n' \
         && find . -xdev ! -type d -printf '%p %y %m %U:%G %s %T@ %l\\n'; } | LC_ALL=C sort \
         && find . -xdev -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum",
        )
        .arg(root));
    assert!(list.lines().count() > 1000, "{list}");
    list
}

#[test]
fn buildah_run_on_an_ordinary_container_refuses_and_changes_nothing() {
    // An ordinary Debian container (the minbase rootfs, no ostree layout), as a dev or CI
    // container is; `buildah run` writes the same /run/.containerenv as a build's RUN step.
    let b = Buildah::new(Driver::Vfs);
    let ctr = {
        let mut c = b.cmd();
        c.args(["from", "--quiet", "scratch"]);
        run(&mut c).trim().to_string()
    };
    let mut c = b.cmd();
    c.args(["add", "--quiet", &ctr])
        .arg(support::rootfs(Variant::Minbase))
        .arg("/");
    run(&mut c);
    let tool = format!(
        "{}:/usr/local/bin/ostree-container:ro",
        glibc_only_bin().display()
    );
    let in_ctr = |args: &[&str]| {
        let mut c = b.cmd();
        c.args(["run", "--isolation", "chroot", "-v", &tool, &ctr, "--"])
            .args(args);
        run_output(&mut c)
    };
    // Someone's work in progress, and a first run so that the mount points buildah adds exist.
    let out = in_ctr(&[
        "sh",
        "-c",
        "mkdir -p /tmp/job && echo half-done > /tmp/job/state && mkdir -p /var/lib/app",
    ]);
    assert!(out.status.success(), "{out:?}");
    let root = b.mount(&ctr);
    let before = tree_listing(&root);

    let out = in_ctr(&["/usr/local/bin/ostree-container", "commit"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("engine buildah"), "{stderr}");
    assert!(stderr.contains("no ostree layout"), "{stderr}");
    assert!(stderr.contains("--allow-rewriting-root"), "{stderr}");
    // Read-only verbs run anywhere.
    let out = in_ctr(&["/usr/local/bin/ostree-container", "commit", "--dry-run"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("would remove /tmp/job"),
        "{out:?}"
    );
    let out = in_ctr(&["/usr/local/bin/ostree-container", "lint"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("error[sysroot-layout]"),
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(1), "an error finding: {out:?}");
    let after = tree_listing(&root);
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert!(
        before == after,
        "the refused commit changed the tree: {changed:#?}"
    );
    assert_eq!(support::read(root.join("tmp/job/state")), "half-done\n");
    b.umount(&ctr);
    b.rm(&ctr);
}
