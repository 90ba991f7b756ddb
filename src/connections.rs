//! The client connection's life around the proxy: each connection is counted against
//! `limits.connections_per_client` and `limits.connections` for as long as it is open, and
//! one over a limit is closed as it arrives (before any TLS handshake or request is read).

use crate::limits::ConnectionCounts;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::Arc;

/// A server app (the proxy) whose connections are counted and limited.
pub struct Limited<A> {
    inner: Arc<A>,
    counts: ConnectionCounts,
}

impl<A> Limited<A> {
    /// `inner` with at most `per_client` connections per address and `total` in all (0:
    /// unlimited).
    pub fn new(inner: A, per_client: usize, total: usize) -> Limited<A> {
        Limited {
            inner: Arc::new(inner),
            counts: ConnectionCounts::new(per_client, total),
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
        let metrics = crate::metrics::Metrics::global();
        let Some(_open) = self.counts.admit(peer) else {
            metrics
                .connections_refused
                .with_label_values::<&str>(&[])
                .inc();
            return None;
        };
        metrics.connections_open.inc();
        let reusable = self.inner.process_new(stream, shutdown).await;
        metrics.connections_open.dec();
        reusable
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}
