//! The Security Hub sink: `BatchImportFindings` in batches of at most 100 findings and 6 MB,
//! at most 10 calls a second. Throttling and 5xx are retried by the SDK (standard mode:
//! exponential backoff with jitter); findings the service reports in `FailedFindings` with a
//! transient error are sent again, the others are reported with their error codes. The run
//! saves a finding as written only when the service acknowledged it, so a finding that could
//! not be written is sent again by the next run, never lost.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::state::KeptFinding;

use super::sources::RateLimit;
use super::{JsonBody, describe_error};

/// Findings per `BatchImportFindings` call (the API's limit).
pub const MAX_BATCH: usize = 100;
/// Bytes per call: the API takes 6 MB; room is left for the envelope.
pub const MAX_BATCH_BYTES: usize = 6 * 1024 * 1024 - 64 * 1024;

/// What the sink did.
#[derive(Debug, Default, serde::Serialize)]
pub struct SinkReport {
    pub calls: u64,
    /// Findings the service acknowledged.
    pub imported: Vec<String>,
    /// Findings not written: id, error code, message.
    pub failed: Vec<(String, String, String)>,
    /// Findings sent again after a transient `FailedFindings` error.
    pub resent: u64,
}

/// A whole call failed after the SDK's retries: nothing of the batch is known written.
#[derive(Debug, thiserror::Error)]
#[error("securityhub BatchImportFindings failed after retries: {message}")]
pub struct SinkError {
    pub message: String,
    /// What was acknowledged before the failure.
    pub report: SinkReport,
}

/// `FailedFindings` error codes worth another try.
fn transient(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "TooManyRequestsException"
            | "LimitExceededException"
            | "InternalException"
            | "InternalError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
    )
}

/// Splits findings into batches within the count and byte limits.
pub fn batches(findings: &[KeptFinding]) -> Vec<Vec<(String, Vec<u8>)>> {
    let mut out: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
    let mut size = 0;
    for f in findings {
        let id = f.id().unwrap_or_default();
        let bytes = f.text().as_bytes().to_vec();
        let fits = out
            .last()
            .is_some_and(|b| b.len() < MAX_BATCH && size + bytes.len() < MAX_BATCH_BYTES);
        if !fits {
            out.push(Vec::new());
            size = 0;
        }
        size += bytes.len() + 1;
        out.last_mut().expect("pushed above").push((id, bytes));
    }
    out
}

fn body(batch: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::with_capacity(batch.iter().map(|(_, f)| f.len() + 1).sum::<usize>() + 16);
    b.extend_from_slice(b"{\"Findings\":[");
    for (i, (_, f)) in batch.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(f);
    }
    b.extend_from_slice(b"]}");
    b
}

/// Writes `findings` to Security Hub.
///
/// # Errors
/// [`SinkError`] when a call fails after the SDK's retries; its report says what was
/// acknowledged before.
pub async fn write(
    client: &aws_sdk_securityhub::Client,
    findings: &[KeptFinding],
    rate: &RateLimit,
    resend_attempts: u32,
    resend_backoff: Duration,
) -> Result<SinkReport, SinkError> {
    let mut report = SinkReport::default();
    for batch in batches(findings) {
        let mut pending = batch;
        let mut attempt = 0;
        while !pending.is_empty() {
            rate.wait().await;
            let sent = client
                .batch_import_findings()
                .set_findings(Some(Vec::new()))
                .customize()
                .interceptor(JsonBody::new(body(&pending)))
                .send()
                .await;
            report.calls += 1;
            let out = match sent {
                Ok(out) => out,
                Err(e) => {
                    return Err(SinkError {
                        message: describe_error(&e),
                        report,
                    });
                }
            };
            let failed: BTreeMap<String, (String, String)> = out
                .failed_findings()
                .iter()
                .map(|f| {
                    (
                        f.id().unwrap_or_default().to_string(),
                        (
                            f.error_code().unwrap_or("Unknown").to_string(),
                            f.error_message().unwrap_or_default().to_string(),
                        ),
                    )
                })
                .collect();
            let mut again = Vec::new();
            for (id, bytes) in pending {
                match failed.get(&id) {
                    None => report.imported.push(id),
                    Some((code, _)) if transient(code) && attempt + 1 < resend_attempts => {
                        again.push((id, bytes));
                    }
                    Some((code, message)) => {
                        tracing::error!(finding = %id, code = %code, message = %message, "Security Hub did not import a finding");
                        report.failed.push((id, code.clone(), message.clone()));
                    }
                }
            }
            if !again.is_empty() {
                report.resent += again.len() as u64;
                attempt += 1;
                let wait = resend_backoff * 2u32.saturating_pow(attempt - 1);
                tracing::warn!(
                    findings = again.len(),
                    attempt,
                    "Security Hub failed part of a batch with a transient error; sending it again"
                );
                tokio::time::sleep(wait).await;
            }
            pending = again;
        }
    }
    Ok(report)
}

/// [`crate::sinks::SinkConfig::SecurityHub`], built: writes through [`write`] on `runtime`.
pub struct SecurityHubSink {
    pub client: aws_sdk_securityhub::Client,
    pub rate: RateLimit,
    /// Sends of a finding that failed with a transient error, the first included.
    pub resend_attempts: u32,
    pub resend_backoff: Duration,
    pub runtime: tokio::runtime::Handle,
}

impl crate::sinks::Deliver for SecurityHubSink {
    fn deliver(&mut self, findings: &[KeptFinding]) -> anyhow::Result<crate::sinks::Delivered> {
        let result = self.runtime.block_on(write(
            &self.client,
            findings,
            &self.rate,
            self.resend_attempts,
            self.resend_backoff,
        ));
        // On an error nothing is saved: the next run starts from the same state and sends
        // every finding of this one again (imports are idempotent).
        let r = result.map_err(|e| anyhow::Error::new(e).context("writing findings"))?;
        Ok(crate::sinks::Delivered {
            calls: r.calls,
            imported: r.imported.len(),
            failed: r.failed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn batches_keep_to_100_findings_and_6_mb() {
        let small: Vec<KeptFinding> = (0..250)
            .map(|i| KeptFinding::of(&serde_json::json!({"Id": format!("f{i}"), "Title": "t"})))
            .collect();
        let b = batches(&small);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        let big_text = "x".repeat(200_000);
        let big: Vec<KeptFinding> = (0..70)
            .map(|i| {
                KeptFinding::of(
                    &serde_json::json!({"Id": format!("g{i}"), "Description": big_text}),
                )
            })
            .collect();
        let b = batches(&big);
        assert!(b.len() >= 3, "{}", b.len());
        for batch in &b {
            assert!(
                body(batch).len() <= MAX_BATCH_BYTES + 64,
                "{}",
                body(batch).len()
            );
        }
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 70);
        let v: Value = serde_json::from_slice(&body(&b[0])).unwrap();
        assert_eq!(v["Findings"][0]["Id"], "g0");
    }
}
