//! Who may see a variant, decided from the asset store: a hash referenced by a public asset
//! is served to anyone; otherwise only with a valid credential (the route's access policy)
//! naming an owner of a private asset referencing it, or an admin token for an admin-private
//! one. What a client may keep follows: public variants are immutable for a year; a private
//! one is `private` and lives no longer than the credential that granted it.

use crate::assets::store::HashAccess;
use ::access::{Grant, Scheme};
use http::header;
use pingora::http::ResponseHeader;

/// What the access check established for a variant request (kept for the response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantAccess {
    /// A public asset references the hash.
    pub public: bool,
    /// When the granting credential expires (private variants).
    pub expires_at: Option<u64>,
    /// The URL said `auto`: the answer depends on `Accept`.
    pub negotiated: bool,
}

/// Longest client lifetime of any variant: a year, as `immutable` answers say.
pub const MAX_AGE: u64 = 31_536_000;

/// Whether `grant` may see a hash with these assets (not public).
pub fn permits(access: &HashAccess, grant: &Grant) -> bool {
    if grant.scheme == Scheme::Admin {
        return true;
    }
    grant
        .user
        .as_deref()
        .is_some_and(|user| access.owners.iter().any(|o| o == user))
}

/// Sets what a client may do with a variant answer (200 or 304) at `now` (Unix seconds):
/// `Vary: Accept` for negotiated formats; `Cache-Control: private` with the credential's
/// remaining lifetime for private originals (what the builder stored says `public`).
pub fn decorate(resp: &mut ResponseHeader, access: &VariantAccess, now: u64) {
    let status = resp.status.as_u16();
    if status != 200 && status != 304 {
        return;
    }
    if access.negotiated {
        kit::fields::append_vary(resp, "Accept");
    }
    if !access.public {
        let left = access
            .expires_at
            .map_or(0, |e| e.saturating_sub(now))
            .min(MAX_AGE);
        let _ = resp.insert_header(header::CACHE_CONTROL, format!("private, max-age={left}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::store::Blob;

    fn access(owners: &[&str]) -> HashAccess {
        HashAccess {
            blob: Blob {
                content_hash: "00".repeat(32),
                backend: String::new(),
                storage_key: "k".into(),
                size_bytes: 1,
                mime_type: "image/png".into(),
                width: None,
                height: None,
            },
            public: false,
            owners: owners.iter().map(|o| o.to_string()).collect(),
            admin_private: false,
        }
    }

    fn grant(scheme: Scheme, user: Option<&str>) -> Grant {
        Grant {
            scheme,
            key_id: None,
            user: user.map(str::to_string),
            token_id: None,
            expires_at: Some(1_000),
        }
    }

    #[test]
    fn owners_and_admins_only() {
        let a = access(&["alice"]);
        assert!(permits(&a, &grant(Scheme::Hmac, Some("alice"))));
        assert!(!permits(&a, &grant(Scheme::Hmac, Some("bob"))));
        assert!(!permits(&a, &grant(Scheme::CloudFront, None)));
        assert!(permits(&a, &grant(Scheme::Admin, None)));
    }

    #[test]
    fn private_answers_live_as_long_as_the_credential() {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        let _ = resp.insert_header(header::CACHE_CONTROL, "public, max-age=31536000, immutable");
        let private = VariantAccess {
            public: false,
            expires_at: Some(1_300),
            negotiated: true,
        };
        decorate(&mut resp, &private, 1_000);
        assert_eq!(resp.headers[header::CACHE_CONTROL], "private, max-age=300");
        assert_eq!(resp.headers[header::VARY], "Accept");
        let mut err = ResponseHeader::build(404, None).unwrap();
        decorate(&mut err, &private, 1_000);
        assert!(err.headers.get(header::VARY).is_none());
    }
}
