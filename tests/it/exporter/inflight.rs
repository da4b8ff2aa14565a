//! Several layers fetched at once from a registry while the importer writes the one whose
//! turn it is (issue 11, src/host/inflight.rs), seen through `--progress-fd` events; and a
//! later blob that is corrupted, missing or short in the registry, which still leaves the
//! repository as it was.

use std::path::Path;
use std::process::Command;

use super::fetch::{peak_kib, push};
use super::registry::Registry;
use crate::support::oci::*;
use crate::support::{bin, bin_cmd, run, run_fails};

const CREATED: &str = "2024-01-01T00:00:00Z";

/// `n` bytes that do not compress and differ with `seed` (xorshift).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A first layer of `mib` files of 1 MiB each (uncompressed, so it takes the importer a
/// while to hash and write), then two small gzip layers; `seed` keeps the blobs of different
/// images apart in the registry.
fn image(dir: &Path, seed: u64, mib: usize) -> Vec<Layer> {
    let big: Vec<Ent> = (0..mib)
        .map(|i| {
            file(
                &format!("usr/big/f{i}"),
                &noise(seed * 1000 + i as u64, 1 << 20),
            )
        })
        .collect();
    let small = |n: u64| {
        let files: Vec<Ent> = (0..20)
            .map(|f| {
                file(
                    &format!("usr/small{n}/f{f}"),
                    &noise(seed * 1000 + 500 + n * 50 + f, 2000),
                )
            })
            .collect();
        Layer::new(&files, Comp::Gzip)
    };
    let layers = vec![Layer::new(&big, Comp::None), small(1), small(2)];
    write_layout(dir, "v", &layers, &[], CREATED);
    layers
}

/// `image pull --progress-fd 3` of `imgref` with the registry's HOME: stdout, stderr, success,
/// and the events.
fn pull_with_events(
    reg: &Registry,
    repo: &Path,
    imgref: &str,
    events: &Path,
) -> (String, bool, Vec<serde_json::Value>) {
    let (k, home) = reg.env();
    let out = Command::new("sh")
        .env(k, home)
        .arg("-c")
        .arg(r#""$0" image pull --quiet --progress-fd 3 "$1" "$2" 3>"$3""#)
        .arg(bin())
        .arg(repo)
        .arg(imgref)
        .arg(events)
        .output()
        .unwrap();
    let ev = std::fs::read_to_string(events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.success(), ev)
}

/// Position of the first event matching `f`.
fn at(ev: &[serde_json::Value], what: &str, f: impl Fn(&serde_json::Value) -> bool) -> usize {
    ev.iter()
        .position(f)
        .unwrap_or_else(|| panic!("no event {what} in {ev:#?}"))
}

/// A 3-layer image from the registry: the second and third blobs are fetched to their end
/// while the first layer (24 MiB) is still being imported, so the fetches overlap; the result
/// is the same tree as the image read from its layout. Before issue 11's in-flight fetches,
/// the third blob was not asked for until the first layer was in.
#[test]
fn registry_fetches_several_layers_while_the_first_is_imported() {
    let t = Scratch::new();
    let reg = Registry::start();
    let oci = t.path().join("oci");
    let layers = image(&oci, 1, 24);
    push(&reg, &oci, "v", "os:1", &[]);
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let imgref = format!("ostree-unverified-registry:{}/os:1", reg.host);
    let (out, ok, ev) = pull_with_events(&reg, &repo.path, &imgref, &t.path().join("ev"));
    assert!(ok, "{out}");
    let imported = |i: usize| {
        at(&ev, &format!("imported {i}"), |e| {
            e["stage"] == "imported" && e["index"] == i
        })
    };
    let fetched = |i: usize| {
        at(&ev, &format!("fetched {i}"), |e| {
            e["stage"] == "fetch" && e["index"] == i && e["bytes"] == e["total"]
        })
    };
    let started = |i: usize| {
        at(&ev, &format!("fetch start {i}"), |e| {
            e["stage"] == "fetch" && e["index"] == i && e["bytes"] == 0
        })
    };
    assert!(
        imported(1) < imported(2) && imported(2) < imported(3),
        "layers applied in order: {ev:#?}"
    );
    for i in [2, 3] {
        assert!(
            started(i) < imported(1),
            "layer {i} fetch started before layer 1 was in: {ev:#?}"
        );
        assert!(
            fetched(i) < fetched(1),
            "layer {i} fetched while layer 1 was: {ev:#?}"
        );
        assert!(
            fetched(i) < imported(1),
            "layer {i} fetched before layer 1 was in: {ev:#?}"
        );
        assert_eq!(ev[fetched(i)]["layer"], layers[i - 1].digest.as_str());
    }
    repo.fsck();
    let other = Repo::init(t.path().join("other"), "bare-user");
    let local = pull(
        &other.path,
        &format!("ostree-unverified-image:oci:{}:v", oci.display()),
    );
    let ls = |r: &Repo, c: &str| run(&mut r.ostree(["ls", "-R", "-C", "-X", c]));
    assert_eq!(
        ls(&repo, out.trim()),
        ls(&other, &local),
        "the same tree as from the layout"
    );
    assert_eq!(spool_leftovers(&repo.path), Vec::<String>::new());
}

/// Files in the repository's tmp/ that are not libostree's own (its staging and cache
/// directories): what a spool could have left behind.
fn spool_leftovers(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("staging-") && n != "cache")
        .collect();
    v.sort();
    v
}

/// The third blob of an image broken in the registry (bytes changed, the blob deleted, the
/// blob cut short) while the first two are fine: the pull fails naming that blob's digest,
/// no ref moves, `ostree fsck` is clean and no spool file is left; a short blob does not
/// hang the proxy.
#[test]
fn registry_bad_later_blob_leaves_the_repository_untouched() {
    let t = Scratch::new();
    let reg = Registry::start();
    let repo = Repo::init(t.path().join("repo"), "bare-user");
    let first = t.path().join("first");
    image(&first, 10, 1);
    push(&reg, &first, "v", "first:1", &[]);
    let (k, home) = reg.env();
    run(bin_cmd(["image", "pull", "--quiet"])
        .env(k, home)
        .arg(&repo.path)
        .arg(format!("ostree-unverified-registry:{}/first:1", reg.host)));
    let before = repo.refs();
    type Break = fn(&Path);
    let cases: [(&str, Break); 3] = [
        ("corrupted", |p| {
            let mut b = std::fs::read(p).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 0xff;
            std::fs::write(p, b).unwrap();
        }),
        ("missing", |p| std::fs::remove_file(p).unwrap()),
        ("short", |p| {
            let b = std::fs::read(p).unwrap();
            std::fs::write(p, &b[..b.len() / 2]).unwrap();
        }),
    ];
    for (seed, (what, break_it)) in cases.into_iter().enumerate() {
        let oci = t.path().join(what);
        let layers = image(&oci, 20 + seed as u64, 4);
        let name = format!("{what}:1");
        push(&reg, &oci, "v", &name, &[]);
        break_it(&reg.blob_file(&layers[2].digest));
        let imgref = format!("ostree-unverified-registry:{}/{name}", reg.host);
        let start = std::time::Instant::now();
        let err = run_fails(
            bin_cmd(["image", "pull", "--quiet"])
                .env(k, home)
                .arg(&repo.path)
                .arg(&imgref),
        );
        assert!(
            start.elapsed().as_secs() < 60,
            "{what}: took {:?}",
            start.elapsed()
        );
        assert!(
            err.contains(&layers[2].digest),
            "{what}: the error names the blob: {err}"
        );
        assert_eq!(repo.refs(), before, "{what}: no ref moved");
        repo.fsck();
        assert_eq!(spool_leftovers(&repo.path), Vec::<String>::new(), "{what}");
    }
}

/// Peak memory of a pull from the registry does not follow layer size: the blobs go to spool
/// files, not memory. A 128 MiB layer (one fetch at a time, being read while it is written)
/// takes less than the layer itself, and at most the importer's in-memory file budget (64 MiB,
/// src/host/layer.rs) more than a 4 MiB one.
#[test]
fn registry_pull_memory_does_not_grow_with_layer_size() {
    let t = Scratch::new();
    let reg = Registry::start();
    let (k, home) = reg.env();
    let peak = |name: &str, mib: usize| {
        let oci = t.path().join(name);
        image(&oci, 40 + mib as u64, mib);
        push(&reg, &oci, "v", &format!("{name}:1"), &[]);
        let repo = Repo::init(t.path().join(format!("repo-{name}")), "bare-user");
        // (peak_kib runs the program and arguments alone: HOME goes through env.)
        let (kib, err, ok) = peak_kib(
            Command::new("env")
                .arg(format!("{k}={}", home.display()))
                .arg(bin())
                .args(["image", "pull", "--quiet"])
                .arg(&repo.path)
                .arg(format!("ostree-unverified-registry:{}/{name}:1", reg.host)),
        );
        assert!(ok, "{err}");
        kib
    };
    let small = peak("small", 4);
    let large = peak("large", 128);
    assert!(large < 128 * 1024, "peak {large} KiB for a 128 MiB layer");
    assert!(
        large < small + 64 * 1024,
        "peak {large} KiB for a 128 MiB layer, {small} KiB for a 4 MiB one"
    );
}
