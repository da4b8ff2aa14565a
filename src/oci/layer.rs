//! Reading one layer: the one way every importer opens a layer blob
//! ([`super::fetch::Source::open_layer`] for an image's layer, [`LayerReader::new`] for a
//! blob already open).
//!
//! A [`LayerReader`] reads the blob as fetched (compressed, untrusted), decompresses it on a
//! thread of its own (gzip through [`super::gzip`], zstd, or none, from the descriptor's media
//! type) and gives the tar stream through [`Read`], while hashing both the blob and the tar.
//! Nothing is trusted until [`LayerReader::finish`], which reads to the end of both streams
//! and checks, in this order:
//!
//! 1. that the blob could be read to its end (a failed fetch), then its digest and size
//!    against the descriptor (a corrupt or truncated blob explains every error after it, so
//!    it is reported first: [`LayerReadError::is_blob`]);
//! 2. that decompression succeeded;
//! 3. the tar's digest against the config's diff_id.
//!
//! A caller parses the stream, then calls `finish`, and reports a blob error before its own
//! parse error, its parse error before a diff_id mismatch. Memory stays flat: the tar arrives
//! in 1 MiB chunks, at most a few of them queued.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::layout::{layer_compression, Compression, DigestReader, OciError};

/// What the manifest and config say about a layer, and its name for messages.
#[derive(Debug, Clone)]
pub struct LayerFacts {
    /// The descriptor's digest of the blob.
    pub digest: String,
    /// The descriptor's size of the blob.
    pub size: u64,
    /// The blob's compression, from the descriptor's media type.
    pub compression: Compression,
    /// The config's diff_id: the digest of the decompressed tar.
    pub diff_id: String,
    /// For messages: "layer 2/3 (sha256:…)".
    pub name: String,
}

impl LayerFacts {
    /// The facts of the layer `desc` whose config diff_id is `diff_id` (compression from the
    /// media type, an unknown one refused); `name` is for messages.
    pub fn of(
        desc: &oci_spec::image::Descriptor,
        diff_id: &str,
        name: &str,
    ) -> Result<Self, OciError> {
        Ok(LayerFacts {
            digest: desc.digest().to_string(),
            size: desc.size(),
            compression: layer_compression(desc.media_type().as_ref())?,
            diff_id: diff_id.to_string(),
            name: name.to_string(),
        })
    }
}

/// A layer failed its checks ([`LayerReader::finish`]).
#[derive(Debug, thiserror::Error)]
pub enum LayerReadError {
    /// The blob's digest or size differs from its descriptor's.
    #[error(transparent)]
    Blob(OciError),
    /// Reading the blob itself failed (its fetch failed): reported first, as what was read
    /// cannot be checked.
    #[error("{name}: reading the blob")]
    Read {
        /// The layer, for the message.
        name: String,
        /// The source's error.
        source: io::Error,
    },
    /// The blob did not decompress.
    #[error("{name}: decompressing")]
    Decompress {
        /// The layer, for the message.
        name: String,
        /// The decoder's error.
        source: io::Error,
    },
    /// The decompressed tar's digest differs from the config's diff_id.
    #[error(transparent)]
    DiffId(OciError),
}

impl LayerReadError {
    /// The blob itself is bad (digest, size or compression): this explains any error met while
    /// parsing its content, so it goes first.
    pub fn is_blob(&self) -> bool {
        !matches!(self, LayerReadError::DiffId(_))
    }
}

/// What [`LayerReader::finish`] verified.
#[derive(Debug, Clone, Copy, Default)]
pub struct Verified {
    /// Bytes of the blob, as fetched.
    pub blob_bytes: u64,
    /// Bytes of the decompressed tar.
    pub tar_bytes: u64,
}

/// Decompressed tar arrives in chunks of this size from the inflating thread.
const CHUNK: usize = 1 << 20;

type RawBlob = DigestReader<BufReader<Box<dyn Read + Send>>>;

/// What the inflating thread hands back: the blob as read (hashed), the decompression error
/// and the error reading the blob itself, if any.
type Inflated = (RawBlob, Option<io::Error>, Option<io::Error>);

/// A layer's tar stream, decompressed on its own thread and verified by [`Self::finish`].
pub struct LayerReader {
    stream: DigestReader<ChunkReader>,
    inflater: JoinHandle<Inflated>,
    facts: LayerFacts,
}

impl LayerReader {
    /// Start reading `blob` (the layer as fetched) as `facts` describes it.
    pub fn new(blob: Box<dyn Read + Send>, facts: LayerFacts) -> Self {
        let (tx, rx) = sync_channel(8);
        let compression = facts.compression;
        let inflater = std::thread::spawn(move || inflate(blob, compression, tx));
        let chunks = ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        };
        // An uncompressed layer's tar is its blob, hashed once as the blob.
        let stream = match compression {
            Compression::None => DigestReader::count_only(chunks),
            _ => DigestReader::new(chunks),
        };
        LayerReader {
            stream,
            inflater,
            facts,
        }
    }

    /// The layer, for messages.
    pub fn name(&self) -> &str {
        &self.facts.name
    }

    /// Read both streams to their end and check them (order in the module docs).
    pub fn finish(mut self) -> Result<Verified, LayerReadError> {
        let name = self.facts.name.clone();
        // Past the tar's end (padding), to the end of the stream.
        let drained = io::copy(&mut self.stream, &mut io::sink());
        let (tar_digest, tar_bytes) = self.stream.finish();
        // Closing the channel lets the inflater stop early after a parse error.
        drop(self.stream);
        let (raw, inflate_err, read_err) = self.inflater.join().unwrap_or_else(|_| {
            let e = io::Error::other("the decompressing thread panicked");
            let nothing = DigestReader::new(BufReader::new(Box::new(io::empty()) as _));
            (nothing, Some(e), None)
        });
        if let Some(source) = read_err {
            return Err(LayerReadError::Read { name, source });
        }
        raw.verify(
            &format!("{name} blob"),
            &self.facts.digest,
            Some(self.facts.size),
        )
        .map_err(LayerReadError::Blob)?;
        if let Some(source) = inflate_err.or(drained.err()) {
            return Err(LayerReadError::Decompress { name, source });
        }
        let tar_digest = match self.facts.compression {
            Compression::None => raw.finish().0,
            _ => tar_digest,
        };
        if tar_digest != self.facts.diff_id {
            return Err(LayerReadError::DiffId(OciError::DigestMismatch {
                what: format!("{name} uncompressed content (diff_id)"),
                expected: self.facts.diff_id.clone(),
                actual: tar_digest,
            }));
        }
        Ok(Verified {
            blob_bytes: raw.count(),
            tar_bytes,
        })
    }
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

/// Reads the chunks the inflating thread sends; an `Err` chunk is its decompression error.
struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

enum Decoder<R: io::BufRead> {
    Plain(R),
    Gzip(super::gzip::GzipReader<R>),
    Zstd(zstd::Decoder<'static, R>),
}

impl<R: io::BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

impl<R: io::BufRead> Decoder<R> {
    fn into_raw(self) -> R {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => r.into_inner(),
            Decoder::Zstd(r) => r.finish(),
        }
    }
}

/// Read the blob to its end, hashing it, decompressing into chunks sent to `tx`. Returns the
/// blob's digest reader (to verify) and the decompression error, if any.
fn inflate(
    blob: Box<dyn Read + Send>,
    compression: Compression,
    tx: SyncSender<io::Result<Vec<u8>>>,
) -> Inflated {
    let raw = DigestReader::new(BufReader::with_capacity(256 << 10, blob));
    let mut dec = match compression {
        Compression::None => Decoder::Plain(BufReader::new(raw)),
        Compression::Gzip => Decoder::Gzip(super::gzip::GzipReader::new(BufReader::new(raw))),
        Compression::Zstd => match zstd::Decoder::with_buffer(BufReader::new(raw)) {
            Ok(d) => Decoder::Zstd(d),
            Err(e) => unreachable!("zstd decoder setup cannot fail without a dictionary: {e}"),
        },
    };
    let mut failed = None;
    'outer: loop {
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match dec.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    failed = Some(e);
                    break 'outer;
                }
            }
        }
        if filled == 0 {
            break;
        }
        buf.truncate(filled);
        if tx.send(Ok(buf)).is_err() {
            break; // the parser stopped; its error is reported
        }
    }
    drop(tx);
    // Hash the rest of the blob even after an error: a corrupted blob is reported as such.
    let mut raw = dec.into_raw().into_inner();
    let read_failed = io::copy(&mut raw, &mut io::sink()).err();
    (raw, failed, read_failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::io::Write;

    fn sha(b: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(b)))
    }

    fn gz(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn facts(blob: &[u8], tar: &[u8]) -> LayerFacts {
        LayerFacts {
            digest: sha(blob),
            size: blob.len() as u64,
            compression: Compression::Gzip,
            diff_id: sha(tar),
            name: "layer 1/1".into(),
        }
    }

    fn read_all(blob: Vec<u8>, f: LayerFacts) -> (Vec<u8>, Result<Verified, LayerReadError>) {
        let mut r = LayerReader::new(Box::new(io::Cursor::new(blob)), f);
        let mut out = Vec::new();
        let _ = r.read_to_end(&mut out);
        (out, r.finish())
    }

    #[test]
    fn good_layer_reads_and_verifies() {
        let tar = vec![7u8; 3 * CHUNK + 5];
        let blob = gz(&tar);
        let (out, v) = read_all(blob.clone(), facts(&blob, &tar));
        assert_eq!(out, tar);
        let v = v.unwrap();
        assert_eq!(
            (v.blob_bytes, v.tar_bytes),
            (blob.len() as u64, tar.len() as u64)
        );
    }

    #[test]
    fn wrong_diff_id_is_not_a_blob_error() {
        let blob = gz(b"tar");
        let mut f = facts(&blob, b"tar");
        f.diff_id = sha(b"other");
        let e = read_all(blob, f).1.unwrap_err();
        assert!(!e.is_blob(), "{e}");
        assert!(e.to_string().contains("diff_id"), "{e}");
    }

    #[test]
    fn corrupt_blob_is_reported_as_the_blob() {
        let tar = vec![1u8; 10_000];
        let blob = gz(&tar);
        let f = facts(&blob, &tar);
        let mut bad = blob.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        let e = read_all(bad, f).1.unwrap_err();
        assert!(e.is_blob());
        assert!(e.to_string().contains("digest mismatch"), "{e}");
    }

    #[test]
    fn stopping_early_still_verifies_the_whole_blob() {
        let tar = vec![3u8; 4 * CHUNK];
        let blob = gz(&tar);
        let mut r = LayerReader::new(Box::new(io::Cursor::new(blob.clone())), facts(&blob, &tar));
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        let v = r.finish().unwrap();
        assert_eq!(v.tar_bytes, tar.len() as u64);
    }

    #[test]
    fn undecodable_blob_with_matching_digest_is_a_decompression_error() {
        let blob = b"not gzip at all".to_vec();
        let e = read_all(blob.clone(), facts(&blob, b"")).1.unwrap_err();
        assert!(matches!(e, LayerReadError::Decompress { .. }), "{e}");
    }

    /// A blob whose source fails (a fetch that broke) is reported as that failure, before any
    /// digest check of what was read.
    #[test]
    fn failing_source_is_reported_as_a_read_error() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("connection reset"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(0);
                self.0 -= n;
                Ok(n)
            }
        }
        let blob = gz(b"x");
        let mut f = facts(&blob, b"x");
        f.compression = Compression::None;
        let e = read_all_from(Box::new(Broken(1000)), f).unwrap_err();
        assert!(matches!(e, LayerReadError::Read { .. }), "{e}");
        assert!(e.is_blob());
    }

    fn read_all_from(
        blob: Box<dyn Read + Send>,
        f: LayerFacts,
    ) -> Result<Verified, LayerReadError> {
        let mut r = LayerReader::new(blob, f);
        let _ = r.read_to_end(&mut Vec::new());
        r.finish()
    }

    /// An uncompressed layer's tar is its blob: hashed once, and its diff_id still checked.
    #[test]
    fn uncompressed_layer_is_hashed_once_and_checked() {
        let tar = vec![5u8; 2 * CHUNK + 3];
        let mut f = facts(&tar, &tar);
        f.compression = Compression::None;
        let v = read_all_from(Box::new(io::Cursor::new(tar.clone())), f.clone()).unwrap();
        assert_eq!(
            (v.blob_bytes, v.tar_bytes),
            (tar.len() as u64, tar.len() as u64)
        );
        f.diff_id = sha(b"something else");
        let e = read_all_from(Box::new(io::Cursor::new(tar)), f).unwrap_err();
        assert!(matches!(e, LayerReadError::DiffId(_)), "{e}");
    }
}
