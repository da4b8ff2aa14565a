//! Gzip (RFC 1952) decoding without the CRC-32: a layer's uncompressed bytes are already
//! checked against its diff_id (SHA-256), so the CRC adds cost and no safety. Each member's
//! ISIZE is still checked, and truncation is an error. Concatenated members (pigz) are read
//! in turn; anything after the last member that is not another member is an error.
//!
//! The header's file name and comment are bounded by
//! [`super::limits::GZIP_HEADER_STRING_MAX`] (as Go's
//! `compress/gzip`, which podman and umoci use), so a header cannot make the reader hold an
//! unbounded string.

use std::io::{self, BufRead, Read};

use flate2::bufread::DeflateDecoder;

use super::limits::GZIP_HEADER_STRING_MAX;

const FTEXT_MASK: u8 = 0x01;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

enum State<R> {
    /// Expecting a member header (`first`: none read yet).
    Header(R, bool),
    Body(Box<DeflateDecoder<R>>, u32),
    Done(R),
    Poisoned,
}

/// Decompresses a gzip stream of one or more members (see the module docs).
pub struct GzipReader<R: BufRead> {
    state: State<R>,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid gzip stream: {msg}"),
    )
}

fn read_header(r: &mut impl BufRead) -> io::Result<()> {
    let mut h = [0u8; 10];
    r.read_exact(&mut h)?;
    if h[0] != 0x1f || h[1] != 0x8b {
        return Err(bad("bad magic"));
    }
    if h[2] != 8 {
        return Err(bad("unknown compression method"));
    }
    let flags = h[3] & !FTEXT_MASK;
    if flags & FEXTRA != 0 {
        let mut len = [0u8; 2];
        r.read_exact(&mut len)?;
        io::copy(&mut r.take(u16::from_le_bytes(len) as u64), &mut io::sink())?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let mut v = Vec::new();
            r.take(GZIP_HEADER_STRING_MAX as u64)
                .read_until(0, &mut v)?;
            if v.last() != Some(&0) {
                if v.len() == GZIP_HEADER_STRING_MAX {
                    return Err(bad(&format!(
                        "file name or comment longer than {} bytes",
                        GZIP_HEADER_STRING_MAX - 1
                    )));
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
    if flags & FHCRC != 0 {
        r.read_exact(&mut [0u8; 2])?;
    }
    Ok(())
}

impl<R: BufRead> GzipReader<R> {
    /// Read a gzip stream from `r`, starting with a member header.
    pub fn new(r: R) -> Self {
        GzipReader {
            state: State::Header(r, true),
        }
    }

    /// Give back the underlying reader, positioned after what was read so far.
    pub fn into_inner(self) -> R {
        match self.state {
            State::Header(r, _) | State::Done(r) => r,
            State::Body(d, _) => d.into_inner(),
            State::Poisoned => unreachable!("poisoned gzip reader"),
        }
    }
}

impl<R: BufRead> Read for GzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match std::mem::replace(&mut self.state, State::Poisoned) {
                State::Header(mut r, first) => {
                    // Every early return puts the state back: after an I/O error the caller
                    // still takes the inner reader back (`into_inner`) to finish hashing.
                    let at_end = match r.fill_buf() {
                        Ok(b) => b.is_empty(),
                        Err(e) => {
                            self.state = State::Header(r, first);
                            return Err(e);
                        }
                    };
                    if at_end {
                        if first {
                            self.state = State::Header(r, first);
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        self.state = State::Done(r);
                        continue;
                    }
                    let res = read_header(&mut r);
                    self.state = State::Header(r, first);
                    res?;
                    let State::Header(r, _) = std::mem::replace(&mut self.state, State::Poisoned)
                    else {
                        unreachable!()
                    };
                    self.state = State::Body(Box::new(DeflateDecoder::new(r)), 0);
                }
                State::Body(mut d, n) => {
                    let k = match d.read(buf) {
                        Ok(k) => k,
                        Err(e) => {
                            self.state = State::Body(d, n);
                            return Err(e);
                        }
                    };
                    if k > 0 {
                        self.state = State::Body(d, n.wrapping_add(k as u32));
                        return Ok(k);
                    }
                    let mut r = d.into_inner();
                    let mut trailer = [0u8; 8];
                    let res = r.read_exact(&mut trailer);
                    self.state = State::Header(r, false);
                    res?;
                    if u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes")) != n {
                        return Err(bad("length does not match the trailer"));
                    }
                }
                State::Done(r) => {
                    self.state = State::Done(r);
                    return Ok(0);
                }
                State::Poisoned => unreachable!("poisoned gzip reader"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that fails once with an I/O error where a gzip member header would start.
    struct FailingAtHeader(bool);
    impl Read for FailingAtHeader {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            unreachable!("read through fill_buf")
        }
    }
    impl BufRead for FailingAtHeader {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            if !self.0 {
                self.0 = true;
                return Err(io::Error::other("connection reset"));
            }
            Ok(&[])
        }
        fn consume(&mut self, _: usize) {}
    }

    #[test]
    fn io_error_at_a_header_is_returned_and_the_reader_given_back() {
        let mut g = GzipReader::new(FailingAtHeader(false));
        let e = g.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(e.to_string(), "connection reset");
        // Before: the state stayed poisoned and into_inner panicked.
        let inner = g.into_inner();
        assert!(inner.0);
    }
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        GzipReader::new(data).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn members_and_errors() {
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        assert_eq!(decode(&gz(&big)).unwrap(), big);
        let mut two = gz(b"hello ");
        two.extend(gz(b"world"));
        assert_eq!(decode(&two).unwrap(), b"hello world");
        // With a file name in the header.
        let mut e = flate2::GzBuilder::new()
            .filename("x.tar")
            .write(Vec::new(), flate2::Compression::fast());
        e.write_all(b"named").unwrap();
        assert_eq!(decode(&e.finish().unwrap()).unwrap(), b"named");
        // Names up to Go's limit are read, longer ones refused (never held whole).
        for (len, ok) in [(511, true), (512, false), (10 << 20, false)] {
            let mut e = flate2::GzBuilder::new()
                .filename(vec![b'n'; len])
                .write(Vec::new(), flate2::Compression::fast());
            e.write_all(b"named").unwrap();
            let r = decode(&e.finish().unwrap());
            assert_eq!(r.is_ok(), ok, "{len}: {r:?}");
            if !ok {
                assert!(r.unwrap_err().to_string().contains("longer than 511"));
            }
        }
        let full = gz(&big);
        for cut in [5, 20, full.len() / 2, full.len() - 4] {
            assert!(decode(&full[..cut]).is_err(), "truncated at {cut}");
        }
        assert!(decode(b"").is_err());
        assert!(decode(b"not gzip at all").is_err());
        let mut garbage = gz(b"x");
        garbage.extend_from_slice(b"garbage!!!");
        assert!(decode(&garbage).is_err());
        let mut wrong_len = gz(b"abc");
        let n = wrong_len.len();
        wrong_len[n - 4] ^= 1;
        assert!(decode(&wrong_len).is_err());
    }
}
