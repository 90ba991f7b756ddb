//! The seam every backend kind implements ([`Origin`]), one module per kind: [`super::s3`],
//! [`super::http`], [`super::dir`]; the application adds its own (the image variant builder,
//! reached through the in-process origin). [`super::Backend`] is a name, its metric handles
//! and one `Origin`; the proxy calls it without knowing the kind.

use super::dir::FileAnswer;
use super::metrics::BackendMetrics;
use super::{Ask, MemberOutcome, OriginError, OriginalError, Verdict};
use async_trait::async_trait;
use kit::affinity::AffinityKey;
use kit::client::ClientInfo;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::upstreams::peer::HttpPeer;
use std::time::Duration;

/// What a backend kind reads of the route a request matched (the application's route type
/// implements it): how the route maps its paths, and what query an origin is sent.
pub trait RouteView {
    /// Leading path part removed before the key or origin path is made.
    fn strip_prefix(&self) -> Option<&str>;
    /// Text put in front after stripping.
    fn add_prefix(&self) -> &str;
    /// The query an origin is sent for the client's `query`: without the route's credential
    /// parameters and, on a cached route, in the form its cache key holds.
    fn origin_query(&self, query: Option<&str>) -> Option<String>;
}

/// One kind of backend: what a request asks of it, where it connects, how the request is
/// rewritten for it and what its answers mean. `R` is the application's route type; the
/// kinds here read it only as a [`RouteView`], a kind the application adds may read more.
/// The defaults are those of a kind with one member, no health checks and nothing to add to
/// what it answers.
#[async_trait]
pub trait Origin<R: ?Sized>: Send + Sync {
    /// The kind's name as the config writes it (`s3`, `http`, `dir`, `variants`).
    fn kind(&self) -> &'static str;

    /// What a request for `host` (canonical, no port) and `path` (normalised) with `query` on
    /// `route` asks of this backend; `accept` is the client's `Accept`.
    fn ask(
        &self,
        route: &R,
        host: &str,
        path: &str,
        query: Option<&str>,
        accept: Option<&str>,
    ) -> Result<Ask, OriginError>;

    /// The peer for the next connection attempt, and the pool member it is. `attempt` says
    /// how many connects failed so far, `tried` which members this request already used,
    /// `hash` the request's key for consistent pools.
    async fn peer(
        &self,
        attempt: usize,
        tried: &[usize],
        hash: Option<u64>,
    ) -> Result<(HttpPeer, Option<usize>), OriginError>;

    /// Rewrites the client's request into the one this backend (named `name`) gets.
    async fn prepare(
        &self,
        name: &str,
        req: &mut RequestHeader,
        ask: &Ask,
        client: &ClientInfo,
    ) -> Result<(), OriginError>;

    /// Each member (origin address, endpoint or directory) and whether it is usable now.
    fn member_health(&self) -> Vec<(String, bool)>;

    /// Judges the upstream response header: pass it on, or replace it with an error answer.
    async fn judge(
        &self,
        _resp: &ResponseHeader,
        _ask: &Ask,
        _metrics: &BackendMetrics,
    ) -> Verdict {
        Verdict::Pass
    }

    /// The gateway's own answer to `req`, when this kind answers without any connection (a
    /// directory's file); `None` when the request must be proxied.
    fn answer_here(
        &self,
        _req: &RequestHeader,
        _ask: &Ask,
    ) -> Option<Result<FileAnswer, OriginError>> {
        None
    }

    /// Whether another connection attempt may follow `attempts` failed ones, given the
    /// members already `tried`.
    fn may_retry_connect(&self, _attempts: usize, _tried: &[usize]) -> bool {
        false
    }

    /// Whether a pool member not in `tried` is left.
    fn has_untried_member(&self, _tried: &[usize]) -> bool {
        false
    }

    /// Whether the backend can take requests now.
    fn usable(&self) -> bool {
        true
    }

    /// Whether the backend only serves GET and HEAD.
    fn read_only(&self) -> bool {
        true
    }

    /// What a consistent pool hashes.
    fn affinity(&self) -> Option<&AffinityKey> {
        None
    }

    /// Limit on the whole upstream exchange, when configured.
    fn total_timeout(&self) -> Option<Duration> {
        None
    }

    /// Records what happened at pool member `member` (metrics, passive ejection).
    fn record(&self, _member: usize, _outcome: MemberOutcome) {}

    /// The address of pool member `member`, for the access log.
    fn member_label(&self, _member: usize) -> &str {
        "-"
    }

    /// Whether the client's request headers, `Authorization` among them, reach the backend.
    fn forwards_client_headers(&self) -> bool {
        false
    }

    /// Whether this response is one the origin marked as degraded.
    fn marks_degraded(&self, _resp: &ResponseHeader) -> bool {
        false
    }

    /// Lower-case response header names (or `prefix*`) removed before responses reach clients.
    fn strip_headers(&self) -> &[String] {
        &[]
    }

    /// Where originals are kept, for a kind that can hold them (s3, dir).
    fn originals(&self) -> Option<&dyn OriginalStore> {
        None
    }

    /// The bucket's client, shared with the object cache tier (s3).
    fn bucket(&self) -> Option<std::sync::Arc<super::s3::S3Backend>> {
        None
    }

    /// The directory whose files the gateway serves itself (dir).
    fn local(&self) -> Option<&super::dir::DirBackend> {
        None
    }

    /// A presigned GET URL for the bucket key `key` (s3); with `in_prefix`, `key` is relative
    /// to the backend's `key_prefix`.
    async fn presign_get(
        &self,
        _key: &str,
        _in_prefix: bool,
        _expires_in: Duration,
    ) -> Result<String, OriginError> {
        Err(OriginError::Internal)
    }
}

/// Where an asset store's originals are read and written, by key under the backend's prefix.
#[async_trait]
pub trait OriginalStore: Send + Sync {
    /// Reads the original stored as `key`, refusing one longer than `max` bytes before
    /// reading its body.
    async fn read_original(&self, key: &str, max: u64) -> Result<Vec<u8>, OriginalError>;

    /// Stores an original as `key`.
    async fn write_original(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), OriginalError>;

    /// Starts writing an original at `key` piece by piece (see [`crate::upload`]): nothing
    /// is visible there until it is finished, and dropping it unfinished leaves nothing.
    async fn begin_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<Box<dyn crate::upload::OriginalUpload>, OriginalError>;

    /// Opens the original at `key` for reading piece by piece.
    async fn open_original(
        &self,
        key: &str,
    ) -> Result<Box<dyn crate::upload::OriginalReader>, OriginalError>;

    /// Moves the original at `from` to `to`, replacing what is there.
    async fn move_original(&self, from: &str, to: &str) -> Result<(), OriginalError>;

    /// Removes the original at `key`; one already gone is no error.
    async fn delete_original(&self, key: &str) -> Result<(), OriginalError>;

    /// A page of the objects stored, in key order, starting after the key `after` (see
    /// [`crate::listing`]).
    async fn list_originals(
        &self,
        after: Option<&str>,
    ) -> Result<crate::listing::ListPage, OriginalError>;

    /// A presigned POST form for an upload straight to the store (see [`crate::presign`]);
    /// stores that cannot presign (a local directory) refuse.
    async fn presign_post(
        &self,
        _conditions: &crate::presign::PostConditions,
    ) -> Result<crate::presign::PresignedPost, OriginalError> {
        Err(OriginalError::Unsupported("dir"))
    }

    /// The key of a local file inside the store (it can be registered where it lies); `None`
    /// for a store that is not a local directory, and files elsewhere.
    fn key_of_local_file(&self, _path: &std::path::Path) -> Option<String> {
        None
    }
}
