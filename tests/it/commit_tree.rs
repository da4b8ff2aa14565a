//! `commit` and `lint` on fixture trees made in temp dirs: every check, every conversion, and
//! hostile trees. Each test starts from a tree that passes, breaks or adds one thing, and
//! asserts what a user would see (the JSON report, the files written, the tree afterwards).
//! Runs as root (ownership and device nodes).

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::bin;

use serde_json::Value;

/// An ostree-layout root that `lint` passes once `commit` has run on it.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

fn write(p: &Path, contents: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, contents).unwrap();
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        for d in [
            "dev",
            "proc",
            "sys",
            "run",
            "tmp",
            "sysroot",
            "boot",
            "etc",
            "usr/bin",
            "usr/lib/modules/6.1.0-1-amd64",
            "usr/lib/sysusers.d",
            "usr/lib/tmpfiles.d",
            "var/home",
            "var/roothome",
            "var/opt",
            "var/usrlocal/bin",
            "var/lib",
            "var/log",
            "var/cache",
            "var/tmp",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::set_permissions(root.join("var/tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        for (link, target) in [
            ("var/run", "../run"),
            ("ostree", "sysroot/ostree"),
            ("opt", "var/opt"),
            ("usr/local", "../var/usrlocal"),
            ("home", "var/home"),
            ("root", "var/roothome"),
        ] {
            symlink(target, root.join(link)).unwrap();
        }
        write(
            &root.join("usr/lib/modules/6.1.0-1-amd64/vmlinuz"),
            "kernel",
        );
        write(
            &root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\n",
        );
        write(&root.join("etc/group"), "root:x:0:\n");
        write(&root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n");
        write(&root.join("etc/gshadow"), "root:*::\n");
        write(
            &root.join("usr/lib/sysusers.d/basic.conf"),
            "u root 0 \"Super User\" /root\n",
        );
        write(
            &root.join("usr/lib/tmpfiles.d/var.conf"),
            "q /var 0755 - - -\nL /var/run - - - - ../run\nd /var/log 0755 - - -\nd /var/cache 0755 - - -\nq /var/tmp 1777 root root 30d\nd /var/lib 0755 - - -\nd /root/.ssh 0700 root root -\n",
        );
        Fixture { _tmp: tmp, root }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn run(&self, verb: &str, extra: &[&str]) -> (i32, Value) {
        let out = Command::new(bin())
            .arg(verb)
            .arg("--root")
            .arg(&self.root)
            .arg("--json")
            .args(extra)
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{verb}: not JSON ({e}): stdout {} stderr {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, json)
    }

    fn commit(&self) -> Value {
        let (code, j) = self.run("commit", &[]);
        assert_eq!(code, 0, "commit failed: {j:#}");
        j
    }

    fn lint(&self) -> (i32, Value) {
        self.run("lint", &[])
    }

    /// The text output of `VERB --root ROOT EXTRA…`.
    fn text(&self, verb: &str, extra: &[&str]) -> String {
        let out = Command::new(bin())
            .arg(verb)
            .arg("--root")
            .arg(&self.root)
            .args(extra)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run the real `systemd-tmpfiles --create --root=ROOT`, as a machine's boot does; returns
    /// its stderr. The fixture has no tmpfiles.d file but ours, so any failure (a line it
    /// rejects, exit 65; a path it could not create, exit 73) is ours: it fails the test.
    fn systemd_tmpfiles_create(&self) -> String {
        let out = Command::new("systemd-tmpfiles")
            .arg("--create")
            .arg(format!("--root={}", self.root.display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "systemd-tmpfiles: {}\n{err}",
            out.status
        );
        err
    }

    /// Replace the image's /etc/passwd and /etc/group.
    fn accounts(&self, passwd: &str, group: &str) {
        write(&self.p("etc/passwd"), passwd);
        write(&self.p("etc/group"), group);
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.p(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

/// The findings of one check in a report: (severity, paths, message).
fn findings(j: &Value, check: &str) -> Vec<(String, Vec<String>, String)> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["paths"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_string())
                    .collect(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every one of `wants` is in `text`.
fn assert_contains_all(text: &str, wants: &[&str]) {
    for want in wants {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
}

fn checks(j: &Value) -> Vec<String> {
    let mut v: Vec<String> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Everything about a tree that a change would show: paths, types, modes, owners, link targets,
/// contents.
fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let extra = if m.file_type().is_symlink() {
                fs::read_link(&p).unwrap().to_string_lossy().into_owned()
            } else if m.is_file() {
                String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned()
            } else {
                String::new()
            };
            out.push(format!(
                "{rel} {:o} {}:{} {extra}",
                m.mode(),
                m.uid(),
                m.gid()
            ));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn clean_fixture_passes_and_second_commit_changes_nothing() {
    let f = Fixture::new();
    f.commit();
    let (code, j) = f.lint();
    assert_eq!(code, 0, "{j:#}");
    assert_eq!(j["counts"]["errors"], 0, "{j:#}");
    assert_eq!(j["counts"]["warnings"], 0, "{j:#}");
    let before = snapshot(&f.root);
    let j = f.commit();
    assert_eq!(j["counts"]["actions"], 0, "second commit acted: {j:#}");
    assert_eq!(snapshot(&f.root), before);
}

#[test]
fn json_report_has_the_documented_shape() {
    let f = Fixture::new();
    write(&f.p("tmp/junk"), "x");
    let j = f.commit();
    assert_eq!(j["tool"], "ostree-container");
    assert_eq!(j["command"], "commit");
    assert_eq!(j["dry_run"], false);
    assert_eq!(j["root"], f.root.to_str().unwrap());
    let a = &j["actions"][0];
    assert_eq!(
        (a["action"].as_str(), a["path"].as_str()),
        (Some("remove"), Some("/tmp/junk"))
    );
    for key in ["actions", "errors", "warnings"] {
        assert!(j["counts"][key].is_u64(), "counts.{key}");
    }
}

#[test]
fn cleans_tmp_run_cache_logs_and_keeps_dirs_and_modes() {
    let f = Fixture::new();
    write(&f.p("tmp/a/b"), "x");
    write(&f.p("run/lock/x.pid"), "1");
    write(&f.p("var/tmp/t"), "x");
    write(&f.p("var/cache/apt/pkgcache.bin"), "x");
    write(
        &f.p("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease"),
        "x",
    );
    fs::create_dir_all(f.p("var/lib/apt/lists/partial")).unwrap();
    write(&f.p("var/log/apt/history.log"), "x");
    write(&f.p("var/log/dpkg.log"), "x");
    let j = f.commit();
    for gone in [
        "tmp/a",
        "run/lock",
        "var/tmp/t",
        "var/cache/apt",
        "var/log/apt/history.log",
        "var/log/dpkg.log",
    ] {
        assert!(!f.p(gone).exists(), "{gone} still there");
    }
    assert!(f.p("var/log/apt").is_dir(), "log directories stay");
    assert_eq!(fs::metadata(f.p("tmp")).unwrap().mode() & 0o7777, 0o1777);
    assert_eq!(
        fs::metadata(f.p("var/tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    let removed: Vec<&str> = j["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "remove")
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 8, "{removed:?}");
    assert!(
        f.p("var/lib/apt/lists").is_dir(),
        "the lists directory itself stays"
    );
    assert!(
        !f.p("usr/share/factory/var/lib/apt").exists(),
        "no package lists in the factory"
    );
    assert!(f
        .read("usr/lib/tmpfiles.d/ostree-container-var.conf")
        .contains("d /var/log/apt 0755 root root - -"));
}

#[test]
fn var_becomes_tmpfiles_lines_with_the_images_own_names() {
    let f = Fixture::new();
    // Ids that mean something else on the host (or nothing): names must come from the image.
    f.accounts("root:x:0:0:root:/root:/bin/bash\n_svc:x:4242:4343:Service:/var/lib/svc:/usr/sbin/nologin\n", "root:x:0:\n_svc:x:4343:\n");
    fs::create_dir_all(f.p("var/lib/svc/data")).unwrap();
    std::os::unix::fs::chown(f.p("var/lib/svc"), Some(4242), Some(4343)).unwrap();
    fs::set_permissions(f.p("var/lib/svc"), fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::chown(f.p("var/lib/svc/data"), Some(5555), Some(4343)).unwrap();
    write(&f.p("var/lib/svc/state.db"), "state");
    std::os::unix::fs::chown(f.p("var/lib/svc/state.db"), Some(4242), Some(4343)).unwrap();
    fs::set_permissions(
        f.p("var/lib/svc/state.db"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    symlink("/run/svc.sock", f.p("var/lib/svc/sock")).unwrap();
    fs::create_dir_all(f.p("var/lib/a dir")).unwrap();
    f.commit();
    let conf = f.read("usr/lib/tmpfiles.d/ostree-container-var.conf");
    assert!(
        conf.starts_with("# Written by `ostree container commit`"),
        "{conf}"
    );
    let lines: Vec<&str> = conf.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        vec![
            "d /var/home 0755 root root - -",
            r#"d "/var/lib/a dir" 0755 root root - -"#,
            "d /var/lib/svc 0750 _svc _svc - -",
            "d /var/lib/svc/data 0755 5555 _svc - -",
            "L /var/lib/svc/sock - - - - /run/svc.sock",
            "C /var/lib/svc/state.db - - - - /usr/share/factory/var/lib/svc/state.db",
            "d /var/opt 0755 root root - -",
            "d /var/roothome 0755 root root - -",
            "d /var/usrlocal 0755 root root - -",
            "d /var/usrlocal/bin 0755 root root - -",
        ]
    );
    // The factory copy keeps owner and mode (C copies them), and /var keeps its file.
    let fac = fs::metadata(f.p("usr/share/factory/var/lib/svc/state.db")).unwrap();
    assert_eq!(
        (fac.uid(), fac.gid(), fac.mode() & 0o7777),
        (4242, 4343, 0o640)
    );
    assert_eq!(f.read("var/lib/svc/state.db"), "state");
}

#[test]
fn declared_paths_get_no_line_even_through_symlinked_parents() {
    let f = Fixture::new();
    fs::create_dir_all(f.p("var/roothome/.ssh")).unwrap();
    write(
        &f.p("etc/tmpfiles.d/svc.conf"),
        "d /var/lib/svc 0700 root root -\n",
    );
    fs::create_dir_all(f.p("var/lib/svc")).unwrap();
    f.commit();
    let conf = f.read("usr/lib/tmpfiles.d/ostree-container-var.conf");
    assert!(
        !conf.contains("/var/roothome/.ssh"),
        "/root/.ssh is declared: {conf}"
    );
    assert!(!conf.contains("/var/lib/svc"), "{conf}");
    assert!(conf.contains("d /var/roothome "), "{conf}");
}

#[test]
fn package_databases_move_to_usr_lib_sysimage() {
    let f = Fixture::new();
    write(
        &f.p("var/lib/dpkg/status"),
        "Package: hello\nStatus: install ok installed\n",
    );
    write(&f.p("var/lib/rpm/rpmdb.sqlite"), "db");
    f.commit();
    assert_eq!(
        fs::read_link(f.p("var/lib/dpkg")).unwrap(),
        Path::new("../../usr/lib/sysimage/dpkg")
    );
    assert_eq!(
        f.read("var/lib/dpkg/status"),
        "Package: hello\nStatus: install ok installed\n",
        "readable through the link"
    );
    assert!(f.p("usr/lib/sysimage/dpkg/status").is_file());
    assert!(f.p("usr/lib/sysimage/rpm/rpmdb.sqlite").is_file());
    let conf = f.read("usr/lib/tmpfiles.d/ostree-container-var.conf");
    assert_contains_all(
        &conf,
        &[
            "L+ /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg\n",
            "L+ /var/lib/rpm - - - - ../../usr/lib/sysimage/rpm\n",
        ],
    );
    assert!(!conf.contains("/var/lib/dpkg/status"), "{conf}");
}

#[test]
fn rpmdb_already_in_usr_is_left_alone() {
    let f = Fixture::new();
    write(&f.p("usr/lib/sysimage/rpm/rpmdb.sqlite"), "db");
    symlink("../../usr/lib/sysimage/rpm", f.p("var/lib/rpm")).unwrap();
    let j = f.commit();
    assert!(
        !j["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "move"),
        "{j:#}"
    );
    assert!(f
        .read("usr/lib/tmpfiles.d/ostree-container-var.conf")
        .contains("L+ /var/lib/rpm - - - - ../../usr/lib/sysimage/rpm"));
}

#[test]
fn opt_entries_move_to_usr_lib_opt_keeping_modes() {
    let f = Fixture::new();
    write(&f.p("var/opt/vendor/bin/tool"), "#!/bin/sh\necho vendor\n");
    fs::set_permissions(
        f.p("var/opt/vendor/bin/tool"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::hard_link(
        f.p("var/opt/vendor/bin/tool"),
        f.p("var/opt/vendor/bin/tool2"),
    )
    .unwrap();
    f.commit();
    assert_eq!(
        fs::read_link(f.p("var/opt/vendor")).unwrap(),
        Path::new("../../usr/lib/opt/vendor")
    );
    let m = fs::metadata(f.p("usr/lib/opt/vendor/bin/tool")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755);
    assert_eq!(
        m.ino(),
        fs::metadata(f.p("usr/lib/opt/vendor/bin/tool2"))
            .unwrap()
            .ino()
    );
    assert_eq!(
        f.read("opt/vendor/bin/tool"),
        "#!/bin/sh\necho vendor\n",
        "/opt/vendor still works in the image"
    );
    assert!(f
        .read("usr/lib/tmpfiles.d/ostree-container-var.conf")
        .contains("L /var/opt/vendor - - - - ../../usr/lib/opt/vendor\n"));
}

#[test]
fn opt_reinstalled_by_a_later_step_replaces_the_old_copy() {
    let f = Fixture::new();
    write(&f.p("var/opt/vendor/VERSION"), "1");
    f.commit();
    fs::remove_file(f.p("var/opt/vendor")).unwrap();
    write(&f.p("var/opt/vendor/VERSION"), "2");
    let j = f.commit();
    assert!(
        j["actions"]
            .to_string()
            .contains("replacing the copy from an earlier commit"),
        "{j:#}"
    );
    assert_eq!(f.read("usr/lib/opt/vendor/VERSION"), "2");
    assert_eq!(f.read("opt/vendor/VERSION"), "2");
}

#[test]
fn opt_entry_that_is_a_symlink_to_etc_is_not_followed() {
    let f = Fixture::new();
    symlink("/etc", f.p("var/opt/etc-link")).unwrap();
    let before_etc = snapshot(&f.p("etc"));
    let j = f.commit();
    let w = findings(&j, "var-content");
    assert_eq!(w.len(), 1, "{j:#}");
    assert_eq!(w[0].0, "warning");
    assert_eq!(w[0].1, vec!["/var/opt/etc-link"]);
    assert!(
        w[0].2.contains("is a symlink to \"/etc\": kept as a link"),
        "{}",
        w[0].2
    );
    assert_eq!(
        fs::read_link(f.p("var/opt/etc-link")).unwrap(),
        Path::new("/etc")
    );
    assert!(!f.p("usr/lib/opt/etc-link").exists());
    assert_eq!(snapshot(&f.p("etc")), before_etc);
    assert!(f
        .read("usr/lib/tmpfiles.d/ostree-container-var.conf")
        .contains("L /var/opt/etc-link - - - - /etc\n"));
}

#[test]
fn usr_local_files_move_and_directories_stay_writable() {
    let f = Fixture::new();
    write(&f.p("var/usrlocal/bin/mytool"), "#!/bin/sh\n");
    fs::set_permissions(
        f.p("var/usrlocal/bin/mytool"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::create_dir_all(f.p("var/usrlocal/lib/python3.11/dist-packages")).unwrap();
    f.commit();
    assert_eq!(
        fs::read_link(f.p("var/usrlocal/bin/mytool")).unwrap(),
        Path::new("../../../usr/lib/usrlocal/bin/mytool")
    );
    assert_eq!(
        fs::metadata(f.p("usr/lib/usrlocal/bin/mytool"))
            .unwrap()
            .mode()
            & 0o777,
        0o755
    );
    assert!(
        f.p("usr/local/bin/mytool").is_file(),
        "still reachable as /usr/local/bin/mytool"
    );
    let conf = f.read("usr/lib/tmpfiles.d/ostree-container-var.conf");
    assert!(
        conf.contains("d /var/usrlocal/bin 0755 root root - -\n"),
        "{conf}"
    );
    assert!(
        conf.contains("d /var/usrlocal/lib/python3.11/dist-packages 0755 root root - -\n"),
        "{conf}"
    );
    assert!(
        conf.contains("L /var/usrlocal/bin/mytool - - - - ../../../usr/lib/usrlocal/bin/mytool\n"),
        "{conf}"
    );
}

#[test]
fn files_removed_by_a_later_step_lose_their_line_and_factory_copy() {
    let f = Fixture::new();
    write(&f.p("var/lib/app/old"), "x");
    f.commit();
    assert!(f.p("usr/share/factory/var/lib/app/old").exists());
    fs::remove_file(f.p("var/lib/app/old")).unwrap();
    f.commit();
    assert!(!f.p("usr/share/factory/var/lib/app/old").exists());
    assert!(!f
        .read("usr/lib/tmpfiles.d/ostree-container-var.conf")
        .contains("/var/lib/app/old"));
}

#[test]
fn users_groups_and_memberships_become_sysusers_lines() {
    let f = Fixture::new();
    f.accounts(
        "root:x:0:0:root:/root:/bin/bash\n_chrony:x:100:102:Chrony daemon,,,:/var/lib/chrony:/usr/sbin/nologin\nalice:x:1000:1000:Alice \"Al\" Smith:/var/home/alice:/bin/bash\n",
        "root:x:0:\nwheel:x:10:alice\n_chrony:x:102:\nalice:x:1000:\ndevs:x:1500:alice,ghost\n",
    );
    write(
        &f.p("usr/lib/passwd"),
        "bin:x:2:2:bin:/bin:/usr/sbin/nologin\n",
    );
    write(&f.p("usr/lib/group"), "bin:x:2:\n");
    write(&f.p("usr/lib/sysusers.d/wheel.conf"), "g wheel 10\n");
    let (_, lint) = f.lint();
    let w = findings(&lint, "undeclared-accounts");
    assert_eq!(w.len(), 1, "{lint:#}");
    assert!(w[0].2.contains("users: bin, _chrony, alice"), "{}", w[0].2);
    assert!(
        w[0].2
            .contains("memberships: alice in devs, alice in wheel"),
        "{}",
        w[0].2
    );
    f.commit();
    let conf = f.read("usr/lib/sysusers.d/ostree-container-users.conf");
    let lines: Vec<&str> = conf.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        vec![
            "g bin 2",
            "g _chrony 102",
            "g alice 1000",
            "g devs 1500",
            "u bin 2:2 bin /bin /usr/sbin/nologin",
            "u _chrony 100:102 \"Chrony daemon,,,\" /var/lib/chrony /usr/sbin/nologin",
            "u alice 1000:1000 \"Alice \\\"Al\\\" Smith\" /var/home/alice /bin/bash",
            "m alice devs",
            "m alice wheel",
        ]
    );
    let (code, lint) = f.lint();
    assert_eq!(code, 0, "{lint:#}");
    assert!(findings(&lint, "undeclared-accounts").is_empty());
}

#[test]
fn orphan_shadow_entries_are_reported_and_dropped_keeping_owner_and_mode() {
    let f = Fixture::new();
    write(
        &f.p("etc/shadow"),
        "root:*:19000:0:99999:7:::\nghost:!:19000::::::\n",
    );
    write(&f.p("etc/gshadow"), "root:*::\noldgroup:!::\n");
    std::os::unix::fs::chown(f.p("etc/shadow"), Some(0), Some(42)).unwrap();
    fs::set_permissions(f.p("etc/shadow"), fs::Permissions::from_mode(0o640)).unwrap();
    let (code, lint) = f.lint();
    assert_eq!(code, 1, "orphan shadow entries are fatal: {lint:#}");
    let e = findings(&lint, "orphan-shadow");
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].0, "error");
    assert!(
        e.iter()
            .any(|x| x.1 == vec!["/etc/gshadow"] && x.2.contains("oldgroup")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|x| x.1 == vec!["/etc/shadow"] && x.2.contains("ghost")),
        "{e:?}"
    );
    f.commit();
    assert_eq!(f.read("etc/shadow"), "root:*:19000:0:99999:7:::\n");
    assert_eq!(f.read("etc/gshadow"), "root:*::\n");
    let m = fs::metadata(f.p("etc/shadow")).unwrap();
    assert_eq!((m.gid(), m.mode() & 0o777), (42, 0o640));
}

#[test]
fn dry_run_changes_nothing_and_lists_the_actions() {
    let f = Fixture::new();
    write(&f.p("tmp/junk"), "x");
    write(&f.p("var/opt/app/bin/x"), "x");
    f.accounts(
        "root:x:0:0:root:/root:/bin/bash\nsvc:x:999:999::/:/bin/false\n",
        "root:x:0:\nsvc:x:999:\n",
    );
    let before = snapshot(&f.root);
    let (code, j) = f.run("commit", &["--dry-run"]);
    assert_eq!(code, 0, "{j:#}");
    assert_eq!(j["dry_run"], true);
    assert_eq!(snapshot(&f.root), before, "dry run changed the tree");
    let actions: Vec<(String, String)> = j["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().into(),
                a["path"].as_str().unwrap().into(),
            )
        })
        .collect();
    for want in [
        ("remove", "/tmp/junk"),
        ("move", "/var/opt/app"),
        ("write", "/usr/lib/tmpfiles.d/ostree-container-var.conf"),
        ("write", "/usr/lib/sysusers.d/ostree-container-users.conf"),
    ] {
        assert!(
            actions.contains(&(want.0.into(), want.1.into())),
            "missing {want:?} in {actions:?}"
        );
    }
    let text = f.text("commit", &["--dry-run"]);
    assert!(text.contains("would remove /tmp/junk\n"), "{text}");
    assert!(text.contains("actions planned"), "{text}");
}

#[test]
fn each_layout_check_names_its_paths() {
    // (what to break, check, severity, paths)
    type Break = fn(&Fixture);
    let cases: Vec<(&str, Break, &str, &str, Vec<&str>)> = vec![
        (
            "tmp is a symlink",
            |f| {
                fs::remove_dir(f.p("tmp")).unwrap();
                symlink("var/tmp", f.p("tmp")).unwrap();
            },
            "api-dirs",
            "error",
            vec!["/tmp"],
        ),
        (
            "proc missing",
            |f| fs::remove_dir(f.p("proc")).unwrap(),
            "api-dirs",
            "error",
            vec!["/proc"],
        ),
        (
            "var/run a directory",
            |f| {
                fs::remove_file(f.p("var/run")).unwrap();
                fs::create_dir(f.p("var/run")).unwrap();
            },
            "var-run-link",
            "error",
            vec!["/var/run"],
        ),
        (
            "var/run elsewhere",
            |f| {
                fs::remove_file(f.p("var/run")).unwrap();
                symlink("/tmp", f.p("var/run")).unwrap();
            },
            "var-run-link",
            "error",
            vec!["/var/run"],
        ),
        (
            "usr/etc too",
            |f| fs::create_dir_all(f.p("usr/etc")).unwrap(),
            "etc-and-usr-etc",
            "error",
            vec!["/etc", "/usr/etc"],
        ),
        (
            "two kernels",
            |f| write(&f.p("usr/lib/modules/6.2.0/vmlinuz"), "k2"),
            "one-kernel",
            "error",
            vec![
                "/usr/lib/modules/6.1.0-1-amd64/vmlinuz",
                "/usr/lib/modules/6.2.0/vmlinuz",
            ],
        ),
        (
            "kernel in /boot",
            |f| write(&f.p("boot/vmlinuz-6.1.0"), "k"),
            "boot-empty",
            "warning",
            vec!["/boot/vmlinuz-6.1.0"],
        ),
        (
            "no sysroot",
            |f| fs::remove_dir(f.p("sysroot")).unwrap(),
            "sysroot-layout",
            "error",
            vec!["/sysroot"],
        ),
        (
            "ostree link wrong",
            |f| {
                fs::remove_file(f.p("ostree")).unwrap();
                symlink("/var/ostree", f.p("ostree")).unwrap();
            },
            "sysroot-layout",
            "error",
            vec!["/ostree"],
        ),
        (
            "empty resolv.conf",
            |f| write(&f.p("etc/resolv.conf"), ""),
            "empty-build-files",
            "warning",
            vec!["/etc/resolv.conf"],
        ),
        (
            "empty hostname",
            |f| write(&f.p("etc/hostname"), ""),
            "empty-build-files",
            "warning",
            vec!["/etc/hostname"],
        ),
        (
            "relative link above the root",
            |f| {
                fs::create_dir_all(f.p("var/lib/x")).unwrap();
                symlink("../../../../../etc/shadow", f.p("var/lib/x/up")).unwrap();
            },
            "var-link-escapes-root",
            "warning",
            vec!["/var/lib/x/up"],
        ),
        (
            "tmp content",
            |f| write(&f.p("tmp/leftover"), "x"),
            "tmp-run-content",
            "warning",
            vec!["/tmp/leftover"],
        ),
        (
            "var content",
            |f| fs::create_dir_all(f.p("var/lib/newdir")).unwrap(),
            "var-content",
            "warning",
            vec!["/var/lib/newdir"],
        ),
    ];
    for (what, brk, check, severity, paths) in cases {
        let f = Fixture::new();
        f.commit();
        brk(&f);
        // A new link in /var is also new /var content; that check has its own case.
        let extra: &[&str] = if check == "var-link-escapes-root" {
            &["--skip", "var-content"]
        } else {
            &[]
        };
        let (code, j) = f.run("lint", extra);
        assert_eq!(checks(&j), vec![check.to_string()], "{what}: {j:#}");
        let got = findings(&j, check);
        assert_eq!(got[0].0, severity, "{what}");
        let all: Vec<String> = got.iter().flat_map(|g| g.1.clone()).collect();
        assert_eq!(all, paths, "{what}");
        assert_eq!(
            code,
            if severity == "error" { 1 } else { 0 },
            "{what}: exit code"
        );
        if severity == "warning" {
            let (code, _) = f.run("lint", &[extra, &["--fatal-warnings"]].concat());
            assert_eq!(code, 1, "{what}: --fatal-warnings");
        }
        let (code, j) = f.run("lint", &[extra, &["--skip", check]].concat());
        assert_eq!((code, checks(&j)), (0, vec![]), "{what}: --skip");
    }
}

#[test]
fn special_files_and_non_utf8_names_are_fatal_and_named() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let f = Fixture::new();
    f.commit();
    fs::create_dir_all(f.p("srv")).unwrap();
    let fifo = f.p("srv/queue");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    assert!(Command::new("mknod")
        .arg(f.p("srv/null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap()
        .success());
    let sock = std::os::unix::net::UnixListener::bind(f.p("srv/sock")).unwrap();
    write(
        &f.root.join(OsStr::from_bytes(b"srv/caf\xe9")),
        "latin-1 name",
    );
    symlink(OsStr::from_bytes(b"/usr/\xff"), f.p("srv/badlink")).unwrap();
    // /dev and /run may hold such files (they are never stored).
    assert!(Command::new("mkfifo")
        .arg(f.p("dev/initctl"))
        .status()
        .unwrap()
        .success());
    let (code, j) = f.lint();
    drop(sock);
    assert_eq!(code, 1);
    let s = findings(&j, "special-files");
    assert_eq!(s[0].1, vec!["/srv/null", "/srv/queue", "/srv/sock"]);
    assert!(s[0].2.contains("chardevice, fifo, socket"), "{}", s[0].2);
    let u = findings(&j, "utf8-names");
    assert_eq!(u.len(), 2, "{u:?}");
    assert!(u.iter().any(|x| x.1 == vec!["/srv/caf\\xe9"]), "{u:?}");
    assert!(u.iter().any(|x| x.1 == vec!["/srv/badlink"]), "{u:?}");
    // commit reports the same fatal findings and exits 1.
    let (code, j) = f.run("commit", &[]);
    assert_eq!(code, 1);
    assert!(!findings(&j, "special-files").is_empty());
}

#[test]
fn var_symlink_out_of_the_root_is_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    write(&outside.path().join("secret"), "outside");
    let f = Fixture::new();
    fs::create_dir_all(f.p("var/lib/app")).unwrap();
    symlink(outside.path(), f.p("var/lib/app/escape")).unwrap();
    symlink(outside.path(), f.p("var/cache/escape")).unwrap();
    symlink(outside.path().join("secret"), f.p("var/log/escape.log")).unwrap();
    symlink(outside.path(), f.p("var/opt/escape")).unwrap();
    let before = snapshot(outside.path());
    f.commit();
    assert_eq!(
        snapshot(outside.path()),
        before,
        "something outside the root changed"
    );
    assert!(outside.path().join("secret").exists());
    let conf = f.read("usr/lib/tmpfiles.d/ostree-container-var.conf");
    assert!(
        conf.contains(&format!(
            "L /var/lib/app/escape - - - - {}",
            outside.path().display()
        )),
        "{conf}"
    );
    assert!(
        !f.p("var/cache/escape").exists() && fs::symlink_metadata(f.p("var/cache/escape")).is_err(),
        "the link itself is cleaned"
    );
}

#[test]
fn read_only_bind_mount_in_run_is_left_alone() {
    let f = Fixture::new();
    let src = tempfile::tempdir().unwrap();
    write(&src.path().join("secret"), "mounted");
    fs::create_dir_all(f.p("run/secrets")).unwrap();
    write(&f.p("run/other"), "x");
    // A private mount namespace keeps the bind mount away from the rest of the machine.
    let script = format!(
        "mount --bind {src} {dst} && mount -o remount,ro,bind {dst} && {bin} commit --root {root} --json > {out}; code=$?; ls {dst} > {out}.ls; exit $code",
        src = src.path().display(),
        dst = f.p("run/secrets").display(),
        bin = bin().display(),
        root = f.root.display(),
        out = f.root.with_extension("json").display(),
    );
    let st = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(
        st.success(),
        "commit with a read-only bind mount in /run failed"
    );
    let j: Value =
        serde_json::from_slice(&fs::read(f.root.with_extension("json")).unwrap()).unwrap();
    assert_eq!(j["counts"]["errors"], 0, "{j:#}");
    assert_eq!(
        fs::read_to_string(f.root.with_extension("json.ls")).unwrap(),
        "secret\n"
    );
    assert!(!f.p("run/other").exists(), "the rest of /run is cleaned");
    assert_eq!(
        fs::read_to_string(src.path().join("secret")).unwrap(),
        "mounted"
    );
}

/// Put the binary into the fixture as /usr/bin/ostree, with the libraries it needs, so that it
/// can run chrooted there: the chroot's `/` is then the process's own `/`, as in a RUN step.
/// (This machine may itself be a container, with /.dockerenv: the tests never run `commit` on
/// its `/`.)
fn install_tool(f: &Fixture) {
    fs::copy(bin(), f.p("usr/bin/ostree")).unwrap();
    let ldd = Command::new("ldd").arg(bin()).output().unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dst = f.root.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(lib, &dst).unwrap();
    }
}

/// `chroot ROOT /usr/bin/ostree container ARGS…` with no environment but `container=` when
/// given.
fn in_chroot(f: &Fixture, args: &[&str], container: Option<&str>) -> std::process::Output {
    let mut c = Command::new("/usr/sbin/chroot");
    c.arg(&f.root)
        .args(["/usr/bin/ostree", "container"])
        .args(args)
        .env_clear();
    if let Some(v) = container {
        c.env("container", v);
    }
    c.output().unwrap()
}

#[test]
fn commit_on_a_host_refuses_and_a_step_without_marker_over_an_ostree_base_proceeds() {
    // A host: no container marker and no ostree layout.
    let f = Fixture::new();
    write(&f.p("tmp/keep-me"), "x");
    install_tool(&f);
    fs::remove_file(f.p("ostree")).unwrap();
    fs::remove_dir(f.p("sysroot")).unwrap();
    let before = snapshot(&f.root);
    let out = in_chroot(&f, &["commit"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to run on what looks like a host"),
        "{stderr}"
    );
    assert!(stderr.contains("--root"), "{stderr}");
    assert_eq!(snapshot(&f.root), before);
    // A Docker BuildKit RUN step has no marker at all; over an ostree-ready base it runs.
    fs::create_dir(f.p("sysroot")).unwrap();
    std::os::unix::fs::symlink("sysroot/ostree", f.p("ostree")).unwrap();
    let out = in_chroot(&f, &["commit"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!f.p("tmp/keep-me").exists());
}

#[test]
fn commit_on_slash_refuses_a_container_without_an_ostree_layout_and_changes_nothing() {
    // A dev container, toolbox or CI job container: a container marker, but no ostree layout.
    let f = Fixture::new();
    fs::remove_file(f.p("ostree")).unwrap();
    fs::remove_dir(f.p("sysroot")).unwrap();
    write(&f.p("tmp/someone-elses-work/build.log"), "in progress");
    write(&f.p("var/cache/apt/pkgcache.bin"), "cache");
    fs::create_dir_all(f.p("var/lib/newdir")).unwrap();
    install_tool(&f);
    let before = snapshot(&f.root);
    let out = in_chroot(&f, &["commit"], Some("podman"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_contains_all(
        &stderr,
        &[
            "container=podman",
            "no ostree layout",
            "--allow-rewriting-root",
            "Nothing was changed",
        ],
    );
    assert_eq!(
        snapshot(&f.root),
        before,
        "a refused commit changed the tree"
    );
    // --dry-run and lint are read-only and run anywhere.
    let out = in_chroot(&f, &["commit", "--dry-run"], Some("podman"));
    assert_ne!(
        out.status.code(),
        Some(2),
        "--dry-run could not run: {out:?}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("would remove /tmp/someone-elses-work"),
        "{stdout}"
    );
    let out = in_chroot(&f, &["lint"], Some("podman"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("error[sysroot-layout]"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "an error finding: {out:?}");
    assert_eq!(
        snapshot(&f.root),
        before,
        "dry run or lint changed the tree"
    );
    // The explicit opt-in.
    let out = in_chroot(&f, &["commit", "--allow-rewriting-root"], Some("podman"));
    assert_ne!(out.status.code(), Some(2), "{out:?}");
    assert!(!f.p("tmp/someone-elses-work").exists());
}

/// Make `levels` nested directories `d` below `base`, one descriptor at a time (a path that
/// long cannot be passed to the kernel in one call).
fn deep_chain(base: &Path, levels: usize) {
    use rustix::fs::{Mode, OFlags};
    fs::create_dir_all(base).unwrap();
    let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut fd = rustix::fs::open(base, flags, Mode::empty()).unwrap();
    for _ in 0..levels {
        rustix::fs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
        fd = rustix::fs::openat(&fd, "d", flags, Mode::empty()).unwrap();
    }
}

/// Removes the deep trees with `rm -rf` (coreutils walks any depth) when dropped, also when a
/// test fails, before the temp dir's own (recursive) removal would overflow the stack.
struct RemoveDeep(Vec<PathBuf>);

impl Drop for RemoveDeep {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = Command::new("rm").arg("-rf").arg(p).status();
        }
    }
}

#[test]
fn trees_30000_levels_deep_are_walked_and_what_cannot_be_declared_is_named() {
    let f = Fixture::new();
    let _cleanup = RemoveDeep(vec![f.p("var/lib/deep"), f.p("tmp/deep")]);
    // /var/lib/deep is walked to the bottom by lint's scan, /tmp/deep by commit's removal.
    deep_chain(&f.p("var/lib/deep"), 30_000);
    deep_chain(&f.p("tmp/deep"), 30_000);
    fs::create_dir_all(f.p("var/lib/other")).unwrap();
    let (code, lint) = f.lint();
    assert_eq!(code, 1, "lint: {lint:#}");
    assert_eq!(
        checks(&lint),
        vec!["tmp-run-content", "var-content"],
        "no crash, no other finding"
    );
    let (code, j) = f.run("commit", &[]);
    assert_eq!(code, 1, "an error finding for the path too long: {j:#}");
    let errors: Vec<_> = findings(&j, "var-content")
        .into_iter()
        .filter(|f| f.0 == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let path = &errors[0].1[0];
    assert!(path.starts_with("/var/lib/deep/d/d/d/"), "{path}");
    assert!(path.len() >= 4090 && path.len() < 4100, "{}", path.len());
    assert!(errors[0].2.contains("bytes long"), "{}", errors[0].2);
    assert!(
        errors[0].2.contains("stays in the image's /var"),
        "{}",
        errors[0].2
    );
    // The rest was done.
    assert!(!f.p("tmp/deep").exists(), "/tmp was cleaned");
    let conf = f.read("usr/lib/tmpfiles.d/ostree-container-var.conf");
    assert_contains_all(
        &conf,
        &[
            "d /var/lib/other 0755 root root - -\n",
            "d /var/lib/deep/d/d/d 0755",
        ],
    );
    assert!(
        conf.lines().count() < 2100,
        "{} lines",
        conf.lines().count()
    );
}

/// Run the binary with at most `limit` open files.
fn run_limited(f: &Fixture, limit: u32, verb: &str) -> (i32, Value) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(bin())
        .arg(verb)
        .arg("--json")
        .arg("--root")
        .arg(&f.root)
        .output()
        .unwrap();
    let j = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    (out.status.code().unwrap_or(-1), j)
}

#[test]
fn thousands_of_sibling_directories_under_a_1024_file_limit() {
    let f = Fixture::new();
    for i in 0..3000 {
        write(&f.p(&format!("var/lib/many/d{i:04}/state")), "s");
        write(&f.p(&format!("var/log/many/d{i:04}/x.log")), "l");
    }
    let (code, lint) = run_limited(&f, 1024, "lint");
    assert_eq!(code, 0, "{lint:#}");
    let (code, j) = run_limited(&f, 1024, "commit");
    assert_eq!(code, 0, "{j:#}");
    let conf = f.read("usr/lib/tmpfiles.d/ostree-container-var.conf");
    let copies = conf
        .lines()
        .filter(|l| l.starts_with("C /var/lib/many/"))
        .count();
    assert_eq!(copies, 3000);
    assert!(!f.p("var/log/many/d2999/x.log").exists());
    assert!(f.p("usr/share/factory/var/lib/many/d2999/state").is_file());
}

#[test]
fn symlink_loops_are_named_never_followed_and_the_rest_is_done() {
    let f = Fixture::new();
    // A loop at /opt, one at /var/roothome (which /root/.ssh in var.conf passes through), and
    // one between two links under /var/lib.
    fs::remove_file(f.p("opt")).unwrap();
    symlink("opt2", f.p("opt")).unwrap();
    symlink("opt", f.p("opt2")).unwrap();
    fs::remove_dir(f.p("var/roothome")).unwrap();
    symlink("roothome", f.p("var/roothome")).unwrap();
    symlink("b", f.p("var/lib/a")).unwrap();
    symlink("a", f.p("var/lib/b")).unwrap();
    fs::create_dir_all(f.p("var/lib/normal")).unwrap();
    write(&f.p("var/opt/app/bin/x"), "x");
    let (code, j) = f.run("commit", &[]);
    assert_eq!(code, 0, "{j:#}");
    let named: Vec<(String, String)> = findings(&j, "var-content")
        .into_iter()
        .map(|(_, p, m)| (p.join(" "), m))
        .collect();
    assert!(
        named
            .iter()
            .any(|(p, m)| p == "/opt" && m.contains("symbolic links")),
        "{named:#?}"
    );
    assert!(
        named
            .iter()
            .any(|(p, m)| p == "/root/.ssh" && m.contains("symbolic links")),
        "{named:#?}"
    );
    let conf = f.read("usr/lib/tmpfiles.d/ostree-container-var.conf");
    assert_contains_all(
        &conf,
        &[
            "L /var/lib/a - - - - b\n",
            "L /var/lib/b - - - - a\n",
            "L /var/roothome - - - - roothome\n",
            "d /var/lib/normal 0755 root root - -\n",
        ],
    );
    assert!(
        f.p("var/opt/app/bin/x").is_file(),
        "/opt is not /var/opt: left alone"
    );
}

#[test]
fn called_as_ostree_only_container_verbs_are_ours() {
    let t = tempfile::tempdir().unwrap();
    let as_ostree = t.path().join("ostree");
    symlink(bin(), &as_ostree).unwrap();
    let out = Command::new(&as_ostree)
        .args(["admin", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only implements `ostree container <verb>`")
    );
    let f = Fixture::new();
    let out = Command::new(&as_ostree)
        .args(["container", "lint", "--root"])
        .arg(&f.root)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("lint: "),
        "{out:?}"
    );
}

#[test]
fn lint_list_and_unknown_skip() {
    // `--list` prints the table the checks run from, in text and in JSON.
    use ostree_container::commit::lints::LINTS;
    let out = Command::new(bin())
        .args(["lint", "--list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), LINTS.len(), "{text}");
    for (l, line) in LINTS.iter().zip(text.lines()) {
        assert!(
            line.starts_with(l.name) && line.ends_with(l.description),
            "{line:?} is not {:?}",
            l.name
        );
    }
    let out = Command::new(bin())
        .args(["lint", "--list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["schema_version"], 1);
    let names: Vec<&str> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, LINTS.iter().map(|l| l.name).collect::<Vec<_>>());
    assert!(names.contains(&"var-content") && names.contains(&"etc-and-usr-etc"));
    let out = Command::new(bin())
        .args(["lint", "--skip", "nope", "--root", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such check"));
}

#[test]
fn written_lines_mean_the_same_to_systemd_tmpfiles() {
    // Awkward names, and the real systemd-tmpfiles creating them in a fresh /var.
    let f = Fixture::new();
    let names = ["dir with space", "q\"uote\\bs", "100%", "café", "tab\there"];
    for n in names {
        fs::create_dir_all(f.p("var/lib/odd").join(n)).unwrap();
        write(&f.p("var/lib/odd").join(n).join("file %s"), n);
    }
    symlink("../target with space", f.p("var/lib/odd/link x")).unwrap();
    f.commit();
    fs::remove_dir_all(f.p("var/lib/odd")).unwrap();
    let err = f.systemd_tmpfiles_create();
    assert!(!err.contains("ostree-container-var.conf"), "{err}");
    for n in names {
        let d = f.p("var/lib/odd").join(n);
        assert!(
            d.is_dir(),
            "{n:?} not recreated; var/lib/odd has {:?}",
            fs::read_dir(f.p("var/lib/odd"))
                .map(|r| r.map(|e| e.unwrap().file_name()).collect::<Vec<_>>())
        );
        assert_eq!(fs::read_to_string(d.join("file %s")).unwrap(), n);
    }
    assert_eq!(
        fs::read_link(f.p("var/lib/odd/link x")).unwrap(),
        Path::new("../target with space")
    );
}

/// Mode and contents of the account files, to compare before and after systemd-tmpfiles.
fn account_files(root: &Path) -> Vec<(String, u32, String)> {
    ["etc/passwd", "etc/shadow", "etc/group", "etc/gshadow"]
        .iter()
        .map(|f| {
            let p = root.join(f);
            let Ok(m) = fs::symlink_metadata(&p) else {
                return (f.to_string(), 0, "missing".into());
            };
            let contents = if m.file_type().is_symlink() {
                format!("a link to {:?}", fs::read_link(&p).unwrap())
            } else {
                String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned()
            };
            (f.to_string(), m.mode(), contents)
        })
        .collect()
}

#[test]
fn hostile_names_never_reach_outside_var_through_systemd_tmpfiles() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let f = Fixture::new();
    // Owner names: with a space, with `%`, and (as hostile as the names below) with a carriage
    // return.
    f.accounts(
        "root:x:0:0:root:/root:/bin/bash\nmy user:x:1000:1000::/:/bin/sh\na%b:x:1001:1001::/:/bin/sh\ncr\rL+ /etc/gshadow - - - - /tmp/evil:x:1003:1003::/:/bin/sh\n",
        "root:x:0:\nmy user:x:1000:\na%b:x:1001:\ncr\rz /etc/gshadow 0666:x:1003:\n",
    );
    let base = f.p("var/lib/hostile");
    // Names that would be lines of their own if written raw: each tries to change /etc.
    let injections: &[&[u8]] = &[
        b"x\nL+ /etc/shadow - - - - /tmp/evil",
        b"x\rf+ /etc/passwd 0644 root root - evil::0:0::/root:/bin/sh",
        b"x\nz /etc/shadow 0666 - - -",
        b"x\nw+ /etc/passwd - - - - evil2::0:0::/root:/bin/sh",
        b"trailing-newline\n",
    ];
    // Names that must come back exactly.
    let exact: &[&[u8]] = &[
        b"trailing ",
        b" leading",
        b"  both  ",
        b"q\"uo'te",
        b"back\\slash",
        b"x\\x20y",
        b"100%",
        b"%h",
        b"%%",
        b"tab\tx",
        b"ctl\x01\x1b\x7fx",
        b"star*?[a]",
        b"dollar$x",
        b"- dash",
        b"#hash",
    ];
    // (An injected "name" with `/` in it is a chain of directories: the first one, with the
    // newline, is what matters.)
    for n in injections.iter().chain(exact) {
        let name = OsStr::from_bytes(n);
        fs::create_dir_all(base.join("d").join(name)).unwrap();
        fs::write(base.join("d").join(name).join("f"), n).unwrap();
        let file = base.join("f").join(name);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, n).unwrap();
    }
    for (i, t) in exact.iter().chain(injections).enumerate() {
        symlink(OsStr::from_bytes(t), base.join(format!("link{i}"))).unwrap();
    }
    // Software in /opt under such a name stays where it is (no link could declare it).
    let opt_bad = f.p("var/opt").join(OsStr::from_bytes(b"app\nL+ x"));
    write(&opt_bad.join("bin/tool"), "t");
    for (dir, uid) in [
        ("owned-by-my-user", 1000),
        ("owned-by-a-pct-b", 1001),
        ("owned-by-a-cr-name", 1003),
    ] {
        fs::create_dir_all(base.join(dir)).unwrap();
        std::os::unix::fs::chown(base.join(dir), Some(uid), Some(uid)).unwrap();
    }
    let (code, j) = f.run("commit", &[]);
    assert_eq!(code, 1, "{j:#}");
    let refused: Vec<(Vec<String>, String)> = findings(&j, "var-content")
        .into_iter()
        .filter(|f| f.0 == "error")
        .map(|f| (f.1, f.2))
        .collect();
    // Each injected name is named once per place (as a directory, as a file), and nothing below
    // a refused directory is named again.
    assert_eq!(refused.len(), 2 * injections.len() + 1, "{refused:#?}");
    assert!(opt_bad.join("bin/tool").is_file());
    assert_eq!(
        fs::read_dir(f.p("usr/lib/opt"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    for (paths, message) in &refused {
        assert!(
            paths[0].contains("\\x0a") || paths[0].contains("\\x0d"),
            "{paths:?}"
        );
        assert!(
            !message.contains('\n') && !message.contains('\r'),
            "{message:?}"
        );
        assert!(message.contains("stays in the image's /var"), "{message}");
    }
    // Every line (as systemd splits them: at newline and carriage return) is about /var.
    let conf = fs::read(f.p("usr/lib/tmpfiles.d/ostree-container-var.conf")).unwrap();
    for line in conf.split(|&b| b == b'\n' || b == b'\r') {
        let line = String::from_utf8_lossy(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let path = line.split_once(' ').map(|x| x.1).unwrap_or("");
        assert!(
            path.starts_with("/var/") || path.starts_with("\"/var/"),
            "{line:?}"
        );
    }

    // A machine: a fresh /var, then the real systemd-tmpfiles.
    let outside_var = |root: &Path| -> Vec<String> {
        snapshot(root)
            .into_iter()
            .filter(|l| !l.starts_with("var/") && !l.starts_with("var "))
            .collect()
    };
    let before = (account_files(&f.root), outside_var(&f.root));
    fs::remove_dir_all(&base).unwrap();
    let err = f.systemd_tmpfiles_create();
    let after = (account_files(&f.root), outside_var(&f.root));
    assert_eq!(after.0, before.0, "the account files changed: {err}");
    assert_eq!(after.1, before.1, "something outside /var changed: {err}");
    assert!(!f.p("tmp/evil").exists());
    for n in exact {
        let name = OsStr::from_bytes(n);
        let shown = String::from_utf8_lossy(n);
        assert_eq!(
            fs::read(base.join("d").join(name).join("f")).unwrap_or_default(),
            *n,
            "{shown:?} as a directory: {err}"
        );
        assert_eq!(
            fs::read(base.join("f").join(name)).unwrap_or_default(),
            *n,
            "{shown:?} as a file: {err}"
        );
    }
    for (i, t) in exact.iter().chain(injections).enumerate() {
        let got = fs::read_link(base.join(format!("link{i}"))).unwrap();
        assert_eq!(got.as_os_str().as_bytes(), *t, "link target {i}");
    }
    // Owner names with a space or a `%` are looked up as they are.
    let uid = |d: &str| fs::metadata(base.join(d)).unwrap().uid();
    assert_eq!(uid("owned-by-my-user"), 1000, "{err}");
    assert_eq!(uid("owned-by-a-pct-b"), 1001, "{err}");
    // A name with a carriage return is written as the number.
    assert_eq!(uid("owned-by-a-cr-name"), 1003, "{err}");
    // Nothing but the refused names is missing.
    let names = |d: &str| fs::read_dir(base.join(d)).unwrap().count();
    assert_eq!((names("d"), names("f")), (exact.len(), exact.len()));
}

#[test]
fn accounts_machines_get_are_the_images_or_an_error_names_them() {
    let f = Fixture::new();
    let image_passwd = "root:x:0:0:root:/root:/bin/bash\n\
        alice:x:1000:1000:Alice:/var/home/alice:/bin/bash\n\
        alice:x:1500:1500:Second Alice:/var/home/alice2:/bin/sh\n\
        pc%t:x:1001:1001::/:/bin/sh\n\
        my user:x:1002:1002::/:/bin/sh\n\
        this line is broken\n\
        bob:x:NaN:1::/:/bin/sh\n\
        toor:x:0:0::/root:/bin/sh\n\
        svc:x:999:999:Service 100%:/var/lib/svc:/usr/sbin/nologin\n";
    write(&f.p("etc/passwd"), image_passwd);
    write(
        &f.p("etc/group"),
        "root:x:0:\nalice:x:1000:\npc%t:x:1001:\nmy user:x:1002:\nsvc:x:999:alice\n",
    );
    let (code, j) = f.run("commit", &[]);
    assert_eq!(code, 1, "{j:#}");
    let all: Vec<(String, String)> = findings(&j, "undeclared-accounts")
        .into_iter()
        .map(|f| (f.0, f.2))
        .collect();
    let errors: Vec<&String> = all
        .iter()
        .filter(|f| f.0 == "error")
        .map(|f| &f.1)
        .collect();
    for line in ["/etc/passwd:6:", "/etc/passwd:7:"] {
        assert!(
            errors.iter().any(|m| m.starts_with(line)),
            "{line} not named: {all:#?}"
        );
    }
    assert!(
        all.iter()
            .any(|(_, m)| m
                .starts_with("/etc/passwd:3: user \"alice\" is already defined on line 2")),
        "{all:#?}"
    );

    // A machine that has only root, after the real systemd-sysusers.
    f.accounts("root:x:0:0:root:/root:/bin/bash\n", "root:x:0:\n");
    write(&f.p("etc/shadow"), "root:*:19000:0:99999:7:::\n");
    write(&f.p("etc/gshadow"), "root:*::\n");
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", f.root.display()))
        .output()
        .unwrap();
    let machine = f.read("etc/passwd");
    // Every account of the image as its own system sees it (first entry of a name wins).
    let mut seen = std::collections::BTreeSet::new();
    for l in image_passwd.lines() {
        let v: Vec<&str> = l.split(':').collect();
        if v.len() != 7 || v[2].parse::<u32>().is_err() || !seen.insert(v[0]) {
            continue;
        }
        let on_machine = machine
            .lines()
            .find(|m| m.split(':').next() == Some(v[0]))
            .map(|m| m.split(':').skip(2).take(2).collect::<Vec<_>>());
        let named = errors.iter().any(|m| m.contains(&format!("{:?}", v[0])));
        assert!(
            on_machine.as_deref() == Some(&v[2..4]) || named,
            "user {:?}: machine has {on_machine:?}, image {:?}, and no error names it\n{machine}\n{}\n{all:#?}",
            v[0],
            &v[2..4],
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(machine.contains("alice:x:1000:1000:"), "{machine}");
    assert!(machine.contains("svc:x:999:999:Service 100%:"), "{machine}");
    assert!(
        f.read("etc/group").contains("svc:x:999:alice"),
        "membership"
    );
}

#[test]
fn lint_speaks_bootcs_dialect() {
    let f = Fixture::new();
    f.commit();
    for i in 0..12 {
        write(&f.p(&format!("tmp/junk{i:02}")), "x");
    }
    fs::create_dir_all(f.p("var/lib/newdir")).unwrap();
    let lint = |args: &[&str]| {
        let out = Command::new(bin()).arg("lint").args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let root = f.root.to_str().unwrap();
    let (code, text, _) = lint(&["--rootfs", root]);
    assert!(text.contains("warning[tmp-run-content]"), "{text}");
    assert_eq!(code, Some(0), "warnings only: {text}");
    assert!(text.contains("… and 2 more"), "{text}");
    let (code, text, _) = lint(&["--rootfs", root, "--no-truncate"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("\"/tmp/junk11\""), "{text}");
    assert!(!text.contains("more"), "{text}");
    let (code, text, _) = lint(&[
        "--rootfs",
        root,
        "--fatal-warnings",
        "--skip",
        "tmp-run-content,var-content",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let (code, _, err) = lint(&["--root", root, "--skip", "var-contnet"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("did you mean \"var-content\"?"), "{err}");
    let (code, json, _) = lint(&["--root", root, "--json"]);
    let j: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(j["schema_version"], 1);
    assert_eq!(code, Some(0), "{j:#}");
    let (code, _, _) = lint(&["--root", root, "--fatal-warnings"]);
    assert_eq!(code, Some(1), "--fatal-warnings with warnings left");
}

#[test]
fn dry_run_prints_the_exact_lines_it_would_write() {
    let f = Fixture::new();
    fs::create_dir_all(f.p("var/lib/a dir")).unwrap();
    f.accounts(
        "root:x:0:0:root:/root:/bin/bash\nsvc:x:999:999:Svc 100%:/var/lib/svc:/usr/sbin/nologin\n",
        "root:x:0:\nsvc:x:999:\n",
    );
    let text = f.text("commit", &["--dry-run"]);
    assert_contains_all(
        &text,
        &[
            "would write /usr/lib/tmpfiles.d/ostree-container-var.conf",
            "\n    d \"/var/lib/a dir\" 0755 root root - -\n",
            "would write /usr/lib/sysusers.d/ostree-container-users.conf",
            "\n    g svc 999\n",
            "\n    u svc 999:999 \"Svc 100%%\" /var/lib/svc /usr/sbin/nologin\n",
        ],
    );
    let (_, j) = f.run("commit", &["--dry-run"]);
    assert_eq!(j["schema_version"], 1);
    let write = j["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == "/usr/lib/sysusers.d/ostree-container-users.conf")
        .unwrap();
    assert_eq!(write["lines"][0], "g svc 999");
    // What it prints is what commit writes.
    f.commit();
    let conf = f.read("usr/lib/sysusers.d/ostree-container-users.conf");
    assert!(conf.contains("u svc 999:999 \"Svc 100%%\" /var/lib/svc /usr/sbin/nologin\n"));
}

#[test]
fn a_change_that_failed_is_reported_once() {
    let f = Fixture::new();
    write(&f.p("tmp/stuck/file"), "x");
    // An immutable file cannot be removed, even by root.
    let chattr = |flag: &str| {
        Command::new("chattr")
            .arg(flag)
            .arg(f.p("tmp/stuck/file"))
            .status()
            .unwrap()
            .success()
    };
    if !chattr("+i") {
        eprintln!("skipped: this filesystem has no immutable flag");
        return;
    }
    let (code, j) = f.run("commit", &[]);
    chattr("-i");
    assert_eq!(code, 1, "{j:#}");
    let mentions: Vec<&Value> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["paths"].to_string().contains("/tmp/stuck"))
        .collect();
    assert_eq!(mentions.len(), 1, "{j:#}");
    assert_eq!(mentions[0]["check"], "commit");
}
