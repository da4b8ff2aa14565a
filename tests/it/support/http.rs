//! Helpers for the `serve` tests: a running server, a minimal raw HTTP/1.1 client (so tests
//! control every byte sent), fixture trees.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `ostree-container serve` on 127.0.0.1, any free port; stderr (the access log) to a file.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub url: String,
    pub log: PathBuf,
}

impl Server {
    /// Start `ostree-container serve --listen 127.0.0.1:0 ARGS…`; waits for the
    /// `listening on` line.
    pub fn start(log: &Path, args: &[&str]) -> Server {
        Self::start_cmd(Command::new(super::bin()), log, args)
    }

    /// Like [`Server::start`] with a prepared command (e.g. `buildah run … ostree-container`).
    pub fn start_cmd(mut cmd: Command, log: &Path, args: &[&str]) -> Server {
        let errf = std::fs::File::create(log).unwrap();
        let mut child = cmd
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(errf)
            .spawn()
            .expect("starting the server");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        // Bounded: the server prints this line once bound, or exits.
        for _ in 0..10 {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                let _ = child.wait();
                panic!(
                    "server exited before listening:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if line.starts_with("listening on ") {
                break;
            }
        }
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let port: u16 = url
            .trim_start_matches("http://127.0.0.1:")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Server {
            child,
            port,
            url,
            log: log.to_path_buf(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// SIGTERM, then wait (bounded) for the exit; returns the exit code (`None`: killed by a
    /// signal). Must be used: a test checks how the server stopped.
    #[must_use]
    pub fn terminate(mut self) -> Option<i32> {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        for _ in 0..600 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not stop within 30 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A connection (keep-alive) to the server.
pub struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A bound so a hung server fails the test instead of hanging it; not an assertion.
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        Conn {
            r: BufReader::new(s),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.r.get_mut().write_all(bytes)
    }

    /// Send `METHOD path` with extra header lines; read the response.
    pub fn request(&mut self, method: &str, path: &str, headers: &[&str]) -> Resp {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        self.send_raw(req.as_bytes()).unwrap();
        self.read_response(method == "HEAD").expect("a response")
    }

    /// Read one response; `None` if the server closed the connection first.
    pub fn read_response(&mut self, head: bool) -> Option<Resp> {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.r.read_line(&mut h).ok()?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':')?;
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = resp
            .header("content-length")
            .map(|v| v.parse().unwrap())
            .unwrap_or(0);
        if !head && status != 304 {
            resp.body = vec![0; len];
            self.r.read_exact(&mut resp.body).ok()?;
        }
        Some(resp)
    }

    /// Read until the server closes the connection; panics if it is still open when the read
    /// timeout (60 s) passes, so a server that keeps the connection fails the test.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        if let Err(e) = self.r.read_to_end(&mut v) {
            panic!(
                "the server did not close the connection ({e}); read so far: {:?}",
                String::from_utf8_lossy(&v)
            );
        }
        v
    }
}

/// One request on a fresh connection.
pub fn get(port: u16, path: &str) -> Resp {
    Conn::open(port).request("GET", path, &[])
}

/// A tree with what content objects can carry: hard links, setuid/setgid, xattrs, an empty
/// file, a symlink, a file bigger than the read buffers, nested directories.
pub fn fixture_tree(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir.join("usr/bin")).unwrap();
    std::fs::create_dir_all(dir.join("usr/share/data")).unwrap();
    std::fs::write(dir.join("usr/bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    std::fs::hard_link(dir.join("usr/bin/tool"), dir.join("usr/bin/tool-alias")).unwrap();
    std::fs::write(dir.join("usr/bin/su"), b"setuid binary\n").unwrap();
    std::fs::set_permissions(
        dir.join("usr/bin/su"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::write(dir.join("usr/bin/wall"), b"setgid binary\n").unwrap();
    std::fs::set_permissions(
        dir.join("usr/bin/wall"),
        std::fs::Permissions::from_mode(0o2755),
    )
    .unwrap();
    std::fs::write(dir.join("usr/share/empty"), b"").unwrap();
    std::fs::write(dir.join("usr/share/data/x"), b"x with xattrs\n").unwrap();
    super::set_xattr(&dir.join("usr/share/data/x"), "user.b", b"second");
    super::set_xattr(&dir.join("usr/share/data/x"), "user.a", b"first");
    super::set_xattr(&dir.join("usr/bin/su"), "user.cap", b"\x01\x00\x00\x02");
    std::os::unix::fs::symlink("../bin/tool", dir.join("usr/share/tool-link")).unwrap();
    // Incompressible, larger than one 128 KiB read: 600 KiB from a simple generator.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let big: Vec<u8> = (0..600 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(dir.join("usr/share/data/big"), big).unwrap();
}
