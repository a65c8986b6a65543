//! AWS mode: SDK clients, and the two interceptors that let API responses and requests use the
//! same JSON code paths as files.
//!
//! - [`Capture`] keeps the raw body of each successful response, so that GuardDuty
//!   `GetFindings`, Security Hub `GetFindings` and CloudTrail `LookupEvents` responses are
//!   decoded by the decoders that read those very response shapes from files (one decoder,
//!   tested on real records, for both modes).
//! - [`JsonBody`] replaces the body of a `BatchImportFindings` request with the findings as
//!   this tool writes them (the JSON that `correlate --asff` writes and the tests check against
//!   the Security Hub model), before the request is signed. There is no second mapping of
//!   findings onto the SDK's types to drift from the first.
//!
//! Clients come from the standard credential chain and region resolution (`aws-config`), which
//! honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`; retries use the SDK's standard
//! mode (throttling and 5xx, exponential backoff with jitter) with the configured attempts.

pub mod lease;
pub mod queue;
pub mod run;
pub mod sink;
pub mod sources;
pub mod store;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

pub use crate::config::RetryOptions;

/// The shared SDK configuration for one region.
pub async fn sdk_config(region: Option<&str>, retry: &RetryOptions) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(retry.max_attempts)
                .with_initial_backoff(retry.initial_backoff),
        )
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(retry.attempt_timeout)
                .connect_timeout(retry.attempt_timeout.min(Duration::from_secs(10)))
                .build(),
        );
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    loader.load().await
}

/// Appends `Service:Operation` of every call to a file (the configuration's
/// `CORRELATOR_RECORD_CALLS`, when set), so that tests can compare the calls the tool makes
/// with the IAM policy the deploy grants.
#[derive(Clone, Debug, Default)]
pub struct RecordCalls {
    path: Option<Arc<std::path::PathBuf>>,
}

impl RecordCalls {
    /// Records into `path`; None records nothing.
    pub fn new(path: Option<&std::path::Path>) -> RecordCalls {
        RecordCalls {
            path: path.map(|p| Arc::new(p.to_path_buf())),
        }
    }
}

impl Intercept for RecordCalls {
    fn name(&self) -> &'static str {
        "finding-correlator-record-calls"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let (Some(path), Some(meta)) = (&self.path, cfg.load::<Metadata>()) {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path.as_path())?;
            // One write per line: calls made at once (the queue's fetches) append whole
            // lines to the file opened for appending, where `writeln!` would write the
            // pieces one by one and let them interleave.
            f.write_all(format!("{}:{}\n", meta.service(), meta.name()).as_bytes())?;
        }
        Ok(())
    }
}

/// The clients of AWS mode, each recording its calls when asked (see [`RecordCalls`]).
pub mod clients {
    use super::RecordCalls;

    pub fn guardduty(
        conf: &aws_config::SdkConfig,
        record: &RecordCalls,
    ) -> aws_sdk_guardduty::Client {
        aws_sdk_guardduty::Client::from_conf(
            aws_sdk_guardduty::config::Builder::from(conf)
                .interceptor(record.clone())
                .build(),
        )
    }

    pub fn securityhub(
        conf: &aws_config::SdkConfig,
        record: &RecordCalls,
    ) -> aws_sdk_securityhub::Client {
        aws_sdk_securityhub::Client::from_conf(
            aws_sdk_securityhub::config::Builder::from(conf)
                .interceptor(record.clone())
                .build(),
        )
    }

    pub fn cloudtrail(
        conf: &aws_config::SdkConfig,
        record: &RecordCalls,
    ) -> aws_sdk_cloudtrail::Client {
        aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::config::Builder::from(conf)
                .interceptor(record.clone())
                .build(),
        )
    }

    pub fn ecs(conf: &aws_config::SdkConfig, record: &RecordCalls) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(conf)
                .interceptor(record.clone())
                .build(),
        )
    }

    /// Path-style addressing, which S3 itself and emulators on loopback both accept.
    pub fn s3(conf: &aws_config::SdkConfig, record: &RecordCalls) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(conf)
                .force_path_style(true)
                .interceptor(record.clone())
                .build(),
        )
    }

    pub fn sqs(conf: &aws_config::SdkConfig, record: &RecordCalls) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(conf)
                .interceptor(record.clone())
                .build(),
        )
    }

    pub fn sts(conf: &aws_config::SdkConfig, record: &RecordCalls) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(conf)
                .interceptor(record.clone())
                .build(),
        )
    }
}

/// Keeps the raw body of every successful response of the operation it is attached to.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Capture {
    /// The bodies captured so far, oldest first; empties the capture.
    pub fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.bodies.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "finding-correlator-capture"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.output_or_error().is_ok()
            && let Some(bytes) = context.response().body().bytes()
        {
            self.bodies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(bytes.to_vec());
        }
        Ok(())
    }
}

/// Replaces a request's JSON body before it is signed (every attempt).
#[derive(Clone, Debug)]
pub struct JsonBody {
    body: Arc<Vec<u8>>,
}

impl JsonBody {
    pub fn new(body: Vec<u8>) -> JsonBody {
        JsonBody {
            body: Arc::new(body),
        }
    }
}

impl Intercept for JsonBody {
    fn name(&self) -> &'static str {
        "finding-correlator-json-body"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        *request.body_mut() = SdkBody::from(self.body.as_slice().to_vec());
        request
            .headers_mut()
            .insert("content-length", self.body.len().to_string());
        Ok(())
    }
}

/// The HTTP response an SDK error carries.
pub type HttpResponse = aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// The region S3 names in `x-amz-bucket-region` when it refused a call because the bucket is
/// in another region than the one the call was signed for (`asked`): a 301 redirect (path-style
/// requests to the older regions), a 307 (a bucket just created), or a 400 (the regions opened
/// since 2019, and a signature for the wrong region). None for any other answer.
fn bucket_elsewhere<E>(
    e: &aws_sdk_s3::error::SdkError<E, HttpResponse>,
    asked: Option<&aws_config::Region>,
) -> Option<String> {
    let raw = e.raw_response()?;
    if !matches!(raw.status().as_u16(), 301 | 307 | 400) {
        return None;
    }
    let region = raw.headers().get("x-amz-bucket-region")?.trim();
    (!region.is_empty() && asked.is_none_or(|a| a.as_ref() != region)).then(|| region.to_string())
}

/// `client` as it is, for the bucket's `region` (what [`bucket_elsewhere`] named).
fn s3_in_region(client: &aws_sdk_s3::Client, region: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        client
            .config()
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build(),
    )
}

/// The S3 clients of a run's buckets: the first configured region's, until S3 names another
/// region for a bucket ([`bucket_elsewhere`]); that region's for that bucket from then
/// on, for every call.
pub struct BucketClient {
    first: aws_sdk_s3::Client,
    moved: std::sync::Mutex<std::collections::HashMap<String, aws_sdk_s3::Client>>,
}

impl BucketClient {
    pub fn new(first: aws_sdk_s3::Client) -> BucketClient {
        BucketClient {
            first,
            moved: Default::default(),
        }
    }

    /// The client to call `bucket` with.
    pub fn get(&self, bucket: &str) -> aws_sdk_s3::Client {
        self.moved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(bucket)
            .unwrap_or(&self.first)
            .clone()
    }

    /// Whether S3 refused `e`, a call on `bucket` made with `asked`, naming another region
    /// for the bucket: then `bucket`'s client is one of that region, and the call is to be
    /// made again, once.
    pub fn moved<E>(
        &self,
        e: &aws_sdk_s3::error::SdkError<E, HttpResponse>,
        bucket: &str,
        asked: &aws_sdk_s3::Client,
    ) -> bool {
        match bucket_elsewhere(e, asked.config().region()) {
            Some(region) => {
                self.move_to(bucket, &region);
                true
            }
            None => false,
        }
    }

    /// From now on, calls on `bucket` are made in `region`, where S3 said it is.
    fn move_to(&self, bucket: &str, region: &str) {
        let mut moved = self.moved.lock().unwrap_or_else(|e| e.into_inner());
        if moved
            .get(bucket)
            .is_some_and(|c| c.config().region().is_some_and(|r| r.as_ref() == region))
        {
            return;
        }
        tracing::info!(
            bucket,
            region,
            "the bucket is in another region than the first configured: calling it there"
        );
        moved.insert(bucket.to_string(), s3_in_region(&self.first, region));
    }
}

/// The error code and message of an SDK error, for logs and reports.
pub fn describe_error<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_sdk_s3::error::SdkError;
    match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            format!(
                "{}: {}",
                err.code().unwrap_or("error"),
                err.message().unwrap_or("no message")
            )
        }
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(d) => match d.as_connector_error() {
            Some(c) => format!("could not send the request: {}", chain(c)),
            None => "could not send the request".into(),
        },
        SdkError::ResponseError(_) => format!("unreadable response: {}", chain(e)),
        SdkError::ConstructionFailure(_) => "could not build the request".into(),
        other => other.to_string(),
    }
}

/// An error's message and its sources', outermost first, joined by `: ` (a connection
/// failure reads `io error: client error (Connect): tcp connect error: Connection refused (os
/// error 111)`), with repeats left out: what a person can act on, not the SDK's structs.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}
