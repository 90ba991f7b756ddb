//! The client connection's life around the proxy: each connection is counted against
//! `limits.connections_per_client` and `limits.connections` for as long as it is open, and
//! one over a limit is closed as it arrives (before any TLS handshake or request is read);
//! an HTTP/1 connection's request heads must each arrive within `limits.header_timeout`
//! ([`head_deadline`]).

pub mod head_deadline;

use async_trait::async_trait;
use head_deadline::HeadDeadline;
use limits::metrics::{HeadTimeouts, LimitMetrics};
use limits::ConnectionCounts;
use pingora::apps::ServerApp;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

/// A server app (the proxy) whose connections are counted and limited.
pub struct Limited<A> {
    inner: Arc<A>,
    counts: ConnectionCounts,
    header_timeout: Duration,
    metrics: LimitMetrics,
    /// `metrics`' head-timeout counters, resolved once for every connection.
    head_timeouts: HeadTimeouts,
}

impl<A> Limited<A> {
    /// `inner` with at most `per_client` connections per address and `total` in all (0:
    /// unlimited), and HTTP/1 request heads cut off after `header_timeout` (zero: never);
    /// connections and timeouts are counted in `metrics`.
    pub fn new(
        inner: A,
        per_client: usize,
        total: usize,
        header_timeout: Duration,
        metrics: LimitMetrics,
    ) -> Limited<A> {
        Limited {
            inner: Arc::new(inner),
            counts: ConnectionCounts::new(per_client, total),
            header_timeout,
            head_timeouts: metrics.head_timeouts(),
            metrics,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Limited<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let metrics = &self.metrics;
        let Some(_open) = self.counts.admit(peer) else {
            metrics.connections_refused.inc();
            return None;
        };
        metrics.connections_open.inc();
        // HTTP/2 frames its own requests (and Pingora bounds their heads); only HTTP/1 heads
        // arrive byte by byte.
        let http1 = !matches!(stream.selected_alpn_proto(), Some(ALPN::H2));
        let stream: Stream = if http1 && !self.header_timeout.is_zero() {
            Box::new(HeadDeadline::new(
                stream,
                self.header_timeout,
                self.head_timeouts.clone(),
            ))
        } else {
            stream
        };
        let reusable = self.inner.process_new(stream, shutdown).await;
        metrics.connections_open.dec();
        reusable
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}
