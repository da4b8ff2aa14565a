//! Fixture trees and commits for the encapsulation tests, built at test time.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use crate::support;

/// `security.capability` granting cap_net_raw (VFS_CAP_REVISION_2, effective).
pub const CAP_NET_RAW: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

pub fn write(root: &Path, rel: &str, data: &[u8], mode: u32) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

fn setxattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", path.display()));
}

/// A small OS-like tree: a kernel, hard links, setuid, symlinks, xattrs (incl.
/// security.capability), an empty file, /etc at usr/etc, odd names, a long path.
pub fn os_tree(root: &Path) {
    write(
        root,
        "usr/lib/modules/6.1.0-test/vmlinuz",
        b"not really a kernel\n",
        0o644,
    );
    write(
        root,
        "usr/lib/modules/6.1.0-test/initramfs.img",
        b"initramfs\n",
        0o600,
    );
    write(root, "usr/bin/hello", b"#!/bin/sh\necho hello\n", 0o755);
    fs::hard_link(root.join("usr/bin/hello"), root.join("usr/bin/hello-again")).unwrap();
    write(root, "usr/bin/su", b"setuid binary\n", 0o4755);
    write(root, "usr/bin/wall", b"setgid binary\n", 0o2755);
    write(root, "usr/bin/ping", b"needs a capability\n", 0o755);
    setxattr(
        &root.join("usr/bin/ping"),
        "security.capability",
        &CAP_NET_RAW,
    );
    setxattr(&root.join("usr/bin/hello"), "user.checksum", b"abc");
    symlink("hello", root.join("usr/bin/hi")).unwrap();
    symlink("../lib/modules//6.1.0-test", root.join("usr/bin/denormal")).unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    write(root, "usr/etc/empty", b"", 0o644);
    write(
        root,
        "usr/etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    );
    write(root, "usr/etc/shadow", b"root:*:19000::::::\n", 0o640);
    write(root, "usr/share/doc/with space/ünïcode", b"names\n", 0o644);
    let long = format!("usr/share/long/{}/{}", "d".repeat(120), "f".repeat(130));
    write(root, &long, b"long path\n", 0o644);
    fs::create_dir_all(root.join("var/lib")).unwrap();
    fs::create_dir_all(root.join("usr/empty-dir")).unwrap();
    fs::set_permissions(
        root.join("usr/empty-dir"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    write(root, "usr/share/big", &vec![7u8; 200_000], 0o644);
    write(root, "usr/share/owned-by-user", b"uid 1000\n", 0o600);
    std::os::unix::fs::chown(root.join("usr/share/owned-by-user"), Some(1000), Some(1000)).unwrap();
}

/// A package: its files, and a dpkg `.list` naming them.
pub fn package(root: &Path, name: &str, version: &str, files: &[&str]) {
    let mut list = String::from("/.\n");
    for f in files {
        write(
            root,
            f,
            format!("{name} {version} {f}\n").repeat(200).as_bytes(),
            0o644,
        );
        list.push_str(&format!("/{f}\n"));
    }
    write(
        root,
        &format!("usr/lib/sysimage/dpkg/info/{name}:amd64.list"),
        list.as_bytes(),
        0o644,
    );
}

/// `ostree commit` of `tree` to `branch`; returns the checksum.
pub fn commit(repo: &Path, branch: &str, tree: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "commit".to_string(),
        format!("--branch={branch}"),
        format!("--tree=dir={}", tree.display()),
        "--timestamp=2024-05-01T12:00:00Z".into(),
        "--subject=fixture".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    support::ostree(repo, &args).trim().to_string()
}

/// `n` packages `pkg00`, `pkg01`, … with a program, a library and a copyright file each,
/// plus `extra` paths (`{name}` replaced by the package's name).
pub fn numbered_packages(n: usize, extra: &[&str]) -> Vec<(String, Vec<String>)> {
    (0..n)
        .map(|i| {
            let name = format!("pkg{i:02}");
            let mut files = vec![
                format!("usr/bin/{name}"),
                format!("usr/lib/{name}/lib{name}.so"),
                format!("usr/share/doc/{name}/copyright"),
            ];
            files.extend(extra.iter().map(|e| e.replace("{name}", &name)));
            (name, files)
        })
        .collect()
}

/// Build a noarch rpm `name-version` with `rpmbuild` (in `work`) holding `files` (paths in
/// the tree; `etc/…` ones are marked %config), and install or upgrade it into `root` with
/// `rpm --root` and the database in `usr/lib/sysimage/rpm`, as rpm-ostree lays out a commit;
/// `/etc` is then merged into `usr/etc`, where ostree commits keep it.
pub fn rpm_package(root: &Path, work: &Path, name: &str, version: &str, files: &[&str]) {
    let staging = work.join(format!("{name}-{version}-files"));
    let _ = fs::remove_dir_all(&staging);
    let mut file_list = String::new();
    for f in files {
        write(
            &staging,
            f,
            format!("{name} {version} {f}\n").repeat(200).as_bytes(),
            0o644,
        );
        let config = if f.starts_with("etc/") {
            "%config "
        } else {
            ""
        };
        file_list.push_str(&format!("{config}/{f}\n"));
    }
    let spec = work.join(format!("{name}.spec"));
    fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: {version}\nRelease: 1\nSummary: fixture\nLicense: MIT\n\
             BuildArch: noarch\n%description\nfixture\n\
             %install\ncp -a {} %{{buildroot}}\n%files\n{file_list}",
            staging.join(".").display()
        ),
    )
    .unwrap();
    let top = work.join("rpmbuild");
    support::run(&mut support::cmd(
        "rpmbuild",
        [
            "--quiet",
            "--define",
            &format!("_topdir {}", top.display()),
            "-bb",
            spec.to_str().unwrap(),
        ],
    ));
    let rpm = top.join(format!("RPMS/noarch/{name}-{version}-1.noarch.rpm"));
    support::run(&mut support::cmd(
        "rpm",
        [
            "--root",
            root.to_str().unwrap(),
            "--dbpath",
            "/usr/lib/sysimage/rpm",
            "--define",
            "_db_backend sqlite",
            "-U",
            "--nodeps",
            "--noscripts",
            "--ignorearch",
            "--ignoreos",
            rpm.to_str().unwrap(),
        ],
    ));
    let etc = root.join("etc");
    if etc.exists() {
        fs::create_dir_all(root.join("usr/etc")).unwrap();
        support::run(&mut support::cmd(
            "cp",
            [
                "-a",
                etc.join(".").to_str().unwrap(),
                root.join("usr/etc").to_str().unwrap(),
            ],
        ));
        fs::remove_dir_all(&etc).unwrap();
    }
}
