//! Read-only access to the served repository's directory, without libostree and without ever
//! following a symlink.
//!
//! # Layout read (ostree's repository format)
//!
//! - `config`: a key file; `[core] mode=` is `bare`, `bare-user`, `bare-user-only`, `archive`
//!   or `archive-z2` (the last two are the same format).
//! - `refs/heads/<ref>`: a file holding the commit checksum (64 lowercase hex digits) and a
//!   newline. Ref aliases (symlinks there) are not served.
//! - `objects/<first 2 hex>/<other 62>.<ext>`: metadata objects (`commit`, `commitmeta`,
//!   `dirtree`, `dirmeta`) are the same in every mode; content objects are `.filez` in archive
//!   mode and `.file` otherwise (see [`super::filez`]).
//!
//! # Security
//!
//! The repository directory is opened once; every later access is relative to that descriptor,
//! one path component at a time with `O_NOFOLLOW`, so a symlink anywhere (a planted
//! `objects/ab -> /etc`, a ref that is a link) ends the lookup with `ELOOP` instead of leaving
//! the repository. Only regular files are opened for reading. Paths come from
//! [`super::path::classify`], which has already refused `..` and empty components.

#![warn(missing_docs)]

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode as FsMode, OFlags};

/// The repository's storage mode (`[core] mode=` in its config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `archive` / `archive-z2`: content is stored as `.filez`, served as it is.
    Archive,
    /// `bare`: content as real files with their owner, mode and xattrs.
    Bare,
    /// `bare-user`: content as files owned by the repository's owner; the real owner, mode and
    /// xattrs in the `user.ostreemeta` xattr; symlinks stored as regular files.
    BareUser,
    /// `bare-user-only`: like `bare-user` without the xattr (owner 0:0, no xattrs).
    BareUserOnly,
    /// `bare-split-xattrs` (encapsulated images' `/sysroot/ostree/repo`): content as real
    /// files with owner and mode; xattrs in `<object>.file-xattrs-link`, a hard link to a
    /// `.file-xattrs` object holding the serialised `a(ayay)`.
    BareSplitXattrs,
}

impl Mode {
    /// The mode named by `[core] mode=` in a repository's config.
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "archive" | "archive-z2" => Mode::Archive,
            "bare" => Mode::Bare,
            "bare-user" => Mode::BareUser,
            "bare-user-only" => Mode::BareUserOnly,
            "bare-split-xattrs" => Mode::BareSplitXattrs,
            _ => return None,
        })
    }

    /// The name written in a config.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Archive => "archive-z2",
            Mode::Bare => "bare",
            Mode::BareUser => "bare-user",
            Mode::BareUserOnly => "bare-user-only",
            Mode::BareSplitXattrs => "bare-split-xattrs",
        }
    }
}

/// Why a repository could not be opened for serving.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// It could not be opened or its config read.
    #[error("opening repository {path}: {source}")]
    Open {
        /// The repository.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Its config has no mode.
    #[error("{path}: no [core] mode= in the repository's config")]
    NoMode {
        /// The repository.
        path: PathBuf,
    },
    /// Its mode is not one this server reads.
    #[error("{path}: repository mode {mode:?} is not supported")]
    UnsupportedMode {
        /// The repository.
        path: PathBuf,
        /// The mode named.
        mode: String,
    },
}

/// An opened repository directory.
#[derive(Debug)]
pub struct RepoDir {
    fd: OwnedFd,
    path: PathBuf,
    mode: Mode,
}

/// Whether an I/O error means "there is no such file to serve" (404) rather than a failure.
pub fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || matches!(
            e.raw_os_error(),
            Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::EISDIR) | Some(libc::ENAMETOOLONG)
        )
}

fn not_regular() -> io::Error {
    io::Error::from_raw_os_error(libc::EISDIR)
}

/// `objects/ab/cdef….ext`.
pub fn object_path(checksum: &str, ext: &str) -> String {
    format!("objects/{}/{}.{ext}", &checksum[..2], &checksum[2..])
}

impl RepoDir {
    /// Open the repository at `path` and read its mode.
    pub fn open(path: &Path) -> Result<Self, RepoError> {
        let err = |source| RepoError::Open {
            path: path.to_path_buf(),
            source,
        };
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            FsMode::empty(),
        )
        .map_err(|e| err(e.into()))?;
        let mut r = RepoDir {
            fd,
            path: path.to_path_buf(),
            mode: Mode::Archive,
        };
        let mut config = String::new();
        r.open_file("config")
            .and_then(|mut f| f.read_to_string(&mut config))
            .map_err(err)?;
        let mode = config_mode(&config).ok_or_else(|| RepoError::NoMode {
            path: path.to_path_buf(),
        })?;
        r.mode = Mode::parse(&mode).ok_or_else(|| RepoError::UnsupportedMode {
            path: path.to_path_buf(),
            mode,
        })?;
        Ok(r)
    }

    /// Its mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open the directory `rel` (relative, `/`-separated, no `.`/`..`), refusing symlinks.
    pub fn open_dir(&self, rel: &str) -> io::Result<OwnedFd> {
        let mut cur: Option<OwnedFd> = None;
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            if part == "." || part == ".." {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            let base = cur.as_ref().map(|f| f.as_fd()).unwrap_or(self.fd.as_fd());
            let next = rustix::fs::openat(
                base,
                part,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                FsMode::empty(),
            )?;
            cur = Some(next);
        }
        match cur {
            Some(f) => Ok(f),
            None => Ok(self.fd.try_clone()?),
        }
    }

    /// Split `rel` into its parent directory (opened) and file name.
    pub fn open_parent<'a>(&self, rel: &'a str) -> io::Result<(OwnedFd, &'a str)> {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        if name.is_empty() || name == "." || name == ".." {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok((self.open_dir(dir)?, name))
    }

    /// Open the regular file `rel` for reading; a symlink or anything not a regular file is an
    /// error (see [`is_not_found`]).
    pub fn open_file(&self, rel: &str) -> io::Result<File> {
        let (dir, name) = self.open_parent(rel)?;
        open_regular_at(&dir, name)
    }

    /// The commit a ref under `refs/heads/` points to, or `None` if there is no such ref.
    pub fn read_ref(&self, name: &str) -> io::Result<Option<String>> {
        let mut s = String::new();
        match self.open_file(&format!("refs/heads/{name}")) {
            Ok(mut f) => {
                Read::by_ref(&mut f).take(256).read_to_string(&mut s)?;
            }
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
        let c = s.trim_end();
        Ok(is_checksum(c).then(|| c.to_string()))
    }

    /// Every ref under `refs/heads/` (symlinks and malformed files skipped), sorted by name.
    pub fn list_refs(&self) -> io::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let dir = match self.open_dir("refs/heads") {
            Ok(d) => d,
            Err(e) if is_not_found(&e) => return Ok(out),
            Err(e) => return Err(e),
        };
        self.walk_refs(dir, String::new(), &mut out, 0)?;
        out.sort();
        Ok(out)
    }

    /// The newest commit object in `objects/` (by commit timestamp), for repositories that
    /// hold a commit but no ref (an encapsulated image's repository).
    pub fn newest_commit(&self) -> io::Result<Option<String>> {
        let mut best: Option<(u64, String)> = None;
        for i in 0..=255u8 {
            let sub = format!("{i:02x}");
            let dir = match self.open_dir(&format!("objects/{sub}")) {
                Ok(d) => d,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(e),
            };
            for e in rustix::fs::Dir::read_from(&dir)? {
                let e = e?;
                let name = e.file_name().to_string_lossy();
                let Some(rest) = name.strip_suffix(".commit") else {
                    continue;
                };
                let checksum = format!("{sub}{rest}");
                if !is_checksum(&checksum) {
                    continue;
                }
                let mut data = Vec::new();
                open_regular_at(&dir, &name)?.read_to_end(&mut data)?;
                if let Some((ts, _)) = super::summary::parse_commit(&data) {
                    if best.as_ref().map_or(true, |(t, _)| ts > *t) {
                        best = Some((ts, checksum));
                    }
                }
            }
        }
        Ok(best.map(|(_, c)| c))
    }

    fn walk_refs(
        &self,
        dir: OwnedFd,
        prefix: String,
        out: &mut Vec<(String, String)>,
        depth: usize,
    ) -> io::Result<()> {
        if depth > 32 {
            return Ok(());
        }
        let mut entries = Vec::new();
        for e in rustix::fs::Dir::read_from(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            entries.push(name);
        }
        for name in entries {
            let full = format!("{prefix}{name}");
            if !super::path::valid_ref(&full) {
                continue;
            }
            let st = rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    let sub = rustix::fs::openat(
                        &dir,
                        name.as_str(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        FsMode::empty(),
                    )?;
                    self.walk_refs(sub, format!("{full}/"), out, depth + 1)?;
                }
                FileType::RegularFile => {
                    if let Some(c) = self.read_ref(&full)? {
                        out.push((full, c));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Open `name` in `dir` for reading if it is a regular file (never following a symlink).
pub fn open_regular_at(dir: &OwnedFd, name: &str) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        FsMode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(not_regular());
    }
    // O_NONBLOCK only guarded against FIFOs at open; clear it for ordinary reads.
    rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
    Ok(File::from(fd))
}

/// Whether `s` is an object checksum: 64 lowercase hex digits.
pub fn is_checksum(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `mode=` in the `[core]` group of an ostree config key file.
fn config_mode(config: &str) -> Option<String> {
    let mut in_core = false;
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_core = line == "[core]";
        } else if in_core {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == "mode" {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config() {
        let c = "[core]\nrepo_version=1\nmode=bare-user\n\n[remote \"x\"]\nmode=bare\n";
        assert_eq!(config_mode(c).as_deref(), Some("bare-user"));
        assert_eq!(config_mode("[remote \"x\"]\nmode=bare\n"), None);
        assert_eq!(
            config_mode("[core]\nmode = archive-z2\n").as_deref(),
            Some("archive-z2")
        );
    }

    #[test]
    fn refuses_symlinks_and_dotdot() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("repo");
        std::fs::create_dir_all(r.join("refs/heads")).unwrap();
        std::fs::create_dir_all(r.join("objects")).unwrap();
        std::fs::write(r.join("config"), "[core]\nmode=bare\n").unwrap();
        std::fs::write(d.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink("../../secret", r.join("refs/heads/link")).unwrap();
        std::os::unix::fs::symlink(d.path(), r.join("objects/ab")).unwrap();
        let c = "a".repeat(64);
        std::fs::write(r.join("refs/heads/main"), format!("{c}\n")).unwrap();
        let repo = RepoDir::open(&r).unwrap();
        assert_eq!(repo.mode(), Mode::Bare);
        let e = repo.open_file("refs/heads/link").unwrap_err();
        assert!(is_not_found(&e), "{e}");
        let e = repo.open_file("objects/ab/secret").unwrap_err();
        assert!(is_not_found(&e), "{e}");
        assert!(repo.open_file("../secret").is_err());
        assert!(is_not_found(&repo.open_file("refs/heads").unwrap_err()));
        assert_eq!(repo.read_ref("main").unwrap(), Some(c.clone()));
        assert_eq!(repo.read_ref("link").unwrap(), None);
        assert_eq!(repo.list_refs().unwrap(), vec![("main".to_string(), c)]);
    }
}
