//! A real container registry on loopback for tests: Debian's `docker-registry` (the CNCF
//! distribution registry), on a free port of 127.0.0.1, storage in a temporary directory,
//! stopped on drop. Plain HTTP by default; [`Registry::start_secure`] gives one with TLS (a
//! self-signed certificate made with openssl) and a login (htpasswd, bcrypt from
//! `htpasswd -B`, in apache2-utils).
//!
//! containers/image refuses plain HTTP unless registries.conf marks the registry `insecure`.
//! skopeo 1.9 reads `$HOME/.config/containers/registries.conf` (it ignores
//! `CONTAINERS_REGISTRIES_CONF`), so [`Registry::env`] gives a `HOME` holding such a file: set it
//! on every command (skopeo, and `ostree-container`, which runs skopeo) that talks to the
//! registry. That is also how a user points the tools at an insecure or mirrored registry.
//! The TLS registry is not listed there: clients must trust its certificate (`--cert-dir`
//! [`Registry::cert_dir`]) or skip verification.
//!
//! The registry's own log (its access log: one line per request) goes to a file; the
//! [`Registry::requests`] it lists are what tests assert about what a client fetched.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::run;

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub host: String,
    home: PathBuf,
    log: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

/// Login of [`Registry::start_secure`].
pub const USER: &str = "tester";
pub const PASSWORD: &str = "s3cret-pw";

impl Registry {
    /// Plain HTTP, no login.
    pub fn start() -> Registry {
        Self::start_with(false)
    }

    /// TLS with a self-signed certificate for 127.0.0.1, and a login ([`USER`], [`PASSWORD`]).
    pub fn start_secure() -> Registry {
        Self::start_with(true)
    }

    fn start_with(secure: bool) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        // A free port: bind port 0, note it, let it go (the registry binds it right after).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".config/containers")).unwrap();
        if secure {
            let certs = dir.path().join("certs");
            std::fs::create_dir_all(&certs).unwrap();
            run(Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args([
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ])
                .arg("-keyout")
                .arg(dir.path().join("key.pem"))
                .arg("-out")
                .arg(certs.join("ca.crt")));
            let htpasswd = dir.path().join("htpasswd");
            run(Command::new("htpasswd")
                .args(["-Bbc"])
                .arg(&htpasswd)
                .args([USER, PASSWORD]));
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                certs.join("ca.crt").display(),
                dir.path().join("key.pem").display(),
                htpasswd.display()
            ));
        } else {
            std::fs::write(
                home.join(".config/containers/registries.conf"),
                format!("[[registry]]\nlocation = \"{host}\"\ninsecure = true\n"),
            )
            .unwrap();
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting docker-registry (scripts/deps installs it)");
        let r = Registry {
            host,
            home,
            log,
            child,
            dir,
        };
        r.wait_ready();
        r
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(&self.host) {
                let req = format!(
                    "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.host
                );
                let mut answer = String::new();
                // Any HTTP answer will do: 200, 401 (login), 400 (plain HTTP to TLS).
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.")
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the registry on {} did not answer within 30 s", self.host);
    }

    /// `HOME` for commands that use this registry (see the module docs).
    pub fn env(&self) -> (&str, &Path) {
        ("HOME", &self.home)
    }

    /// `docker://127.0.0.1:PORT/NAME`
    pub fn docker(&self, name: &str) -> String {
        format!("docker://{}/{name}", self.host)
    }

    /// The directory holding the TLS registry's certificate as `ca.crt` (`--cert-dir`).
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// A containers auth.json with this registry's login, written beside it.
    pub fn authfile(&self) -> PathBuf {
        let p = self.dir.path().join("auth.json");
        let token = base64(format!("{USER}:{PASSWORD}").as_bytes());
        std::fs::write(
            &p,
            format!(
                "{{\"auths\":{{\"{}\":{{\"auth\":\"{token}\"}}}}}}",
                self.host
            ),
        )
        .unwrap();
        p
    }

    /// Requests the registry has served so far, as `(method, path)` (path without the query),
    /// read from its access log.
    pub fn requests(&self) -> Vec<(String, String)> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                // The access log's combined format: `… "GET /v2/… HTTP/1.1" 200 …`.
                let start = l.find("\"GET ").or_else(|| l.find("\"HEAD "))?;
                let mut parts = l[start + 1..].split(' ');
                let method = parts.next()?.to_string();
                let path = parts.next()?.split('?').next()?.to_string();
                Some((method, path))
            })
            .collect()
    }

    /// The file in which the registry stores the blob `digest` (to break it in a test).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Digests of the blobs fetched (GET) so far, in order.
    pub fn blob_gets(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|(m, _)| m == "GET")
            .filter_map(|(_, p)| Some(p.split_once("/blobs/")?.1.to_string()))
            .collect()
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
