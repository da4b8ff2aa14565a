//! containers-storage read in place (src/oci/storage.rs): each layer's tar put back together
//! from the store's tar-split record and the layer's files, without skopeo.

use std::fs;

use crate::support::oci::*;
use crate::support::{bin_cmd, run, run_fails, Buildah, Driver};

/// Two layers (the second deletes, replaces and links), committed by buildah in `b`.
fn two_layer_image(b: &Buildah, name: &str) {
    let ctr = b.from("scratch");
    let root = b.mount(&ctr);
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("usr/bin/tool"), vec![7u8; 300_000]).unwrap();
    fs::write(root.join("etc/gone"), b"soon deleted").unwrap();
    fs::write(root.join("etc/empty"), b"").unwrap();
    std::os::unix::fs::symlink("../usr/bin/tool", root.join("etc/link")).unwrap();
    b.umount(&ctr);
    b.commit(&ctr, &format!("{name}-base"));
    let ctr = b.from(&format!("{name}-base"));
    let root = b.mount(&ctr);
    fs::remove_file(root.join("etc/gone")).unwrap();
    fs::write(root.join("usr/bin/tool"), b"replaced").unwrap();
    fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool2")).unwrap();
    b.umount(&ctr);
    b.commit(&ctr, name);
}

/// With skopeo out of reach, an image buildah built (vfs and overlay) still imports from
/// containers-storage, and its tree equals the same image pushed to `oci:`.
#[test]
fn containers_storage_read_in_place() {
    let t = tempfile::tempdir().unwrap();
    // PATH without skopeo: only this program's own reading can succeed.
    let no_skopeo = t.path().join("bin");
    fs::create_dir_all(&no_skopeo).unwrap();
    for driver in [Driver::Vfs, Driver::Overlay] {
        let b = Buildah::new(driver);
        two_layer_image(&b, "localhost/in-place");
        let repo = Repo::init(
            t.path().join(format!("repo-{}", driver.name())),
            "bare-user",
        );
        let c = run(bin_cmd(["image", "pull", "--quiet"])
            .env("PATH", &no_skopeo)
            .arg(&repo.path)
            .arg(format!(
                "ostree-unverified-image:{}",
                b.storage_ref("localhost/in-place")
            )))
        .trim()
        .to_string();
        repo.fsck();
        let oci = t.path().join(format!("oci-{}", driver.name()));
        b.push_oci("localhost/in-place", &oci, "v1");
        let c2 = pull(
            &repo.path,
            &format!("ostree-unverified-image:oci:{}:v1", oci.display()),
        );
        let content = |c: &str| run(&mut repo.ostree(["ls", "-R", "-C", "-X", c]));
        assert_eq!(content(&c), content(&c2), "{}", driver.name());
        assert!(content(&c).contains("/usr/bin/tool2"));
        assert!(!content(&c).contains("/etc/gone"));
    }
}

/// A file changed in the store after the layer was committed: its tar no longer hashes to
/// the diff_id, and the pull is refused naming the layer; nothing is written.
#[test]
fn containers_storage_changed_in_place_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let b = Buildah::new(Driver::Vfs);
    two_layer_image(&b, "localhost/tampered");
    // vfs keeps every layer's whole tree: change the file in all of them.
    let dirs = fs::read_dir(b.root.join("vfs/dir")).unwrap();
    let mut changed = 0;
    for d in dirs.flatten() {
        let f = d.path().join("usr/bin/tool");
        if f.is_file() && fs::metadata(&f).unwrap().len() == 300_000 {
            fs::write(&f, vec![8u8; 300_000]).unwrap();
            changed += 1;
        }
    }
    assert!(
        changed > 0,
        "no layer file to change under {}",
        b.root.display()
    );
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let before = repo.refs();
    let err = run_fails(
        bin_cmd(["image", "pull", "--quiet"])
            .arg(&repo.path)
            .arg(format!(
                "ostree-unverified-image:{}",
                b.storage_ref("localhost/tampered")
            )),
    );
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains("layer 1/2"), "{err}");
    assert_eq!(repo.refs(), before);
    repo.fsck();
}

/// `containers-storage:NAME` without a store in brackets: the store storage.conf names (here
/// the test's own file, through `CONTAINERS_STORAGE_CONF`, as containers/storage reads it) is
/// read in place, skopeo out of reach.
#[test]
fn containers_storage_default_store_from_storage_conf() {
    let t = tempfile::tempdir().unwrap();
    let no_skopeo = t.path().join("bin");
    fs::create_dir_all(&no_skopeo).unwrap();
    let b = Buildah::new(Driver::Vfs);
    two_layer_image(&b, "localhost/default-store");
    let conf = t.path().join("storage.conf");
    fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
            b.runroot.display(),
            b.root.display()
        ),
    )
    .unwrap();
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let c = run(bin_cmd(["image", "pull", "--quiet"])
        .env("PATH", &no_skopeo)
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .arg(&repo.path)
        .arg("ostree-unverified-image:containers-storage:localhost/default-store"))
    .trim()
    .to_string();
    repo.fsck();
    let listing = run(&mut repo.ostree(["ls", "-R", &c]));
    assert!(listing.contains("/usr/bin/tool2"), "{listing}");
}
