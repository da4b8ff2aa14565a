//! Booting a sysroot in qemu (TCG, no KVM needed): the disk image, its boot entry, the boot.
//!
//! - [`mkfs_ext4`]: `mkfs.ext4 -d DIR -L LABEL IMG SIZE`, a filesystem image filled from a
//!   directory without mounting anything.
//! - [`BootEntry`]: an ostree BLS entry (`/boot/loader/entries/*.conf`: `version`, `linux`,
//!   `initrd`, `options`); [`BootEntry::default_in_dir`] reads a sysroot directory's,
//!   [`BootEntry::default_in_image`] a disk image's (with `debugfs`, read-only, no mount). The
//!   default is the entry with the highest `version`, as ostree numbers them.
//! - [`boot`]: `qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nic none -nographic -no-reboot`
//!   with `-kernel/-initrd/-append` (no bootloader), the serial console to a log file; waits for
//!   the machine to power itself off (or kills it after a timeout) and returns the log.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{cmd, run};

/// `mkfs.ext4 -q -d DIR -L LABEL IMG SIZE` (IMG is created sparse).
pub fn mkfs_ext4(dir: &Path, label: &str, img: &Path, size: &str) {
    run(cmd("mkfs.ext4", ["-q", "-F", "-d"])
        .arg(dir)
        .args(["-L", label])
        .arg(img)
        .arg(size));
}

/// An ostree boot loader entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEntry {
    pub version: u32,
    /// Paths relative to /boot (they start with `/`).
    pub linux: String,
    pub initrd: String,
    pub options: String,
}

impl BootEntry {
    /// Parse a BLS entry's text.
    pub fn parse(text: &str) -> Option<BootEntry> {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(' ')))
                .map(|v| v.trim().to_string())
        };
        Some(BootEntry {
            version: get("version")?.parse().ok()?,
            linux: get("linux")?,
            initrd: get("initrd")?,
            options: get("options")?,
        })
    }

    fn default_of(texts: impl IntoIterator<Item = String>) -> BootEntry {
        let mut entries: Vec<BootEntry> = texts
            .into_iter()
            .map(|t| BootEntry::parse(&t).unwrap_or_else(|| panic!("bad boot entry:\n{t}")))
            .collect();
        entries.sort_by_key(|e| e.version);
        entries.pop().expect("no boot entry")
    }

    /// The default entry of the sysroot directory `sysroot`.
    pub fn default_in_dir(sysroot: &Path) -> BootEntry {
        let dir = sysroot.join("boot/loader/entries");
        BootEntry::default_of(
            std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| super::read(e.unwrap().path())),
        )
    }

    /// The default entry of the ext4 image `img` whose root is a sysroot.
    pub fn default_in_image(img: &Path) -> BootEntry {
        // /boot/loader is a symlink to loader.0 or loader.1.
        let stat = debugfs(img, "stat /boot/loader");
        let target = stat
            .split("Fast link dest: \"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("/boot/loader is not a symlink:\n{stat}"))
            .to_string();
        let dir = format!("/boot/{target}/entries");
        let names: Vec<String> = debugfs(img, &format!("ls -p {dir}"))
            .lines()
            .filter_map(|l| l.split('/').nth(5).map(str::to_string))
            .filter(|n| n.ends_with(".conf"))
            .collect();
        assert!(!names.is_empty(), "no entries in {dir}");
        BootEntry::default_of(
            names
                .iter()
                .map(|n| debugfs(img, &format!("cat {dir}/{n}"))),
        )
    }
}

/// `debugfs -R REQUEST IMG` (read-only); returns stdout.
pub fn debugfs(img: &Path, request: &str) -> String {
    run(cmd("debugfs", ["-R", request]).arg(img))
}

/// Copy the file at `path` of the ext4 image `img` to `dest`.
pub fn debugfs_dump(img: &Path, path: &str, dest: &Path) {
    debugfs(img, &format!("dump {path} {}", dest.display()));
    assert!(
        dest.is_file(),
        "debugfs could not dump {path} from {}",
        img.display()
    );
}

/// A qemu run: disks (raw images, first is the root), kernel, initrd, command line.
pub struct Boot<'a> {
    pub disks: &'a [PathBuf],
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub append: String,
    pub log: PathBuf,
    pub timeout: Duration,
}

/// Boot, wait until the machine powers off (or `timeout`, then kill it), return the console
/// log. Panics when qemu fails or times out, with the end of the log.
pub fn boot(b: &Boot<'_>) -> String {
    let mut c = Command::new("qemu-system-x86_64");
    c.args(["-accel", "tcg", "-m", "1024", "-smp", "2", "-nic", "none"]);
    c.args(["-nographic", "-no-reboot", "-monitor", "none"]);
    c.arg("-serial").arg(format!("file:{}", b.log.display()));
    for d in b.disks {
        c.arg("-drive")
            .arg(format!("file={},if=virtio,format=raw", d.display()));
    }
    c.arg("-kernel").arg(b.kernel).arg("-initrd").arg(b.initrd);
    c.arg("-append").arg(&b.append);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = c.spawn().expect("starting qemu-system-x86_64");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > b.timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the machine did not power off within {:?}; console:\n{}",
                b.timeout,
                log_tail(&b.log)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(
        status.success(),
        "qemu exited with {status}: {err}\nconsole:\n{}",
        log_tail(&b.log)
    );
    std::fs::read_to_string(&b.log).unwrap_or_default()
}

/// The last 80 lines of a console log.
pub fn log_tail(log: &Path) -> String {
    let s = std::fs::read(log).unwrap_or_default();
    let s = String::from_utf8_lossy(&s);
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(80)..].join("\n")
}
