//! Hostile or unusual layers (issue 11), each from a generated OCI layout, with the tar bytes
//! written here where the tar crate cannot produce them.
//!
//! Malformed input is refused with exit code 1 or 2, a message naming the layer digest and
//! the path, and the repository as it was (`ostree fsck` clean, same refs, same objects).
//! Legal input imports and equals `umoci unpack` of the same layout. Where umoci refuses a
//! layer too, the test checks that it does, so the two keep agreeing.

use super::*;

use std::path::PathBuf;

/// A layer from raw (uncompressed) tar bytes.
fn raw_layer(tar: Vec<u8>) -> Layer {
    Layer {
        digest: sha(&tar),
        size: tar.len() as u64,
        diff_id: sha(&tar),
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        blob: tar,
    }
}

/// Pull `layers` into a repository already holding a good image: the pull must fail with
/// exit code 1 or 2 and a message holding the layer's digest and every `want`, and leave
/// the repository as it was. Returns the message.
fn refused(layers: Vec<Layer>, want: &[&str]) -> String {
    let t = tmpdir();
    let good = [Layer::new(&[file("usr/ok", b"ok")], Comp::Gzip)];
    let (repo, _, _) = imports(&t, &good, "2024-01-01T00:00:00Z");
    let (refs, objects) = (repo.refs(), object_count(&repo));
    let digests: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
    let bad = t.path().join("bad");
    write_layout(&bad, "b", &layers, &[], "2024-01-01T00:00:00Z");
    let mut cmd = bin_cmd(["image", "pull"]);
    cmd.arg(&repo.path)
        .arg(format!("ostree-unverified-image:oci:{}:b", bad.display()));
    let err = run_refused(&mut cmd);
    assert!(
        digests.iter().any(|d| err.contains(d.as_str())),
        "the message names no layer digest ({digests:?}): {err}"
    );
    for w in want {
        assert!(err.contains(w), "the message should contain {w:?}: {err}");
    }
    assert_eq!(repo.refs(), refs, "no ref moved");
    assert_eq!(object_count(&repo), objects, "no object written");
    repo.fsck();
    err
}

/// Pull an image made of `layers` (config `created`) into a new bare repository, which must
/// pass `ostree fsck`; returns the repository, the merged commit and the layout.
fn imports(t: &Scratch, layers: &[Layer], created: &str) -> (Repo, String, PathBuf) {
    let oci = t.path().join("oci");
    write_layout(&oci, "t", layers, &[], created);
    let repo = Repo::init(t.path().join("repo"), "bare");
    let c = pull(
        &repo.path,
        &format!("ostree-unverified-image:oci:{}:t", oci.display()),
    );
    repo.fsck();
    (repo, c, oci)
}

/// [`imports`], then compare the checkout with `umoci unpack`.
fn imports_as_umoci(t: &Scratch, layers: Vec<Layer>) -> (Repo, String) {
    let (repo, c, oci) = imports(t, &layers, "2024-01-01T00:00:00Z");
    check_against_umoci(&repo, &c, &oci, "t", t.path());
    (repo, c)
}

/// `umoci unpack` refuses the layout too; returns its message.
fn umoci_refuses(layers: Vec<Layer>) -> String {
    let t = tmpdir();
    let oci = t.path().join("oci");
    write_layout(&oci, "t", &layers, &[], "2024-01-01T00:00:00Z");
    run_fails(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:t", oci.display()))
            .arg(t.path().join("bundle")),
    )
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// A tar of one directory `usr`, then `tail` (entries added by the caller), ended properly.
fn tar_with(tail: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, "usr", &[][..]).unwrap();
    tail(&mut b);
    b.into_inner().unwrap()
}

fn symlink_entry(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, path, target).unwrap();
}

#[test]
fn hostile_symlink_target_too_long_or_with_nul() {
    // 5,000 bytes (a GNU long link): over the kernel's 4095.
    let long = "x/".repeat(2500);
    let l = raw_layer(tar_with(|b| symlink_entry(b, "usr/long", &long)));
    refused(
        vec![l],
        &["usr/long", "symlink target of 5000 bytes", "4095"],
    );
    // A NUL in a PAX linkpath.
    let l = raw_layer(tar_with(|b| {
        b.append_pax_extensions([("linkpath", &b"/usr/bin\0evil"[..])])
            .unwrap();
        symlink_entry(b, "usr/nul", "placeholder");
    }));
    refused(vec![l], &["usr/nul", "NUL"]);
    // No target at all.
    let l = raw_layer(tar_with(|b| {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_data(&mut h, "usr/empty", &[][..]).unwrap();
    }));
    refused(vec![l], &["usr/empty", "empty target"]);
}

#[test]
fn hostile_symlink_target_at_the_limit_imports_as_umoci() {
    let t = tmpdir();
    let target = format!("/{}", "y".repeat(4094));
    let l = raw_layer(tar_with(|b| symlink_entry(b, "usr/max", &target)));
    let (repo, c) = imports_as_umoci(&t, vec![l]);
    let ls = run(&mut repo.ostree(["ls", &c, "/usr/max"]));
    assert!(ls.contains(&target), "{ls}");
    // bare-user repositories store the target in a file and read it back: fsck agrees.
    let user = Repo::init(t.path().join("repo-user"), "bare-user");
    pull(
        &user.path,
        &format!(
            "ostree-unverified-image:oci:{}:t",
            t.path().join("oci").display()
        ),
    );
    user.fsck();
}

fn file_owned_by(b: &mut tar::Builder<Vec<u8>>, path: &str, h: &mut tar::Header) {
    h.set_cksum();
    b.append_data(h, path, &b"x"[..]).unwrap();
}

#[test]
fn hostile_owner_ids_out_of_range_are_refused_never_wrapped() {
    let pax = |k: &'static str, v: &'static str| {
        raw_layer(tar_with(|b| {
            b.append_pax_extensions([(k, v.as_bytes())]).unwrap();
            file_owned_by(b, "usr/f", &mut header(tar::EntryType::Regular, 0o644, 1));
        }))
    };
    refused(vec![pax("uid", "4294967296")], &["usr/f", "uid 4294967296"]);
    refused(vec![pax("gid", "4294967296")], &["usr/f", "gid 4294967296"]);
    refused(vec![pax("uid", "-1")], &["usr/f", "uid \"-1\""]);
    refused(vec![pax("gid", "4294967295")], &["usr/f", "gid 4294967295"]);
    // Base-256 header fields (GNU): 2^32, and a negative number.
    let l = raw_layer(tar_with(|b| {
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        h.set_uid(1 << 32);
        assert_eq!(h.as_old().uid[0] & 0x80, 0x80, "base-256 field");
        file_owned_by(b, "usr/big", &mut h);
    }));
    refused(vec![l], &["usr/big", "uid 4294967296"]);
    let l = raw_layer(tar_with(|b| {
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        h.as_old_mut().gid = [0xff; 8];
        file_owned_by(b, "usr/neg", &mut h);
    }));
    refused(vec![l], &["usr/neg", "gid negative"]);
}

#[test]
fn hostile_large_owner_ids_in_range_import_as_umoci() {
    let t = tmpdir();
    let l = raw_layer(tar_with(|b| {
        b.append_pax_extensions([("uid", &b"4294967294"[..]), ("gid", &b"3000000000"[..])])
            .unwrap();
        file_owned_by(b, "usr/f", &mut header(tar::EntryType::Regular, 0o644, 1));
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        h.set_gid(70_000);
        file_owned_by(b, "usr/g", &mut h);
    }));
    let (repo, c) = imports_as_umoci(&t, vec![l]);
    let ls = run(&mut repo.ostree(["ls", &c, "/usr/f"]));
    assert!(ls.contains("4294967294 3000000000"), "{ls}");
}

#[test]
fn hostile_long_names_and_deep_paths() {
    // One 5,000-byte name (a GNU long name).
    let name = format!("usr/{}", "n".repeat(5000));
    let l = raw_layer(tar_with(|b| {
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        b.append_data(&mut h, &name, &b"x"[..]).unwrap();
    }));
    refused(vec![l], &["nnnn", "name of 5000 bytes", "NAME_MAX (255)"]);
    // 100,000 levels: refused by length, before any tree is built (no stack overflow).
    let deep = format!("usr/{}f", "a/".repeat(100_000));
    let l = raw_layer(tar_with(|b| {
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        b.append_data(&mut h, &deep, &b"x"[..]).unwrap();
    }));
    refused(vec![l], &["usr/a/a/a", "PATH_MAX"]);
    // A hard link to such a path too.
    let l = raw_layer(tar_with(|b| {
        let mut h = header(tar::EntryType::Link, 0o644, 0);
        b.append_link(&mut h, "usr/h", &deep).unwrap();
    }));
    refused(vec![l], &["usr/h", "PATH_MAX"]);
    // One byte over the limit, as explicit directories.
    let (dirs, file) = deepest_path(1);
    refused(vec![raw_layer(deep_tar(&dirs, &file))], &["PATH_MAX"]);
}

/// The directories and the file of a path of 4095 + `extra` bytes counted as `/a/a/…`.
fn deepest_path(extra: usize) -> (Vec<String>, String) {
    let mut dirs = Vec::new();
    let mut p = String::from("usr");
    while p.len() + 1 + 2 + 2 <= 4095 {
        dirs.push(p.clone());
        p.push_str("/a");
    }
    dirs.push(p.clone());
    let name_len = 4095 + extra - (p.len() + 2);
    let file = format!("{p}/{}", "f".repeat(name_len));
    assert_eq!(file.len() + 1, 4095 + extra);
    (dirs, file)
}

fn deep_tar(dirs: &[String], file: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for d in dirs {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, d, &[][..]).unwrap();
    }
    let mut h = header(tar::EntryType::Regular, 0o644, 4);
    b.append_data(&mut h, file, &b"deep"[..]).unwrap();
    b.into_inner().unwrap()
}

/// The deepest legal path (4095 bytes, 2046 levels) imports, and `ostree fsck` and
/// `ostree checkout` handle the commit. (umoci cannot unpack it: its bundle path makes it
/// longer than PATH_MAX.)
#[test]
fn hostile_deepest_legal_path_imports_and_checks_out() {
    let t = tmpdir();
    let (dirs, file) = deepest_path(0);
    let layers = [raw_layer(deep_tar(&dirs, &file))];
    let (repo, c, _) = imports(&t, &layers, "2024-01-01T00:00:00Z");
    let ls = run(repo.ostree(["ls", &c]).arg(format!("/{file}")));
    assert!(ls.trim_end().ends_with(&format!("/{file}")), "{ls}");
    repo.checkout(&c, &t.path().join("co"));
}

/// Entries of `first`, its end-of-archive blocks cut, one zero block, then `second`.
fn zero_block_then(first: &[Ent], second: &[Ent]) -> Vec<u8> {
    let mut a = make_tar(first);
    while a.len() >= 512 && a[a.len() - 512..].iter().all(|&b| b == 0) {
        a.truncate(a.len() - 512);
    }
    a.extend_from_slice(&[0u8; 512]);
    a.extend_from_slice(&make_tar(second));
    a
}

#[test]
fn hostile_zero_block_then_more_entries_refused_as_go_does() {
    let tar = zero_block_then(&[file("usr/a", b"a")], &[file("usr/b", b"b")]);
    let err = umoci_refuses(vec![raw_layer(tar.clone())]);
    assert!(err.contains("invalid tar header"), "umoci: {err}");
    refused(
        vec![raw_layer(tar)],
        &["usr/a", "zero block", "invalid tar header"],
    );
    // Gzip-compressed the same.
    let tar = zero_block_then(&[file("usr/a", b"a")], &[file("usr/b", b"b")]);
    let mut l = raw_layer(compress(&tar, Comp::Gzip));
    l.diff_id = sha(&tar);
    l.media_type = "application/vnd.oci.image.layer.v1.tar+gzip".into();
    refused(vec![l], &["zero block"]);
}

#[test]
fn hostile_two_zero_blocks_then_garbage_is_the_end_as_go_reads_it() {
    let t = tmpdir();
    let mut tar = make_tar(&[Ent::Dir("usr", 0o755), file("usr/a", b"a")]);
    tar.extend_from_slice(b"trailing bytes after the end of the archive");
    imports_as_umoci(&t, vec![raw_layer(tar)]);
    // A single zero block and then the end of the stream is an end too (Go: "EOF is okay
    // here").
    let t = tmpdir();
    let mut tar = make_tar(&[Ent::Dir("usr", 0o755), file("usr/a", b"a")]);
    tar.truncate(tar.len() - 512);
    imports_as_umoci(&t, vec![raw_layer(tar)]);
}

fn gnu_tar(args: &[&str], dir: &Path, out: &Path) -> Vec<u8> {
    run(Command::new("tar")
        .args(args)
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg("usr"));
    fs::read(out).unwrap()
}

/// A tree with sparse files: holes at the start, middle and end, and one with no data.
fn sparse_tree(root: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    let mut f = fs::File::create(root.join("usr/lib/sparse")).unwrap();
    f.write_all(b"head").unwrap();
    f.seek(SeekFrom::Start(1 << 20)).unwrap();
    f.write_all(&b"middle".repeat(2000)).unwrap();
    f.seek(SeekFrom::Start(3 << 20)).unwrap();
    f.write_all(b"tail").unwrap();
    let f = fs::File::create(root.join("usr/lib/hole-at-start")).unwrap();
    f.set_len(1 << 20).unwrap();
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(root.join("usr/lib/hole-at-start"))
        .unwrap();
    f.seek(SeekFrom::End(0)).unwrap();
    f.write_all(b"end").unwrap();
    fs::File::create(root.join("usr/lib/all-hole"))
        .unwrap()
        .set_len(10 << 20)
        .unwrap();
    // Big enough to be spilled to a temporary file while imported.
    let mut f = fs::File::create(root.join("usr/lib/big-sparse")).unwrap();
    f.seek(SeekFrom::Start(20 << 20)).unwrap();
    f.write_all(b"x").unwrap();
}

#[test]
fn hostile_pax_sparse_files_expand_as_umoci_unpacks_them() {
    let src = tmpdir();
    sparse_tree(src.path());
    for version in ["0.0", "0.1", "1.0"] {
        let t = tmpdir();
        let tar = gnu_tar(
            &[
                "--sparse",
                "--format=pax",
                &format!("--sparse-version={version}"),
            ],
            src.path(),
            &t.path().join("l.tar"),
        );
        let raw = String::from_utf8_lossy(&tar);
        assert!(raw.contains("GNU.sparse"), "GNU tar wrote no sparse file");
        let (repo, c) = imports_as_umoci(&t, vec![raw_layer(tar)]);
        let ls = run(&mut repo.ostree(["ls", "-R", &c]));
        assert!(!ls.contains("GNUSparseFile"), "{version}: {ls}");
        let co = t.path().join("co-sizes");
        repo.checkout(&c, &co);
        for f in ["sparse", "hole-at-start", "all-hole", "big-sparse"] {
            assert_eq!(
                fs::read(co.join("usr/lib").join(f)).unwrap(),
                fs::read(src.path().join("usr/lib").join(f)).unwrap(),
                "{version}: {f}"
            );
        }
    }
}

/// A 0.1 sparse file `usr/s` of real size `size` with map `map`, holding the data "abcd".
fn sparse_01(size: &str, map: &str) -> Layer {
    raw_layer(tar_with(|b| {
        b.append_pax_extensions([
            ("GNU.sparse.size", size.as_bytes()),
            ("GNU.sparse.numblocks", b"1"),
            ("GNU.sparse.name", b"usr/s"),
            ("GNU.sparse.map", map.as_bytes()),
        ])
        .unwrap();
        let mut h = header(tar::EntryType::Regular, 0o644, 4);
        b.append_data(&mut h, "usr/GNUSparseFile.1/s", &b"abcd"[..])
            .unwrap();
    }))
}

#[test]
fn hostile_pax_sparse_map_lies_are_refused() {
    refused(
        vec![sparse_01("4", "2,4")],
        &["usr/s", "PAX sparse file", "past the real size"],
    );
    refused(
        vec![sparse_01("10", "0,2")],
        &["usr/s", "more data than its map"],
    );
    refused(
        vec![sparse_01("10", "0,6")],
        &["usr/s", "less data than its map"],
    );
    // An unknown version.
    let l = raw_layer(tar_with(|b| {
        b.append_pax_extensions([("GNU.sparse.major", &b"2"[..]), ("GNU.sparse.minor", b"0")])
            .unwrap();
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        b.append_data(&mut h, "usr/v2", &b"x"[..]).unwrap();
    }));
    refused(vec![l], &["usr/v2", "unknown version 2.0"]);
}

#[test]
fn hostile_old_gnu_sparse_refused_as_umoci_does() {
    let src = tmpdir();
    sparse_tree(src.path());
    let t = tmpdir();
    let tar = gnu_tar(
        &["--sparse", "--format=gnu"],
        src.path(),
        &t.path().join("l.tar"),
    );
    let err = umoci_refuses(vec![raw_layer(tar.clone())]);
    assert!(err.contains("typeflag"), "umoci: {err}");
    refused(
        vec![raw_layer(tar)],
        &["usr/lib/", "old GNU sparse", "--format=pax"],
    );
}

/// Two layers: /usr/bin/sh, then `upper`.
fn over_usr_bin(upper: &[Ent]) -> Vec<Layer> {
    vec![
        Layer::new(
            &[
                Ent::Dir("usr", 0o755),
                Ent::Dir("usr/bin", 0o755),
                file("usr/bin/sh", b"sh"),
            ],
            Comp::Gzip,
        ),
        Layer::new(upper, Comp::Gzip),
    ]
}

#[test]
fn hostile_whiteout_name_as_a_parent_deletes_nothing_as_umoci() {
    // `usr/.wh.bin/x` with no entry `usr/.wh.bin`: a directory named `.wh.bin`, as umoci.
    let t = tmpdir();
    let (repo, c) = imports_as_umoci(&t, over_usr_bin(&[file("usr/.wh.bin/x", b"x")]));
    run(&mut repo.ostree(["ls", &c, "/usr/bin/sh"]));
    run(&mut repo.ostree(["ls", &c, "/usr/.wh.bin/x"]));
    // Opaque and aufs names as parents are plain directories too.
    let t = tmpdir();
    let (repo, c) = imports_as_umoci(
        &t,
        over_usr_bin(&[
            file("usr/.wh..wh..opq/y", b"y"),
            file("usr/bin/.wh..wh.plnk/z", b"z"),
        ]),
    );
    run(&mut repo.ostree(["ls", &c, "/usr/bin/sh"]));
    // A whiteout entry alone still deletes, as umoci.
    let t = tmpdir();
    let (repo, c) = imports_as_umoci(&t, over_usr_bin(&[Ent::Dir("usr/.wh.bin", 0o755)]));
    assert!(!run(&mut repo.ostree(["ls", &c, "/usr"])).contains("/usr/bin"));
}

#[test]
fn hostile_whiteout_entry_that_is_also_a_parent_is_refused() {
    // umoci deletes /usr/bin for the entry `usr/.wh.bin/` and then keeps `usr/.wh.bin/x` in
    // a directory of that name: one ostree layer tree cannot hold both.
    let upper = [Ent::Dir("usr/.wh.bin", 0o755), file("usr/.wh.bin/x", b"x")];
    refused(
        over_usr_bin(&upper),
        &["usr/.wh.bin/x", "is a whiteout", "usr/bin"],
    );
    let upper = [file("usr/.wh.bin/x", b"x"), file("usr/.wh.bin", b"")];
    refused(over_usr_bin(&upper), &["usr/.wh.bin", "is a whiteout"]);
}

#[test]
fn hostile_pax_global_header_from_git_archive_imports_as_umoci() {
    let t = tmpdir();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("usr/share")).unwrap();
    fs::write(src.join("usr/share/readme"), b"from git\n").unwrap();
    let git = |args: &[&str]| {
        run(Command::new("git")
            .arg("-C")
            .arg(&src)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args))
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "x"]);
    let out = Command::new("git")
        .arg("-C")
        .arg(&src)
        .args(["archive", "--format=tar", "HEAD"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let tar = out.stdout;
    assert_eq!(
        tar[156], b'g',
        "git archive starts with a PAX global header"
    );
    // umoci 0.4.7 refuses the global header ("unknown typeflag 'g'"); containers/storage
    // (podman, buildah) ignores it, as we do. Compare with umoci's unpack of the same tar
    // without that entry (header block and its padded data).
    let err = umoci_refuses(vec![raw_layer(tar.clone())]);
    assert!(err.contains("typeflag"), "umoci: {err}");
    let size = u64::from_str_radix(
        String::from_utf8_lossy(&tar[124..135]).trim_matches(['\0', ' ']),
        8,
    )
    .unwrap() as usize;
    let without = tar[512 + size.div_ceil(512) * 512..].to_vec();
    let (repo, c, _) = imports(&t, &[raw_layer(tar)], "2024-01-01T00:00:00Z");
    let plain = t.path().join("oci-without-global-header");
    write_layout(
        &plain,
        "t",
        &[raw_layer(without)],
        &[],
        "2024-01-01T00:00:00Z",
    );
    check_against_umoci(&repo, &c, &plain, "t", t.path());
    let ls = run(&mut repo.ostree(["ls", "-R", &c]));
    assert!(
        !ls.contains("pax_global_header") && ls.contains("/usr/share/readme"),
        "{ls}"
    );
}

#[test]
fn hostile_created_with_multibyte_character_does_not_panic() {
    let t = tmpdir();
    // Byte 3 of the offset is inside "é": slicing it by byte offset panics.
    let layers = [Layer::new(&[file("usr/x", b"x")], Comp::Gzip)];
    let (repo, c, _) = imports(&t, &layers, "2024-01-01T00:00:00+0é:0");
    // An unparseable `created` gives the epoch, as an absent one.
    let log = run(&mut repo.ostree(["log", &c]));
    assert!(log.contains("1970-01-01"), "{log}");
}

#[test]
fn hostile_nul_in_names_and_xattr_names_refused() {
    // A PAX path with a NUL in the middle (Go's tar reader refuses it too).
    let l = raw_layer(tar_with(|b| {
        b.append_pax_extensions([("path", &b"usr/a\0b"[..])])
            .unwrap();
        file_owned_by(
            b,
            "usr/placeholder",
            &mut header(tar::EntryType::Regular, 0o644, 1),
        );
    }));
    refused(vec![l], &["usr/a", "NUL"]);
    let l = raw_layer(tar_with(|b| {
        b.append_pax_extensions([("SCHILY.xattr.user.a\0security.capability", &b"v"[..])])
            .unwrap();
        file_owned_by(b, "usr/x", &mut header(tar::EntryType::Regular, 0o644, 1));
    }));
    refused(vec![l], &["usr/x", "extended attribute name"]);
}

/// Go's `archive/tar` `maxSpecialFileSize`: the largest extension header it reads.
const EXTENSION_MAX: usize = 1 << 20;

#[test]
fn hostile_extension_headers_over_1_mib_refused_as_go_does() {
    // A PAX extended header one record of which makes it 1 MiB + 100 bytes.
    let comment = vec![b'c'; EXTENSION_MAX + 100];
    let pax = tar_with(|b| {
        b.append_pax_extensions([("comment", &comment[..])])
            .unwrap();
        file_owned_by(b, "usr/f", &mut header(tar::EntryType::Regular, 0o644, 1));
    });
    let err = umoci_refuses(vec![raw_layer(pax.clone())]);
    assert!(err.contains("header field too long"), "umoci: {err}");
    refused(
        vec![raw_layer(pax)],
        &[
            "PAX extended header ('x') at tar offset 512",
            "1048693 bytes",
            "limit of 1048576 bytes",
        ],
    );
    // A GNU long name of 1 MiB + 1 (the name and its NUL).
    let name = format!("usr/{}", "n".repeat(EXTENSION_MAX - 4));
    let long = tar_with(|b| {
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        b.append_data(&mut h, &name, &b"x"[..]).unwrap();
    });
    let err = umoci_refuses(vec![raw_layer(long.clone())]);
    assert!(err.contains("header field too long"), "umoci: {err}");
    refused(
        vec![raw_layer(long)],
        &["GNU long name ('L') at tar offset 512", "1048577 bytes"],
    );
    // A PAX global header of 1 MiB + 1.
    let global = raw_layer(tar_with(|b| {
        let mut h = header(
            tar::EntryType::XGlobalHeader,
            0o644,
            EXTENSION_MAX as u64 + 1,
        );
        b.append_data(
            &mut h,
            "pax_global_header",
            &vec![b'\n'; EXTENSION_MAX + 1][..],
        )
        .unwrap();
    }));
    refused(vec![global], &["PAX global header ('g')", "1048577 bytes"]);
}

/// A gzip layer whose tar is `head`, `n` newlines and `tail`, compressed as it is made (the
/// tar is never held whole).
fn gzip_layer_streamed(head: &[u8], n: u64, tail: &[u8]) -> Layer {
    use sha2::{Digest, Sha256};
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut diff = Sha256::new();
    let mut put = |b: &[u8]| {
        diff.update(b);
        gz.write_all(b).unwrap();
    };
    put(head);
    let chunk = vec![b'\n'; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        put(&chunk[..k]);
        left -= k as u64;
    }
    put(tail);
    let blob = gz.finish().unwrap();
    Layer {
        digest: sha(&blob),
        size: blob.len() as u64,
        diff_id: format!("sha256:{}", hex::encode(diff.finalize())),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        blob,
    }
}

/// A 512 MiB PAX header compresses to half a megabyte: the importer refuses it at its header
/// block, and its peak memory stays far below the header's size.
#[test]
fn hostile_huge_compressed_pax_header_refused_in_bounded_memory() {
    const HUGE: u64 = 512 << 20;
    let mut h = header(tar::EntryType::XHeader, 0o644, HUGE);
    h.set_path("PaxHeaders.0/usr/f").unwrap();
    h.set_cksum();
    let file =
        tar_with(|b| file_owned_by(b, "usr/f", &mut header(tar::EntryType::Regular, 0o644, 1)));
    let pad = (512 - HUGE % 512) % 512;
    let l = gzip_layer_streamed(h.as_bytes(), HUGE + pad, &file);
    let t = tmpdir();
    let oci = t.path().join("oci");
    write_layout(&oci, "t", &[l], &[], "2024-01-01T00:00:00Z");
    let repo = Repo::init(t.path().join("repo"), "bare");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "peak-rss-kib=%M"])
        .arg(crate::support::bin())
        .args(["image", "pull"])
        .arg(&repo.path)
        .arg(format!("ostree-unverified-image:oci:{}:t", oci.display()));
    let err = run_refused(&mut cmd);
    assert!(
        err.contains("PAX extended header ('x') at tar offset 0")
            && err.contains("PaxHeaders.0/usr/f"),
        "{err}"
    );
    let kib: u64 = err
        .rsplit("peak-rss-kib=")
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {err}"));
    assert!(
        kib < 256 << 10,
        "peak memory {kib} KiB for a refused layer with a {HUGE}-byte header"
    );
    assert!(repo.refs().is_empty(), "no ref");
    repo.fsck();
}

#[test]
fn hostile_large_legal_extension_headers_import_as_umoci() {
    let t = tmpdir();
    // A 200 KiB PAX record (a comment: kept by neither), and a path of 3824 bytes in a GNU
    // long name.
    let comment = vec![b'c'; 200 << 10];
    let deep = format!("usr/{}f", format!("{}/", "d".repeat(200)).repeat(19));
    let l = raw_layer(tar_with(|b| {
        b.append_pax_extensions([("comment", &comment[..])])
            .unwrap();
        file_owned_by(b, "usr/f", &mut header(tar::EntryType::Regular, 0o644, 1));
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        b.append_data(&mut h, &deep, &b"y"[..]).unwrap();
    }));
    let (repo, c) = imports_as_umoci(&t, vec![l]);
    let ls = run(repo.ostree(["ls", &c]).arg(format!("/{deep}")));
    assert!(ls.contains(&format!("/{deep}")), "{ls}");
    // A GNU long name of exactly 1 MiB passes the cap and is then refused for its length
    // (PATH_MAX), not for the header's size.
    let name = format!("usr/{}", "n".repeat(EXTENSION_MAX - 5));
    let l = raw_layer(tar_with(|b| {
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        b.append_data(&mut h, &name, &b"x"[..]).unwrap();
    }));
    let err = refused(vec![l], &["PATH_MAX"]);
    assert!(!err.contains("extension"), "{err}");
}
