//! The examples in examples/ and the Debian base in containerfiles/debian, built with real
//! buildah, exported to ostree, deployed into a temporary sysroot with `ostree admin deploy`, and
//! checked the way their users would check a machine.
//!
//! The heavy tests use the overlay driver and the small `minbase` rootfs (with a placeholder
//! kernel); one test builds the base on vfs.

// Without the host feature only the base-image and tool-image tests run; the helpers that
// import and deploy are then unused.
#![cfg_attr(not(feature = "host"), allow(dead_code, unused_imports))]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::support::*;

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
    assert!(
        out.status.success(),
        "base fails lint:\n{}",
        report(&c, &out)
    );
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

// ---------------------------------------------------------------------------------------------
// The examples, deployed.

/// One ostree repository for all the tests of this binary, so the base image's layer is imported
/// once; imports into it are serialized. It lives in `$CARGO_TARGET_TMPDIR/examples-repo-<pid>`
/// (a static is never dropped), and repositories of earlier runs whose process is gone are
/// removed when the next run starts.
fn repo() -> &'static Path {
    static REPO: OnceLock<PathBuf> = OnceLock::new();
    REPO.get_or_init(|| {
        for e in std::fs::read_dir(target_tmp()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("examples-repo-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let d = target_tmp().join(format!("examples-repo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        ostree_init(&d, "bare");
        d
    })
}

/// Import `image` from `b`'s storage into [`repo()`] with the exporter, under `ostree_ref`.
fn export(b: &Buildah, image: &str, ostree_ref: &str) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let imgref = format!("ostree-unverified-image:{}", b.storage_ref(image));
    let start = std::time::Instant::now();
    run(cmd(
        bin().to_str().unwrap(),
        ["unencapsulate", "--quiet", "--repo"],
    )
    .arg(repo())
    .arg("--write-ref")
    .arg(ostree_ref)
    .arg(&imgref));
    eprintln!("export {image}: {:.1?}", start.elapsed());
}

/// Images built by a test, removed from the shared storage when it ends.
struct Images<'a> {
    b: &'a Buildah,
    names: Vec<String>,
}

impl Drop for Images<'_> {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            self.b.rmi(n);
        }
    }
}

/// Copy `examples/<name>` to a fresh build context (so fixtures made for it stay out of the
/// tree) and let `prepare` add files to it.
fn context(name: &str, prepare: impl FnOnce(&Path)) -> tempfile::TempDir {
    let ctx = tempfile::Builder::new()
        .prefix(&format!("ctx-{name}-"))
        .tempdir_in(target_tmp())
        .unwrap();
    run(cmd("cp", ["-a"])
        .arg(top().join("examples").join(name).join("."))
        .arg(ctx.path()));
    prepare(ctx.path());
    ctx
}

/// What an example test has once its image is deployed and has "booted".
struct Deployed {
    sysroot: Sysroot,
    deployment: PathBuf,
    /// The image's /etc/passwd and /etc/group as the build left them.
    image_passwd: String,
    image_group: String,
}

impl Deployed {
    /// A path as the machine sees it (/var is the stateroot's).
    fn path(&self, p: &str) -> PathBuf {
        self.sysroot.path_in(&self.deployment, p)
    }

    fn sh(&self, script: &str) -> String {
        self.sysroot.run_in(&self.deployment, script)
    }

    fn passwd(&self) -> String {
        read(self.deployment.join("etc/passwd"))
    }

    fn group(&self) -> String {
        read(self.deployment.join("etc/group"))
    }

    /// The user exists on the machine with the uid and gid the build gave it.
    fn assert_user_as_built(&self, user: &str) -> (u32, u32) {
        let built = passwd_ids(&self.image_passwd, user)
            .unwrap_or_else(|| panic!("the build did not create user {user}"));
        let got = passwd_ids(&self.passwd(), user)
            .unwrap_or_else(|| panic!("user {user} missing on the machine:\n{}", self.passwd()));
        assert_eq!(
            got, built,
            "{user}: (uid, gid) on the machine vs. in the build"
        );
        built
    }

    /// The group exists with the build's gid and at least the build's members.
    fn assert_group_as_built(&self, group: &str) {
        let (gid, members) = group_entry(&self.image_group, group)
            .unwrap_or_else(|| panic!("the build did not create group {group}"));
        let (got_gid, got_members) = group_entry(&self.group(), group)
            .unwrap_or_else(|| panic!("group {group} missing on the machine:\n{}", self.group()));
        assert_eq!(got_gid, gid, "gid of {group}");
        for m in members {
            assert!(
                got_members.contains(&m),
                "{m} should be in {group}: {got_members:?}"
            );
        }
    }

    /// `path` (as the machine sees it) exists, is a directory and belongs to `user`.
    fn assert_dir_owned(&self, path: &str, user: &str) {
        let p = self.path(path);
        let md = std::fs::symlink_metadata(&p)
            .unwrap_or_else(|e| panic!("{path} missing on the machine ({}): {e}", p.display()));
        assert!(md.is_dir(), "{path} should be a directory");
        let (uid, _) = passwd_ids(&self.passwd(), user).unwrap();
        assert_eq!(md.uid(), uid, "{path} should belong to {user}");
    }

    /// dpkg on the machine lists `pkg` as installed.
    fn assert_package(&self, pkg: &str) {
        let out = self.sh(&format!("dpkg-query -W -f '${{Status}}' {pkg}"));
        assert_eq!(out.trim(), "install ok installed", "dpkg-query for {pkg}");
    }
}

/// Build `examples/<name>` on the minbase test base, export it, deploy it into a new sysroot and
/// run the first boot's sysusers and tmpfiles; then hand it to `check`. Then the upgrade: local
/// edits to /etc and /var, a second version of the image (one more package with software in
/// /opt, one more user with a /var directory) deployed on top, first boot again, and `check`
/// once more plus the upgrade's own assertions.
fn example(name: &str, flags: &[&str], prepare: impl FnOnce(&Path), check: impl Fn(&Deployed)) {
    example_built_with(Tool::Buildah, name, flags, prepare, check)
}

/// What builds the first version of an example (the upgrade is always `buildah bud`).
#[derive(Clone, Copy, Debug)]
enum Tool {
    /// `buildah bud --isolation chroot`.
    Buildah,
    /// `podman build --isolation chroot`, into the same storage ([`Buildah::podman_build`]).
    Podman,
}

/// [`example`], with the first version built by `tool`.
fn example_built_with(
    tool: Tool,
    name: &str,
    flags: &[&str],
    prepare: impl FnOnce(&Path),
    check: impl Fn(&Deployed),
) {
    let b = Buildah::shared(Driver::Overlay);
    let base = base_image(&b, Variant::Minbase);
    let mut images = Images {
        b: &b,
        names: vec![],
    };
    let ctx = context(name, prepare);
    // Tags and refs of their own, so the same example built by two tools can run at once.
    let name = &match tool {
        Tool::Buildah => name.to_string(),
        Tool::Podman => format!("{name}-podman"),
    };
    let tag = format!("localhost/example-{name}-{}:v1", std::process::id());
    let start = std::time::Instant::now();
    match tool {
        Tool::Buildah => b.bud_with(ctx.path(), None, &tag, &[("BASE", &base)], flags),
        Tool::Podman => b.podman_build(ctx.path(), &tag, &[("BASE", &base)], flags),
    };
    images.names.push(tag.clone());
    eprintln!("build {name} with {tool:?}: {:.1?}", start.elapsed());
    let (image_passwd, image_group) = image_db(&b, &tag);

    let ref1 = format!("examples/{name}/v1");
    export(&b, &tag, &ref1);
    let sysroot = Sysroot::new("debian");
    let deployment = sysroot.deploy(repo(), &ref1);
    let boot = sysroot.first_boot(&deployment);
    eprintln!("first boot of {name} v1:\n{boot}");
    let d = Deployed {
        sysroot,
        deployment,
        image_passwd,
        image_group,
    };
    check(&d);
    // Every example's image is a Debian whose package database works on the machine.
    d.assert_package("systemd");

    // --- local edits on the machine, then the upgrade ---
    let etc = &d.deployment.join("etc");
    std::fs::write(etc.join("issue"), "edited by the admin\n").unwrap();
    std::fs::write(etc.join("local-admin.conf"), "site = here\n").unwrap();
    let state = d.sysroot.var().join("lib/local-state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("notes"), "kept across upgrades\n").unwrap();

    let ctx2 = tempfile::Builder::new()
        .prefix(&format!("ctx-{name}-v2-"))
        .tempdir_in(target_tmp())
        .unwrap();
    make_upgrade_context(ctx2.path());
    let tag2 = format!("localhost/example-{name}-{}:v2", std::process::id());
    b.bud(ctx2.path(), None, &tag2, &[("BASE", &tag)]);
    images.names.push(tag2.clone());
    let (image_passwd2, image_group2) = image_db(&b, &tag2);
    let ref2 = format!("examples/{name}/v2");
    export(&b, &tag2, &ref2);
    let deployment2 = d.sysroot.deploy(repo(), &ref2);
    assert_ne!(deployment2, d.deployment, "the upgrade is a new deployment");
    assert_eq!(
        d.sysroot.deployments(),
        vec![deployment2.clone(), d.deployment.clone()],
        "the upgrade is the default, the first version the rollback"
    );
    let boot = d.sysroot.first_boot(&deployment2);
    eprintln!("first boot of {name} v2:\n{boot}");
    let d2 = Deployed {
        sysroot: d.sysroot,
        deployment: deployment2,
        image_passwd: image_passwd2,
        image_group: image_group2,
    };
    // What the upgrade brings.
    d2.assert_user_as_built("auditor");
    d2.assert_dir_owned("/var/lib/auditor", "auditor");
    assert_eq!(
        d2.sh("/opt/extra-tools/bin/extra-tools").trim(),
        "extra-tools 2.0"
    );
    d2.assert_package("extra-tools");
    // What the machine had stays.
    assert_eq!(
        read(d2.deployment.join("etc/issue")),
        "edited by the admin\n"
    );
    assert_eq!(
        read(d2.deployment.join("etc/local-admin.conf")),
        "site = here\n"
    );
    assert_eq!(
        read(d2.path("/var/lib/local-state/notes")),
        "kept across upgrades\n"
    );
    // And the example itself is still all there.
    check(&d2);
}

/// The image's /etc/passwd and /etc/group, read from a mounted container.
fn image_db(b: &Buildah, image: &str) -> (String, String) {
    let ctr = b.from(image);
    let root = b.mount(&ctr);
    let r = (read(root.join("etc/passwd")), read(root.join("etc/group")));
    b.umount(&ctr);
    b.rm(&ctr);
    r
}

/// The second version every example is upgraded to: one more package (a .deb made here, with
/// software in /opt/extra-tools) and one more user with a /var directory.
fn make_upgrade_context(dir: &Path) {
    let deb = dir.join("deb");
    std::fs::create_dir_all(deb.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(deb.join("opt/extra-tools/bin")).unwrap();
    std::fs::write(
        deb.join("DEBIAN/control"),
        "Package: extra-tools\nVersion: 2.0\nArchitecture: all\nMaintainer: Tests <t@example.org>\n\
         Description: tools added by the upgrade\n",
    )
    .unwrap();
    let tool = deb.join("opt/extra-tools/bin/extra-tools");
    std::fs::write(&tool, "#!/bin/sh\necho \"extra-tools 2.0\"\n").unwrap();
    run(cmd("chmod", ["0755"]).arg(&tool));
    run(cmd("dpkg-deb", ["--root-owner-group", "-Zgzip", "--build"])
        .arg(&deb)
        .arg(dir.join("extra-tools_2.0_all.deb")));
    std::fs::remove_dir_all(&deb).unwrap();
    std::fs::write(
        dir.join("Containerfile"),
        "ARG BASE\nFROM ${BASE}\nCOPY extra-tools_2.0_all.deb /tmp/\n\
         RUN dpkg -i /tmp/extra-tools_2.0_all.deb && \\\n\
         useradd --system --user-group --home-dir /var/lib/auditor --shell /usr/sbin/nologin auditor && \\\n\
         install -d -o auditor -g auditor -m 0750 /var/lib/auditor && \\\n\
         ostree container commit\n",
    )
    .unwrap();
}

#[test]
#[cfg(feature = "host")] // imports and deploys the image
fn daemon() {
    example(
        "daemon",
        &[],
        |_| {},
        |d| {
            let (uid, _) = d.assert_user_as_built("_chrony");
            d.assert_group_as_built("_chrony");
            d.assert_dir_owned("/var/lib/chrony", "_chrony");
            assert_eq!(
                std::fs::metadata(d.path("/var/lib/chrony")).unwrap().uid(),
                uid
            );
            d.assert_package("chrony");
            assert!(
                d.path("/etc/systemd/system/multi-user.target.wants/chrony.service")
                    .symlink_metadata()
                    .is_ok(),
                "chrony.service is enabled"
            );
            assert!(read(d.path("/etc/chrony/conf.d/local.conf")).contains("allow 192.168.0.0/16"));
            let v = d.sh("chronyd --version");
            assert!(v.contains("chronyd"), "{v}");
        },
    );
}

#[test]
#[cfg(feature = "host")] // imports and deploys the image
fn opt_software() {
    example(
        "opt-software",
        &[],
        |ctx| {
            run(cmd("sh", [ctx.join("make-vendor-files")]).arg(ctx));
        },
        |d| {
            assert_eq!(
                d.sh("/opt/vendortool/bin/vendortool").trim(),
                "vendortool 1.2"
            );
            assert_eq!(
                d.sh("/opt/acme-agent/bin/acme-agent").trim(),
                "acme-agent 1.0"
            );
            d.assert_package("acme-agent");
            // The software is part of the image (under /usr), not of the machine's /var.
            assert!(d
                .deployment
                .join("usr/lib/opt/vendortool/bin/vendortool")
                .is_file());
            assert!(d
                .deployment
                .join("usr/lib/opt/acme-agent/bin/acme-agent")
                .is_file());
        },
    );
}

#[test]
#[cfg(feature = "host")] // imports and deploys the image
fn etc_config() {
    let edited = std::sync::atomic::AtomicBool::new(false);
    example(
        "etc-config",
        &[],
        |_| {},
        |d| {
            let conf = d.path("/etc/example-app/app.conf");
            assert_eq!(std::fs::metadata(&conf).unwrap().mode() & 0o7777, 0o640);
            assert!(read(d.path("/etc/sysctl.d/90-example.conf")).contains("ip_forward = 1"));
            let greeting = d.sh("example-status");
            if !edited.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // First version: the image's greeting; then the admin edits it before the upgrade.
                assert_eq!(greeting.trim(), "hello from the image");
                std::fs::write(&conf, "greeting = hello from the admin\n").unwrap();
            } else {
                // After the upgrade: the machine's edit wins the three-way merge.
                assert_eq!(greeting.trim(), "hello from the admin");
            }
        },
    );
}

#[test]
#[cfg(feature = "host")] // imports and deploys the image
fn users() {
    example("users", &[], |_| {}, check_users);
}

/// docs/usage.md tells podman users to `podman build`: the same example, built by podman.
#[test]
#[cfg(feature = "host")] // imports and deploys the image
fn users_built_with_podman() {
    example_built_with(Tool::Podman, "users", &[], |_| {}, check_users);
}

/// examples/users on the machine: accounts with the build's ids, ownership, memberships.
fn check_users(d: &Deployed) {
    let (svc_uid, _) = d.assert_user_as_built("appsvc");
    let (alice_uid, alice_gid) = d.assert_user_as_built("alice");
    assert_eq!((alice_uid, alice_gid), (2001, 2000));
    for g in ["appgroup", "developers", "adm"] {
        d.assert_group_as_built(g);
    }
    let (_, members) = group_entry(&d.group(), "appgroup").unwrap();
    assert!(members.contains(&"alice".to_string()), "alice in appgroup");
    let key = std::fs::metadata(d.path("/usr/lib/appsvc/app.key")).unwrap();
    assert_eq!(key.uid(), svc_uid, "app.key still belongs to appsvc");
    let (appgroup_gid, _) = group_entry(&d.group(), "appgroup").unwrap();
    assert_eq!(key.gid(), appgroup_gid);
    d.assert_dir_owned("/var/lib/appsvc", "appsvc");
    d.assert_dir_owned("/home/alice", "alice");
    // The tools on the machine agree.
    let id = d.sh("id alice");
    assert!(
        id.contains("uid=2001(alice)") && id.contains("appgroup"),
        "{id}"
    );
}

#[test]
#[cfg(feature = "host")] // imports and deploys the image
fn multi_run() {
    example("multi-run", &["--layers"], |_| {}, check_multi_run);
}

/// A Containerfile of several RUN steps built by podman (which caches layers by default).
#[test]
#[cfg(feature = "host")] // imports and deploys the image
fn multi_run_built_with_podman() {
    example_built_with(
        Tool::Podman,
        "multi-run",
        &["--layers"],
        |_| {},
        check_multi_run,
    );
}

/// examples/multi-run on the machine: what each of its RUN steps added.
fn check_multi_run(d: &Deployed) {
    d.assert_user_as_built("reporter");
    d.assert_group_as_built("reporter");
    d.assert_dir_owned("/var/lib/reporter", "reporter");
    d.assert_dir_owned("/var/log/reporter", "reporter");
    d.assert_package("logrotate");
    assert!(read(d.path("/etc/logrotate.d/reporter")).contains("rotate 4"));
    assert_eq!(d.sh("reporter").trim(), "reporter: 0 reports");
}

/// The bootable base (real kernel and dracut initramfs): what `scripts/demo` builds. Slow on a
/// fresh machine (the rootfs takes ~2 min), so only on request:
/// `cargo test --test it -- --ignored examples::base_bootable`.
#[test]
#[ignore]
fn base_bootable_overlay_layout() {
    let b = Buildah::shared(Driver::Overlay);
    let image = base_image(&b, Variant::Bootable);
    check_base_layout(&b, &image);
    let ctr = b.from(&image);
    let root = b.mount(&ctr);
    let kdir = std::fs::read_dir(root.join("usr/lib/modules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| d.join("vmlinuz").is_file())
        .unwrap();
    // The initramfs is dracut's, with ostree-prepare-root in it (ostree-boot's module).
    assert!(std::fs::metadata(kdir.join("initramfs.img")).unwrap().len() > 1_000_000);
    assert!(
        kdir.join("modules.dep").is_file(),
        "kernel modules beside the kernel"
    );
    let kver = kdir.file_name().unwrap().to_str().unwrap().to_string();
    let listing = b.run(
        &ctr,
        [
            "lsinitrd",
            &format!("/usr/lib/modules/{kver}/initramfs.img"),
        ],
    );
    assert!(
        listing.contains("ostree-prepare-root"),
        "the initramfs can mount an ostree deployment"
    );
    b.umount(&ctr);
    b.rm(&ctr);
}

/// containerfiles/ostree-container (the tool as an image, multi-stage) builds, and a build uses
/// it with `RUN --mount=type=bind,from=…` where libostree's dispatch looks, leaving nothing of
/// the mount behind. The builder stage gets the Rust toolchain running this test through `-v`
/// (no registry here for `rust:1-bookworm`).
#[test]
fn tool_image_mounts_into_a_build() {
    // The toolchain that runs this test: $CARGO is <toolchain>/bin/cargo.
    let cargo_bin = PathBuf::from(std::env::var("CARGO").expect("run by cargo"));
    let toolchain = cargo_bin
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    assert!(
        toolchain.join("lib/rustlib").is_dir(),
        "{} is not a self-contained Rust toolchain",
        toolchain.display()
    );
    // The registry cache, so the build inside does not download every crate again.
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{home}/.cargo"));
    let b = Buildah::shared(Driver::Overlay);
    let base = base_image(&b, Variant::Minbase);
    let id = std::process::id();
    let mut images = Images {
        b: &b,
        names: vec![],
    };

    // A Debian 12 builder: the base, with the toolchain's paths (mounted at build time).
    let ctx = tempfile::tempdir_in(target_tmp()).unwrap();
    std::fs::write(
        ctx.path().join("Containerfile"),
        format!(
            "FROM {base}\nENV CARGO_HOME=/usr/local/cargo \
             PATH=/usr/local/rust/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        ),
    )
    .unwrap();
    let builder = format!("localhost/test-rust-builder-{id}");
    b.bud(ctx.path(), None, &builder, &[]);
    images.names.push(builder.clone());

    let tool = format!("localhost/ostree-container-tool-{id}");
    let cf = top().join("containerfiles/ostree-container");
    let start = std::time::Instant::now();
    let ignore = cf.join("containerignore");
    let mut flags = vec![
        "--ignorefile".to_string(),
        ignore.to_str().unwrap().to_string(),
        "-v".to_string(),
        format!("{}:/usr/local/rust:ro", toolchain.display()),
    ];
    if Path::new(&cargo_home).join("registry").is_dir() {
        flags.push("-v".to_string());
        flags.push(format!("{cargo_home}:/usr/local/cargo"));
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    b.bud_with(
        &top(),
        Some(&cf.join("Containerfile")),
        &tool,
        &[("BUILDER", &builder)],
        &flags,
    );
    images.names.push(tool.clone());
    eprintln!("tool image: {:.0?}", start.elapsed());

    // An image whose libostree has no ostree-container: mount the tool's binary for one step.
    let ctx = tempfile::tempdir_in(target_tmp()).unwrap();
    std::fs::write(
        ctx.path().join("Containerfile"),
        format!(
            "FROM {base}\n\
             RUN rm /usr/libexec/libostree/ext/ostree-container\n\
             RUN --mount=type=bind,from={tool},source=/usr/bin/ostree-container,\
             target=/usr/libexec/libostree/ext/ostree-container \\\n    \
             useradd --system --user-group mounted && ostree container commit\n"
        ),
    )
    .unwrap();
    let derived = format!("localhost/mounted-tool-{id}");
    b.bud(ctx.path(), None, &derived, &[]);
    images.names.push(derived.clone());
    let ctr = b.from(&derived);
    let root = b.mount(&ctr);
    let sysusers = std::fs::read_dir(root.join("usr/lib/sysusers.d"))
        .unwrap()
        .map(|e| read(e.unwrap().path()))
        .collect::<String>();
    assert!(
        sysusers.lines().any(|l| l.starts_with("u mounted ")),
        "the mounted binary ran `commit`: {sysusers}"
    );
    assert!(
        !root
            .join("usr/libexec/libostree/ext/ostree-container")
            .exists(),
        "the mount left nothing behind"
    );
    b.umount(&ctr);
    b.rm(&ctr);
}
