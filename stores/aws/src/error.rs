//! SDK errors → [`StoreError`]: what a retry later may fix is `Unavailable`
//! (the execute path answers 503 `backend_unavailable`), the rest `Internal`.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use runtime_core::store::StoreError;

/// Error codes AWS uses for throttling; they mean "later", not "never".
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "TooManyRequestsException",
    "TransactionInProgressException",
    "LimitExceededException",
];

/// Classifies an SDK error.
pub fn map_sdk<E>(what: &str, e: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = format!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(e));
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(detail)
        }
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or_default();
            if status >= 500 || status == 429 || THROTTLING.contains(&code) {
                StoreError::Unavailable(detail)
            } else {
                StoreError::Internal(detail)
            }
        }
        _ => StoreError::Internal(detail),
    }
}

/// The service's error code, when the service answered with one.
pub fn code<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Option<&str> {
    match e {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// The cancellation reason codes of a cancelled DynamoDB transaction (one per
/// item, in order), if the error is one.
pub fn cancel_codes(e: &SdkError<TransactWriteItemsError, HttpResponse>) -> Option<Vec<String>> {
    match e.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(t) => Some(
            t.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect(),
        ),
        _ => None,
    }
}

/// Whether the transaction's item `i` failed its condition.
pub fn condition_failed(codes: &[String], i: usize) -> bool {
    codes.get(i).is_some_and(|c| c == "ConditionalCheckFailed")
}
