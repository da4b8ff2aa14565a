//! A real container registry on loopback for tests: Debian's `docker-registry` (the CNCF
//! distribution registry), plain HTTP on a free port of 127.0.0.1, storage in a temporary
//! directory, stopped on drop.
//!
//! containers/image refuses plain HTTP unless registries.conf marks the registry `insecure`.
//! skopeo 1.9 reads `$HOME/.config/containers/registries.conf` (it ignores
//! `CONTAINERS_REGISTRIES_CONF`), so [`Registry::env`] gives a `HOME` holding such a file: set it
//! on every command (skopeo, and `ostree-container`, which runs skopeo) that talks to the
//! registry. That is also how a user points the tools at an insecure or mirrored registry.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub host: String,
    home: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
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
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".config/containers")).unwrap();
        std::fs::write(
            home.join(".config/containers/registries.conf"),
            format!("[[registry]]\nlocation = \"{host}\"\ninsecure = true\n"),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry (scripts/deps installs it)");
        let r = Registry {
            host,
            home,
            child,
            _dir: dir,
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
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.1 200")
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
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
