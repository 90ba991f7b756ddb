//! Admin credentials: bearer tokens from env vars or files, several at once (rotation),
//! compared in constant time. Used by `access = "admin"` routes and the admin API.

use super::Reason;
use sha2::{Digest, Sha256};

/// The configured admin tokens, kept as SHA-256 digests (compared in constant time, so neither
/// a token's content nor its length leaks through timing).
#[derive(Clone, Default)]
pub struct AdminTokens {
    tokens: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.tokens.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("AdminTokens").field("ids", &ids).finish()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl AdminTokens {
    /// Tokens from `(id, secret)` pairs.
    pub fn new<'a>(tokens: impl IntoIterator<Item = (&'a str, &'a str)>) -> AdminTokens {
        AdminTokens {
            tokens: tokens
                .into_iter()
                .map(|(id, secret)| (id.to_string(), digest(secret.as_bytes())))
                .collect(),
        }
    }

    /// Whether no token is configured (then every admin request is refused).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of the token in `Authorization: Bearer TOKEN`. Every configured token is compared
    /// (no early exit), each in constant time.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<&str, Reason> {
        let bearer = super::bearer(headers)?;
        let presented = digest(bearer.ok_or(Reason::Missing)?.as_bytes());
        let mut found = None;
        for (id, known) in &self.tokens {
            if openssl::memcmp::eq(known, &presented) && found.is_none() {
                found = Some(id.as_str());
            }
        }
        found.ok_or(Reason::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.append(http::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn rotation_and_refusals() {
        let tokens = AdminTokens::new([("old", "token-old"), ("new", "token-new")]);
        assert_eq!(tokens.authenticate(&headers("Bearer token-new")), Ok("new"));
        assert_eq!(tokens.authenticate(&headers("bearer token-old")), Ok("old"));
        assert_eq!(
            tokens.authenticate(&headers("Bearer token-ne")),
            Err(Reason::BadSignature)
        );
        assert_eq!(
            tokens.authenticate(&headers("Basic dG9rZW4=")),
            Err(Reason::Missing)
        );
        assert_eq!(
            tokens.authenticate(&http::HeaderMap::new()),
            Err(Reason::Missing)
        );
        let mut two = headers("Bearer token-new");
        two.append(
            http::header::AUTHORIZATION,
            "Bearer token-old".parse().unwrap(),
        );
        assert_eq!(tokens.authenticate(&two), Err(Reason::Duplicated));
    }
}
