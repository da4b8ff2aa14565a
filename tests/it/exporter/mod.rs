//! Integration tests for the host-side exporter (`image pull`, `unencapsulate`, `image
//! list/remove/prune/history/metadata`), with real buildah, skopeo, umoci and ostree.
//!
//! Images come from two places: buildah (`from scratch`, edit the mounted rootfs, commit),
//! for what real build tools produce, and hand-made OCI layouts (tests/it/support/oci.rs), for
//! what they cannot (cross-layer hard links, hostile paths, corrupted blobs). Every test has
//! its own temporary directory, buildah storage included. Run as root.

mod fetch;
mod hostile;
mod inflight;
mod signed;
mod storage;
use crate::support::registry;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::support::oci::*;
use crate::support::{bin_cmd, report, run, run_fails, run_refused, set_xattr, Buildah, Driver};

/// A capability set (cap_net_raw+ep) as the kernel stores it in security.capability.
const CAP_NET_RAW: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Files under `objects/`, to show a refused import wrote none.
pub(super) fn object_count(repo: &Repo) -> usize {
    fn count(p: &Path) -> usize {
        fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| match e.file_type() {
                        Ok(t) if t.is_dir() => count(&e.path()),
                        _ => 1,
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    count(&repo.path.join("objects"))
}

fn tmpdir() -> Scratch {
    Scratch::new()
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

/// Three layers from `buildah from scratch`, exercising what a real OS image holds.
/// Images `layer1`, `layer2` (with a version label) and `layer3`.
fn build_image(b: &Buildah) {
    // Layer 1: a base.
    let c = b.from("scratch");
    let m = b.mount(&c);
    for d in [
        "usr/bin",
        "usr/lib/modules/6.1.0",
        "usr/share/doc/old",
        "etc",
        "var/tmp",
        "var/lib/app",
        "tmp",
        "run",
        "root",
    ] {
        fs::create_dir_all(m.join(d)).unwrap();
    }
    fs::write(m.join("usr/bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    chmod(&m.join("usr/bin/tool"), 0o755);
    fs::hard_link(m.join("usr/bin/tool"), m.join("usr/bin/tool-again")).unwrap();
    fs::write(m.join("usr/bin/su"), b"setuid binary").unwrap();
    chmod(&m.join("usr/bin/su"), 0o4755);
    fs::write(m.join("usr/bin/wall"), b"setgid binary").unwrap();
    chmod(&m.join("usr/bin/wall"), 0o2755);
    chown(&m.join("usr/bin/wall"), 0, 5);
    fs::write(m.join("usr/bin/ping"), b"needs a capability").unwrap();
    chmod(&m.join("usr/bin/ping"), 0o755);
    set_xattr(&m.join("usr/bin/ping"), "security.capability", &CAP_NET_RAW);
    fs::write(m.join("usr/lib/modules/6.1.0/vmlinuz"), vec![7u8; 100_000]).unwrap();
    fs::write(m.join("usr/lib/os-release"), b"ID=test\n").unwrap();
    symlink("../usr/lib/os-release", m.join("etc/os-release")).unwrap();
    symlink("/usr/bin/tool", m.join("usr/bin/abs-link")).unwrap();
    fs::write(m.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(m.join("etc/hostname"), b"").unwrap();
    fs::write(m.join("etc/resolv.conf"), b"").unwrap();
    fs::write(m.join("etc/shadow"), b"root:*::0:::::\n").unwrap();
    chmod(&m.join("etc/shadow"), 0o600);
    chmod(&m.join("var/tmp"), 0o1777);
    chown(&m.join("var/lib/app"), 1000, 1000);
    chmod(&m.join("var/lib/app"), 0o750);
    fs::write(m.join("var/lib/app/state"), b"state").unwrap();
    chown(&m.join("var/lib/app/state"), 1000, 100);
    fs::write(m.join("tmp/junk"), b"junk").unwrap();
    fs::write(m.join("run/junk"), b"junk").unwrap();
    fs::write(m.join("usr/share/doc/old/a"), b"a").unwrap();
    fs::write(m.join("usr/share/doc/old/b"), b"b").unwrap();
    fs::write(m.join("usr/share/doc/gone.txt"), b"gone").unwrap();
    fs::write(m.join("usr/share/doc/with space é.txt"), b"unicode").unwrap();
    for i in 0..50 {
        fs::write(
            m.join(format!("usr/share/doc/f{i}")),
            format!("file {i}\n").repeat(i),
        )
        .unwrap();
    }
    b.commit(&c, "layer1");

    // Layer 2: deletions (whiteouts), a directory replaced (opaque with overlay), changes.
    let c = b.from("layer1");
    let m = b.mount(&c);
    fs::remove_file(m.join("usr/share/doc/gone.txt")).unwrap();
    fs::remove_dir_all(m.join("usr/share/doc/old")).unwrap();
    fs::create_dir_all(m.join("usr/share/doc/old")).unwrap();
    fs::write(m.join("usr/share/doc/old/c"), b"c").unwrap();
    fs::write(
        m.join("etc/passwd"),
        b"root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
    )
    .unwrap();
    chmod(&m.join("usr/bin/tool"), 0o700);
    fs::remove_file(m.join("usr/bin/abs-link")).unwrap();
    fs::create_dir(m.join("usr/bin/abs-link")).unwrap();
    run(b
        .cmd()
        .args([
            "config",
            "--label",
            "org.opencontainers.image.version=1.2.3",
        ])
        .arg(&c));
    b.commit(&c, "layer2");

    // Layer 3: something on top.
    let c = b.from("layer2");
    let m = b.mount(&c);
    fs::write(m.join("usr/bin/app"), b"the application").unwrap();
    chmod(&m.join("usr/bin/app"), 0o755);
    b.commit(&c, "layer3");
}

fn check_against_umoci(repo: &Repo, commit: &str, oci: &Path, tag: &str, work: &Path) {
    let co = work.join(format!("checkout-{}", &commit[..12]));
    repo.checkout(commit, &co);
    let bundle = work.join(format!("bundle-{}", &commit[..12]));
    let rootfs = umoci_unpack(oci, tag, &bundle);
    let mut want = as_ostree_sees_it(snapshot(&rootfs));
    let mut got = snapshot(&co);
    // The checkout's top directory is created by ostree checkout, umoci's by umoci: compare
    // everything below it.
    want.remove("");
    got.remove("");
    assert_same(&got, &want, "ostree checkout vs umoci unpack");
}

#[test]
fn plain_layered_image_vfs_matches_umoci_in_bare_user_and_bare_repos() {
    let t = tmpdir();
    let b = Buildah::new(Driver::Vfs);
    build_image(&b);
    let oci = t.path().join("oci");
    b.push_oci("layer3", &oci, "v1");
    for mode in ["bare-user", "bare"] {
        let repo = Repo::init(t.path().join(format!("repo-{mode}")), mode);
        let commit = pull(
            &repo.path,
            &format!("ostree-unverified-image:oci:{}:v1", oci.display()),
        );
        repo.fsck();
        let work = t.path().join(format!("work-{mode}"));
        fs::create_dir(&work).unwrap();
        check_against_umoci(&repo, &commit, &oci, "v1", &work);
        // What a user checks on the merged commit.
        let show = |k| repo.metadata(&commit, k);
        assert_eq!(show("version"), "'1.2.3'");
        assert_eq!(show("ostree.bootable"), "true");
        assert!(show("ostree.manifest-digest").starts_with("'sha256:"));
        assert!(show("ostree.manifest").contains("layers"));
        assert!(show("ostree.container.image-config").contains("diff_ids"));
        let refs = repo.refs();
        assert_eq!(
            refs.keys()
                .filter(|r| r.starts_with("ostree/container/blob/sha256_3A_"))
                .count(),
            3,
            "{refs:?}"
        );
        assert!(
            refs.keys()
                .any(|r| r.starts_with("ostree/container/image/oci_3A_")),
            "{refs:?}"
        );
        // The capability survived, with /etc moved to /usr/etc.
        let ls = run(&mut repo.ostree(["ls", "-X", &commit, "/usr/bin/ping"]));
        assert!(ls.contains("security.capability"), "{ls}");
        run(&mut repo.ostree(["ls", &commit, "/usr/etc/passwd"]));
        assert!(!run(&mut repo.ostree(["ls", &commit, "/tmp"])).contains("junk"));
    }
}

#[test]
fn overlay_driver_opaque_directories_and_archive_and_containers_storage() {
    let t = tmpdir();
    let b = Buildah::new(Driver::Overlay);
    build_image(&b);
    let oci = t.path().join("oci");
    b.push_oci("layer3", &oci, "v1");
    let archive = t.path().join("image.ociarchive");
    b.push_oci_archive("localhost/layer3", &archive, "v1");
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let c1 = pull(
        &repo.path,
        &format!("ostree-unverified-image:oci:{}:v1", oci.display()),
    );
    repo.fsck();
    check_against_umoci(&repo, &c1, &oci, "v1", t.path());
    // The layer commits keep the whiteouts as the layers had them: with overlay, the
    // replaced directory is opaque.
    let layer_listing: String = repo
        .refs()
        .keys()
        .filter(|r| r.contains("/blob/"))
        .map(|r| run(&mut repo.ostree(["ls", "-R", r.as_str()])))
        .collect();
    assert!(
        layer_listing.contains("/usr/share/doc/.wh.gone.txt"),
        "{layer_listing}"
    );
    assert!(
        layer_listing.contains("/usr/share/doc/old/.wh..wh..opq"),
        "{layer_listing}"
    );
    // The same image through oci-archive: gives the same commit.
    let c2 = pull(
        &repo.path,
        &format!(
            "ostree-unverified-image:oci-archive:{}:v1",
            archive.display()
        ),
    );
    assert_eq!(c1, c2);
    // containers-storage: (built here, so streamed through the image proxy; and one that
    // came from the gzip layout, copied with its layers left uncompressed), docker-archive:
    // and dir: (through the image proxy): the manifest differs (uncompressed layers, Docker
    // format), the content does not.
    let c3 = pull(
        &repo.path,
        &format!(
            "ostree-unverified-image:{}",
            b.storage_ref("localhost/layer3")
        ),
    );
    run(crate::support::skopeo()
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:v1", oci.display()))
        .arg(b.storage_ref("localhost/from-oci")));
    let c3b = pull(
        &repo.path,
        &format!(
            "ostree-unverified-image:{}",
            b.storage_ref("localhost/from-oci")
        ),
    );
    let darchive = t.path().join("image.dockerarchive");
    run(crate::support::skopeo()
        .args(["copy", "--quiet"])
        .arg(b.storage_ref("localhost/layer3"))
        .arg(format!(
            "docker-archive:{}:localhost/layer3:v1",
            darchive.display()
        )));
    let dir = t.path().join("dirimage");
    run(crate::support::skopeo()
        .args(["copy", "--quiet"])
        .arg(b.storage_ref("localhost/layer3"))
        .arg(format!("dir:{}", dir.display())));
    let c4 = pull(
        &repo.path,
        &format!(
            "ostree-unverified-image:docker-archive:{}",
            darchive.display()
        ),
    );
    let c5 = pull(
        &repo.path,
        &format!("ostree-unverified-image:dir:{}", dir.display()),
    );
    let content = |c: &str| run(&mut repo.ostree(["ls", "-R", "-C", "-X", c]));
    assert_eq!(content(&c1), content(&c3));
    assert_eq!(content(&c1), content(&c3b));
    assert_eq!(content(&c1), content(&c4));
    assert_eq!(content(&c1), content(&c5));
    // A registry (a real one on loopback): the same manifest, so the same commit.
    let reg = registry::Registry::start();
    let (k, home) = reg.env();
    run(crate::support::skopeo()
        .env(k, home)
        .args(["copy", "--quiet", "--insecure-policy"])
        .arg(format!("oci:{}:v1", oci.display()))
        .arg(reg.docker("layer3:v1")));
    let c6 = run(bin_cmd(["image", "pull", "--quiet"])
        .env(k, home)
        .arg(&repo.path)
        .arg(format!("ostree-unverified-registry:{}/layer3:v1", reg.host)));
    assert_eq!(c1, c6.trim());
    repo.fsck();
    let list = run(bin_cmd(["image", "list", "--repo"]).arg(&repo.path));
    assert_eq!(list.lines().count(), 7, "{list}");
    assert!(
        list.contains(&format!("docker://{}/layer3:v1", reg.host)),
        "{list}"
    );
    assert!(
        list.contains(&format!("oci-archive:{}:v1", archive.display())),
        "{list}"
    );
}

#[test]
fn same_image_twice_same_commit_and_update_reads_only_new_layers() {
    let t = tmpdir();
    let b = Buildah::new(Driver::Vfs);
    build_image(&b);
    let oci = t.path().join("oci");
    b.push_oci("layer2", &oci, "latest");
    let imgref = format!("ostree-unverified-image:oci:{}:latest", oci.display());
    let r1 = Repo::init(t.path().join("r1"), "bare-user");
    let r2 = Repo::init(t.path().join("r2"), "bare-user");
    let c1 = pull(&r1.path, &imgref);
    assert_eq!(c1, pull(&r2.path, &imgref), "same image, same commit");

    // Again: nothing to do.
    let out = run(bin_cmd(["image", "pull"]).arg(&r1.path).arg(&imgref));
    assert_eq!(out.trim(), c1);

    // The tag moves to an image with one more layer: only that layer is read.
    b.push_oci("layer3", &oci, "latest");
    let mut cmd = bin_cmd(["image", "pull"]);
    cmd.arg(&r1.path).arg(&imgref);
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", report(&cmd, &o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 imported, 2 reused"), "{err}");
    let c2 = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_ne!(c1, c2);
    r1.fsck();
    check_against_umoci(&r1, &c2, &oci, "latest", t.path());
    let refs = r1.refs();
    assert_eq!(refs.keys().filter(|r| r.contains("/blob/")).count(), 3);
    // unencapsulate with --write-ref, and the `ostree container` spelling.
    let out = run(bin_cmd([
        "container",
        "unencapsulate",
        "--quiet",
        "--write-ref",
        "my/os",
        "--repo",
    ])
    .arg(&r2.path)
    .arg(&imgref));
    assert_eq!(out.trim(), c2);
    assert_eq!(r2.refs()["my/os"], c2);
}

#[test]
fn list_remove_prune_history_metadata() {
    let t = tmpdir();
    let oci = t.path().join("oci");
    let base = Layer::new(
        &[Ent::Dir("usr", 0o755), file("usr/base", b"base")],
        Comp::Gzip,
    );
    let base2 = Layer::new(
        &[Ent::Dir("usr", 0o755), file("usr/base", b"base")],
        Comp::Gzip,
    );
    let top_a = Layer::new(&[file("usr/a", b"a")], Comp::Gzip);
    let top_b = Layer::new(&[file("usr/b", b"b")], Comp::Gzip);
    write_layout(
        &oci.join("a"),
        "a",
        &[base, top_a],
        &[],
        "2024-01-01T00:00:00Z",
    );
    write_layout(
        &oci.join("b"),
        "b",
        &[base2, top_b],
        &[],
        "2024-01-01T00:00:00Z",
    );
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let ra = format!("ostree-unverified-image:oci:{}:a", oci.join("a").display());
    let rb = format!("ostree-unverified-image:oci:{}:b", oci.join("b").display());
    pull(&repo.path, &ra);
    let cb = pull(&repo.path, &rb);
    assert_eq!(
        repo.refs().keys().filter(|r| r.contains("/blob/")).count(),
        3,
        "shared base stored once"
    );
    let list = run(bin_cmd(["image", "list", "--repo"]).arg(&repo.path));
    assert_eq!(
        list,
        format!(
            "oci:{}:a\noci:{}:b\n",
            oci.join("a").display(),
            oci.join("b").display()
        )
    );

    let hist = run(bin_cmd(["image", "history", "--repo"])
        .arg(&repo.path)
        .arg(&ra));
    assert!(hist.contains("hand-made test layer"), "{hist}");
    let manifest = run(bin_cmd(["image", "metadata", "--repo"])
        .arg(&repo.path)
        .arg(&ra));
    let v: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(v["layers"].as_array().unwrap().len(), 2);
    let config = run(bin_cmd(["image", "metadata", "--config", "--repo"])
        .arg(&repo.path)
        .arg(format!("oci:{}:a", oci.join("a").display())));
    assert!(config.contains("diff_ids"), "{config}");

    run(bin_cmd(["image", "remove", "--repo"])
        .arg(&repo.path)
        .arg(&ra));
    let err = run_fails(
        bin_cmd(["image", "remove", "--repo"])
            .arg(&repo.path)
            .arg(&ra),
    );
    assert!(err.contains("not in the repository"), "{err}");
    let out = run(bin_cmd(["image", "prune", "--repo"]).arg(&repo.path));
    assert!(out.contains("removed 1 unused layers"), "{out}");
    let refs = repo.refs();
    assert_eq!(
        refs.keys().filter(|r| r.contains("/blob/")).count(),
        2,
        "{refs:?}"
    );
    repo.fsck();
    // The remaining image is intact.
    repo.checkout(&cb, &t.path().join("co"));
    assert_eq!(fs::read(t.path().join("co/usr/b")).unwrap(), b"b");
    assert_eq!(fs::read(t.path().join("co/usr/base")).unwrap(), b"base");
}

#[test]
fn hand_made_layers_gzip_zstd_plain_hardlinks_xattrs_owners() {
    let t = tmpdir();
    let oci = t.path().join("oci");
    let l1 = Layer::new(
        &[
            Ent::Dir("usr", 0o755),
            Ent::Dir("usr/bin", 0o755),
            Ent::FileFull {
                path: "usr/bin/ping".into(),
                mode: 0o4755,
                uid: 0,
                gid: 0,
                data: b"ping".to_vec(),
                xattrs: vec![
                    ("security.capability", CAP_NET_RAW.to_vec()),
                    ("user.note", b"hi".to_vec()),
                    // A label from the build host: never kept.
                    (
                        "security.selinux",
                        b"system_u:object_r:container_file_t:s0\0".to_vec(),
                    ),
                ],
            },
            Ent::FileFull {
                path: "usr/owned".into(),
                mode: 0o640,
                uid: 1234,
                gid: 5678,
                data: b"o".to_vec(),
                xattrs: vec![],
            },
            Ent::Dir("var", 0o755),
            Ent::Dir("var/tmp", 0o1777),
            Ent::Link("usr/lnk", "bin/ping"),
            file("etc/motd", b"hello"),
        ],
        Comp::Zstd,
    );
    let l2 = Layer::new(
        &[
            Ent::Hard("usr/ping-again", "usr/bin/ping"),
            Ent::Hard("etc/motd2", "etc/motd"),
        ],
        Comp::None,
    );
    let l3 = Layer::new(
        &[
            Ent::Dir("usr", 0o700),
            file("usr/.wh.owned", b""),
            file("usr/new", b"new"),
        ],
        Comp::Gzip,
    );
    write_layout(
        &oci,
        "x",
        &[l1, l2, l3],
        &[("version", "7")],
        "2023-05-06T07:08:09Z",
    );
    let repo = Repo::init(t.path().join("repo"), "bare");
    let c = pull(
        &repo.path,
        &format!("ostree-unverified-image:oci:{}:x", oci.display()),
    );
    repo.fsck();
    let co = t.path().join("co");
    repo.checkout(&c, &co);
    let s = snapshot(&co);
    let cap = hex::encode(CAP_NET_RAW);
    let ping = format!(
        "file {} 4755 0:0 [security.capability={cap},user.note=6869]",
        &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"ping"))
    );
    assert_eq!(s["usr/bin/ping"], ping);
    let ls = run(&mut repo.ostree(["ls", "-X", &c, "/usr/bin/ping"]));
    assert!(
        ls.contains("user.note") && !ls.contains("security.selinux"),
        "{ls}"
    );
    assert_eq!(s["usr/ping-again"], ping, "hard link across layers");
    assert!(
        s["usr/etc/motd2"].starts_with("file "),
        "{:?}",
        s.get("usr/etc/motd2")
    );
    assert_eq!(s["usr"], "dir 0700 0:0 []");
    assert_eq!(s["var/tmp"], "dir 1777 0:0 []");
    assert_eq!(s["usr/lnk"], "link -> bin/ping 0777 0:0 []");
    assert!(!s.contains_key("usr/owned"), "whited out");
    assert!(!s.keys().any(|k| k.contains(".wh.")), "{s:?}");
    // Same files are one object (hard-linked in the checkout).
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(co.join("usr/bin/ping")).unwrap().ino(),
        fs::metadata(co.join("usr/ping-again")).unwrap().ino()
    );
    assert_eq!(repo.metadata(&c, "version"), "'7'");
    assert!(!run(&mut repo.ostree(["show", &c])).contains("ostree.bootable"));
    let log = run(&mut repo.ostree(["log", &c]));
    assert!(log.contains("2023-05-06 07:08:09"), "{log}");
}

/// Pull a bad image into a repository that already holds a good one: the error must say
/// what is wrong, and the repository must be exactly as before.
fn assert_rejected(layers: Vec<Layer>, want: &[&str]) {
    let t = tmpdir();
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let good = t.path().join("good");
    write_layout(
        &good,
        "g",
        &[Layer::new(&[file("usr/ok", b"ok")], Comp::Gzip)],
        &[],
        "2024-01-01T00:00:00Z",
    );
    pull(
        &repo.path,
        &format!("ostree-unverified-image:oci:{}:g", good.display()),
    );
    let before = repo.refs();
    let bad = t.path().join("bad");
    write_layout(&bad, "b", &layers, &[], "2024-01-01T00:00:00Z");
    let err = run_fails(
        bin_cmd(["image", "pull"])
            .arg(&repo.path)
            .arg(format!("ostree-unverified-image:oci:{}:b", bad.display())),
    );
    for w in want {
        assert!(err.contains(w), "error should contain {w:?}: {err}");
    }
    assert_eq!(repo.refs(), before, "no ref moved");
    repo.fsck();
    // The same name, now pointing at a good image, imports fine.
    write_layout(
        &bad,
        "b",
        &[Layer::new(&[file("usr/fine", b"fine")], Comp::Gzip)],
        &[],
        "2024-01-01T00:00:00Z",
    );
    pull(
        &repo.path,
        &format!("ostree-unverified-image:oci:{}:b", bad.display()),
    );
    repo.fsck();
}

fn some_files() -> Vec<Ent> {
    (0..200)
        .map(|i| {
            file(
                &format!("usr/share/f{i}"),
                format!("content {i}").repeat(100).as_bytes(),
            )
        })
        .collect()
}

#[test]
fn bad_corrupted_blob() {
    let mut l = Layer::new(&some_files(), Comp::Gzip);
    let n = l.blob.len();
    l.blob[n / 2] ^= 0xff;
    let actual = sha(&l.blob);
    let expected = l.digest.clone();
    assert_rejected(vec![l], &["digest mismatch", &expected, &actual]);
}

#[test]
fn bad_wrong_diff_id() {
    let mut l = Layer::new(&some_files(), Comp::Gzip);
    let actual = l.diff_id.clone();
    l.diff_id = format!("sha256:{}", "ab".repeat(32));
    assert_rejected(vec![l], &["diff_id", &"ab".repeat(32), &actual]);
}

#[test]
fn bad_truncated_gzip() {
    let mut l = Layer::new(&some_files(), Comp::Gzip);
    l.blob.truncate(l.blob.len() / 2);
    l.digest = sha(&l.blob);
    l.size = l.blob.len() as u64;
    assert_rejected(vec![l], &["layer 1/1"]);
}

#[test]
fn bad_dotdot_path() {
    let l = Layer::new(
        &[Ent::Dir("usr", 0o755), Ent::RawPath(b"usr/../../escape")],
        Comp::Gzip,
    );
    assert_rejected(vec![l], &["usr/../../escape", ".."]);
}

#[test]
fn bad_write_through_symlink() {
    let l1 = Layer::new(&[Ent::Link("usr", "/etc")], Comp::Gzip);
    let l2 = Layer::new(&[file("usr/passwd", b"evil")], Comp::Gzip);
    assert_rejected(vec![l1, l2], &["usr/passwd", "symlink"]);
}

#[test]
fn bad_device_node_and_fifo() {
    assert_rejected(
        vec![Layer::new(&[Ent::Char("usr/null")], Comp::Gzip)],
        &["usr/null", "character device"],
    );
    assert_rejected(
        vec![Layer::new(&[Ent::Fifo("var/fifo")], Comp::Gzip)],
        &["var/fifo", "FIFO"],
    );
}

#[test]
fn devices_under_dev_are_dropped() {
    let t = tmpdir();
    let oci = t.path().join("oci");
    write_layout(
        &oci,
        "d",
        &[Layer::new(
            &[
                Ent::Dir("dev", 0o755),
                Ent::Char("dev/null"),
                file("usr/x", b"x"),
            ],
            Comp::Gzip,
        )],
        &[],
        "2024-01-01T00:00:00Z",
    );
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let c = pull(
        &repo.path,
        &format!("ostree-unverified-image:oci:{}:d", oci.display()),
    );
    let ls = run(&mut repo.ostree(["ls", "-R", &c]));
    assert!(ls.contains("/dev") && !ls.contains("/dev/null"), "{ls}");
}

#[test]
fn bad_unknown_media_type() {
    let mut l = Layer::new(&some_files(), Comp::Gzip);
    l.media_type = "application/x-mystery".into();
    assert_rejected(
        vec![l],
        &["unknown layer media type", "application/x-mystery"],
    );
}

#[test]
fn bad_image_reference() {
    let t = tmpdir();
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let err = run_fails(
        bin_cmd(["image", "pull"])
            .arg(&repo.path)
            .arg("quay.io/foo/bar"),
    );
    assert!(err.contains("expected <scheme>"), "{err}");
    let err = run_fails(
        bin_cmd(["image", "pull"])
            .arg(&repo.path)
            .arg("ostree-unverified-image:tarball:/x"),
    );
    assert!(err.contains("unknown transport \"tarball\""), "{err}");
}

#[test]
fn killed_import_leaves_repository_clean_and_rerun_succeeds() {
    let t = tmpdir();
    let oci = t.path().join("oci");
    // ~120 MB of distinct, incompressible-ish files so the import takes a while.
    let mut seed = 0x9E3779B97F4A7C15u64;
    let mut layers = Vec::new();
    for l in 0..3 {
        let mut ents = vec![Ent::Dir("usr", 0o755)];
        for i in 0..400 {
            let mut data = vec![0u8; 100_000];
            for chunk in data.chunks_mut(8) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
            }
            ents.push(Ent::File(format!("usr/l{l}f{i}"), 0o644, data));
        }
        layers.push(Layer::new(&ents, Comp::None));
    }
    write_layout(&oci, "big", &layers, &[], "2024-01-01T00:00:00Z");
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let imgref = format!("ostree-unverified-image:oci:{}:big", oci.display());
    let before = repo.refs();
    let mut child = bin_cmd(["image", "pull", "--quiet"])
        .arg(&repo.path)
        .arg(&imgref)
        .spawn()
        .unwrap();
    // Wait until objects are being written, then kill -9.
    let tmp = repo.path.join("tmp");
    let mut writing = false;
    for _ in 0..2000 {
        writing = fs::read_dir(&tmp).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with("staging-")
                && fs::read_dir(e.path())
                    .map(|d| d.count() > 5)
                    .unwrap_or(false)
        });
        if writing || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(writing, "import finished before it could be interrupted");
    assert!(
        child.try_wait().unwrap().is_none(),
        "import finished before it could be interrupted"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    repo.fsck();
    assert_eq!(repo.refs(), before, "no ref moved");
    let c = pull(&repo.path, &imgref);
    repo.fsck();
    assert_eq!(repo.refs().len(), 4);
    assert!(run(&mut repo.ostree(["ls", &c, "/usr/l2f399"])).contains("100000"));
}

/// `tree` committed (owned by root) as `base` in a new repository `src` under `dir`, and
/// encapsulated (in up to 3 layers) to `oci:<oci>:base`: the repository and the commit.
fn encapsulated_base(dir: &Path, tree: &Path, oci: &Path) -> (Repo, String) {
    let src = Repo::init(dir.join("src"), "bare-user");
    let base = run(src
        .ostree(["commit", "-b", "base", "--owner-uid=0", "--owner-gid=0"])
        .arg(format!("--tree=dir={}", tree.display())))
    .trim()
    .to_string();
    run(bin_cmd(["encapsulate", "--max-layers", "3", "--repo"])
        .arg(&src.path)
        .arg("base")
        .arg(format!("oci:{}:base", oci.display())));
    (src, base)
}

/// An image derived (with buildah) from an ostree-encapsulated commit: the base keeps its
/// commit checksum, the derived layers go on top, and no ostree object store leaks into the
/// merged tree.
#[test]
fn derived_from_encapsulated_base_keeps_the_base_commit() {
    let t = tmpdir();
    let tree = t.path().join("tree");
    for d in ["usr/bin", "usr/etc", "usr/lib/modules/6.1.0"] {
        fs::create_dir_all(tree.join(d)).unwrap();
    }
    fs::write(tree.join("usr/bin/base"), b"base").unwrap();
    chmod(&tree.join("usr/bin/base"), 0o755);
    fs::write(tree.join("usr/bin/gone"), b"gone").unwrap();
    fs::write(tree.join("usr/etc/os-release"), b"ID=base\n").unwrap();
    fs::write(tree.join("usr/lib/modules/6.1.0/vmlinuz"), vec![1u8; 5000]).unwrap();
    let oci = t.path().join("oci");
    let (src, base) = encapsulated_base(t.path(), &tree, &oci);

    let b = Buildah::new(Driver::Vfs);
    run(crate::support::skopeo()
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:base", oci.display()))
        .arg(b.storage_ref("localhost/base")));
    let c = b.from("localhost/base");
    let m = b.mount(&c);
    fs::write(m.join("usr/bin/derived"), b"derived").unwrap();
    fs::remove_file(m.join("usr/bin/gone")).unwrap();
    fs::write(m.join("etc/motd"), b"motd").unwrap();
    b.commit(&c, "derived");
    let oci2 = t.path().join("oci2");
    b.push_oci("derived", &oci2, "d");

    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let imgref = format!("ostree-unverified-image:oci:{}:d", oci2.display());
    let merged = pull(&repo.path, &imgref);
    repo.fsck();
    let refs = repo.refs();
    let blobs: Vec<&String> = refs
        .iter()
        .filter(|(r, _)| r.contains("/blob/"))
        .map(|(_, c)| c)
        .collect();
    assert_eq!(
        blobs.iter().filter(|c| **c == &base).count(),
        blobs.len() - 1,
        "every ostree layer names the base commit: {refs:?}"
    );
    let ls = run(&mut repo.ostree(["ls", "-R", &merged]));
    for want in [
        "/usr/bin/base",
        "/usr/bin/derived",
        "/usr/etc/motd",
        "/usr/etc/os-release",
    ] {
        assert!(ls.contains(want), "{want} missing:\n{ls}");
    }
    assert!(!ls.contains("/usr/bin/gone"), "{ls}");
    assert!(
        !ls.contains("objects"),
        "the ostree object store leaked:\n{ls}"
    );
    assert_eq!(repo.metadata(&merged, "ostree.bootable"), "true");
    // Same content object for the base's file in both commits.
    let base_file = run(&mut src.ostree(["ls", "-C", &base, "/usr/bin/base"]));
    let merged_file = run(&mut repo.ostree(["ls", "-C", &merged, "/usr/bin/base"]));
    assert_eq!(base_file, merged_file);
    // Again: nothing to do; and the base is reused by a second derived image.
    assert_eq!(pull(&repo.path, &imgref), merged);
}

/// An image carrying an SELinux policy is labelled from that policy exactly as
/// `ostree commit --selinux-policy` labels the same tree.
#[test]
fn selinux_labels_from_the_image_policy_match_ostree_commit() {
    let t = tmpdir();
    let fc = b"/.*\tsystem_u:object_r:default_t:s0\n\
/usr(/.*)?\tsystem_u:object_r:usr_t:s0\n\
/usr/bin(/.*)?\tsystem_u:object_r:bin_t:s0\n\
/usr/bin/sh\t--\tsystem_u:object_r:shell_exec_t:s0\n\
/usr/etc(/.*)?\tsystem_u:object_r:etc_t:s0\n\
/var/lib(/.*)?\tsystem_u:object_r:var_lib_t:s0\n\
/\tsystem_u:object_r:root_t:s0\n";
    let mut layers = vec![
        Layer::new(
            &[
                Ent::Dir("etc", 0o755),
                file(
                    "etc/selinux/config",
                    b"SELINUX=enforcing\nSELINUXTYPE=test\n",
                ),
                file("etc/selinux/test/contexts/files/file_contexts", fc),
                file("etc/selinux/test/policy/policy.33", b"not a real policy"),
                Ent::Dir("usr", 0o755),
                Ent::Dir("usr/bin", 0o755),
                file("usr/bin/sh", b"sh"),
                file("usr/bin/ls", b"ls"),
                Ent::Link("usr/sbin", "bin"),
                Ent::FileFull {
                    path: "usr/bin/ping".into(),
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    data: b"ping".to_vec(),
                    xattrs: vec![("security.capability", CAP_NET_RAW.to_vec())],
                },
            ],
            Comp::Gzip,
        ),
        Layer::new(
            &[
                file("var/lib/x", b"x"),
                file("etc/motd", b"hi"),
                file("usr/bin/ls2", b"ls"),
            ]
            .into_iter()
            // Enough paths for the lookups to be spread over several threads.
            .chain(
                (0..1500).map(|i| file(&format!("usr/share/many/f{i}"), format!("{i}").as_bytes())),
            )
            .collect::<Vec<_>>(),
            Comp::Gzip,
        ),
    ];
    let oci = t.path().join("oci");
    write_layout(&oci, "se", &layers, &[], "2024-01-01T00:00:00Z");
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let imgref = format!("ostree-unverified-image:oci:{}:se", oci.display());
    let summary = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let first = bin_cmd(["image", "pull"])
        .arg(&repo.path)
        .arg(&imgref)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", summary(&first));
    let ours = String::from_utf8_lossy(&first.stdout).trim().to_string();
    assert!(
        summary(&first).contains("0 kept from the previous version"),
        "{}",
        summary(&first)
    );
    repo.fsck();
    let listing = |c: &str| run(&mut repo.ostree(["ls", "-R", "-C", "-X", c]));
    // The oracle: the same tree committed by libostree with the same policy.
    let oracle = |c: &str, name: &str| {
        let co = t.path().join(name);
        repo.checkout(c, &co);
        let theirs = run(repo
            .ostree(["commit", "--orphan", "--owner-uid=0", "--owner-gid=0"])
            .arg(format!("--tree=dir={}", co.display()))
            .arg(format!("--selinux-policy={}", co.display())))
        .trim()
        .to_string();
        let (a, b) = (listing(c), listing(&theirs));
        assert_eq!(a, b, "ours:\n{a}\nostree commit --selinux-policy:\n{b}");
        a
    };
    let a = oracle(&ours, "co1");
    assert!(
        a.contains("shell_exec_t") && a.contains("etc_t") && a.contains("security.capability"),
        "{a}"
    );

    // An update changing one file: everything else keeps its labelled objects, and the
    // result is still exactly what ostree commit --selinux-policy makes.
    layers.push(Layer::new(&[file("usr/bin/ls", b"new ls")], Comp::Gzip));
    write_layout(&oci, "se", &layers, &[], "2024-01-02T00:00:00Z");
    let second = bin_cmd(["image", "pull"])
        .arg(&repo.path)
        .arg(&imgref)
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", summary(&second));
    let updated = String::from_utf8_lossy(&second.stdout).trim().to_string();
    let s2 = summary(&second);
    let kept: u64 = s2
        .split("labelled, ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{s2}"));
    assert!(kept > 1500, "most paths keep their labels: {s2}");
    repo.fsck();
    let b = oracle(&updated, "co2");
    assert!(b.contains("shell_exec_t"), "{b}");
}

/// What the user wants in the end: `ostree admin deploy` of the imported commit, into a
/// scratch sysroot (boot loader entries written, /etc from the image's /usr/etc).
#[test]
fn imported_commit_deploys_with_ostree_admin() {
    let t = tmpdir();
    let ents = placeholder_os();
    let oci = t.path().join("oci");
    write_layout(
        &oci,
        "os",
        &[Layer::new(&ents, Comp::Gzip)],
        &[],
        "2024-01-01T00:00:00Z",
    );
    let sysroot = t.path().join("sysroot");
    fs::create_dir(&sysroot).unwrap();
    let sr = format!("--sysroot={}", sysroot.display());
    run(Command::new("ostree")
        .args(["admin", "init-fs", "--modern"])
        .arg(&sysroot));
    run(Command::new("ostree").args(["admin", "os-init", &sr, "test"]));
    let repo = sysroot.join("ostree/repo");
    let c = pull(
        &repo,
        &format!("ostree-unverified-image:oci:{}:os", oci.display()),
    );
    run(Command::new("ostree").args(["admin", "deploy", &sr, "--os=test", &c]));
    let status = run(Command::new("ostree").args(["admin", "status", &sr]));
    assert!(status.contains(&format!("test {c}.0")), "{status}");
    let deploy = sysroot.join(format!("ostree/deploy/test/deploy/{c}.0"));
    assert_eq!(
        fs::read(deploy.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    let entries: Vec<_> = fs::read_dir(sysroot.join("boot/loader/entries"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1);
}

/// Not on a terminal: no progress bars, one summary line on stderr, the commit on stdout;
/// with --quiet, nothing on stderr.
#[test]
fn output_without_a_terminal() {
    let t = tmpdir();
    let oci = t.path().join("oci");
    write_layout(
        &oci,
        "x",
        &[Layer::new(&some_files(), Comp::Gzip)],
        &[],
        "2024-01-01T00:00:00Z",
    );
    let imgref = format!("ostree-unverified-image:oci:{}:x", oci.display());
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let mut cmd = bin_cmd(["image", "pull"]);
    cmd.arg(&repo.path).arg(&imgref);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", report(&cmd, &out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.trim().len(), 64, "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("layers: 1 imported, 0 reused;") && stderr.contains("200 files"),
        "{stderr}"
    );
    let repo2 = Repo::init(t.path().join("repo2"), "bare-user");
    let mut cmd = bin_cmd(["image", "pull", "--quiet"]);
    cmd.arg(&repo2.path).arg(&imgref);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        report(&cmd, &out)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
}

/// One layer on two different bases, listing neither its parent directory nor the target of
/// its hard link: over each base the result is what a container runtime makes of it (the
/// base's directory mode, the base's file behind the link), however the layer was stored
/// before; the same image pulled into a fresh repository gives the same commit.
#[test]
fn layer_reused_only_over_the_lower_layers_it_was_built_on() {
    let t = tmpdir();
    let base = |mode: u32, text: &[u8]| {
        Layer::new(
            &[
                Ent::Dir("opt", mode),
                file("opt/target", text),
                file(&format!("opt/base-{mode:o}"), b""),
            ],
            Comp::None,
        )
    };
    let top = || {
        Layer::new(
            &[
                file("opt/new", b"new"),
                Ent::Hard("opt/linked", "opt/target"),
            ],
            Comp::None,
        )
    };
    assert_eq!(top().digest, top().digest, "the same layer blob twice");
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    write_layout(
        &a,
        "x",
        &[base(0o755, b"from a"), top()],
        &[],
        "2024-01-01T00:00:00Z",
    );
    write_layout(
        &b,
        "x",
        &[base(0o700, b"from b"), top()],
        &[],
        "2024-01-01T00:00:00Z",
    );
    let imgref = |p: &Path| format!("ostree-unverified-image:oci:{}:x", p.display());

    let repo = Repo::init(t.path().join("repo"), "bare");
    let ca = pull(&repo.path, &imgref(&a));
    let cb = pull(&repo.path, &imgref(&b));
    repo.fsck();
    let check = |c: &str, mode: &str, text: &str| {
        let ls = run(&mut repo.ostree(["ls", "-d", c, "/opt"]));
        assert!(ls.starts_with(mode), "{ls}");
        let linked = run(&mut repo.ostree(["cat", c, "/opt/linked"]));
        assert_eq!(linked, text);
    };
    check(&ca, "d00755", "from a");
    check(&cb, "d00700", "from b");
    // And back: image a again over a repository where the layer was last stored over b.
    let fresh = Repo::init(t.path().join("fresh"), "bare");
    assert_eq!(pull(&fresh.path, &imgref(&b)), cb);
    run(&mut repo.ostree(["refs", "--delete", "ostree/container/image"]));
    assert_eq!(pull(&repo.path, &imgref(&a)), ca);
    check(&ca, "d00755", "from a");
}

/// Pulling from containers-storage through skopeo leaves no temporary file behind. Debian 12's skopeo copies
/// each blob it serves from containers-storage into its directory for big temporary files
/// (/var/tmp, whatever $TMPDIR says) and never removes it: before the importer gave skopeo a
/// `--tmpdir` of its own, every pull left a file per blob there, as large as the layer. The
/// image holds a marker found nowhere else, so a file made by another test cannot count.
#[test]
fn containers_storage_pull_leaves_no_temporary_files() {
    let t = tmpdir();
    let b = Buildah::new(Driver::Vfs);
    let marker = format!("leak-check-{}", uuid_like());
    let ctr = b.from("scratch");
    let root = b.mount(&ctr);
    fs::create_dir_all(root.join("usr/share")).unwrap();
    fs::write(root.join("usr/share/marker"), &marker).unwrap();
    b.umount(&ctr);
    // A Docker-format manifest: such an image is not read in place
    // (containers_storage_read_in_place) but through skopeo, whose leak this is about.
    run(b.cmd().args([
        "commit",
        "--quiet",
        "--format",
        "docker",
        &ctr,
        "localhost/leak-check",
    ]));
    let started = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    pull(
        &repo.path,
        &format!(
            "ostree-unverified-image:{}",
            b.storage_ref("localhost/leak-check")
        ),
    );
    repo.fsck();
    let mut left = Vec::new();
    for dir in [
        Path::new("/var/tmp"),
        &std::env::temp_dir(),
        &repo.path.join("tmp"),
    ] {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let Ok(m) = e.metadata() else { continue };
            let new = m.modified().map(|t| t >= started).unwrap_or(false);
            if m.is_file() && new && m.len() < (1 << 20) {
                let data = fs::read(e.path()).unwrap_or_default();
                if data.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                    left.push(e.path());
                }
            }
        }
    }
    assert!(
        left.is_empty(),
        "temporary copies of the image left: {left:?}"
    );
    let proxy_dirs: Vec<_> = fs::read_dir(repo.path.join("tmp"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("ostree-container-")
        })
        .map(|e| e.path())
        .collect();
    assert!(proxy_dirs.is_empty(), "{proxy_dirs:?}");
}

/// 32 hex digits from the clock and the process id: unique enough for a marker.
fn uuid_like() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{n:024x}{:08x}", std::process::id())
}
