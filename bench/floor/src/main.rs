//! `floor OCI_DIR TAG`: read every layer of the image, SHA-256 the blob, decompress it and
//! SHA-256 the tar, on one thread; print the seconds taken and the bytes.

use std::io::{self, BufReader, Read};
use std::time::Instant;

use sha2::{Digest, Sha256};

struct Hashing<R> {
    inner: R,
    h: Sha256,
    n: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.h.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, tag) = (&args[1], &args[2]);
    let json = |p: String| -> serde_json::Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let blob = |d: &str| format!("{dir}/blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let index = json(format!("{dir}/index.json"));
    let m = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
        .expect("tag");
    let manifest = json(blob(m["digest"].as_str().unwrap()));
    let start = Instant::now();
    let (mut compressed, mut tar) = (0u64, 0u64);
    for l in manifest["layers"].as_array().unwrap() {
        let mt = l["mediaType"].as_str().unwrap();
        let f = std::fs::File::open(blob(l["digest"].as_str().unwrap())).unwrap();
        let mut raw = Hashing { inner: BufReader::with_capacity(256 << 10, f), h: Sha256::new(), n: 0 };
        let dec: Box<dyn Read + '_> = if mt.ends_with("gzip") {
            Box::new(flate2::read::MultiGzDecoder::new(&mut raw))
        } else if mt.ends_with("zstd") {
            Box::new(zstd::Decoder::new(&mut raw).unwrap())
        } else {
            Box::new(&mut raw)
        };
        let mut t = Hashing { inner: dec, h: Sha256::new(), n: 0 };
        io::copy(&mut t, &mut io::sink()).unwrap();
        let diff_id = hex::encode(t.h.clone().finalize());
        tar += t.n;
        drop(t);
        compressed += raw.n;
        let digest = hex::encode(raw.h.finalize());
        assert_eq!(format!("sha256:{digest}"), l["digest"].as_str().unwrap());
        let _ = diff_id;
    }
    println!("{:.3} {compressed} {tar}", start.elapsed().as_secs_f64());
}
