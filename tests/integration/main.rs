#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests: the real gateway binary against real servers on loopback ports
//! (Garage for S3, a hyper origin, local directories). One test binary so Garage starts once.

mod harness;

mod auth_admin;
mod auth_cloudfront;
mod auth_hmac;
mod auth_jwt;
mod cache;
mod cache_safety;
mod cli;
mod dir;
mod http_origin;
mod jobs;
mod limits;
mod metrics;
mod object_tier;
mod presigned;
mod purge;
mod reconcile;
mod request_path;
mod retention;
mod s3;
mod steering;
mod sync;
mod tls;
mod traversal;
mod upload_routes;
mod uploads;
mod variants;
