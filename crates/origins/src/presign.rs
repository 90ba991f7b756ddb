//! Presigned POST uploads: a SigV4 POST policy a browser sends as a form straight to the
//! bucket, for one key the server chose, with the bucket itself enforcing the size range and
//! the `Content-Type` (the policy's conditions), until it expires.

use super::s3::S3Backend;
use super::OriginalError;
use base64::Engine;
use std::time::{Duration, SystemTime};

/// What a presigned POST may upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostConditions {
    /// The key (relative to the backend's `key_prefix`).
    pub key: String,
    /// Largest body the bucket takes (`content-length-range` 0..=max).
    pub max_size: u64,
    /// The `Content-Type` the form must send, if any.
    pub content_type: Option<TypeCondition>,
    /// How long the policy is good for.
    pub expires_in: Duration,
}

/// A `Content-Type` condition of a POST policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeCondition {
    /// Exactly this type (the form field is filled in).
    Exactly(String),
    /// A type starting with this, e.g. `image/` (the client fills the field in).
    StartsWith(String),
}

/// A presigned POST: where the form goes and the fields it must carry before the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPost {
    /// The bucket's URL.
    pub url: String,
    /// The form fields, in order (`key`, `policy`, `x-amz-*`, …); the file goes last.
    pub fields: Vec<(String, String)>,
    /// When the policy expires, Unix seconds.
    pub expires_at: u64,
}

/// `2026-12-07T16:00:00Z` and `20261207T160000Z` for `t`.
fn iso8601(t: SystemTime) -> (String, String) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = aws_sdk_s3::primitives::DateTime::from_secs(secs as i64)
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default();
    let compact: String = text.chars().filter(|c| *c != '-' && *c != ':').collect();
    (text, compact)
}

impl S3Backend {
    /// A POST policy for `conditions`, signed with the backend's credentials now.
    pub async fn presign_post(
        &self,
        conditions: &PostConditions,
    ) -> Result<PresignedPost, OriginalError> {
        let creds = self
            .current_credentials()
            .await
            .map_err(|e| OriginalError::Failed(e.to_string()))?
            .ok_or_else(|| {
                OriginalError::Failed("presigned uploads need the backend's credentials".into())
            })?;
        Ok(self.post_policy(
            conditions,
            creds.access_key_id(),
            creds.secret_access_key(),
            creds.session_token(),
            SystemTime::now(),
        ))
    }

    /// The POST policy for `conditions` signed with these credentials at `now`.
    pub fn post_policy(
        &self,
        conditions: &PostConditions,
        access_key: &str,
        secret: &str,
        session_token: Option<&str>,
        now: SystemTime,
    ) -> PresignedPost {
        let expires = now + conditions.expires_in.min(Duration::from_secs(7 * 86_400));
        let (_, amz_date) = iso8601(now);
        let (expiration, _) = iso8601(expires);
        let region = self.region();
        let credential = format!("{access_key}/{}/{region}/s3/aws4_request", &amz_date[..8]);
        let key = self.key_in_prefix(&conditions.key);
        let mut fields: Vec<(String, String)> = vec![("key".into(), key.clone())];
        let mut rules = vec![
            serde_json::json!({ "bucket": self.bucket() }),
            serde_json::json!({ "key": key }),
            serde_json::json!(["content-length-range", 0, conditions.max_size]),
        ];
        match &conditions.content_type {
            Some(TypeCondition::Exactly(t)) => {
                rules.push(serde_json::json!({ "Content-Type": t }));
                fields.push(("Content-Type".into(), t.clone()));
            }
            Some(TypeCondition::StartsWith(p)) => {
                rules.push(serde_json::json!(["starts-with", "$Content-Type", p]));
            }
            None => {}
        }
        let mut signed = vec![
            (
                "x-amz-algorithm".to_string(),
                "AWS4-HMAC-SHA256".to_string(),
            ),
            ("x-amz-credential".to_string(), credential),
            ("x-amz-date".to_string(), amz_date),
        ];
        if let Some(token) = session_token {
            signed.push(("x-amz-security-token".into(), token.to_string()));
        }
        for (name, value) in &signed {
            rules.push(serde_json::json!({ name.as_str(): value }));
        }
        let policy = serde_json::json!({ "expiration": expiration, "conditions": rules });
        let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
        let signing_key = aws_sigv4::sign::v4::generate_signing_key(secret, now, region, "s3");
        let signature = aws_sigv4::sign::v4::calculate_signature(signing_key, policy.as_bytes());
        fields.extend(signed);
        fields.push(("policy".into(), policy));
        fields.push(("x-amz-signature".into(), signature));
        PresignedPost {
            url: self.bucket_url(),
            fields,
            expires_at: expires
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}
