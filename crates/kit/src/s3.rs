//! A body streamed into an S3 bucket as it comes, holding at most one part in memory: the
//! bytes are gathered into [`PART`]-sized parts; a body that never fills one is written with
//! one `PutObject` at [`Upload::finish`], a longer one as a multipart upload. An upload
//! dropped before it finished is aborted in the background, so the bucket frees its parts and
//! nothing appears at the key.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};

/// Size of each part of a multipart upload (S3 wants at least 5 MiB but for the last).
pub const PART: usize = 8 << 20;

/// Why an upload failed: the step and the store's answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}: {message}")]
pub struct UploadError {
    /// What was being done, e.g. `upload a part`.
    pub step: &'static str,
    /// The store's error, with its context.
    pub message: String,
}

impl UploadError {
    fn new(step: &'static str, e: impl std::fmt::Display) -> UploadError {
        UploadError {
            step,
            message: e.to_string(),
        }
    }
}

/// Where an upload goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The client, with the bucket's credentials.
    pub client: aws_sdk_s3::Client,
    /// The bucket.
    pub bucket: String,
    /// The full object key.
    pub key: String,
    /// `Content-Type` stored with the object, if any.
    pub content_type: Option<String>,
}

/// A multipart upload under way.
struct Multipart {
    id: String,
    parts: Vec<CompletedPart>,
}

/// One object being written.
pub struct Upload {
    target: Target,
    buffer: BytesMut,
    multipart: Option<Multipart>,
    written: u64,
}

impl Upload {
    /// A new upload to `target`; `size_hint` (when the length is known) sizes the first
    /// buffer.
    pub fn new(target: Target, size_hint: Option<usize>) -> Upload {
        Upload {
            target,
            buffer: BytesMut::with_capacity(size_hint.unwrap_or(0).min(PART)),
            multipart: None,
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Adds `data`; every full part is sent on before this returns.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), UploadError> {
        self.written += data.len() as u64;
        self.buffer.extend_from_slice(data);
        while self.buffer.len() >= PART {
            let part = self.buffer.split_to(PART).freeze();
            self.send_part(part).await?;
        }
        Ok(())
    }

    /// Writes what is left and makes the object visible at its key; returns its length.
    pub async fn finish(mut self) -> Result<u64, UploadError> {
        let rest = self.buffer.split().freeze();
        let t = &self.target;
        if self.multipart.is_none() {
            t.client
                .put_object()
                .bucket(&t.bucket)
                .key(&t.key)
                .set_content_type(t.content_type.clone())
                .body(ByteStream::from(rest))
                .send()
                .await
                .map_err(|e| UploadError::new("put", DisplayErrorContext(e)))?;
            return Ok(self.written);
        }
        if !rest.is_empty() {
            self.send_part(rest).await?;
        }
        let multipart = self.multipart.as_mut().expect("started above");
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(std::mem::take(&mut multipart.parts)))
            .build();
        let t = &self.target;
        t.client
            .complete_multipart_upload()
            .bucket(&t.bucket)
            .key(&t.key)
            .upload_id(&multipart.id)
            .multipart_upload(completed)
            .send()
            .await
            .map_err(|e| UploadError::new("finish an upload", DisplayErrorContext(e)))?;
        // Completed: nothing is left to abort.
        self.multipart = None;
        Ok(self.written)
    }

    /// Sends `data` as the next part, starting the multipart upload if need be.
    async fn send_part(&mut self, data: Bytes) -> Result<(), UploadError> {
        let t = &self.target;
        if self.multipart.is_none() {
            let started = t
                .client
                .create_multipart_upload()
                .bucket(&t.bucket)
                .key(&t.key)
                .set_content_type(t.content_type.clone())
                .send()
                .await
                .map_err(|e| UploadError::new("start an upload", DisplayErrorContext(e)))?;
            let id = started
                .upload_id()
                .ok_or_else(|| UploadError::new("start an upload", "no upload id"))?;
            self.multipart = Some(Multipart {
                id: id.to_string(),
                parts: Vec::new(),
            });
        }
        let multipart = self.multipart.as_mut().expect("started above");
        let number = multipart.parts.len() as i32 + 1;
        let done = t
            .client
            .upload_part()
            .bucket(&t.bucket)
            .key(&t.key)
            .upload_id(&multipart.id)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| UploadError::new("upload a part", DisplayErrorContext(e)))?;
        multipart.parts.push(
            CompletedPart::builder()
                .set_e_tag(done.e_tag().map(str::to_string))
                .part_number(number)
                .build(),
        );
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // An upload that was not completed is aborted, so the store frees its parts.
        let Some(multipart) = self.multipart.take() else {
            return;
        };
        let t = self.target.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = t
                    .client
                    .abort_multipart_upload()
                    .bucket(t.bucket)
                    .key(t.key)
                    .upload_id(multipart.id)
                    .send()
                    .await;
            });
        }
    }
}
