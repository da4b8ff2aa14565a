//! How the exporter reaches images (issue 11): only the blobs it lacks fetched from a
//! registry (asserted from the registry's own request log), `image check`, logins and TLS
//! options, size limits on image metadata, and a stored blob listed with another diff_id.

use std::path::Path;
use std::process::Command;

use super::registry::{self, Registry};
use crate::support::oci::*;
use crate::support::{bin, bin_cmd, report, run, run_fails};

const CREATED: &str = "2024-01-01T00:00:00Z";

/// `n` gzip layers, each with a few distinct files.
fn layers(n: usize) -> Vec<Layer> {
    (0..n)
        .map(|i| {
            let files: Vec<Ent> = (0..20)
                .map(|f| {
                    file(
                        &format!("usr/share/layer{i}/f{f}"),
                        format!("layer {i} file {f}\n").repeat(50).as_bytes(),
                    )
                })
                .collect();
            Layer::new(&files, Comp::Gzip)
        })
        .collect()
}

/// The manifest and config digests of the only image in a layout.
fn manifest_and_config(layout: &Path) -> (String, String) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.strip_prefix("sha256:").unwrap())
    };
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(blob(&md)).unwrap()).unwrap();
    let cd = m["config"]["digest"].as_str().unwrap().to_string();
    (md, cd)
}

/// skopeo copy of a layout's only image into the registry.
pub(super) fn push(reg: &Registry, layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let (k, home) = reg.env();
    run(crate::support::skopeo()
        .env(k, home)
        .args(["copy", "--quiet", "--insecure-policy"])
        .args(extra)
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(reg.docker(dest)));
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Pull v1 from a registry, then v2 with one more layer: `image check` reads the manifest and
/// config only, and reports the one missing layer and its size; the pull fetches that layer's
/// blob and the config, and nothing else (the registry's request log says so); the result is
/// the same content as v2 read from its layout.
#[test]
fn registry_update_fetches_only_the_new_layer() {
    let t = Scratch::new();
    let reg = Registry::start();
    let (k, home) = reg.env();
    let (v1, v2) = (t.path().join("v1"), t.path().join("v2"));
    write_layout(&v1, "v", &layers(3), &[("version", "1")], CREATED);
    let l2 = layers(4);
    let new_layer = (l2[3].digest.clone(), l2[3].size);
    write_layout(&v2, "v", &l2, &[("version", "2")], CREATED);
    push(&reg, &v1, "v", "os:latest", &[]);
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let imgref = format!("ostree-unverified-registry:{}/os:latest", reg.host);
    let exp = |args: &[&str]| {
        let mut c = bin_cmd(args);
        c.env(k, home);
        c
    };
    let c1 = run(exp(&["image", "pull", "--quiet"])
        .arg(&repo.path)
        .arg(&imgref));
    let first = reg.blob_gets();
    assert_eq!(first.len(), 4, "three layers and the config: {first:?}");

    push(&reg, &v2, "v", "os:latest", &[]);
    let (manifest2, config2) = manifest_and_config(&v2);
    let n = reg.blob_gets().len();
    let check = run(exp(&["image", "check", "--json"])
        .arg(&repo.path)
        .arg(&imgref));
    let v: serde_json::Value = serde_json::from_str(&check).unwrap();
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["manifest_digest"], manifest2.as_str(), "{v}");
    assert_eq!(v["layers_total"], 4, "{v}");
    assert_eq!(v["layers_missing"], 1, "{v}");
    assert_eq!(v["bytes_missing"], new_layer.1, "{v}");
    assert_eq!(
        reg.blob_gets()[n..],
        [config2.as_str()],
        "check reads the config only"
    );

    let n = reg.blob_gets().len();
    let mut pull2 = exp(&["image", "pull"]);
    pull2.arg(&repo.path).arg(&imgref);
    let out = pull2.output().unwrap();
    assert!(out.status.success(), "{}", report(&pull2, &out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 imported, 3 reused"), "{err}");
    let c2 = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_ne!(c1.trim(), c2);
    assert_eq!(
        sorted(reg.blob_gets()[n..].to_vec()),
        sorted(vec![config2, new_layer.0]),
        "only the new layer and the config are fetched"
    );
    repo.fsck();
    let check = run(exp(&["image", "check"]).arg(&repo.path).arg(&imgref));
    assert!(check.contains("unchanged"), "{check}");
    // The same content as the layout read directly.
    let other = Repo::init(t.path().join("other"), "bare-user");
    let c3 = pull(
        &other.path,
        &format!("ostree-unverified-image:oci:{}:v", v2.display()),
    );
    let ls = |r: &Repo, c: &str| run(&mut r.ostree(["ls", "-R", "-C", "-X", c]));
    assert_eq!(ls(&repo, &c2), ls(&other, &c3));
}

/// A registry with TLS (a self-signed certificate) and a login: without the login, or without
/// trusting the certificate, the pull is refused with containers/image's reason; with
/// `--authfile` and `--cert-dir` (or `--insecure-skip-tls-verification`) an encapsulated image
/// behind it comes back as its original commit, signature included.
#[test]
fn registry_with_login_and_tls_options() {
    let t = Scratch::new();
    let reg = Registry::start_secure();
    let (k, home) = reg.env();
    // An encapsulated commit.
    let src = Repo::init(t.path().join("src"), "bare");
    let tree = t.path().join("tree");
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    std::fs::write(tree.join("usr/bin/hello"), b"hello\n").unwrap();
    let c = run(src
        .ostree(["commit", "-b", "os", "--subject", "os"])
        .arg(format!("--tree=dir={}", tree.display())))
    .trim()
    .to_string();
    // Signed with a throwaway key (short path: gpg-agent's socket lives in the home).
    let gpg = tempfile::Builder::new()
        .prefix("gpg-")
        .tempdir_in("/tmp")
        .unwrap();
    let gpg_home = gpg.path().to_str().unwrap();
    run(Command::new("gpg")
        .args(["--homedir", gpg_home, "--batch", "--passphrase", ""])
        .args([
            "--quick-gen-key",
            "Test <test@example.com>",
            "ed25519",
            "sign",
            "never",
        ]));
    run(&mut src.ostree([
        "gpg-sign",
        &format!("--gpg-homedir={gpg_home}"),
        &c,
        "test@example.com",
    ]));
    let _ = Command::new("gpgconf")
        .args(["--homedir", gpg_home, "--kill", "gpg-agent"])
        .output();
    let oci = t.path().join("oci");
    run(bin_cmd(["encapsulate", "--repo"])
        .arg(&src.path)
        .arg(&c)
        .arg(format!("oci:{}:e", oci.display())));
    let certs = reg.cert_dir();
    let creds = format!("{}:{}", registry::USER, registry::PASSWORD);
    push(
        &reg,
        &oci,
        "e",
        "enc:1",
        &[
            "--dest-creds",
            &creds,
            "--dest-cert-dir",
            certs.to_str().unwrap(),
        ],
    );
    let auth = reg.authfile();
    let imgref = format!("ostree-unverified-registry:{}/enc:1", reg.host);
    let dst = Repo::init(t.path().join("dst"), "bare");
    let unencap = |opts: &[&str]| {
        let mut cmd = bin_cmd(["unencapsulate", "--quiet", "--repo"]);
        cmd.env(k, home).arg(&dst.path).args(opts).arg(&imgref);
        cmd
    };
    let cert_dir = ["--cert-dir", certs.to_str().unwrap()];
    let authfile = ["--authfile", auth.to_str().unwrap()];
    let err = run_fails(&mut unencap(&cert_dir));
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
    let err = run_fails(&mut unencap(&authfile));
    assert!(err.contains("certificate"), "{err}");
    assert!(dst.refs().is_empty(), "nothing written: {:?}", dst.refs());
    let out = run(&mut unencap(&[authfile, cert_dir].concat()));
    assert_eq!(out.trim(), c, "the original commit");
    dst.fsck();
    let sigs =
        |r: &Repo| run(&mut r.ostree(["show", "--print-detached-metadata-key=ostree.gpgsigs", &c]));
    assert_eq!(sigs(&dst), sigs(&src), "with its signature");
    let dst2 = Repo::init(t.path().join("dst2"), "bare");
    let out = run(bin_cmd([
        "image",
        "pull",
        "--quiet",
        "--insecure-skip-tls-verification",
    ])
    .env(k, home)
    .args(authfile)
    .arg(&dst2.path)
    .arg(&imgref));
    assert_eq!(out.trim(), c);
}

/// A layer blob already imported, listed in a new image's config with another diff_id: the
/// config contradicts the blob, so the pull is refused (naming both diff_ids) and nothing
/// moves. Before issue 11 the stored layer was reused without looking at the diff_id.
#[test]
fn bad_stored_blob_listed_with_another_diff_id() {
    let t = Scratch::new();
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let good = t.path().join("good");
    let l = layers(2);
    let (right, digest) = (l[0].diff_id.clone(), l[0].digest.clone());
    write_layout(&good, "g", &l, &[], CREATED);
    pull(
        &repo.path,
        &format!("ostree-unverified-image:oci:{}:g", good.display()),
    );
    let before = repo.refs();
    let mut l = layers(2);
    let wrong = format!("sha256:{}", "cd".repeat(32));
    l[0].diff_id = wrong.clone();
    let bad = t.path().join("bad");
    write_layout(&bad, "b", &l, &[], CREATED);
    let err = run_fails(
        bin_cmd(["image", "pull"])
            .arg(&repo.path)
            .arg(format!("ostree-unverified-image:oci:{}:b", bad.display())),
    );
    for want in ["diff_id", &right, &wrong, &digest] {
        assert!(err.contains(want), "error should contain {want:?}: {err}");
    }
    assert_eq!(repo.refs(), before, "no ref moved");
    repo.fsck();
}

/// A layout at `dest` with the image of `base` (tag `tag`) plus the layer `extra` on top (its
/// config's diff_ids passed through `tamper` first), tagged `d`: an image derived from it, as
/// a build tool would write it.
fn derive_layout(
    base: &Path,
    tag: &str,
    dest: &Path,
    extra: &Layer,
    tamper: impl Fn(&mut Vec<serde_json::Value>),
) {
    run(Command::new("cp").arg("-a").arg(base).arg(dest));
    let blobs = dest.join("blobs/sha256");
    let path = |d: &str| blobs.join(d.strip_prefix("sha256:").unwrap());
    let read = |d: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path(d)).unwrap()).unwrap()
    };
    let put = |v: &serde_json::Value| -> (String, usize) {
        let b = serde_json::to_vec(v).unwrap();
        let d = sha(&b);
        std::fs::write(path(&d), &b).unwrap();
        (d, b.len())
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest = read(&md);
    let mut config = read(manifest["config"]["digest"].as_str().unwrap());
    std::fs::write(path(&extra.digest), &extra.blob).unwrap();
    let mut diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap().clone();
    diff_ids.push(extra.diff_id.clone().into());
    tamper(&mut diff_ids);
    config["rootfs"]["diff_ids"] = diff_ids.into();
    let (cd, cs) = put(&config);
    manifest["config"]["digest"] = cd.into();
    manifest["config"]["size"] = cs.into();
    manifest["layers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "mediaType": extra.media_type, "digest": extra.digest, "size": extra.size}));
    let (md, ms) = put(&manifest);
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
        "annotations": {"org.opencontainers.image.ref.name": "d"}}]});
    std::fs::write(dest.join("index.json"), index.to_string()).unwrap();
}

/// An image derived from an encapsulated base whose commit is already stored, listing one of
/// the base's ostree layer blobs with another diff_id: refused like a plain layer (naming the
/// blob and both diff_ids), nothing moves. The base is reused only when every ostree layer was
/// verified against the diff_id listed (recorded under `ostree/container/diffid/…`); without
/// that record (an older import), the base is read again, which verifies it and records it.
/// Before issue 11 the reused base was never checked.
#[test]
fn bad_stored_ostree_layer_listed_with_another_diff_id() {
    let t = Scratch::new();
    let tree = t.path().join("tree");
    for (f, data) in [("usr/bin/a", "a"), ("usr/lib/b", "b"), ("usr/share/c", "c")] {
        std::fs::create_dir_all(tree.join(f).parent().unwrap()).unwrap();
        std::fs::write(tree.join(f), data).unwrap();
    }
    let enc = t.path().join("enc");
    let (_src, base) = super::encapsulated_base(t.path(), &tree, &enc);
    let extra = |n: usize| Layer::new(&[file(&format!("usr/extra{n}"), b"x")], Comp::Gzip);
    let derived = |name: &str, n: usize, tamper: &dyn Fn(&mut Vec<serde_json::Value>)| {
        let dest = t.path().join(name);
        derive_layout(&enc, "base", &dest, &extra(n), tamper);
        format!("ostree-unverified-image:oci:{}:d", dest.display())
    };
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let pull_err = |imgref: &str| {
        let mut c = bin_cmd(["image", "pull"]);
        c.arg(&repo.path).arg(imgref);
        let out = c.output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let records = || -> Vec<String> {
        let r = repo.refs();
        r.into_keys().filter(|k| k.contains("/diffid/")).collect()
    };
    pull(&repo.path, &derived("good", 1, &|_| {}));
    let n_ostree = records().len();
    assert!(
        n_ostree >= 2,
        "one record per ostree layer: {:?}",
        repo.refs()
    );
    // The base is reused by a second derived image with the same diff_ids.
    let (status, err) = pull_err(&derived("good2", 2, &|_| {}));
    assert!(status.success(), "{err}");
    assert!(
        err.contains(&format!("1 imported, {n_ostree} reused")),
        "{err}"
    );

    // The first ostree layer's blob with another diff_id.
    let manifest: serde_json::Value = serde_json::from_str(&run(crate::support::skopeo()
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:base", enc.display()))))
    .unwrap();
    let digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong = format!("sha256:{}", "cd".repeat(32));
    let right = std::cell::RefCell::new(String::new());
    let bad = derived("bad", 3, &|ids| {
        *right.borrow_mut() = ids[0].as_str().unwrap().to_string();
        ids[0] = wrong.clone().into();
    });
    let right = right.into_inner();
    let check_refused = || {
        let before = repo.refs();
        let (status, err) = pull_err(&bad);
        assert!(matches!(status.code(), Some(1 | 2)), "{status}: {err}");
        for want in ["diff_id", &right, &wrong, &digest] {
            assert!(err.contains(want), "error should contain {want:?}: {err}");
        }
        assert_eq!(repo.refs(), before, "no ref moved");
        repo.fsck();
    };
    check_refused();

    // Records missing (an import from before they existed): the base is read again.
    for r in records() {
        run(&mut repo.ostree(["refs", "--delete", &r]));
    }
    let (status, err) = pull_err(&derived("good3", 4, &|_| {}));
    assert!(status.success(), "{err}");
    assert!(
        err.contains(&format!("{} imported, 0 reused", n_ostree + 1)),
        "{err}"
    );
    assert_eq!(records().len(), n_ostree);
    let blobs: Vec<String> = repo
        .refs()
        .into_iter()
        .filter(|(k, _)| k.contains("/blob/"))
        .map(|(_, c)| c)
        .collect();
    assert_eq!(
        blobs.iter().filter(|c| **c == base).count(),
        n_ostree,
        "the ostree layers still name the base commit"
    );
    check_refused();
}

/// Peak memory (max RSS, KiB) and stderr of a command, from GNU time.
pub(super) fn peak_kib(cmd: &mut Command) -> (u64, String, bool) {
    let mut t = Command::new("/usr/bin/time");
    t.arg("-f").arg("peak-rss-kib=%M").arg(cmd.get_program());
    t.args(cmd.get_args());
    let out = t
        .output()
        .expect("/usr/bin/time (package time, scripts/deps)");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let kib = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("peak-rss-kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {err}"));
    (kib, err, out.status.success())
}

/// An `index.json`, a manifest and a config of 100 MB each (valid JSON padded with spaces):
/// refused above 4 MiB (containers/image's limit) before being read, so peak memory stays
/// small; the repository is untouched.
#[test]
fn bad_huge_index_manifest_config() {
    let t = Scratch::new();
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let pad = |json: &[u8]| {
        let mut v = json.to_vec();
        v.resize(100 << 20, b' ');
        v
    };
    let put = |layout: &Path, data: &[u8]| {
        let d = sha(data);
        std::fs::write(
            layout
                .join("blobs/sha256")
                .join(d.strip_prefix("sha256:").unwrap()),
            data,
        )
        .unwrap();
        d
    };
    let make = |name: &str| {
        let p = t.path().join(name);
        write_layout(&p, "x", &layers(1), &[], CREATED);
        p
    };
    let blob = |layout: &Path, d: &str| {
        std::fs::read(
            layout
                .join("blobs/sha256")
                .join(d.strip_prefix("sha256:").unwrap()),
        )
        .unwrap()
    };
    let index_for = |md: &str, size: usize| {
        serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "x"}}]})
        .to_string()
    };
    // index.json itself.
    let index = make("index");
    let raw = std::fs::read(index.join("index.json")).unwrap();
    std::fs::write(index.join("index.json"), pad(&raw)).unwrap();
    // The manifest.
    let manifest = make("manifest");
    let (md, _) = manifest_and_config(&manifest);
    let big = pad(&blob(&manifest, &md));
    let d = put(&manifest, &big);
    std::fs::write(manifest.join("index.json"), index_for(&d, big.len())).unwrap();
    // The config.
    let config = make("config");
    let (md, cd) = manifest_and_config(&config);
    let big = pad(&blob(&config, &cd));
    let cd2 = put(&config, &big);
    let m = String::from_utf8(blob(&config, &md))
        .unwrap()
        .replace(&cd, &cd2)
        .replace(
            &format!("\"size\":{}", blob(&config, &cd).len()),
            &format!("\"size\":{}", big.len()),
        );
    let md2 = put(&config, m.as_bytes());
    std::fs::write(config.join("index.json"), index_for(&md2, m.len())).unwrap();

    for (layout, what) in [
        (&index, "index.json"),
        (&manifest, "manifest"),
        (&config, "config"),
    ] {
        let (kib, err, success) = peak_kib(bin_cmd(["image", "pull"]).arg(&repo.path).arg(
            format!("ostree-unverified-image:oci:{}:x", layout.display()),
        ));
        assert!(!success, "{what}: {err}");
        assert!(err.contains(what), "{what}: {err}");
        assert!(err.contains("more than the 4194304 bytes"), "{what}: {err}");
        assert!(kib < 50 * 1024, "{what}: peak memory {kib} KiB");
    }
    assert!(repo.refs().is_empty());
    repo.fsck();
}

/// `--progress-fd 3`: one JSON object per line. `start` gives the plan, `reuse` names each
/// stored layer, `fetch` follows the one new layer to its full size, then `commit` and `done`
/// (the same commit as stdout). Unchanged: `done` with `unchanged`. A descriptor that is not
/// open is an error.
#[test]
fn progress_fd_json_lines() {
    let t = Scratch::new();
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let oci = t.path().join("oci");
    let imgref = format!("ostree-unverified-image:oci:{}:v", oci.display());
    write_layout(&oci, "v", &layers(3), &[], CREATED);
    pull(&repo.path, &imgref);
    let l = layers(4);
    let (new_digest, new_size) = (l[3].digest.clone(), l[3].size);
    write_layout(&oci, "v", &l, &[], CREATED);
    let events_file = t.path().join("events.jsonl");
    let run = || -> (String, Vec<serde_json::Value>) {
        let out = run(Command::new("sh")
            .arg("-c")
            .arg(r#""$0" image pull --quiet --progress-fd 3 "$1" "$2" 3>"$3""#)
            .arg(bin())
            .arg(&repo.path)
            .arg(&imgref)
            .arg(&events_file));
        let text = std::fs::read_to_string(&events_file).unwrap();
        let events = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect();
        (out.trim().to_string(), events)
    };
    let (commit, ev) = run();
    let stages: Vec<&str> = ev.iter().map(|e| e["stage"].as_str().unwrap()).collect();
    assert_eq!(stages[0], "start", "{ev:?}");
    assert_eq!(ev[0]["layers"], 4);
    assert_eq!(ev[0]["layers_to_fetch"], 1);
    assert_eq!(ev[0]["bytes_to_fetch"], new_size);
    assert_eq!(
        stages.iter().filter(|s| **s == "reuse").count(),
        3,
        "{ev:?}"
    );
    let fetches: Vec<&serde_json::Value> = ev.iter().filter(|e| e["stage"] == "fetch").collect();
    assert!(!fetches.is_empty(), "{ev:?}");
    assert!(fetches
        .iter()
        .all(|e| e["layer"] == new_digest.as_str() && e["index"] == 4 && e["total"] == new_size));
    assert_eq!(fetches.last().unwrap()["bytes"], new_size);
    assert_eq!(&stages[stages.len() - 2..], ["commit", "done"], "{ev:?}");
    let done = ev.last().unwrap();
    assert_eq!(done["commit"], commit.as_str());
    assert_eq!(done["unchanged"], false);

    let (again, ev) = run();
    assert_eq!(again, commit);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["stage"], "done");
    assert_eq!(ev[0]["unchanged"], true);

    let err = run_fails(
        bin_cmd(["image", "pull", "--progress-fd", "97"])
            .arg(&repo.path)
            .arg(&imgref),
    );
    assert!(err.contains("--progress-fd 97"), "{err}");
}

/// One reference parser for every verb: `image pull` takes a bare containers/image reference
/// (`oci:/x:t`) as `image history` does, and both take the `ostree-unverified-image:` form;
/// `encapsulate` writes to an `ostree-unverified-image:oci:…` destination.
#[test]
fn every_verb_takes_both_reference_forms() {
    let t = Scratch::new();
    let repo = Repo::init(t.path().join("repo"), "bare");
    let oci = t.path().join("oci");
    write_layout(&oci, "v", &layers(1), &[], CREATED);
    let bare = format!("oci:{}:v", oci.display());
    let full = format!("ostree-unverified-image:{bare}");
    let c = pull(&repo.path, &bare);
    assert_eq!(
        pull(&repo.path, &full),
        c,
        "the same image, the same record"
    );
    for r in [&bare, &full] {
        let h = run(bin_cmd(["image", "history", "--repo"])
            .arg(&repo.path)
            .arg(r));
        assert!(h.contains("hand-made test layer"), "{h}");
        run(bin_cmd(["image", "metadata", "--repo"])
            .arg(&repo.path)
            .arg(r));
    }
    let list = run(bin_cmd(["image", "list", "--repo"]).arg(&repo.path));
    assert_eq!(list.trim(), bare, "one image");
    // encapsulate to the ostree- form, read back through the bare form.
    let enc = t.path().join("enc");
    run(bin_cmd(["encapsulate", "--repo"])
        .arg(&repo.path)
        .arg(&c)
        .arg(format!("ostree-unverified-image:oci:{}:e", enc.display())));
    let dst = Repo::init(t.path().join("dst"), "bare");
    let out = run(bin_cmd(["unencapsulate", "--quiet", "--repo"])
        .arg(&dst.path)
        .arg(format!("oci:{}:e", enc.display())));
    assert_eq!(out.trim(), c);
}

/// An image stored in Docker format (schema 2, as `docker push` and many registries hold
/// them) imports from the registry: the proxy converts its manifest to OCI and its config with
/// it, so the config is read through GetFullConfig, checked against the converted manifest.
/// The tree equals the OCI image's.
#[test]
fn registry_docker_format_image_imports() {
    let t = Scratch::new();
    let reg = Registry::start();
    let (k, home) = reg.env();
    let layout = t.path().join("layout");
    write_layout(&layout, "v", &layers(2), &[("version", "1")], CREATED);
    push(&reg, &layout, "v", "docker-format:1", &["--format", "v2s2"]);
    let mut inspect = crate::support::skopeo();
    inspect
        .env(k, home)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(reg.docker("docker-format:1"));
    let raw: serde_json::Value = serde_json::from_str(&run(&mut inspect)).unwrap();
    assert_eq!(
        raw["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "the registry holds the Docker format"
    );
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let c = run(bin_cmd(["image", "pull", "--quiet"])
        .env(k, home)
        .arg(&repo.path)
        .arg(format!(
            "ostree-unverified-registry:{}/docker-format:1",
            reg.host
        )))
    .trim()
    .to_string();
    let c_oci = pull(
        &repo.path,
        &format!("ostree-unverified-image:oci:{}:v", layout.display()),
    );
    let content = |c: &str| run(&mut repo.ostree(["ls", "-R", "-C", "-X", c]));
    assert_eq!(content(&c), content(&c_oci));
    repo.fsck();
}
