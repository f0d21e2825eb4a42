//! SDK errors → [`StoreError`]: what a retry later may fix is `Unavailable`
//! (the execute path answers 503 `backend_unavailable`), the rest `Internal`.
//!
//! A failure a person can fix (no credentials, a missing table, ...) is also
//! recognised here, where the typed SDK error still exists: its detail text
//! starts with `[aws.<problem>] <AWS code>: <AWS message> — ` before the SDK's
//! full report (`[aws.error]` when the problem is none of [`Problem`]'s), so the
//! problem survives the trip through [`StoreError`]'s text (and reads well in a
//! log), and [`explain`] turns it back into what happened and what to do, naming
//! the settings involved.

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
    let detail = format!(
        "{what}: [{}] {} — {}",
        classify(e).code(),
        summary(e),
        aws_sdk_s3::error::DisplayErrorContext(e)
    );
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

/// A failure of an AWS call that a person can fix, recognised in the SDK's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// No credentials were found (environment, profile, SSO, IMDS).
    NoCredentials,
    /// AWS refused the credentials: unknown key, wrong secret, expired token.
    BadCredentials,
    /// No region is configured.
    NoRegion,
    /// The region is not an AWS region, or the resource lives in another one.
    WrongRegion,
    /// The DynamoDB table does not exist (in this region).
    TableMissing,
    /// The S3 bucket does not exist.
    BucketMissing,
    /// The credentials are valid but not allowed to do this.
    AccessDenied,
    /// AWS throttled the calls.
    Throttled,
    /// The endpoint could not be reached (network, DNS, `AWS_ENDPOINT_URL`).
    Unreachable,
    /// Anything else.
    Other,
}

impl Problem {
    const ALL: [Problem; 9] = [
        Problem::NoCredentials,
        Problem::BadCredentials,
        Problem::NoRegion,
        Problem::WrongRegion,
        Problem::TableMissing,
        Problem::BucketMissing,
        Problem::AccessDenied,
        Problem::Throttled,
        Problem::Unreachable,
    ];

    /// The stable code a CLI shows (`error[aws.table_not_found]`).
    pub fn code(self) -> &'static str {
        match self {
            Problem::NoCredentials => "aws.no_credentials",
            Problem::BadCredentials => "aws.bad_credentials",
            Problem::NoRegion => "aws.no_region",
            Problem::WrongRegion => "aws.wrong_region",
            Problem::TableMissing => "aws.table_not_found",
            Problem::BucketMissing => "aws.bucket_not_found",
            Problem::AccessDenied => "aws.access_denied",
            Problem::Throttled => "aws.throttled",
            Problem::Unreachable => "aws.unreachable",
            Problem::Other => "aws.error",
        }
    }
}

/// Codes AWS answers when it does not accept the credentials themselves.
const BAD_CREDENTIALS: &[&str] = &[
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "ExpiredToken",
    "ExpiredTokenException",
    "TokenRefreshRequired",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "IncompleteSignature",
    "IncompleteSignatureException",
];

/// Codes AWS answers when valid credentials may not do what was asked.
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "Forbidden",
];

/// Codes that say the resource is in another region.
const OTHER_REGION: &[&str] = &[
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
];

/// The problem behind an SDK error.
pub fn classify<E>(e: &SdkError<E, HttpResponse>) -> Problem
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let (raw_code, _) = body_code(se.raw());
            let code = se.err().code().or(raw_code.as_deref()).unwrap_or_default();
            let service = std::any::type_name::<E>();
            if BAD_CREDENTIALS.contains(&code) {
                Problem::BadCredentials
            } else if ACCESS_DENIED.contains(&code) {
                Problem::AccessDenied
            } else if THROTTLING.contains(&code) || status == 429 {
                Problem::Throttled
            } else if code == "NoSuchBucket" {
                Problem::BucketMissing
            } else if code == "ResourceNotFoundException" && service.starts_with("aws_sdk_dynamodb")
            {
                Problem::TableMissing
            } else if OTHER_REGION.contains(&code) || status == 301 {
                Problem::WrongRegion
            } else if code.is_empty() && status == 403 {
                // A HEAD answer has no body to carry a code.
                Problem::AccessDenied
            } else {
                Problem::Other
            }
        }
        SdkError::TimeoutError(_) => Problem::Unreachable,
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            let chain = chain_text(e).to_ascii_lowercase();
            if chain.contains("region")
                && (chain.contains("missing")
                    || chain.contains("must be set")
                    || chain.contains("no region"))
            {
                Problem::NoRegion
            } else if chain.contains("credential") {
                Problem::NoCredentials
            } else if matches!(e, SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout()) {
                Problem::Unreachable
            } else {
                Problem::Other
            }
        }
        _ => Problem::Other,
    }
}

/// The code and message an error body names when the SDK could not read them
/// (an XML error document where the protocol is JSON, as some endpoints answer
/// an authentication failure).
fn body_code(raw: &HttpResponse) -> (Option<String>, Option<String>) {
    let Some(body) = raw.body().bytes() else {
        return (None, None);
    };
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find("</")? + start;
        Some(text[start..end].trim().to_string()).filter(|s| !s.is_empty())
    };
    (tag("Code"), tag("Message"))
}

/// Every message in an error's source chain, joined.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        text.push_str(": ");
        text.push_str(&s.to_string());
        next = s.source();
    }
    text
}

/// `Code: message` of a service error (one line, bounded), else the error's
/// innermost message.
fn summary<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = match e {
        SdkError::ServiceError(se) => {
            let (raw_code, raw_message) = body_code(se.raw());
            let code = se.err().code().or(raw_code.as_deref()).unwrap_or("");
            let message = se.err().message().or(raw_message.as_deref()).unwrap_or("");
            match (code, message) {
                ("", "") => format!("HTTP {}", se.raw().status().as_u16()),
                ("", m) => m.to_string(),
                (c, "") => c.to_string(),
                (c, m) => format!("{c}: {m}"),
            }
        }
        _ => {
            let mut last = e.to_string();
            let mut next = std::error::Error::source(e);
            while let Some(s) = next {
                last = s.to_string();
                next = s.source();
            }
            last
        }
    };
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    one_line.replace(" — ", " - ")
}

/// What happened and what to do about an AWS problem, in the words of the
/// settings a person controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The stable code, e.g. `aws.table_not_found`.
    pub code: &'static str,
    /// What happened, one line.
    pub what: String,
    /// What to do, one line.
    pub fix: String,
}

/// Whether `region` is shaped like an AWS region (`us-east-1`, `eu-central-2`,
/// `us-gov-west-1`, `cn-north-1`, `us-iso-east-1`).
fn region_shaped(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let ok_word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase());
    parts.len() >= 3
        && parts.len() <= 4
        && parts[0].len() == 2
        && ok_word(parts[0])
        && parts[1..parts.len() - 1].iter().all(|w| ok_word(w))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// The first AWS problem recorded in `text` (a [`StoreError`]'s message, or an
/// error chain holding one), explained with the names the environment gives
/// (`ALGA_TABLE`, `ALGA_BUCKET`, `AWS_REGION`, ...). `None` when `text` holds
/// no AWS problem a person can act on.
pub fn explain(text: &str) -> Option<Hint> {
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let start = text.find("[aws.")?;
    let rest = &text[start + 1..];
    let end = rest.find(']')?;
    let problem = Problem::ALL.into_iter().find(|p| p.code() == &rest[..end]);
    let said = rest[end + 1..]
        .split(" — ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let region_var = if env("AWS_REGION").is_some() {
        "AWS_REGION"
    } else {
        "AWS_DEFAULT_REGION"
    };
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
    // A region that is not one explains any failure: an unknown host, an
    // endpoint that refuses it, a table that is "missing".
    if let Some(r) = &region
        && !region_shaped(r)
    {
        return Some(Hint {
            code: Problem::WrongRegion.code(),
            what: format!("{region_var}={r:?} is not an AWS region"),
            fix: "set AWS_REGION to the region the stack is deployed in, e.g. AWS_REGION=us-east-1"
                .into(),
        });
    }
    let in_region = match &region {
        Some(r) => format!("in region {r}"),
        None => "in the profile's region".to_string(),
    };
    let table = env("ALGA_TABLE").unwrap_or_else(|| "(ALGA_TABLE unset)".into());
    let bucket = env("ALGA_BUCKET").unwrap_or_else(|| "(ALGA_BUCKET unset)".into());
    let upload = env("ALGA_UPLOAD_BUCKET").filter(|u| *u != bucket);
    let hint = |p: Problem, what: String, fix: &str| Hint {
        code: p.code(),
        what,
        fix: fix.to_string(),
    };
    Some(match problem? {
        Problem::NoCredentials => hint(
            Problem::NoCredentials,
            "no AWS credentials found".into(),
            "log in (aws sso login, or aws configure) and set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; without AWS, unset ALGA_BACKEND to use the local backend",
        ),
        Problem::BadCredentials => hint(
            Problem::BadCredentials,
            format!("AWS refused the credentials ({said})"),
            "the access key is unknown or expired, or its secret is wrong: log in again (aws sso login) or fix AWS_PROFILE / AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN",
        ),
        Problem::NoRegion => hint(
            Problem::NoRegion,
            "no AWS region is configured".into(),
            "set AWS_REGION to the region the stack is deployed in, e.g. AWS_REGION=us-east-1",
        ),
        Problem::WrongRegion => hint(
            Problem::WrongRegion,
            format!("the resource is not {in_region} ({said})"),
            "set AWS_REGION to the region the stack is deployed in",
        ),
        Problem::TableMissing => hint(
            Problem::TableMissing,
            format!("DynamoDB table {table:?} not found {in_region} (ALGA_TABLE)"),
            "set ALGA_TABLE to the stack's table (the TableName output) and AWS_REGION to the stack's region, or deploy the stack first (sam deploy)",
        ),
        Problem::BucketMissing => hint(
            Problem::BucketMissing,
            match &upload {
                Some(u) => format!(
                    "S3 bucket {bucket:?} (ALGA_BUCKET) or {u:?} (ALGA_UPLOAD_BUCKET) does not exist"
                ),
                None => format!("S3 bucket {bucket:?} does not exist (ALGA_BUCKET)"),
            },
            "set ALGA_BUCKET (and ALGA_UPLOAD_BUCKET) to the stack's buckets (the AlgaBucketName and UploadBucketName outputs), or deploy the stack first (sam deploy)",
        ),
        Problem::AccessDenied => hint(
            Problem::AccessDenied,
            format!("AWS denied the request ({said})"),
            "use credentials whose role may use the stack's table and buckets (the stack's deployer role), or add the missing permission to the role",
        ),
        Problem::Throttled => hint(
            Problem::Throttled,
            format!("AWS throttled the requests ({said})"),
            "wait a moment and retry; if it persists, raise the table's capacity or the account's service quota",
        ),
        Problem::Unreachable => hint(
            Problem::Unreachable,
            format!("AWS could not be reached ({said})"),
            "check the network, AWS_REGION and AWS_ENDPOINT_URL (when set, it must point at a running endpoint)",
        ),
        Problem::Other => return None,
    })
}
