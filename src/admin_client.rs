//! The command line's side of the admin API (`assetgate purge`, `assetgate revoke`,
//! `assetgate assets …`): one `POST /v1/<action>` with a JSON body (or a `GET`) to a running
//! gateway's admin listener, over plain HTTP/1.1 (the admin listener is plain HTTP, meant for loopback or a private network).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long the call may take (a purge of everything walks the whole cache).
const TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer read.
const MAX_ANSWER: u64 = 1 << 20;

/// The admin API's answer: its status and JSON body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as sent.
    pub body: String,
}

/// Why the call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Connecting, sending or reading failed.
    #[error("admin API at {addr}: {source}")]
    Io {
        /// Where it was sent.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
    /// What came back is not an HTTP response.
    #[error("admin API at {0}: not an HTTP response")]
    Malformed(SocketAddr),
}

/// Sends `POST /v1/{action}` with `body` and the bearer `token` to the admin listener at
/// `addr`.
pub fn call(
    addr: SocketAddr,
    token: &str,
    action: &str,
    body: &serde_json::Value,
) -> Result<Answer, CallError> {
    request(addr, token, "POST", &format!("/v1/{action}"), Some(body))
}

/// Sends `GET {path}` (e.g. `/v1/assets?owner=u1`) with the bearer `token`.
pub fn get(addr: SocketAddr, token: &str, path: &str) -> Result<Answer, CallError> {
    request(addr, token, "GET", path, None)
}

/// One request to the admin listener: `method path`, with a JSON `body` when given.
pub fn request(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Answer, CallError> {
    let io = |source| CallError::Io { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(io)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut raw).map_err(io)?;
    parse_answer(&raw).ok_or(CallError::Malformed(addr))
}

/// The status and body of a whole HTTP/1.1 response (`Content-Length` framed, as the admin
/// listener answers).
fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let text = std::str::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(Answer {
        status,
        body: body.trim_end().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let a = parse_answer(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 3\r\n\r\n{}\n").unwrap();
        assert_eq!(a.status, 502);
        assert_eq!(a.body, "{}");
        assert!(parse_answer(b"garbage").is_none());
    }
}
