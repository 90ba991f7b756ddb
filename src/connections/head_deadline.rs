//! The deadline for receiving a request's head (`limits.header_timeout`, like nginx's
//! `client_header_timeout`).
//!
//! Pingora times each read of a head on its own (60 s), so a client that sends one byte a
//! second holds its connection forever. [`HeadDeadline`] wraps an HTTP/1 client connection and
//! bounds the whole head instead: the clock starts when the connection is accepted (for its
//! first request) or when the first byte of a later request arrives (time spent idle between
//! requests is the keep-alive timeout's business), and stops when the proxy has the parsed
//! head ([`head_received`]). When it runs out the connection is answered
//! `408 Request Timeout` with `Connection: close` and closed; a connection that sent nothing
//! at all is closed without an answer, as nginx does, since a browser's idle pre-opened
//! connection has no request to answer.
//!
//! The proxy tells the wrapper where each request stands through the [`Session`]'s stream
//! ([`head_received`] when the head is parsed, [`request_done`] when the answer is logged), so
//! reads of a request body are never timed by it.

use crate::error::GatewayError;
use async_trait::async_trait;
use limits::metrics::HeadTimeouts;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef, ALPN};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType,
};
use pingora::proxy::Session;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Reading a head: the deadline runs.
const HEAD: u8 = 0;
/// Between a parsed head and its logged answer: body reads are not timed here.
const REQUEST: u8 = 1;
/// Between requests on a kept-alive connection: the next byte starts the clock.
const IDLE: u8 = 2;

/// A client connection whose request heads must each arrive within a deadline.
pub struct HeadDeadline {
    inner: Stream,
    limit: Duration,
    /// Where a connection cut off is counted.
    timeouts: HeadTimeouts,
    /// [`HEAD`], [`REQUEST`] or [`IDLE`]; set by the proxy through a shared reference.
    phase: AtomicU8,
    /// When the head being read must be complete (meaningful in [`HEAD`]).
    deadline: Instant,
    /// Whether any byte of the head being read has arrived.
    received: bool,
    /// Made on the first read that has to wait, then moved to each new deadline.
    timer: Option<Pin<Box<Sleep>>>,
    /// Once the deadline passed with part of a head read: bytes of the 408 written so far.
    answering: Option<usize>,
}

impl std::fmt::Debug for HeadDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadDeadline")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .field("phase", &self.phase.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl HeadDeadline {
    /// `inner`, just accepted, whose first head must arrive within `limit` from now.
    pub fn new(inner: Stream, limit: Duration, timeouts: HeadTimeouts) -> HeadDeadline {
        HeadDeadline {
            inner,
            limit,
            timeouts,
            phase: AtomicU8::new(HEAD),
            deadline: Instant::now() + limit,
            received: false,
            timer: None,
            answering: None,
        }
    }

    fn of(session: &Session) -> Option<&HeadDeadline> {
        let stream = session.as_downstream().stream()?;
        (**stream).as_any().downcast_ref::<HeadDeadline>()
    }

    /// Starts the clock for a head whose first byte has just arrived.
    fn arm(&mut self) {
        self.deadline = Instant::now() + self.limit;
        self.received = true;
        self.phase.store(HEAD, Ordering::Relaxed);
    }

    /// The deadline passed: close quietly if nothing came, else start answering 408.
    fn expire(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.received {
            self.timeouts.idle.inc();
            // End of stream before any byte: Pingora closes the connection without a word.
            return Poll::Ready(Ok(()));
        }
        self.timeouts.partial.inc();
        self.answering = Some(0);
        self.answer(cx)
    }

    /// Writes the rest of the 408, then fails the read so the connection is closed.
    fn answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let text = timeout_answer();
        let mut written = self.answering.unwrap_or(0);
        while written < text.len() {
            match ready!(Pin::new(&mut self.inner).poll_write(cx, &text.as_bytes()[written..])) {
                Ok(0) => break,
                Ok(n) => {
                    written += n;
                    self.answering = Some(written);
                }
                Err(_) => break,
            }
        }
        let _ = ready!(Pin::new(&mut self.inner).poll_flush(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("request head not received within {:?}", self.limit),
        )))
    }
}

/// The whole `408` answer: status, framing, `Connection: close` (RFC 9110 §15.5.9) and the
/// error table's body.
fn timeout_answer() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let error = GatewayError::ClientTimeout;
        let body = error.body();
        format!(
            "HTTP/1.1 {} Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            error.status(),
            body.len()
        )
    })
}

/// Stops the clock: the proxy has this request's head. A no-op on connections without a
/// deadline (HTTP/2, or `limits.header_timeout = "0s"`).
pub fn head_received(session: &Session) {
    if let Some(stream) = HeadDeadline::of(session) {
        stream.phase.store(REQUEST, Ordering::Relaxed);
    }
}

/// The answer is complete: the next byte on this connection starts the next head's clock.
pub fn request_done(session: &Session) {
    if let Some(stream) = HeadDeadline::of(session) {
        stream.phase.store(IDLE, Ordering::Relaxed);
    }
}

impl AsyncRead for HeadDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.phase.load(Ordering::Relaxed) {
            REQUEST => return Pin::new(&mut this.inner).poll_read(cx, buf),
            IDLE => {
                let before = buf.filled().len();
                let read = Pin::new(&mut this.inner).poll_read(cx, buf);
                if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
                    this.arm();
                }
                return read;
            }
            _ => {}
        }
        if this.answering.is_some() {
            return this.answer(cx);
        }
        if Instant::now() >= this.deadline {
            return this.expire(cx);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(read) => {
                this.received |= buf.filled().len() > before;
                Poll::Ready(read)
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => this.expire(cx),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for HeadDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for HeadDeadline {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for HeadDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeadDeadline {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeadDeadline {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeadDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for HeadDeadline {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for HeadDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use limits::metrics::LimitMetrics;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const LIMIT: Duration = Duration::from_millis(300);

    fn pair() -> (HeadDeadline, DuplexStream) {
        let (server, client) = tokio::io::duplex(4096);
        (
            HeadDeadline::new(
                Box::new(server),
                LIMIT,
                LimitMetrics::unregistered().head_timeouts(),
            ),
            client,
        )
    }

    /// Reads from the wrapped side until it fails, ends or `for_at_most` passes.
    async fn read_all(stream: &mut HeadDeadline, for_at_most: Duration) -> io::Result<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        let until = Instant::now() + for_at_most;
        loop {
            match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
                Err(_) => return Ok(got),
                Ok(Ok(0)) => return Ok(got),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    #[tokio::test]
    async fn a_partial_head_is_answered_408_and_cut_off() {
        let (mut server, mut client) = pair();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let err = read_all(&mut server, LIMIT * 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= LIMIT - Duration::from_millis(20));
        drop(server);
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{answer}"
        );
        assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nrequest timeout\n"), "{answer}");
    }

    #[tokio::test]
    async fn a_head_sent_a_byte_at_a_time_still_runs_out() {
        let (mut server, mut client) = pair();
        let drip = tokio::spawn(async move {
            for byte in b"GET /slow HTTP/1.1\r\nHost: a\r\nX: "
                .iter()
                .cycle()
                .take(100)
            {
                if client.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            client
        });
        let started = Instant::now();
        let err = read_all(&mut server, LIMIT * 6).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < LIMIT * 3, "{:?}", started.elapsed());
        drop(server);
        drip.await.unwrap();
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_without_an_answer() {
        let (mut server, mut client) = pair();
        let got = read_all(&mut server, LIMIT * 4).await.unwrap();
        assert!(got.is_empty());
        drop(server);
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    }

    #[tokio::test]
    async fn bodies_and_idle_keep_alive_time_are_not_timed() {
        let (mut server, mut client) = pair();
        client.write_all(b"PUT / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let head = b"PUT / HTTP/1.1\r\n\r\n".len();
        let mut got = vec![0u8; head];
        server.read_exact(&mut got).await.unwrap();
        server.phase.store(REQUEST, Ordering::Relaxed);
        // A slow body, then an idle connection, each for longer than the head limit.
        tokio::time::sleep(LIMIT * 2).await;
        client.write_all(b"body").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 4);
        server.phase.store(IDLE, Ordering::Relaxed);
        let idle = read_all(&mut server, LIMIT * 2).await.unwrap();
        assert!(idle.is_empty());
        // The next head's first byte starts its own clock.
        client.write_all(b"GET /next").await.unwrap();
        let err = read_all(&mut server, LIMIT * 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
