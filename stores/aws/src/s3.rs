//! Blobs in S3. Content-addressed keys are never overwritten with other bytes:
//! `PutObject` carries `If-None-Match: *` (S3 and moto 5.2.5 answer 412 when the
//! key exists), and only then are the stored bytes compared. Reads into a file
//! stream the body chunk by chunk (artifacts are tens of MB, uploads are untrusted).

use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;

use super::error::{code, map_sdk};
use runtime_core::store::stream::{left_nothing, read_into_file};
use runtime_core::store::{BlobStore, BoundedGet, FileFetch, PutOutcome, StoreError};

/// A [`BlobStore`] over one S3 bucket.
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3BlobStore {
    /// The store over `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3BlobStore {
            client,
            bucket: bucket.into(),
        }
    }
}

impl S3BlobStore {
    /// `GetObject` of `key`, or `None` when there is no such key.
    async fn get_object(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, StoreError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(map_sdk("GetObject", &e)),
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(out) = self.get_object(key).await? else {
            return Ok(None);
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Unavailable(format!("GetObject body of {key}: {e}")))?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn get_bounded(&self, key: &str, max_bytes: u64) -> Result<BoundedGet, StoreError> {
        use tokio::io::AsyncReadExt;
        let Some(out) = self.get_object(key).await? else {
            return Ok(BoundedGet::Missing);
        };
        // Refuse on the declared length before reading a byte of the body.
        if let Some(size) = out.content_length().and_then(|n| u64::try_from(n).ok())
            && size > max_bytes
        {
            return Ok(BoundedGet::TooLarge { size });
        }
        let mut bytes = Vec::new();
        out.body
            .into_async_read()
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| StoreError::Unavailable(format!("GetObject body of {key}: {e}")))?;
        if bytes.len() as u64 > max_bytes {
            return Ok(BoundedGet::TooLarge {
                size: bytes.len() as u64,
            });
        }
        Ok(BoundedGet::Found(bytes))
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put_created(key, bytes).await.map(|_| ())
    }

    async fn put_created(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await;
        match result {
            // The conditional put succeeded: this call created the object.
            Ok(_) => Ok(PutOutcome::Created),
            // The key exists (412), or a concurrent conditional write is in flight (409):
            // compare with what is stored.
            Err(e)
                if matches!(
                    code(&e),
                    Some("PreconditionFailed" | "ConditionalRequestConflict")
                ) =>
            {
                match self.get(key).await? {
                    Some(existing) if existing == bytes => Ok(PutOutcome::AlreadyStored),
                    Some(_) => Err(StoreError::Conflict(key.into())),
                    None => Err(StoreError::Unavailable(format!(
                        "PutObject {key}: conflicting write in flight"
                    ))),
                }
            }
            Err(e) => Err(map_sdk("PutObject", &e)),
        }
    }

    async fn get_to_file(
        &self,
        key: &str,
        dest: &Path,
        max_bytes: u64,
    ) -> Result<FileFetch, StoreError> {
        let Some(out) = self.get_object(key).await? else {
            return left_nothing(dest, FileFetch::Missing).await;
        };
        // Refuse on the declared length before reading a byte of the body.
        if let Some(size) = out.content_length().and_then(|n| u64::try_from(n).ok())
            && size > max_bytes
        {
            return left_nothing(dest, FileFetch::TooLarge { size }).await;
        }
        read_into_file(out.body.into_async_read(), key, dest, max_bytes).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_sdk("DeleteObject", &e))?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(map_sdk("HeadObject", &e)),
        }
    }
}
