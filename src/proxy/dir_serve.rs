//! Serving a `dir` backend from inside the request phase: conditional requests, single ranges,
//! HEAD, and a body streamed in fixed-size chunks so memory stays constant whatever the size.

use super::{Gateway, RequestCtx};
use crate::backend::dir::DirBackend;
use crate::conditional::{evaluate, if_range_allows, Precondition};
use crate::error::GatewayError;
use crate::range::{decide, RangeDecision};
use bytes::BytesMut;
use http::{header, Method};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use std::io::SeekFrom;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes read from disk per body chunk.
const CHUNK: usize = 64 * 1024;

/// Answers the request from `dir`; always returns `Ok(true)` (response written) or a write error.
pub async fn serve(
    gateway: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    dir: &DirBackend,
) -> Result<bool> {
    if ctx.key.is_empty() || ctx.key.ends_with('/') {
        return gateway.reject(session, ctx, GatewayError::NotFound).await;
    }
    let mut file = match dir.open(&ctx.key).await {
        Ok(f) => f,
        Err(e) => return gateway.reject(session, ctx, e).await,
    };
    let req = session.req_header();
    let last_modified = httpdate::fmt_http_date(file.modified);
    let mut resp = ResponseHeader::build(200, Some(8)).expect("valid status");
    let _ = resp.insert_header(header::ETAG, file.etag.as_str());
    let _ = resp.insert_header(header::LAST_MODIFIED, last_modified.as_str());
    let _ = resp.insert_header(header::ACCEPT_RANGES, "bytes");
    match evaluate(&req.headers, &file.etag, file.modified) {
        Precondition::Proceed => {}
        Precondition::Failed => {
            return gateway
                .reject(session, ctx, GatewayError::PreconditionFailed)
                .await
        }
        Precondition::NotModified => {
            resp.set_status(304).expect("valid status");
            gateway.finish_header(session, ctx, &mut resp);
            session.write_response_header(Box::new(resp), true).await?;
            return Ok(true);
        }
    }
    let range_header = req.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let decision = if if_range_allows(&req.headers, &file.etag, file.modified) {
        decide(range_header, file.len)
    } else {
        RangeDecision::Full
    };
    let (start, length) = match decision {
        RangeDecision::Full => (0, file.len),
        RangeDecision::Partial { start, end } => {
            resp.set_status(206).expect("valid status");
            let _ = resp.insert_header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", file.len),
            );
            (start, end - start + 1)
        }
        RangeDecision::Unsatisfiable => {
            let err = GatewayError::RangeNotSatisfiable {
                size: Some(file.len),
            };
            return gateway.reject(session, ctx, err).await;
        }
    };
    let _ = resp.insert_header(header::CONTENT_TYPE, file.content_type.as_str());
    let _ = resp.insert_header(header::CONTENT_LENGTH, length);
    let head = req.method == Method::HEAD;
    gateway.finish_header(session, ctx, &mut resp);
    session
        .write_response_header(Box::new(resp), head || length == 0)
        .await?;
    if head || length == 0 {
        return Ok(true);
    }
    if start > 0 {
        file.file
            .seek(SeekFrom::Start(start))
            .await
            .map_err(|e| Error::because(ErrorType::FileReadError, "seek", e))?;
    }
    let mut remaining = length;
    while remaining > 0 {
        let want = remaining.min(CHUNK as u64) as usize;
        let mut buf = BytesMut::zeroed(want);
        let n = file
            .file
            .read(&mut buf)
            .await
            .map_err(|e| Error::because(ErrorType::FileReadError, "read", e))?;
        if n == 0 {
            // The file shrank under us; the client sees a short body and the connection closes.
            return Err(Error::explain(
                ErrorType::FileReadError,
                "file truncated while serving",
            ));
        }
        buf.truncate(n);
        remaining -= n as u64;
        session
            .write_response_body(Some(buf.freeze()), remaining == 0)
            .await?;
    }
    Ok(true)
}
