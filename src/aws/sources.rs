//! Polling sources of AWS mode. Each returns the raw bodies of the responses it read, decoded
//! once, later, by the same decoders as files (which also tell where the next poll resumes).
//!
//! - GuardDuty: `ListDetectors`, `ListFindings` with an `updatedAt` criterion from the
//!   checkpoint (minus an overlap, so findings updated while the last run read are not
//!   missed), paginated, then `GetFindings` in batches of 50. Archived findings are left out
//!   unless asked for. Run from the delegated administrator, the detector's findings include
//!   the member accounts'.
//! - Security Hub: `GetFindings` filtered on `UpdatedAt` and active records, paginated; this
//!   tool's own findings are dropped (by product name, also client-side, since not every
//!   endpoint applies filters), so it never re-ingests what it wrote.
//! - CloudTrail: `LookupEvents` from the checkpoint, paginated, at most 2 calls a second per
//!   region (the API's limit), by event name when the rules name every event they need
//!   exactly, else all management events; each event's id and time are handed on too, for
//!   the checkpoint (see `run::lookup_progress`).
//! - CloudTrail trail logs in S3: every account and region folder the trail holds.

use std::time::Duration;

use aws_smithy_types::DateTime;

use super::Capture;
use crate::time::Millis;

/// What a poll read.
#[derive(Debug, Default)]
pub struct Polled {
    /// `(name, body)` of each response, in the order read.
    pub bodies: Vec<(String, Vec<u8>)>,
    /// API calls made (pages included).
    pub calls: u64,
    /// CloudTrail `LookupEvents`: the `EventId` and `EventTime` of each event read.
    pub events: Vec<(String, Millis)>,
}

/// A source call that failed after the SDK's retries.
#[derive(Debug, thiserror::Error)]
#[error("{source_name} {region}: {operation} failed: {message}")]
pub struct SourceError {
    pub source_name: &'static str,
    pub region: String,
    pub operation: &'static str,
    pub message: String,
}

impl SourceError {
    fn new(
        source_name: &'static str,
        region: &str,
        operation: &'static str,
        message: String,
    ) -> Self {
        SourceError {
            source_name,
            region: region.to_string(),
            operation,
            message,
        }
    }
}

fn sdk_message<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    super::describe_error(e)
}

/// Polls GuardDuty findings updated since `since`.
pub async fn guardduty(
    client: &aws_sdk_guardduty::Client,
    region: &str,
    since: Millis,
    include_archived: bool,
) -> Result<Polled, SourceError> {
    use aws_sdk_guardduty::types::{Condition, FindingCriteria, SortCriteria};
    let err = |operation, message| SourceError::new("guardduty", region, operation, message);
    let mut out = Polled::default();
    let mut detectors = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_detectors()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| err("ListDetectors", sdk_message(&e)))?;
        out.calls += 1;
        detectors.extend(page.detector_ids().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    if detectors.is_empty() {
        tracing::warn!(
            region,
            "GuardDuty has no detector in this region: nothing to read"
        );
    }
    for detector in detectors {
        let mut criteria = FindingCriteria::builder().criterion(
            "updatedAt",
            Condition::builder().greater_than_or_equal(since).build(),
        );
        if !include_archived {
            criteria = criteria.criterion(
                "service.archived",
                Condition::builder().equals("false").build(),
            );
        }
        let criteria = criteria.build();
        let mut ids: Vec<String> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .list_findings()
                .detector_id(&detector)
                .finding_criteria(criteria.clone())
                .sort_criteria(
                    SortCriteria::builder()
                        .attribute_name("updatedAt")
                        .order_by(aws_sdk_guardduty::types::OrderBy::Asc)
                        .build(),
                )
                .max_results(50)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| err("ListFindings", sdk_message(&e)))?;
            out.calls += 1;
            ids.extend(page.finding_ids().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        for (i, chunk) in ids.chunks(50).enumerate() {
            let capture = Capture::default();
            client
                .get_findings()
                .detector_id(&detector)
                .set_finding_ids(Some(chunk.to_vec()))
                .customize()
                .interceptor(capture.clone())
                .send()
                .await
                .map_err(|e| err("GetFindings", sdk_message(&e)))?;
            out.calls += 1;
            for body in capture.take() {
                out.bodies.push((
                    format!("guardduty/{region}/{detector}/GetFindings#{i}"),
                    body,
                ));
            }
        }
    }
    Ok(out)
}

/// Polls Security Hub findings updated in `[since, until]`, other than this tool's own.
pub async fn securityhub(
    client: &aws_sdk_securityhub::Client,
    region: &str,
    since: Millis,
    until: Millis,
    own_product_name: &str,
) -> Result<Polled, SourceError> {
    use aws_sdk_securityhub::types::{
        AwsSecurityFindingFilters, DateFilter, StringFilter, StringFilterComparison,
    };
    let filters = AwsSecurityFindingFilters::builder()
        .updated_at(
            DateFilter::builder()
                .start(crate::time::format_rfc3339(since))
                .end(crate::time::format_rfc3339(until))
                .build(),
        )
        .record_state(
            StringFilter::builder()
                .value("ACTIVE")
                .comparison(StringFilterComparison::Equals)
                .build(),
        )
        .product_name(
            StringFilter::builder()
                .value(own_product_name)
                .comparison(StringFilterComparison::NotEquals)
                .build(),
        )
        .build();
    let mut out = Polled::default();
    let mut token: Option<String> = None;
    let mut page_no = 0;
    loop {
        let capture = Capture::default();
        let page = client
            .get_findings()
            .filters(filters.clone())
            .max_results(100)
            .set_next_token(token.take())
            .customize()
            .interceptor(capture.clone())
            .send()
            .await
            .map_err(|e| SourceError::new("securityhub", region, "GetFindings", sdk_message(&e)))?;
        out.calls += 1;
        for body in capture.take() {
            if let Some(kept) = without_own_findings(&body, own_product_name) {
                out.bodies
                    .push((format!("securityhub/{region}/GetFindings#{page_no}"), kept));
            }
        }
        page_no += 1;
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// The body without the findings `own_product_name` wrote; None when nothing is left.
fn without_own_findings(body: &[u8], own_product_name: &str) -> Option<Vec<u8>> {
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        // Not JSON: handed on as it is, so the decoder reports it.
        return Some(body.to_vec());
    };
    let findings = doc.get_mut("Findings")?.as_array_mut()?;
    findings.retain(|f| f.get("ProductName").and_then(|p| p.as_str()) != Some(own_product_name));
    if findings.is_empty() {
        return None;
    }
    serde_json::to_vec(&doc).ok()
}

/// At most `per_second` calls a second.
pub struct RateLimit {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl RateLimit {
    pub fn new(per_second: f64) -> RateLimit {
        RateLimit {
            interval: Duration::from_secs_f64(1.0 / per_second.max(0.001)),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for the next slot.
    pub async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = tokio::time::Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + self.interval;
    }
}

/// Polls CloudTrail management events in `[since, until]`: one lookup per event name in
/// `names`, or all events when `names` is None.
pub async fn cloudtrail(
    client: &aws_sdk_cloudtrail::Client,
    region: &str,
    since: Millis,
    until: Millis,
    names: Option<&[String]>,
    rate: &RateLimit,
) -> Result<Polled, SourceError> {
    use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
    let mut out = Polled::default();
    let lookups: Vec<Option<&String>> = match names {
        Some(n) => n.iter().map(Some).collect(),
        None => vec![None],
    };
    for name in lookups {
        let mut token: Option<String> = None;
        let mut page_no = 0;
        loop {
            rate.wait().await;
            let capture = Capture::default();
            let mut call = client
                .lookup_events()
                .start_time(DateTime::from_millis(since))
                .end_time(DateTime::from_millis(until))
                .max_results(50)
                .set_next_token(token.take());
            if let Some(n) = name {
                call = call.lookup_attributes(
                    LookupAttribute::builder()
                        .attribute_key(LookupAttributeKey::EventName)
                        .attribute_value(n)
                        .build()
                        .map_err(|e| {
                            SourceError::new("cloudtrail", region, "LookupEvents", e.to_string())
                        })?,
                );
            }
            let page = call
                .customize()
                .interceptor(capture.clone())
                .send()
                .await
                .map_err(|e| {
                    SourceError::new("cloudtrail", region, "LookupEvents", sdk_message(&e))
                })?;
            out.calls += 1;
            let label = name.map_or("all", String::as_str);
            for body in capture.take() {
                out.events.extend(event_ids(&body));
                out.bodies.push((
                    format!("cloudtrail/{region}/LookupEvents/{label}#{page_no}"),
                    body,
                ));
            }
            page_no += 1;
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    Ok(out)
}

/// The `EventId` and `EventTime` of each event of a `LookupEvents` response (the decoders
/// read the events themselves; an event without both is left to them to report).
fn event_ids(body: &[u8]) -> Vec<(String, Millis)> {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(rename = "Events", default)]
        events: Vec<Event>,
    }
    #[derive(serde::Deserialize)]
    struct Event {
        #[serde(rename = "EventId")]
        id: Option<String>,
        #[serde(rename = "EventTime")]
        time: Option<f64>,
    }
    serde_json::from_slice::<Page>(body)
        .map(|p| {
            p.events
                .into_iter()
                .filter_map(|e| Some((e.id?, crate::time::from_epoch_number(e.time?)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// What an S3 trail poll read, per account and region checkpoint.
#[derive(Debug, Default)]
pub struct TrailPolled {
    pub polled: Polled,
    /// Object keys read, per checkpoint key (`aws/cloudtrail_s3/ACCOUNT/REGION`).
    pub objects: std::collections::BTreeMap<String, Vec<String>>,
    /// The `ACCOUNT/REGION` folders listed.
    pub folders: Vec<String>,
}

/// The `YYYY/MM/DD/` folder of a day.
fn day_folder(t: Millis) -> String {
    let text = crate::time::format_rfc3339(t);
    format!("{}/{}/{}/", &text[0..4], &text[5..7], &text[8..10])
}

/// The sub-folders of `prefix` (listed with a `/` delimiter), as their names without `prefix`
/// and the trailing `/`.
async fn sub_folders(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    calls: &mut u64,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| format!("listing s3://{bucket}/{prefix}: {}", sdk_message(&e)))?;
        *calls += 1;
        for p in page.common_prefixes() {
            if let Some(name) = p
                .prefix()
                .and_then(|x| x.strip_prefix(prefix))
                .map(|x| x.trim_end_matches('/'))
                .filter(|x| !x.is_empty())
            {
                out.push(name.to_string());
            }
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

fn is_account(name: &str) -> bool {
    name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit())
}

/// The `ACCOUNT/CloudTrail/REGION/` folders of a trail under `prefix`: the account folders
/// found there, and those of the organization folders (`o-ORGID/ACCOUNT/`) found there too;
/// in each, every region folder, or those of `allow` when it is not empty. Returns
/// `(account, region, folder)`.
pub async fn trail_folders(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    allow: &[String],
    calls: &mut u64,
) -> Result<Vec<(String, String, String)>, String> {
    let mut accounts: Vec<(String, String)> = Vec::new();
    for name in sub_folders(client, bucket, prefix, calls).await? {
        if is_account(&name) {
            accounts.push((name.clone(), format!("{prefix}{name}/")));
        } else if name.starts_with("o-") {
            let org = format!("{prefix}{name}/");
            for account in sub_folders(client, bucket, &org, calls).await? {
                if is_account(&account) {
                    accounts.push((account.clone(), format!("{org}{account}/")));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (account, folder) in accounts {
        let trail = format!("{folder}CloudTrail/");
        for region in sub_folders(client, bucket, &trail, calls).await? {
            if allow.is_empty() || allow.contains(&region) {
                out.push((account.clone(), region.clone(), format!("{trail}{region}/")));
            }
        }
    }
    Ok(out)
}

/// Polls the log objects of a CloudTrail trail in S3: under `prefix` (the folder holding the
/// account folders, `AWSLogs/` or `AWSLogs/o-ORGID/`), every account and region folder found
/// there ([`trail_folders`]; `allow`, when not empty, keeps only those regions), the objects
/// of the days since `since` not in `done`, read `concurrency` at a time.
pub async fn cloudtrail_s3(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    allow: &[String],
    since: Millis,
    done: &dyn Fn(&str, &str) -> bool,
    concurrency: usize,
) -> Result<TrailPolled, SourceError> {
    let err = |operation, message| SourceError {
        source_name: "cloudtrail_s3",
        region: format!("s3://{bucket}/{prefix}"),
        operation,
        message,
    };
    let mut out = TrailPolled::default();
    let folders = trail_folders(client, bucket, prefix, allow, &mut out.polled.calls)
        .await
        .map_err(|m| err("ListObjectsV2", m))?;
    tracing::debug!(
        folders = ?folders.iter().map(|(a, r, _)| format!("{a}/{r}")).collect::<Vec<_>>(),
        "trail folders"
    );
    // The objects of the days since `since`: keys sort by date, so one listing per account
    // and region, starting after the day before.
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (account, region, folder) in &folders {
        out.folders.push(format!("{account}/{region}"));
        let start_after = format!("{folder}{}", day_folder(since));
        let checkpoint = format!("aws/cloudtrail_s3/{account}/{region}");
        let mut token = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(folder)
                .start_after(&start_after)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| err("ListObjectsV2", sdk_message(&e)))?;
            out.polled.calls += 1;
            for o in page.contents() {
                if let Some(key) = o.key()
                    && !done(&checkpoint, key)
                {
                    wanted.push((checkpoint.clone(), key.to_string()));
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    // Fetch, a bounded number at a time.
    let mut tasks = tokio::task::JoinSet::new();
    let mut pending = wanted.into_iter();
    let mut fetched: Vec<(String, String, Vec<u8>)> = Vec::new();
    loop {
        while tasks.len() < concurrency.max(1) {
            let Some((checkpoint, key)) = pending.next() else {
                break;
            };
            let client = client.clone();
            let bucket = bucket.to_string();
            tasks.spawn(async move {
                let got = client.get_object().bucket(&bucket).key(&key).send().await;
                let body = match got {
                    Ok(o) => o
                        .body
                        .collect()
                        .await
                        .map(|b| b.into_bytes().to_vec())
                        .map_err(|e| format!("reading s3://{bucket}/{key}: {e}")),
                    Err(e) => Err(format!("s3://{bucket}/{key}: {}", sdk_message(&e))),
                };
                (checkpoint, key, body)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (checkpoint, key, body) = joined.map_err(|e| err("GetObject", e.to_string()))?;
        out.polled.calls += 1;
        let body = body.map_err(|m| err("GetObject", m))?;
        fetched.push((checkpoint, key, body));
    }
    fetched.sort_by(|a, b| a.1.cmp(&b.1));
    for (checkpoint, key, body) in fetched {
        out.objects.entry(checkpoint).or_default().push(key.clone());
        out.polled
            .bodies
            .push((format!("s3://{bucket}/{key}"), body));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_events_pages_give_their_event_ids_and_times() {
        let body = br#"{"Events":[{"EventId":"a","EventTime":1746177600.5,"CloudTrailEvent":"{}"},{"EventId":"b"},{"EventTime":1}],"NextToken":"x"}"#;
        assert_eq!(event_ids(body), vec![("a".to_string(), 1_746_177_600_500)]);
        assert!(event_ids(b"not json").is_empty());
    }

    #[test]
    fn day_folders() {
        assert_eq!(day_folder(1_746_177_600_000), "2025/05/02/");
    }

    #[test]
    fn own_findings_are_dropped_from_security_hub_pages() {
        let body = br#"{"Findings":[{"Id":"a","ProductName":"GuardDuty"},{"Id":"b","ProductName":"finding-correlator"}],"NextToken":"t"}"#;
        let kept = without_own_findings(body, "finding-correlator").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&kept).unwrap();
        assert_eq!(v["Findings"].as_array().unwrap().len(), 1);
        assert_eq!(v["Findings"][0]["Id"], "a");
        let only_own = br#"{"Findings":[{"Id":"b","ProductName":"finding-correlator"}]}"#;
        assert!(without_own_findings(only_own, "finding-correlator").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_spaces_calls() {
        let rate = RateLimit::new(2.0);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            rate.wait().await;
        }
        // Five calls at two a second: the last one two seconds after the first.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
