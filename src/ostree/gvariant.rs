//! The few GVariant serialisations ostree objects need, written and read directly (building
//! them through glib costs an allocation and a refcount per element, which dominated updates).
//!
//! GVariant rules used here (all element types have alignment 1, so no padding): a tuple
//! stores, after its items, the end offset of every variable-size item except the last, in
//! reverse order; an array of variable-size elements stores the end offset of every element,
//! in order, after them. Offsets are little-endian and as wide as the container needs: 1 byte
//! when the container's total size fits in a u8, else 2, 4 or 8 (the smallest that fits the
//! body plus the offsets themselves). Strings carry a trailing NUL.
//!
//! Types: file header `(uuuusa(ayay))`, dirmeta `(uuua(ayay))`, dirtree
//! `(a(say)a(sayay))`. Every writer is checked byte for byte against glib in the tests.

use super::csum::Csum;

/// Width of the framing offsets in a container of `total` bytes.
fn offset_width(total: usize) -> usize {
    if total == 0 {
        0
    } else if total <= u8::MAX as usize {
        1
    } else if total <= u16::MAX as usize {
        2
    } else if total <= u32::MAX as usize {
        4
    } else {
        8
    }
}

/// Total size of a container with `body` bytes and `n` framing offsets.
fn total_size(body: usize, n: usize) -> usize {
    if n == 0 {
        return body;
    }
    for w in [1usize, 2, 4] {
        let t = body + n * w;
        if offset_width(t) <= w {
            return t;
        }
    }
    body + n * 8
}

fn push_offset(out: &mut Vec<u8>, v: usize, w: usize) {
    out.extend_from_slice(&(v as u64).to_le_bytes()[..w]);
}

/// A tuple of items, each (bytes, is variable-size); framing as GVariant requires.
fn tuple(items: &[(&[u8], bool)]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut ends = Vec::new();
    for (i, (bytes, variable)) in items.iter().enumerate() {
        body.extend_from_slice(bytes);
        if *variable && i + 1 < items.len() {
            ends.push(body.len());
        }
    }
    let total = total_size(body.len(), ends.len());
    let w = offset_width(total);
    for &e in ends.iter().rev() {
        push_offset(&mut body, e, w);
    }
    body
}

/// An array of variable-size elements.
fn array(elems: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut ends = Vec::with_capacity(elems.len());
    for e in elems {
        body.extend_from_slice(e);
        ends.push(body.len());
    }
    let total = total_size(body.len(), ends.len());
    let w = offset_width(total);
    for &e in &ends {
        push_offset(&mut body, e, w);
    }
    body
}

fn cstr(s: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s);
    v.push(0);
    v
}

/// `a(ayay)`; names are given without their NUL, which is added.
pub fn xattrs(x: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let elems: Vec<Vec<u8>> = x
        .iter()
        .map(|(n, v)| tuple(&[(&cstr(n), true), (v, true)]))
        .collect();
    array(&elems)
}

fn be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// The content-object header `(uuuusa(ayay))` (uid, gid, mode big-endian, rdev 0).
pub fn file_header(
    uid: u32,
    gid: u32,
    mode: u32,
    symlink_target: &str,
    x: &[(Vec<u8>, Vec<u8>)],
) -> Vec<u8> {
    let mut fixed = Vec::with_capacity(16);
    for v in [uid, gid, mode, 0] {
        fixed.extend_from_slice(&be(v));
    }
    tuple(&[
        (&fixed, false),
        (&cstr(symlink_target.as_bytes()), true),
        (&xattrs(x), true),
    ])
}

/// Dirmeta `(uuua(ayay))`.
pub fn dirmeta(uid: u32, gid: u32, mode: u32, x: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut fixed = Vec::with_capacity(12);
    for v in [uid, gid, mode] {
        fixed.extend_from_slice(&be(v));
    }
    tuple(&[(&fixed, false), (&xattrs(x), true)])
}

/// Dirtree `(a(say)a(sayay))`; entries must already be sorted by name.
pub fn dirtree<'a>(
    files: impl Iterator<Item = (&'a str, &'a Csum)>,
    dirs: impl Iterator<Item = (&'a str, &'a Csum, &'a Csum)>,
) -> Vec<u8> {
    let f: Vec<Vec<u8>> = files
        .map(|(n, c)| tuple(&[(&cstr(n.as_bytes()), true), (c, true)]))
        .collect();
    let d: Vec<Vec<u8>> = dirs
        .map(|(n, t, m)| tuple(&[(&cstr(n.as_bytes()), true), (t, true), (m, true)]))
        .collect();
    tuple(&[(&array(&f), true), (&array(&d), true)])
}

fn read_offset(data: &[u8], at: usize, w: usize) -> Option<usize> {
    let b = data.get(at..at + w)?;
    let mut v = [0u8; 8];
    v[..w].copy_from_slice(b);
    usize::try_from(u64::from_le_bytes(v)).ok()
}

/// Split an array of variable-size elements.
fn split_array(data: &[u8]) -> Option<Vec<&[u8]>> {
    if data.is_empty() {
        return Some(Vec::new());
    }
    let w = offset_width(data.len());
    let last_end = read_offset(data, data.len() - w, w)?;
    let table = data.get(last_end..)?;
    if table.len() % w != 0 {
        return None;
    }
    let n = table.len() / w;
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let end = read_offset(table, i * w, w)?;
        out.push(data.get(start..end)?);
        start = end;
    }
    Some(out)
}

/// The variable-size items of a tuple whose items are all variable-size (`k` of them).
fn split_tuple(data: &[u8], k: usize) -> Option<Vec<&[u8]>> {
    let w = offset_width(data.len());
    let body_end = data.len().checked_sub((k - 1) * w)?;
    let mut out = Vec::with_capacity(k);
    let mut start = 0;
    for i in 0..k - 1 {
        // Offsets are stored in reverse: item 0's end is the last one.
        let end = read_offset(data, data.len() - (i + 1) * w, w)?;
        out.push(data.get(start..end)?);
        start = end;
    }
    out.push(data.get(start..body_end)?);
    Some(out)
}

fn name(s: &[u8]) -> Option<String> {
    let (last, rest) = s.split_last()?;
    if *last != 0 {
        return None;
    }
    String::from_utf8(rest.to_vec()).ok()
}

fn csum(b: &[u8]) -> Option<Csum> {
    b.try_into().ok()
}

/// Parse `a(ayay)` into (name without its NUL, value) pairs, in their stored order; the one
/// xattrs parser (content headers, dirmeta, `.file-xattrs` objects of an untrusted tar, a
/// served repository's split xattrs). None unless `data` is exactly what [`xattrs`] writes
/// for the result (GVariant normal form, every name NUL-terminated): so a parsed value always
/// serialises back to the bytes its checksum covers.
pub fn parse_xattrs(data: &[u8]) -> Option<Xattrs> {
    let mut out = Vec::new();
    for e in split_array(data)? {
        let it = split_tuple(e, 2)?;
        let n = it[0].strip_suffix(&[0])?;
        out.push((n.to_vec(), it[1].to_vec()));
    }
    (xattrs(&out) == data).then_some(out)
}

/// Extended attributes: (name without NUL, value).
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Parse a dirmeta into (uid, gid, mode, xattrs).
pub fn parse_dirmeta(data: &[u8]) -> Option<(u32, u32, u32, Xattrs)> {
    let u = |i: usize| -> Option<u32> {
        Some(u32::from_be_bytes(
            data.get(i * 4..i * 4 + 4)?.try_into().ok()?,
        ))
    };
    Some((u(0)?, u(1)?, u(2)?, parse_xattrs(data.get(12..)?)?))
}

/// A dirtree's entries: files (name, content checksum), then directories (name, dirtree
/// checksum, dirmeta checksum), each sorted by name.
pub type ParsedTree = (Vec<(String, Csum)>, Vec<(String, Csum, Csum)>);

/// Parse a dirtree; None when malformed.
pub fn parse_dirtree(data: &[u8]) -> Option<ParsedTree> {
    let top = split_tuple(data, 2)?;
    let mut files = Vec::new();
    for e in split_array(top[0])? {
        let it = split_tuple(e, 2)?;
        files.push((name(it[0])?, csum(it[1])?));
    }
    let mut dirs = Vec::new();
    for e in split_array(top[1])? {
        let it = split_tuple(e, 3)?;
        dirs.push((name(it[0])?, csum(it[1])?, csum(it[2])?));
    }
    Some((files, dirs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ostree::glib::prelude::*;

    fn xa(n: usize, vlen: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| (format!("user.attr{i}").into_bytes(), vec![i as u8; vlen]))
            .collect()
    }

    fn glib_xattrs(x: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        x.iter().map(|(n, v)| (cstr(n), v.clone())).collect()
    }

    #[test]
    fn file_headers_match_glib() {
        for (target, x) in [
            ("", xa(0, 0)),
            ("../usr/bin/x", xa(0, 0)),
            ("", xa(2, 20)),
            ("t", xa(30, 300)),
            ("", xa(3, 30000)),
        ] {
            let ours = file_header(1, 2, 0o100644, target, &x);
            let g = (
                1u32.to_be(),
                2u32.to_be(),
                0o100644u32.to_be(),
                0u32,
                target,
                glib_xattrs(&x),
            )
                .to_variant();
            assert_eq!(ours, g.data(), "{target} {}", x.len());
            let ours = dirmeta(1, 2, 0o40755, &x);
            let g = (
                1u32.to_be(),
                2u32.to_be(),
                0o40755u32.to_be(),
                glib_xattrs(&x),
            )
                .to_variant();
            assert_eq!(ours, g.data());
        }
    }

    #[test]
    fn dirtrees_match_glib_and_round_trip() {
        for (nf, nd, namelen) in [
            (0, 0, 1),
            (1, 0, 3),
            (0, 1, 3),
            (3, 2, 5),
            (200, 50, 20),
            (3000, 10, 40),
        ] {
            let files: Vec<(String, Csum)> = (0..nf)
                .map(|i| (format!("{i:0namelen$}"), [i as u8; 32]))
                .collect();
            let dirs: Vec<(String, Csum, Csum)> = (0..nd)
                .map(|i| (format!("d{i:0namelen$}"), [i as u8; 32], [!(i as u8); 32]))
                .collect();
            let ours = dirtree(
                files.iter().map(|(n, c)| (n.as_str(), c)),
                dirs.iter().map(|(n, t, m)| (n.as_str(), t, m)),
            );
            let gf: Vec<(String, Vec<u8>)> =
                files.iter().map(|(n, c)| (n.clone(), c.to_vec())).collect();
            let gd: Vec<(String, Vec<u8>, Vec<u8>)> = dirs
                .iter()
                .map(|(n, t, m)| (n.clone(), t.to_vec(), m.to_vec()))
                .collect();
            let g = (gf, gd).to_variant();
            assert_eq!(ours, g.data(), "{nf} files {nd} dirs");
            assert_eq!(parse_dirtree(&ours), Some((files, dirs)));
        }
    }

    #[test]
    fn dirmeta_round_trip() {
        for x in [xa(0, 0), xa(1, 5), xa(40, 300)] {
            let d = dirmeta(5, 6, 0o40700, &x);
            assert_eq!(parse_dirmeta(&d), Some((5, 6, 0o40700, x)));
        }
    }

    #[test]
    fn malformed_dirtrees_are_rejected() {
        let files = [("a".to_string(), [1u8; 32])];
        let good = dirtree(
            files.iter().map(|(n, c)| (n.as_str(), c)),
            std::iter::empty(),
        );
        for cut in 1..good.len() {
            let _ = parse_dirtree(&good[..cut]); // must not panic
        }
        assert!(parse_dirtree(&[0xff; 7]).is_none());
    }

    /// glib's serialisation parses, names lose their NUL and keep their stored order; what is
    /// not in normal form, or has a name without its NUL, does not parse.
    #[test]
    fn xattrs_parse_strictly() {
        let v = vec![
            (b"user.b\0".to_vec(), b"2".to_vec()),
            (b"security.capability\0".to_vec(), b"1".to_vec()),
        ]
        .to_variant();
        let data = v.data_as_bytes();
        let x = parse_xattrs(&data).unwrap();
        assert_eq!(x[0], (b"user.b".to_vec(), b"2".to_vec()));
        assert_eq!(x[1].0, b"security.capability");
        assert!(parse_xattrs(&[]).unwrap().is_empty());
        let no_nul = vec![(b"user.b".to_vec(), b"2".to_vec())].to_variant();
        assert!(parse_xattrs(&no_nul.data_as_bytes()).is_none());
        let mut padded = data.to_vec();
        padded.insert(0, 0);
        assert!(parse_xattrs(&padded).is_none());
        assert!(parse_xattrs(&data[1..]).is_none());
    }
}
