//! PAX sparse files (GNU tar `--sparse --format=pax`), read back as the files they stand for,
//! as Go's `archive/tar` (hence podman and umoci) reads them.
//!
//! # Format (GNU tar manual, "Storing Sparse Files"; Go `archive/tar` `reader.go`)
//!
//! A sparse file is a regular entry (type `0`) whose data holds only the file's data regions,
//! concatenated; PAX records say where they go:
//!
//! - **0.0**: `GNU.sparse.size` (the real size), `GNU.sparse.numblocks` (n), then n pairs of
//!   `GNU.sparse.offset` / `GNU.sparse.numbytes` records, in that order. The header name is
//!   the real name.
//! - **0.1**: the same, with the pairs in one record `GNU.sparse.map` = `off,len,off,len,…`;
//!   the header name is `…/GNUSparseFile.<pid>/<name>` and `GNU.sparse.name` the real one.
//! - **1.0**: `GNU.sparse.major` = 1, `GNU.sparse.minor` = 0, `GNU.sparse.name`,
//!   `GNU.sparse.realsize`; the map is at the start of the entry's data: decimal numbers each
//!   ended by a newline (the count n, then n offset/length pairs), padded with zeros to a
//!   512-byte boundary, followed by the data regions.
//!
//! Regions must be in order, not overlap and end within the real size, and the entry's data
//! must be exactly the regions' bytes (Go's `validateSparseEntries` and `sparseFileReader`).
//! Anything else is refused. A version other than 0.0, 0.1 or 1.0 is refused too (Go would
//! keep the raw entry under its `GNUSparseFile.…` name).

use std::io::{self, Read};

use crate::oci::limits::SPARSE_MAP_MAX;

/// Where a sparse file's data regions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sparse {
    /// The real name (`GNU.sparse.name`), when given.
    pub name: Option<Vec<u8>>,
    /// The real size of the file.
    pub size: u64,
    /// (offset, length) regions; `None` for format 1.0 until read from the data.
    pub map: Option<Vec<(u64, u64)>>,
}

fn num(what: &str, v: &[u8]) -> Result<u64, String> {
    let s = String::from_utf8_lossy(v);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a number"));
    }
    s.parse().map_err(|_| format!("{what} {s} is too large"))
}

/// The sparse description in an entry's PAX records (in the order they appear), or `None`
/// for an ordinary entry.
pub fn from_pax(records: &[(String, Vec<u8>)]) -> Result<Option<Sparse>, String> {
    let get = |k: &str| {
        records
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_slice())
    };
    let major = get("GNU.sparse.major");
    let minor = get("GNU.sparse.minor");
    let pairs: Vec<&(String, Vec<u8>)> = records
        .iter()
        .filter(|(k, _)| k == "GNU.sparse.offset" || k == "GNU.sparse.numbytes")
        .collect();
    let v1 = match (major, minor) {
        (Some(b"0"), Some(b"0" | b"1")) => false,
        (Some(b"1"), Some(b"0")) => true,
        (None, None) if get("GNU.sparse.map").is_some() || !pairs.is_empty() => false,
        (None, None) => return Ok(None),
        (ma, mi) => {
            return Err(format!(
                "unknown version {}.{}",
                String::from_utf8_lossy(ma.unwrap_or(b"?")),
                String::from_utf8_lossy(mi.unwrap_or(b"?"))
            ))
        }
    };
    let size = match get("GNU.sparse.size").or_else(|| get("GNU.sparse.realsize")) {
        Some(v) => num("real size", v)?,
        None => return Err("no GNU.sparse.size or GNU.sparse.realsize record".into()),
    };
    let name = get("GNU.sparse.name").map(<[u8]>::to_vec);
    if v1 {
        return Ok(Some(Sparse {
            name,
            size,
            map: None,
        }));
    }
    // 0.0: offset/numbytes records in turn; 0.1: one map record.
    let mut flat = Vec::new();
    if !pairs.is_empty() {
        for (i, (k, v)) in pairs.iter().enumerate() {
            let want = if i % 2 == 0 {
                "GNU.sparse.offset"
            } else {
                "GNU.sparse.numbytes"
            };
            if k != want {
                return Err(format!("{k} where {want} was expected"));
            }
            flat.push(num(k, v)?);
        }
    } else if let Some(m) = get("GNU.sparse.map") {
        if !m.is_empty() {
            for part in m.split(|&b| b == b',') {
                flat.push(num("map entry", part)?);
            }
        }
    }
    let n = match get("GNU.sparse.numblocks") {
        Some(v) => num("GNU.sparse.numblocks", v)?,
        None => return Err("no GNU.sparse.numblocks record".into()),
    };
    if n.checked_mul(2) != Some(flat.len() as u64) {
        return Err(format!(
            "GNU.sparse.numblocks says {n} regions, the map holds {} numbers",
            flat.len()
        ));
    }
    let map = flat.chunks(2).map(|c| (c[0], c[1])).collect();
    Ok(Some(Sparse {
        name,
        size,
        map: Some(map),
    }))
}

/// Read a format 1.0 map from the start of the entry's data (consuming it, padding
/// included). Returns the map and the number of bytes it took.
pub fn read_map_v1(r: &mut impl Read) -> Result<(Vec<(u64, u64)>, u64), String> {
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = 0;
    let mut block = [0u8; 512];
    // Next newline-ended number, reading more blocks as needed.
    let mut next = |buf: &mut Vec<u8>, r: &mut dyn Read| -> Result<u64, String> {
        loop {
            if let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
                let v = num("map entry", &buf[pos..pos + nl])?;
                pos += nl + 1;
                return Ok(v);
            }
            if buf.len() as u64 + 512 > SPARSE_MAP_MAX {
                return Err(format!("map larger than {SPARSE_MAP_MAX} bytes"));
            }
            r.read_exact(&mut block)
                .map_err(|e| format!("reading the map: {e}"))?;
            buf.extend_from_slice(&block);
        }
    };
    let n = next(&mut buf, r)?;
    let mut map = Vec::new();
    for _ in 0..n {
        let off = next(&mut buf, r)?;
        let len = next(&mut buf, r)?;
        map.push((off, len));
    }
    Ok((map, buf.len() as u64))
}

/// Check a map against the real size (as Go's `validateSparseEntries`); returns the number
/// of data bytes the entry must hold.
pub fn validate(map: &[(u64, u64)], size: u64) -> Result<u64, String> {
    let mut end = 0u64;
    let mut data = 0u64;
    for &(off, len) in map {
        let e = off
            .checked_add(len)
            .ok_or_else(|| format!("region {off}+{len} overflows"))?;
        if e > size {
            return Err(format!("region {off}+{len} ends past the real size {size}"));
        }
        if off < end {
            return Err(format!(
                "region at {off} overlaps or precedes the one before"
            ));
        }
        end = e;
        data += len;
    }
    Ok(data)
}

/// The expanded file: zeros for holes, the entry's data for the regions, zeros up to the
/// real size. After the last byte, the entry must be exhausted (checked when read to its
/// end: an error names unreferenced data).
pub struct Expand<R> {
    inner: R,
    map: std::vec::IntoIter<(u64, u64)>,
    /// Position in the expanded file.
    pos: u64,
    size: u64,
    /// Current region (start, end), if any left.
    cur: Option<(u64, u64)>,
}

impl<R: Read> Expand<R> {
    /// `map` must have passed [`validate`].
    pub fn new(inner: R, map: Vec<(u64, u64)>, size: u64) -> Self {
        let mut map = map.into_iter();
        let cur = map.next().map(|(o, l)| (o, o + l));
        Expand {
            inner,
            map,
            pos: 0,
            size,
            cur,
        }
    }
}

impl<R: Read> Read for Expand<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((start, end)) = self.cur {
                if self.pos >= end {
                    self.cur = self.map.next().map(|(o, l)| (o, o + l));
                    continue;
                }
                if self.pos < start {
                    let n = (start - self.pos).min(buf.len() as u64) as usize;
                    buf[..n].fill(0);
                    self.pos += n as u64;
                    return Ok(n);
                }
                let want = (end - self.pos).min(buf.len() as u64) as usize;
                let n = self.inner.read(&mut buf[..want])?;
                if n == 0 && want > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "PAX sparse file: the entry holds less data than its map lists",
                    ));
                }
                self.pos += n as u64;
                return Ok(n);
            }
            if self.pos < self.size {
                let n = (self.size - self.pos).min(buf.len() as u64) as usize;
                buf[..n].fill(0);
                self.pos += n as u64;
                return Ok(n);
            }
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "PAX sparse file: the entry holds more data than its map lists",
                ));
            }
            return Ok(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(k: &str, v: &str) -> (String, Vec<u8>) {
        (k.to_string(), v.as_bytes().to_vec())
    }

    #[test]
    fn pax_versions() {
        let v00 = [
            rec("GNU.sparse.size", "100"),
            rec("GNU.sparse.numblocks", "2"),
            rec("GNU.sparse.offset", "0"),
            rec("GNU.sparse.numbytes", "3"),
            rec("GNU.sparse.offset", "100"),
            rec("GNU.sparse.numbytes", "0"),
        ];
        let want = Sparse {
            name: None,
            size: 100,
            map: Some(vec![(0, 3), (100, 0)]),
        };
        assert_eq!(from_pax(&v00), Ok(Some(want.clone())));
        let v01 = [
            rec("GNU.sparse.size", "100"),
            rec("GNU.sparse.numblocks", "2"),
            rec("GNU.sparse.name", "usr/f"),
            rec("GNU.sparse.map", "0,3,100,0"),
        ];
        assert_eq!(
            from_pax(&v01),
            Ok(Some(Sparse {
                name: Some(b"usr/f".to_vec()),
                ..want
            }))
        );
        let v10 = [
            rec("GNU.sparse.major", "1"),
            rec("GNU.sparse.minor", "0"),
            rec("GNU.sparse.name", "usr/f"),
            rec("GNU.sparse.realsize", "100"),
        ];
        assert_eq!(
            from_pax(&v10),
            Ok(Some(Sparse {
                name: Some(b"usr/f".to_vec()),
                size: 100,
                map: None
            }))
        );
        assert_eq!(from_pax(&[rec("path", "x")]), Ok(None));
    }

    #[test]
    fn bad_pax_records() {
        let table: &[&[(&str, &str)]] = &[
            &[("GNU.sparse.major", "2"), ("GNU.sparse.minor", "0")],
            &[("GNU.sparse.major", "1")],
            &[("GNU.sparse.map", "0,3"), ("GNU.sparse.numblocks", "1")],
            &[
                ("GNU.sparse.size", "9"),
                ("GNU.sparse.map", "0,3"),
                ("GNU.sparse.numblocks", "2"),
            ],
            &[
                ("GNU.sparse.size", "9"),
                ("GNU.sparse.map", "0,-3"),
                ("GNU.sparse.numblocks", "1"),
            ],
            &[
                ("GNU.sparse.size", "9"),
                ("GNU.sparse.numblocks", "1"),
                ("GNU.sparse.numbytes", "3"),
                ("GNU.sparse.offset", "0"),
            ],
            &[("GNU.sparse.size", "x"), ("GNU.sparse.map", "")],
        ];
        for recs in table {
            let r: Vec<_> = recs.iter().map(|(k, v)| rec(k, v)).collect();
            assert!(from_pax(&r).is_err(), "{recs:?}");
        }
    }

    #[test]
    fn maps_are_validated() {
        assert_eq!(validate(&[(0, 3), (10, 5), (20, 0)], 20), Ok(8));
        assert!(validate(&[(0, 3), (2, 5)], 20).is_err(), "overlap");
        assert!(validate(&[(10, 3), (0, 5)], 20).is_err(), "out of order");
        assert!(validate(&[(10, 11)], 20).is_err(), "past the end");
        assert!(validate(&[(u64::MAX, 2)], u64::MAX).is_err(), "overflow");
    }

    #[test]
    fn v1_map_and_expansion() {
        let mut data = b"2\n1\n3\n8\n2\n".to_vec();
        data.resize(512, 0);
        data.extend_from_slice(b"abcde");
        let mut r = &data[..];
        let (map, used) = read_map_v1(&mut r).unwrap();
        assert_eq!((map.clone(), used), (vec![(1, 3), (8, 2)], 512));
        assert_eq!(validate(&map, 12), Ok(5));
        let mut out = Vec::new();
        Expand::new(r, map.clone(), 12)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"\0abc\0\0\0\0de\0\0");
        // Unreferenced data and missing data are errors.
        let mut out = Vec::new();
        assert!(Expand::new(&b"abcdefg"[..], map.clone(), 12)
            .read_to_end(&mut out)
            .is_err());
        let mut out = Vec::new();
        assert!(Expand::new(&b"abc"[..], map, 12)
            .read_to_end(&mut out)
            .is_err());
        // A map that never ends is bounded.
        let endless = vec![b'1'; 4 << 20];
        assert!(read_map_v1(&mut &endless[..]).is_err());
    }
}
