//! The HTTP side: hyper (HTTP/1.1) on tokio, answering `GET`/`HEAD` for the layout that
//! [`super::path`] accepts.
//!
//! # Behaviour
//!
//! - Every response to `GET`/`HEAD` has `Content-Length`; `HEAD` sends the same headers with no
//!   body. Other methods get 405 with `Allow: GET, HEAD`.
//! - Objects and delta files are immutable: `ETag: "<checksum>.<ext>"`, `Cache-Control: public,
//!   max-age=31536000, immutable`, and `If-None-Match` gives 304. The summary gets an ETag
//!   from its content (libostree sends `If-None-Match` for it); refs and config are
//!   `Cache-Control: no-cache`.
//! - `Range: bytes=a-b`, `a-`, `-n` (one range) gives 206 with `Content-Range`, an
//!   unsatisfiable one 416 with `Content-Range: bytes */len`; several ranges or a malformed
//!   header give the whole body (RFC 9110 allows ignoring `Range`); `If-Range` with another
//!   ETag gives the whole body.
//! - 400 for hostile paths, 404 for anything not in the layout or not in the repository, never
//!   a directory listing. Request heads are limited to 16 KiB and 64 headers (hyper answers 431
//!   or closes), and must arrive within the header timeout.
//! - At most `max_connections` connections are served at once; further ones wait in the
//!   kernel's accept queue. A connection with no I/O for the idle timeout is closed.
//! - SIGTERM or SIGINT: stop accepting, let requests in flight finish (up to the shutdown
//!   timeout), exit 0.
//! - Access log on stderr, one line per request:
//!   `<peer> "<METHOD> <path> <version>" <status> <body bytes> <milliseconds>ms[ <note>]`.

#![warn(missing_docs)]

use std::convert::Infallible;
use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

use super::filez::{Cache, FilezError};
use super::path::{classify, ObjectKind, Refusal, Route};
use super::repo::{self, is_not_found, Mode, RepoDir};
use super::summary;

/// Limits and timeouts.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; more wait in the accept queue.
    pub max_connections: usize,
    /// Time for a request head to arrive.
    pub header_timeout: Duration,
    /// A connection with no I/O for this long is closed.
    pub idle_timeout: Duration,
    /// After SIGTERM, time given to the open connections.
    pub shutdown_timeout: Duration,
}

/// What every request handler shares.
pub struct State {
    /// The repository served.
    pub repo: RepoDir,
    /// For non-archive repositories: where `.filez` objects are made.
    pub cache: Option<Cache>,
    /// The URL path the repository is served under (`/repo`).
    pub prefix: String,
    /// Refs served in addition to `refs/heads/` (e.g. the commit of an image without refs).
    pub extra_refs: Vec<(String, String)>,
    summary: Mutex<Option<CachedSummary>>,
}

struct CachedSummary {
    refs: Vec<(String, String)>,
    data: Bytes,
    etag: String,
}

impl State {
    /// The shared state of a server.
    pub fn new(
        repo: RepoDir,
        cache: Option<Cache>,
        prefix: String,
        extra_refs: Vec<(String, String)>,
    ) -> Self {
        State {
            repo,
            cache,
            prefix,
            extra_refs,
            summary: Mutex::new(None),
        }
    }

    /// Every ref served: `refs/heads/` plus the extra ones, sorted, extra ones winning.
    pub fn refs(&self) -> io::Result<Vec<(String, String)>> {
        let mut refs = self.repo.list_refs()?;
        refs.retain(|(n, _)| !self.extra_refs.iter().any(|(e, _)| e == n));
        refs.extend(self.extra_refs.iter().cloned());
        refs.sort();
        Ok(refs)
    }

    fn read_ref(&self, name: &str) -> io::Result<Option<String>> {
        if let Some((_, c)) = self.extra_refs.iter().find(|(n, _)| n == name) {
            return Ok(Some(c.clone()));
        }
        self.repo.read_ref(name)
    }

    /// The generated summary, rebuilt when the refs changed since the last request.
    fn summary(&self) -> Result<(Bytes, String), String> {
        let refs = self.refs().map_err(|e| format!("listing refs: {e}"))?;
        let mut cached = self.summary.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cached.as_ref().filter(|c| c.refs == refs) {
            return Ok((c.data.clone(), c.etag.clone()));
        }
        let (entries, missing) =
            summary::ref_entries(&self.repo, &refs).map_err(|e| e.to_string())?;
        for m in missing {
            eprintln!("warning: ref {m} points to a commit not in the repository; left out of the summary");
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let indexed = self.repo.open_dir("delta-indexes").is_ok();
        let data = Bytes::from(summary::build(&entries, now, indexed));
        let etag = content_etag(&data);
        *cached = Some(CachedSummary {
            refs,
            data: data.clone(),
            etag: etag.clone(),
        });
        Ok((data, etag))
    }
}

fn content_etag(data: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(data))[..32])
}

/// A resolved response body source.
enum Resource {
    Bytes {
        data: Bytes,
        etag: Option<String>,
        immutable: bool,
    },
    File {
        file: File,
        len: u64,
        etag: Option<String>,
        immutable: bool,
    },
}

/// Why a resource could not be produced.
enum Failure {
    NotFound,
    Internal(String),
}

fn io_failure(what: &str, e: io::Error) -> Failure {
    if is_not_found(&e) {
        Failure::NotFound
    } else {
        Failure::Internal(format!("{what}: {e}"))
    }
}

const ARCHIVE_CONFIG: &[u8] = b"[core]\nrepo_version=1\nmode=archive-z2\n";

/// Produce the resource for a route (blocking: file system, compression).
fn resolve(state: &State, route: &Route) -> Result<(Resource, Option<&'static str>), Failure> {
    let file_res = |rel: &str, etag: Option<String>, immutable: bool| {
        let file = state.repo.open_file(rel).map_err(|e| io_failure(rel, e))?;
        let len = file.metadata().map_err(|e| io_failure(rel, e))?.len();
        Ok::<_, Failure>(Resource::File {
            file,
            len,
            etag,
            immutable,
        })
    };
    let signed = || state.repo.open_file("summary.sig").is_ok();
    match route {
        Route::Config => Ok((
            Resource::Bytes {
                data: Bytes::from_static(ARCHIVE_CONFIG),
                etag: None,
                immutable: false,
            },
            None,
        )),
        Route::Summary if signed() => {
            let mut data = Vec::new();
            state
                .repo
                .open_file("summary")
                .and_then(|mut f| f.read_to_end(&mut data))
                .map_err(|e| io_failure("summary", e))?;
            let etag = Some(content_etag(&data));
            Ok((
                Resource::Bytes {
                    data: data.into(),
                    etag,
                    immutable: false,
                },
                Some("signed summary as stored"),
            ))
        }
        Route::Summary => {
            let (data, etag) = state.summary().map_err(Failure::Internal)?;
            Ok((
                Resource::Bytes {
                    data,
                    etag: Some(etag),
                    immutable: false,
                },
                None,
            ))
        }
        Route::SummarySig => {
            let mut data = Vec::new();
            state
                .repo
                .open_file("summary.sig")
                .and_then(|mut f| f.read_to_end(&mut data))
                .map_err(|e| io_failure("summary.sig", e))?;
            let etag = Some(content_etag(&data));
            Ok((
                Resource::Bytes {
                    data: data.into(),
                    etag,
                    immutable: false,
                },
                None,
            ))
        }
        Route::Ref(name) => match state.read_ref(name) {
            Ok(Some(c)) => Ok((
                Resource::Bytes {
                    data: Bytes::from(format!("{c}\n")),
                    etag: None,
                    immutable: false,
                },
                None,
            )),
            Ok(None) => Err(Failure::NotFound),
            Err(e) => Err(io_failure("ref", e)),
        },
        Route::Object { checksum, kind } => {
            let etag = Some(format!("\"{checksum}.{}\"", kind.ext()));
            if *kind != ObjectKind::FileZ || state.repo.mode() == Mode::Archive {
                return Ok((
                    file_res(&repo::object_path(checksum, kind.ext()), etag, true)?,
                    None,
                ));
            }
            let cache = state
                .cache
                .as_ref()
                .ok_or_else(|| Failure::Internal("no .filez cache".into()))?;
            match cache.get(&state.repo, checksum) {
                Ok((file, made)) => {
                    let len = file
                        .metadata()
                        .map_err(|e| Failure::Internal(e.to_string()))?
                        .len();
                    Ok((
                        Resource::File {
                            file,
                            len,
                            etag,
                            immutable: true,
                        },
                        Some(if made { "made" } else { "cached" }),
                    ))
                }
                Err(FilezError::NotFound(_)) => Err(Failure::NotFound),
                Err(e) => Err(Failure::Internal(e.to_string())),
            }
        }
        Route::Static(rel) => {
            let etag = Some(format!("\"{}\"", rel.replace(['/', '"'], ":")));
            Ok((file_res(rel, etag, true)?, None))
        }
    }
}

/// The outcome of a `Range` header against a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Serve the whole body (no header, several ranges, or malformed).
    Full,
    /// Bytes `start..=end`.
    Partial(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// Interpret a `Range` header value (RFC 9110 §14), single ranges only.
pub fn parse_range(value: &str, len: u64) -> RangeOutcome {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeOutcome::Full;
    };
    if spec.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeOutcome::Full,
        (true, false) => match num(b) {
            None => RangeOutcome::Full,
            Some(0) => RangeOutcome::Unsatisfiable,
            Some(_) if len == 0 => RangeOutcome::Unsatisfiable,
            Some(n) => RangeOutcome::Partial(len.saturating_sub(n), len - 1),
        },
        (false, _) => {
            let Some(start) = num(a) else {
                return RangeOutcome::Full;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(e) if e >= start => e,
                    _ => return RangeOutcome::Full,
                }
            };
            if start >= len {
                RangeOutcome::Unsatisfiable
            } else {
                RangeOutcome::Partial(start, end.min(len - 1))
            }
        }
    }
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison).
pub fn none_match(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// The response body: nothing, bytes in memory, or a slice of a file read in chunks.
pub enum Body {
    /// No body (HEAD, 304).
    Empty,
    /// Bytes in memory, sent once.
    Bytes(Option<Bytes>),
    /// A file read in chunks.
    File {
        /// The file, positioned at the start of the range.
        file: tokio::fs::File,
        /// Bytes still to send.
        remaining: u64,
        /// The read buffer.
        buf: Vec<u8>,
    },
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Bytes(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::File {
                file,
                remaining,
                buf,
            } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let want = (*remaining).min(buf.len() as u64) as usize;
                let mut rb = ReadBuf::new(&mut buf[..want]);
                match Pin::new(file).poll_read(cx, &mut rb) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        if n == 0 {
                            return Poll::Ready(Some(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "file shrank while being served",
                            ))));
                        }
                        *remaining -= n as u64;
                        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(rb.filled())))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Bytes(b) => b.is_none(),
            Body::File { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Bytes(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

fn simple(status: StatusCode, msg: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::Bytes(Some(Bytes::from_static(msg.as_bytes()))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(msg.len()));
    r
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Build the response for a resource, honouring HEAD, conditional and range headers.
fn respond(req_headers: &HeaderMap, head: bool, res: Resource) -> io::Result<Response<Body>> {
    let (len, etag, immutable) = match &res {
        Resource::Bytes {
            data,
            etag,
            immutable,
        } => (data.len() as u64, etag.clone(), *immutable),
        Resource::File {
            len,
            etag,
            immutable,
            ..
        } => (*len, etag.clone(), *immutable),
    };
    let mut b = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CACHE_CONTROL,
            if immutable {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            },
        );
    if let Some(e) = &etag {
        b = b.header(header::ETAG, e.as_str());
        if let Some(inm) = header_str(req_headers, header::IF_NONE_MATCH) {
            if none_match(inm, e) {
                return Ok(b
                    .status(StatusCode::NOT_MODIFIED)
                    .body(Body::Empty)
                    .expect("valid response"));
            }
        }
    }
    let mut range = header_str(req_headers, header::RANGE)
        .map(|v| parse_range(v, len))
        .unwrap_or(RangeOutcome::Full);
    if let Some(ir) = header_str(req_headers, header::IF_RANGE) {
        if etag.as_deref() != Some(ir.trim()) {
            range = RangeOutcome::Full;
        }
    }
    let (status, start, count) = match range {
        RangeOutcome::Full => (StatusCode::OK, 0, len),
        RangeOutcome::Partial(s, e) => {
            b = b.header(header::CONTENT_RANGE, format!("bytes {s}-{e}/{len}"));
            (StatusCode::PARTIAL_CONTENT, s, e - s + 1)
        }
        RangeOutcome::Unsatisfiable => {
            return Ok(b
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .header(header::CONTENT_LENGTH, 0)
                .body(Body::Empty)
                .expect("valid response"));
        }
    };
    b = b.status(status).header(header::CONTENT_LENGTH, count);
    let body = if head {
        Body::Empty
    } else {
        match res {
            Resource::Bytes { data, .. } => {
                Body::Bytes(Some(data.slice(start as usize..(start + count) as usize)))
            }
            Resource::File { mut file, .. } => {
                file.seek(SeekFrom::Start(start))?;
                Body::File {
                    file: tokio::fs::File::from_std(file),
                    remaining: count,
                    buf: vec![0u8; 256 * 1024],
                }
            }
        }
    };
    Ok(b.body(body).expect("valid response"))
}

async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (resp, note) = route_request(&state, &req).await;
    let bytes = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
        .to_string();
    let shown: String = path
        .chars()
        .take(200)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    eprintln!(
        "{peer} \"{method} {shown} {:?}\" {} {} {}ms{}",
        req.version(),
        resp.status().as_u16(),
        if method == Method::HEAD { "0" } else { &bytes },
        started.elapsed().as_millis(),
        note.map(|n| format!(" {n}")).unwrap_or_default()
    );
    Ok(resp)
}

async fn route_request(
    state: &Arc<State>,
    req: &Request<hyper::body::Incoming>,
) -> (Response<Body>, Option<String>) {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut r = simple(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return (r, None);
        }
    };
    let route = match classify(&state.prefix, req.uri().path()) {
        Ok(r) => r,
        Err(Refusal::BadPath(why)) => {
            return (
                simple(StatusCode::BAD_REQUEST, "bad request\n"),
                Some(format!("refused: {why}")),
            )
        }
        Err(Refusal::OutsidePrefix | Refusal::NotServed) => {
            return (simple(StatusCode::NOT_FOUND, "not found\n"), None)
        }
    };
    let st = state.clone();
    let headers = req.headers().clone();
    let r = tokio::task::spawn_blocking(move || match resolve(&st, &route) {
        Ok((res, note)) => respond(&headers, head, res)
            .map(|r| (r, note.map(str::to_string)))
            .map_err(|e| Failure::Internal(e.to_string())),
        Err(e) => Err(e),
    })
    .await;
    match r {
        Ok(Ok(x)) => x,
        Ok(Err(Failure::NotFound)) => (simple(StatusCode::NOT_FOUND, "not found\n"), None),
        Ok(Err(Failure::Internal(e))) => (
            simple(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
            Some(format!("error: {e}")),
        ),
        Err(e) => (
            simple(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
            Some(format!("error: {e}")),
        ),
    }
}

/// A TCP stream that fails with `TimedOut` after `timeout` without any read or write progress.
struct IdleTimeout {
    inner: TcpStream,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl IdleTimeout {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        IdleTimeout {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn progress(&mut self) {
        let t = tokio::time::Instant::now() + self.timeout;
        self.sleep.as_mut().reset(t);
    }

    fn check<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(v) => {
                self.progress();
                Poll::Ready(v)
            }
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.check(cx, r)
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check(cx, r)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.check(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.check(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serve until SIGTERM/SIGINT. `listener` must already be bound.
pub async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    limits: Limits,
) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let sem = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(16 * 1024)
        .max_headers(64)
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("accept: {e}");
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(IdleTimeout::new(stream, limits.idle_timeout));
        let st = state.clone();
        let svc = hyper::service::service_fn(move |req| handle(st.clone(), peer, req));
        let conn = graceful.watch(builder.serve_connection(io, svc));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection from {peer}: {e}");
            }
            drop(permit);
        });
    }
    eprintln!("shutting down: waiting for requests in flight");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_timeout) => {
            eprintln!("shutdown timeout: closing the remaining connections");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeOutcome::*;
        let cases = [
            ("bytes=0-9", 100, Partial(0, 9)),
            ("bytes=90-", 100, Partial(90, 99)),
            ("bytes=90-200", 100, Partial(90, 99)),
            ("bytes=-10", 100, Partial(90, 99)),
            ("bytes=-200", 100, Partial(0, 99)),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=5-4", 100, Full),
            ("bytes=0-1,5-6", 100, Full),
            ("bytes=a-b", 100, Full),
            ("bytes=-", 100, Full),
            ("items=0-1", 100, Full),
            ("bytes=+1-2", 100, Full),
            ("bytes=99999999999999999999999-", 100, Full),
        ];
        for (v, len, want) in cases {
            assert_eq!(parse_range(v, len), want, "{v} of {len}");
        }
    }

    #[test]
    fn etags() {
        assert!(none_match("\"a\"", "\"a\""));
        assert!(none_match("\"x\", W/\"a\"", "\"a\""));
        assert!(none_match("*", "\"a\""));
        assert!(!none_match("\"b\"", "\"a\""));
    }
}
