//! An encapsulated image pulled by the host importer is a stored image like any other.

use serde_json::Value;

use super::{has_commit, manifest_of, oc, os_commit, repo, scratch, support};

fn image_refs(repo: &std::path::Path) -> Vec<String> {
    support::ostree(repo, ["refs"])
        .lines()
        .filter(|r| r.starts_with("ostree/container/image/"))
        .map(String::from)
        .collect()
}

/// `image pull` of an encapsulated commit gives back the original commit, and records the
/// image: `image list` shows it, `image metadata` prints its manifest, the image ref's commit
/// has the original as parent, a second pull is a no-op, and `image remove` + `image prune`
/// free the commit again.
#[test]
fn encapsulated_image_is_a_stored_image() {
    let d = scratch("stored");
    let src = repo(d.path(), "src");
    let c = os_commit(d.path(), &src);
    let oci = d.path().join("oci");
    let image = format!("oci:{}:v1", oci.display());
    oc(["encapsulate", "--repo", src.to_str().unwrap(), &c, &image]);

    let dst = repo(d.path(), "dst");
    let dst_s = dst.to_str().unwrap();
    let imgref = format!("ostree-unverified-image:{image}");
    let out = oc(["image", "pull", dst_s, &imgref]);
    assert_eq!(out.trim(), c, "the original commit");
    assert_eq!(oc(["image", "list", "--repo", dst_s]).trim(), image);
    let stored: Value =
        serde_json::from_str(&oc(["image", "metadata", "--repo", dst_s, &image])).unwrap();
    assert_eq!(stored, manifest_of(&oci, "v1"));
    let refs = image_refs(&dst);
    assert_eq!(refs.len(), 1, "{refs:?}");
    let parent = support::ostree(&dst, ["rev-parse", &format!("{}^", refs[0])]);
    assert_eq!(parent.trim(), c);
    // The image commit has the original's tree and version.
    let ls_image = support::ostree(&dst, ["ls", "-R", "-X", &refs[0]]);
    let ls_orig = support::ostree(&dst, ["ls", "-R", "-X", &c]);
    assert_eq!(ls_image, ls_orig);
    let show = support::ostree(&dst, ["show", &refs[0]]);
    assert!(show.contains("Version: 42.1"), "{show}");

    // Same manifest again: nothing to do.
    let mut again = support::bin_cmd([
        "unencapsulate",
        "--repo",
        dst_s,
        "--write-ref",
        "kept",
        &imgref,
    ]);
    let out = support::run_output(&mut again);
    assert!(out.status.success(), "{}", support::report(&again, &out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), c);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("image unchanged"), "{stderr}");
    assert_eq!(support::ostree(&dst, ["rev-parse", "kept"]).trim(), c);

    // Prune keeps what an image or a ref uses, and frees the rest.
    oc(["image", "prune", "--repo", dst_s]);
    assert!(has_commit(&dst, &c));
    oc(["image", "remove", "--repo", dst_s, &image]);
    support::ostree(&dst, ["refs", "--delete", "kept"]);
    assert!(image_refs(&dst).is_empty());
    let pruned = oc(["image", "prune", "--repo", dst_s]);
    let layers = stored["layers"].as_array().unwrap().len();
    assert!(
        pruned.contains(&format!("removed {layers} unused layers")),
        "{pruned}"
    );
    assert!(!has_commit(&dst, &c), "{pruned}");
    assert!(support::ostree(&dst, ["refs"]).trim().is_empty());
    support::ostree(&dst, ["fsck"]);
}
