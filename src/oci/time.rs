//! RFC 3339 timestamps, as image configs hold them (`created`), both ways: [`rfc3339`] writes
//! one from a Unix time, [`parse_rfc3339`] reads an untrusted one.

/// RFC 3339 (UTC, seconds) of a Unix timestamp.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2024-01-02T03:04:05.123Z`,
/// `…+02:00`); None when it does not parse or is before 1970.
///
/// The string is untrusted (the image config's `created`): it is sliced with `get`, never
/// by index, so a multi-byte character at any offset is "does not parse", not a panic.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = s.get(r)?;
        if !d.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        d.parse().ok()
    };
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (h, mi, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = frac.get(n..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && o.get(3..4) == Some(":") => {
            let sign = match o.get(..1) {
                Some("+") => 1,
                Some("-") => -1,
                _ => return None,
            };
            let (oh, om) = (o.get(1..3)?, o.get(4..6)?);
            if !(oh.bytes().chain(om.bytes())).all(|c| c.is_ascii_digit()) {
                return None;
            }
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let t = days * 86400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(parse_rfc3339(&rfc3339(1_234_567_890)), Some(1_234_567_890));
    }

    #[test]
    fn parses() {
        let table = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2024-02-29T12:34:56Z", Some(1709210096)),
            ("2024-02-29T12:34:56.123456789Z", Some(1709210096)),
            ("2024-02-29T14:34:56+02:00", Some(1709210096)),
            ("2024-02-29T10:34:56-02:00", Some(1709210096)),
            ("2000-03-01T00:00:00Z", Some(951868800)),
            ("1969-12-31T23:59:59Z", None),
            ("2024-13-01T00:00:00Z", None),
            ("2024-01-01", None),
            ("2024-01-01T00:00:00", None),
            ("2024-01-01T00:00:00.Z", None),
            ("garbage-and-more-garbage", None),
            ("2024-+1-01T00:00:00Z", None),
            ("2024-01-01T00:00:00+0a:00", None),
        ];
        for (s, want) in table {
            assert_eq!(parse_rfc3339(s), want, "{s}");
        }
    }

    /// A multi-byte character at every offset of a valid timestamp (the config's `created`
    /// is untrusted) is "does not parse", never a panic.
    #[test]
    fn rfc3339_multibyte_anywhere_never_panics() {
        for base in ["2024-02-29T14:34:56+02:00", "2024-02-29T12:34:56.123Z"] {
            for i in 0..=base.len() {
                for ch in ["é", "€", "😀"] {
                    let mut s = base.to_string();
                    s.insert_str(i, ch);
                    assert_eq!(parse_rfc3339(&s), None, "{s}");
                    let mut r = base.to_string();
                    r.replace_range(i.min(base.len() - 1)..=i.min(base.len() - 1), ch);
                    let _ = parse_rfc3339(&r);
                }
            }
        }
    }
}
