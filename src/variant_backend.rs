//! The `variants` backend kind: how the proxy asks the in-process origin ([`crate::local_origin`])
//! for an image variant. The variant the path names is checked against the route's allowlists
//! and spelled in its canonical form (which is also what the cache key holds); the route's
//! source limits travel in [`LIMITS_HEADER`] for the builder.
//!
//! It is the application's, not the backends', because it joins two domains: the backend
//! seam ([`Origin`]) and the variant grammar.

use crate::backend::{local, Ask, Origin, OriginError};
use crate::config::Route;
use async_trait::async_trait;
use http::header;
use kit::client::ClientInfo;
use media::variants::builder::{limits_header, LIMITS_HEADER};
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

/// The image variant builder as a backend.
pub struct VariantBackend;

#[async_trait]
impl Origin<Route> for VariantBackend {
    fn kind(&self) -> &'static str {
        "variants"
    }

    fn ask(
        &self,
        route: &Route,
        _host: &str,
        path: &str,
        _query: Option<&str>,
        accept: Option<&str>,
    ) -> Result<Ask, OriginError> {
        let limits = route.variants.as_ref().ok_or(OriginError::Internal)?;
        let path = crate::backend::keys::origin_path(route, path);
        // The Access stage parsed the same path with the same limits and Accept and answered
        // its refusal (400) before a backend is asked, so a failure here is the gateway's.
        let target = media::variants::spec::parse_target(&path, limits, accept).map_err(|e| {
            tracing::error!(error = %e, "variant refused after the access check passed it");
            OriginError::Internal
        })?;
        Ok(Ask::Variant {
            path: target.canonical_path(),
            limits: limits_header(limits),
        })
    }

    async fn peer(
        &self,
        _attempt: usize,
        _tried: &[usize],
        _hash: Option<u64>,
    ) -> Result<(HttpPeer, Option<usize>), OriginError> {
        Ok((local::peer()?, None))
    }

    async fn prepare(
        &self,
        _name: &str,
        req: &mut RequestHeader,
        ask: &Ask,
        _client: &ClientInfo,
    ) -> Result<(), OriginError> {
        let Ask::Variant { path, limits } = ask else {
            return Err(OriginError::Internal);
        };
        *req = variant_request(req, path, limits)?;
        Ok(())
    }

    fn member_health(&self) -> Vec<(String, bool)> {
        vec![("in-process".to_string(), true)]
    }
}

/// The request the proxy sends the in-process origin for the variant at canonical `path`,
/// with the route's source `limits`.
fn variant_request(
    req: &RequestHeader,
    path: &str,
    limits: &str,
) -> Result<RequestHeader, OriginError> {
    let encoded = kit::path::encode(path).to_string();
    let mut out = RequestHeader::build(req.method.clone(), encoded.as_bytes(), None)
        .map_err(|_| OriginError::Internal)?;
    let _ = out.insert_header(header::HOST, "localhost");
    let _ = out.insert_header(LIMITS_HEADER, limits);
    if let Some(v) = req.headers.get(header::IF_NONE_MATCH) {
        let _ = out.insert_header(header::IF_NONE_MATCH, v.clone());
    }
    Ok(out)
}

/// The backends the application serves in process, by config name, for
/// [`crate::backend::build`]: every such backend is the variant builder.
pub fn in_process(_name: &str) -> Box<dyn Origin<Route>> {
    Box::new(VariantBackend)
}
