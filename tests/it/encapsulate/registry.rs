//! Encapsulating to a registry (a real one on loopback) and back.

use serde_json::Value;

use super::{fixture, layer_digests, repo, scratch};
use crate::support::{self, registry::Registry};

/// `encapsulate` pushes to `docker://` through skopeo; the next version pushed to the same tag
/// keeps the layout of the image found there (its manifest only is fetched) and reports what a
/// client downloads; `unencapsulate` of `ostree-unverified-registry:` gives the commit back.
#[test]
fn encapsulate_to_registry_and_back() {
    let reg = Registry::start();
    let (k, home) = reg.env();
    let d = scratch("registry");
    let r = repo(d.path(), "repo");
    let t = d.path().join("t");
    fixture::os_tree(&t);
    let pkgs = fixture::numbered_packages(6, &[]);
    let mk = |version: &str| {
        for (i, (name, files)) in pkgs.iter().enumerate() {
            let f: Vec<&str> = files.iter().map(String::as_str).collect();
            fixture::package(&t, name, if i == 2 { version } else { "1.0" }, &f);
        }
    };
    mk("1.0");
    let c1 = fixture::commit(&r, "os", &t, &["--add-metadata-string=version=1"]);
    mk("2.0");
    let c2 = fixture::commit(&r, "os", &t, &["--add-metadata-string=version=2"]);

    let dest = reg.docker("os:latest");
    let oc = |args: &[&str]| -> std::process::Output {
        let mut c = support::bin_cmd(args);
        c.env(k, home);
        let out = support::run_output(&mut c);
        assert!(out.status.success(), "{}", support::report(&c, &out));
        out
    };
    let enc = |c: &str| -> (Value, String) {
        let out = oc(&[
            "encapsulate",
            "--repo",
            r.to_str().unwrap(),
            "--json",
            c,
            &dest,
        ]);
        (
            serde_json::from_slice(&out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (v1, _) = enc(&c1);
    assert!(v1["download_from_previous"].is_null(), "{v1:#}");
    let (v2, stderr) = enc(&c2);
    assert!(
        stderr.contains(&format!("image already at {dest}")),
        "{stderr}"
    );
    let dl = &v2["download_from_previous"];
    let (l1, l2) = (layer_digests(&v1), layer_digests(&v2));
    let shared = l2.iter().filter(|l| l1.contains(l)).count();
    assert!(shared >= l2.len() - 2, "{v1:#}\n{v2:#}");
    assert_eq!(dl["layers_new"].as_u64(), Some((l2.len() - shared) as u64));

    // What the registry holds is what encapsulate reported.
    let mut inspect = support::cmd("skopeo", ["inspect", "--raw", dest.as_str()]);
    inspect.env(k, home);
    let manifest: Value = serde_json::from_str(&support::run(&mut inspect)).unwrap();
    let pushed: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pushed, l2);

    let dst = repo(d.path(), "dst");
    let out = oc(&[
        "unencapsulate",
        "--repo",
        dst.to_str().unwrap(),
        &format!("ostree-unverified-registry:{}/os:latest", reg.host),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), c2);
    support::ostree(&dst, ["fsck"]);
}
