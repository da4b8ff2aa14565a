//! Chunking by the rpm database, and the previous image found at the destination.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{fixture, layer_digests, oc, repo, scratch, support};

fn components(layer: &Value) -> Vec<String> {
    layer["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// A commit whose packages are real rpms (built with rpmbuild, installed with `rpm --root`
/// into `usr/lib/sysimage/rpm`, `/etc` merged into `usr/etc`) is packed a layer per package;
/// after one package is upgraded, encapsulating to the same `oci:` tag finds the image there,
/// keeps its layout, and only the commit layer and the upgraded package's layer change.
#[test]
fn rpm_packages_chunked_and_previous_image_found_at_destination() {
    let d = scratch("rpm-chunking");
    let r = repo(d.path(), "repo");
    let t = d.path().join("t");
    let work = d.path().join("rpmwork");
    std::fs::create_dir_all(&work).unwrap();
    fixture::os_tree(&t);
    let pkgs = fixture::numbered_packages(12, &["etc/{name}.conf"]);
    for (name, files) in &pkgs {
        let f: Vec<&str> = files.iter().map(String::as_str).collect();
        fixture::rpm_package(&t, &work, name, "1.0", &f);
    }
    let c1 = fixture::commit(&r, "os", &t, &["--add-metadata-string=version=1"]);
    {
        let f: Vec<&str> = pkgs[5].1.iter().map(String::as_str).collect();
        fixture::rpm_package(&t, &work, "pkg05", "2.0", &f);
    }
    let c2 = fixture::commit(&r, "os", &t, &["--add-metadata-string=version=2"]);

    let oci = d.path().join("oci");
    let dest = format!("oci:{}:latest", oci.display());
    let enc = |c: &str| -> Value {
        let out = oc([
            "encapsulate",
            "--repo",
            r.to_str().unwrap(),
            "--max-layers",
            "10",
            "--json",
            c,
            &dest,
        ]);
        serde_json::from_str(&out).unwrap()
    };

    let v1 = enc(&c1);
    assert!(v1["download_from_previous"].is_null(), "{v1:#}");
    let layers1 = v1["layers"].as_array().unwrap();
    let all: BTreeSet<String> = layers1.iter().flat_map(components).collect();
    for (name, _) in &pkgs {
        assert!(
            all.contains(&format!("pkg:{name}")),
            "{name} not a component: {all:?}"
        );
    }
    // The rpm database is in the commit layer: it changes with every package.
    assert!(!all.contains("dir:usr/lib/sysimage"), "{all:?}");
    let pkg05_layer = layers1
        .iter()
        .position(|l| components(l).contains(&"pkg:pkg05".to_string()))
        .unwrap();

    // Same tag: the image already there is the previous one.
    let v2 = enc(&c2);
    let dl = &v2["download_from_previous"];
    assert!(!dl.is_null(), "previous image not found at {dest}: {v2:#}");
    let (l1, l2) = (layer_digests(&v1), layer_digests(&v2));
    assert_eq!(l1.len(), l2.len(), "{v2:#}");
    let changed: Vec<usize> = (0..l1.len()).filter(|&i| l1[i] != l2[i]).collect();
    // Had /etc/pkg05.conf or the database not gone with the package and the commit, their
    // layers would have changed too.
    assert_eq!(changed, [0, pkg05_layer], "{v2:#}");
    assert_eq!(dl["layers_new"].as_u64(), Some(2), "{dl:#}");
    for (a, b) in layers1.iter().zip(v2["layers"].as_array().unwrap()) {
        assert_eq!(components(a), components(b), "layout not kept");
    }

    // It imports back to the upgraded commit, with the upgraded configuration.
    let dst = repo(d.path(), "dst");
    let out = oc([
        "unencapsulate",
        "--repo",
        dst.to_str().unwrap(),
        &format!("ostree-unverified-image:{dest}"),
    ]);
    assert_eq!(out.trim(), c2);
    let conf = support::ostree(&dst, ["cat", &c2, "/usr/etc/pkg05.conf"]);
    assert!(conf.starts_with("pkg05 2.0 etc/pkg05.conf"), "{conf}");
    support::ostree(&dst, ["fsck"]);

    // Without an rpm command it still works, by directory, and says what to install.
    let mut c = support::bin_cmd([
        "encapsulate",
        "--repo",
        r.to_str().unwrap(),
        "--json",
        &c2,
        &format!("oci:{}:norpm", d.path().join("oci-norpm").display()),
    ]);
    c.env("PATH", "/nonexistent");
    let out = support::run_output(&mut c);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", support::report(&c, &out));
    assert!(stderr.contains("install rpm"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all: BTreeSet<String> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(components)
        .collect();
    assert!(
        all.contains("dir:usr/lib/pkg05") && !all.contains("pkg:pkg05"),
        "{all:?}"
    );
}
