//! CORS answers, decided from a route's [`Cors`] policy and the request's headers (pure).

use crate::config::{AllowedOrigins, Cors};
use http::header::{self, HeaderName, HeaderValue};

/// Header list produced by the CORS decisions.
pub type Headers = Vec<(HeaderName, HeaderValue)>;

/// Request headers a browser may send without asking (CORS-safelisted, plus Range).
const SAFELISTED: &[&str] = &[
    "accept",
    "accept-language",
    "content-language",
    "content-type",
    "range",
];

fn allowed_origin(cors: &Cors, origin: &str) -> bool {
    match &cors.origins {
        AllowedOrigins::Any => true,
        AllowedOrigins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
    }
}

/// Whether the answer depends on the Origin header (so caches must key on it).
pub fn varies_on_origin(cors: &Cors) -> bool {
    !matches!(cors.origins, AllowedOrigins::Any)
}

/// The requested headers echoed back in a preflight answer (the only value joined per request;
/// the policy's own lists are joined once at config load).
fn join(items: &[String]) -> Option<HeaderValue> {
    let text = items.join(", ");
    HeaderValue::from_str(&text)
        .ok()
        .filter(|_| !text.is_empty())
}

fn origin_headers(cors: &Cors, origin: &str) -> Headers {
    let mut out = Headers::new();
    if matches!(cors.origins, AllowedOrigins::Any) {
        out.push((
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ));
    } else if let Ok(v) = HeaderValue::from_str(origin) {
        out.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, v));
    }
    if cors.allow_credentials {
        out.push((
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        ));
    }
    out
}

/// Headers for an actual (non-preflight) response. `Vary: Origin` is not included here; see
/// [`varies_on_origin`].
pub fn response_headers(cors: &Cors, origin: Option<&str>) -> Headers {
    let Some(origin) = origin.filter(|o| allowed_origin(cors, o)) else {
        return Headers::new();
    };
    let mut out = origin_headers(cors, origin);
    if let Some(v) = &cors.expose_value {
        out.push((header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone()));
    }
    out
}

/// Answer to a preflight request.
#[derive(Debug, PartialEq, Eq)]
pub enum Preflight {
    /// 204 with these headers.
    Allowed(Headers),
    /// The origin, method or a header is not allowed: 403.
    Rejected,
}

/// Decides a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`).
pub fn preflight(
    cors: &Cors,
    origin: &str,
    method: &str,
    request_headers: Option<&str>,
) -> Preflight {
    if !allowed_origin(cors, origin) || !cors.methods.iter().any(|m| m.as_str() == method) {
        return Preflight::Rejected;
    }
    let requested: Vec<String> = request_headers
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let permitted = |h: &String| {
        SAFELISTED.contains(&h.as_str()) || cors.allow_headers.iter().any(|a| a.as_str() == h)
    };
    if !requested.iter().all(permitted) {
        return Preflight::Rejected;
    }
    let mut out = origin_headers(cors, origin);
    if let Some(v) = &cors.methods_value {
        out.push((header::ACCESS_CONTROL_ALLOW_METHODS, v.clone()));
    }
    if let Some(v) = join(&requested) {
        out.push((header::ACCESS_CONTROL_ALLOW_HEADERS, v));
    }
    if let Some(age) = cors.max_age {
        out.push((header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age)));
    }
    Preflight::Allowed(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn cors(origins: AllowedOrigins, credentials: bool) -> Cors {
        Cors {
            origins,
            methods: vec![Method::GET, Method::HEAD],
            methods_value: Some(HeaderValue::from_static("GET, HEAD")),
            allow_headers: vec![HeaderName::from_static("x-token")],
            expose_headers: vec![header::ETAG],
            expose_value: Some(HeaderValue::from_static("etag")),
            allow_credentials: credentials,
            max_age: Some(600),
        }
    }

    #[test]
    fn listed_origins() {
        let c = cors(
            AllowedOrigins::List(vec!["https://app.example.com".into()]),
            true,
        );
        let h = response_headers(&c, Some("https://app.example.com"));
        assert!(h.contains(&(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("https://app.example.com")
        )));
        assert!(h
            .iter()
            .any(|(n, _)| n == header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        assert!(response_headers(&c, Some("https://evil.example")).is_empty());
        assert!(varies_on_origin(&c));
    }

    #[test]
    fn preflights() {
        let c = cors(AllowedOrigins::Any, false);
        assert!(matches!(
            preflight(&c, "https://x.org", "GET", Some("Range, X-Token")),
            Preflight::Allowed(_)
        ));
        assert_eq!(
            preflight(&c, "https://x.org", "PUT", None),
            Preflight::Rejected
        );
        assert_eq!(
            preflight(&c, "https://x.org", "GET", Some("authorization")),
            Preflight::Rejected
        );
        assert!(!varies_on_origin(&c));
    }
}
