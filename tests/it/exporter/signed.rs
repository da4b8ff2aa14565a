//! `ostree-image-signed:` through the proxy (issue 11): containers/image verifies the image
//! against a signature policy, with real GPG keys, `skopeo copy --sign-by`, the loopback
//! registry and a lookaside signature store, all made at test time. The machine's
//! /etc/containers is never touched: the policy and the registries.d directory are the test's
//! own, given with `--policy` and `--registries.d` (skopeo's spelling).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::object_count;
use super::registry::Registry;
use crate::support::oci::*;
use crate::support::{bin_cmd, run, run_refused};

const CREATED: &str = "2024-01-01T00:00:00Z";

/// A GnuPG home with one signing key (no passphrase), made at test time; its agent is stopped
/// when dropped.
struct Gpg {
    home: tempfile::TempDir,
    /// The key's fingerprint.
    fpr: String,
}

impl Gpg {
    fn new(who: &str) -> Gpg {
        // In /tmp: gpg-agent's socket path must stay short.
        let home = tempfile::Builder::new().prefix("gpg-").tempdir().unwrap();
        fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut g = Gpg {
            home,
            fpr: String::new(),
        };
        run(g
            .cmd()
            .args(["--batch", "--passphrase", "", "--quick-gen-key"])
            .arg(format!("{who} <{who}@example.com>"))
            .args(["ed25519", "sign", "never"]));
        let colons = run(g.cmd().args(["--with-colons", "--list-secret-keys"]));
        g.fpr = colons
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| !f.is_empty()))
            .expect("a fingerprint")
            .to_string();
        g
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path());
        c
    }

    /// The public key, exported to `path` (a `signedBy` `keyPath`).
    fn export(&self, path: &Path) -> PathBuf {
        run(self
            .cmd()
            .arg("--output")
            .arg(path)
            .args(["--export", &self.fpr]));
        path.to_path_buf()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// The test's containers configuration: a registries.d saying where the registry's
/// signatures are (a lookaside directory, written by `skopeo copy --sign-by`, read back on
/// pull), and policy files.
struct Trust {
    registries_d: PathBuf,
    dir: PathBuf,
}

impl Trust {
    fn new(dir: &Path, reg: &Registry) -> Trust {
        let registries_d = dir.join("registries.d");
        fs::create_dir_all(&registries_d).unwrap();
        let store = dir.join("sigstore");
        fs::write(
            registries_d.join("test.yaml"),
            format!(
                "docker:\n  {}:\n    lookaside: file://{}\n    lookaside-staging: file://{}\n",
                reg.host,
                store.display(),
                store.display()
            ),
        )
        .unwrap();
        Trust {
            registries_d,
            dir: dir.to_path_buf(),
        }
    }

    /// A policy file `name` with `default` and, for the registry, `registry` (JSON arrays).
    fn policy(&self, name: &str, reg: &Registry, default: &str, registry: &str) -> PathBuf {
        let p = self.dir.join(name);
        fs::write(
            &p,
            format!(
                r#"{{"default": {default}, "transports": {{"docker": {{"{}": {registry}}}}}}}"#,
                reg.host
            ),
        )
        .unwrap();
        p
    }
}

/// `{"type":"signedBy",…}` for the key at `key`.
fn signed_by(key: &Path) -> String {
    format!(
        r#"[{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "{}"}}]"#,
        key.display()
    )
}

/// skopeo copy of a layout's image into the registry, signed by `signer` when given.
fn push(reg: &Registry, trust: &Trust, layout: &Path, dest: &str, signer: Option<&Gpg>) {
    let (k, home) = reg.env();
    let mut c = crate::support::skopeo();
    c.env(k, home)
        .arg("--registries.d")
        .arg(&trust.registries_d)
        .args(["copy", "--quiet", "--insecure-policy"]);
    if let Some(g) = signer {
        c.env("GNUPGHOME", g.home.path())
            .args(["--sign-by", &g.fpr]);
    }
    c.arg(format!("oci:{}:t", layout.display()))
        .arg(reg.docker(dest));
    run(&mut c);
}

/// Images signed with a key made here are pulled with `ostree-image-signed:docker://…` under
/// a policy that requires that key; an unsigned image, one signed with another key, and one
/// already pulled unverified are refused with containers/image's reason and nothing written;
/// a policy whose default is `insecureAcceptAnything` makes `ostree-image-signed:` refuse
/// before anything is fetched, as ostree-rs-ext does.
#[test]
fn image_signed_pulls_only_what_the_policy_verifies() {
    let t = Scratch::new();
    let reg = Registry::start();
    let trust = Trust::new(t.path(), &reg);
    let (ours, theirs) = (Gpg::new("signer"), Gpg::new("stranger"));
    let key = ours.export(&t.path().join("signer.gpg"));
    let strict = trust.policy(
        "strict.json",
        &reg,
        r#"[{"type": "reject"}]"#,
        &signed_by(&key),
    );
    let lax = trust.policy(
        "lax.json",
        &reg,
        r#"[{"type": "insecureAcceptAnything"}]"#,
        &signed_by(&key),
    );

    let layout = |name: &str| {
        let p = t.path().join(name);
        let files = [file(&format!("usr/share/{name}"), name.as_bytes())];
        write_layout(&p, "t", &[Layer::new(&files, Comp::Gzip)], &[], CREATED);
        p
    };
    push(&reg, &trust, &layout("signed"), "os:signed", Some(&ours));
    push(&reg, &trust, &layout("unsigned"), "os:unsigned", None);
    push(
        &reg,
        &trust,
        &layout("stranger"),
        "os:stranger",
        Some(&theirs),
    );

    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let (k, home) = reg.env();
    let pull_cmd = |policy: &Path, imgref: String| {
        let mut c = bin_cmd(["image", "pull", "--quiet"]);
        c.env(k, home)
            .arg("--policy")
            .arg(policy)
            .arg("--registries.d")
            .arg(&trust.registries_d)
            .arg(&repo.path)
            .arg(imgref);
        c
    };
    let signed_ref =
        |tag: &str| format!("ostree-image-signed:{}", reg.docker(&format!("os:{tag}")));

    // Refused: the repository keeps its refs and objects, and stays consistent.
    let refused = |policy: &Path, imgref: String, want: &[&str]| {
        let (refs, n) = (repo.refs(), object_count(&repo));
        let err = run_refused(&mut pull_cmd(policy, imgref));
        for w in want {
            assert!(err.contains(w), "the message should contain {w:?}: {err}");
        }
        assert_eq!(repo.refs(), refs, "no ref moved");
        assert_eq!(object_count(&repo), n, "no object written");
        repo.fsck();
        eprintln!("refused as expected: {err}");
        err
    };

    refused(
        &strict,
        signed_ref("unsigned"),
        &[
            "os:unsigned",
            "A signature was required, but no signature exists",
        ],
    );
    refused(
        &strict,
        signed_ref("stranger"),
        &["os:stranger", "strict.json", "Invalid GPG signature"],
    );
    refused(
        &lax,
        signed_ref("signed"),
        &["insecureAcceptAnything", "refusing usage", "lax.json"],
    );

    let c = run(&mut pull_cmd(&strict, signed_ref("signed")));
    repo.fsck();
    let ls = run(&mut repo.ostree(["ls", c.trim(), "/usr/share/signed"]));
    assert!(ls.contains("/usr/share/signed"), "{ls}");
    let list = run(bin_cmd(["image", "list", "--repo"]).arg(&repo.path));
    assert!(list.contains(&reg.docker("os:signed")), "{list}");

    // Pulled once without verification, the unsigned image is still refused when a verified
    // pull of the same manifest is asked for (no "unchanged" shortcut around the policy).
    run(&mut pull_cmd(
        &strict,
        format!("ostree-unverified-registry:{}/os:unsigned", reg.host),
    ));
    refused(
        &strict,
        signed_ref("unsigned"),
        &["A signature was required"],
    );

    // Without --policy, the machine's own policy applies (read here, never changed). When its
    // default accepts anything, as Debian's stock file does, even the signed image is refused.
    let system: serde_json::Value = fs::read("/etc/containers/policy.json")
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if system["default"][0]["type"] == "insecureAcceptAnything" {
        let (refs, n) = (repo.refs(), object_count(&repo));
        let mut c = bin_cmd(["image", "pull", "--registries.d"]);
        c.arg(&trust.registries_d)
            .env(k, home)
            .arg(&repo.path)
            .arg(signed_ref("signed"));
        let err = run_refused(&mut c);
        assert!(
            err.contains("refusing usage") && err.contains("/etc/containers/policy.json"),
            "{err}"
        );
        assert_eq!((repo.refs(), object_count(&repo)), (refs, n));
    }
}
