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

pub(super) fn sdk_message<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    super::describe_error(e)
}

/// Polls GuardDuty findings updated since `since`, archived ones too: an archived finding
/// feeds no rule (unless `include_archived_findings`), but what it says of instances reaches
/// the graph, and a finding written on an earlier version of it is withdrawn or written again
/// without it ([`crate::incremental`]); left out here, an analyst's archive would never reach
/// the run.
pub async fn guardduty(
    client: &aws_sdk_guardduty::Client,
    region: &str,
    since: Millis,
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
        let criteria = FindingCriteria::builder()
            .criterion(
                "updatedAt",
                Condition::builder().greater_than_or_equal(since).build(),
            )
            .build();
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

/// The sub-folders of `prefix` (listed with a `/` delimiter), as their names without `prefix`
/// and the trailing `/`.
async fn sub_folders(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    calls: &mut u64,
) -> Result<Vec<String>, String> {
    sub_folders_or_region(client, bucket, prefix, calls)
        .await
        .map_err(|(message, _)| message)
}

/// [`sub_folders`], or why not, with the bucket's region when S3 refused the first call for
/// being made in another ([`super::bucket_elsewhere`]).
async fn sub_folders_or_region(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    calls: &mut u64,
) -> Result<Vec<String>, (String, Option<String>)> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let first = token.is_none();
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| {
                (
                    format!("listing s3://{bucket}/{prefix}: {}", sdk_message(&e)),
                    first
                        .then(|| super::bucket_elsewhere(&e, client.config().region()))
                        .flatten(),
                )
            })?;
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
/// in each, every region folder, or those of `allow` when it is not empty. With a `shard`,
/// only the folders of its accounts: the others' are never listed (their count is returned).
/// The accounts' folders are listed `concurrency` at a time. Returns `(account, region,
/// folder)`, sorted, and the number of account folders left to other shards.
pub async fn trail_folders(
    client: &super::BucketClient,
    bucket: &str,
    prefix: &str,
    allow: &[String],
    shard: Option<crate::shard::Shard>,
    concurrency: usize,
    calls: &mut u64,
) -> Result<(Vec<(String, String, String)>, usize), String> {
    let mut accounts: Vec<(String, String)> = Vec::new();
    let mut orgs = Vec::new();
    let mut others = 0;
    let mut keep = |account: &str| {
        let mine = shard.is_none_or(|s| s.owns(account));
        others += usize::from(!mine);
        mine
    };
    // The first call: when S3 says the bucket is in another region than the first
    // configured, the poll goes on there (this call, and every later one).
    let top = match sub_folders_or_region(&client.get(bucket), bucket, prefix, calls).await {
        Err((_, Some(region))) => {
            client.move_to(bucket, &region);
            sub_folders(&client.get(bucket), bucket, prefix, calls).await?
        }
        found => found.map_err(|(message, _)| message)?,
    };
    let client = &client.get(bucket);
    for name in top {
        if is_account(&name) {
            if keep(&name) {
                accounts.push((name.clone(), format!("{prefix}{name}/")));
            }
        } else if name.starts_with("o-") {
            orgs.push(format!("{prefix}{name}/"));
        }
    }
    for (org, found) in list_concurrently(client, bucket, orgs, concurrency, calls).await? {
        for account in found.into_iter().filter(|a| is_account(a)) {
            if keep(&account) {
                accounts.push((account.clone(), format!("{org}{account}/")));
            }
        }
    }
    let trails: Vec<String> = accounts
        .iter()
        .map(|(_, folder)| format!("{folder}CloudTrail/"))
        .collect();
    let regions = list_concurrently(client, bucket, trails, concurrency, calls).await?;
    let mut out = Vec::new();
    for ((account, _), (trail, found)) in accounts.into_iter().zip(regions) {
        for region in found {
            if allow.is_empty() || allow.contains(&region) {
                out.push((account.clone(), region.clone(), format!("{trail}{region}/")));
            }
        }
    }
    out.sort_by(|a, b| a.2.cmp(&b.2));
    Ok((out, others))
}

/// [`sub_folders`] of each of `folders`, `concurrency` at a time, in the order given.
async fn list_concurrently(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    folders: Vec<String>,
    concurrency: usize,
    calls: &mut u64,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut found: Vec<Option<Vec<String>>> = vec![None; folders.len()];
    let mut next = folders.iter().enumerate();
    loop {
        while tasks.len() < concurrency.max(1) {
            let Some((i, folder)) = next.next() else {
                break;
            };
            let (client, bucket, folder) = (client.clone(), bucket.to_string(), folder.clone());
            tasks.spawn(async move {
                let mut n = 0;
                let got = sub_folders(&client, &bucket, &folder, &mut n).await;
                (i, n, got)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (i, n, got) = joined.map_err(|e| format!("listing the trail's folders: {e}"))?;
        *calls += n;
        found[i] = Some(got?);
    }
    Ok(folders
        .into_iter()
        .zip(found)
        .map(|(f, got)| (f, got.unwrap_or_default()))
        .collect())
}

/// A body for the decoders: its name in problems (`s3://bucket/key`) and its bytes.
pub type Body = (String, Vec<u8>);

/// What the trail poll of a run starts from.
pub struct TrailPoll {
    pub client: super::BucketClient,
    pub bucket: String,
    /// The folder holding the account folders (`AWSLogs/` or `AWSLogs/o-ORGID/`).
    pub prefix: String,
    /// `aws.trail_regions`: when not empty, the only region folders read.
    pub allow: Vec<String>,
    /// `aws.shard`: when set, only the folders of its accounts are listed and read.
    pub shard: Option<crate::shard::Shard>,
    /// The state's checkpoint of each region folder, by folder.
    pub folders: std::collections::BTreeMap<String, crate::state::Checkpoint>,
    /// Where a folder with no checkpoint starts (the look-back).
    pub since: Millis,
    /// Folders listed, and objects fetched, at a time.
    pub concurrency: usize,
    /// Attempts of an object whose body breaks off or does not decompress (the SDK retries
    /// failed requests itself).
    pub attempts: u32,
    /// `input.max_object_mib`, in bytes: a body larger once decompressed is not read.
    pub max_object_bytes: usize,
}

/// What the trail poll did, filled in while it runs. Read it once every body has been
/// taken from the channel (each task records its part before it lets go of its sender).
#[derive(Debug, Default)]
pub struct TrailOutcome {
    /// API calls made.
    pub calls: u64,
    /// Why the trail's folders could not be found (nothing of the trail was read).
    pub error: Option<String>,
    /// Account folders left to other shards (`aws.shard`), never listed.
    pub other_shards: usize,
    /// Per region folder.
    pub folders: std::collections::BTreeMap<String, FolderOutcome>,
}

/// What the poll did in one region folder.
#[derive(Debug, Default)]
pub struct FolderOutcome {
    /// Where its listing started.
    pub start_after: String,
    /// Objects it went for: listed as new, or pending from earlier runs.
    pub listed: Vec<String>,
    /// Objects read and handed to the decoders.
    pub read: Vec<String>,
    /// Objects that could not be read: key and reason.
    pub failed: Vec<(String, String)>,
    /// Pending objects that no longer exist (deleted, or expired by the bucket's lifecycle).
    pub gone: Vec<(String, String)>,
    /// Why its listing stopped early.
    pub listing_error: Option<String>,
}

impl TrailOutcome {
    fn folder(&mut self, folder: &str) -> &mut FolderOutcome {
        self.folders.entry(folder.to_string()).or_default()
    }
}

fn lock(out: &std::sync::Mutex<TrailOutcome>) -> std::sync::MutexGuard<'_, TrailOutcome> {
    out.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the log objects of a trail in S3 into `tx` as they arrive, recording in `out` what it
/// did: every account and region folder under the trail's prefix ([`trail_folders`]), listed
/// `concurrency` at a time, each from its cursor ([`crate::sources::trail`]) or the look-back;
/// the new objects and the folder's pending ones fetched `concurrency` at a time. A failed
/// listing or object is recorded, never the end of the poll: the other folders and objects
/// are read.
pub async fn cloudtrail_s3(
    poll: std::sync::Arc<TrailPoll>,
    tx: tokio::sync::mpsc::Sender<Body>,
    out: std::sync::Arc<std::sync::Mutex<TrailOutcome>>,
) {
    let mut calls = 0;
    let found = trail_folders(
        &poll.client,
        &poll.bucket,
        &poll.prefix,
        &poll.allow,
        poll.shard,
        poll.concurrency,
        &mut calls,
    )
    .await;
    lock(&out).calls += calls;
    let mut folders = match found {
        Ok((f, others)) => {
            lock(&out).other_shards = others;
            f
        }
        Err(message) => {
            lock(&out).error = Some(message);
            return;
        }
    };
    // A folder with pending objects is tried even when the listing no longer shows it (its
    // objects were deleted): each pending object is then read or reported gone.
    for (folder, c) in &poll.folders {
        let shown = folders.iter().any(|(_, _, f)| f == folder);
        if let Some((account, region)) = crate::sources::trail::account_region(folder)
            && !shown
            && !c.pending.is_empty()
            && folder.starts_with(&poll.prefix)
            && (poll.allow.is_empty() || poll.allow.iter().any(|r| r == region))
            && poll.shard.is_none_or(|s| s.owns(account))
        {
            folders.push((account.to_string(), region.to_string(), folder.clone()));
        }
    }
    tracing::debug!(
        folders = ?folders.iter().map(|(a, r, _)| format!("{a}/{r}")).collect::<Vec<_>>(),
        "trail folders"
    );
    let fetches = std::sync::Arc::new(tokio::sync::Semaphore::new(poll.concurrency.max(1)));
    let mut listings = tokio::task::JoinSet::new();
    for (_, _, folder) in folders {
        lock(&out).folder(&folder);
        while listings.len() >= poll.concurrency.max(1) {
            listings.join_next().await;
        }
        listings.spawn(list_folder(
            poll.clone(),
            folder,
            tx.clone(),
            out.clone(),
            fetches.clone(),
        ));
    }
    while listings.join_next().await.is_some() {}
}

/// Lists one region folder from its cursor and fetches what is new, and its pending objects.
async fn list_folder(
    poll: std::sync::Arc<TrailPoll>,
    folder: String,
    tx: tokio::sync::mpsc::Sender<Body>,
    out: std::sync::Arc<std::sync::Mutex<TrailOutcome>>,
    fetches: std::sync::Arc<tokio::sync::Semaphore>,
) {
    let checkpoint = poll.folders.get(&folder);
    let start_after = checkpoint
        .and_then(|c| c.after.clone())
        .unwrap_or_else(|| crate::sources::trail::key_at(&folder, poll.since));
    lock(&out).folder(&folder).start_after = start_after.clone();
    let pending: std::collections::BTreeSet<&str> = checkpoint
        .map(|c| c.pending.iter().map(|p| p.key.as_str()).collect())
        .unwrap_or_default();
    for key in &pending {
        fetch(&poll, &folder, key, &tx, &out, &fetches).await;
    }
    let mut token = None;
    loop {
        let page = poll
            .client
            .get(&poll.bucket)
            .list_objects_v2()
            .bucket(&poll.bucket)
            .prefix(&folder)
            .start_after(&start_after)
            .set_continuation_token(token.take())
            .send()
            .await;
        lock(&out).calls += 1;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                lock(&out).folder(&folder).listing_error = Some(format!(
                    "listing s3://{}/{folder} after `{start_after}`: {}",
                    poll.bucket,
                    sdk_message(&e)
                ));
                return;
            }
        };
        for key in page.contents().iter().filter_map(|o| o.key()) {
            let seen = checkpoint.is_some_and(|c| c.seen.contains(key));
            if !seen && !pending.contains(key) {
                fetch(&poll, &folder, key, &tx, &out, &fetches).await;
            }
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
}

/// Fetches one object on a task of its own once a fetch slot is free, and hands its body to
/// the decoders; records the outcome (before the task lets go of its sender).
async fn fetch(
    poll: &std::sync::Arc<TrailPoll>,
    folder: &str,
    key: &str,
    tx: &tokio::sync::mpsc::Sender<Body>,
    out: &std::sync::Arc<std::sync::Mutex<TrailOutcome>>,
    fetches: &std::sync::Arc<tokio::sync::Semaphore>,
) {
    let Ok(permit) = fetches.clone().acquire_owned().await else {
        return;
    };
    lock(out).folder(folder).listed.push(key.to_string());
    let (poll, folder, key, tx, out) = (
        poll.clone(),
        folder.to_string(),
        key.to_string(),
        tx.clone(),
        out.clone(),
    );
    tokio::spawn(async move {
        let got = get_body(&poll, &key, &out).await;
        match got {
            Ok(body) => {
                let name = format!("s3://{}/{key}", poll.bucket);
                // Sent before the slot is freed: bodies in memory are bounded by the slots
                // and the channel.
                if tx.send((name, body)).await.is_ok() {
                    lock(&out).folder(&folder).read.push(key);
                }
            }
            Err(Failure { reason, gone }) => {
                let mut o = lock(&out);
                let f = o.folder(&folder);
                if gone {
                    f.gone.push((key, reason));
                } else {
                    f.failed.push((key, reason));
                }
            }
        }
        drop(permit);
    });
}

/// Why an object could not be read.
pub(super) struct Failure {
    pub(super) reason: String,
    /// It does not exist (any more).
    pub(super) gone: bool,
}

/// An object's body of the trail, as [`object_body`] reads it.
async fn get_body(
    poll: &TrailPoll,
    key: &str,
    out: &std::sync::Mutex<TrailOutcome>,
) -> Result<Vec<u8>, Failure> {
    let mut calls = 0;
    let got = object_body(
        &poll.client,
        &poll.bucket,
        key,
        poll.attempts,
        poll.max_object_bytes,
        &mut calls,
    )
    .await;
    lock(out).calls += calls;
    got
}

/// An object's body, decompressed when it is gzip: whole, or a failure (a request that failed
/// after the SDK's retries, or a body that broke off or does not decompress, tried `attempts`
/// times, or larger than `cap` bytes once decompressed). Counts its calls in `calls`.
pub(super) async fn object_body(
    client: &super::BucketClient,
    bucket: &str,
    key: &str,
    attempts: u32,
    cap: usize,
    calls: &mut u64,
) -> Result<Vec<u8>, Failure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let get = |c: &aws_sdk_s3::Client| c.get_object().bucket(bucket).key(key).send();
        let asked = client.get(bucket);
        let mut got = get(&asked).await;
        *calls += 1;
        if let Err(e) = &got
            && client.moved(e, bucket, &asked)
        {
            got = get(&client.get(bucket)).await;
            *calls += 1;
        }
        let o = got.map_err(|e| Failure {
            gone: e
                .as_service_error()
                .is_some_and(aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key),
            reason: format!("GetObject: {}", sdk_message(&e)),
        })?;
        // Larger than the limit as stored (compressed or not) is larger once decompressed:
        // not even downloaded.
        if o.content_length()
            .is_some_and(|n| n > 0 && n as u64 > cap as u64)
        {
            return Err(Failure {
                reason: too_large(cap),
                gone: false,
            });
        }
        let body = match o.body.collect().await {
            Ok(b) => Ok(b.into_bytes().to_vec()),
            Err(e) => Err(format!("the body broke off: {e}")),
        };
        let body = match body {
            Ok(b) if b.starts_with(&[0x1f, 0x8b]) => {
                tokio::task::spawn_blocking(move || gunzip(&b, cap))
                    .await
                    .unwrap_or_else(|e| Err(Gunzip::Damaged(format!("decompressing: {e}"))))
            }
            Ok(b) if b.len() > cap => Err(Gunzip::TooLarge(too_large(cap))),
            Ok(b) => Ok(b),
            Err(reason) => Err(Gunzip::Damaged(reason)),
        };
        let reason = match body {
            Ok(b) => return Ok(b),
            // The same body is as large the next time: not tried again in this run.
            Err(Gunzip::TooLarge(reason)) => {
                return Err(Failure {
                    reason,
                    gone: false,
                });
            }
            Err(Gunzip::Damaged(reason)) => reason,
        };
        if attempt >= attempts.max(1) {
            return Err(Failure {
                reason,
                gone: false,
            });
        }
        tracing::debug!(key, attempt, %reason, "trail object: trying again");
    }
}

/// Why a body was not read.
enum Gunzip {
    /// Broken off, or not gzip after all: worth another attempt.
    Damaged(String),
    /// Larger than `input.max_object_mib` (decompressed).
    TooLarge(String),
}

fn too_large(cap: usize) -> String {
    format!(
        "larger than {} MiB once decompressed (`input.max_object_mib`): not read; CloudTrail log \
         files are far smaller, so this is likely no trail log (or a decompression bomb); raise \
         the limit to read it",
        cap >> 20
    )
}

/// The whole decompressed content of a gzip body (every member), or why it is damaged or
/// larger than `cap` bytes (decompression stops there: a small body that expands without
/// end costs no more memory than the limit).
fn gunzip(body: &[u8], cap: usize) -> Result<Vec<u8>, Gunzip> {
    use std::io::Read;
    let mut out = Vec::with_capacity(body.len().saturating_mul(8).min(cap));
    flate2::read::MultiGzDecoder::new(body)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Gunzip::Damaged(format!("damaged gzip ({} bytes): {e}", body.len())))?;
    if out.len() > cap {
        return Err(Gunzip::TooLarge(too_large(cap)));
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
    fn gzip_bodies_decompress_whole_or_are_damaged() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(br#"{"Records":[]}"#).unwrap();
        let whole = gz.finish().unwrap();
        assert!(matches!(gunzip(&whole, 1 << 20), Ok(b) if b == br#"{"Records":[]}"#));
        for cut in [whole.len() - 4, whole.len() / 2, 3] {
            let Err(Gunzip::Damaged(e)) = gunzip(&whole[..cut], 1 << 20) else {
                panic!("cut at {cut}: not damaged");
            };
            assert!(e.starts_with("damaged gzip"), "cut at {cut}: {e}");
        }
        let mut flipped = whole.clone();
        let at = flipped.len() - 6;
        flipped[at] ^= 0xff;
        assert!(
            matches!(gunzip(&flipped, 1 << 20), Err(Gunzip::Damaged(_))),
            "a wrong checksum or length is damage"
        );
    }

    #[test]
    fn a_body_that_expands_beyond_the_limit_is_not_read_and_costs_no_more_than_the_limit() {
        use std::io::Write;
        // 64 MiB of zeros compress to about 64 KiB: the shape of a decompression bomb.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 1 << 18, "{} bytes", bomb.len());
        let Err(Gunzip::TooLarge(reason)) = gunzip(&bomb, 4 << 20) else {
            panic!("a body over the limit was read");
        };
        assert!(
            reason.contains("4 MiB") && reason.contains("input.max_object_mib"),
            "{reason}"
        );
        // At the limit exactly, it is read.
        assert_eq!(
            gunzip(&bomb, 64 << 20).ok().map(|b| b.len()),
            Some(64 << 20)
        );
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
