//! Which request paths are served: one pure function, [`classify`], from the request path as it
//! arrived (still percent-encoded, query removed) to a [`Route`] or a [`Refusal`].
//!
//! # What is served (below the prefix, e.g. `/repo`)
//!
//! | path | route |
//! | --- | --- |
//! | `config` | [`Route::Config`] (always `mode=archive-z2`) |
//! | `summary`, `summary.sig` | [`Route::Summary`], [`Route::SummarySig`] |
//! | `refs/heads/<ref>` | [`Route::Ref`]; `<ref>` is ostree's grammar: `/`-separated parts matching `[A-Za-z0-9_][-._A-Za-z0-9]*` |
//! | `objects/<2 hex>/<62 hex>.<ext>` | [`Route::Object`]; `<ext>` one of `commit`, `commitmeta`, `dirtree`, `dirmeta`, `filez` (lowercase hex only) |
//! | `deltas/…`, `delta-indexes/…` | [`Route::Static`]: 2 to 4 parts of `[A-Za-z0-9_+-][A-Za-z0-9_+.-]*` |
//!
//! Everything else below the prefix is [`Refusal::NotServed`] (404): no directory listings, no
//! other files of the repository (`objects/xx/…​.file`, `tmp/`, `state/`, `refs/remotes/`…).
//!
//! # Security
//!
//! The path is judged before anything touches the file system, and without decoding: ostree
//! clients never need percent-encoding (every name above is plain ASCII), so any `%` is refused
//! (this covers `%2e%2e`, `%2f` and encoded NULs). Also refused with 400: bytes outside
//! printable ASCII, `\`, empty parts (`//`, a trailing `/`), and `.` or `..` parts anywhere in the
//! path, even outside the prefix. A path that does not start with the prefix is 404. The
//! repository access below ([`super::repo`]) additionally refuses symlinks on the way.

#![warn(missing_docs)]

/// A metadata or content object's extension in an archive-mode repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `.commit`.
    Commit,
    /// `.commitmeta` (detached metadata).
    CommitMeta,
    /// `.dirtree`.
    DirTree,
    /// `.dirmeta`.
    DirMeta,
    /// A compressed content object (`.filez`).
    FileZ,
}

impl ObjectKind {
    /// The file extension.
    pub fn ext(self) -> &'static str {
        match self {
            ObjectKind::Commit => "commit",
            ObjectKind::CommitMeta => "commitmeta",
            ObjectKind::DirTree => "dirtree",
            ObjectKind::DirMeta => "dirmeta",
            ObjectKind::FileZ => "filez",
        }
    }

    fn from_ext(ext: &str) -> Option<Self> {
        Some(match ext {
            "commit" => ObjectKind::Commit,
            "commitmeta" => ObjectKind::CommitMeta,
            "dirtree" => ObjectKind::DirTree,
            "dirmeta" => ObjectKind::DirMeta,
            "filez" => ObjectKind::FileZ,
            _ => return None,
        })
    }
}

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `config`.
    Config,
    /// `summary`.
    Summary,
    /// `summary.sig`.
    SummarySig,
    /// A ref under `refs/heads/` (the name without that prefix).
    Ref(String),
    /// An object: 64 lowercase hex digits and its kind.
    Object {
        /// The object's checksum.
        checksum: String,
        /// Its kind.
        kind: ObjectKind,
    },
    /// A static-delta file, by its path relative to the repository.
    Static(String),
}

impl Route {
    /// Objects never change once written: they get an ETag and long caching.
    pub fn is_immutable(&self) -> bool {
        matches!(self, Route::Object { .. } | Route::Static(_))
    }
}

/// Why a path is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed or hostile (400): the reason is for the access log.
    BadPath(&'static str),
    /// Not below the prefix (404).
    OutsidePrefix,
    /// Below the prefix but not part of the served layout (404).
    NotServed,
}

/// The longest path accepted at all (longer is 400).
pub const MAX_PATH: usize = 1024;

/// Normalise a `--prefix` value: `""` for the root, else `/a/b` without a trailing `/`.
/// Returns `None` when the prefix itself would be refused by [`classify`].
pub fn normalize_prefix(prefix: &str) -> Option<String> {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        return Some(String::new());
    }
    let p = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    };
    p[1..]
        .split('/')
        .all(|part| !part.is_empty() && part != "." && part != ".." && part.bytes().all(safe_byte))
        .then_some(p)
}

fn safe_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'%' && b != b'\\'
}

/// Classify a request path (see the module docs). `prefix` is a value from
/// [`normalize_prefix`].
pub fn classify(prefix: &str, path: &str) -> Result<Route, Refusal> {
    if path.len() > MAX_PATH {
        return Err(Refusal::BadPath("path too long"));
    }
    if path.contains('%') {
        return Err(Refusal::BadPath("percent-encoding"));
    }
    if !path.bytes().all(safe_byte) {
        return Err(Refusal::BadPath(
            "byte outside printable ASCII or backslash",
        ));
    }
    let Some(rel) = path.strip_prefix('/') else {
        return Err(Refusal::BadPath("not an absolute path"));
    };
    for part in rel.split('/') {
        if part == "." || part == ".." {
            return Err(Refusal::BadPath("dot segment"));
        }
    }
    let Some(rest) = path.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) else {
        return Err(Refusal::OutsidePrefix);
    };
    if rest.split('/').any(str::is_empty) {
        return Err(Refusal::BadPath("empty path segment"));
    }
    match rest {
        "config" => return Ok(Route::Config),
        "summary" => return Ok(Route::Summary),
        "summary.sig" => return Ok(Route::SummarySig),
        _ => {}
    }
    if let Some(name) = rest.strip_prefix("refs/heads/") {
        return if valid_ref(name) {
            Ok(Route::Ref(name.to_string()))
        } else {
            Err(Refusal::NotServed)
        };
    }
    if let Some(obj) = rest.strip_prefix("objects/") {
        return object(obj).ok_or(Refusal::NotServed);
    }
    if rest.starts_with("deltas/") || rest.starts_with("delta-indexes/") {
        let parts = rest.split('/').count();
        let ok = (3..=5).contains(&parts) && rest.split('/').skip(1).all(static_part);
        return if ok {
            Ok(Route::Static(rest.to_string()))
        } else {
            Err(Refusal::NotServed)
        };
    }
    Err(Refusal::NotServed)
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn object(obj: &str) -> Option<Route> {
    let (dir, file) = obj.split_once('/')?;
    let (rest, ext) = file.split_once('.')?;
    let kind = ObjectKind::from_ext(ext)?;
    (dir.len() == 2 && rest.len() == 62 && is_lower_hex(dir) && is_lower_hex(rest)).then(|| {
        Route::Object {
            checksum: format!("{dir}{rest}"),
            kind,
        }
    })
}

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// ostree's ref grammar: `/`-separated parts, each `[\w\d][-._\w\d]*`.
pub fn valid_ref(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && name.split('/').all(|p| {
            let b = p.as_bytes();
            !b.is_empty() && word(b[0]) && b[1..].iter().all(|&c| word(c) || c == b'-' || c == b'.')
        })
}

fn static_part(p: &str) -> bool {
    let b = p.as_bytes();
    !b.is_empty()
        && b[0] != b'.'
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "a6c0fa4bbe5823132e0b0a105a7d60cb8333ab54d1113a830d9a9f4a1a3e0ef1";

    fn obj(kind: ObjectKind) -> Result<Route, Refusal> {
        Ok(Route::Object {
            checksum: C.into(),
            kind,
        })
    }

    #[test]
    fn table() {
        let o = format!("/repo/objects/{}/{}", &C[..2], &C[2..]);
        let cases: Vec<(String, Result<Route, Refusal>)> = vec![
            ("/repo/config".into(), Ok(Route::Config)),
            ("/repo/summary".into(), Ok(Route::Summary)),
            ("/repo/summary.sig".into(), Ok(Route::SummarySig)),
            (
                "/repo/refs/heads/os/x86_64/stable".into(),
                Ok(Route::Ref("os/x86_64/stable".into())),
            ),
            (
                "/repo/refs/heads/ostree/container/image/oci_3A__2F_srv".into(),
                Ok(Route::Ref("ostree/container/image/oci_3A__2F_srv".into())),
            ),
            (format!("{o}.commit"), obj(ObjectKind::Commit)),
            (format!("{o}.commitmeta"), obj(ObjectKind::CommitMeta)),
            (format!("{o}.dirtree"), obj(ObjectKind::DirTree)),
            (format!("{o}.dirmeta"), obj(ObjectKind::DirMeta)),
            (format!("{o}.filez"), obj(ObjectKind::FileZ)),
            (
                "/repo/deltas/ab/cdef-ghi/superblock".into(),
                Ok(Route::Static("deltas/ab/cdef-ghi/superblock".into())),
            ),
            (
                "/repo/delta-indexes/ab/cdef.index".into(),
                Ok(Route::Static("delta-indexes/ab/cdef.index".into())),
            ),
            // Not part of the layout.
            (format!("{o}.file"), Err(Refusal::NotServed)),
            (format!("{o}.FILEZ"), Err(Refusal::NotServed)),
            (
                format!("/repo/objects/{}/{}.filez", &C[..2], C[2..].to_uppercase()),
                Err(Refusal::NotServed),
            ),
            (
                format!("/repo/objects/{}/{}.filez", &C[..2], &C[3..]),
                Err(Refusal::NotServed),
            ),
            (
                "/repo/objects/".into(),
                Err(Refusal::BadPath("empty path segment")),
            ),
            ("/repo/objects".into(), Err(Refusal::NotServed)),
            ("/repo/".into(), Err(Refusal::BadPath("empty path segment"))),
            ("/repo".into(), Err(Refusal::OutsidePrefix)),
            ("/repo/refs/heads".into(), Err(Refusal::NotServed)),
            ("/repo/refs/heads/-bad".into(), Err(Refusal::NotServed)),
            (
                "/repo/refs/remotes/origin/x".into(),
                Err(Refusal::NotServed),
            ),
            ("/repo/tmp/x".into(), Err(Refusal::NotServed)),
            (
                "/repo/state/x.commitpartial".into(),
                Err(Refusal::NotServed),
            ),
            ("/repo/deltas/.hidden/x".into(), Err(Refusal::NotServed)),
            ("/repo/deltas/x".into(), Err(Refusal::NotServed)),
            ("/repox/config".into(), Err(Refusal::OutsidePrefix)),
            ("/config".into(), Err(Refusal::OutsidePrefix)),
            ("/etc/passwd".into(), Err(Refusal::OutsidePrefix)),
            // Hostile.
            (
                "/repo/../etc/passwd".into(),
                Err(Refusal::BadPath("dot segment")),
            ),
            (
                "/../repo/config".into(),
                Err(Refusal::BadPath("dot segment")),
            ),
            (
                "/repo/refs/heads/..".into(),
                Err(Refusal::BadPath("dot segment")),
            ),
            (
                "/repo/./config".into(),
                Err(Refusal::BadPath("dot segment")),
            ),
            (
                "/repo/refs/heads/a/../../../../etc/passwd".into(),
                Err(Refusal::BadPath("dot segment")),
            ),
            (
                "/repo/%2e%2e/etc/passwd".into(),
                Err(Refusal::BadPath("percent-encoding")),
            ),
            (
                "/repo/refs/heads/a%2fb".into(),
                Err(Refusal::BadPath("percent-encoding")),
            ),
            (
                "/repo/config%00".into(),
                Err(Refusal::BadPath("percent-encoding")),
            ),
            (
                "/repo//etc/passwd".into(),
                Err(Refusal::BadPath("empty path segment")),
            ),
            ("//etc/passwd".into(), Err(Refusal::OutsidePrefix)),
            (
                "/repo/refs\\heads".into(),
                Err(Refusal::BadPath(
                    "byte outside printable ASCII or backslash",
                )),
            ),
            (
                "/repo/con fig".into(),
                Err(Refusal::BadPath(
                    "byte outside printable ASCII or backslash",
                )),
            ),
            (
                "/repo/caf\u{e9}".into(),
                Err(Refusal::BadPath(
                    "byte outside printable ASCII or backslash",
                )),
            ),
            (
                "repo/config".into(),
                Err(Refusal::BadPath("not an absolute path")),
            ),
            ("*".into(), Err(Refusal::BadPath("not an absolute path"))),
            (
                format!("/repo/{}", "a".repeat(MAX_PATH)),
                Err(Refusal::BadPath("path too long")),
            ),
        ];
        for (path, want) in cases {
            assert_eq!(classify("/repo", &path), want, "{path}");
        }
    }

    #[test]
    fn root_prefix() {
        let p = normalize_prefix("/").unwrap();
        assert_eq!(p, "");
        assert_eq!(classify(&p, "/config"), Ok(Route::Config));
        assert_eq!(classify(&p, "/repo/config"), Err(Refusal::NotServed));
        assert_eq!(
            classify(&p, "//config"),
            Err(Refusal::BadPath("empty path segment"))
        );
    }

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix("/repo/").as_deref(), Some("/repo"));
        assert_eq!(normalize_prefix("os/repo").as_deref(), Some("/os/repo"));
        assert_eq!(normalize_prefix(""), Some(String::new()));
        assert_eq!(normalize_prefix("/a/../b"), None);
        assert_eq!(normalize_prefix("/a//b"), None);
        assert_eq!(normalize_prefix("/a%20b"), None);
    }

    #[test]
    fn refs() {
        for ok in [
            "a",
            "exampleos/x86_64/stable",
            "ostree/container/blob/sha256_3A_ab",
            "a.b-c_d",
            "_x",
        ] {
            assert!(valid_ref(ok), "{ok}");
        }
        for bad in ["", "/a", "a/", "a//b", ".a", "-a", "a b", "a:b", "a/.b"] {
            assert!(!valid_ref(bad), "{bad}");
        }
    }
}
