//! The machine verbs (`deploy`, `switch`, `upgrade`, `status`) on scratch sysroots, and the
//! whole chain proven on a booted system (`vm_*`, qemu with TCG; see docs/testing.md).
//!
//! Verb tests use small hand-made OCI layouts (tests/exporter/util.rs): a root with a
//! placeholder kernel in /usr/lib/modules, enough for libostree to deploy. They read the result
//! back the way other tools would: the origin file, `ostree admin status`, the boot entries, and
//! `status --json`. Run as root.

#![cfg(feature = "host")]

mod common;
#[path = "exporter/util.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use util::{file, write_layout, Comp, Ent, Layer};

fn oc<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut c = Command::new(common::bin());
    c.args(args);
    c
}

/// Run, expect success, return stdout.
fn ok(c: &mut Command) -> String {
    common::run(c)
}

/// Run, expect failure with exit status 2, return stderr.
fn refused(c: &mut Command) -> String {
    let out: Output = common::run_output(c);
    assert_eq!(
        out.status.code(),
        Some(2),
        "should be refused:\n{}",
        common::report(c, &out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(c: &mut Command) -> serde_json::Value {
    let out = ok(c);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// The root of a tiny OS libostree deploys, with an /etc file for admin edits.
fn os_entries() -> Vec<Ent> {
    let mut ents = util::placeholder_os();
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
        serde_json::from_str(&common::read(dir.join("index.json"))).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    (digest, new_bytes)
}

/// A scratch sysroot (init-fs + os-init debian) and a layout directory beside it.
struct Scene {
    sysroot: common::Sysroot,
    layout: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let tmp = tempfile::Builder::new()
            .prefix("machine-")
            .tempdir_in(common::target_tmp())
            .unwrap();
        Scene {
            sysroot: common::Sysroot::new("debian"),
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
        let mut c = oc([verb, &self.sr()]);
        c.args(args);
        c
    }

    fn status(&self) -> serde_json::Value {
        json(&mut self.verb("status", &["--json"]))
    }

    /// The origin file of a deployment listed by `status --json`.
    fn origin_file(&self, d: &serde_json::Value) -> String {
        common::read(
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
            .map(|e| common::read(e.unwrap().path()))
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
    let admin = ok(Command::new("ostree").args(["admin", "status", &s.sr()]));
    assert!(admin.contains(&format!("debian {commit1}.0")), "{admin}");
    let opts = s.boot_options();
    assert_eq!(opts.len(), 1, "{opts:?}");
    assert!(
        opts[0].starts_with("console=ttyS0 quiet ostree=/ostree/boot."),
        "{opts:?}"
    );
    let text = ok(&mut s.verb("status", &[]));
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
    let text = ok(&mut s.verb("upgrade", &["--check"]));
    assert!(text.contains("already up to date"), "{text}");
    let text = ok(&mut s.verb("upgrade", &[]));
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
    let text = ok(&mut s.verb("upgrade", &["--check"]));
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
    let text = ok(&mut s.verb("upgrade", &["--check"]));
    assert!(text.contains("already up to date"), "{text}");
}

/// `--target-imgref` puts another reference in the origin (the one upgrades follow), and
/// `switch` moves the machine to another image, keeping its stateroot; /etc edits carry over.
#[test]
fn target_imgref_and_switch() {
    let s = Scene::new();
    let (digest2, _) = publish(&s.layout, "other", 2);
    // write_layout writes one tag per layout: version 1 goes to a layout of its own.
    let one = tempfile::tempdir_in(common::target_tmp()).unwrap();
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
    assert_eq!(common::read(etc.join("motd")), "edited by the admin\n");
}

/// Refusals name the problem and the fix, exit 2, and deploy nothing.
#[test]
fn refusals() {
    let s = Scene::new();
    publish(&s.layout, "stable", 1);
    let imgref = s.imgref("stable");

    // Not a sysroot.
    let not = tempfile::tempdir_in(common::target_tmp()).unwrap();
    let nots = format!("--sysroot={}", not.path().display());
    for args in [
        vec!["deploy", &nots, &imgref],
        vec!["status", &nots],
        vec!["upgrade", &nots, "--check"],
    ] {
        let e = refused(&mut oc(&args));
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
    let nk = tempfile::tempdir_in(common::target_tmp()).unwrap();
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
    let commit = ok(oc(["image", "pull", "--quiet"]).arg(&repo).arg(&imgref));
    ok(Command::new("ostree").args(["admin", "deploy", &s.sr(), "--os=debian", commit.trim()]));
    let e = refused(&mut s.verb("upgrade", &["--check"]));
    assert!(
        e.contains("not an image") || e.contains("no container-image-reference"),
        "{e}"
    );
    assert!(e.contains("ostree-container switch"), "{e}");
}
