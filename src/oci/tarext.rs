//! A cap on the size of tar extension headers, applied to the byte stream before the `tar`
//! crate sees it.
//!
//! # Why
//!
//! The `tar` crate (0.4) reads a GNU long name (`L`), GNU long link (`K`) or PAX extended
//! header (`x`) whole into memory before it returns the entry it describes, and our readers
//! read a PAX global header (`g`) whole too; none of them bounds the size. A layer holding a
//! 2 GiB `x` header (a few MB once compressed) would make the importer allocate 2 GiB. Go's
//! `archive/tar` (podman, buildah, umoci) refuses any of these four entries larger than
//! `maxSpecialFileSize` = 1 MiB ("archive/tar: header field too long", since Go 1.19.2 /
//! 1.18.7, CVE-2022-2879); [`super::limits::TAR_EXTENSION_MAX`] is that value.
//!
//! # The format followed
//!
//! [`ExtensionCap`] is a [`Read`] wrapper that tracks the tar block structure as the bytes
//! stream through it, the way `tar::Archive` (tar 0.4.46, `next_entry_raw`, `next_entry`,
//! `parse_sparse_header`) walks it, so that it looks at the same header blocks:
//!
//! ```text
//! header    512 bytes; all zero: the tar reader stops there (so does this wrapper)
//!           checksum at 148..156 (octal), computed with the field as 8 spaces
//!           size at 124..136: octal ASCII, or base-256 when the first byte has bit 0x80
//!           type flag at 156; magic "ustar\0" "00" (POSIX) or "ustar " " \0" (GNU) at 257
//! GNU sparse ('S', GNU magic) with isextended (byte 482) = 1: 512-byte extension blocks
//!           follow the header, each with its own isextended at byte 504
//! data      size bytes, then zero padding to a multiple of 512
//! ```
//!
//! The data size is the header's, except that a PAX `x` header's `size` record (the first
//! one; a malformed record before it cancels it) overrides it for the next header that is not
//! itself `L`, `K`, `x` or `g`. `L`, `K` and `x` only count as extensions with a POSIX or GNU
//! magic (`tar` reads a v7 one as a plain entry, which our readers then read as PAX records
//! anyway): the cap applies to these types whatever the magic.
//!
//! When a header's checksum or size cannot be read, the `tar` crate fails on it; the wrapper
//! stops tracking and passes bytes through, leaving that error to the reader. When an `L`,
//! `K`, `x` or `g` header declares more than the limit, the read that brings in the header
//! block fails with [`ExtensionTooLarge`] (as the source of an [`io::Error`] of kind
//! `InvalidData`), before the `tar` crate has seen the header, and every later read fails the
//! same way.
//!
//! # Security
//!
//! Memory: the wrapper keeps one header block and, for an accepted `x` header, its data (at
//! most the limit) to find its `size` record.

use std::fmt;
use std::io::{self, Read};

const BLOCK: u64 = 512;

/// An extension header over the limit: where it is and what it declares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExtensionTooLarge {
    /// Offset of its header block in the (decompressed) tar stream.
    pub offset: u64,
    /// Its type flag: `L`, `K`, `x` or `g`.
    pub kind: u8,
    /// The name in its own header (writers put the described entry's name there, e.g.
    /// `PaxHeaders.0/usr/bin/foo`, or `././@LongLink`), lossy UTF-8, at most 100 bytes.
    pub name: String,
    /// The size its header declares.
    pub size: u64,
    /// The limit it exceeds.
    pub limit: u64,
}

/// What a type flag is, for messages.
fn kind_name(kind: u8) -> &'static str {
    match kind {
        b'L' => "GNU long name ('L')",
        b'K' => "GNU long link target ('K')",
        b'x' => "PAX extended header ('x')",
        b'g' => "PAX global header ('g')",
        _ => "tar extension header",
    }
}

impl fmt::Display for ExtensionTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at tar offset {}", kind_name(self.kind), self.offset)?;
        if !self.name.is_empty() {
            write!(f, " (named {:?})", self.name)?;
        }
        write!(
            f,
            " holds {} bytes, over the limit of {} bytes for tar extension headers (Go's \
             archive/tar, used by podman and umoci, refuses it too); write the layer with \
             shorter names and fewer or smaller PAX records",
            self.size, self.limit
        )
    }
}

/// The [`ExtensionTooLarge`] inside an error returned by [`ExtensionCap`], if it is one.
pub fn too_large(e: &io::Error) -> Option<&ExtensionTooLarge> {
    e.get_ref()?.downcast_ref()
}

/// Where the wrapper is in the block structure.
#[derive(Debug)]
enum State {
    /// Filling a header block (bytes so far in `hdr`).
    Header,
    /// Filling a GNU sparse extension block; `data` bytes of entry data follow the last.
    SparseExt { data: u64 },
    /// Inside an entry's data and padding: `left` bytes to pass, of which the first
    /// `capture` are kept (a PAX `x` header's records).
    Data { left: u64, capture: u64 },
    /// The tar reader stops here (zero block) or fails (unreadable header): pass through.
    Done,
}

/// A [`Read`] wrapper over a tar stream that fails when an `L`, `K`, `x` or `g` header
/// declares more than `limit` bytes (see the module documentation).
pub struct ExtensionCap<R> {
    inner: R,
    limit: u64,
    state: State,
    /// Bytes of the stream seen so far.
    pos: u64,
    block: [u8; BLOCK as usize],
    filled: usize,
    /// Offset of the header block being filled.
    header_pos: u64,
    /// The data of the last `x` header while it streams by.
    pax: Vec<u8>,
    /// The `size` record of the pending `x` header, for the next entry.
    pax_size: Option<u64>,
    failed: Option<ExtensionTooLarge>,
}

impl<R: Read> ExtensionCap<R> {
    /// Wrap `inner`, a tar stream read from its start.
    pub fn new(inner: R, limit: u64) -> Self {
        ExtensionCap {
            inner,
            limit,
            state: State::Header,
            pos: 0,
            block: [0; BLOCK as usize],
            filled: 0,
            header_pos: 0,
            pax: Vec::new(),
            pax_size: None,
            failed: None,
        }
    }

    /// Follow `bytes`, the next bytes of the stream.
    fn scan(&mut self, mut bytes: &[u8]) -> Result<(), ExtensionTooLarge> {
        while !bytes.is_empty() {
            match self.state {
                State::Done => return Ok(()),
                State::Data { left, capture } => {
                    let n = (left.min(bytes.len() as u64)) as usize;
                    let keep = capture.min(n as u64) as usize;
                    self.pax.extend_from_slice(&bytes[..keep]);
                    self.pos += n as u64;
                    bytes = &bytes[n..];
                    let (left, capture) = (left - n as u64, capture - keep as u64);
                    self.state = State::Data { left, capture };
                    if capture == 0 && !self.pax.is_empty() {
                        self.pax_size = pax_size(&self.pax);
                        self.pax = Vec::new();
                    }
                    if left == 0 {
                        self.state = State::Header;
                    }
                }
                State::Header | State::SparseExt { .. } => {
                    if self.filled == 0 {
                        self.header_pos = self.pos;
                    }
                    let n = (BLOCK as usize - self.filled).min(bytes.len());
                    self.block[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
                    self.filled += n;
                    self.pos += n as u64;
                    bytes = &bytes[n..];
                    if self.filled == BLOCK as usize {
                        self.filled = 0;
                        self.state = match self.state {
                            State::SparseExt { data } if self.block[504] == 1 => {
                                State::SparseExt { data }
                            }
                            State::SparseExt { data } => data_state(data, 0),
                            _ => self.header()?,
                        };
                    }
                }
            }
        }
        Ok(())
    }

    /// The header block in `self.block` is complete: what follows it.
    fn header(&mut self) -> Result<State, ExtensionTooLarge> {
        let h = tar::Header::from_byte_slice(&self.block);
        if self.block.iter().all(|b| *b == 0) || !checksum_ok(&self.block) {
            return Ok(State::Done);
        }
        let Ok(size) = h.entry_size() else {
            return Ok(State::Done);
        };
        let kind = self.block[156];
        if matches!(kind, b'L' | b'K' | b'x' | b'g') && size > self.limit {
            return Err(ExtensionTooLarge {
                offset: self.header_pos,
                kind,
                name: String::from_utf8_lossy(&h.as_old().name)
                    .trim_end_matches('\0')
                    .to_string(),
                size,
                limit: self.limit,
            });
        }
        let recognized = h.as_gnu().is_some() || h.as_ustar().is_some();
        let extension = recognized && matches!(kind, b'L' | b'K' | b'x');
        let size = match self.pax_size {
            Some(pax) if !matches!(kind, b'L' | b'K' | b'x' | b'g') => pax,
            _ => size,
        };
        if !extension {
            self.pax_size = None;
        }
        if extension && kind == b'x' {
            self.pax.clear();
            self.pax_size = None;
            if size == 0 {
                return Ok(State::Header);
            }
            return Ok(data_state(size, size));
        }
        if kind == b'S' && h.as_gnu().is_some_and(|g| g.is_extended()) {
            return Ok(State::SparseExt { data: size });
        }
        Ok(data_state(size, 0))
    }
}

/// Entry data of `size` bytes and its padding, the first `capture` bytes kept.
fn data_state(size: u64, capture: u64) -> State {
    match size.checked_add(BLOCK - 1) {
        Some(s) if s / BLOCK > 0 => State::Data {
            left: s / BLOCK * BLOCK,
            capture,
        },
        Some(_) => State::Header,
        None => State::Done,
    }
}

/// Whether a header block's checksum field matches its bytes (as `tar` checks it).
fn checksum_ok(block: &[u8; BLOCK as usize]) -> bool {
    let sum: u32 = block[..148]
        .iter()
        .chain(&block[156..])
        .map(|b| u32::from(*b))
        .sum::<u32>()
        + 8 * u32::from(b' ');
    tar::Header::from_byte_slice(block)
        .cksum()
        .is_ok_and(|c| c == sum)
}

/// The `size` record of PAX data as `tar` reads it: the first one, unless a malformed record
/// or value comes first.
fn pax_size(data: &[u8]) -> Option<u64> {
    for ext in tar::PaxExtensions::new(data) {
        let ext = ext.ok()?;
        if ext.key() == Ok("size") {
            return ext.value().ok()?.parse().ok();
        }
    }
    None
}

impl<R: Read> Read for ExtensionCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
        }
        let n = self.inner.read(buf)?;
        if let Err(e) = self.scan(&buf[..n]) {
            self.failed = Some(e.clone());
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 1 << 20;

    fn header(kind: tar::EntryType, path: &str, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_path(path).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    /// An archive with one entry of `kind` holding `data`, then a regular file `after`.
    fn archive(kind: tar::EntryType, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let h = header(kind, "PaxHeaders.0/after", data.len() as u64);
        b.append(&h, data).unwrap();
        let h = header(tar::EntryType::Regular, "after", 3);
        b.append(&h, &b"abc"[..]).unwrap();
        b.into_inner().unwrap()
    }

    /// Read `bytes` through the cap in reads of `chunk` bytes, parsing with `tar` as our
    /// readers do: the entry paths, or the cap's error.
    fn parse(bytes: &[u8], chunk: usize) -> Result<Vec<String>, ExtensionTooLarge> {
        struct Chunked<'a>(&'a [u8], usize);
        impl Read for Chunked<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut ar = tar::Archive::new(ExtensionCap::new(Chunked(bytes, chunk), LIMIT));
        let mut out = Vec::new();
        let entries = ar.entries().unwrap();
        for e in entries {
            match e {
                Ok(mut e) => {
                    let _ = e.pax_extensions().map(|p| p.map(|p| p.count()));
                    out.push(String::from_utf8_lossy(&e.path_bytes()).into_owned());
                }
                Err(e) => match too_large(&e) {
                    Some(t) => return Err(t.clone()),
                    None => panic!("tar error: {e}"),
                },
            }
        }
        Ok(out)
    }

    /// A PAX record `<len> <key>=<value>\n` of exactly `len` bytes.
    fn record(key: &str, value_len: usize) -> Vec<u8> {
        let body = key.len() + 1 + value_len + 1;
        let mut digits = 1;
        while (body + 1 + digits).to_string().len() != digits {
            digits += 1;
        }
        let len = body + 1 + digits;
        let mut r = format!("{len} {key}=").into_bytes();
        r.extend(std::iter::repeat(b'a').take(value_len));
        r.push(b'\n');
        assert_eq!(r.len(), len);
        r
    }

    #[test]
    fn extension_headers_up_to_the_limit_pass() {
        for chunk in [1, 511, 512, 4096, 1 << 20] {
            let name = vec![b'n'; 200 << 10];
            let got = parse(&archive(tar::EntryType::GNULongName, &name), chunk).unwrap();
            assert_eq!(got, vec![String::from_utf8(name).unwrap()]);
            // Exactly the limit is allowed (Go: more than maxSpecialFileSize is refused).
            let pax = record("comment", LIMIT as usize - 32);
            let pax = [&pax[..], &vec![b'\n'; LIMIT as usize - pax.len()][..]].concat();
            assert_eq!(pax.len() as u64, LIMIT);
            let got = parse(&archive(tar::EntryType::XHeader, &pax), chunk).unwrap();
            assert_eq!(got, vec!["after"]);
        }
    }

    #[test]
    fn each_extension_type_over_the_limit_is_refused_before_tar_reads_it() {
        for kind in [
            tar::EntryType::GNULongName,
            tar::EntryType::GNULongLink,
            tar::EntryType::XHeader,
            tar::EntryType::XGlobalHeader,
        ] {
            let data = vec![b'a'; LIMIT as usize + 1];
            let ar = archive(kind, &data);
            for chunk in [1, 700, 1 << 16] {
                let e = parse(&ar, chunk).unwrap_err();
                assert_eq!(
                    e,
                    ExtensionTooLarge {
                        offset: 0,
                        kind: kind.as_byte(),
                        name: "PaxHeaders.0/after".into(),
                        size: LIMIT + 1,
                        limit: LIMIT,
                    }
                );
                assert!(e.to_string().contains("1048577 bytes"), "{e}");
            }
        }
    }

    #[test]
    fn the_header_is_refused_without_its_data() {
        // A header declaring 2 GiB followed by nothing: refused at the header block, the
        // 2 GiB are never read (nor allocated).
        let h = header(tar::EntryType::XHeader, "PaxHeaders.0/big", 2 << 30);
        let mut cap = ExtensionCap::new(h.as_bytes().as_slice(), LIMIT);
        let e = io::copy(&mut cap, &mut io::sink()).unwrap_err();
        let t = too_large(&e).unwrap();
        assert_eq!((t.size, t.name.as_str()), (2 << 30, "PaxHeaders.0/big"));
        // Later reads fail the same way.
        assert!(too_large(&cap.read(&mut [0; 10]).unwrap_err()).is_some());
    }

    #[test]
    fn base_256_sizes_are_read() {
        let mut h = header(tar::EntryType::GNULongName, "././@LongLink", 0);
        // set_size writes base-256 only above the octal range; write it by hand.
        let size = &mut h.as_old_mut().size;
        size.fill(0);
        size[0] = 0x80;
        size[8..].copy_from_slice(&(5u32 << 20).to_be_bytes());
        h.set_cksum();
        let e = io::copy(
            &mut ExtensionCap::new(h.as_bytes().as_slice(), LIMIT),
            &mut io::sink(),
        )
        .unwrap_err();
        assert_eq!(too_large(&e).unwrap().size, 5 << 20);
    }

    #[test]
    fn later_headers_are_found_past_data_padding_and_pax_sizes() {
        // A file whose PAX `size` record overrides its header's size, then a huge 'L': the
        // cap must skip the file's data by the PAX size, as `tar` does, to find the 'L'.
        let mut pax = record("size", 4);
        let n = pax.len();
        pax[n - 5..n - 1].copy_from_slice(b"1000");
        let mut b = tar::Builder::new(Vec::new());
        b.append(
            &header(tar::EntryType::XHeader, "PaxHeaders.0/f", pax.len() as u64),
            &pax[..],
        )
        .unwrap();
        let mut f = header(tar::EntryType::Regular, "f", 0);
        f.set_cksum();
        b.append(&f, &[][..]).unwrap();
        let mut ar = b.into_inner().unwrap();
        ar.truncate(ar.len() - 1024); // the end-of-archive blocks
        ar.extend(vec![0u8; 1024]); // the 1000 bytes of f and padding
        let big = header(tar::EntryType::GNULongName, "././@LongLink", LIMIT + 512);
        ar.extend_from_slice(big.as_bytes());
        let e = parse(&ar, 100).unwrap_err();
        assert_eq!(e.offset, 512 + 512 + 512 + 1024);
        // A small file and a directory with padding before the huge header.
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header(tar::EntryType::Regular, "a", 5), &b"hello"[..])
            .unwrap();
        b.append(&header(tar::EntryType::Directory, "d/", 0), &[][..])
            .unwrap();
        let mut ar = b.into_inner().unwrap();
        ar.truncate(ar.len() - 1024);
        ar.extend_from_slice(big.as_bytes());
        assert_eq!(parse(&ar, 512).unwrap_err().offset, 1536);
    }

    #[test]
    fn a_zero_block_or_a_bad_checksum_stops_tracking() {
        // After the end-of-archive block, a "huge header" is not a header to `tar`.
        let mut ar = archive(tar::EntryType::Regular, b"x");
        ar.extend_from_slice(header(tar::EntryType::XHeader, "x", 2 << 30).as_bytes());
        assert_eq!(
            parse(&ar, 4096).unwrap(),
            vec!["PaxHeaders.0/after", "after"]
        );
        // A block with a wrong checksum is left to `tar` (which fails on it).
        let mut h = header(tar::EntryType::XHeader, "x", 2 << 30);
        h.as_old_mut().cksum[0] = b'7';
        let mut cap = ExtensionCap::new(h.as_bytes().as_slice(), LIMIT);
        assert_eq!(io::copy(&mut cap, &mut io::sink()).unwrap(), 512);
    }

    /// Layers hold tar files: a file whose bytes hold a huge extension header (at any offset,
    /// after long names, long links and PAX records) is data, never read as a header.
    #[test]
    fn headers_inside_file_data_are_data() {
        let trap = header(tar::EntryType::XHeader, "trap", 2 << 30);
        let mut b = tar::Builder::new(Vec::new());
        let mut want = Vec::new();
        for (i, skip) in [0usize, 1, 100, 511, 512, 513, 1000, 4096]
            .into_iter()
            .enumerate()
        {
            let mut data = vec![b'd'; skip];
            data.extend_from_slice(trap.as_bytes());
            data.extend(vec![b'e'; i * 77]);
            let name = format!("usr/{}f{i}", "long/".repeat(30 * (i % 2)));
            if i % 3 == 0 {
                b.append_pax_extensions([("comment", &b"x".repeat(i * 300)[..])])
                    .unwrap();
            }
            let mut h = header(tar::EntryType::Regular, "placeholder", data.len() as u64);
            b.append_data(&mut h, &name, &data[..]).unwrap();
            want.push(name);
            let mut l = header(tar::EntryType::Symlink, "placeholder", 0);
            let target = "t/".repeat(60 * (i % 2) + 1);
            b.append_link(&mut l, format!("usr/l{i}"), &target).unwrap();
            want.push(format!("usr/l{i}"));
        }
        let ar = b.into_inner().unwrap();
        for chunk in [1, 512, 1000, 1 << 20] {
            assert_eq!(parse(&ar, chunk).unwrap(), want, "chunk {chunk}");
        }
    }

    #[test]
    fn gnu_sparse_extension_blocks_are_skipped() {
        let mut h = header(tar::EntryType::GNUSparse, "s", 512);
        let g = h.as_gnu_mut().unwrap();
        g.sparse[0].offset = *b"00000000000\0";
        g.sparse[0].numbytes = *b"00000001000\0";
        g.set_real_size(512);
        g.set_is_extended(true);
        h.set_cksum();
        let mut ext = tar::GnuExtSparseHeader::new();
        ext.set_is_extended(false);
        let mut ar = h.as_bytes().to_vec();
        ar.extend_from_slice(ext.as_bytes());
        ar.extend(vec![b'z'; 512]);
        let big = header(tar::EntryType::XGlobalHeader, "g", LIMIT + 1);
        ar.extend_from_slice(big.as_bytes());
        let mut cap = ExtensionCap::new(ar.as_slice(), LIMIT);
        let e = io::copy(&mut cap, &mut io::sink()).unwrap_err();
        assert_eq!(too_large(&e).unwrap().offset, 1536);
    }
}
