//! Response headers the gateway adds or removes, decided from the route (pure).

use crate::backend::Backend;
use crate::config::{CompressionSettings, Route};
use crate::proxy::cors;
use http::header::{self, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};

/// Applies the route's response policy: backend-internal headers removed; Cache-Control and
/// Content-Disposition (named after the last segment of the normalised `path`) on successful
/// answers only, never on errors, so an error is never cached for a year; CORS headers and
/// `Vary: Origin`.
pub fn decorate(
    resp: &mut ResponseHeader,
    route: &Route,
    backend: Option<&Backend>,
    req: &RequestHeader,
    path: &str,
) {
    if let Some(backend) = backend {
        strip_headers(resp, backend.strip_headers());
    }
    let status = resp.status.as_u16();
    let success = (200..300).contains(&status) || status == 304;
    if success {
        if let Some(cc) = &route.cache_control {
            let _ = resp.insert_header(header::CACHE_CONTROL, cc.clone());
        }
        if route.download && status != 304 {
            if let Some(v) = attachment(path) {
                let _ = resp.insert_header(header::CONTENT_DISPOSITION, v);
            }
        }
    }
    if let Some(policy) = &route.cors {
        let origin = req
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        for (name, value) in cors::response_headers(policy, origin) {
            let _ = resp.insert_header(name, value);
        }
        if cors::varies_on_origin(policy) {
            kit::fields::append_vary(resp, "Origin");
        }
    }
}

/// Removes headers named in `names` (lower-case; an entry ending in `*` is a prefix).
pub fn strip_headers(resp: &mut ResponseHeader, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let doomed: Vec<header::HeaderName> = resp
        .headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            names.iter().any(|n| match n.strip_suffix('*') {
                Some(prefix) => k.starts_with(prefix),
                None => k == n,
            })
        })
        .cloned()
        .collect();
    for name in doomed {
        resp.remove_header(&name);
    }
}

/// `attachment; filename="..."; filename*=UTF-8''...` for the last segment of a decoded path.
pub fn attachment(path: &str) -> Option<HeaderValue> {
    let name = path.rsplit('/').find(|s| !s.is_empty())?;
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'-')
        .remove(b'_')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(name, ATTR_CHAR);
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .ok()
}

/// Whether a response may be compressed: a 200 of a listed media type, at least `min_size`
/// long when its length is declared, that does not forbid transformation (`Cache-Control:
/// no-transform`, RFC 9110 §7.7). Pingora's module checks Accept-Encoding and
/// Content-Encoding itself, weakens a strong `ETag` (the coded body is another
/// representation) and adds `Vary: Accept-Encoding`.
pub fn compressible(resp: &ResponseHeader, settings: &CompressionSettings) -> bool {
    if settings.level == 0 || resp.status.as_u16() != 200 {
        return false;
    }
    if cache::admit::declared_length(&resp.headers).is_some_and(|l| l < settings.min_size) {
        return false;
    }
    let no_transform = kit::fields::list_members(&resp.headers, header::CACHE_CONTROL)
        .any(|d| d.eq_ignore_ascii_case("no-transform"));
    if no_transform {
        return false;
    }
    let Some(ct) = resp
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    settings.types.iter().any(|t| match t.strip_suffix('*') {
        Some(prefix) => essence.starts_with(prefix),
        None => essence == *t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names() {
        let v = attachment("reports/Q3 résumé \"final\".zip").unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "attachment; filename=\"Q3 r_sum_ _final_.zip\"; filename*=UTF-8''Q3%20r%C3%A9sum%C3%A9%20%22final%22.zip"
        );
        assert!(attachment("").is_none());
    }

    #[test]
    fn strips_prefixes_and_names() {
        let mut r = ResponseHeader::build(200, None).unwrap();
        r.insert_header("x-amz-request-id", "1").unwrap();
        r.insert_header("x-amz-meta-owner", "1").unwrap();
        r.insert_header("server", "AmazonS3").unwrap();
        r.insert_header("etag", "\"e\"").unwrap();
        strip_headers(&mut r, &["x-amz-*".into(), "server".into()]);
        assert_eq!(r.headers.len(), 1);
        assert!(r.headers.get("etag").is_some());
    }

    #[test]
    fn compression_policy() {
        let settings = CompressionSettings {
            level: 5,
            types: vec!["text/*".into(), "application/json".into()],
            min_size: 1024,
        };
        let mut r = ResponseHeader::build(200, None).unwrap();
        r.insert_header("content-type", "text/css; charset=utf-8")
            .unwrap();
        assert!(compressible(&r, &settings));
        r.insert_header("content-type", "image/png").unwrap();
        assert!(!compressible(&r, &settings));
        let mut partial = ResponseHeader::build(206, None).unwrap();
        partial.insert_header("content-type", "text/css").unwrap();
        assert!(!compressible(&partial, &settings));
    }

    #[test]
    fn no_transform_and_small_bodies_are_sent_as_they_are() {
        let settings = CompressionSettings {
            level: 5,
            types: vec!["text/*".into()],
            min_size: 1024,
        };
        let text = |pairs: &[(&str, &str)]| {
            let mut r = ResponseHeader::build(200, None).unwrap();
            r.insert_header("content-type", "text/plain").unwrap();
            for (n, v) in pairs {
                r.append_header(n.to_string(), *v).unwrap();
            }
            compressible(&r, &settings)
        };
        assert!(text(&[("content-length", "1024")]));
        assert!(text(&[]), "unknown length: compressed");
        assert!(!text(&[("content-length", "1023")]));
        assert!(!text(&[("cache-control", "public, No-Transform")]));
        assert!(!text(&[
            ("cache-control", "max-age=1"),
            ("cache-control", "no-transform")
        ]));
    }

    #[test]
    fn vary_is_appended_once() {
        let mut r = ResponseHeader::build(200, None).unwrap();
        kit::fields::append_vary(&mut r, "Origin");
        kit::fields::append_vary(&mut r, "Accept-Encoding");
        kit::fields::append_vary(&mut r, "origin");
        assert_eq!(r.headers.get("vary").unwrap(), "Origin, Accept-Encoding");
    }
}
