//! Helpers shared by the fuzz targets (each includes this file as `mod common`): turning the
//! fuzzer's bytes into the shapes the gateway's parsers take (fields, header maps, requests to
//! verify). Not every target uses every helper.
#![allow(dead_code)]

use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// Splits `data` into at most `n` fields at `\n`; the last field keeps the rest (newlines
/// included). Missing fields are empty.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == b'\n').collect();
    out.resize(n, &[]);
    out
}

/// The fuzzer's bytes as text, invalid UTF-8 replaced (parsers of `&str` see only text).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Header fields from `name: value` lines (lines that are not a valid field are skipped, as
/// the HTTP parser in front of the gateway would refuse them).
pub fn headers(lines: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in lines.split(|b| *b == b'\n').take(64) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_bytes(value.trim_ascii()),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// The method a request byte picks, from the ones the gateway's routes allow.
pub fn method(pick: u8) -> Method {
    match pick % 5 {
        0 => Method::GET,
        1 => Method::HEAD,
        2 => Method::PUT,
        3 => Method::POST,
        _ => Method::DELETE,
    }
}

/// A fixed "now" for verifiers (2026-01-01T00:00:00Z): runs are reproducible.
pub const NOW: u64 = 1_767_225_600;

/// A request to `a.test` over TLS from 192.0.2.7 at [`NOW`], as a verifier sees it.
pub fn request<'a>(
    method: &'a Method,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
) -> access::AccessRequest<'a> {
    access::AccessRequest {
        method,
        host: "a.test",
        path,
        raw_path: path,
        query,
        headers,
        authority: "a.test",
        tls: true,
        client: Some("192.0.2.7".parse().expect("an address")),
        now: NOW,
    }
}
