//! The in-process origin: answers the gateway's own content (files of `dir` backends, image
//! variants) over a Unix socket inside the process, so a cached route reaches it through the
//! proxy path like any other backend and gets the same cache tiers, fill locks and stale
//! handling. (How the proxy addresses it is `backend::local`.)
//!
//! A file request is answered with the file (validators, type, ranges, conditions) or the
//! gateway's own error answer (404 and the like, `no-store`), streamed in the dir backend's
//! chunks; a variant request with the builder's answer. Routes that are not cached keep
//! answering `dir` files inline, without this hop.

use crate::backend::local::BACKEND_HEADER;
use crate::backend::{Ask, Backend, OriginError};
use crate::error::GatewayError;
use crate::proxy::respond::Answer;
use async_trait::async_trait;
use media::variants::builder::{VariantBuilder, LIMITS_HEADER};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The in-process origin's server app.
pub struct LocalOrigin {
    dirs: HashMap<String, Arc<Backend>>,
    variants: Option<Arc<VariantBuilder>>,
}

impl LocalOrigin {
    /// The origin for every `dir` backend among `backends`, and for variants when a
    /// builder is given.
    pub fn new(
        backends: &HashMap<String, Arc<Backend>>,
        variants: Option<Arc<VariantBuilder>>,
    ) -> LocalOrigin {
        let dirs = backends
            .iter()
            .filter(|(_, b)| b.local().is_some())
            .map(|(n, b)| (n.clone(), b.clone()))
            .collect();
        LocalOrigin { dirs, variants }
    }

    /// Writes the builder's answer for a variant request; false when the connection broke.
    async fn answer_variant(&self, http: &mut ServerSession, builder: &VariantBuilder) -> bool {
        let (header, body) = match builder.answer(http.req_header()).await {
            Ok(made) => (made.header, made.body),
            Err(err) => {
                let Answer { header, body } = Answer::error(&GatewayError::from(err));
                (header, body)
            }
        };
        if http.write_response_header(Box::new(header)).await.is_err() {
            return false;
        }
        body.is_empty() || http.write_response_body(body, true).await.is_ok()
    }

    /// Removes a socket file left by an earlier process with this pid.
    pub fn clear(path: &Path) {
        let _ = std::fs::remove_file(path);
    }

    /// Writes the answer for the session's request; false when the connection broke.
    async fn answer(&self, http: &mut ServerSession) -> bool {
        if http.req_header().headers.contains_key(LIMITS_HEADER) {
            return match &self.variants {
                Some(builder) => self.answer_variant(http, &builder.clone()).await,
                None => {
                    let Answer { header, body } = Answer::error(&GatewayError::Internal);
                    http.write_response_header(Box::new(header)).await.is_ok()
                        && http.write_response_body(body, true).await.is_ok()
                }
            };
        }
        let req = http.req_header();
        let name = req
            .headers
            .get(BACKEND_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let key = percent_encoding::percent_decode_str(req.uri.path().trim_start_matches('/'))
            .decode_utf8()
            .map(|k| k.into_owned());
        let answer = match (self.dirs.get(name), key) {
            (Some(dir), Ok(key)) => dir
                .answer_here(req, &Ask::Object(key))
                .unwrap_or(Err(OriginError::Internal))
                .map_err(GatewayError::from),
            _ => Err(GatewayError::Internal),
        };
        match answer {
            Ok(file) => {
                let bodyless = file.body.is_none();
                if http
                    .write_response_header(Box::new(file.header))
                    .await
                    .is_err()
                {
                    return false;
                }
                let Some(mut body) = file.body.filter(|_| !bodyless) else {
                    return true;
                };
                loop {
                    match body.next_chunk() {
                        Ok(Some(chunk)) => {
                            if http.write_response_body(chunk, body.done()).await.is_err() {
                                return false;
                            }
                        }
                        Ok(None) => return true,
                        // The header is out: the proxy sees a short body and stores nothing.
                        Err(_) => return false,
                    }
                }
            }
            Err(err) => {
                let Answer { header, body } = Answer::error(&err);
                if http.write_response_header(Box::new(header)).await.is_err() {
                    return false;
                }
                body.is_empty() || http.write_response_body(body, true).await.is_ok()
            }
        }
    }
}

#[async_trait]
impl HttpServerApp for LocalOrigin {
    async fn process_new_http(
        self: &Arc<Self>,
        mut http: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        if !matches!(http.read_request().await, Ok(true)) {
            return None;
        }
        http.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
        if !self.answer(&mut http).await {
            return None;
        }
        let settings = HttpPersistentSettings::for_session(&http);
        match http.finish().await {
            Ok(reused) => reused.map(|s| ReusedHttpStream::from_reusable_stream(s, settings)),
            Err(_) => None,
        }
    }
}
