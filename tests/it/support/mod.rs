//! Helpers every integration test shares: real buildah, skopeo and ostree, no mocks.
//!
//! The one support module of the integration tests (tests/it/main.rs): topic modules use it as
//! `crate::support`.
//!
//! # Running commands
//! - [`bin()`]: the `ostree-container` binary cargo built for this test run; [`bin_cmd()`] runs it.
//! - [`run()`] runs a [`Command`] and returns its stdout, or panics with the command line, exit
//!   status, stdout and stderr (the last lines of each). [`run_output()`] does not panic.
//!   [`run_fails()`] requires failure and returns stderr.
//! - [`ostree()`]: `ostree --repo=REPO ARGS…`, checked.
//! - [`set_xattr()`]: set an extended attribute on a path (not following symlinks).
//!
//! # Images
//! - [`rootfs()`]: the cached mmdebstrap tarball for a [`Variant`] (runs `scripts/mkrootfs`; the
//!   first call on a machine takes ~30 s for minbase, ~90 s for bootable).
//! - [`Buildah`]: a buildah with its own storage. [`Buildah::new`] makes a private one under a
//!   temporary directory (deleted on drop); [`Buildah::shared`] returns the storage shared by all
//!   tests of this cargo target dir (`$CARGO_TARGET_TMPDIR/buildah-<driver>`), where base images
//!   are cached. Methods: [`Buildah::bud`], [`Buildah::from`], [`Buildah::mount`],
//!   [`Buildah::umount`], [`Buildah::run`], [`Buildah::commit`], [`Buildah::rm`],
//!   [`Buildah::rmi`], [`Buildah::push_oci`], [`Buildah::storage_ref`] (the
//!   `containers-storage:[driver@root+runroot]image` reference skopeo and the exporter take) and
//!   [`Buildah::cmd`] for anything else.
//! - [`base_image()`]: the ostree-ready Debian base (`containerfiles/debian`) built with the
//!   current binary, present in the given storage under the returned name. It is built once per
//!   (variant, driver, binary, Containerfile, rootfs) in the shared storage, under a file lock, and
//!   copied into private storages with skopeo.
//!
//! # Deployments
//! - [`Sysroot`]: `ostree admin init-fs --modern` + `os-init` in a temporary directory;
//!   [`Sysroot::deploy`] pulls a ref from a repo and deploys it; [`Sysroot::first_boot`] runs
//!   `systemd-sysusers` and `systemd-tmpfiles --create` in a deployment with the stateroot's /var
//!   bind-mounted on its /var (in a private mount namespace), as the first boot would.
//!
//! # Other helpers
//! - [`registry`]: a real registry on loopback (plain or TLS with a login).
//! - [`http`]: a running `ostree-container serve` and a raw HTTP/1.1 client.
//! - [`oci`] (host only): hand-made OCI layouts, [`oci::Repo`], [`oci::Scratch`], and tree
//!   snapshots for comparing an ostree checkout with an independent unpack.
//!
//! # Booting
//! - [`vm`]: a disk image from a sysroot (`mkfs.ext4 -d`), its boot entry (also read back from the
//!   image with debugfs), and a qemu TCG boot with the serial console in a log.
//!
//! Everything here expects to run as root on Debian 12 with `scripts/deps` installed.

#![allow(dead_code)]

pub mod http;
#[cfg(feature = "host")]
pub mod oci;
pub mod registry;
pub mod vm;

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `ostree-container` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ostree-container"))
}

/// `ostree-container ARGS…`: the binary under test as a [`Command`].
pub fn bin_cmd<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut c = Command::new(bin());
    c.args(args);
    c
}

/// The repository's top directory.
pub fn top() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A directory shared by all test binaries of this target dir, kept between runs.
pub fn target_tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Where skopeo, buildah and podman put their big temporary files. containers/image defaults to
/// /var/tmp, and Debian 12's skopeo and buildah leave some there (a copy of each blob read from
/// containers-storage); here they stay inside the target directory. scripts/test empties it.
pub fn containers_tmp() -> PathBuf {
    let d = target_tmp().join("containers-tmp");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `skopeo --tmpdir <containers_tmp()>`: add the verb and its arguments.
pub fn skopeo() -> Command {
    let mut c = Command::new("skopeo");
    c.arg("--tmpdir").arg(containers_tmp());
    c
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
            s.push_str(&format!(" '{}'", a.replace('\'', "'\\''")));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let v: Vec<&str> = s.lines().collect();
    let skip = v.len().saturating_sub(lines);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[… {skip} lines …]\n"));
    }
    for l in &v[skip..] {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Run a command to completion, capturing its output; never panics on failure.
pub fn run_output(cmd: &mut Command) -> Output {
    let mut out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not start `{}`: {e}", describe(cmd)));
    // buildah 1.28 re-executes itself from a sealed memfd copy (chroot isolation); with several
    // buildah processes starting at once, sealing sometimes fails with EBUSY before anything
    // ran ("Close_Fd sealing memfd copy: Device or resource busy"). Nothing happened, so the
    // command is run once more.
    if String::from_utf8_lossy(&out.stderr).contains("sealing memfd copy") {
        out = cmd
            .output()
            .unwrap_or_else(|e| panic!("could not start `{}`: {e}", describe(cmd)));
    }
    out
}

/// Format a finished command for a failure message.
pub fn report(cmd: &Command, out: &Output) -> String {
    format!(
        "`{}` exited with {}\n--- stdout ---\n{}--- stderr ---\n{}",
        describe(cmd),
        out.status,
        tail(&out.stdout, 60),
        tail(&out.stderr, 120)
    )
}

/// Run a command; return its stdout, or panic with the command line and its output.
pub fn run(cmd: &mut Command) -> String {
    let out = run_output(cmd);
    if !out.status.success() {
        panic!("{}", report(cmd, &out));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command that must fail; return its stderr, or panic with the command line and its
/// output if it succeeded.
pub fn run_fails(cmd: &mut Command) -> String {
    let out = run_output(cmd);
    if out.status.success() {
        panic!("expected failure: {}", report(cmd, &out));
    }
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run `cmd`, which must refuse its input as the importer does: exit code 1 or 2 (not a
/// panic's 101, not a signal); returns stderr.
pub fn run_refused(cmd: &mut Command) -> String {
    let out = run_output(cmd);
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "exit code 1 or 2 expected: {}",
        report(cmd, &out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Set the extended attribute `name` on `path` itself (a symlink is not followed).
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", path.display()));
}

/// `Command::new(program).args(args)`.
pub fn cmd<S: AsRef<OsStr>>(program: &str, args: impl IntoIterator<Item = S>) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// `ostree --repo=REPO ARGS…`, checked; returns stdout.
pub fn ostree<S: AsRef<OsStr>>(repo: &Path, args: impl IntoIterator<Item = S>) -> String {
    let mut c = Command::new("ostree");
    c.arg(format!("--repo={}", repo.display())).args(args);
    run(&mut c)
}

/// A fresh ostree repository of `mode` (bare, archive …) in `dir` (created), with fsync off:
/// test repositories need not survive a power cut.
pub fn ostree_init(dir: &Path, mode: &str) {
    std::fs::create_dir_all(dir).unwrap();
    ostree(dir, ["init", &format!("--mode={mode}")]);
    ostree(dir, ["config", "set", "core.fsync", "false"]);
}

/// Hold an exclusive `flock` on `path` (created) until the returned file is dropped.
pub fn lock_file(path: &Path) -> File {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    rustix::fs::flock(f.as_fd(), rustix::fs::FlockOperation::LockExclusive)
        .unwrap_or_else(|e| panic!("flock {}: {e}", path.display()));
    f
}

/// Which mmdebstrap root filesystem (see `scripts/mkrootfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Small, no kernel (the base image gets a placeholder one): for tests.
    Minbase,
    /// With a kernel, dracut and ostree-boot: the real base.
    Bootable,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Minbase => "minbase",
            Variant::Bootable => "bootable",
        }
    }
}

/// The cached rootfs tarball for `variant` (built on first use by `scripts/mkrootfs`).
pub fn rootfs(variant: Variant) -> PathBuf {
    let out = run(Command::new(top().join("scripts/mkrootfs")).arg(variant.name()));
    PathBuf::from(out.trim())
}

/// Buildah storage driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Vfs,
    Overlay,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Vfs => "vfs",
            Driver::Overlay => "overlay",
        }
    }
}

/// A buildah with its own storage (root + runroot + driver).
pub struct Buildah {
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub driver: Driver,
    shared: bool,
    _tmp: Option<tempfile::TempDir>,
}

/// The common part of `buildah bud` and `podman build` (`c` holds the program, its global
/// options and the verb): chroot isolation, OCI format, `flags`, build arguments, tag and
/// context. Returns the image id (the last line printed with `--quiet`).
fn build(
    mut c: Command,
    context: &Path,
    tag: &str,
    build_args: &[(&str, &str)],
    flags: &[&str],
) -> String {
    c.args(["--isolation", "chroot", "--quiet", "--format", "oci"]);
    c.args(flags);
    for (k, v) in build_args {
        c.arg("--build-arg").arg(format!("{k}={v}"));
    }
    c.arg("-t").arg(tag).arg(context);
    run(&mut c)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

impl Buildah {
    /// Private storage in a temporary directory, removed (after unmounting) on drop.
    pub fn new(driver: Driver) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("buildah-")
            .tempdir_in(target_tmp())
            .unwrap();
        Buildah {
            root: tmp.path().join("root"),
            runroot: tmp.path().join("runroot"),
            driver,
            shared: false,
            _tmp: Some(tmp),
        }
    }

    /// The storage shared by all tests using this target dir; base images are cached there.
    /// Containers/storage locks it itself; use unique tags per test.
    pub fn shared(driver: Driver) -> Self {
        let d = target_tmp().join(format!("buildah-{}", driver.name()));
        Buildah {
            root: d.join("root"),
            runroot: d.join("runroot"),
            driver,
            shared: true,
            _tmp: None,
        }
    }

    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// `buildah --root … --runroot … --storage-driver …`, for anything the methods don't cover.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("buildah");
        c.env("TMPDIR", containers_tmp())
            .arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("--storage-driver")
            .arg(self.driver.name());
        c
    }

    /// `containers-storage:[driver@root+runroot]IMAGE`, as skopeo and the exporter take it.
    pub fn storage_ref(&self, image: &str) -> String {
        format!(
            "containers-storage:[{}@{}+{}]{}",
            self.driver.name(),
            self.root.display(),
            self.runroot.display(),
            image
        )
    }

    /// `buildah bud --isolation chroot` of `context` (with `containerfile`, default
    /// `context/Containerfile`) tagged `tag`. Returns the image id.
    pub fn bud(
        &self,
        context: &Path,
        containerfile: Option<&Path>,
        tag: &str,
        build_args: &[(&str, &str)],
    ) -> String {
        self.bud_with(context, containerfile, tag, build_args, &[])
    }

    /// [`Buildah::bud`] with extra `bud` flags (e.g. `--layers`).
    pub fn bud_with(
        &self,
        context: &Path,
        containerfile: Option<&Path>,
        tag: &str,
        build_args: &[(&str, &str)],
        flags: &[&str],
    ) -> String {
        let mut c = self.cmd();
        c.arg("bud");
        if let Some(f) = containerfile {
            c.arg("-f").arg(f);
        }
        build(c, context, tag, build_args, flags)
    }

    /// `podman build --isolation chroot` of `context/Containerfile`, tagged `tag`, into this
    /// same storage (podman and buildah share containers/storage, so the base images built by
    /// buildah are there and the result is seen by [`Buildah::storage_ref`]). libpod's own state
    /// goes under the storage root, its temporary files beside it; no cgroup manager or event
    /// log of the host is used. Returns the image id.
    pub fn podman_build(
        &self,
        context: &Path,
        tag: &str,
        build_args: &[(&str, &str)],
        flags: &[&str],
    ) -> String {
        let tmp = self.root.with_file_name("podman-tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        // podman refuses a --runroot longer than 50 characters, and the storage's runroot sits
        // in the checkout (its length is the clone's path). The same runroot, reached through
        // a short link named after its inode (podman records the runroot path in its database
        // and refuses another one later, so the name must not change while the storage lives;
        // the link is as long-lived as the storage, in /run, which a reboot empties). The
        // storage's locks and mount records stay the ones buildah uses.
        std::fs::create_dir_all(&self.runroot).unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&self.runroot).unwrap());
        let runroot = PathBuf::from(format!("/run/ostree-container-test-runroot-{ino}"));
        let points_here = || std::fs::read_link(&runroot).ok().as_deref() == Some(&*self.runroot);
        if !points_here() {
            // A stale link (an inode reused) is replaced; two builds at once may race to make it.
            let _ = std::fs::remove_file(&runroot);
            let made = std::os::unix::fs::symlink(&self.runroot, &runroot);
            assert!(
                made.is_ok() || points_here(),
                "{}: {made:?}",
                runroot.display()
            );
        }
        let podman = || {
            let mut c = Command::new("podman");
            c.env("TMPDIR", containers_tmp())
                .arg("--root")
                .arg(&self.root)
                .arg("--runroot")
                .arg(&runroot)
                .arg("--storage-driver")
                .arg(self.driver.name())
                .arg("--tmpdir")
                .arg(&tmp)
                .args(["--cgroup-manager", "cgroupfs", "--events-backend", "none"]);
            c
        };
        // libpod's database (under the storage root; `--root` overrides containers.conf's
        // static_dir) records the runroot path and refuses another: one left by a podman run
        // with another path holds only finished build containers, so it is started anew.
        let probe = podman().args(["images", "-q"]).output().unwrap();
        if String::from_utf8_lossy(&probe.stderr).contains("database configuration mismatch") {
            let _ = std::fs::remove_file(self.root.join("libpod/bolt_state.db"));
        }
        let mut c = podman();
        c.args(["build", "--pull=never"]);
        build(c, context, tag, build_args, flags)
    }

    /// `buildah from IMAGE`: a working container; returns its name.
    pub fn from(&self, image: &str) -> String {
        let mut c = self.cmd();
        c.args(["from", "--quiet", "--pull-never", image]);
        run(&mut c).trim().to_string()
    }

    /// `buildah mount CONTAINER`: the container's root directory on the host.
    pub fn mount(&self, ctr: &str) -> PathBuf {
        let mut c = self.cmd();
        c.args(["mount", ctr]);
        PathBuf::from(run(&mut c).trim())
    }

    pub fn umount(&self, ctr: &str) {
        let mut c = self.cmd();
        c.args(["umount", ctr]);
        run(&mut c);
    }

    /// `buildah run --isolation chroot CONTAINER -- ARGS…`; returns stdout.
    pub fn run<S: AsRef<OsStr>>(&self, ctr: &str, args: impl IntoIterator<Item = S>) -> String {
        let mut c = self.cmd();
        c.args(["run", "--isolation", "chroot", ctr, "--"])
            .args(args);
        run(&mut c)
    }

    /// `buildah commit CONTAINER IMAGE`; returns the image id.
    pub fn commit(&self, ctr: &str, image: &str) -> String {
        let mut c = self.cmd();
        c.args(["commit", "--quiet", "--format", "oci", ctr, image]);
        run(&mut c).trim().to_string()
    }

    pub fn rm(&self, ctr: &str) {
        let mut c = self.cmd();
        c.args(["rm", ctr]);
        run(&mut c);
    }

    /// Remove an image; returns whether buildah succeeded (it refuses images in use).
    pub fn rmi(&self, image: &str) -> bool {
        let mut c = self.cmd();
        c.args(["rmi", image]);
        run_output(&mut c).status.success()
    }

    pub fn image_exists(&self, image: &str) -> bool {
        let mut c = self.cmd();
        c.args(["inspect", "--type", "image", image]);
        run_output(&mut c).status.success()
    }

    /// `buildah inspect --type image IMAGE` as JSON.
    pub fn inspect(&self, image: &str) -> serde_json::Value {
        let mut c = self.cmd();
        c.args(["inspect", "--type", "image", image]);
        serde_json::from_str(&run(&mut c)).expect("buildah inspect: JSON")
    }

    /// Write IMAGE to an OCI layout directory as `oci_dir:tag`; returns `oci:DIR:TAG`.
    pub fn push_oci(&self, image: &str, oci_dir: &Path, tag: &str) -> String {
        let dest = format!("oci:{}:{}", oci_dir.display(), tag);
        let mut c = self.cmd();
        c.args(["push", "--quiet", image, &dest]);
        run(&mut c);
        dest
    }

    /// Write IMAGE to an OCI archive `file` as `tag` with skopeo.
    pub fn push_oci_archive(&self, image: &str, file: &Path, tag: &str) {
        let dest = format!("oci-archive:{}:{tag}", file.display());
        run(skopeo().args(["copy", "--quiet", &self.storage_ref(image), &dest]));
    }

    /// Copy IMAGE from another storage into this one with skopeo.
    pub fn copy_from(&self, other: &Buildah, image: &str) {
        let mut c = skopeo();
        c.args(["copy", "--quiet"])
            .arg(other.storage_ref(image))
            .arg(self.storage_ref(image));
        run(&mut c);
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        if self.shared {
            return;
        }
        // Remove containers (which unmounts them) and then the storage, so that the tempdir's
        // removal does not trip over mounts.
        let mut c = self.cmd();
        c.args(["rm", "--all"]);
        let _ = c.output();
        if self.driver == Driver::Overlay {
            // overlay keeps its own mount of the layer store; buildah unmounts on shutdown.
            let mut c = self.cmd();
            c.args(["rmi", "--all", "--force"]);
            let _ = c.output();
            let _ = Command::new("umount")
                .arg("-R")
                .arg(self.root.join("overlay"))
                .output();
        }
    }
}

fn sha256_of(paths: &[&Path]) -> String {
    let out = run(Command::new("sha256sum").args(paths));
    let mut c = Command::new("sh");
    c.arg("-c").arg("printf %s \"$0\" | sha256sum").arg(
        out.lines()
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" "),
    );
    run(&mut c)[..16].to_string()
}

/// Whether the base image's build ends with `ostree container commit` ("1") or skips it ("0",
/// for bringing up a new `commit`).
pub const BASE_COMMIT: &str = "1";

/// The ostree-ready Debian base image, built from `containerfiles/debian` with the binary under
/// test, present in `buildah`'s storage; returns its name (`localhost/…-base-<variant>:<key>`).
///
/// Built at most once per key in the shared storage (under a file lock), then copied into a
/// private storage when `buildah` is one.
pub fn base_image(buildah: &Buildah, variant: Variant) -> String {
    let tar = rootfs(variant);
    let cf = top().join("containerfiles");
    let bin = bin();
    let key = sha256_of(&[
        &bin,
        &tar,
        &cf.join("debian/Containerfile"),
        &cf.join("common/ostree-layout"),
    ]);
    let nocommit = if BASE_COMMIT == "1" { "" } else { "-nocommit" };
    let name = format!(
        "localhost/ostree-container-test-base-{}{nocommit}:{key}",
        variant.name()
    );
    let shared = Buildah::shared(buildah.driver);
    {
        let _lock = lock_file(&target_tmp().join(format!(
            "base-{}-{}.lock",
            variant.name(),
            buildah.driver.name()
        )));
        if !shared.image_exists(&name) {
            let ctx = tempfile::Builder::new()
                .prefix("base-ctx-")
                .tempdir_in(target_tmp())
                .unwrap();
            run(Command::new(cf.join("debian/mkcontext"))
                .arg("--variant")
                .arg(variant.name())
                .arg("--binary")
                .arg(&bin)
                .arg(ctx.path()));
            let stub = if variant == Variant::Minbase { "1" } else { "" };
            let start = std::time::Instant::now();
            shared.bud(
                ctx.path(),
                None,
                &name,
                &[("STUB_KERNEL", stub), ("COMMIT", BASE_COMMIT)],
            );
            eprintln!(
                "base_image: built {name} ({}) in {:.0?}",
                buildah.driver.name(),
                start.elapsed()
            );
            // Drop older builds of this variant (other keys); ignore images still in use.
            let mut c = shared.cmd();
            c.args(["images", "--format", "{{.Name}}:{{.Tag}}"]);
            let prefix = format!(
                "localhost/ostree-container-test-base-{}{nocommit}:",
                variant.name()
            );
            for img in run(&mut c).lines() {
                if img.starts_with(&prefix) && img != name {
                    shared.rmi(img);
                }
            }
        }
    }
    if !buildah.is_shared() && !buildah.image_exists(&name) {
        buildah.copy_from(&shared, &name);
    }
    name
}

/// Read a file of the image or deployment as a string, with the path in the panic message.
pub fn read(path: impl AsRef<Path>) -> String {
    let p = path.as_ref();
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Parse `/etc/passwd`- or `/etc/group`-style content into (name, [fields after name]).
pub fn colon_db(content: &str) -> Vec<(String, Vec<String>)> {
    content
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut it = l.split(':').map(str::to_string);
            let name = it.next().unwrap();
            (name, it.collect())
        })
        .collect()
}

/// A user's (uid, gid) from a passwd file's content.
pub fn passwd_ids(passwd: &str, user: &str) -> Option<(u32, u32)> {
    colon_db(passwd)
        .into_iter()
        .find(|(n, _)| n == user)
        .map(|(_, f)| (f[1].parse().unwrap(), f[2].parse().unwrap()))
}

/// A group's (gid, members) from a group file's content.
pub fn group_entry(group: &str, name: &str) -> Option<(u32, Vec<String>)> {
    colon_db(group)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, f)| {
            let members = f
                .get(2)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            (f[1].parse().unwrap(), members)
        })
}

/// A test sysroot: `ostree admin init-fs --modern` and `os-init` in a temporary directory.
pub struct Sysroot {
    pub path: PathBuf,
    pub osname: String,
    _tmp: tempfile::TempDir,
}

impl Drop for Sysroot {
    fn drop(&mut self) {
        // ostree makes each deployment's root immutable (chattr +i); undo it so the temporary
        // directory can be removed.
        let dir = self
            .path
            .join(format!("ostree/deploy/{}/deploy", self.osname));
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let _ = Command::new("chattr").arg("-i").arg(e.path()).output();
            }
        }
    }
}

impl Sysroot {
    pub fn new(osname: &str) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("sysroot-")
            .tempdir_in(target_tmp())
            .unwrap();
        let path = tmp.path().to_path_buf();
        run(cmd("ostree", ["admin", "init-fs", "--modern"]).arg(&path));
        run(cmd("ostree", ["admin", "os-init"])
            .arg(format!("--sysroot={}", path.display()))
            .arg(osname));
        ostree(
            &path.join("ostree/repo"),
            ["config", "set", "core.fsync", "false"],
        );
        Sysroot {
            path,
            osname: osname.to_string(),
            _tmp: tmp,
        }
    }

    pub fn repo(&self) -> PathBuf {
        self.path.join("ostree/repo")
    }

    /// The stateroot's /var (shared by all deployments).
    pub fn var(&self) -> PathBuf {
        self.path.join(format!("ostree/deploy/{}/var", self.osname))
    }

    /// Pull `ostree_ref` from `repo` into the sysroot's repo and deploy it (it becomes the
    /// default); returns the new deployment's root directory.
    pub fn deploy(&self, repo: &Path, ostree_ref: &str) -> PathBuf {
        run(cmd("ostree", ["pull-local"])
            .arg(format!("--repo={}", self.repo().display()))
            .arg(repo)
            .arg(ostree_ref));
        run(cmd("ostree", ["admin", "deploy", "--karg-none"])
            .arg(format!("--sysroot={}", self.path.display()))
            .arg(format!("--os={}", self.osname))
            .arg(ostree_ref));
        self.deployments()
            .into_iter()
            .next()
            .expect("a deployment after ostree admin deploy")
    }

    /// Deployment roots, newest (the default) first.
    pub fn deployments(&self) -> Vec<PathBuf> {
        let out =
            run(cmd("ostree", ["admin", "status"])
                .arg(format!("--sysroot={}", self.path.display())));
        // Lines look like `* debian 3f2e…c1.0` or `  debian 3f2e…c1.0 (rollback)`.
        out.lines()
            .filter_map(|l| {
                let mut w = l.trim_start_matches(['*', ' ']).split_whitespace();
                let os = w.next()?;
                let id = w.next()?;
                (os == self.osname && id.contains('.')).then(|| {
                    self.path
                        .join(format!("ostree/deploy/{}/deploy/{id}", self.osname))
                })
            })
            .collect()
    }

    /// What the first boot does before services start: `systemd-sysusers` then
    /// `systemd-tmpfiles --create --remove --boot`, with the stateroot's /var bind-mounted on
    /// the deployment's /var in a private mount namespace. Returns the combined output.
    pub fn first_boot(&self, deployment: &Path) -> String {
        let script = r#"set -e
mount --bind "$1" "$2/var"
systemd-sysusers --root="$2"
systemd-tmpfiles --create --remove --boot --root="$2" \
    --exclude-prefix=/dev --exclude-prefix=/proc --exclude-prefix=/sys --exclude-prefix=/run \
    --exclude-prefix=/tmp
"#;
        let mut c = cmd(
            "unshare",
            ["-m", "--propagation", "private", "sh", "-c", script, "sh"],
        );
        c.arg(self.var()).arg(deployment);
        let out = run_output(&mut c);
        if !out.status.success() {
            panic!("first boot failed:\n{}", report(&c, &out));
        }
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Run `script` with `/bin/sh -c` chrooted into `deployment`, with the stateroot's /var
    /// bind-mounted on its /var and /proc mounted, in a private mount namespace. Returns the
    /// output; panics with diagnostics if it fails.
    pub fn run_in(&self, deployment: &Path, script: &str) -> String {
        let outer = r#"set -e
mount --bind "$1" "$2/var"
mount -t proc proc "$2/proc"
exec chroot "$2" /bin/sh -c "$3"
"#;
        let mut c = cmd(
            "unshare",
            ["-m", "--propagation", "private", "sh", "-c", outer, "sh"],
        );
        c.arg(self.var()).arg(deployment).arg(script);
        c.env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
        run(&mut c)
    }

    /// Resolve an absolute path as the booted deployment would see it: /var/… is the stateroot's
    /// var, everything else the deployment's; symlinks inside are followed within that view
    /// (enough for the /opt -> var/opt, /home -> var/home links).
    pub fn path_in(&self, deployment: &Path, path: &str) -> PathBuf {
        let mut cur = PathBuf::from("/");
        let mut rest: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .rev()
            .collect();
        let mut hops = 0;
        while let Some(comp) = rest.pop() {
            if comp == ".." {
                cur.pop();
                continue;
            }
            let cand = cur.join(&comp);
            let host = self.host_path(deployment, &cand);
            match std::fs::read_link(&host) {
                Ok(target) => {
                    hops += 1;
                    assert!(hops < 40, "symlink loop at {}", cand.display());
                    let t = target.to_string_lossy().into_owned();
                    if t.starts_with('/') {
                        cur = PathBuf::from("/");
                    }
                    for c in t.split('/').filter(|s| !s.is_empty()).rev() {
                        rest.push(c.to_string());
                    }
                }
                _ => cur = cand,
            }
        }
        self.host_path(deployment, &cur)
    }

    fn host_path(&self, deployment: &Path, abs: &Path) -> PathBuf {
        let rel = abs.strip_prefix("/").unwrap();
        match rel.strip_prefix("var") {
            Ok(r) => self.var().join(r),
            Err(_) => deployment.join(rel),
        }
    }
}
