//! Opening a sysroot: the directory holding `ostree/repo`, `ostree/deploy/<stateroot>` and `boot`
//! (`/` on a running machine, or a disk image's root filesystem being built).
//!
//! A directory without `ostree/repo` and `ostree/deploy` is refused before libostree sees it, with
//! the commands that make one. Stateroots (libostree's "osname") are the directories under
//! `ostree/deploy`; a name that is not one is refused the same way.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ostree::gio;

/// A loaded sysroot.
pub struct Machine {
    /// libostree's handle, loaded.
    pub sysroot: ostree::Sysroot,
    /// Its path.
    pub path: PathBuf,
}

/// Why a directory is not a usable sysroot, or a stateroot not one of it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SysrootError {
    #[error(
        "{path} is not an ostree sysroot (no {missing}); make one with \
         `ostree admin init-fs --modern {path}` and `ostree admin os-init --sysroot={path} NAME`"
    )]
    /// The directory lacks what `ostree admin init-fs` makes.
    NotASysroot {
        /// The directory.
        path: String,
        /// What it lacks.
        missing: String,
    },
    #[error(
        "unknown stateroot {name:?} in {path} (it has: {known}); make it with \
         `ostree admin os-init --sysroot={path} {name}`"
    )]
    /// `--stateroot NAME` names none of the sysroot's.
    UnknownStateroot {
        /// The name given.
        name: String,
        /// The sysroot.
        path: String,
        /// The stateroots it has.
        known: String,
    },
    #[error(
        "{path} has no deployment and {count} stateroots ({known}); name one with --stateroot"
    )]
    /// No deployment to take the stateroot from, and not exactly one stateroot.
    NoDefaultStateroot {
        /// The sysroot.
        path: String,
        /// How many stateroots it has.
        count: usize,
        /// Their names.
        known: String,
    },
}

/// The stateroots of the sysroot at `path`, sorted.
pub fn stateroots(path: &Path) -> Result<Vec<String>> {
    let dir = path.join("ostree/deploy");
    let mut v = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        if e.file_type()?.is_dir() {
            v.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    v.sort();
    Ok(v)
}

/// Refuse a directory that is not a sysroot, naming what is missing.
pub fn check_layout(path: &Path) -> Result<(), SysrootError> {
    for missing in ["ostree/repo", "ostree/deploy"] {
        if !path.join(missing).is_dir() {
            return Err(SysrootError::NotASysroot {
                path: path.display().to_string(),
                missing: path.join(missing).display().to_string(),
            });
        }
    }
    Ok(())
}

/// Which stateroot a deployment goes to: the one asked for (it must exist), else the booted
/// deployment's, else the default deployment's, else the only one there is.
pub fn choose_stateroot(
    path: &Path,
    asked: Option<&str>,
    current: Option<&str>,
    known: &[String],
) -> Result<String, SysrootError> {
    let list = || {
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    };
    match (asked, current) {
        (Some(name), _) if known.iter().any(|k| k == name) => Ok(name.to_string()),
        (Some(name), _) => Err(SysrootError::UnknownStateroot {
            name: name.to_string(),
            path: path.display().to_string(),
            known: list(),
        }),
        (None, Some(cur)) => Ok(cur.to_string()),
        (None, None) if known.len() == 1 => Ok(known[0].clone()),
        (None, None) => Err(SysrootError::NoDefaultStateroot {
            path: path.display().to_string(),
            count: known.len(),
            known: list(),
        }),
    }
}

impl Machine {
    /// Check the layout and load the sysroot at `path`.
    pub fn open(path: &Path) -> Result<Machine> {
        check_layout(path)?;
        let sysroot = ostree::Sysroot::new(Some(&gio::File::for_path(path)));
        sysroot
            .load(gio::Cancellable::NONE)
            .with_context(|| format!("loading the ostree sysroot {}", path.display()))?;
        Ok(Machine {
            sysroot,
            path: path.to_path_buf(),
        })
    }

    /// Take the sysroot's lock (released on drop of the sysroot or by [`Machine::unlock`]):
    /// one writer at a time, as with `ostree admin` and rpm-ostree.
    pub fn lock(&self) -> Result<()> {
        self.sysroot
            .lock()
            .with_context(|| format!("locking the sysroot {}", self.path.display()))
    }

    /// Release the sysroot lock.
    pub fn unlock(&self) {
        self.sysroot.unlock();
    }

    /// The sysroot's repository, opened by its path (`DIR/ostree/repo`). Not
    /// `ostree_sysroot_get_repo`: that one is opened from a directory fd and names itself
    /// `/proc/self/fd/N`, a path that other processes (skopeo, for pulls through it) cannot use.
    pub fn repo(&self) -> Result<ostree::Repo> {
        crate::ostree::repo::open_repo(&self.path.join("ostree/repo"))
    }

    /// Whether this sysroot is the running system's.
    pub fn is_booted(&self) -> bool {
        self.sysroot.booted_deployment().is_some()
    }

    /// The deployment whose image `upgrade` follows: the booted one, else the default (first
    /// non-staged) one.
    pub fn current_deployment(&self) -> Option<ostree::Deployment> {
        self.sysroot.booted_deployment().or_else(|| {
            self.sysroot
                .deployments()
                .into_iter()
                .find(|d| !d.is_staged())
        })
    }

    /// The stateroot a new deployment goes to (see [`choose_stateroot`]).
    pub fn stateroot(&self, asked: Option<&str>) -> Result<String> {
        let current = self.current_deployment().map(|d| d.osname().to_string());
        Ok(choose_stateroot(
            &self.path,
            asked,
            current.as_deref(),
            &stateroots(&self.path)?,
        )?)
    }

    /// A deployment's directory, relative to the sysroot.
    pub fn deployment_dir(&self, d: &ostree::Deployment) -> String {
        self.sysroot.deployment_dirpath(d).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateroot_choice() {
        let p = Path::new("/mnt/disk");
        let known = vec!["debian".to_string(), "fedora".to_string()];
        assert_eq!(
            choose_stateroot(p, Some("fedora"), Some("debian"), &known).unwrap(),
            "fedora"
        );
        assert_eq!(
            choose_stateroot(p, None, Some("debian"), &known).unwrap(),
            "debian"
        );
        assert_eq!(
            choose_stateroot(p, None, None, &known[..1]).unwrap(),
            "debian"
        );
        let e = choose_stateroot(p, Some("arch"), None, &known)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unknown stateroot \"arch\" in /mnt/disk (it has: debian, fedora); make it with \
             `ostree admin os-init --sysroot=/mnt/disk arch`"
        );
        let e = choose_stateroot(p, None, None, &known)
            .unwrap_err()
            .to_string();
        assert!(e.contains("name one with --stateroot"), "{e}");
        let e = choose_stateroot(p, None, None, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 stateroots (none)"), "{e}");
    }

    #[test]
    fn not_a_sysroot() {
        let d = tempfile::tempdir().unwrap();
        let e = check_layout(d.path()).unwrap_err().to_string();
        assert!(e.contains("is not an ostree sysroot"), "{e}");
        assert!(e.contains("ostree/repo"), "{e}");
        assert!(e.contains("ostree admin init-fs --modern"), "{e}");
        std::fs::create_dir_all(d.path().join("ostree/repo")).unwrap();
        std::fs::create_dir_all(d.path().join("ostree/deploy/debian")).unwrap();
        check_layout(d.path()).unwrap();
        assert_eq!(stateroots(d.path()).unwrap(), ["debian"]);
    }
}
