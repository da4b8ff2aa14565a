//! Word splitting and quoting as systemd's tmpfiles.d and sysusers.d parsers do it
//! (`extract_first_word` with `EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE`).
//!
//! - Words are separated by runs of spaces or tabs.
//! - `"…"` and `'…'` quote (the quotes may start mid-word: `a"b c"d` is one word `ab cd`).
//! - Backslash escapes, inside quotes or not: `\\ \" \' \a \b \f \n \r \t \v \s` (space),
//!   `\xNN` (hex byte), `\NNN` (octal byte), `\uXXXX`, `\UXXXXXXXX`.
//!
//! Words are byte strings: paths in these files need not be UTF-8.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
/// Why a line could not be split into words.
pub enum WordError {
    #[error("unterminated quote")]
    /// A quote was opened and not closed.
    UnterminatedQuote,
    #[error("bad escape sequence {0:?}")]
    /// A backslash escape that is not understood.
    BadEscape(String),
}

/// Split off the first word of `s`. Returns the word (None when only blanks remain) and the rest
/// of the line after the separating blanks.
pub fn first_word(s: &[u8]) -> Result<(Option<Vec<u8>>, &[u8]), WordError> {
    let mut i = 0;
    while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
        i += 1;
    }
    if i == s.len() {
        return Ok((None, &s[i..]));
    }
    let mut word = Vec::new();
    let mut quote: Option<u8> = None;
    while i < s.len() {
        let c = s[i];
        match (quote, c) {
            (None, b' ' | b'\t') => break,
            (None, b'"' | b'\'') => {
                quote = Some(c);
                i += 1;
            }
            (Some(q), _) if c == q => {
                quote = None;
                i += 1;
            }
            (_, b'\\') => {
                let (bytes, used) = unescape_one(&s[i + 1..])?;
                word.extend_from_slice(&bytes);
                i += 1 + used;
            }
            _ => {
                word.push(c);
                i += 1;
            }
        }
    }
    if quote.is_some() {
        return Err(WordError::UnterminatedQuote);
    }
    while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
        i += 1;
    }
    Ok((Some(word), &s[i..]))
}

fn hex_val(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

/// Decode one escape (the text after a backslash); returns the bytes and how many input bytes
/// it used.
fn unescape_one(s: &[u8]) -> Result<(Vec<u8>, usize), WordError> {
    let bad = |n: usize| {
        WordError::BadEscape(format!(
            "\\{}",
            String::from_utf8_lossy(&s[..n.min(s.len())])
        ))
    };
    let Some(&c) = s.first() else {
        return Err(bad(0));
    };
    let simple = match c {
        b'a' => Some(7u8),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(11),
        b's' => Some(b' '),
        b'\\' | b'"' | b'\'' => Some(c),
        _ => None,
    };
    if let Some(b) = simple {
        return Ok((vec![b], 1));
    }
    match c {
        b'x' => {
            if s.len() < 3 {
                return Err(bad(s.len()));
            }
            let (Some(a), Some(b)) = (hex_val(s[1]), hex_val(s[2])) else {
                return Err(bad(3));
            };
            Ok((vec![(a * 16 + b) as u8], 3))
        }
        b'0'..=b'7' => {
            if s.len() < 3 || !s[..3].iter().all(|d| (b'0'..=b'7').contains(d)) {
                return Err(bad(3));
            }
            let v = s[..3]
                .iter()
                .fold(0u32, |acc, d| acc * 8 + (d - b'0') as u32);
            if v > 255 {
                return Err(bad(3));
            }
            Ok((vec![v as u8], 3))
        }
        b'u' | b'U' => {
            let n = if c == b'u' { 4 } else { 8 };
            if s.len() < 1 + n {
                return Err(bad(s.len()));
            }
            let mut v = 0u32;
            for d in &s[1..=n] {
                v = v * 16 + hex_val(*d).ok_or_else(|| bad(1 + n))?;
            }
            let ch = char::from_u32(v).ok_or_else(|| bad(1 + n))?;
            Ok((ch.to_string().into_bytes(), 1 + n))
        }
        _ => Err(bad(1)),
    }
}

/// Split a whole line into at most `max` words; the remainder after them (if any) is returned
/// raw, as systemd does for the argument field of tmpfiles.d.
pub fn split_words(line: &[u8], max: usize) -> Result<(Vec<Vec<u8>>, Vec<u8>), WordError> {
    let mut words = Vec::new();
    let mut rest = line;
    while words.len() < max {
        let (w, r) = first_word(rest)?;
        rest = r;
        match w {
            Some(w) => words.push(w),
            None => break,
        }
    }
    Ok((words, rest.to_vec()))
}

/// Escape the free-form last field of a tmpfiles.d line (the argument: a link target, a copy
/// source). systemd C-unescapes it (checked with systemd-tmpfiles 252: `a\\b` gives `a\b`, and
/// `a\bb` a backspace) but does not unquote it, and strips blanks at both ends of the line. So:
/// `\` is doubled, control bytes and blanks at either end become `\xNN`, `%` is doubled; the
/// rest stays raw (bytes that are not UTF-8 included).
pub fn escape_argument(a: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    for (i, &b) in a.iter().enumerate() {
        let at_end = i == 0 || i + 1 == a.len();
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'%' => out.extend_from_slice(b"%%"),
            b' ' | b'\t' if at_end => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

/// Undo C escapes in a whole string (the tmpfiles.d argument field).
pub fn unescape(s: &[u8]) -> Result<Vec<u8>, WordError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            let (bytes, used) = unescape_one(&s[i + 1..])?;
            out.extend_from_slice(&bytes);
            i += 1 + used;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Quote a byte string as one word so that systemd reads it back unchanged.
///
/// Printable ASCII other than blanks, quotes and backslash passes through; anything else puts
/// the word in double quotes, inside which only `"` and `\` are escaped (with a backslash).
/// `\xNN` escapes are *not* used: systemd 252's tmpfiles.d parser drops the backslash and
/// keeps `xNN` (checked with systemd-tmpfiles 252), while newer versions decode them; quoting
/// means the same to both. Other bytes stay raw inside the quotes: systemd 252 reads control
/// bytes other than newline and carriage return, and bytes that are not UTF-8, back as they
/// are (checked for each byte); newline and carriage return end a line, so callers must refuse
/// them first ([`super::tmpfiles::check_path`]). With `specifiers`, `%` is doubled (fields
/// that systemd expands `%` specifiers in: tmpfiles.d paths, every sysusers.d field); without,
/// it stays (tmpfiles.d user and group names are not expanded: `a%%b` there is looked up as
/// `a%%b`). An empty word is written `""`.
pub fn quote_word(w: &[u8], specifiers: bool) -> Vec<u8> {
    let plain = !w.is_empty()
        && w.iter()
            .all(|&b| matches!(b, b'!'..=b'~') && !matches!(b, b'"' | b'\'' | b'\\'));
    let mut out = Vec::with_capacity(w.len() + 2);
    if !plain {
        out.push(b'"');
    }
    for &b in w {
        match b {
            b'%' if specifiers => out.extend_from_slice(b"%%"),
            b'"' | b'\\' if !plain => {
                out.push(b'\\');
                out.push(b);
            }
            _ => out.push(b),
        }
    }
    if !plain {
        out.push(b'"');
    }
    out
}

/// [`quote_word`] with `%` doubled, for UTF-8 text (sysusers.d fields).
pub fn escape_word(w: &[u8]) -> String {
    String::from_utf8_lossy(&quote_word(w, true)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        let (w, rest) = split_words(s.as_bytes(), 16).unwrap();
        assert!(rest.is_empty());
        w.into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect()
    }

    #[test]
    fn splits_on_blanks_and_quotes() {
        assert_eq!(
            words("d   /var/lib/x\t0755 root root - -"),
            ["d", "/var/lib/x", "0755", "root", "root", "-", "-"]
        );
        assert_eq!(
            words(r#"u foo 100:101 "Foo Bar,,," /home/foo /bin/sh"#),
            ["u", "foo", "100:101", "Foo Bar,,,", "/home/foo", "/bin/sh"]
        );
        assert_eq!(words(r#"a"b c"d 'e f'"#), ["ab cd", "e f"]);
        assert_eq!(words(r#""""#), [""]);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            words(r"/var/a\x20b /x\\y \s \101 \u00e9"),
            ["/var/a b", r"/x\y", " ", "A", "é"]
        );
        let (w, _) = split_words(br"/var/\xff", 4).unwrap();
        assert_eq!(w[0], b"/var/\xff");
        assert_eq!(
            split_words(b"\"open", 4).unwrap_err(),
            WordError::UnterminatedQuote
        );
        assert!(matches!(
            split_words(br"\q", 4).unwrap_err(),
            WordError::BadEscape(_)
        ));
        assert!(matches!(
            split_words(br"\x4", 4).unwrap_err(),
            WordError::BadEscape(_)
        ));
    }

    #[test]
    fn remainder_is_raw() {
        let (w, rest) = split_words(b"L /var/x - - - - ../target with space", 6).unwrap();
        assert_eq!(w.len(), 6);
        assert_eq!(rest, b"../target with space");
    }

    #[test]
    fn arguments_round_trip() {
        for a in [
            &b"../../usr/lib/opt/x"[..],
            b"a\\b",
            b" lead",
            b"trail ",
            b"x\x01y\ny",
            b"100%",
            b"q\"uote",
            b"\xff",
        ] {
            let e = escape_argument(a);
            let back = unescape(&e).unwrap();
            // `%%` is systemd's (specifiers come after unescaping): undo it last.
            let back = String::from_utf8_lossy(&back).replace("%%", "%");
            assert_eq!(back, String::from_utf8_lossy(a), "{e:?}");
        }
        assert_eq!(escape_argument(b"a\\b"), br"a\\b");
        assert_eq!(escape_argument(b"../t with space"), b"../t with space");
        assert_eq!(escape_argument(b" t "), br"\x20t\x20");
    }

    #[test]
    fn escape_round_trips() {
        for w in [
            &b"/var/a b"[..],
            b"/var/\xc3\xa9\x01",
            b"100%",
            b"q\"uo'te\\",
            b"plain/path-1.2_x",
            b"",
        ] {
            let e = escape_word(w);
            let (parsed, rest) = split_words(e.replace("%%", "%").as_bytes(), 1).unwrap();
            assert!(rest.is_empty());
            assert_eq!(parsed[0], w, "{e}");
        }
        assert_eq!(escape_word(b"/var/a b"), r#""/var/a b""#);
        assert_eq!(escape_word(b"/var/plain"), "/var/plain");
        assert_eq!(escape_word(br#"q"b\"#), r#""q\"b\\""#);
    }
}
