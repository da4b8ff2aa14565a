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
//! [`super::words::escape_word`] for why not `\xNN`), and `%` is doubled (tmpfiles expands `%`
//! specifiers). Owners are names from the image's
//! own passwd and group files, or numbers where the image has no name for an id.

use std::collections::BTreeMap;

use super::words::{escape_argument, escape_word, split_words, unescape};

pub use super::parse_error::ParseError;

/// One tmpfiles.d line. `path` and `argument` are bytes: the image's paths need not be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The type with its modifiers, e.g. `d`, `L+`, `C`.
    pub kind: String,
    pub path: Vec<u8>,
    pub mode: String,
    pub user: String,
    pub group: String,
    pub age: String,
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

    /// The line as it is written to a file (no newline).
    pub fn to_config(&self) -> String {
        let arg = escape_argument(&self.argument);
        format!(
            "{} {} {} {} {} {} {}",
            self.kind,
            escape_word(&self.path),
            self.mode,
            self.user,
            self.group,
            self.age,
            arg
        )
    }
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
    pub lines: BTreeMap<Vec<u8>, Line>,
}

impl LineSet {
    pub fn insert(&mut self, line: Line) {
        self.lines.insert(line.path.clone(), line);
    }

    pub fn render(&self, header: &str) -> String {
        let mut s = String::from(header);
        for l in self.lines.values() {
            s.push_str(&l.to_config());
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_three_types() {
        assert_eq!(
            Line::dir(b"/var/lib/foo", 0o40750, "foo", "adm").to_config(),
            "d /var/lib/foo 0750 foo adm - -"
        );
        assert_eq!(
            Line::symlink(b"/var/opt/app", b"../../usr/lib/opt/app").to_config(),
            "L /var/opt/app - - - - ../../usr/lib/opt/app"
        );
        assert_eq!(
            Line::copy(b"/var/lib/a b", b"/usr/share/factory/var/lib/a b").to_config(),
            r#"C "/var/lib/a b" - - - - /usr/share/factory/var/lib/a b"#
        );
        assert_eq!(
            Line::dir(b"/var/100%", 0o1777, "0", "0").to_config(),
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
            let back = parse("x", l.to_config().as_bytes()).unwrap();
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
            "# h\nd /var/lib 0755 root root - -\nd /var/lib/b 0700 root root - -\n"
        );
    }
}
