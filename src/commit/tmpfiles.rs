//! tmpfiles.d(5): reading the declarations an image already has, and writing the lines that
//! carry the image's /var content to machines that already run the OS.
//!
//! A line is `Type Path Mode User Group Age Argument`. The first six fields are words in
//! systemd's syntax (see [`super::words`]); the argument is the rest of the line. This module
//! writes three types, the ones rpm-ostree and bootc use for /var:
//!
//! ```text
//! d /var/lib/foo 0750 foo foo - -
//! L /var/opt/app - - - - ../../usr/lib/opt/app
//! C /var/lib/foo/state - - - - /usr/share/factory/var/lib/foo/state
//! ```
//!
//! Paths with blanks, quotes, backslashes or non-ASCII bytes are double-quoted (see
//! [`super::words::quote_word`] for why not `\xNN`), and `%` is doubled (tmpfiles expands `%`
//! specifiers in paths). Owners are names from the image's own passwd and group files, quoted
//! the same way but with `%` as it is (systemd does not expand specifiers there), or numbers
//! where the image has no name for an id or a name that cannot stand for itself there (see
//! `owner_names` in [`super::plan`]).
//!
//! # What cannot be written
//! [`check_path`] is the rule: a path containing a newline or a carriage return (systemd 252
//! ends a line at either, so the rest of the name would be read as a line of its own: a name
//! under /var could otherwise declare `L+ /etc/shadow …`), or longer than systemd takes
//! (4095 bytes), is never written. Every other byte round-trips: checked byte by byte with the
//! real `systemd-tmpfiles` 252 (tests/it/commit_tree.rs,
//! `hostile_names_never_reach_outside_var_through_systemd_tmpfiles`). The argument field
//! (link target, copy source) is C-unescaped by systemd, so [`escape_argument`] can write any
//! byte there.

use std::collections::BTreeMap;

use super::rootfs::PATH_MAX;
use super::words::{escape_argument, quote_word, split_words, unescape};

pub use super::parse_error::ParseError;

/// One tmpfiles.d line. `path` and `argument` are bytes: the image's paths need not be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The type with its modifiers, e.g. `d`, `L+`, `C`.
    pub kind: String,
    /// Path field (raw bytes, unescaped).
    pub path: Vec<u8>,
    /// Mode field, octal or `-`.
    pub mode: String,
    /// User field, name or number.
    pub user: String,
    /// Group field, name or number.
    pub group: String,
    /// Age field, `-` here.
    pub age: String,
    /// Argument field (link target or factory path; raw bytes, unescaped).
    pub argument: Vec<u8>,
}

impl Line {
    /// `d PATH MODE USER GROUP - -`
    pub fn dir(path: &[u8], mode: u32, user: &str, group: &str) -> Self {
        Line {
            kind: "d".into(),
            path: path.to_vec(),
            mode: format!("{:04o}", mode & 0o7777),
            user: user.into(),
            group: group.into(),
            age: "-".into(),
            argument: b"-".to_vec(),
        }
    }

    /// `L PATH - - - - TARGET`
    pub fn symlink(path: &[u8], target: &[u8]) -> Self {
        Line {
            kind: "L".into(),
            path: path.to_vec(),
            mode: "-".into(),
            user: "-".into(),
            group: "-".into(),
            age: "-".into(),
            argument: target.to_vec(),
        }
    }

    /// `C PATH - - - - SOURCE`: copy SOURCE to PATH where PATH does not exist yet, keeping the
    /// source's owner and mode.
    pub fn copy(path: &[u8], source: &[u8]) -> Self {
        Line {
            kind: "C".into(),
            path: path.to_vec(),
            mode: "-".into(),
            user: "-".into(),
            group: "-".into(),
            age: "-".into(),
            argument: source.to_vec(),
        }
    }

    /// The line as it is written to a file (no newline). The path must pass [`check_path`].
    pub fn to_config(&self) -> Vec<u8> {
        let owner = |name: &str| {
            if name == "-" {
                b"-".to_vec()
            } else {
                quote_word(name.as_bytes(), false)
            }
        };
        let mut out = Vec::new();
        for (i, field) in [
            self.kind.as_bytes().to_vec(),
            quote_word(&self.path, true),
            self.mode.as_bytes().to_vec(),
            owner(&self.user),
            owner(&self.group),
            self.age.as_bytes().to_vec(),
            escape_argument(&self.argument),
        ]
        .iter()
        .enumerate()
        {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(field);
        }
        out
    }
}

/// Can `path` be written as a tmpfiles.d path so that systemd reads back exactly this path?
/// `Err` says why not (see the module doc).
pub fn check_path(path: &[u8]) -> Result<(), String> {
    if path.contains(&b'\n') {
        return Err("contains a newline, which ends a tmpfiles.d line".into());
    }
    if path.contains(&b'\r') {
        return Err("contains a carriage return, which systemd reads as the end of a line".into());
    }
    if path.len() >= PATH_MAX {
        return Err(format!(
            "is {} bytes long; systemd takes paths of at most {} bytes",
            path.len(),
            PATH_MAX - 1
        ));
    }
    Ok(())
}

/// Replace `%%` with `%`. Other specifiers are left as they are: paths using them (`%h`, `%t`)
/// are never /var paths this tool writes, so they only have to not match.
fn unpercent(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' && v.get(i + 1) == Some(&b'%') {
            out.push(b'%');
            i += 2;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    out
}

/// Parse a tmpfiles.d file. Comments and blank lines are skipped; a line with fewer than two
/// fields or a broken quote is an error naming the file and line.
pub fn parse(file: &str, text: &[u8]) -> Result<Vec<Line>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let trimmed: &[u8] = {
            let start = raw
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(raw.len());
            &raw[start..]
        };
        if trimmed.is_empty() || trimmed[0] == b'#' {
            continue;
        }
        let err = |reason: String| ParseError {
            file: file.into(),
            line: i + 1,
            reason,
        };
        let (words, rest) = split_words(trimmed, 6).map_err(|e| err(e.to_string()))?;
        if words.len() < 2 {
            return Err(err("expected at least a type and a path".into()));
        }
        let field = |n: usize| {
            words
                .get(n)
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .unwrap_or_else(|| "-".into())
        };
        out.push(Line {
            kind: field(0),
            path: unpercent(&words[1]),
            mode: field(2),
            user: field(3),
            group: field(4),
            age: field(5),
            argument: if rest.is_empty() {
                b"-".to_vec()
            } else {
                unpercent(&unescape(&rest).map_err(|e| err(e.to_string()))?)
            },
        });
    }
    Ok(out)
}

/// The file this tool writes, as a set of lines keyed by path. Writing sorts by path, so a
/// parent directory's line comes before its children's, and the output is stable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineSet {
    /// Lines by path.
    pub lines: BTreeMap<Vec<u8>, Line>,
}

impl LineSet {
    /// Add a line, replacing one for the same path.
    pub fn insert(&mut self, line: Line) {
        self.lines.insert(line.path.clone(), line);
    }

    /// The file's contents: `header`, then one line per path, sorted.
    pub fn render(&self, header: &str) -> Vec<u8> {
        let mut s = header.as_bytes().to_vec();
        for l in self.lines.values() {
            s.extend_from_slice(&l.to_config());
            s.push(b'\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(l: &Line) -> String {
        String::from_utf8(l.to_config()).unwrap()
    }

    #[test]
    fn writes_the_three_types() {
        assert_eq!(
            cfg(&Line::dir(b"/var/lib/foo", 0o40750, "foo", "adm")),
            "d /var/lib/foo 0750 foo adm - -"
        );
        assert_eq!(
            cfg(&Line::symlink(b"/var/opt/app", b"../../usr/lib/opt/app")),
            "L /var/opt/app - - - - ../../usr/lib/opt/app"
        );
        assert_eq!(
            cfg(&Line::copy(
                b"/var/lib/a b",
                b"/usr/share/factory/var/lib/a b"
            )),
            r#"C "/var/lib/a b" - - - - /usr/share/factory/var/lib/a b"#
        );
        assert_eq!(
            cfg(&Line::dir(b"/var/100%", 0o1777, "0", "0")),
            "d /var/100%% 1777 0 0 - -"
        );
    }

    #[test]
    fn parses_quotes_escapes_and_specifiers() {
        let text = b"# comment\n\nd /var/lib/x 0755 root root -\nL+ \"/var/a b\" - - - - ../run\nd /var/l\\xffn - - - -\nC /var/p%%c - - - - /usr/share/factory/var/p%%c\nq /var/tmp 1777 root root 30d\n";
        let l = parse("f.conf", text).unwrap();
        assert_eq!(l.len(), 5);
        assert_eq!(l[0].path, b"/var/lib/x");
        assert_eq!(l[0].argument, b"-");
        assert_eq!(
            (
                l[1].kind.as_str(),
                l[1].path.as_slice(),
                l[1].argument.as_slice()
            ),
            ("L+", &b"/var/a b"[..], &b"../run"[..])
        );
        assert_eq!(l[2].path, b"/var/l\xffn");
        assert_eq!(l[3].path, b"/var/p%c");
        assert_eq!(l[3].argument, b"/usr/share/factory/var/p%c");
        assert_eq!(l[4].age, "30d");
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = parse("/usr/lib/tmpfiles.d/x.conf", b"d /ok\nd \"/broken\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.to_string().starts_with("/usr/lib/tmpfiles.d/x.conf:2:"),
            "{e}"
        );
        assert!(parse("x", b"d\n").is_err());
    }

    #[test]
    fn written_lines_parse_back() {
        let lines = [
            Line::dir(b"/var/we ird\x01\xc3\xa9\"q\\", 0o755, "root", "root"),
            Line::symlink(b"/var/opt/x", b"../../usr/lib/opt/x"),
            Line::symlink(b"/var/l", b" odd\\target\x01"),
            Line::copy(b"/var/lib/100%", b"/usr/share/factory/var/lib/100%"),
        ];
        for l in lines {
            let back = parse("x", &l.to_config()).unwrap();
            assert_eq!(back, vec![l]);
        }
    }

    #[test]
    fn lineset_sorts_by_path_and_replaces() {
        let mut s = LineSet::default();
        s.insert(Line::dir(b"/var/lib/b", 0o755, "root", "root"));
        s.insert(Line::dir(b"/var/lib", 0o755, "root", "root"));
        s.insert(Line::dir(b"/var/lib/b", 0o700, "root", "root"));
        assert_eq!(
            s.render("# h\n"),
            b"# h\nd /var/lib 0755 root root - -\nd /var/lib/b 0700 root root - -\n"
        );
    }

    /// The writer's table: (path, owner, the line written, or why it is refused).
    #[test]
    fn hostile_paths_are_quoted_exactly_or_refused() {
        let mut long = b"/var/".to_vec();
        long.extend(std::iter::repeat_n(b'a', 4092));
        type Case<'a> = (&'a [u8], &'a str, Result<&'a [u8], &'a str>);
        let cases: Vec<Case> = vec![
            (
                b"/var/plain",
                "root",
                Ok(b"d /var/plain 0755 root root - -"),
            ),
            (
                b"/var/trail ",
                "root",
                Ok(b"d \"/var/trail \" 0755 root root - -"),
            ),
            (
                b"/var/ lead",
                "root",
                Ok(b"d \"/var/ lead\" 0755 root root - -"),
            ),
            (
                b"/var/q\"b\\c",
                "root",
                Ok(b"d \"/var/q\\\"b\\\\c\" 0755 root root - -"),
            ),
            (
                b"/var/100%h",
                "root",
                Ok(b"d /var/100%%h 0755 root root - -"),
            ),
            (
                b"/var/x\\x20y",
                "root",
                Ok(b"d \"/var/x\\\\x20y\" 0755 root root - -"),
            ),
            (
                b"/var/ctl\x01\x7f",
                "root",
                Ok(b"d \"/var/ctl\x01\x7f\" 0755 root root - -"),
            ),
            (
                b"/var/tab\tx",
                "root",
                Ok(b"d \"/var/tab\tx\" 0755 root root - -"),
            ),
            (
                b"/var/caf\xe9",
                "root",
                Ok(b"d \"/var/caf\xe9\" 0755 root root - -"),
            ),
            (
                b"/var/u",
                "my user",
                Ok(b"d /var/u 0755 \"my user\" \"my user\" - -"),
            ),
            (b"/var/u", "a%b", Ok(b"d /var/u 0755 a%b a%b - -")),
            (
                b"/var/x\nL+ /etc/shadow - - - - /tmp/evil",
                "root",
                Err("newline"),
            ),
            (
                b"/var/x\rL+ /etc/passwd - - - - /tmp/evil",
                "root",
                Err("carriage return"),
            ),
            (&long, "root", Err("4097 bytes long")),
        ];
        for (path, owner, want) in cases {
            match (check_path(path), want) {
                (Ok(()), Ok(line)) => {
                    let l = Line::dir(path, 0o755, owner, owner);
                    assert_eq!(l.to_config(), line, "{:?}", String::from_utf8_lossy(path));
                    let back = parse("x", &l.to_config()).unwrap();
                    assert_eq!(back, vec![l]);
                }
                (Err(why), Err(want)) => assert!(why.contains(want), "{why}"),
                (got, want) => panic!(
                    "{:?}: {got:?}, want {want:?}",
                    String::from_utf8_lossy(path)
                ),
            }
        }
    }

    #[test]
    fn arguments_keep_blanks_at_the_ends_and_any_byte() {
        let l = Line::symlink(b"/var/l", b" /t\nx ");
        assert_eq!(cfg(&l), r"L /var/l - - - - \x20/t\x0ax\x20");
        assert_eq!(parse("x", &l.to_config()).unwrap(), vec![l]);
    }
}
