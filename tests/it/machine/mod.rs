//! The machine verbs (`deploy`, `switch`, `upgrade`, `status`) on scratch sysroots, and the
//! whole chain proven on a booted system (`vm_*`, qemu with TCG; see docs/testing.md).
//!
//! Verb tests use small hand-made OCI layouts (tests/it/support/oci.rs): a root with a
//! placeholder kernel in /usr/lib/modules, enough for libostree to deploy. They read the result
//! back the way other tools would: the origin file, `ostree admin status`, the boot entries, and
//! `status --json`. Run as root.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::oci::{file, write_layout, Comp, Ent, Layer};
use crate::support::{bin_cmd, run};

/// Run, expect failure with exit status 2, return stderr.
fn refused(c: &mut Command) -> String {
    let out: Output = support::run_output(c);
    assert_eq!(
        out.status.code(),
        Some(2),
        "should be refused:\n{}",
        support::report(c, &out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(c: &mut Command) -> serde_json::Value {
    let out = run(c);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// The root of a tiny OS libostree deploys, with an /etc file for admin edits.
fn os_entries() -> Vec<Ent> {
    let mut ents = support::oci::placeholder_os();
    ents.push(file("etc/motd", b"from the image\n"));
    ents
}

/// A second layer: what version 2 adds.
fn v2_layer() -> Layer {
    Layer::new(
        &[
            Ent::Dir("usr", 0o755),
            Ent::Dir("usr/bin", 0o755),
            Ent::File(
                "usr/bin/new-tool".into(),
                0o755,
                b"#!/bin/sh\necho 2\n".to_vec(),
            ),
        ],
        Comp::Gzip,
    )
}

/// Point `tag` of the layout `dir` at version 1 (one layer) or 2 (that layer plus
/// [`v2_layer`]); returns (manifest digest, bytes of the layers version 1 lacks).
fn publish(dir: &Path, tag: &str, version: u32) -> (String, u64) {
    let base = Layer::new(&os_entries(), Comp::Gzip);
    let mut layers = vec![base];
    if version >= 2 {
        layers.push(v2_layer());
    }
    let new_bytes = layers[1..].iter().map(|l| l.size).sum();
    let v = version.to_string();
    write_layout(
        dir,
        tag,
        &layers,
        &[("org.opencontainers.image.version", &v)],
        "2024-01-01T00:00:00Z",
    );
    let index: serde_json::Value =
        serde_json::from_str(&support::read(dir.join("index.json"))).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    (digest, new_bytes)
}

/// A scratch sysroot (init-fs + os-init debian) and a layout directory beside it.
struct Scene {
    sysroot: support::Sysroot,
    layout: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let tmp = tempfile::Builder::new()
            .prefix("machine-")
            .tempdir_in(support::target_tmp())
            .unwrap();
        Scene {
            sysroot: support::Sysroot::new("debian"),
            layout: tmp.path().join("oci"),
            _tmp: tmp,
        }
    }

    fn imgref(&self, tag: &str) -> String {
        format!(
            "ostree-unverified-image:oci:{}:{tag}",
            self.layout.display()
        )
    }

    fn sr(&self) -> String {
        format!("--sysroot={}", self.sysroot.path.display())
    }

    /// `ostree-container VERB --sysroot DIR ARGS…`
    fn verb(&self, verb: &str, args: &[&str]) -> Command {
        let mut c = bin_cmd([verb, &self.sr()]);
        c.args(args);
        c
    }

    fn status(&self) -> serde_json::Value {
        json(&mut self.verb("status", &["--json"]))
    }

    /// The origin file of a deployment listed by `status --json`.
    fn origin_file(&self, d: &serde_json::Value) -> String {
        support::read(
            self.sysroot
                .path
                .join(format!("{}.origin", d["path"].as_str().unwrap())),
        )
    }

    /// The boot entries' `options` lines.
    fn boot_options(&self) -> Vec<String> {
        let dir = self.sysroot.path.join("boot/loader/entries");
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| support::read(e.unwrap().path()))
            .flat_map(|s| {
                s.lines()
                    .filter_map(|l| l.strip_prefix("options ").map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect();
        v.sort();
        v
    }
}

/// deploy writes the origin as ostree-rs-ext does (read back from the file, by `ostree admin
/// status` and by `status --json`); `upgrade --check` says "up to date" and then, once the tag
/// has moved, how much the new version downloads; `upgrade` deploys it, keeping the first as
/// the rollback; then it is up to date again.
#[test]
fn deploy_status_and_upgrade_when_the_tag_moves() {
    let s = Scene::new();
    let (digest1, _) = publish(&s.layout, "stable", 1);
    let imgref = s.imgref("stable");
    let out = json(&mut s.verb(
        "deploy",
        &[
            "--json",
            "--karg",
            "console=ttyS0",
            "--karg",
            "quiet",
            &imgref,
        ],
    ));
    assert_eq!(out["image"], imgref.as_str());
    assert_eq!(out["manifest_digest"], digest1.as_str());
    assert_eq!(out["staged"], false);
    assert_eq!(out["stateroot"], "debian");
    let commit1 = out["commit"].as_str().unwrap().to_string();

    // The origin, as ostree-rs-ext, rpm-ostree and bootc write and read it.
    let st = s.status();
    let deps = st["deployments"].as_array().unwrap();
    assert_eq!(deps.len(), 1, "{st}");
    let d = &deps[0];
    assert_eq!(
        s.origin_file(d),
        format!("[origin]\ncontainer-image-reference={imgref}\n")
    );
    assert_eq!(d["image"], imgref.as_str());
    assert_eq!(d["checksum"], commit1.as_str());
    assert_eq!(d["manifest_digest"], digest1.as_str());
    assert_eq!(d["version"], "1");
    assert_eq!(d["default"], true);
    assert_eq!(d["booted"], false);
    // libostree itself lists it, and wrote a boot entry with our kernel arguments.
    let admin = run(Command::new("ostree").args(["admin", "status", &s.sr()]));
    assert!(admin.contains(&format!("debian {commit1}.0")), "{admin}");
    // libostree 2022.7 shows the commit's version; it reads our origin but knows no image type.
    assert!(admin.contains("Version: 1"), "{admin}");
    let opts = s.boot_options();
    assert_eq!(opts.len(), 1, "{opts:?}");
    assert!(
        opts[0].starts_with("console=ttyS0 quiet ostree=/ostree/boot."),
        "{opts:?}"
    );
    let text = run(&mut s.verb("status", &[]));
    assert!(
        text.contains(&format!("debian {commit1}.0 (default)")),
        "{text}"
    );
    assert!(text.contains(&format!("image: {imgref}")), "{text}");
    assert!(text.contains("version: 1"), "{text}");

    // Nothing new yet.
    let c = json(&mut s.verb("upgrade", &["--check", "--json"]));
    assert_eq!(c["check"]["update_available"], false, "{c}");
    assert_eq!(c["check"]["download_bytes"], 0);
    let text = run(&mut s.verb("upgrade", &["--check"]));
    assert!(text.contains("already up to date"), "{text}");
    let text = run(&mut s.verb("upgrade", &[]));
    assert!(text.contains("already up to date"), "{text}");
    assert_eq!(s.status()["deployments"].as_array().unwrap().len(), 1);

    // The tag moves to version 2: one more layer.
    let (digest2, new_bytes) = publish(&s.layout, "stable", 2);
    assert!(new_bytes > 0);
    let c = json(&mut s.verb("upgrade", &["--check", "--json"]));
    let check = &c["check"];
    assert_eq!(check["update_available"], true, "{c}");
    assert_eq!(check["deployed_digest"], digest1.as_str());
    assert_eq!(check["latest_digest"], digest2.as_str());
    assert_eq!(check["latest_version"], "2");
    assert_eq!(check["layers"], 2);
    assert_eq!(check["layers_to_download"], 1);
    assert_eq!(check["download_bytes"], new_bytes);
    assert!(c["deployed"].is_null(), "--check deploys nothing");
    let text = run(&mut s.verb("upgrade", &["--check"]));
    assert!(
        text.contains(&format!("new version {digest2} (version 2)")),
        "{text}"
    );
    assert_eq!(
        s.status()["deployments"].as_array().unwrap().len(),
        1,
        "--check changed nothing"
    );

    // Apply it.
    let up = json(&mut s.verb("upgrade", &["--json"]));
    assert_eq!(up["deployed"]["manifest_digest"], digest2.as_str(), "{up}");
    let st = s.status();
    let deps = st["deployments"].as_array().unwrap();
    assert_eq!(deps.len(), 2, "{st}");
    assert_eq!(deps[0]["version"], "2");
    assert_eq!(deps[0]["manifest_digest"], digest2.as_str());
    assert_eq!(deps[0]["image"], imgref.as_str(), "the origin is kept");
    assert_eq!(deps[1]["checksum"], commit1.as_str(), "the rollback");
    // Kernel arguments carried over from the previous deployment.
    for o in s.boot_options() {
        assert!(o.starts_with("console=ttyS0 quiet "), "{o}");
    }
    let new_root = s.sysroot.path.join(deps[0]["path"].as_str().unwrap());
    assert!(new_root.join("usr/bin/new-tool").is_file());
    let text = run(&mut s.verb("upgrade", &["--check"]));
    assert!(text.contains("already up to date"), "{text}");
}

/// The same against a real registry on loopback: `upgrade --check` asks it with skopeo (the
/// manifest's digest, the layers' sizes, the version label) and counts only the new layer.
#[test]
fn upgrade_check_against_a_registry() {
    let s = Scene::new();
    let reg = support::registry::Registry::start();
    let (k, home) = reg.env();
    let push = |version: u32| -> (String, u64) {
        let r = publish(&s.layout, "stable", version);
        run(crate::support::skopeo()
            .env(k, home)
            .args(["copy", "--quiet", "--insecure-policy"])
            .arg(
                s.imgref("stable")
                    .trim_start_matches("ostree-unverified-image:"),
            )
            .arg(reg.docker("os:stable")));
        r
    };
    let (digest1, _) = push(1);
    let imgref = format!("ostree-unverified-registry:{}/os:stable", reg.host);
    let out = json(s.verb("deploy", &["--json", &imgref]).env(k, home));
    assert_eq!(out["manifest_digest"], digest1.as_str(), "{out}");
    let c = json(s.verb("upgrade", &["--check", "--json"]).env(k, home));
    assert_eq!(c["check"]["update_available"], false, "{c}");
    assert_eq!(c["check"]["latest_digest"], digest1.as_str());
    assert_eq!(c["check"]["latest_version"], "1");

    let (digest2, new_bytes) = push(2);
    let c = json(s.verb("upgrade", &["--check", "--json"]).env(k, home));
    let check = &c["check"];
    assert_eq!(check["update_available"], true, "{c}");
    assert_eq!(check["latest_digest"], digest2.as_str());
    assert_eq!(check["latest_version"], "2");
    assert_eq!(check["layers_to_download"], 1);
    assert_eq!(check["download_bytes"], new_bytes);
    let up = json(s.verb("upgrade", &["--json"]).env(k, home));
    assert_eq!(up["deployed"]["manifest_digest"], digest2.as_str(), "{up}");
    let text = run(s.verb("upgrade", &["--check"]).env(k, home));
    assert!(text.contains("already up to date"), "{text}");
}

/// `--target-imgref` puts another reference in the origin (the one upgrades follow), and
/// `switch` moves the machine to another image, keeping its stateroot; /etc edits carry over.
#[test]
fn target_imgref_and_switch() {
    let s = Scene::new();
    let (digest2, _) = publish(&s.layout, "other", 2);
    // write_layout writes one tag per layout: version 1 goes to a layout of its own.
    let one = tempfile::tempdir_in(support::target_tmp()).unwrap();
    let (digest1, _) = publish(one.path(), "local", 1);
    let follows = s.imgref("other");
    let out = json(&mut s.verb(
        "deploy",
        &[
            "--json",
            "--stateroot",
            "debian",
            "--target-imgref",
            &follows,
            &format!("ostree-unverified-image:oci:{}:local", one.path().display()),
        ],
    ));
    assert_eq!(out["image"], follows.as_str());
    assert_eq!(out["manifest_digest"], digest1.as_str());
    let st = s.status();
    let d = &st["deployments"][0];
    assert_eq!(
        s.origin_file(d),
        format!("[origin]\ncontainer-image-reference={follows}\n")
    );
    let c = json(&mut s.verb("upgrade", &["--check", "--json"]));
    assert_eq!(c["check"]["latest_digest"], digest2.as_str(), "{c}");
    assert_eq!(c["check"]["update_available"], true);

    // An admin's edit in /etc survives the switch.
    let etc = s.sysroot.path.join(d["path"].as_str().unwrap()).join("etc");
    std::fs::write(etc.join("motd"), "edited by the admin\n").unwrap();
    let other = format!("ostree-unverified-image:oci:{}:local", one.path().display());
    let out = json(&mut s.verb("switch", &["--json", &other]));
    assert_eq!(out["image"], other.as_str());
    assert_eq!(out["stateroot"], "debian");
    let st = s.status();
    let d = &st["deployments"][0];
    assert_eq!(d["image"], other.as_str());
    assert_eq!(
        s.origin_file(d),
        format!("[origin]\ncontainer-image-reference={other}\n")
    );
    let etc = s.sysroot.path.join(d["path"].as_str().unwrap()).join("etc");
    assert_eq!(support::read(etc.join("motd")), "edited by the admin\n");
}

/// Refusals name the problem and the fix, exit 2, and deploy nothing.
#[test]
fn refusals() {
    let s = Scene::new();
    publish(&s.layout, "stable", 1);
    let imgref = s.imgref("stable");

    // Not a sysroot.
    let not = tempfile::tempdir_in(support::target_tmp()).unwrap();
    let nots = format!("--sysroot={}", not.path().display());
    for args in [
        vec!["deploy", &nots, &imgref],
        vec!["status", &nots],
        vec!["upgrade", &nots, "--check"],
    ] {
        let e = refused(&mut bin_cmd(&args));
        assert!(
            e.contains(&format!(
                "{} is not an ostree sysroot",
                not.path().display()
            )),
            "{args:?}: {e}"
        );
        assert!(e.contains("ostree admin init-fs --modern"), "{e}");
    }

    // An unknown stateroot.
    let e = refused(&mut s.verb("deploy", &["--stateroot", "fedora", &imgref]));
    assert!(
        e.contains("unknown stateroot \"fedora\"") && e.contains("(it has: debian)"),
        "{e}"
    );
    assert!(e.contains("ostree admin os-init"), "{e}");

    // Nothing deployed yet.
    let e = refused(&mut s.verb("upgrade", &["--check"]));
    assert!(e.contains("has no deployment to upgrade"), "{e}");
    let e = refused(&mut s.verb("switch", &[&imgref]));
    assert!(e.contains("has no deployment to switch"), "{e}");

    // An image without a kernel.
    let nk = tempfile::tempdir_in(support::target_tmp()).unwrap();
    let ents = vec![
        Ent::Dir("usr", 0o755),
        Ent::Dir("usr/bin", 0o755),
        file("usr/bin/app", b"#!/bin/sh\n"),
        Ent::Dir("etc", 0o755),
    ];
    write_layout(
        nk.path(),
        "app",
        &[Layer::new(&ents, Comp::Gzip)],
        &[],
        "2024-01-01T00:00:00Z",
    );
    let nkref = format!("ostree-unverified-image:oci:{}:app", nk.path().display());
    let e = refused(&mut s.verb("deploy", &[&nkref]));
    assert!(e.contains("has no kernel"), "{e}");
    assert!(e.contains("/usr/lib/modules/<version>/vmlinuz"), "{e}");
    let refs = support::ostree(&s.sysroot.repo(), ["refs"]);
    assert!(
        !refs.contains("ostree/container/image/"),
        "the refused image is not kept: {refs}"
    );

    // A bad image reference.
    let e = refused(&mut s.verb("deploy", &["quay.io/os:1"]));
    assert!(e.contains("invalid image reference"), "{e}");

    assert_eq!(
        s.status()["deployments"].as_array().unwrap().len(),
        0,
        "nothing was deployed"
    );
    assert!(
        !s.sysroot.path.join("boot/loader/entries").exists()
            || std::fs::read_dir(s.sysroot.path.join("boot/loader/entries"))
                .unwrap()
                .count()
                == 0
    );

    // A deployment of an ostree ref (not an image) is not upgraded by us.
    let repo = s.sysroot.repo();
    let commit = run(bin_cmd(["image", "pull", "--quiet"])
        .arg(&repo)
        .arg(&imgref));
    run(Command::new("ostree").args(["admin", "deploy", &s.sr(), "--os=debian", commit.trim()]));
    let e = refused(&mut s.verb("upgrade", &["--check"]));
    assert!(
        e.contains("not an image") || e.contains("no container-image-reference"),
        "{e}"
    );
    assert!(e.contains("ostree-container switch"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The whole chain on a booted system.

use crate::support::vm::{self, Boot, BootEntry};
use std::time::{Duration, Instant};

/// A .deb made with dpkg-deb: `files` (path, mode, content) and an optional postinst.
fn make_deb(dir: &Path, name: &str, version: &str, files: &[(&str, u32, &str)], postinst: &str) {
    let root = dir.join(format!("{name}-deb"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\n\
             Maintainer: Tests <t@example.org>\nDescription: {name}, made by tests/it/machine/mod.rs\n"
        ),
    )
    .unwrap();
    let mut all = files.to_vec();
    if !postinst.is_empty() {
        all.push(("DEBIAN/postinst", 0o755, postinst));
    }
    for (path, mode, content) in all {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    support::run(
        support::cmd("dpkg-deb", ["--root-owner-group", "-Zgzip", "--build"])
            .arg(&root)
            .arg(dir.join(format!("{name}_{version}_all.deb"))),
    );
    std::fs::remove_dir_all(&root).unwrap();
}

/// The build contexts of the two versions (tests/it/machine/vm plus the .debs).
fn vm_contexts(work: &Path) -> (PathBuf, PathBuf) {
    let fixtures = support::top().join("tests/it/machine/vm");
    let v1 = work.join("ctx-v1");
    let v2 = work.join("ctx-v2");
    for d in [&v1, &v2] {
        std::fs::create_dir_all(d).unwrap();
    }
    for f in ["vmcheck", "vmcheck.service"] {
        std::fs::copy(fixtures.join(f), v1.join(f)).unwrap();
    }
    std::fs::copy(fixtures.join("Containerfile.v1"), v1.join("Containerfile")).unwrap();
    std::fs::copy(fixtures.join("Containerfile.v2"), v2.join("Containerfile")).unwrap();
    make_deb(
        &v1,
        "vmtest-daemon",
        "1.0",
        &[(
            "usr/bin/vmtest-daemon",
            0o755,
            "#!/bin/sh\necho vmtest-daemon 1.0\n",
        )],
        "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n\
         getent passwd _vmtestd >/dev/null || useradd --system --user-group \
         --home-dir /var/lib/vmtestd --shell /usr/sbin/nologin _vmtestd\n\
         install -d -o _vmtestd -g _vmtestd -m 0750 /var/lib/vmtestd\n\
         echo 'state of vmtest-daemon' >/var/lib/vmtestd/state\n\
         chown _vmtestd:_vmtestd /var/lib/vmtestd/state\nfi\n",
    );
    make_deb(
        &v2,
        "extra-tools",
        "2.0",
        &[(
            "opt/extra-tools/bin/extra-tools",
            0o755,
            "#!/bin/sh\necho extra-tools 2.0\n",
        )],
        "",
    );
    (v1, v2)
}

/// The `VMTEST key=value` lines a boot wrote to the console (the last value of each key).
fn console_values(log: &str) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    for l in log.lines() {
        let Some((_, rest)) = l.split_once("VMTEST ") else {
            continue;
        };
        let rest = rest.trim_end_matches('\r');
        if let Some((k, v)) = rest.split_once('=') {
            m.insert(k.to_string(), v.to_string());
        } else {
            m.insert(rest.to_string(), String::new());
        }
    }
    m
}

/// Phase timings, printed as the test goes and at the end.
struct Phases {
    start: Instant,
    last: Instant,
    done: Vec<(String, Duration)>,
}

impl Phases {
    fn new() -> Phases {
        let now = Instant::now();
        Phases {
            start: now,
            last: now,
            done: Vec::new(),
        }
    }

    fn mark(&mut self, what: &str) {
        let d = self.last.elapsed();
        self.last = Instant::now();
        eprintln!("vm test: {what}: {d:.1?}");
        self.done.push((what.to_string(), d));
    }

    fn summary(&self) {
        eprintln!("vm test phases:");
        for (w, d) in &self.done {
            eprintln!("  {d:>8.1?}  {w}");
        }
        eprintln!("  {:>8.1?}  total", self.start.elapsed());
    }
}

/// An image's user ids as the build made them.
fn built_ids(passwd: &str, user: &str) -> String {
    let (uid, gid) = support::passwd_ids(passwd, user)
        .unwrap_or_else(|| panic!("the build did not make {user}"));
    format!("{uid}:{gid}")
}

/// The whole chain, booted: build the bootable base and a v1 with buildah and `ostree container
/// commit`; `deploy` it into a sysroot; make a disk image of it; boot it with qemu from the
/// deployment's boot entry; the machine reports users (with the build's ids), /var directories
/// with their owners, the /opt program, the package, then edits /etc and /var. Then v2 on a
/// second disk as an oci-archive: the machine runs `upgrade` (the origin names the archive on
/// that disk), and after a reboot into v2 the new user, directory and program are there, the
/// admin's edits survived, and `status --json` names v2.
#[test]
fn vm_deploy_boot_upgrade_reboot() {
    let mut ph = Phases::new();
    let work = tempfile::Builder::new()
        .prefix("vm-")
        .tempdir_in(support::target_tmp())
        .unwrap();
    let w = work.path();
    let b = support::Buildah::shared(support::Driver::Overlay);
    let base = support::base_image(&b, support::Variant::Bootable);
    ph.mark("bootable base image");

    let (ctx1, ctx2) = vm_contexts(w);
    let tag1 = format!("localhost/vmtest-{}:v1", std::process::id());
    let tag2 = format!("localhost/vmtest-{}:v2", std::process::id());
    b.bud(&ctx1, None, &tag1, &[("BASE", &base)]);
    b.bud(&ctx2, None, &tag2, &[("BASE", &tag1)]);
    let _images = RemoveImages(&b, vec![tag2.clone(), tag1.clone()]);
    let ctr = b.from(&tag2);
    let root = b.mount(&ctr);
    let passwd2 = support::read(root.join("etc/passwd"));
    b.umount(&ctr);
    b.rm(&ctr);
    // Both versions as oci-archives (uncompressed layers: the same digests in both).
    let archives = w.join("images");
    std::fs::create_dir_all(&archives).unwrap();
    let v1_archive = w.join("v1.ociarchive");
    let v2_archive = archives.join("os.ociarchive");
    for (tag, file) in [(&tag1, &v1_archive), (&tag2, &v2_archive)] {
        support::run(
            b.cmd()
                .args(["push", "--quiet", "--disable-compression", tag])
                .arg(format!("oci-archive:{}:latest", file.display())),
        );
    }
    ph.mark("v1 and v2 built and written as oci-archives");

    // The machine's disk: a sysroot with v1 deployed; its origin names where v2 will be.
    let sysroot = w.join("sysroot");
    std::fs::create_dir_all(&sysroot).unwrap();
    support::run(support::cmd("ostree", ["admin", "init-fs", "--modern"]).arg(&sysroot));
    let sr = format!("--sysroot={}", sysroot.display());
    support::run(&mut support::cmd(
        "ostree",
        ["admin", "os-init", &sr, "debian"],
    ));
    // A test disk need not survive a power cut (the machine itself powers off cleanly).
    support::ostree(
        &sysroot.join("ostree/repo"),
        ["config", "set", "core.fsync", "false"],
    );
    let follows = "ostree-unverified-image:oci-archive:/mnt/images/os.ociarchive:latest";
    let out = json(
        bin_cmd([
            "deploy",
            &sr,
            "--json",
            "--target-imgref",
            follows,
            "--karg",
            "root=LABEL=root",
            "--karg",
            "rw",
            "--karg",
            "console=ttyS0",
        ])
        .arg(format!(
            "ostree-unverified-image:oci-archive:{}:latest",
            v1_archive.display()
        )),
    );
    assert_eq!(out["image"], follows);
    let entry1 = BootEntry::default_in_dir(&sysroot);
    let kernel = w.join("vmlinuz");
    let initrd = w.join("initrd");
    std::fs::copy(sysroot.join("boot").join(&entry1.linux[1..]), &kernel).unwrap();
    std::fs::copy(sysroot.join("boot").join(&entry1.initrd[1..]), &initrd).unwrap();
    ph.mark("deploy v1 into the sysroot");
    let disk = w.join("disk.img");
    vm::mkfs_ext4(&sysroot, "root", &disk, "4G");
    let images_disk = w.join("images.img");
    let size = std::fs::metadata(&v2_archive).unwrap().len() / (1 << 20) + 64;
    vm::mkfs_ext4(&archives, "images", &images_disk, &format!("{size}M"));
    // The deployment is immutable (chattr +i): let the work directory go.
    for d in std::fs::read_dir(sysroot.join("ostree/deploy/debian/deploy")).unwrap() {
        support::run(support::cmd("chattr", ["-i"]).arg(d.unwrap().path()));
    }
    std::fs::remove_dir_all(&sysroot).unwrap();
    ph.mark("disk images (mkfs.ext4 -d)");

    // The console logs stay after the test, for a look at what the machine did.
    let logs = support::target_tmp().join("vm-console");
    std::fs::create_dir_all(&logs).unwrap();
    eprintln!("vm test: console logs in {}", logs.display());
    let timeout = Duration::from_secs(420);
    let boot = |phase: u32, entry: &BootEntry, kernel: &Path, initrd: &Path| {
        let log = logs.join(format!("console-{phase}.log"));
        let text = vm::boot(&Boot {
            disks: &[disk.clone(), images_disk.clone()],
            kernel,
            initrd,
            append: format!("{} vmtest.phase={phase}", entry.options),
            log: log.clone(),
            timeout,
        });
        let v = console_values(&text);
        assert_eq!(
            v.get("done phase").map(String::as_str),
            Some(phase.to_string().as_str()),
            "boot {phase} did not finish its checks; console:\n{}",
            vm::log_tail(&log)
        );
        assert_eq!(
            v.get("failed-units").map(|s| s.trim()),
            Some(""),
            "boot {phase}: units failed; console: {}",
            log.display()
        );
        (v, log)
    };

    // First boot: v1 as built.
    let (v, log) = boot(1, &entry1, &kernel, &initrd);
    ph.mark("boot 1 (v1: checks, admin edits)");
    let ctx = |k: &str| format!("{k} (console: {})", log.display());
    let get = |v: &std::collections::BTreeMap<String, String>, k: &str| {
        v.get(k).cloned().unwrap_or_default()
    };
    assert_eq!(
        get(&v, "user _vmtestd"),
        built_ids(&passwd2, "_vmtestd"),
        "{}",
        ctx("package's system user")
    );
    assert_eq!(
        get(&v, "user tester"),
        "2001:2001",
        "{}",
        ctx("useradd user")
    );
    assert_eq!(get(&v, "user auditor"), "", "not in v1");
    assert_eq!(
        get(&v, "dir /var/lib/vmtestd"),
        "_vmtestd:_vmtestd:750",
        "{}",
        ctx("/var state dir")
    );
    assert!(
        get(&v, "dir /home/tester").starts_with("tester:tester:"),
        "{}",
        ctx("home")
    );
    assert_eq!(get(&v, "state"), "state of vmtest-daemon");
    assert_eq!(get(&v, "hello"), "hello from /opt");
    assert_eq!(get(&v, "dpkg vmtest-daemon"), "install ok installed 1.0");
    let st: serde_json::Value = serde_json::from_str(&get(&v, "status")).expect("status JSON");
    let booted = &st["deployments"][0];
    assert_eq!(booted["booted"], true, "{st}");
    assert_eq!(booted["version"], "1");
    assert_eq!(booted["image"], follows);

    // Second boot, with v2 on the second disk: upgrade (staged, finished at shutdown).
    let (v, log) = boot(2, &entry1, &kernel, &initrd);
    ph.mark("boot 2 (upgrade --check, upgrade)");
    let check: serde_json::Value = serde_json::from_str(&get(&v, "check"))
        .unwrap_or_else(|e| panic!("check JSON ({e}); console {}", log.display()));
    assert_eq!(check["check"]["update_available"], true, "{check}");
    assert_eq!(check["check"]["latest_version"], "2");
    assert_eq!(
        check["check"]["layers_to_download"], 1,
        "only v2's layer is new: {check}"
    );
    assert_eq!(
        get(&v, "upgrade-exit"),
        "0",
        "upgrade failed: console {}",
        log.display()
    );
    let st: serde_json::Value = serde_json::from_str(&get(&v, "status")).expect("status JSON");
    assert_eq!(st["deployments"][0]["staged"], true, "{st}");
    assert_eq!(st["deployments"][0]["version"], "2", "{st}");

    // The new boot entry, read from the disk image.
    let entry2 = BootEntry::default_in_image(&disk);
    assert_ne!(
        entry2.options, entry1.options,
        "a new deployment is the default"
    );
    let kernel2 = w.join("vmlinuz2");
    let initrd2 = w.join("initrd2");
    vm::debugfs_dump(&disk, &format!("/boot{}", entry2.linux), &kernel2);
    vm::debugfs_dump(&disk, &format!("/boot{}", entry2.initrd), &initrd2);
    ph.mark("read the new boot entry (debugfs)");

    // Third boot: v2.
    let (v, log) = boot(3, &entry2, &kernel2, &initrd2);
    ph.mark("boot 3 (v2: checks)");
    let ctx = |k: &str| format!("{k} (console: {})", log.display());
    assert_eq!(
        get(&v, "user auditor"),
        built_ids(&passwd2, "auditor"),
        "{}",
        ctx("new user")
    );
    assert_eq!(
        get(&v, "dir /var/lib/auditor"),
        "auditor:auditor:750",
        "{}",
        ctx("new /var dir")
    );
    assert_eq!(get(&v, "extra-tools"), "extra-tools 2.0");
    assert_eq!(get(&v, "dpkg extra-tools"), "install ok installed 2.0");
    assert_eq!(get(&v, "user tester"), "2001:2001");
    assert_eq!(get(&v, "hello"), "hello from /opt");
    // The admin's edits survived.
    assert_eq!(get(&v, "issue"), "edited by the admin");
    assert_eq!(get(&v, "local-admin"), "site = here");
    assert_eq!(get(&v, "notes"), "kept across upgrades");
    let st: serde_json::Value = serde_json::from_str(&get(&v, "status")).expect("status JSON");
    let booted = &st["deployments"][0];
    assert_eq!(booted["booted"], true, "{st}");
    assert_eq!(booted["version"], "2", "{st}");
    assert_eq!(booted["image"], follows);
    assert_eq!(
        st["deployments"][1]["version"], "1",
        "v1 is the rollback: {st}"
    );
    ph.summary();
}

/// Images removed from the shared storage when the test ends.
struct RemoveImages<'a>(&'a support::Buildah, Vec<String>);

impl Drop for RemoveImages<'_> {
    fn drop(&mut self) {
        for i in &self.1 {
            self.0.rmi(i);
        }
    }
}

#[test]
fn boot_entry_parses() {
    let e = BootEntry::parse(
        "title Debian (ostree:debian:0)\nversion 2\noptions root=LABEL=root rw ostree=/ostree/boot.1/debian/abc/0\n\
         linux /ostree/debian-abc/vmlinuz-6.1.0\ninitrd /ostree/debian-abc/initramfs-6.1.0.img\n",
    )
    .unwrap();
    assert_eq!(e.version, 2);
    assert_eq!(e.linux, "/ostree/debian-abc/vmlinuz-6.1.0");
    assert!(e.options.ends_with("ostree=/ostree/boot.1/debian/abc/0"));
    let v = console_values("[  1.0] x\nVMTEST user a=1:2\r\nnoise VMTEST done phase=1\n");
    assert_eq!(v["user a"], "1:2");
    assert_eq!(v["done phase"], "1");
}
