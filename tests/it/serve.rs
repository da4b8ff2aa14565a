//! `ostree-container serve`: the real `ostree pull` against the server on 127.0.0.1, HTTP
//! details, hostile requests, and serving from inside a container.

use crate::support;

use std::path::{Path, PathBuf};

use crate::support::{ostree, ostree_init};
use support::http::{fixture_tree, get, Conn, Server};
use support::set_xattr;

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("serve-")
        .tempdir_in(support::target_tmp())
        .unwrap()
}

/// A repository of `mode` in `dir/name` with the fixture committed on `main`; returns the path
/// and the commit.
fn source_repo(dir: &Path, name: &str, mode: &str) -> (PathBuf, String) {
    let tree = dir.join(format!("{name}-tree"));
    fixture_tree(&tree);
    let repo = dir.join(name);
    ostree_init(&repo, mode);
    ostree(
        &repo,
        [
            "commit",
            "-b",
            "main",
            "--subject=one",
            "--add-metadata-string=version=1",
            &format!("--tree=dir={}", tree.display()),
        ],
    );
    let c = ostree(&repo, ["rev-parse", "main"]).trim().to_string();
    (repo, c)
}

/// A fresh client repository of `mode` with the server as remote `origin`.
fn client(dir: &Path, name: &str, mode: &str, url: &str) -> PathBuf {
    let r = dir.join(name);
    ostree_init(&r, mode);
    ostree(&r, ["remote", "add", "--no-gpg-verify", "origin", url]);
    r
}

fn pull_and_check(repo: &Path, args: &[&str], want: &str) {
    let mut a = vec!["pull"];
    a.extend_from_slice(args);
    ostree(repo, &a);
    let got = ostree(repo, ["rev-parse", "origin:main"]);
    let got = if got.trim().is_empty() {
        ostree(repo, ["rev-parse", "main"])
    } else {
        got
    };
    assert_eq!(got.trim(), want, "{}", repo.display());
    let fsck = ostree(repo, ["fsck"]);
    assert!(fsck.contains("no errors found"), "{fsck}");
}

fn filez_gets(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("\"GET ") && l.contains(".filez ") && l.contains("\" 200 "))
        .count()
}

/// The main scenario, from a bare-user repository (objects translated on the fly): into a
/// fresh archive and a fresh bare-user repository, same commit, fsck clean, file metadata kept;
/// `remote refs`, `pull --mirror`; then a second commit pulled with `--depth=1` fetches only the
/// new content objects.
#[test]
fn pull_from_bare_user_into_archive_and_bare_user() {
    let d = scratch();
    let (src, c1) = source_repo(d.path(), "src", "bare-user");
    let srv = Server::start(&d.path().join("log"), &["--repo", src.to_str().unwrap()]);

    let arch = client(d.path(), "c-archive", "archive", &srv.url);
    pull_and_check(&arch, &["origin", "main"], &c1);
    let bu = client(d.path(), "c-bare-user", "bare-user", &srv.url);
    pull_and_check(&bu, &["origin", "main"], &c1);

    // Metadata survived: checkout from the bare-user client and look.
    let co = d.path().join("co");
    ostree(&bu, ["checkout", "-U", &c1, co.to_str().unwrap()]);
    use std::os::unix::fs::MetadataExt;
    let su = ostree(&bu, ["ls", "-X", &c1, "/usr/bin/su"]);
    assert!(su.starts_with("-04755 ") && su.contains("user.cap"), "{su}");
    let wall = ostree(&arch, ["ls", &c1, "/usr/bin/wall"]);
    assert!(wall.starts_with("-02755 "), "{wall}");
    assert_eq!(
        std::fs::metadata(co.join("usr/bin/tool")).unwrap().ino(),
        std::fs::metadata(co.join("usr/bin/tool-alias"))
            .unwrap()
            .ino(),
        "hard links checked out from one object"
    );
    assert_eq!(std::fs::read(co.join("usr/share/empty")).unwrap(), b"");
    let ls = ostree(&arch, ["ls", "-X", &c1, "/usr/share/data/x"]);
    assert!(ls.contains("user.a") && ls.contains("user.b"), "{ls}");

    // Summary: remote refs and a mirror.
    let refs = ostree(&arch, ["remote", "refs", "origin"]);
    assert_eq!(refs.trim(), "origin:main");
    let mirror = d.path().join("mirror");
    ostree_init(&mirror, "archive");
    ostree(
        &mirror,
        ["remote", "add", "--no-gpg-verify", "origin", &srv.url],
    );
    ostree(&mirror, ["pull", "--mirror", "origin"]);
    assert_eq!(ostree(&mirror, ["rev-parse", "main"]).trim(), c1);
    assert!(ostree(&mirror, ["fsck"]).contains("no errors found"));

    // Second commit: one file changed, one added.
    let tree = d.path().join("src-tree");
    std::fs::write(tree.join("usr/bin/tool"), b"#!/bin/sh\necho tool v2\n").unwrap();
    std::fs::write(tree.join("usr/share/new"), b"new file\n").unwrap();
    set_xattr(&tree.join("usr/share/new"), "user.n", b"1");
    ostree(
        &src,
        [
            "commit",
            "-b",
            "main",
            "--subject=two",
            &format!("--tree=dir={}", tree.display()),
        ],
    );
    let c2 = ostree(&src, ["rev-parse", "main"]).trim().to_string();
    let before = filez_gets(&srv.log());
    pull_and_check(&bu, &["--depth=1", "origin", "main"], &c2);
    let fetched = filez_gets(&srv.log()) - before;
    assert_eq!(fetched, 2, "only the two new content objects are fetched");
    let log = srv.log();
    assert!(log.contains("made"), "{log}");

    assert_eq!(srv.terminate(), Some(0));
}

/// From a bare repository (real owners, modes and xattrs on the objects) into bare-user.
#[test]
fn pull_from_bare() {
    let d = scratch();
    let (src, c1) = source_repo(d.path(), "src", "bare");
    let srv = Server::start(
        &d.path().join("log"),
        &["--repo", src.to_str().unwrap(), "--prefix", "/"],
    );
    assert!(srv.url.ends_with(&format!("{}", srv.port)), "{}", srv.url);
    let bu = client(d.path(), "c-bare-user", "bare-user", &srv.url);
    pull_and_check(&bu, &["origin", "main"], &c1);
}

/// Archive sources are served as stored (no translation); HTTP details checked byte by byte.
#[test]
fn http_details() {
    let d = scratch();
    let (src, c1) = source_repo(d.path(), "src", "bare-user");
    let srv = Server::start(&d.path().join("log"), &["--repo", src.to_str().unwrap()]);
    let mut c = Conn::open(srv.port);

    // config presents archive-z2 whatever the source mode.
    let r = c.request("GET", "/repo/config", &[]);
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("mode=archive-z2"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );

    // Ref, on the same (kept-alive) connection.
    let r = c.request("GET", "/repo/refs/heads/main", &[]);
    assert_eq!(
        (r.status, r.body.clone()),
        (200, format!("{c1}\n").into_bytes())
    );

    // The commit object: ETag, HEAD, If-None-Match, Range.
    let obj = format!("/repo/objects/{}/{}.commit", &c1[..2], &c1[2..]);
    let full = c.request("GET", &obj, &[]);
    assert_eq!(full.status, 200);
    let etag = full.header("etag").unwrap().to_string();
    assert_eq!(etag, format!("\"{c1}.commit\""));
    assert!(full.header("cache-control").unwrap().contains("immutable"));
    let on_disk = std::fs::read(src.join(&obj["/repo/".len()..])).unwrap();
    assert_eq!(full.body, on_disk);

    let h = c.request("HEAD", &obj, &[]);
    assert_eq!(h.status, 200);
    assert_eq!(
        h.header("content-length"),
        Some(on_disk.len().to_string().as_str())
    );
    assert!(h.body.is_empty());

    let nm = c.request("GET", &obj, &[&format!("If-None-Match: {etag}")]);
    assert_eq!(nm.status, 304);
    let r = c.request("GET", &obj, &["Range: bytes=2-5"]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, on_disk[2..=5]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 2-5/{}", on_disk.len()).as_str())
    );
    let r = c.request("GET", &obj, &["Range: bytes=-3"]);
    assert_eq!(r.body, on_disk[on_disk.len() - 3..]);
    let r = c.request("GET", &obj, &["Range: bytes=999999-"]);
    assert_eq!(r.status, 416);
    let r = c.request("GET", &obj, &["Range: bytes=0-1", "If-Range: \"other\""]);
    assert_eq!((r.status, r.body.len()), (200, on_disk.len()));

    // A translated .filez: Range over the cached file matches the full body.
    let big = ostree(&src, ["ls", "-C", &c1, "/usr/share/data/big"]);
    let big_csum = big
        .split_whitespace()
        .find(|t| t.len() == 64)
        .unwrap()
        .to_string();
    let fz = format!("/repo/objects/{}/{}.filez", &big_csum[..2], &big_csum[2..]);
    let whole = c.request("GET", &fz, &[]);
    assert_eq!(whole.status, 200);
    let part = c.request("GET", &fz, &["Range: bytes=100-200099"]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body[100..200100]);

    // Summary has an ETag and honours If-None-Match (libostree caches it that way).
    let s = c.request("GET", "/repo/summary", &[]);
    assert_eq!(s.status, 200);
    let se = s.header("etag").unwrap().to_string();
    assert_eq!(
        c.request("GET", "/repo/summary", &[&format!("If-None-Match: {se}")])
            .status,
        304
    );

    // What does not exist.
    for p in [
        "/repo/summary.sig",
        "/repo/refs/heads/nope",
        "/repo/objects/",
        "/repo/objects/00",
        "/repo/refs/heads",
        &format!("/repo/objects/{}/{}.file", &big_csum[..2], &big_csum[2..]),
        &format!("/repo/objects/00/{}.filez", "0".repeat(62)),
        "/other/config",
        "/",
    ] {
        let r = c.request("GET", p, &[]);
        assert!(r.status == 404 || r.status == 400, "{p}: {}", r.status);
    }
    let r = c.request("POST", "/repo/config", &["Content-Length: 0"]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));

    let log = srv.log();
    assert!(log.contains("\"GET /repo/config HTTP/1.1\" 200 "), "{log}");
    assert_eq!(srv.terminate(), Some(0));
}

/// Hostile requests get 4xx or a closed connection, never a file outside the repository, and
/// the server keeps serving others throughout.
#[test]
fn hostile_requests() {
    let d = scratch();
    let (src, c1) = source_repo(d.path(), "src", "bare-user");
    let secret = d.path().join("secret");
    std::fs::write(&secret, "TOP-SECRET\n").unwrap();
    // Planted symlinks inside the repository.
    std::os::unix::fs::symlink(&secret, src.join("refs/heads/evil")).unwrap();
    let free = (0..=255u8)
        .map(|i| format!("{i:02x}"))
        .find(|x| !src.join("objects").join(x).exists())
        .unwrap();
    std::os::unix::fs::symlink(d.path(), src.join("objects").join(&free)).unwrap();
    std::fs::write(
        d.path().join(format!("{}.commit", "e".repeat(62))),
        "TOP-SECRET\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&secret, src.join("summary.sig")).unwrap();
    let srv = Server::start(
        &d.path().join("log"),
        &[
            "--repo",
            src.to_str().unwrap(),
            "--header-timeout",
            "1",
            "--max-connections",
            "4",
        ],
    );
    let hostile = [
        "/repo/../secret".to_string(),
        "/repo/%2e%2e/secret".into(),
        "/repo/%2E%2E/%2E%2E/etc/passwd".into(),
        "/repo/refs/heads/..%2f..%2fsecret".into(),
        "/repo/refs%2fheads%2fmain".into(),
        "/../../../../etc/passwd".into(),
        "/repo//etc/passwd".into(),
        "//etc/passwd".into(),
        "/etc/passwd".into(),
        "/repo/refs/heads/evil".into(),
        format!("/repo/objects/{free}/{}.commit", "e".repeat(62)),
        "/repo/summary.sig".into(),
        "/repo/config/..".into(),
        "/repo/refs/heads/main/../../../../secret".into(),
        "/repo/objects/..\\..\\secret".into(),
        "http://127.0.0.1/repo/../secret".into(),
    ];
    for p in &hostile {
        let mut c = Conn::open(srv.port);
        c.send_raw(format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        // An answer, not just a closed connection (which a crash would give too).
        let r = c
            .read_response(false)
            .unwrap_or_else(|| panic!("{p}: connection closed without an answer"));
        assert!((400..500).contains(&r.status), "{p}: {}", r.status);
        assert!(
            !String::from_utf8_lossy(&r.body).contains("TOP-SECRET"),
            "{p}"
        );
        assert!(!String::from_utf8_lossy(&r.body).contains("root:"), "{p}");
    }

    // Request heads over the limits (16 KiB, 64 headers): 431, and the server goes on. The head
    // sent is whole and unanswered data is not left behind, so the answer is read, not reset.
    let over_limits = [
        (
            "a 17 KiB header",
            format!("X-Big: {}\r\n", "a".repeat(17 * 1024)),
        ),
        (
            "100 headers",
            (0..100).map(|i| format!("X-H{i}: v\r\n")).collect(),
        ),
    ];
    for (what, headers) in &over_limits {
        let mut c = Conn::open(srv.port);
        c.send_raw(format!("GET /repo/config HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes())
            .unwrap();
        let r = c
            .read_response(false)
            .unwrap_or_else(|| panic!("{what}: connection closed without an answer"));
        assert_eq!(r.status, 431, "{what}");
    }

    // Slow clients that never finish their request head: as many as the connection bound.
    let mut slow: Vec<Conn> = (0..4)
        .map(|_| {
            let mut c = Conn::open(srv.port);
            c.send_raw(b"GET /repo/config HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            c
        })
        .collect();
    // Another client is still served (once the header timeout frees a slot).
    let r = get(srv.port, "/repo/refs/heads/main");
    assert_eq!((r.status, r.body), (200, format!("{c1}\n").into_bytes()));
    // Each slow connection is closed by the server once the header timeout passes (hyper sends
    // no 408 for it), not kept until the client gives up: read_to_close fails on its timeout.
    for s in slow.iter_mut() {
        let rest = s.read_to_close();
        assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    }
    let r = get(srv.port, "/repo/config");
    assert_eq!(r.status, 200);
    let log = srv.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("refused: dot segment"), "{log}");
    assert_eq!(srv.terminate(), Some(0));
}

/// The image's own /sysroot/ostree/repo, served by `ostree-container serve` with no source
/// argument inside `buildah run` (chroot isolation shares the host's network), pulled with
/// `ostree pull` from 127.0.0.1.
#[test]
fn serve_from_inside_a_container() {
    use crate::support::{base_image, Buildah, Driver, Variant};
    let d = scratch();
    let b = Buildah::new(Driver::Overlay);
    let base = base_image(&b, Variant::Minbase);
    let ctx = support::top().join("examples/serve");
    b.bud(&ctx, None, "localhost/serve-test:1", &[("BASE", &base)]);
    let ctr = b.from("localhost/serve-test:1");
    let mut cmd = b.cmd();
    cmd.args(["run", "--isolation", "chroot", &ctr, "--"])
        .arg("/usr/libexec/libostree/ext/ostree-container");
    let srv = Server::start_cmd(cmd, &d.path().join("log"), &["--shutdown-timeout", "5"]);
    let c = client(d.path(), "client", "bare-user", &srv.url);
    ostree(&c, ["pull", "origin", "os/main"]);
    assert!(ostree(&c, ["fsck"]).contains("no errors found"));
    let hello = ostree(&c, ["cat", "origin:os/main", "/usr/share/served/hello"]);
    assert_eq!(hello, "served from inside a container\n");
    let refs = ostree(&c, ["remote", "refs", "origin"]);
    assert_eq!(refs.trim(), "origin:os/main");
    let log = srv.log();
    assert!(log.contains("bare-user mode"), "{log}");
    // buildah run (chroot isolation) answers SIGTERM by killing its child rather than
    // forwarding the signal; the graceful path is tested outside a container. Here: it stops,
    // and nothing listens on its port any more.
    let port = srv.port;
    let code = srv.terminate();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after the server exited ({code:?})"
    );
    b.rm(&ctr);
}

/// `--image`: a small plain image (FROM scratch) written as an OCI layout, imported into the
/// server's private archive repository, pulled under the ref given with `--ref`.
#[test]
fn serve_image() {
    use crate::support::{Buildah, Driver};
    let d = scratch();
    let ctx = d.path().join("ctx");
    std::fs::create_dir_all(ctx.join("usr/share/img")).unwrap();
    std::fs::write(ctx.join("usr/share/img/file"), "from an image\n").unwrap();
    std::fs::write(ctx.join("Containerfile"), "FROM scratch\nCOPY usr /usr\n").unwrap();
    let b = Buildah::new(Driver::Vfs);
    b.bud(&ctx, None, "localhost/serve-image:1", &[]);
    let oci = b.push_oci("localhost/serve-image:1", &d.path().join("oci"), "v1");
    let srv = Server::start(
        &d.path().join("log"),
        &[
            "--image",
            &oci,
            "--ref",
            "img/main",
            "--cache-dir",
            d.path().join("cache").to_str().unwrap(),
        ],
    );
    let c = client(d.path(), "client", "archive", &srv.url);
    ostree(&c, ["pull", "origin", "img/main"]);
    assert!(ostree(&c, ["fsck"]).contains("no errors found"));
    let f = ostree(&c, ["cat", "origin:img/main", "/usr/share/img/file"]);
    assert_eq!(f, "from an image\n");
    assert_eq!(srv.terminate(), Some(0));
}
