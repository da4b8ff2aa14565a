//! Escaping arbitrary strings into ostree ref names, compatible with ostree-rs-ext.
//!
//! ostree refs allow ASCII letters, digits, `-`, `_`, `.` and `/` (no empty components). Image
//! references (`docker://quay.io/org/os:latest`) and digests (`sha256:…`) do not fit, so they
//! are escaped:
//!
//! - ASCII letters, digits and `-` are kept;
//! - `_` becomes `__`;
//! - `/` is kept only when it follows a letter or digit and is not the last character (so no
//!   empty components and no leading `/`);
//! - every other character becomes `_XX_`, its Unicode code point in upper-case hex
//!   (`:` is `_3A_`, `.` is `_2E_`, `/` in a forbidden place is `_2F_`).
//!
//! Refs used by the importer (see [`crate::host::import`]):
//! `ostree/container/blob/<escaped layer digest>`,
//! `ostree/container/image/<escaped image reference>`, and
//! `ostree/container/diffid/<escaped layer digest>` for the ostree layers of an encapsulated
//! base (the diff_id they were verified against).

use std::fmt::Write;

/// Ref prefix for one layer's commit.
pub const BLOB_PREFIX: &str = "ostree/container/blob";
/// Ref prefix for an imported image's merged commit.
pub const IMAGE_PREFIX: &str = "ostree/container/image";
/// Ref prefix for the diff_id record of an ostree layer (whose blob ref names the base commit).
pub const DIFFID_PREFIX: &str = "ostree/container/diffid";

/// Why a string cannot be escaped into a ref, or a ref unescaped back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EscapeError {
    /// Nothing to escape.
    #[error("cannot escape an empty string into an ostree ref")]
    Empty,
    /// A NUL byte, which no ref can carry.
    #[error("cannot escape a string containing NUL into an ostree ref")]
    Nul,
    /// Unescaping: the ref (first field) lacks the expected prefix (second).
    #[error("ref {0:?} does not start with {1:?}")]
    WrongPrefix(String, String),
    /// Unescaping: a malformed escape in the string (first field), and why.
    #[error("invalid escaped ref component {0:?}: {1}")]
    Invalid(String, &'static str),
}

/// Escape `s` (non-empty, no NUL) into a string valid as ostree ref components.
pub fn escape(s: &str) -> Result<String, EscapeError> {
    if s.is_empty() {
        return Err(EscapeError::Empty);
    }
    let mut out = String::with_capacity(s.len() * 2);
    let mut prev_alnum = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\0' {
            return Err(EscapeError::Nul);
        }
        let is_last = chars.peek().is_none();
        match c {
            c if c.is_ascii_alphanumeric() => out.push(c),
            '/' if prev_alnum && !is_last => out.push('/'),
            '-' => out.push('-'),
            '_' => out.push_str("__"),
            c => write!(out, "_{:02X}_", c as u32).expect("write to String"),
        }
        prev_alnum = c.is_ascii_alphanumeric();
    }
    Ok(out)
}

/// The inverse of [`escape`].
pub fn unescape(s: &str) -> Result<String, EscapeError> {
    let invalid = |why| EscapeError::Invalid(s.to_string(), why);
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_ascii_alphanumeric() || c == '-' || c == '/' => out.push(c),
            '_' => {
                let mut hex = String::new();
                loop {
                    match chars.next() {
                        Some('_') => break,
                        Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                        Some(_) => return Err(invalid("non-hex character in an escape")),
                        None => return Err(invalid("unterminated escape")),
                    }
                }
                if hex.is_empty() {
                    out.push('_');
                } else {
                    let v = u32::from_str_radix(&hex, 16)
                        .map_err(|_| invalid("escape out of range"))?;
                    out.push(
                        char::from_u32(v).ok_or_else(|| invalid("escape is not a character"))?,
                    );
                }
            }
            _ => return Err(invalid("character not allowed in a ref")),
        }
    }
    Ok(out)
}

/// `<prefix>/<escaped s>`.
pub fn prefix_escape(prefix: &str, s: &str) -> Result<String, EscapeError> {
    Ok(format!("{prefix}/{}", escape(s)?))
}

/// The inverse of [`prefix_escape`].
pub fn unprefix_unescape(prefix: &str, r: &str) -> Result<String, EscapeError> {
    let rest = r
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| EscapeError::WrongPrefix(r.to_string(), prefix.to_string()))?;
    unescape(rest)
}

/// Ref of a layer commit, from the layer's (compressed) blob digest `sha256:<hex>`.
pub fn blob_ref(digest: &str) -> String {
    prefix_escape(BLOB_PREFIX, digest).expect("digest is non-empty")
}

/// The ref holding an image's merged commit: `ostree/container/image/<escaped reference>`.
pub fn image_ref(imgref: &impl std::fmt::Display) -> String {
    prefix_escape(IMAGE_PREFIX, &imgref.to_string()).expect("image reference is non-empty")
}

/// Ref of the diff_id record of an ostree layer, from its blob digest `sha256:<hex>`.
pub fn diffid_ref(digest: &str) -> String {
    prefix_escape(DIFFID_PREFIX, digest).expect("digest is non-empty")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts what libostree's ostree_validate_rev accepts (the relevant subset).
    fn valid_ref(r: &str) -> bool {
        !r.is_empty()
            && r.split('/').all(|c| {
                !c.is_empty()
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
            })
    }

    #[test]
    fn known_escapes() {
        let table = [
            ("foo", "foo"),
            ("foo/bar/baz-blah/foo", "foo/bar/baz-blah/foo"),
            (
                "localhost:5000/foo:latest",
                "localhost_3A_5000/foo_3A_latest",
            ),
            (
                "docker://quay.io/coreos/fedora:latest",
                "docker_3A__2F__2F_quay_2E_io/coreos/fedora_3A_latest",
            ),
            ("sha256:0123abc", "sha256_3A_0123abc"),
            ("a_b", "a__b"),
            ("/", "_2F_"),
            ("blah/", "blah_2F_"),
            ("/foo/", "_2F_foo_2F_"),
            ("a//b", "a/_2F_b"),
            ("é", "_E9_"),
        ];
        for (raw, want) in table {
            assert_eq!(escape(raw).unwrap(), want, "{raw}");
            assert!(valid_ref(&prefix_escape("p", raw).unwrap()), "{raw}");
            assert_eq!(unescape(want).unwrap(), raw);
        }
    }

    #[test]
    fn errors() {
        assert_eq!(escape(""), Err(EscapeError::Empty));
        assert_eq!(escape("a\0b"), Err(EscapeError::Nul));
        assert!(unescape("a_3A").is_err());
        assert!(unescape("a_ZZ_").is_err());
        assert!(unescape("a.b").is_err());
        assert!(unescape("_D800_").is_err());
        assert!(matches!(
            unprefix_unescape("ostree/container/image", "other/x"),
            Err(EscapeError::WrongPrefix(..))
        ));
    }

    #[test]
    fn round_trip_many() {
        // A deterministic pseudo-random walk over interesting characters.
        let alphabet: Vec<char> = "aZ09-_/:.@+ é\u{1F600}~".chars().collect();
        let mut state = 0x2545F4914F6CDD1Du64;
        for _ in 0..5000 {
            let len = 1 + (state % 12) as usize;
            let mut s = String::new();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let r = prefix_escape(IMAGE_PREFIX, &s).unwrap();
            assert!(valid_ref(&r), "{s:?} -> {r:?}");
            assert_eq!(unprefix_unescape(IMAGE_PREFIX, &r).unwrap(), s);
        }
    }

    #[test]
    fn blob_ref_form() {
        assert_eq!(blob_ref("sha256:ab"), "ostree/container/blob/sha256_3A_ab");
        assert_eq!(
            diffid_ref("sha256:ab"),
            "ostree/container/diffid/sha256_3A_ab"
        );
    }
}
