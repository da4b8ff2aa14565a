//! When `commit` may rewrite `/`: the refusal rule, as one pure function ([`refusal`]) over the
//! facts gathered once ([`RootFacts::gather`]).
//!
//! `commit` empties /tmp, /run and /var/cache and moves /var content into /usr. That is right
//! for an OS image being built, and destroys work anywhere else. A container marker alone
//! (`/run/.containerenv`, `/.dockerenv`, `$container`) says "some container": dev containers,
//! toolbox/distrobox and CI job containers have one too, and `buildah run` on any image writes
//! the same `/run/.containerenv` (`engine="buildah-…"`) as a `RUN` step of `buildah bud`, so
//! the marker cannot tell a build from a running container. What an image under construction
//! for ostree has, and those containers do not, is the ostree layout in its root: the base image
//! made it (containerfiles/common/ostree-layout, run before the base's own `commit`; Fedora
//! CoreOS and bootc images ship it too). The rule, for the root being the process's own `/`:
//!
//! 1. `/run/ostree-booted` exists: a booted ostree machine, not an image: refuse.
//! 2. No ostree layout in the root (`/sysroot` a directory and `/ostree` a link to
//!    `sysroot/ostree`, or `/usr/lib/bootc`, or `/usr/lib/ostree-boot`): refuse, saying which
//!    container marker was found (a dev container) or that none was (a host). A kernel in
//!    /usr/lib/modules does not count: Fedora's kernel package puts it there in any container.
//! 3. Otherwise proceed, with or without a container marker: Docker BuildKit's `RUN` steps
//!    (the default `docker build` since Docker 23) have neither `/.dockerenv` nor `$container`,
//!    so a marker cannot be required. ostree-rs-ext's `container commit` decides the same way
//!    (`/sysroot/ostree` present and not booted).
//!
//! `--allow-rewriting-root` skips the rule (an image under construction that has no layout yet);
//! `--root DIR` naming another directory than `/` is not subject to it (the user named the tree);
//! `--dry-run` and `lint` change nothing and run anywhere.

use std::path::Path;

use super::rootfs::{process, stat_path, Kind, Root};

/// What the rule looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootFacts {
    /// The root worked on is the process's own `/`.
    pub is_process_root: bool,
    /// The container marker found, described (`None`: none).
    pub container: Option<String>,
    /// `/run/ostree-booted` exists.
    pub ostree_booted: bool,
    /// The ostree layout found in the root, described (`None`: none).
    pub layout: Option<String>,
}

impl RootFacts {
    /// Look at the root for the facts [`refusal`] decides on.
    pub fn gather(root: &Root) -> RootFacts {
        RootFacts {
            is_process_root: process::is_own_root(root),
            container: container_marker(),
            ostree_booted: process::exists("/run/ostree-booted"),
            layout: ostree_layout(root),
        }
    }
}

/// The container marker of the running process, if any.
fn container_marker() -> Option<String> {
    if let Some(text) = process::read("/run/.containerenv") {
        let engine = text
            .lines()
            .find_map(|l| l.strip_prefix("engine="))
            .map(|e| e.trim_matches('"').to_string());
        return Some(match engine {
            Some(e) => format!("/run/.containerenv (engine {e})"),
            None => "/run/.containerenv".into(),
        });
    }
    if process::exists("/.dockerenv") {
        return Some("/.dockerenv".into());
    }
    match std::env::var("container") {
        Ok(v) if !v.is_empty() => Some(format!("container={v}")),
        _ => None,
    }
}

/// The ostree layout in the root, if there is one (see the module doc).
pub fn ostree_layout(root: &Root) -> Option<String> {
    let kind = |rel: &str| {
        stat_path(&root.dir, Path::new(rel))
            .ok()
            .flatten()
            .map(|m| m.kind)
    };
    if kind("sysroot") == Some(Kind::Dir)
        && kind("ostree") == Some(Kind::Symlink)
        && root.resolve(Path::new("ostree"), true).ok().as_deref()
            == Some(Path::new("sysroot/ostree"))
    {
        return Some("/sysroot with /ostree -> sysroot/ostree".into());
    }
    for d in ["usr/lib/bootc", "usr/lib/ostree-boot"] {
        if kind(d) == Some(Kind::Dir) {
            return Some(format!("/{d}"));
        }
    }
    None
}

/// Why `commit` must not rewrite this root, or `None` when it may.
pub fn refusal(f: &RootFacts) -> Option<String> {
    if !f.is_process_root {
        return None;
    }
    if f.ostree_booted {
        return Some(
            "refusing to rewrite /: /run/ostree-booted exists, so this is a booted ostree machine, not an image being built".into(),
        );
    }
    if f.layout.is_some() {
        // The layout decides, with or without a marker: Docker BuildKit's RUN steps have none.
        return None;
    }
    Some(match &f.container {
        Some(marker) => format!(
            "refusing to rewrite /: this is a container ({marker}), but its root does not look like an OS image under construction: it has no ostree layout (/sysroot with /ostree -> sysroot/ostree, /usr/lib/bootc or /usr/lib/ostree-boot), which an ostree-ready base image has. Dev containers, toolbox and CI job containers have none, and `commit` would empty their /tmp, /run and /var/cache"
        ),
        None => "refusing to run on what looks like a host: no ostree layout in / (/sysroot with /ostree -> sysroot/ostree, /usr/lib/bootc or /usr/lib/ostree-boot) and no container marker (/run/.containerenv, /.dockerenv or the `container` variable)".into(),
    })
}

/// The whole message for a refusal: the reason, what to do instead, and the opt-in.
pub fn refusal_message(reason: &str) -> String {
    format!(
        "error: {reason}. `commit` rewrites the root it runs on; run it at the end of a RUN step \
         in a Containerfile built FROM an ostree-ready base image, or pass --root DIR to work on \
         an image's root from outside. If this root really is an OS image being built, pass \
         --allow-rewriting-root. Nothing was changed."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(root: bool, container: bool, booted: bool, layout: bool) -> RootFacts {
        RootFacts {
            is_process_root: root,
            container: container.then(|| "/run/.containerenv (engine buildah-1.28.0)".into()),
            ostree_booted: booted,
            layout: layout.then(|| "/usr/lib/bootc".into()),
        }
    }

    #[test]
    fn the_rule() {
        // (root is /, container marker, booted ostree, layout) -> refused because of
        let cases = [
            (facts(false, false, false, false), None),
            (facts(true, true, false, true), None),
            (facts(true, true, true, true), Some("booted ostree machine")),
            // A Docker BuildKit RUN step: no marker, an ostree-ready base.
            (facts(true, false, false, true), None),
            (facts(true, false, false, false), Some("looks like a host")),
            (facts(true, true, false, false), Some("no ostree layout")),
        ];
        for (f, want) in cases {
            match (refusal(&f), want) {
                (None, None) => {}
                (Some(r), Some(w)) => assert!(r.contains(w), "{f:?}: {r}"),
                (got, want) => panic!("{f:?}: got {got:?}, want {want:?}"),
            }
        }
        assert!(refusal_message("x").contains("--allow-rewriting-root"));
    }

    #[test]
    fn layout_markers() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::open(t.path()).unwrap();
        assert_eq!(ostree_layout(&root), None);
        std::fs::create_dir(t.path().join("sysroot")).unwrap();
        assert_eq!(ostree_layout(&root), None, "/sysroot alone is not enough");
        std::os::unix::fs::symlink("sysroot/ostree", t.path().join("ostree")).unwrap();
        assert!(ostree_layout(&root).unwrap().contains("/sysroot"));
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/lib/bootc")).unwrap();
        let root = Root::open(t.path()).unwrap();
        assert_eq!(ostree_layout(&root).as_deref(), Some("/usr/lib/bootc"));
    }
}
