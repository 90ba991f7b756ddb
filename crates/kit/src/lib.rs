//! The kit: small, dependency-light parsers and values that every layer of assetgate shares.
//! Nothing here knows about routes, backends, caches or the config file; every module is a
//! leaf that a domain can use without pulling in another domain.
//!
//! - [`path`]: the one request-path normaliser (and the encoder for what is sent on);
//! - [`host`]: the request's authority (Host, absolute form) checked against RFC 3986;
//! - [`params`]: query parameters and cookies, found, decoded and stripped;
//! - [`fields`]: list-valued header fields, parsed one way everywhere; [`hop`]: the
//!   hop-by-hop fields removed from every backend answer;
//! - [`range`], [`conditional`]: Range and conditional requests for answers the gateway
//!   builds itself (RFC 9110 §13, §14);
//! - [`client`]: who the client is (peer, trusted proxies, X-Forwarded-For);
//! - [`affinity`]: what a request is known by to steering rules, and the key and stable hash
//!   that keep one client on one side (a group's stickiness, a pool's consistent hashing);
//! - [`units`]: sizes and durations as written in the config; [`secret`]: secrets read from
//!   the environment or files, never printed; [`problems`]: the collector config validation
//!   reports into;
//! - [`metrics`]: registering a domain's metrics on the registry handed to it;
//! - [`hex`], [`time`], [`ids`]: the one text encoding of bytes, the Unix clock, random ids;
//! - `s3` (feature `s3`): a body streamed into a bucket part by part (one `PutObject` when it
//!   fits one part, a multipart upload otherwise, aborted when dropped unfinished).

pub mod affinity;
pub mod client;
pub mod conditional;
pub mod fields;
pub mod hex;
pub mod hop;
pub mod host;
pub mod ids;
pub mod metrics;
pub mod params;
pub mod path;
pub mod problems;
pub mod range;
#[cfg(feature = "s3")]
pub mod s3;
pub mod secret;
pub mod time;
pub mod units;
